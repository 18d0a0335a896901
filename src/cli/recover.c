/*
 * recover.c - the filesystem back from its bucket: a mount on a new cache
 * restores the bucket's metadata first (recover_new_cache), and `zero
 * recover --list` shows the states that can be restored.
 */
#include "cli/recover.h"

#include "cli/cli.h"
#include "cli/config.h"
#include "common/log.h"
#include "journal/journal.h"
#include "meta/meta.h"
#include "store/objstore.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct lost_report {
	struct meta *m;
	int count;
	bool to_stderr;
};

#define LOST_SHOWN 100

/* One range the recovery lists: LABEL on the terminal, WHAT in the log. */
static int report_range(struct lost_report *r, const char *label, const char *what,
			uint64_t ino, uint64_t start, uint64_t end)
{
	char path[PATH_MAX];

	if (++r->count > LOST_SHOWN)
		return 0;
	if (meta_inode_path(r->m, ino, path, sizeof(path), NULL) != 0)
		snprintf(path, sizeof(path), "(inode %" PRIu64 ", no name)", ino);
	log_warn("recovery: %s: bytes %" PRIu64 "-%" PRIu64 " %s", path, start, end - 1, what);
	if (r->to_stderr)
		fprintf(stderr, "zero: %s: %s: bytes %" PRIu64 "-%" PRIu64 "\n", label, path, start,
			end - 1);
	return 0;
}

static int report_lost(void *arg, uint64_t ino, uint64_t start, uint64_t end)
{
	return report_range(arg, "lost",
			    "never reached the bucket; reads there fail (EIO) until they are "
			    "written again or truncated",
			    ino, start, end);
}

/* A range that comes back as it was last uploaded: older than the rest of its file may be. */
static int report_older(void *arg, uint64_t ino, uint64_t start, uint64_t end)
{
	return report_range(arg, "older",
			    "come back as they were last uploaded; newer writes there never "
			    "reached the bucket",
			    ino, start, end);
}

struct progress {
	bool tty;
	const char *last_phase;
};

static void show_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
	struct progress *p = arg;

	if (!p->tty)
		return;
	if (strcmp(phase, "snapshot") == 0)
		fprintf(stderr, "\rzero: restoring: metadata snapshot, %.1f MB%s", total / 1e6,
			done == total ? "\n" : "");
	else
		fprintf(stderr, "\rzero: restoring: log %" PRIu64 "/%" PRIu64 "%s", done, total,
			done == total ? "\n" : "");
	p->last_phase = phase;
}

int recover_new_cache(struct objstore *store, const struct keyring *keys, const char *db_path,
		      const struct journal_target *t, bool to_stderr, bool *restored, char *err,
		      size_t errlen)
{
	struct progress p = {.tty = to_stderr && isatty(STDERR_FILENO)};
	struct lost_report r = {.to_stderr = to_stderr};
	struct stat st;
	int ret;

	*restored = false;
	if (stat(db_path, &st) == 0) {
		if (t && (t->at_ms || t->checkpoint)) {
			snprintf(err, errlen,
				 "%s exists: a past state is mounted into a new, empty cache "
				 "directory",
				 db_path);
			return -EEXIST;
		}
		return 0;
	}
	ret = journal_restore(store, keys, db_path, t, show_progress, &p, err, errlen);
	if (ret == -ENOENT && !(t && (t->at_ms || t->checkpoint)))
		return 0; /* nothing to restore: a new filesystem (or refused by the superblock) */
	if (ret)
		return ret;
	ret = meta_open(db_path, 0, 0, 0, &r.m);
	if (ret == 0) {
		char chunk[32] = "";
		meta_setting_get(r.m, "chunk_size", chunk, sizeof(chunk));
		ret = meta_restore_fixup(r.m, (uint32_t)strtoul(chunk, NULL, 10), report_lost,
					 report_older, &r);
		if (ret > 0) {
			log_warn("recovery: %d ranges of files could not be restored", ret);
			if (to_stderr)
				fprintf(stderr,
					"zero: %d ranges of files could not be restored (listed in "
					"the log)\n",
					ret);
			ret = 0;
		}
		meta_close(r.m);
	}
	if (ret) {
		snprintf(err, errlen, "cannot prepare the restored metadata %s: %s", db_path,
			 strerror(-ret));
		return ret;
	}
	*restored = true;
	if (to_stderr)
		fprintf(stderr, "zero: restored the filesystem from %s\n", objstore_describe(store));
	return 0;
}

int recover_parse_time(const char *s, int64_t *ms)
{
	struct tm tm;
	const char *end;
	char *e;

	if (s[0] == '@') {
		double d = strtod(s + 1, &e);
		if (e == s + 1 || *e || d <= 0)
			return -EINVAL;
		*ms = (int64_t)(d * 1000);
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
	if (!end)
		end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end || *end)
		return -EINVAL;
	tm.tm_isdst = -1;
	*ms = (int64_t)mktime(&tm) * 1000 + 999; /* the whole second */
	return 0;
}

static void format_time(int64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: zero recover --list [CACHE] [--config FILE]\n\n"
		"Show the states of the filesystem in the bucket that can be mounted: its\n"
		"point-in-time history (any second in each range) and its checkpoints.\n"
		"Mount one read-only with `zero mount --at TIME MOUNTPOINT NEWCACHE` or\n"
		"`zero mount --checkpoint NAME MOUNTPOINT NEWCACHE`; the newest state is\n"
		"restored by any mount with a new, empty CACHE.\n\n"
		"options:\n"
		"  --list         list the restorable states (the only action)\n"
		"  --config FILE  configuration file (default ~/.config/zero/config.yml)\n"
		"  -h, --help     show this help\n");
}

int cli_recover(int argc, char **argv)
{
	static const struct option longopts[] = {{"list", no_argument, NULL, 'l'},
						 {"config", required_argument, NULL, 'c'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	const char *config_path = NULL, *cache = NULL;
	struct journal_point *pts = NULL;
	struct checkpoint_info *cps = NULL;
	struct config cfg = {0};
	struct objstore *store = NULL;
	char err[1024], a[32], b[32];
	bool list = false;
	size_t n = 0, ncp = 0;
	int c, ret, status = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			list = true;
			break;
		case 'c':
			config_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!list || argc - optind > 1) {
		usage(stderr);
		return 2;
	}
	cache = argc > optind ? argv[optind] : NULL;
	ret = config_load(config_path, &cfg, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "zero: %s\n", err);
		return 1;
	}
	if (cfg.bucket_dir_default && (!cfg.backend || strcmp(cfg.backend, "file") == 0)) {
		if (!cache) {
			fprintf(stderr, "zero: no bucket is configured: the embedded default bucket "
					"lives in the cache; name the CACHE\n");
			goto out;
		}
		free(cfg.bucket_dir);
		if (asprintf(&cfg.bucket_dir, "%s/bucket", cache) < 0) {
			cfg.bucket_dir = NULL;
			goto out;
		}
	}
	ret = objstore_open_from_config(&cfg, &store, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "zero: %s\n", err);
		goto out;
	}
	ret = journal_points(store, &pts, &n);
	if (ret == 0)
		ret = checkpoint_list(store, &cps, &ncp);
	if (ret) {
		fprintf(stderr, "zero: cannot list the metadata in %s: %s\n",
			objstore_describe(store), strerror(-ret));
		goto out;
	}
	printf("filesystem in %s\n", objstore_describe(store));
	if (n == 0 && ncp == 0)
		printf("  no restorable state (no metadata was shipped)\n");
	for (size_t i = 0; i < n; i++) {
		format_time(pts[i].from_ms, a, sizeof(a));
		format_time(pts[i].to_ms, b, sizeof(b));
		printf("  history  %s .. %s\n", a, b);
	}
	for (size_t i = 0; i < ncp; i++) {
		format_time(cps[i].time_ms, a, sizeof(a));
		printf("  checkpoint %-20s %s\n", cps[i].name, a);
	}
	status = 0;
out:
	free(pts);
	free(cps);
	objstore_free(store);
	config_release(&cfg);
	return status;
}
