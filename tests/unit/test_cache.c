/* test_cache.c - unit tests of the cache files (cache/cache.c), spares above all. */
#include "cache/cache.h"
#include "../unit/test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[] = "/tmp/zero-cache-test-XXXXXX";

static int data_fd(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/data", root);
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static bool data_has(const char *name)
{
	struct stat st;
	int dfd = data_fd();
	bool found = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;

	close(dfd);
	return found;
}

/* A cache file with LEN bytes of 'x' for INO; its inode number on the disk. */
static ino_t make_file(struct cache *c, uint64_t ino, size_t len)
{
	char buf[8192];
	struct stat st;
	int fd = cache_file_open(c, ino, true);

	TEST_ASSERT(fd >= 0);
	if (fd < 0)
		return 0;
	memset(buf, 'x', sizeof(buf));
	TEST_ASSERT_EQ_INT(pwrite(fd, buf, len, 0), (long long)len);
	TEST_ASSERT_EQ_INT(fstat(fd, &st), 0);
	close(fd);
	return st.st_ino;
}

static int count_cb(void *arg, uint64_t ino)
{
	(void)ino;
	(*(int *)arg)++;
	return 0;
}

/*
 * A removed cache file is gone by its name at once, and its disk inode,
 * emptied, is the next new cache file: no byte of the old file in it.
 */
static void test_removed_file_is_the_next_new_one_empty(void)
{
	struct cache *c;
	struct stat st;
	ino_t old;
	int fd, n = 0;
	uint64_t used = 1;

	TEST_ASSERT_EQ_INT(cache_open(root, &c), 0);
	old = make_file(c, 10, 8192);
	TEST_ASSERT_EQ_INT(cache_file_remove(c, 10), 0);
	TEST_ASSERT(!data_has("10"));
	TEST_ASSERT_EQ_INT(cache_file_open(c, 10, false), -ENOENT);
	TEST_ASSERT_EQ_INT(cache_file_stat(c, 10, &st), -ENOENT);
	/* the spare is not a cache file: not listed, not counted */
	TEST_ASSERT_EQ_INT(cache_file_list(c, count_cb, &n), 0);
	TEST_ASSERT_EQ_INT(n, 0);
	TEST_ASSERT_EQ_INT(cache_usage(c, &used), 0);
	TEST_ASSERT_EQ_INT(used, 0);

	fd = cache_file_open(c, 11, true);
	TEST_ASSERT(fd >= 0);
	TEST_ASSERT_EQ_INT(fstat(fd, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_ino, old);
	TEST_ASSERT_EQ_INT(st.st_size, 0);
	TEST_ASSERT_EQ_INT(st.st_blocks, 0);
	close(fd);
	TEST_ASSERT(data_has("11"));
	TEST_ASSERT(!data_has(".s0"));
	TEST_ASSERT_EQ_INT(cache_file_remove(c, 11), 0);
	TEST_ASSERT_EQ_INT(cache_file_remove(c, 11), 0); /* missing: not an error */
	cache_close(c);
}

/* Spares outlive the cache's close: counted again at open, taken newest first. */
static void test_spares_are_kept_across_opens(void)
{
	struct cache *c;
	struct stat st;
	ino_t a, b, d;
	int fd;

	TEST_ASSERT_EQ_INT(cache_open(root, &c), 0);
	TEST_ASSERT(data_has(".s0")); /* left by the test before */
	a = make_file(c, 20, 100);    /* takes it */
	TEST_ASSERT(!data_has(".s0"));
	b = make_file(c, 21, 100);
	TEST_ASSERT_EQ_INT(cache_file_remove(c, 20), 0);
	TEST_ASSERT_EQ_INT(cache_file_remove(c, 21), 0);
	TEST_ASSERT(data_has(".s0") && data_has(".s1") && !data_has(".s2"));
	cache_close(c);

	TEST_ASSERT_EQ_INT(cache_open(root, &c), 0);
	fd = cache_file_open(c, 22, true);
	TEST_ASSERT(fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == b);
	close(fd);
	fd = cache_file_open(c, 23, true);
	TEST_ASSERT(fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == a);
	close(fd);
	TEST_ASSERT(!data_has(".s0") && !data_has(".s1"));
	/* a file that exists keeps its bytes: no spare is put over it */
	d = make_file(c, 24, 100);
	TEST_ASSERT_EQ_INT(cache_file_remove(c, 24), 0);
	TEST_ASSERT(data_has(".s0"));
	fd = cache_file_open(c, 22, true);
	TEST_ASSERT(fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == b && st.st_size == 0);
	close(fd);
	TEST_ASSERT(data_has(".s0"));
	fd = cache_file_open(c, 25, true);
	TEST_ASSERT(fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == d);
	close(fd);
	TEST_ASSERT_EQ_INT(cache_file_remove(c, 25), 0); /* .s0 again, for the next test */
	cache_close(c);
}

/* A spare removed from under the cache: the next new file is made anew. */
static void test_a_spare_gone_from_under_it(void)
{
	struct cache *c;
	int dfd, fd;

	TEST_ASSERT_EQ_INT(cache_open(root, &c), 0);
	dfd = data_fd();
	TEST_ASSERT_EQ_INT(unlinkat(dfd, ".s0", 0), 0);
	close(dfd);
	fd = cache_file_open(c, 30, true);
	TEST_ASSERT(fd >= 0);
	close(fd);
	TEST_ASSERT(data_has("30"));
	cache_close(c);
}

static int remove_tree(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

int main(void)
{
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	TEST_RUN(test_removed_file_is_the_next_new_one_empty);
	TEST_RUN(test_spares_are_kept_across_opens);
	TEST_RUN(test_a_spare_gone_from_under_it);
	remove_tree(root);
	return TEST_MAIN_END();
}
