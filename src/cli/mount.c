/*
 * mount.c - `zero mount`: check everything, mount, detach, serve.
 *
 * Order matters: every check that can fail with a clear message runs before
 * the mount; the daemon forks only after the mount is live (so the parent
 * can report success truthfully) and before any thread exists (so the child
 * inherits a consistent process). The child reports readiness through a
 * pipe; the parent returns only then.
 *
 * A read-write mount takes the filesystem's lease in the bucket
 * (journal/lease.h) before anything touches the cache's filesystem, so a
 * second mount elsewhere is refused before it changes anything.
 */
#include "cli/cachedir.h"
#include "cli/cacheperm.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "cli/fskeys.h"
#include "cli/mounts.h"
#include "cli/notify.h"
#include "cli/recover.h"
#include "cli/statusline.h"
#include "cli/utab.h"
#include "common/log.h"
#include "fs/fs.h"
#include "fuse/fuse_ops.h"
#include "journal/journal.h"
#include "journal/lease.h"
#include "metrics/endpoint.h"
#include "store/objstore.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* targetDiskUsage when the configuration does not set it */
#define DEFAULT_TARGET_BYTES 10000000000ULL /* 10 GB */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: zero mount MOUNTPOINT [CACHE] [-f] [-o OPTIONS] [--config FILE] [--force]\n\n"
		"Mount the Zero filesystem kept in CACHE (default $XDG_DATA_HOME/zero, else\n"
		"~/.local/share/zero) at MOUNTPOINT. Returns once the mount is ready; the\n"
		"daemon logs to CACHE/zero.log. A mount left dead at MOUNTPOINT by a killed\n"
		"daemon is cleaned up first; a live Zero mount there is refused. A new, empty\n"
		"CACHE on a bucket that holds a filesystem restores it from the bucket (the\n"
		"metadata now, the data on demand).\n\n"
		"One read-write mount per filesystem: the mount takes a lease in the bucket\n"
		"and renews it (leaseTimeout, default 60 s); while another mount holds it,\n"
		"this one is refused with the holder's name, unless --force.\n\n"
		"options:\n"
		"  -f, --foreground     stay in the foreground, log to stderr\n"
		"  -o OPTIONS           extra FUSE mount options, comma-separated\n"
		"  --config FILE        configuration file (default ~/.config/zero/config.yml)\n"
		"  --no-writeback-cache each write() goes to the daemon, not the kernel's page\n"
		"                       cache (writebackCache: false): slower small writes, and\n"
		"                       a crash of the daemon loses no written byte (with the\n"
		"                       cache, up to a second of bytes not fsync'ed; zero(1))\n"
		"  --writeback-cache    the kernel caches writes (the default, unless the\n"
		"                       configuration says writebackCache: false)\n"
		"  --at TIME            mount the state of TIME read-only (a new, empty CACHE;\n"
		"                       TIME is 'YYYY-MM-DD HH:MM:SS' local time or @SECONDS)\n"
		"  --checkpoint NAME    mount checkpoint NAME read-only (a new, empty CACHE)\n"
		"  -o sync_upload       fsync returns once the file is in the bucket (syncUpload)\n"
		"  --force              take the lease even from a live mount elsewhere, which\n"
		"                       turns read-only (its later writes lose: use with care)\n"
		"  -d, --debug          log every FUSE request (implies -f)\n"
		"  -h, --help           show this help\n");
}

/*
 * Check MOUNTPOINT. A live Zero mount there is refused: a second one stacked
 * on it would hide it, and its files, while it still runs. A dead one (its
 * daemon killed) is detached first, and so is each dead one under it.
 */
static int check_mountpoint(const char *mnt)
{
	char abs[PATH_MAX], cache[PATH_MAX];
	struct stat st;

	for (int tries = 0;; tries++) {
		bool dead = stat(mnt, &st) < 0 && errno == ENOTCONN;

		if (!dead && realpath(mnt, abs) && mounts_find_zero(abs, cache, sizeof(cache))) {
			if (!mounts_zero_is_dead(cache)) {
				fprintf(stderr,
					"zero: %s is already a Zero mount (cache %s); "
					"unmount it first\n",
					abs, cache);
				return -1;
			}
			dead = true;
		}
		if (!dead)
			break;
		if (tries == 8) {
			fprintf(stderr, "zero: %s: still a dead mount after %d detached\n", mnt,
				tries);
			return -1;
		}
		fprintf(stderr, "zero: %s is a dead mount (daemon killed?); detaching it\n", mnt);
		if (umount2(mnt, MNT_DETACH) < 0) {
			fprintf(stderr, "zero: cannot detach %s: %s\n", mnt, strerror(errno));
			return -1;
		}
		if (geteuid() == 0 && realpath(mnt, abs))
			utab_forget(abs);
	}
	if (stat(mnt, &st) < 0) {
		fprintf(stderr, "zero: mountpoint %s: %s\n", mnt, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "zero: mountpoint %s is not a directory\n", mnt);
		return -1;
	}
	return 0;
}

/* The paths cacheperm_fix() reports: the first few said on the terminal, more in the log. */
struct perm_report {
	bool to_stderr; /* the log goes to a file: say it on the terminal too */
	int count;
};

#define PERM_REPORT_STDERR 10
#define PERM_REPORT_LOG 100

static void report_perm(void *arg, const char *path, mode_t old, mode_t new, int err)
{
	struct perm_report *r = arg;
	char line[PATH_MAX + 256];

	if (++r->count > PERM_REPORT_LOG)
		return;
	if (err == -EXDEV)
		snprintf(line, sizeof(line),
			 "%s, which holds the metadata (sqliteFileLocation), is open to other "
			 "users (mode %04o); Zero leaves it as it is: make it 0700 or move the "
			 "database",
			 path, (unsigned)old);
	else if (err)
		snprintf(line, sizeof(line),
			 "%s is open to other users (mode %04o) and could not be made private: %s",
			 path, (unsigned)old, strerror(-err));
	else
		snprintf(line, sizeof(line),
			 "%s was open to other users (mode %04o); made private (%04o)", path,
			 (unsigned)old, (unsigned)new);
	log_warn("%s", line);
	if (r->to_stderr && r->count <= PERM_REPORT_STDERR)
		fprintf(stderr, "zero: warning: %s\n", line);
}

/* Make the cache private again if its modes were loosened, and say what was changed. */
static void fix_cache_permissions(const char *cache, const char *db, bool to_stderr)
{
	struct perm_report r = {.to_stderr = to_stderr};
	char dbpath[PATH_MAX + 16];
	int n;

	if (!db) {
		snprintf(dbpath, sizeof(dbpath), "%s/meta.db", cache);
		db = dbpath;
	}
	n = cacheperm_fix(cache, db, report_perm, &r);
	if (n < 0) {
		log_warn("cannot check the permissions of %s: %s", cache, strerror(-n));
		if (to_stderr)
			fprintf(stderr, "zero: warning: cannot check the permissions of %s: %s\n",
				cache, strerror(-n));
		return;
	}
	if (n > PERM_REPORT_LOG)
		log_warn("... %d paths in all", n);
	if (to_stderr && n > PERM_REPORT_STDERR)
		fprintf(stderr, "zero: warning: ... %d paths in all (see %s/zero.log)\n", n, cache);
}

/*
 * Detach the daemon's standard streams: input and output from /dev/null,
 * errors into the log, so that what a library or a sanitizer prints is kept.
 */
static void detach_stdio(const char *logpath)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	int log = open(logpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);

	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(log >= 0 ? log : fd, STDERR_FILENO);
		close(fd);
	}
	if (log >= 0)
		close(log);
}

/*
 * Fork; the parent waits for the child's word and exits with it. Returns in
 * the child with *READY_FD set to the pipe to report on.
 */
static int daemonize(int *ready_fd)
{
	int pfd[2];
	pid_t pid;
	char status = 1;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(pfd[1]);
		if (read(pfd[0], &status, 1) != 1)
			status = 1;
		_exit(status);
	}
	close(pfd[0]);
	setsid();
	*ready_fd = pfd[1];
	return 0;
}

/*
 * Take Zero's own option NAME out of the comma-separated OPTS (into BUF):
 * true when it was there. FUSE would refuse an option it does not know.
 */
static bool take_option(const char *opts, const char *name, char *buf, size_t size)
{
	size_t n, o = 0, nl = strlen(name);
	bool found = false;

	buf[0] = '\0';
	for (const char *p = opts; p && *p; p += n + (p[n] == ',')) {
		n = strcspn(p, ",");
		if (n == nl && strncmp(p, name, n) == 0) {
			found = true;
			continue;
		}
		if (n && o + n + 2 < size) {
			if (o)
				buf[o++] = ',';
			memcpy(buf + o, p, n);
			o += n;
			buf[o] = '\0';
		}
	}
	return found;
}

/* -o ro among the FUSE options: a read-only mount, which takes no lease. */
static bool options_read_only(const char *opts)
{
	size_t n;

	for (const char *p = opts; p && *p; p += n + (p[n] == ',')) {
		n = strcspn(p, ",");
		if (n == 2 && strncmp(p, "ro", 2) == 0)
			return true;
	}
	return false;
}

/* The lease was taken by another mount: say so where the user looks. */
static void report_fenced(void *arg)
{
	log_error("%s is read-only from now on: another mount took the lease of its "
		  "filesystem; writes get EROFS and nothing more goes to the bucket (see "
		  "'zero status'); unmount it",
		  (const char *)arg);
}

/* The status line for the metrics endpoint. */
static int status_for_metrics(void *arg, char *buf, size_t size)
{
	return statusline_fs_text(arg, buf, size);
}

static void report_ready(int *ready_fd, char status)
{
	if (*ready_fd < 0)
		return;
	if (write(*ready_fd, &status, 1) != 1)
		log_warn("cannot report readiness to the parent");
	close(*ready_fd);
	*ready_fd = -1;
}

int cli_mount(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"foreground", no_argument, NULL, 'f'},	 {"debug", no_argument, NULL, 'd'},
	    {"config", required_argument, NULL, 'c'},	 {"help", no_argument, NULL, 'h'},
	    {"writeback-cache", no_argument, NULL, 'w'}, {"at", required_argument, NULL, 'A'},
	    {"no-writeback-cache", no_argument, NULL, 'W'},
	    {"checkpoint", required_argument, NULL, 'C'}, {"force", no_argument, NULL, 'F'},
	    {NULL, 0, NULL, 0}};
	struct journal_target target = {0};
	bool restored = false, readonly = false;
	char ro_options[1024], own_options[1024];
	bool sync_upload = false;
	const char *config_path = NULL, *user_options = NULL, *mnt, *cache_arg;
	char cache[PATH_MAX], mnt_abs[PATH_MAX], err[1024] = "", logpath[PATH_MAX + 16];
	bool foreground = false, debug = false, writeback, force = false;
	int writeback_arg = -1; /* --writeback-cache 1, --no-writeback-cache 0, else the config */
	struct config cfg = {0};
	struct fskeys keys = {0};
	char db[PATH_MAX + 16];
	struct objstore *store = NULL;
	struct lease *lease = NULL;
	struct fs *fs = NULL;
	struct fuseops *fo = NULL;
	struct notifier *notifier = NULL;
	struct metrics_endpoint *metrics = NULL;
	int c, lockfd = -1, ready_fd = -1, ret, status = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "fdo:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			foreground = true;
			break;
		case 'd':
			debug = foreground = true;
			break;
		case 'o':
			user_options = optarg;
			break;
		case 'c':
			config_path = optarg;
			break;
		case 'w':
			writeback_arg = 1;
			break;
		case 'W':
			writeback_arg = 0;
			break;
		case 'A':
			if (recover_parse_time(optarg, &target.at_ms)) {
				fprintf(stderr,
					"zero: --at %s: expected 'YYYY-MM-DD HH:MM:SS' or @SECONDS\n",
					optarg);
				return 2;
			}
			readonly = true;
			break;
		case 'C':
			if (!checkpoint_name_valid(optarg)) {
				fprintf(stderr, "zero: --checkpoint %s: not a checkpoint name\n",
					optarg);
				return 2;
			}
			target.checkpoint = optarg;
			readonly = true;
			break;
		case 'F':
			force = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	/* GNU getopt permutes: options may also follow the positional arguments */
	if (argc - optind < 1 || argc - optind > 2) {
		usage(stderr);
		return 2;
	}
	mnt = argv[optind];
	cache_arg = argc - optind > 1 ? argv[optind + 1] : NULL;
	if (user_options && take_option(user_options, "sync_upload", own_options,
					sizeof(own_options))) {
		sync_upload = true;
		user_options = own_options[0] ? own_options : NULL;
	}
	if (readonly && !cache_arg) {
		fprintf(stderr, "zero: --at and --checkpoint mount into a new, empty CACHE: name it\n");
		return 2;
	}
	if (target.at_ms && target.checkpoint) {
		fprintf(stderr, "zero: --at and --checkpoint exclude each other\n");
		return 2;
	}
	/* the cache is for this user alone, and so is all that this process creates */
	umask(077);
	ret = config_load(config_path, &cfg, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "zero: %s\n", err);
		return 1;
	}
	writeback = writeback_arg >= 0 ? writeback_arg == 1 : cfg.writeback_cache;
	if (check_mountpoint(mnt))
		goto out_config;
	if (!realpath(mnt, mnt_abs)) {
		fprintf(stderr, "zero: mountpoint %s: %s\n", mnt, strerror(errno));
		goto out_config;
	}
	if (!cache_arg) {
		if (cachedir_default(cache, sizeof(cache))) {
			fprintf(stderr,
				"zero: no CACHE given and neither XDG_DATA_HOME nor HOME set\n");
			goto out_config;
		}
		cache_arg = cache;
	}
	{
		char abs[PATH_MAX];
		if (cachedir_prepare(cache_arg, abs, sizeof(abs), err, sizeof(err))) {
			fprintf(stderr, "zero: %s\n", err);
			goto out_config;
		}
		snprintf(cache, sizeof(cache), "%s", abs);
	}
	if (strncmp(mnt_abs, cache, strlen(cache)) == 0 &&
	    (mnt_abs[strlen(cache)] == '/' || mnt_abs[strlen(cache)] == '\0')) {
		fprintf(stderr, "zero: the mountpoint %s may not lie inside the cache %s\n",
			mnt_abs, cache);
		goto out_config;
	}
	lockfd = cachedir_lock(cache, err, sizeof(err));
	if (lockfd < 0) {
		fprintf(stderr, "zero: %s\n", err);
		goto out_config;
	}
	snprintf(logpath, sizeof(logpath), "%s/zero.log", cache);
	if (!foreground && log_open_file(logpath) != 0)
		fprintf(stderr, "zero: cannot write log %s; logging to stderr\n", logpath);
	fix_cache_permissions(cache, cfg.sqlite_file_location, !foreground);

	if (cfg.bucket_dir_default) {
		/* the embedded default: a bucket directory of this cache's own */
		char *dir = NULL;
		if (asprintf(&dir, "%s/bucket", cache) < 0) {
			fprintf(stderr, "zero: out of memory\n");
			goto out_unlock;
		}
		free(cfg.bucket_dir);
		cfg.bucket_dir = dir;
	}
	ret = objstore_open_from_config(&cfg, &store, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "zero: %s\n", err);
		goto out_unlock;
	}
	if (cfg.sqlite_file_location)
		snprintf(db, sizeof(db), "%s", cfg.sqlite_file_location);
	else
		snprintf(db, sizeof(db), "%s/meta.db", cache);
	/* before the lease: a wrong passphrase is refused with nothing written */
	ret = fskeys_open(&cfg, store, db, !readonly && !options_read_only(user_options), &keys,
			  err, sizeof(err));
	if (ret) {
		fprintf(stderr, "zero: %s\n", err);
		log_error("%s", err);
		objstore_free(store);
		goto out_unlock;
	}
	/* a read-only mount (-o ro, or a past state) takes no lease and changes nothing */
	if (options_read_only(user_options))
		readonly = true;
	if (!readonly) {
		char id[64];

		ret = cachedir_id(cache, id, sizeof(id), err, sizeof(err));
		if (ret == 0)
			ret = lease_acquire(store, &keys.keys, id, force, cfg.lease_timeout_s, &lease,
					    err, sizeof(err));
		if (ret) {
			fprintf(stderr, "zero: %s\n", err);
			log_error("%s", err);
			objstore_free(store);
			goto out_unlock;
		}
		if (err[0])
			fprintf(stderr, "zero: warning: %s\n", err);
		lease_on_fenced(lease, report_fenced, mnt_abs);
	}
	ret = recover_new_cache(store, &keys.keys, db, &target, true, &restored, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "zero: %s\n", err);
		objstore_free(store);
		goto out_lease; /* the lease goes back, with its reference to the store */
	}
	if (readonly && !options_read_only(user_options)) {
		size_t n = user_options ? strlen(user_options) : 0;
		if (n + 4 > sizeof(ro_options)) {
			fprintf(stderr, "zero: -o: the options are too long\n");
			objstore_free(store);
			goto out_lease;
		}
		if (n) {
			memcpy(ro_options, user_options, n);
			ro_options[n++] = ',';
		}
		memcpy(ro_options + n, "ro", 3);
		user_options = ro_options;
	}
	{
		struct fs_options fopt = {
		    .cache_dir = cache,
		    .db_path = cfg.sqlite_file_location,
		    .store = store, /* fs_new takes it */
		    .target_bytes = cfg.target_disk_usage ? cfg.target_disk_usage
							  : DEFAULT_TARGET_BYTES,
		    .capacity = cfg.capacity,
		    .chunk_size = (uint32_t)cfg.chunk_size,
		    .upload_delay_s = cfg.upload_delay_s,
		    .backpressure_timeout_s = cfg.backpressure_timeout_s,
		    .uploaders = cfg.max_parallel_transfers,
		    .metadata_sync_ms = cfg.metadata_sync_interval_s * 1000,
		    .snapshot_interval_s = cfg.metadata_backup_interval_s,
		    .retention_s = cfg.metadata_retention_s,
		    .restored = restored,
		    .readonly = readonly,
		    .sync_upload = sync_upload || cfg.sync_upload,
		    .writeback_cache = writeback && !readonly,
		    .orphan_safety_age_s = cfg.orphan_safety_age_s,
		    .orphan_sweep_interval_s = cfg.orphan_sweep_interval_s,
		    .lease = lease,
		    .force = force,
		    .keys = &keys.keys,
		    .new_lock = keys.created && keys.keys.sealed ? &keys.lock : NULL,
		};
		ret = fs_new(&fopt, &fs, err, sizeof(err));
	}
	if (ret) {
		fprintf(stderr, "zero: %s\n", err);
		goto out_lease;
	}
	{
		struct fuseops_options mopt = {.fsname = cache,
					       .user_options = user_options,
					       .debug = debug,
					       .writeback_cache = writeback && !readonly,
					       .entry_timeout = 86400.0,
					       .attr_timeout = 86400.0};
		ret = fuseops_mount(fs, mnt_abs, &mopt, &fo, err, sizeof(err));
	}
	if (ret) {
		fprintf(stderr, "zero: %s\n", err);
		goto out_fs;
	}
	/* umount(8) is to run Zero's helper, which waits as zero umount does (root only) */
	if (geteuid() == 0) {
		int r = utab_note_helper(cache, mnt_abs);
		if (r)
			log_debug("cannot note the mount in utab for umount(8): %s", strerror(-r));
	}
	if (!foreground) {
		ret = daemonize(&ready_fd);
		if (ret) {
			fprintf(stderr, "zero: cannot start the daemon: %s\n", strerror(-ret));
			goto out_fuse;
		}
		cachedir_lock_set_pid(lockfd, (long)getpid());
	}
	ret = lease ? lease_start(lease) : 0;
	if (ret) {
		log_error("cannot start renewing the lease: %s", strerror(-ret));
		goto out_fuse;
	}
	ret = fs_start(fs);
	if (ret) {
		log_error("cannot start background work: %s", strerror(-ret));
		goto out_fuse;
	}
	if (cfg.metrics_listen) {
		/* a port that cannot be had costs the metrics, not the mount */
		metrics = metrics_endpoint_start(cfg.metrics_listen, status_for_metrics, fs, err,
						 sizeof(err));
		if (!metrics) {
			log_warn("%s", err);
			fprintf(stderr, "zero: warning: %s\n", err);
		}
	}
	log_info("zero %s: mounted %s at %s (pid %ld)", ZERO_VERSION, cache, mnt_abs,
		 (long)getpid());
	{
		/* name the program as it can be run again, on PATH or not */
		char self[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		self[n > 0 ? n : 0] = '\0';
		printf("zero: mounted at %s (cache %s)\nunmount with: %s umount %s\n", mnt_abs,
		       cache, n > 0 ? self : "zero", mnt_abs);
	}
	fflush(stdout);
	if (!foreground)
		detach_stdio(logpath);
	report_ready(&ready_fd, 0);
	notifier = notify_ready(fs, mnt_abs);
	ret = fuseops_run(fo);
	if (ret)
		log_error("FUSE session ended with an error: %s", strerror(-ret));
	status = ret ? 1 : 0;
	notify_stopping(notifier);
	metrics_endpoint_stop(metrics);
out_fuse:
	fuseops_free(fo);
	if (geteuid() == 0)
		utab_forget(mnt_abs);
out_fs:
	ret = fs_free(fs);
	if (ret) {
		log_error("unclean stop: %s", strerror(-ret));
		status = 1;
	} else {
		log_info("unmounted %s cleanly", mnt_abs);
	}
out_lease:
	/* after fs_free: the last uploads went out under the lease */
	lease_release(lease);
out_unlock:
	/*
	 * lockfd stays open: the lock is released when this process is gone,
	 * so `zero umount` returns only after the daemon has fully exited.
	 */
	(void)lockfd;
out_config:
	fskeys_release(&keys);
	config_release(&cfg);
	report_ready(&ready_fd, (char)status);
	return status;
}
