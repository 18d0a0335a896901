/*
 * worker.c - the seed's two commands: `zero-fuse MOUNTPOINT CACHE` mounts
 * (zero mount), and `zero-worker CACHE` does the worker's job, "moves files
 * between disk and cloud":
 *
 *  - with CACHE mounted, it attaches to that mount and shows the worker's
 *    progress live (uploads, evictions, fetches, the queue) until
 *    interrupted;
 *  - with CACHE not mounted, it brings the cache up without a mountpoint of
 *    the user's (a private one of its own), uploads everything dirty (zero
 *    sync), evicts down to targetDiskUsage, lets the collector run, takes it
 *    down again and prints a summary.
 *
 * Both are links to zero, told apart by their name (main.c).
 */
#include "cli/cli.h"
#include "cli/mounts.h"
#include "cli/statusline.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>


extern char **environ;

#define EVICT_WAIT_S 120 /* the longest wait for the cache to shrink to its target */
#define GC_ROUNDS_S 3	 /* the collector runs every second: a few rounds */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void worker_usage(FILE *out)
{
	fprintf(out,
		"usage: zero-worker CACHE [--config FILE]\n\n"
		"Move files between the disk and the bucket for the Zero cache CACHE.\n"
		"With CACHE mounted: show the worker's progress live (uploads, evictions,\n"
		"fetches, what waits to be uploaded), a line a second, until interrupted.\n"
		"With CACHE not mounted: upload everything dirty, evict down to\n"
		"targetDiskUsage, collect garbage, and exit with a summary.\n\n"
		"options:\n"
		"  --config FILE  configuration file (default ~/.config/zero/config.yml)\n"
		"  -h, --help     show this help\n");
}

static double mb(uint64_t bytes)
{
	return (double)bytes / 1e6;
}

/* Attached: a line a second with what the worker did since the last one. */
static int watch(const char *mnt)
{
	json_t *prev = NULL;

	printf("zero-worker: attached to the mount at %s (interrupt to stop)\n", mnt);
	printf("%-8s %16s %16s %16s %12s %8s\n", "time", "uploads", "evictions", "fetches",
	       "dirty MB", "queue");
	fflush(stdout);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!interrupted) {
		int err = 0;
		json_t *s = statusline_read(mnt, &err);
		char when[16];
		time_t now = time(NULL);
		struct tm tm;

		if (!s) {
			fprintf(stderr, "zero-worker: %s: the mount is gone (%s)\n", mnt,
				strerror(-err));
			json_decref(prev);
			return 1;
		}
		strftime(when, sizeof(when), "%H:%M:%S", localtime_r(&now, &tm));
		printf("%-8s %8" PRIu64 " %+7" PRId64 " %8" PRIu64 " %+7" PRId64 " %8" PRIu64
		       " %+7" PRId64 " %12.1f %8" PRIu64 "\n",
		       when, statusline_u64(s, "uploads"),
		       prev ? (int64_t)(statusline_u64(s, "uploads") - statusline_u64(prev, "uploads")) : 0,
		       statusline_u64(s, "evictions"),
		       prev ? (int64_t)(statusline_u64(s, "evictions") - statusline_u64(prev, "evictions")) : 0,
		       statusline_u64(s, "fetches"),
		       prev ? (int64_t)(statusline_u64(s, "fetches") - statusline_u64(prev, "fetches")) : 0,
		       mb(statusline_u64(s, "dirty_bytes")), statusline_u64(s, "dirty_chunks"));
		fflush(stdout);
		json_decref(prev);
		prev = s;
		for (int i = 0; i < 10 && !interrupted; i++)
			usleep(100 * 1000);
	}
	json_decref(prev);
	printf("zero-worker: detached\n");
	return 0;
}

/* Run zero ARGS (this binary) and wait; its exit status, or -errno. */
static int run_zero(char *const args[])
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	pid_t pid;
	int status;

	if (n <= 0)
		return -errno;
	self[n] = '\0';
	posix_spawn_file_actions_t fa;
	/* its own words ("mounted at ...") are not the worker's: errors only */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	status = posix_spawn(&pid, self, &fa, NULL, args, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (status != 0)
		return -status;
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* Not mounted: up on a private mountpoint, upload, evict, collect, down, summary. */
static int offline(const char *cache, const char *config)
{
	char mnt[] = "/tmp/zero-worker.XXXXXX";
	char *mount_args[] = {"zero", "mount", mnt, (char *)cache, "--config", (char *)config, NULL};
	char *umount_args[] = {"zero", "umount", mnt, NULL};
	char *sync_args[] = {"sync", mnt, NULL};
	json_t *s = NULL;
	int ret, status = 1;

	if (!config)
		mount_args[4] = NULL;
	if (!mkdtemp(mnt)) {
		fprintf(stderr, "zero-worker: cannot make a mountpoint: %s\n", strerror(errno));
		return 1;
	}
	ret = run_zero(mount_args);
	if (ret != 0) {
		fprintf(stderr, "zero-worker: cannot bring %s up (see above)\n", cache);
		goto out_rmdir;
	}
	printf("zero-worker: %s: uploading what is dirty\n", cache);
	fflush(stdout);
	if (cli_sync(2, sync_args) != 0)
		goto out_umount;
	printf("zero-worker: %s: evicting down to the target, collecting garbage\n", cache);
	fflush(stdout);
	for (int waited = 0;; waited++) {
		int err = 0;

		json_decref(s);
		s = statusline_read(mnt, &err);
		if (!s) {
			fprintf(stderr, "zero-worker: %s: cannot read the status: %s\n", mnt,
				strerror(-err));
			goto out_umount;
		}
		uint64_t target = statusline_u64(s, "cache_target");
		if ((waited >= GC_ROUNDS_S && (!target || statusline_u64(s, "cache_used") <= target)) ||
		    waited >= EVICT_WAIT_S)
			break;
		sleep(1);
	}
	printf("zero-worker: %s: %" PRIu64 " chunks uploaded (%.1f MB), %" PRIu64
	       " evicted (%.1f MB), %" PRIu64 " objects collected; cache %.1f MB of %.1f MB "
	       "target, %" PRIu64 " chunks dirty\n",
	       cache, statusline_u64(s, "uploads"), mb(statusline_u64(s, "uploaded_bytes")), statusline_u64(s, "evictions"),
	       mb(statusline_u64(s, "evicted_bytes")), statusline_u64(s, "gc_deleted"), mb(statusline_u64(s, "cache_used")),
	       mb(statusline_u64(s, "cache_target")), statusline_u64(s, "dirty_chunks"));
	status = statusline_u64(s, "dirty_chunks") ? 1 : 0;
out_umount:
	json_decref(s);
	if (run_zero(umount_args) != 0)
		status = 1;
out_rmdir:
	rmdir(mnt);
	return status;
}

int cli_worker(int argc, char **argv)
{
	const char *arg = NULL, *config = NULL;
	char cache[PATH_MAX], mnt[PATH_MAX];

	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			worker_usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config = argv[++i];
		} else if (argv[i][0] == '-' || arg) {
			worker_usage(stderr);
			return 2;
		} else {
			arg = argv[i];
		}
	}
	if (!arg) {
		worker_usage(stderr);
		return 2;
	}
	if (!realpath(arg, cache)) {
		fprintf(stderr, "zero-worker: cache %s: %s\n", arg, strerror(errno));
		return 1;
	}
	if (mounts_find_cache(cache, mnt, sizeof(mnt)) && !mounts_zero_is_dead(cache))
		return watch(mnt);
	char marker[PATH_MAX + 16];
	snprintf(marker, sizeof(marker), "%s/zero.cache", cache);
	if (access(marker, F_OK) != 0) {
		/* zero mount would make a new filesystem here: not the worker's job */
		fprintf(stderr, "zero-worker: %s is not a Zero cache\n", cache);
		return 1;
	}
	return offline(cache, config);
}

int cli_zero_fuse(int argc, char **argv)
{
	char *args[argc + 2];
	int n = 0;

	if (argc > 1 && cli_is_help(argv[1])) {
		printf("usage: zero-fuse MOUNTPOINT CACHE [zero mount's options]\n\n"
		       "Mount the Zero filesystem kept in CACHE at MOUNTPOINT: the seed's name for\n"
		       "`zero mount MOUNTPOINT CACHE` (see zero mount --help).\n");
		return 0;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: zero-fuse MOUNTPOINT CACHE [zero mount's options]\n");
		return 2;
	}
	args[n++] = "mount";
	for (int i = 1; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	return cli_mount(n, args);
}
