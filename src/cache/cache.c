/*
 * cache.c - sparse cache files under CACHE/data, addressed by inode number.
 *
 * All paths are resolved relative to one directory descriptor held open for
 * the cache's lifetime, so no path is ever rebuilt from strings.
 */
#include "cache/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>

struct cache {
	int data_fd; /* CACHE/data, O_PATH-less directory fd; immutable after open */
};

int cache_open(const char *dir, struct cache **out)
{
	struct cache *c;
	int dfd, ret;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (mkdirat(dfd, "data", 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		goto out_close_dir;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		ret = -ENOMEM;
		goto out_close_dir;
	}
	c->data_fd = openat(dfd, "data", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->data_fd < 0) {
		ret = -errno;
		free(c);
		goto out_close_dir;
	}
	close(dfd);
	*out = c;
	return 0;

out_close_dir:
	close(dfd);
	return ret;
}

void cache_close(struct cache *c)
{
	if (!c)
		return;
	close(c->data_fd);
	free(c);
}

static void ino_name(uint64_t ino, char *buf, size_t size)
{
	snprintf(buf, size, "%" PRIu64, ino);
}

int cache_file_open(struct cache *c, uint64_t ino, bool create)
{
	char name[32];
	int fd;

	ino_name(ino, name, sizeof(name));
	fd = openat(c->data_fd, name, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	return fd < 0 ? -errno : fd;
}

int cache_file_remove(struct cache *c, uint64_t ino)
{
	char name[32];

	ino_name(ino, name, sizeof(name));
	if (unlinkat(c->data_fd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int cache_file_stat(struct cache *c, uint64_t ino, struct stat *st)
{
	char name[32];

	ino_name(ino, name, sizeof(name));
	return fstatat(c->data_fd, name, st, 0) < 0 ? -errno : 0;
}

int cache_file_truncate(struct cache *c, uint64_t ino, uint64_t size)
{
	int fd = cache_file_open(c, ino, false), ret = 0;

	if (fd < 0)
		return fd;
	if (ftruncate(fd, (off_t)size) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* Walk data/ and call CB with each file's inode number. */
static int cache_walk(struct cache *c, int (*cb)(void *arg, uint64_t ino, const struct stat *st),
		      void *arg)
{
	int fd = openat(c->data_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;
	int ret = 0;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		char *end;
		struct stat st;
		uint64_t ino = strtoull(de->d_name, &end, 10);

		if (de->d_name[0] == '.' || *end != '\0')
			continue;
		if (fstatat(c->data_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		ret = cb(arg, ino, &st);
		if (ret)
			break;
	}
	closedir(d);
	return ret;
}

struct list_arg {
	int (*cb)(void *arg, uint64_t ino);
	void *arg;
};

static int list_one(void *arg, uint64_t ino, const struct stat *st)
{
	struct list_arg *la = arg;

	(void)st;
	return la->cb(la->arg, ino);
}

int cache_file_list(struct cache *c, int (*cb)(void *arg, uint64_t ino), void *arg)
{
	struct list_arg la = {cb, arg};

	return cache_walk(c, list_one, &la);
}

static int usage_one(void *arg, uint64_t ino, const struct stat *st)
{
	(void)ino;
	*(uint64_t *)arg += (uint64_t)st->st_blocks * 512;
	return 0;
}

int cache_usage(struct cache *c, uint64_t *bytes)
{
	*bytes = 0;
	return cache_walk(c, usage_one, bytes);
}

int cache_statvfs(struct cache *c, struct statvfs *out)
{
	return fstatvfs(c->data_fd, out) < 0 ? -errno : 0;
}
