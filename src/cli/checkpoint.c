/*
 * checkpoint.c - `zero checkpoint create|list|delete`: named states of a
 * mounted filesystem, through the mount's user.zero.checkpoint.* attributes
 * (src/journal/checkpoint.c does the work in the daemon).
 */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>

static void usage(FILE *out)
{
	fprintf(out,
		"usage: zero checkpoint create NAME [PATH]\n"
		"       zero checkpoint delete NAME [PATH]\n"
		"       zero checkpoint list [PATH]\n\n"
		"Name the current state of the Zero filesystem mounted at PATH (default: the\n"
		"one Zero mount). Everything a checkpoint names is kept in the bucket until it\n"
		"is deleted; mount it read-only with `zero mount --checkpoint NAME MNT NEWCACHE`.\n"
		"NAME: 1 to 100 letters, digits, '.', '_' or '-', not starting with '.'.\n");
}

int cli_checkpoint(int argc, char **argv)
{
	char mnt[PATH_MAX], buf[65536];
	const char *op, *name = NULL, *path = NULL;
	struct stat st;
	ssize_t n;

	if (argc < 2 || cli_is_help(argv[1])) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	op = argv[1];
	if (strcmp(op, "list") == 0) {
		if (argc > 3) {
			usage(stderr);
			return 2;
		}
		path = argc == 3 ? argv[2] : NULL;
	} else if (strcmp(op, "create") == 0 || strcmp(op, "delete") == 0) {
		if (argc < 3 || argc > 4) {
			usage(stderr);
			return 2;
		}
		name = argv[2];
		path = argc == 4 ? argv[3] : NULL;
	} else {
		fprintf(stderr, "zero checkpoint: unknown action '%s'\n", op);
		usage(stderr);
		return 2;
	}
	if (!path) {
		if (zero_mount_only(mnt, sizeof(mnt)))
			return 1;
		path = mnt;
	}
	if (check_on_zero(path, &st))
		return 1;
	if (name) {
		char attr[64];
		snprintf(attr, sizeof(attr), "user.zero.checkpoint.%s", op);
		if (setxattr(path, attr, name, strlen(name), 0) < 0) {
			int e = errno;
			fprintf(stderr, "zero: checkpoint %s %s: %s\n", op, name,
				e == EEXIST   ? "a checkpoint of that name exists"
				: e == ENOENT ? "no such checkpoint"
				: e == EINVAL ? "not a checkpoint name (1 to 100 of A-Z a-z 0-9 . _ -)"
				: e == EROFS  ? "the mount is read-only (a past state, or fenced)"
					      : strerror(e));
			return 1;
		}
		printf("checkpoint %s: %s\n", name, strcmp(op, "create") == 0 ? "created" : "deleted");
		return 0;
	}
	n = getxattr(path, "user.zero.checkpoints", buf, sizeof(buf) - 1);
	if (n < 0) {
		fprintf(stderr, "zero: checkpoint list: %s\n", strerror(errno));
		return 1;
	}
	buf[n] = '\0';
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char cname[128], when[32];
		long long created;
		unsigned long long objects;
		if (sscanf(line, "%127s %lld %llu", cname, &created, &objects) != 3)
			continue;
		time_t t = (time_t)created;
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		printf("%-24s %s  %llu objects kept\n", cname, when, objects);
	}
	return 0;
}
