/*
 * residency.c - `zero status`, `zero prefetch`, `zero pin`, `zero unpin` and
 * `zero evict`: seeing what of a Zero filesystem is local, and steering it.
 *
 * Everything goes through the daemon's virtual extended attributes (see
 * docs/residency.md), never through the cache directory:
 *
 *   user.zero.status     get, any path of the mount: one line of flat JSON
 *   user.zero.residency  get, regular file: "size= local= remote= dirty= pinned="
 *   user.zero.pin        set "1" or "0"
 *   user.zero.evict      set (any value): drop the file's CLEAN chunks now
 *   user.zero.fetch      set "FIRST-LAST" (chunk indices): returns once local
 *
 * A daemon without a bucket (or older than these attributes) answers
 * ENOTSUP/ENODATA; a path whose file system is not fuse.zero is refused
 * before anything is asked.
 *
 * Prefetch: the kernel holds a file's inode lock around setxattr, so the
 * fetches of one file are serial whatever we do. PREFETCH_THREADS workers
 * therefore each take whole files, asking for PREFETCH_BATCH chunks per
 * call so that the progress bar moves and an interrupt stops soon.
 */
#include "cli/cli.h"
#include "cli/mounts.h"
#include "cli/statusline.h"
#include "common/clock.h"
#include "common/mountinfo.h"
#include "crypt/keys.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>


#define XATTR_STATUS "user.zero.status"
#define XATTR_RESIDENCY "user.zero.residency"
#define XATTR_PIN "user.zero.pin"
#define XATTR_EVICT "user.zero.evict"
#define XATTR_FETCH "user.zero.fetch"

#define PREFETCH_THREADS 4
#define PREFETCH_BATCH 4     /* chunks per user.zero.fetch call */
#define PROGRESS_TICK_MS 200 /* progress bar redraw interval */

/* ---- numbers for people ---- */

/* Format S seconds as "4 s", "3 min 20 s", "2 h 5 min"; negative is "unknown". */
static void format_duration(double s, char *out, size_t size)
{
	uint64_t n;

	if (s < 0) {
		snprintf(out, size, "unknown");
		return;
	}
	n = (uint64_t)(s + 0.5);
	if (n < 60)
		snprintf(out, size, "%" PRIu64 " s", n);
	else if (n < 3600)
		snprintf(out, size, "%" PRIu64 " min %" PRIu64 " s", n / 60, n % 60);
	else
		snprintf(out, size, "%" PRIu64 " h %" PRIu64 " min", n / 3600, n / 60 % 60);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- which mount a path is on ---- */

/*
 * Find the Zero mount of device DEV; MNT (may be NULL) gets its mount point.
 * Returns 0, -ENOENT when DEV is not a Zero file system, or -errno.
 */
static int zero_mount_of(dev_t dev, char *mnt, size_t size)
{
	struct mountinfo_reader r;
	struct mountinfo e;
	int ret = mountinfo_open(&r);

	if (ret)
		return ret;
	ret = -ENOENT;
	while (ret == -ENOENT && mountinfo_next(&r, &e)) {
		if (e.major != major(dev) || e.minor != minor(dev) ||
		    strcmp(e.fstype, "fuse.zero") != 0)
			continue;
		if (mnt)
			snprintf(mnt, size, "%s", e.mountpoint);
		ret = 0;
	}
	mountinfo_close(&r);
	return ret;
}

/*
 * Pick the one Zero mount when none is named: fills MNT and returns 0, or
 * prints why not and returns -ENOENT (none) or -EEXIST (several).
 */
int zero_mount_only(char *mnt, size_t size)
{
	struct mountinfo_reader r;
	struct mountinfo e;
	char **found = NULL;
	size_t n = 0, live = 0;
	int ret = mountinfo_open(&r);

	if (ret) {
		fprintf(stderr, "zero: cannot read /proc/self/mountinfo: %s\n", strerror(-ret));
		return ret;
	}
	while (mountinfo_next(&r, &e)) {
		char **grown;

		if (strcmp(e.fstype, "fuse.zero") != 0)
			continue;
		grown = realloc(found, (n + 1) * sizeof(*found));
		if (!grown) {
			ret = -ENOMEM;
			goto out_free;
		}
		found = grown;
		/* a dead mount (daemon killed) has nothing to tell: leave it out of the choice */
		if (asprintf(&found[n], "%c%s", mounts_zero_is_dead(e.source) ? '-' : '+',
			     e.mountpoint) < 0) {
			ret = -ENOMEM;
			goto out_free;
		}
		live += found[n][0] == '+';
		n++;
	}
	if (n == 0) {
		fprintf(stderr, "zero: no Zero filesystem is mounted\n");
		ret = -ENOENT;
	} else if (n == 1 || live == 1) {
		for (size_t i = 0; i < n; i++)
			if (n == 1 || found[i][0] == '+')
				snprintf(mnt, size, "%s", found[i] + 1);
	} else {
		fprintf(stderr, "zero: several Zero filesystems are mounted; name one:\n");
		for (size_t i = 0; i < n; i++)
			if (live == 0 || found[i][0] == '+')
				fprintf(stderr, "  %s\n", found[i] + 1);
		ret = -EEXIST;
	}
out_free:
	if (ret == -ENOMEM)
		fprintf(stderr, "zero: out of memory\n");
	for (size_t i = 0; i < n; i++)
		free(found[i]);
	free(found);
	mountinfo_close(&r);
	return ret;
}

/* Stat PATH and check it lies on a Zero mount; prints why not. Returns 0 or -errno. */
int check_on_zero(const char *path, struct stat *st)
{
	int ret;

	if (stat(path, st) < 0) {
		ret = -errno;
		if (ret == -ENOTCONN)
			fprintf(stderr, "zero: %s: the mount is dead (daemon killed?)\n", path);
		else
			fprintf(stderr, "zero: %s: %s\n", path, strerror(-ret));
		return ret;
	}
	ret = zero_mount_of(st->st_dev, NULL, 0);
	if (ret == -ENOENT)
		fprintf(stderr, "zero: %s is not on a Zero mount\n", path);
	else if (ret)
		fprintf(stderr, "zero: cannot read /proc/self/mountinfo: %s\n", strerror(-ret));
	return ret;
}

/* ---- the daemon's attributes ---- */

/* Say why a user.zero.* attribute of PATH failed with ERR (-errno). */
static void report(const char *path, const char *what, int err)
{
	switch (err) {
	case -ENOTSUP:
	case -ENODATA:
		fprintf(stderr,
			"zero: %s: not a Zero mount with a bucket (or its daemon is older "
			"than this command)\n",
			path);
		break;
	case -ENOTCONN:
		fprintf(stderr, "zero: %s: the mount is dead (daemon killed?)\n", path);
		break;
	case -EACCES:
	case -EPERM:
		fprintf(stderr, "zero: %s: %s: %s (it takes write permission on the file)\n", path,
			what, strerror(-err));
		break;
	case -EIO:
		fprintf(stderr, "zero: %s: %s: %s (see 'zero status' for the bucket's error)\n",
			path, what, strerror(-err));
		break;
	default:
		fprintf(stderr, "zero: %s: %s: %s\n", path, what, strerror(-err));
		break;
	}
}

/* Read attribute NAME of PATH as a NUL-terminated string; caller frees *OUT. */
static int xattr_get(const char *path, const char *name, char **out)
{
	for (int tries = 0; tries < 4; tries++) {
		ssize_t n = getxattr(path, name, NULL, 0), m;
		char *buf;
		int err;

		if (n < 0)
			return -errno;
		buf = malloc((size_t)n + 2);
		if (!buf)
			return -ENOMEM;
		m = getxattr(path, name, buf, (size_t)n + 1);
		if (m >= 0) {
			buf[m] = '\0';
			*out = buf;
			return 0;
		}
		err = errno;
		free(buf);
		if (err != ERANGE) /* ERANGE: it grew between the two calls */
			return -err;
	}
	return -ERANGE;
}

static int xattr_set(const char *path, const char *name, const char *value)
{
	return setxattr(path, name, value, strlen(value), 0) < 0 ? -errno : 0;
}

struct residency {
	uint64_t size, local, remote, dirty;
	int pinned;
};

static int residency_get(const char *path, struct residency *r)
{
	char *text = NULL;
	int ret = xattr_get(path, XATTR_RESIDENCY, &text);

	if (ret)
		return ret;
	if (sscanf(text,
		   "size=%" SCNu64 " local=%" SCNu64 " remote=%" SCNu64 " dirty=%" SCNu64
		   " pinned=%d",
		   &r->size, &r->local, &r->remote, &r->dirty, &r->pinned) != 5)
		ret = -EPROTO;
	free(text);
	return ret;
}

/* ---- zero status ---- */

static const char *const status_keys[] = {
    "bucket",
    "encryption",
    "chunk_size",
    "cache_used",
    "cache_target",
    "dirty_chunks",
    "dirty_bytes",
    "uploading",
    "upload_rate",
    "upload_eta_s",
    "uploads",
    "uploaded_bytes",
    "dedup_hits",
    "clean_chunks",
    "remote_chunks",
    "bucket_objects",
    "bucket_bytes",
    "reads",
    "reads_fetched",
    "hit_ratio",
    "fetches",
    "fetched_bytes",
    "fetch_errors",
    "upload_errors",
    "evictions",
    "evicted_bytes",
    "gc_deleted",
    "writers_waiting",
    "memory_rss",
    "memory_buffers",
    "memory_buffers_peak",
    "memory_buffers_limit",
    "inodes_in_memory",
    "inodes_idle",
    "last_error",
};

static void status_usage(FILE *out)
{
	fprintf(out, "usage: zero status [MOUNTPOINT] [--json] [--watch [--interval SECONDS]]\n\n"
		     "Show how much of a Zero filesystem is local: the cache against its target,\n"
		     "dirty data and the upload queue, the bucket, reads served locally and\n"
		     "fetches. Without MOUNTPOINT, the only Zero mount (any path inside a mount\n"
		     "names it).\n\n"
		     "options:\n"
		     "  --json       print the daemon's status as one line of JSON\n"
		     "  -w, --watch  refresh the view every second until interrupted\n"
		     "  --interval SECONDS  how often --watch refreshes (default 1)\n"
		     "  -h, --help   show this help\n");
}

#define STATUS_LINE(label, ...)                                                                    \
	do {                                                                                       \
		printf("%-10s ", label);                                                           \
		printf(__VA_ARGS__);                                                               \
		putchar('\n');                                                                     \
	} while (0)

/* The lease line; none for a mount without a lease (read-only, or an older daemon). */
static void status_print_lease(const json_t *st)
{
	char state[16], host[256], cache[256], error[256], when[64];
	time_t expires = (time_t)statusline_u64(st, "lease_expires");
	struct tm tm;

	statusline_string(st, "lease", state, sizeof(state));
	if (!state[0])
		return;
	statusline_string(st, "lease_host", host, sizeof(host));
	statusline_string(st, "lease_cache_id", cache, sizeof(cache));
	statusline_string(st, "lease_renew_error", error, sizeof(error));
	if (!localtime_r(&expires, &tm) || !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(when, sizeof(when), "%lld", (long long)expires);
	if (statusline_true(st, "lease_fenced"))
		STATUS_LINE("lease",
			    "fenced: read-only; host %s (pid %" PRIu64 ", cache %s) holds "
			    "generation %" PRIu64 " (this mount had %" PRIu64 ")",
			    host, statusline_u64(st, "lease_pid"), cache,
			    statusline_u64(st, "lease_generation"), statusline_u64(st, "lease_my_generation"));
	else if (strcmp(state, "held") == 0)
		STATUS_LINE("lease",
			    "held by host %s (pid %" PRIu64 "), generation %" PRIu64
			    ", until %s (%s)%s%s",
			    host, statusline_u64(st, "lease_pid"), statusline_u64(st, "lease_generation"), when,
			    statusline_true(st, "lease_conditional") ? "conditional writes"
							       : "read-back: no conditional writes",
			    error[0] ? "; renewal failing: " : "", error);
	else
		STATUS_LINE("lease", "not taken yet: the bucket has not answered%s%s%s",
			    error[0] ? " (" : "", error, error[0] ? ")" : "");
}

static void status_print(const char *mnt, const json_t *st)
{
	char a[32], b[32], c[32], text[1024];
	uint64_t dirty = statusline_u64(st, "dirty_bytes"), target = statusline_u64(st, "cache_target");
	uint64_t used = statusline_u64(st, "cache_used"), uploading = statusline_u64(st, "uploading");

	statusline_string(st, "bucket", text, sizeof(text));
	statusline_bytes(statusline_u64(st, "chunk_size"), c, sizeof(c));
	STATUS_LINE("mount", "%s (bucket %s, chunks of %s)", mnt, text, c);
	statusline_string(st, "encryption", text, sizeof(text));
	if (strcmp(text, "none") == 0)
		STATUS_LINE("encryption", "none: the bucket holds plaintext (encryption: false)");
	else
		STATUS_LINE("encryption", "%s, key from a passphrase (key epoch %" PRIu64 ")",
			    strcmp(text, KEYS_CIPHER_NAME) == 0 ? "XChaCha20-Poly1305" : text,
			    statusline_u64(st, "key_epoch"));

	statusline_bytes(used, a, sizeof(a));
	statusline_bytes(target, b, sizeof(b));
	if (target)
		STATUS_LINE("cache", "%s of %s target (%.0f%%)", a, b, 100.0 * used / target);
	else
		STATUS_LINE("cache", "%s, no target", a);

	statusline_bytes(dirty, a, sizeof(a));
	if (dirty == 0) {
		STATUS_LINE("dirty", "0 B, nothing to upload");
	} else {
		uint64_t chunks = statusline_u64(st, "dirty_chunks");
		char up[160];

		if (uploading == 0) {
			snprintf(up, sizeof(up), "waiting to upload");
		} else {
			statusline_bytes((uint64_t)statusline_number(st, "upload_rate"), b, sizeof(b));
			format_duration(statusline_number(st, "upload_eta_s"), c, sizeof(c));
			snprintf(up, sizeof(up), "uploading %" PRIu64 " at %s/s, ETA %s", uploading,
				 b, c);
		}
		STATUS_LINE("dirty", "%s (%" PRIu64 " chunk%s), %s", a, chunks,
			    chunks == 1 ? "" : "s", up);
	}
	if (statusline_true(st, "writers_waiting"))
		STATUS_LINE("pressure", "writers are waiting for uploads to free the cache");

	statusline_bytes(statusline_u64(st, "uploaded_bytes"), a, sizeof(a));
	STATUS_LINE("uploads", "%" PRIu64 " (%s), %" PRIu64 " deduplicated, %" PRIu64 " errors",
		    statusline_u64(st, "uploads"), a, statusline_u64(st, "dedup_hits"),
		    statusline_u64(st, "upload_errors"));

	statusline_bytes(statusline_u64(st, "bucket_bytes"), a, sizeof(a));
	STATUS_LINE("bucket", "%" PRIu64 " objects, %s", statusline_u64(st, "bucket_objects"), a);

	STATUS_LINE("chunks", "%" PRIu64 " dirty, %" PRIu64 " clean, %" PRIu64 " remote only",
		    statusline_u64(st, "dirty_chunks"), statusline_u64(st, "clean_chunks"),
		    statusline_u64(st, "remote_chunks"));

	statusline_bytes(statusline_u64(st, "fetched_bytes"), a, sizeof(a));
	STATUS_LINE("reads", "%.1f%% served locally, %" PRIu64 " fetches (%s), %" PRIu64 " errors",
		    100.0 * statusline_number(st, "hit_ratio"), statusline_u64(st, "fetches"), a,
		    statusline_u64(st, "fetch_errors"));

	statusline_bytes(statusline_u64(st, "evicted_bytes"), a, sizeof(a));
	STATUS_LINE("evicted", "%" PRIu64 " chunks (%s); %" PRIu64 " objects collected",
		    statusline_u64(st, "evictions"), a, statusline_u64(st, "gc_deleted"));

	statusline_bytes(statusline_u64(st, "memory_rss"), a, sizeof(a));
	statusline_bytes(statusline_u64(st, "memory_buffers"), b, sizeof(b));
	statusline_bytes(statusline_u64(st, "memory_buffers_limit"), c, sizeof(c));
	STATUS_LINE("memory", "%s resident; transfer buffers %s of at most %s", a, b, c);
	STATUS_LINE("inodes", "%" PRIu64 " in memory, %" PRIu64 " known to the kernel and idle",
		    statusline_u64(st, "inodes_in_memory"), statusline_u64(st, "inodes_idle"));

	status_print_lease(st);
	if (json_object_get(st, "meta_seq")) {
		/* the metadata in the bucket (src/journal/): how far behind it is */
		double lag = statusline_number(st, "meta_lag_s");
		char behind[64];
		uint64_t keep = statusline_u64(st, "meta_retention_s");
		statusline_bytes(statusline_u64(st, "meta_lag_bytes"), a, sizeof(a));
		if (lag > 0)
			snprintf(behind, sizeof(behind), "behind by %.1f s, %s", lag, a);
		else
			snprintf(behind, sizeof(behind), "up to date");
		if (keep % 86400 == 0)
			snprintf(c, sizeof(c), "%" PRIu64 " days", keep / 86400);
		else
			snprintf(c, sizeof(c), "%" PRIu64 " s", keep);
		STATUS_LINE("metadata",
			    "%s in the bucket (item %" PRIu64 "; %" PRIu64 " log items, %" PRIu64
			    " snapshots, %" PRIu64 " failed puts); history kept %s",
			    behind, statusline_u64(st, "meta_seq"), statusline_u64(st, "meta_segments"),
			    statusline_u64(st, "meta_snapshots"), statusline_u64(st, "meta_ship_errors"), c);
	}

	statusline_string(st, "last_error", text, sizeof(text));
	if (text[0])
		STATUS_LINE("last error", "%s", text);
}

/* One status of the mount at PATH (MNT names it), printed; 0 or -errno (said on stderr). */
static int status_once(const char *path, const char *mnt, bool json)
{
	json_t *obj = NULL;
	char *text = NULL;
	int ret;

	ret = xattr_get(path, XATTR_STATUS, &text);
	if (ret) {
		report(path, "status", ret);
		return ret;
	}
	obj = statusline_parse(text);
	ret = obj ? 0 : -EPROTO;
	for (size_t i = 0; ret == 0 && !json && i < sizeof(status_keys) / sizeof(*status_keys); i++)
		if (!json_object_get(obj, status_keys[i]))
			ret = -EPROTO;
	if (ret) {
		fprintf(stderr,
			"zero: %s: the daemon's status is not what this command expects: %s\n",
			path, text);
		goto out_free;
	}
	if (json)
		printf("%s%s", text, text[0] && text[strlen(text) - 1] == '\n' ? "" : "\n");
	else
		status_print(mnt, obj);
	if (fflush(stdout) != 0)
		ret = -errno;
out_free:
	json_decref(obj);
	free(text);
	return ret;
}

static volatile sig_atomic_t status_interrupted;

static void status_on_signal(int sig)
{
	(void)sig;
	status_interrupted = 1;
}

int cli_status(int argc, char **argv)
{
	char mnt[PATH_MAX];
	const char *path = NULL;
	bool json = false, watch = false;
	double interval = 1;
	struct stat st;
	int ret;

	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			status_usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--watch") == 0 || strcmp(argv[i], "-w") == 0) {
			watch = true;
		} else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
			char *end;
			interval = strtod(argv[++i], &end);
			if (*end || interval < 0.1 || interval > 3600) {
				fprintf(stderr, "zero: --interval %s: expected seconds, 0.1 to 3600\n",
					argv[i]);
				return 2;
			}
		} else if (argv[i][0] == '-' || path) {
			status_usage(stderr);
			return 2;
		} else {
			path = argv[i];
		}
	}
	if (!path) {
		if (zero_mount_only(mnt, sizeof(mnt)))
			return 1;
		path = mnt;
	}
	if (check_on_zero(path, &st))
		return 1;
	if (zero_mount_of(st.st_dev, mnt, sizeof(mnt)))
		snprintf(mnt, sizeof(mnt), "%s", path);
	if (!watch)
		return status_once(path, mnt, json) ? 1 : 0;
	/* refresh until interrupted (or the mount is gone): on a terminal, in place */
	signal(SIGINT, status_on_signal);
	signal(SIGTERM, status_on_signal);
	bool tty = isatty(STDOUT_FILENO) && !json;
	while (!status_interrupted) {
		if (tty)
			printf("\033[H\033[2J");
		ret = status_once(path, mnt, json);
		if (ret)
			return 1;
		if (!json && !tty)
			printf("\n");
		fflush(stdout);
		for (double t = 0; t < interval && !status_interrupted; t += 0.1)
			usleep(100 * 1000);
	}
	return 0;
}

/* ---- the files a command works on ---- */

struct target {
	char *path;
	dev_t dev;
	uint64_t size, remote, chunk_size; /* size and remote before prefetching */
	int err;			   /* 0, or -errno once it failed (reported) */
	int fetch_err;			   /* prefetch: 0 or the -errno of a fetch */
};

struct target_list {
	struct target *v;
	size_t n, cap;
	int failures; /* paths that could not be used or failed, each reported */
};

static int target_add(struct target_list *list, const char *path, dev_t dev)
{
	struct target *t;

	if (list->n == list->cap) {
		size_t cap = list->cap ? 2 * list->cap : 16;
		struct target *v = realloc(list->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		list->v = v;
		list->cap = cap;
	}
	t = &list->v[list->n];
	memset(t, 0, sizeof(*t));
	t->path = strdup(path);
	if (!t->path)
		return -ENOMEM;
	t->dev = dev;
	list->n++;
	return 0;
}

static void target_list_release(struct target_list *list)
{
	for (size_t i = 0; i < list->n; i++)
		free(list->v[i].path);
	free(list->v);
	memset(list, 0, sizeof(*list));
}

/* Add the regular files below directory DIR of device DEV (not crossing mounts). */
static int collect_dir(const char *dir, dev_t dev, struct target_list *list)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int ret = 0;

	if (!d) {
		fprintf(stderr, "zero: %s: %s\n", dir, strerror(errno));
		list->failures++;
		return 0;
	}
	while (ret == 0 && (errno = 0, de = readdir(d))) {
		struct stat st;
		char *path;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (asprintf(&path, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
			     de->d_name) < 0)
			return -ENOMEM;
		if (lstat(path, &st) < 0) {
			fprintf(stderr, "zero: %s: %s\n", path, strerror(errno));
			list->failures++;
		} else if (S_ISDIR(st.st_mode) && st.st_dev == dev) {
			ret = collect_dir(path, dev, list);
		} else if (S_ISREG(st.st_mode) && st.st_dev == dev) {
			ret = target_add(list, path, dev);
		}
		free(path);
	}
	if (ret == 0 && errno) {
		fprintf(stderr, "zero: %s: %s\n", dir, strerror(errno));
		list->failures++;
	}
	closedir(d);
	return ret;
}

/* Add PATH (with RECURSE, a directory's regular files) to LIST; -ENOMEM only. */
static int collect(const char *path, bool recurse, struct target_list *list)
{
	struct stat st;

	if (check_on_zero(path, &st)) {
		list->failures++;
		return 0;
	}
	if (S_ISREG(st.st_mode))
		return target_add(list, path, st.st_dev);
	if (S_ISDIR(st.st_mode) && recurse)
		return collect_dir(path, st.st_dev, list);
	fprintf(stderr, "zero: %s: %s\n", path,
		S_ISDIR(st.st_mode) ? "is a directory (use -r for the files below it)"
				    : "not a regular file");
	list->failures++;
	return 0;
}

/*
 * Parse [-r] PATH... into LIST (paths that cannot be used are reported and
 * counted in LIST->failures). Returns -1 to go on, or the exit status: 0
 * after --help, 2 for a usage error, 1 out of memory.
 */
static int parse_paths(int argc, char **argv, void (*usage)(FILE *), struct target_list *list)
{
	bool recurse = false, options = true;
	char **paths = calloc((size_t)argc, sizeof(*paths));
	int npaths = 0, ret = -1;

	if (!paths) {
		fprintf(stderr, "zero: out of memory\n");
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		if (options && cli_is_help(argv[i])) {
			usage(stdout);
			ret = 0;
			goto out_free;
		} else if (options &&
			   (strcmp(argv[i], "-r") == 0 || strcmp(argv[i], "--recursive") == 0)) {
			recurse = true;
		} else if (options && strcmp(argv[i], "--") == 0) {
			options = false;
		} else if (options && argv[i][0] == '-' && argv[i][1]) {
			usage(stderr);
			ret = 2;
			goto out_free;
		} else {
			paths[npaths++] = argv[i];
		}
	}
	if (npaths == 0) {
		usage(stderr);
		ret = 2;
		goto out_free;
	}
	for (int i = 0; i < npaths && ret == -1; i++) {
		if (collect(paths[i], recurse, list)) {
			fprintf(stderr, "zero: out of memory\n");
			ret = 1;
		}
	}
out_free:
	free(paths);
	return ret;
}

/* Mark T failed with ERR (reported). */
static void target_fail(struct target_list *list, struct target *t, const char *what, int err)
{
	report(t->path, what, err);
	t->err = err;
	list->failures++;
}

/* ---- prefetch ---- */

struct prefetch {
	struct target_list *list;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled when progress is made or a worker ends */
	size_t next;	     /* protected by lock: next target to take */
	uint64_t done;	     /* protected by lock: bytes of the ranges fetched */
	uint64_t total;	     /* protected by lock: bytes to go through */
	int running;	     /* protected by lock: workers not yet finished */
};

/* Fetch target T range by range; 0 or the first -errno. */
static int prefetch_file(struct prefetch *pf, struct target *t)
{
	uint64_t cs = t->chunk_size, nchunks = (t->size + cs - 1) / cs;
	char range[48];
	int ret = 0;

	for (uint64_t first = 0; first < nchunks; first += PREFETCH_BATCH) {
		uint64_t last =
		    first + PREFETCH_BATCH - 1 < nchunks ? first + PREFETCH_BATCH - 1 : nchunks - 1;
		uint64_t end = (last + 1) * cs < t->size ? (last + 1) * cs : t->size;

		snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64, first, last);
		ret = xattr_set(t->path, XATTR_FETCH, range);
		pthread_mutex_lock(&pf->lock);
		if (ret)
			pf->total -= t->size - first * cs; /* the rest will not come */
		else
			pf->done += end - first * cs;
		pthread_cond_signal(&pf->cond);
		pthread_mutex_unlock(&pf->lock);
		if (ret)
			break;
	}
	return ret;
}

static void *prefetch_worker(void *arg)
{
	struct prefetch *pf = arg;
	struct target_list *list = pf->list;

	for (;;) {
		struct target *t = NULL;

		pthread_mutex_lock(&pf->lock);
		while (!t && pf->next < list->n) {
			t = &list->v[pf->next++];
			if (t->err || t->remote == 0)
				t = NULL;
		}
		pthread_mutex_unlock(&pf->lock);
		if (!t)
			break;
		/* each target is touched by one worker only; read after the join */
		t->fetch_err = prefetch_file(pf, t);
	}
	pthread_mutex_lock(&pf->lock);
	pf->running--;
	pthread_cond_signal(&pf->cond);
	pthread_mutex_unlock(&pf->lock);
	return NULL;
}

static void progress_draw(uint64_t done, uint64_t total, double elapsed)
{
	char d[32], t[32], r[32], bar[31];
	size_t width = sizeof(bar) - 1, fill = total ? (size_t)(width * done / total) : width;

	memset(bar, '#', fill);
	memset(bar + fill, '.', width - fill);
	bar[width] = '\0';
	statusline_bytes(done, d, sizeof(d));
	statusline_bytes(total, t, sizeof(t));
	statusline_bytes(elapsed > 0 ? (uint64_t)(done / elapsed) : 0, r, sizeof(r));
	fprintf(stderr, "\r[%s] %3.0f%%  %s / %s  %s/s\033[K", bar,
		total ? 100.0 * done / total : 100.0, d, t, r);
	fflush(stderr);
}

/* Fill size, remote and chunk size of every target; failures are reported. */
static void prefetch_prepare(struct target_list *list)
{
	dev_t dev = 0;
	uint64_t cs = 0;

	for (size_t i = 0; i < list->n; i++) {
		struct target *t = &list->v[i];
		json_t *obj = NULL;
		struct residency r;
		char *text = NULL;
		int ret;

		if (t->err)
			continue;
		ret = residency_get(t->path, &r);
		if (ret) {
			target_fail(list, t, "residency", ret);
			continue;
		}
		t->size = r.size;
		t->remote = r.remote;
		if (cs == 0 || t->dev != dev) {
			ret = xattr_get(t->path, XATTR_STATUS, &text);
			obj = ret == 0 ? statusline_parse(text) : NULL;
			if (ret == 0 && (!obj || (cs = statusline_u64(obj, "chunk_size")) == 0))
				ret = -EPROTO;
			json_decref(obj);
			free(text);
			if (ret) {
				cs = 0;
				target_fail(list, t, "chunk size", ret);
				continue;
			}
			dev = t->dev;
		}
		t->chunk_size = cs;
	}
}

/* Make every usable target of LIST local; prints progress and a summary line. */
static void prefetch_run(struct target_list *list, const char *verb)
{
	struct prefetch pf = {.list = list};
	pthread_t threads[PREFETCH_THREADS];
	pthread_condattr_t attr;
	uint64_t fetched = 0, remote_left = 0;
	size_t files = 0, want = 0;
	bool tty = isatty(STDERR_FILENO);
	double start = now_s(), elapsed;
	char a[32], b[32], c[32];
	int nthreads = 0;

	prefetch_prepare(list);
	for (size_t i = 0; i < list->n; i++) {
		if (list->v[i].err)
			continue;
		files++;
		if (list->v[i].remote) {
			pf.total += list->v[i].size;
			want++;
		}
	}
	pthread_mutex_init(&pf.lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&pf.cond, &attr);
	pthread_condattr_destroy(&attr);

	pthread_mutex_lock(&pf.lock);
	for (; want && nthreads < PREFETCH_THREADS && (size_t)nthreads < want; nthreads++) {
		if (pthread_create(&threads[nthreads], NULL, prefetch_worker, &pf) != 0)
			break;
		pf.running++;
	}
	if (want && nthreads == 0) {
		/* no thread to be had: do the work here */
		pf.running++;
		pthread_mutex_unlock(&pf.lock);
		prefetch_worker(&pf);
		pthread_mutex_lock(&pf.lock);
	}
	while (pf.running > 0) {
		struct timespec until;
		uint64_t done = pf.done, total = pf.total;

		if (tty) {
			pthread_mutex_unlock(&pf.lock);
			progress_draw(done, total, now_s() - start);
			pthread_mutex_lock(&pf.lock);
		}
		until = clock_after_ms(CLOCK_MONOTONIC, PROGRESS_TICK_MS);
		pthread_cond_timedwait(&pf.cond, &pf.lock, &until);
	}
	pthread_mutex_unlock(&pf.lock);
	for (int i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	elapsed = now_s() - start;
	if (tty && want) {
		progress_draw(pf.done, pf.total, elapsed);
		fputc('\n', stderr);
	}
	pthread_cond_destroy(&pf.cond);
	pthread_mutex_destroy(&pf.lock);

	/* what actually came: the residency now against before */
	for (size_t i = 0; i < list->n; i++) {
		struct target *t = &list->v[i];
		struct residency r;
		int ret;

		if (t->fetch_err)
			target_fail(list, t, "fetch", t->fetch_err);
		if (t->err || t->remote == 0)
			continue;
		ret = residency_get(t->path, &r);
		if (ret) {
			target_fail(list, t, "residency", ret);
			continue;
		}
		fetched += t->remote > r.remote ? t->remote - r.remote : 0;
		remote_left += r.remote;
	}
	if (files == 0) /* each was reported */
		return;
	printf("%s %zu file%s: ", verb, files, files == 1 ? "" : "s");
	if (want == 0) {
		printf("already local\n");
		return;
	}
	statusline_bytes(fetched, a, sizeof(a));
	statusline_bytes(elapsed > 0 ? (uint64_t)(fetched / elapsed) : 0, b, sizeof(b));
	printf("%s fetched in %.1f s (%s/s)", a, elapsed, b);
	if (remote_left) {
		statusline_bytes(remote_left, c, sizeof(c));
		printf(", %s still remote", c);
	}
	putchar('\n');
}

/* ---- the commands ---- */

static void prefetch_usage(FILE *out)
{
	fprintf(out, "usage: zero prefetch [-r] PATH...\n\n"
		     "Bring the named files of a Zero filesystem into the local cache now, with\n"
		     "a progress bar when stderr is a terminal. Files may be evicted again later\n"
		     "when the cache is over its target; 'zero pin' keeps them.\n\n"
		     "options:\n"
		     "  -r, --recursive  the regular files below named directories\n"
		     "  -h, --help       show this help\n");
}

static void pin_usage(FILE *out)
{
	fprintf(out, "usage: zero pin [-r] PATH...\n\n"
		     "Keep the named files local whatever the pressure on the cache: mark them\n"
		     "pinned, then fetch what of them is remote. Files created later in a named\n"
		     "directory are not pinned.\n\n"
		     "options:\n"
		     "  -r, --recursive  the regular files below named directories\n"
		     "  -h, --help       show this help\n");
}

static void unpin_usage(FILE *out)
{
	fprintf(out, "usage: zero unpin [-r] PATH...\n\n"
		     "Let the named files be evicted again like any other (their data stays\n"
		     "local until the cache needs the room).\n\n"
		     "options:\n"
		     "  -r, --recursive  the regular files below named directories\n"
		     "  -h, --help       show this help\n");
}

static void evict_usage(FILE *out)
{
	fprintf(out, "usage: zero evict [-r] PATH...\n\n"
		     "Drop the local copy of the named files' uploaded (clean) data now and\n"
		     "print what is left: local, remote and dirty bytes. Dirty data stays\n"
		     "until it is uploaded. Reading the files later fetches them back.\n\n"
		     "options:\n"
		     "  -r, --recursive  the regular files below named directories\n"
		     "  -h, --help       show this help\n");
}

/* Parse the arguments of a PATH... command into LIST; -1 to go on, else the status. */
static int paths_begin(int argc, char **argv, void (*usage)(FILE *), struct target_list *list)
{
	int ret = parse_paths(argc, argv, usage, list);

	if (ret >= 0)
		target_list_release(list);
	return ret;
}

static int paths_end(struct target_list *list)
{
	int failed = list->failures > 0;

	target_list_release(list);
	if (fflush(stdout) != 0)
		failed = 1;
	return failed;
}

int cli_prefetch(int argc, char **argv)
{
	struct target_list list = {0};
	int ret = paths_begin(argc, argv, prefetch_usage, &list);

	if (ret >= 0)
		return ret;
	prefetch_run(&list, "prefetched");
	return paths_end(&list);
}

/* Set user.zero.pin of every target to VALUE. */
static void pin_set(struct target_list *list, const char *value)
{
	for (size_t i = 0; i < list->n; i++) {
		int ret = xattr_set(list->v[i].path, XATTR_PIN, value);

		if (ret)
			target_fail(list, &list->v[i], value[0] == '1' ? "pin" : "unpin", ret);
	}
}

int cli_pin(int argc, char **argv)
{
	struct target_list list = {0};
	int ret = paths_begin(argc, argv, pin_usage, &list);

	if (ret >= 0)
		return ret;
	pin_set(&list, "1");
	prefetch_run(&list, "pinned");
	return paths_end(&list);
}

int cli_unpin(int argc, char **argv)
{
	struct target_list list = {0};
	int ret = paths_begin(argc, argv, unpin_usage, &list);

	if (ret >= 0)
		return ret;
	pin_set(&list, "0");
	return paths_end(&list);
}

int cli_evict(int argc, char **argv)
{
	struct target_list list = {0};
	int ret = paths_begin(argc, argv, evict_usage, &list);

	if (ret >= 0)
		return ret;
	for (size_t i = 0; i < list.n; i++) {
		struct target *t = &list.v[i];
		char local[32], remote[32], dirty[32];
		struct residency r;

		ret = xattr_set(t->path, XATTR_EVICT, "1");
		if (ret == 0)
			ret = residency_get(t->path, &r);
		if (ret) {
			target_fail(&list, t, "evict", ret);
			continue;
		}
		statusline_bytes(r.local, local, sizeof(local));
		statusline_bytes(r.remote, remote, sizeof(remote));
		statusline_bytes(r.dirty, dirty, sizeof(dirty));
		printf("%s: local %s, remote %s, dirty %s%s\n", t->path, local, remote, dirty,
		       r.dirty ? " (stays until uploaded)" : "");
	}
	return paths_end(&list);
}
