/*
 * cacheperm.c - taking away what other users were given in a cache directory.
 *
 * Rules:
 *  1. Only group and other permission bits are removed; the owner's stay.
 *  2. A directory is made private before what is in it is looked at, and
 *     what is in it is looked at only when it was open (or it is the cache
 *     itself, whose few entries are always checked): nobody else reaches
 *     anything below a private directory.
 *  3. Nothing is reached through a symbolic link: entries are opened with
 *     O_NOFOLLOW (files as O_PATH, which opens nothing), checked with
 *     fstat, and changed through that descriptor.
 */
#include "cli/cacheperm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 32 /* the embedded bucket is four deep */

struct walk {
	cacheperm_report_cb report;
	void *arg;
	int count; /* paths reported */
};

/* Take group and other bits off FD (at PATH, of type and mode ST); true when it had any. */
static bool tighten(struct walk *w, int fd, bool is_path_fd, const struct stat *st,
		    const char *path)
{
	mode_t old = st->st_mode & 07777, new = old & ~(mode_t)077;
	int err = 0;

	if (old == new)
		return false;
	if (is_path_fd) {
		/* fchmod() takes no O_PATH descriptor; its /proc link names the same file */
		char proc[64];

		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (chmod(proc, new) < 0)
			err = -errno;
	} else if (fchmod(fd, new) < 0) {
		err = -errno;
	}
	w->count++;
	w->report(w->arg, path, old, err ? old : new, err);
	return true;
}

static void fix_file_at(struct walk *w, int dfd, const char *name, const char *path)
{
	int fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return; /* gone meanwhile (the -wal of a closing database) */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		tighten(w, fd, true, &st, path);
	close(fd);
}

static void fix_dir(struct walk *w, int dfd, const char *path, bool always, int depth);

/* The entries of directory D (at PATH) of type DIRS (directories, or else files). */
static void fix_entries(struct walk *w, DIR *d, const char *path, bool dirs, int depth)
{
	struct dirent *de;

	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		char *child;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    S_ISDIR(st.st_mode) != dirs || !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)))
			continue;
		if (!S_ISDIR(st.st_mode) && !(st.st_mode & 077))
			continue;
		if (asprintf(&child, "%s/%s", path, de->d_name) < 0)
			continue;
		if (dirs) {
			int fd = openat(dirfd(d), de->d_name,
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0)
				fix_dir(w, fd, child, false, depth + 1);
		} else {
			fix_file_at(w, dirfd(d), de->d_name, child);
		}
		free(child);
	}
}

/* Directory DFD (at PATH; takes the descriptor) and, when it was open or ALWAYS, its entries. */
static void fix_dir(struct walk *w, int dfd, const char *path, bool always, int depth)
{
	struct stat st;
	DIR *d;

	if (fstat(dfd, &st) < 0 || (!tighten(w, dfd, false, &st, path) && !always) ||
	    depth > MAX_DEPTH) {
		close(dfd);
		return;
	}
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	/* files first: the cache's own (meta.db, zero.log, ...) come before the data below */
	fix_entries(w, d, path, false, depth);
	fix_entries(w, d, path, true, depth);
	closedir(d);
}

/* DB and its -wal and -shm; its directory, when it is not in the cache, is only looked at. */
static void fix_db(struct walk *w, const char *cache, const char *db)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	size_t clen = strlen(cache);
	char *dir = strdup(db), *slash;
	struct stat st;
	int dfd;

	if (!dir)
		return;
	slash = strrchr(dir, '/');
	if (!slash)
		goto out_free;
	*slash = '\0';
	dfd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		goto out_free;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char *name, *path;

		if (asprintf(&name, "%s%s", slash + 1, suffixes[i]) < 0)
			continue;
		if (asprintf(&path, "%s/%s", *dir ? dir : "", name) >= 0) {
			fix_file_at(w, dfd, name, path);
			free(path);
		}
		free(name);
	}
	bool in_cache = strncmp(dir, cache, clen) == 0 && (dir[clen] == '\0' || dir[clen] == '/');
	if (!in_cache && fstat(dfd, &st) == 0 && (st.st_mode & 066)) {
		/* someone else's, or the user's own for more than Zero: only said */
		w->count++;
		w->report(w->arg, *dir ? dir : "/", st.st_mode & 07777, st.st_mode & 07777, -EXDEV);
	}
	close(dfd);
out_free:
	free(dir);
}

int cacheperm_fix(const char *cache, const char *db, cacheperm_report_cb report, void *arg)
{
	struct walk w = {.report = report, .arg = arg};
	int dfd = open(cache, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (dfd < 0)
		return -errno;
	fix_dir(&w, dfd, cache, true, 0);
	if (db)
		fix_db(&w, cache, db);
	return w.count;
}
