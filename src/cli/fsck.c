/*
 * fsck.c - `zero fsck`: check the metadata of a cache that is not mounted
 * and, with --objects / --verify, its objects in the bucket
 * (fsck_objects.c). The cache lock is held throughout, so no mount runs
 * meanwhile. Exit status 0 only when nothing is wrong or all was repaired.
 */
#include "cli/cachedir.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "cli/fsck_objects.h"
#include "cli/fskeys.h"
#include "meta/meta.h"
#include "store/objstore.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *out)
{
	fprintf(out, "usage: zero fsck [CACHE] [--objects | --verify] [--repair] [--config FILE]\n\n"
		     "Check the metadata of the Zero cache CACHE (default $XDG_DATA_HOME/zero),\n"
		     "which must not be mounted, and with --objects or --verify its objects in\n"
		     "the bucket. Every missing or damaged object is named with the files (path,\n"
		     "chunk, bytes) whose data it holds. Exit status 0: consistent (or repaired);\n"
		     "1: problems remain; 2: usage.\n\n"
		     "options:\n"
		     "  --objects      list the bucket's chunk objects (one LIST per 1000) and check\n"
		     "                 that every object a file references is there, with its size;\n"
		     "                 report orphans: objects no file references (uploads a crash\n"
		     "                 kept from being recorded)\n"
		     "  --verify       as --objects, and download every referenced object and verify\n"
		     "                 it (checksum, length, content id); progress on a terminal\n"
		     "  --repair       fix the metadata problems found; with --objects or --verify\n"
		     "                 also delete orphans older than orphanSafetyAge (default 1 day)\n"
		     "  --config FILE  configuration file (the bucket, sqliteFileLocation,\n"
		     "                 orphanSafetyAge)\n"
		     "  -h, --help     show this help\n");
}

static void print_problem(void *arg, const char *problem)
{
	(void)arg;
	printf("  %s\n", problem);
}

int cli_fsck(int argc, char **argv)
{
	const char *arg = NULL, *config_path = NULL;
	char cache[PATH_MAX], abs[PATH_MAX], db[PATH_MAX + 16], err[1024];
	struct config cfg = {0};
	struct meta *m = NULL;
	struct objstore *store = NULL;
	struct fsck_objects_opts oopt = {0};
	struct fskeys keys = {0};
	struct fsck_objects_result ores = {0};
	bool repair = false, objects = false, verify = false, meta_ok = false;
	int lockfd, ret, status = 1;

	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--repair") == 0) {
			repair = true;
		} else if (strcmp(argv[i], "--objects") == 0) {
			objects = true;
		} else if (strcmp(argv[i], "--verify") == 0) {
			objects = verify = true;
		} else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config_path = argv[++i];
		} else if (argv[i][0] == '-' || arg) {
			usage(stderr);
			return 2;
		} else {
			arg = argv[i];
		}
	}
	umask(077); /* the lock and the database's -wal and -shm are the user's alone */
	if (config_load(config_path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "zero: %s\n", err);
		return 1;
	}
	if (!arg) {
		if (cachedir_default(cache, sizeof(cache))) {
			fprintf(stderr,
				"zero: no CACHE given and neither XDG_DATA_HOME nor HOME set\n");
			goto out_config;
		}
		arg = cache;
	}
	if (!realpath(arg, abs)) {
		fprintf(stderr, "zero: cache %s: %s\n", arg, strerror(errno));
		goto out_config;
	}
	snprintf(db, sizeof(db), "%s/zero.cache", abs);
	if (access(db, F_OK) != 0) {
		fprintf(stderr, "zero: %s is not a Zero cache\n", abs);
		goto out_config;
	}
	lockfd = cachedir_lock(abs, err, sizeof(err));
	if (lockfd < 0) {
		fprintf(stderr, "zero: %s\n", err);
		goto out_config;
	}
	if (cfg.sqlite_file_location)
		snprintf(db, sizeof(db), "%s", cfg.sqlite_file_location);
	else
		snprintf(db, sizeof(db), "%s/meta.db", abs);
	ret = meta_open(db, 4u << 20, getuid(), getgid(), &m);
	if (ret) {
		fprintf(stderr, "zero: cannot open metadata %s: %s\n", db, strerror(-ret));
		goto out_unlock;
	}
	printf("checking %s\n", db);
	ret = meta_check(m, repair, print_problem, NULL);
	if (ret < 0) {
		fprintf(stderr, "zero: check failed: %s\n", strerror(-ret));
	} else if (ret == 0) {
		printf("consistent\n");
		meta_ok = true;
	} else if (repair) {
		printf("%d problems found and repaired\n", ret);
		meta_ok = true;
	} else {
		printf("%d problems found; run with --repair to fix them\n", ret);
	}
	status = meta_ok ? 0 : 1;
	if (ret < 0 || !objects)
		goto out_meta;

	if (cfg.bucket_dir_default) {
		/* the embedded default: the cache's own bucket directory, as zero mount */
		char *dir = NULL;
		if (asprintf(&dir, "%s/bucket", abs) < 0) {
			fprintf(stderr, "zero: out of memory\n");
			status = 1;
			goto out_meta;
		}
		free(cfg.bucket_dir);
		cfg.bucket_dir = dir;
	}
	ret = objstore_open_from_config(&cfg, &store, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "zero: %s\n", err);
		status = 1;
		goto out_meta;
	}
	if (verify) {
		/* reading objects takes the filesystem's keys (a passphrase if encrypted) */
		ret = fskeys_open(&cfg, store, db, false, &keys, err, sizeof(err));
		if (ret) {
			fprintf(stderr, "zero: %s\n", err);
			status = 1;
			objstore_free(store);
			goto out_meta;
		}
		oopt.keys = &keys.keys;
	}
	oopt.verify = verify;
	oopt.repair = repair;
	oopt.safety_age_s = cfg.orphan_safety_age_s;
	ret = fsck_objects(m, store, &oopt, &ores);
	/* an orphan younger than the safety age is kept, and no problem */
	if (ret || ores.damaged || ores.orphans_deleted < ores.orphans_old)
		status = 1;
	objstore_free(store);
out_meta:
	meta_close(m);
out_unlock:
	close(lockfd);
out_config:
	fskeys_release(&keys);
	config_release(&cfg);
	return status;
}
