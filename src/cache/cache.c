/*
 * cache.c - sparse cache files under CACHE/data, addressed by inode number.
 *
 * All paths are resolved relative to one directory descriptor held open for
 * the cache's lifetime, so no path is ever rebuilt from strings.
 *
 * Spares: a removed cache file is emptied and kept as data/.s<K>, and the
 * next new cache file is a spare renamed, up to SPARES_MAX of them. ext4
 * without a journal does not reuse an inode freed in the last minute or
 * more: it looks at every such one in the directory's block group first,
 * so after thousands of deletions each new file cost a scan (160 us a file
 * on this project's machine, against 13 us on a quiet group). A spare is a
 * rename, in the same directory. The spares are a stack, .s0 to
 * .s<spares-1>, under spare_lock; each step is one rename, so a crash leaves
 * either the spare or the file. At open they are counted from .s0 up.
 * Names beginning with '.' are not cache files: the walk skips them.
 */
#include "cache/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define SPARES_MAX 4096

struct cache {
	int data_fd; /* CACHE/data, O_PATH-less directory fd; immutable after open */
	pthread_mutex_t spare_lock;
	unsigned spares; /* .s0 to .s<spares-1> */
};

static void spare_name(unsigned k, char *buf, size_t size)
{
	snprintf(buf, size, ".s%u", k);
}

static bool exists(int dfd, const char *name)
{
	struct stat st;

	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

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
	pthread_mutex_init(&c->spare_lock, NULL);
	for (char name[32];; c->spares++) {
		spare_name(c->spares, name, sizeof(name));
		if (!exists(c->data_fd, name))
			break;
	}
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
	pthread_mutex_destroy(&c->spare_lock);
	free(c);
}

static void ino_name(uint64_t ino, char *buf, size_t size)
{
	snprintf(buf, size, "%" PRIu64, ino);
}

/* Give NAME the newest spare, if any (it is empty); a NAME that exists stays. */
static void spare_take(struct cache *c, const char *name)
{
	char spare[32];

	pthread_mutex_lock(&c->spare_lock);
	if (c->spares > 0) {
		spare_name(c->spares - 1, spare, sizeof(spare));
		if (renameat2(c->data_fd, spare, c->data_fd, name, RENAME_NOREPLACE) == 0 ||
		    errno == ENOENT)
			c->spares--; /* taken, or gone from under us */
	}
	pthread_mutex_unlock(&c->spare_lock);
}

/* Empty NAME and keep it as a spare; false if the pool is full or that failed. */
static bool spare_keep(struct cache *c, const char *name)
{
	char spare[32];
	bool kept = false;
	int fd;

	pthread_mutex_lock(&c->spare_lock);
	if (c->spares >= SPARES_MAX)
		goto out;
	fd = openat(c->data_fd, name, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		goto out;
	close(fd);
	spare_name(c->spares, spare, sizeof(spare));
	kept = renameat2(c->data_fd, name, c->data_fd, spare, RENAME_NOREPLACE) == 0;
	if (kept)
		c->spares++;
out:
	pthread_mutex_unlock(&c->spare_lock);
	return kept;
}

int cache_file_open(struct cache *c, uint64_t ino, bool create)
{
	char name[32];
	int fd;

	ino_name(ino, name, sizeof(name));
	fd = openat(c->data_fd, name, O_RDWR | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT || !create)
		return fd < 0 ? -errno : fd;
	spare_take(c, name);
	fd = openat(c->data_fd, name, O_RDWR | O_CLOEXEC | O_CREAT, 0600);
	return fd < 0 ? -errno : fd;
}

int cache_file_remove(struct cache *c, uint64_t ino)
{
	char name[32];

	ino_name(ino, name, sizeof(name));
	if (spare_keep(c, name))
		return 0;
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
