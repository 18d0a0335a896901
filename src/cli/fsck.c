/*
 * fsck.c - `zero fsck`: check the metadata of a cache that is not mounted.
 */
#include "cli/cachedir.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "meta/meta.h"

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
	fprintf(out, "usage: zero fsck [CACHE] [--repair] [--config FILE]\n\n"
		     "Check the metadata of the Zero cache CACHE (default $XDG_DATA_HOME/zero),\n"
		     "which must not be mounted. Exit status 0: consistent (or repaired);\n"
		     "1: problems remain; 2: usage.\n\n"
		     "options:\n"
		     "  --repair       fix what is found\n"
		     "  --config FILE  configuration file (for sqliteFileLocation)\n"
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
	bool repair = false;
	int lockfd, ret, status = 1;

	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--repair") == 0) {
			repair = true;
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
		status = 0;
	} else if (repair) {
		printf("%d problems found and repaired\n", ret);
		status = 0;
	} else {
		printf("%d problems found; run with --repair to fix them\n", ret);
	}
	meta_close(m);
out_unlock:
	close(lockfd);
out_config:
	config_release(&cfg);
	return status;
}
