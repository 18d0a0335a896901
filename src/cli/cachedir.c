/*
 * cachedir.c - locating, marking and locking cache directories.
 */
#include "cli/cachedir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MARKER "zero.cache"
#define CACHE_ID "cache.id"
#define CACHE_ID_BYTES 16

int cachedir_default(char *buf, size_t size)
{
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	int n;

	if (xdg && *xdg == '/')
		n = snprintf(buf, size, "%s/zero", xdg);
	else if (home && *home)
		n = snprintf(buf, size, "%s/.local/share/zero", home);
	else
		return -ENOENT;
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* mkdir -p */
static int mkdir_parents(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* 1 when DIR has no entries, 0 when it has, -errno on error. */
static int dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int empty = 1;

	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			empty = 0;
			break;
		}
	}
	closedir(d);
	return empty;
}

int cachedir_prepare(const char *dir, char *abs, size_t abssize, char *err, size_t errlen)
{
	char marker[PATH_MAX + 16];
	struct stat st;
	int ret, fd;

	if (stat(dir, &st) < 0) {
		if (errno != ENOENT) {
			ret = -errno;
			snprintf(err, errlen, "cache directory %s: %s", dir, strerror(errno));
			return ret;
		}
		ret = mkdir_parents(dir, 0700);
		if (ret) {
			snprintf(err, errlen, "cannot create cache directory %s: %s", dir,
				 strerror(-ret));
			return ret;
		}
	} else if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "cache %s is not a directory", dir);
		return -ENOTDIR;
	}
	if (!realpath(dir, abs) || strlen(abs) >= abssize) {
		ret = -errno;
		snprintf(err, errlen, "cache directory %s: %s", dir, strerror(errno));
		return ret;
	}
	snprintf(marker, sizeof(marker), "%s/" MARKER, abs);
	if (access(marker, F_OK) == 0)
		return 0;
	ret = dir_is_empty(abs);
	if (ret < 0) {
		snprintf(err, errlen, "cannot read cache directory %s: %s", abs, strerror(-ret));
		return ret;
	}
	if (ret == 0) {
		snprintf(err, errlen,
			 "%s is not a Zero cache (it has files but no %s); "
			 "give an empty or new directory",
			 abs, MARKER);
		return -EINVAL;
	}
	/* a new cache, even in a directory made by hand: for its user alone (cacheperm.h) */
	if (stat(abs, &st) == 0 && (st.st_mode & 077) && chmod(abs, st.st_mode & 07700) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot make %s private: %s", abs, strerror(errno));
		return ret;
	}
	fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot write %s: %s", marker, strerror(errno));
		return ret;
	}
	dprintf(fd, "zero cache, format 1\n");
	close(fd);
	return 0;
}

int cachedir_lock(const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX + 8], pid[32] = "";
	int fd, ret;

	snprintf(path, sizeof(path), "%s/lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return ret;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ret = -errno;
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (ret == -EWOULDBLOCK)
			snprintf(err, errlen,
				 "cache %s is in use by another zero process%s%s "
				 "(one mount per cache; unmount it first)",
				 dir, *pid ? ", pid " : "", pid);
		else
			snprintf(err, errlen, "cannot lock %s: %s", path, strerror(-ret));
		close(fd);
		return ret;
	}
	cachedir_lock_set_pid(fd, (long)getpid());
	return fd;
}

void cachedir_lock_set_pid(int lockfd, long pid)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", pid);

	if (ftruncate(lockfd, 0) == 0 && pwrite(lockfd, buf, (size_t)n, 0) == n)
		return;
}

bool cachedir_wait_unlocked(const char *dir, int timeout_s)
{
	char path[PATH_MAX + 8];
	struct timespec delay = {0, 20 * 1000 * 1000};
	int fd;

	snprintf(path, sizeof(path), "%s/lock", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	for (int i = 0;; i++) {
		if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
			close(fd);
			return true;
		}
		if (i >= timeout_s * 50)
			break;
		nanosleep(&delay, NULL);
	}
	close(fd);
	return false;
}

/* True when ID is CACHE_ID_BYTES bytes in lower-case hex. */
static bool cache_id_valid(const char *id)
{
	size_t n = strspn(id, "0123456789abcdef");

	return n == 2 * CACHE_ID_BYTES && id[n] == '\0';
}

int cachedir_id(const char *dir, char *buf, size_t size, char *err, size_t errlen)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 24], id[2 * CACHE_ID_BYTES + 2] = "";
	unsigned char raw[CACHE_ID_BYTES];
	ssize_t n;
	int fd, ret;

	if (size < sizeof(id))
		return -ENAMETOOLONG;
	snprintf(path, sizeof(path), "%s/" CACHE_ID, dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, id, sizeof(id) - 1);
		close(fd);
		id[n > 0 ? n : 0] = '\0';
		id[strcspn(id, "\n")] = '\0';
		if (cache_id_valid(id)) {
			snprintf(buf, size, "%s", id);
			return 0;
		}
		snprintf(err, errlen, "%s is damaged (not a cache id); remove it to make a new one",
			 path);
		return -EUCLEAN;
	}
	if (errno != ENOENT) {
		ret = -errno;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return ret;
	}
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		snprintf(err, errlen, "cannot make a cache id: no random bytes");
		return -EIO;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(id + 2 * i, 3, "%02x", raw[i]);
	/* written whole or not at all: a new file renamed into place */
	snprintf(tmp, sizeof(tmp), "%s/" CACHE_ID ".new", dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		return ret;
	}
	ret = dprintf(fd, "%s\n", id) < 0 || fsync(fd) < 0 ? -errno : 0;
	close(fd);
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret) {
		unlink(tmp);
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(-ret));
		return ret;
	}
	snprintf(buf, size, "%s", id);
	return 0;
}
