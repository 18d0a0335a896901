/*
 * umount.c - `zero umount`: unmount and wait until the daemon has saved
 * everything and let go of its cache.
 */
#include "cli/cachedir.h"
#include "cli/mounts.h"
#include "cli/utab.h"
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define UMOUNT_WAIT_S 120

static void usage(FILE *out)
{
	fprintf(out, "usage: zero umount MOUNTPOINT [-l]\n\n"
		     "Unmount the Zero filesystem at MOUNTPOINT and wait until its daemon has\n"
		     "written everything down and exited. A dead mount (killed daemon) is\n"
		     "detached.\n\n"
		     "options:\n"
		     "  -l, --lazy   detach now even if the filesystem is busy\n"
		     "  -h, --help   show this help\n");
}

/*
 * umount2(), tried again for a moment while busy: the daemon opens the
 * mountpoint for an instant each second while files are open for writing
 * (fuse/writeback.h), and a file closed just before has its release still
 * on the way.
 */
static int unmount_retrying(const char *mnt, bool lazy)
{
	for (int tries = 0;; tries++) {
		if (umount2(mnt, lazy ? MNT_DETACH : 0) == 0)
			return 0;
		if (errno != EBUSY || tries == 20)
			return -1;
		usleep(50 * 1000);
	}
}

static int run_fusermount(const char *mnt, bool lazy)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", lazy ? "-uz" : "-u", "--", mnt, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Make PATH absolute without resolving it (a dead mount cannot be resolved). */
static void absolute(const char *path, char *out, size_t size)
{
	char cwd[PATH_MAX];
	size_t n;

	if (realpath(path, out))
		return;
	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		cwd[0] = '\0';
	if (snprintf(out, size, "%s%s%s", cwd, *cwd ? "/" : "", path) >= (int)size)
		out[size - 1] = '\0';
	n = strlen(out);
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
}

int cli_umount(int argc, char **argv)
{
	char mnt[PATH_MAX], cache[PATH_MAX];
	const char *arg = NULL;
	struct stat st;
	bool lazy = false;

	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "-l") == 0 || strcmp(argv[i], "--lazy") == 0) {
			lazy = true;
		} else if (argv[i][0] == '-' || arg) {
			usage(stderr);
			return 2;
		} else {
			arg = argv[i];
		}
	}
	if (!arg) {
		usage(stderr);
		return 2;
	}
	absolute(arg, mnt, sizeof(mnt));
	if (!mounts_find_zero(mnt, cache, sizeof(cache))) {
		fprintf(stderr, "zero: %s is not a Zero mount\n", mnt);
		return 1;
	}
	/* a mount whose daemon died cannot be used by anyone: detach it whatever is open */
	if (mounts_zero_is_dead(cache) || (stat(mnt, &st) < 0 && errno == ENOTCONN)) {
		fprintf(stderr, "zero: %s is a dead mount (daemon killed?); detaching it\n", mnt);
		lazy = true;
	}
	if (unmount_retrying(mnt, lazy) < 0) {
		int err = errno;
		if (err == EBUSY) {
			fprintf(stderr,
				"zero: %s is busy (files open or a process inside it); "
				"close them or use --lazy\n",
				mnt);
			return 1;
		}
		if (err != EPERM || run_fusermount(mnt, lazy) != 0) {
			fprintf(stderr, "zero: cannot unmount %s: %s\n", mnt, strerror(err));
			return 1;
		}
	}
	/* umount(8)'s note of the mount goes with it (a killed daemon left it) */
	if (geteuid() == 0)
		utab_forget(mnt);
	if (!cachedir_wait_unlocked(cache, UMOUNT_WAIT_S)) {
		fprintf(stderr, "zero: unmounted %s, but its daemon still holds %s after %d s\n",
			mnt, cache, UMOUNT_WAIT_S);
		return 1;
	}
	return 0;
}
