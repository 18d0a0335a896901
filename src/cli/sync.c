/*
 * sync.c - `zero sync [MOUNTPOINT]`: wait until the bucket has everything
 * written so far (no dirty chunk, nothing uploading, the metadata shipped),
 * so that a shutdown or a script can wait for the bucket. It flushes the
 * kernel's buffers first (syncfs), asks the daemon to upload now without
 * waiting for uploadDelay (user.zero.sync, renewed while it waits), and
 * shows a progress bar on a terminal: bytes, rate, ETA.
 */
#include "cli/cli.h"
#include "cli/statusline.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>


#define POLL_MS 200

static void usage(FILE *out)
{
	fprintf(out,
		"usage: zero sync [MOUNTPOINT] [--timeout SECONDS] [--quiet]\n\n"
		"Wait until the bucket holds everything written to the Zero filesystem at\n"
		"MOUNTPOINT so far (default: the only Zero mount): every dirty chunk uploaded,\n"
		"without waiting for uploadDelay, and the metadata shipped. On a terminal a\n"
		"progress bar shows the bytes, the rate and the time left. Exit status 0 once\n"
		"everything is in the bucket; 1 on a timeout, an error, or a mount that lost\n"
		"its lease; 2 for usage.\n\n"
		"options:\n"
		"  --timeout SECONDS  give up after this long (default: wait as long as it takes)\n"
		"  --quiet            no progress, only errors\n"
		"  -h, --help         show this help\n");
}

static void show(bool tty, uint64_t done, uint64_t total, double rate, double eta,
		 uint64_t meta_rows)
{
	char a[32], b[32], r[32], bar[31];
	int fill = total ? (int)(30 * (double)done / (double)total) : 30;

	if (!tty)
		return;
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	statusline_bytes(done, a, sizeof(a));
	statusline_bytes(total, b, sizeof(b));
	statusline_bytes(rate > 0 ? (uint64_t)rate : 0, r, sizeof(r));
	fprintf(stderr, "\r[%s] %s of %s, %s/s", bar, a, b, r);
	if (eta >= 0 && done < total)
		fprintf(stderr, ", %.0f s left", eta);
	if (meta_rows)
		fprintf(stderr, ", metadata: %" PRIu64 " changes", meta_rows);
	fprintf(stderr, "\033[K");
}

int cli_sync(int argc, char **argv)
{
	const char *arg = NULL;
	char mnt[PATH_MAX];
	struct stat st;
	double timeout = 0;
	bool quiet = false, tty;
	uint64_t total = 0;
	struct timespec t0, now;
	int ret, fd;

	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			char *end;
			timeout = strtod(argv[++i], &end);
			if (*end || timeout <= 0) {
				fprintf(stderr, "zero: --timeout %s: expected a number of seconds\n",
					argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--quiet") == 0) {
			quiet = true;
		} else if (argv[i][0] == '-' || arg) {
			usage(stderr);
			return 2;
		} else {
			arg = argv[i];
		}
	}
	if (!arg) {
		if (zero_mount_only(mnt, sizeof(mnt)))
			return 1;
	} else {
		snprintf(mnt, sizeof(mnt), "%s", arg);
	}
	if (check_on_zero(mnt, &st))
		return 1;
	/* what the kernel still holds goes to the daemon first */
	fd = open(mnt, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd) < 0) {
		fprintf(stderr, "zero: %s: %s\n", mnt, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	close(fd);
	tty = !quiet && isatty(STDERR_FILENO);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned round = 0;; round++) {
		json_t *s;

		/* renewed every second: the daemon lifts uploadDelay for a few seconds each time */
		if (round % (1000 / POLL_MS) == 0 &&
		    setxattr(mnt, "user.zero.sync", "1", 1, 0) < 0) {
			fprintf(stderr, "zero: %s: cannot ask for the upload: %s\n", mnt,
				strerror(errno));
			return 1;
		}
		s = statusline_read(mnt, &ret);
		if (!s) {
			fprintf(stderr, "%szero: %s: cannot read the status: %s\n", tty ? "\n" : "",
				mnt, strerror(-ret));
			return 1;
		}
		uint64_t dirty = statusline_u64(s, "dirty_bytes"), chunks = statusline_u64(s, "dirty_chunks");
		uint64_t up = statusline_u64(s, "uploading"), rows = statusline_u64(s, "meta_lag_rows");
		double rate = statusline_number(s, "upload_rate");
		double eta = statusline_number(s, "upload_eta_s");
		bool fenced = statusline_true(s, "lease_fenced") || statusline_true(s, "meta_fenced");
		json_decref(s);
		if (dirty > total)
			total = dirty;
		show(tty, total - dirty, total, rate, eta, rows);
		if (fenced) {
			fprintf(stderr,
				"%szero: %s lost its lease to another mount: what is left will not "
				"reach the bucket from here\n",
				tty ? "\n" : "", mnt);
			return 1;
		}
		if (dirty == 0 && chunks == 0 && up == 0 && rows == 0) {
			if (tty)
				fputc('\n', stderr);
			if (!quiet)
				printf("zero: %s: everything is in the bucket\n", mnt);
			return 0;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		double waited = (double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9;
		if (timeout > 0 && waited > timeout) {
			fprintf(stderr,
				"%szero: %s: %" PRIu64 " chunks (%" PRIu64 " bytes) and %" PRIu64
				" metadata changes still not in the bucket after %.0f s\n",
				tty ? "\n" : "", mnt, chunks, dirty, rows, timeout);
			return 1;
		}
		usleep(POLL_MS * 1000);
	}
}
