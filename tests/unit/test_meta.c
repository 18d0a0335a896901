/* test_meta.c - unit tests of the metadata store (meta.c) on a real SQLite file. */
#include "meta/meta.h"
#include "meta/meta_internal.h"
#include "../unit/test.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static struct meta *open_fresh(char *dir)
{
	char path[256];
	struct meta *m = NULL;

	snprintf(path, sizeof(path), "%s/meta.db", dir);
	TEST_ASSERT_EQ_INT(meta_open(path, 1u << 22, 0, 0, &m), 0);
	return m;
}

static char tmpdir[64];

static void test_root_and_settings(void)
{
	struct meta *m = open_fresh(tmpdir);
	struct meta_inode root;
	char buf[64];

	TEST_ASSERT_EQ_INT(meta_inode_get(m, META_ROOT_INO, &root), 0);
	TEST_ASSERT(S_ISDIR(root.mode));
	TEST_ASSERT_EQ_INT(root.nlink, 2);
	TEST_ASSERT_EQ_INT(meta_setting_get(m, "chunk_size", buf, sizeof(buf)), 0);
	TEST_ASSERT_EQ_STR(buf, "4194304");
	TEST_ASSERT_EQ_INT(meta_setting_get(m, "nope", buf, sizeof(buf)), -ENOENT);
	TEST_ASSERT_EQ_INT(meta_setting_set(m, "k", "v1"), 0);
	TEST_ASSERT_EQ_INT(meta_setting_set(m, "k", "v2"), 0);
	TEST_ASSERT_EQ_INT(meta_setting_get(m, "k", buf, sizeof(buf)), 0);
	TEST_ASSERT_EQ_STR(buf, "v2");
	TEST_ASSERT_EQ_INT(meta_setting_get(m, "k", buf, 2), -ERANGE);
	meta_close(m);
}

static void test_inode_dentry(void)
{
	struct meta *m = open_fresh(tmpdir);
	struct meta_inode in = {.mode = S_IFREG | 0644, .nlink = 1, .size = 10}, out;
	struct meta_inode ln = {.mode = S_IFLNK | 0777, .nlink = 1};
	uint64_t ino, first;
	char target[16];
	size_t len;

	in.mtime.tv_sec = -5; /* before 1970 */
	in.mtime.tv_nsec = 999999999;
	in.atime.tv_sec = 1ll << 40; /* far beyond 2038 */
	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &in, NULL, 0), 0);
	TEST_ASSERT(in.ino > META_ROOT_INO);
	first = in.ino;
	TEST_ASSERT_EQ_INT(meta_inode_get(m, in.ino, &out), 0);
	TEST_ASSERT_EQ_INT(out.mtime.tv_sec, -5);
	TEST_ASSERT_EQ_INT(out.mtime.tv_nsec, 999999999);
	TEST_ASSERT_EQ_INT(out.atime.tv_sec, 1ll << 40);
	TEST_ASSERT_EQ_INT(out.size, 10);
	TEST_ASSERT_EQ_INT(meta_dentry_insert(m, 1, "a\xff\x01name", in.ino), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_insert(m, 1, "a\xff\x01name", in.ino), -EEXIST);
	TEST_ASSERT_EQ_INT(meta_dentry_lookup(m, 1, "a\xff\x01name", &ino), 0);
	TEST_ASSERT_EQ_INT(ino, in.ino);
	TEST_ASSERT_EQ_INT(meta_dentry_lookup(m, 1, "b", &ino), -ENOENT);
	TEST_ASSERT_EQ_INT(meta_dentry_move(m, 1, "a\xff\x01name", 1, "b"), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_lookup(m, 1, "b", &ino), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_move(m, 1, "zz", 1, "c"), -ENOENT);
	TEST_ASSERT_EQ_INT(meta_dir_has_entries(m, 1), 1);
	TEST_ASSERT_EQ_INT(meta_dentry_delete(m, 1, "b"), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_delete(m, 1, "b"), -ENOENT);
	TEST_ASSERT_EQ_INT(meta_dir_has_entries(m, 1), 0);

	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &ln, "tgt", 3), 0);
	TEST_ASSERT_EQ_INT(meta_symlink_get(m, ln.ino, target, sizeof(target), &len), 0);
	TEST_ASSERT_EQ_INT(len, 3);
	TEST_ASSERT(memcmp(target, "tgt", 3) == 0);
	/* numbers are never reused, even after the newest is deleted */
	TEST_ASSERT_EQ_INT(meta_inode_delete(m, ln.ino), 0);
	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &ln, "x", 1), 0);
	TEST_ASSERT(ln.ino > first + 1);
	TEST_ASSERT_EQ_INT(meta_inode_get(m, 999999, &out), -ENOENT);
	meta_close(m);
}

static int count_cb(void *arg, uint64_t id, const char *name, const struct meta_inode *in)
{
	(void)id;
	(void)name;
	(void)in;
	(*(int *)arg)++;
	return 0;
}

static void test_readdir_cookies(void)
{
	struct meta *m = open_fresh(tmpdir);
	struct meta_inode d = {.mode = S_IFDIR | 0755, .nlink = 2};
	char name[16];
	int n = 0;

	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &d, NULL, 0), 0);
	for (int i = 0; i < 50; i++) {
		struct meta_inode f = {.mode = S_IFREG | 0644, .nlink = 1};
		snprintf(name, sizeof(name), "f%d", i);
		TEST_ASSERT_EQ_INT(meta_inode_insert(m, &f, NULL, 0), 0);
		TEST_ASSERT_EQ_INT(meta_dentry_insert(m, d.ino, name, f.ino), 0);
	}
	TEST_ASSERT_EQ_INT(meta_readdir(m, d.ino, 0, count_cb, &n), 0);
	TEST_ASSERT_EQ_INT(n, 50);
	meta_close(m);
}

static void test_xattr(void)
{
	struct meta *m = open_fresh(tmpdir);
	char buf[64];
	size_t len;

	TEST_ASSERT_EQ_INT(meta_xattr_set(m, 1, "user.a", "1", 1, XATTR_REPLACE), -ENODATA);
	TEST_ASSERT_EQ_INT(meta_xattr_set(m, 1, "user.a", "1", 1, XATTR_CREATE), 0);
	TEST_ASSERT_EQ_INT(meta_xattr_set(m, 1, "user.a", "1", 1, XATTR_CREATE), -EEXIST);
	TEST_ASSERT_EQ_INT(meta_xattr_set(m, 1, "user.a", "22", 2, XATTR_REPLACE), 0);
	TEST_ASSERT_EQ_INT(meta_xattr_set(m, 1, "user.empty", "", 0, 0), 0);
	TEST_ASSERT_EQ_INT(meta_xattr_get(m, 1, "user.a", buf, 0, &len), 0);
	TEST_ASSERT_EQ_INT(len, 2);
	TEST_ASSERT_EQ_INT(meta_xattr_get(m, 1, "user.a", buf, 1, &len), -ERANGE);
	TEST_ASSERT_EQ_INT(meta_xattr_get(m, 1, "user.empty", buf, sizeof(buf), &len), 0);
	TEST_ASSERT_EQ_INT(len, 0);
	TEST_ASSERT_EQ_INT(meta_xattr_list(m, 1, buf, sizeof(buf), &len), 0);
	TEST_ASSERT_EQ_INT(len, sizeof("user.a") + sizeof("user.empty"));
	TEST_ASSERT_EQ_INT(meta_xattr_list(m, 1, buf, 3, &len), -ERANGE);
	TEST_ASSERT_EQ_INT(meta_xattr_remove(m, 1, "user.a"), 0);
	TEST_ASSERT_EQ_INT(meta_xattr_remove(m, 1, "user.a"), -ENODATA);
	TEST_ASSERT_EQ_INT(meta_xattr_get(m, 1, "user.a", buf, sizeof(buf), &len), -ENODATA);
	meta_close(m);
}

static int chunk_cb(void *arg, uint64_t idx, enum meta_chunk_state state)
{
	uint64_t *sum = arg;

	*sum += idx * 10 + (uint64_t)state;
	return 0;
}

static void test_chunks_and_check(void)
{
	struct meta *m = open_fresh(tmpdir);
	struct meta_inode f = {.mode = S_IFREG | 0644, .nlink = 1};
	uint64_t sum = 0;

	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &f, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_insert(m, 1, "f", f.ino), 0);
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 1, 100), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 1, 100), 0);
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 7, 100), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_list(m, f.ino, chunk_cb, &sum), 0);
	TEST_ASSERT_EQ_INT(sum, 80);
	TEST_ASSERT_EQ_INT(meta_chunk_delete_range(m, f.ino, 5, UINT64_MAX), 0);
	sum = 0;
	TEST_ASSERT_EQ_INT(meta_chunk_list(m, f.ino, chunk_cb, &sum), 0);
	TEST_ASSERT_EQ_INT(sum, 10);
	meta_close(m);
}

/* Dirty bytes: each DIRTY chunk's share of its file's size, whole or short. */
static void test_dirty_bytes(void)
{
	struct meta *m = open_fresh(tmpdir);
	const uint64_t cs = 1u << 22;
	struct meta_inode f = {.mode = S_IFREG | 0644, .nlink = 1, .size = 2 * cs + 100};
	struct meta_inode g = {.mode = S_IFREG | 0644, .nlink = 1, .size = 10};
	uint64_t bytes = 1;

	TEST_ASSERT_EQ_INT(meta_chunk_dirty_bytes(m, cs, &bytes), 0);
	TEST_ASSERT_EQ_INT(bytes, 0);
	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &f, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &g, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 0, 1), 1);  /* whole: cs */
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 2, 1), 1);  /* short: 100 */
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 5, 1), 1);  /* past the end: 0 */
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, g.ino, 0, 1), 1);  /* 10 */
	TEST_ASSERT_EQ_INT(meta_chunk_dirty_bytes(m, cs, &bytes), 0);
	TEST_ASSERT_EQ_INT(bytes, cs + 100 + 10);
	/* one file as if it were another size */
	TEST_ASSERT_EQ_INT(meta_chunk_dirty_bytes_ino(m, f.ino, cs, 6 * cs, &bytes), 0);
	TEST_ASSERT_EQ_INT(bytes, 3 * cs);
	TEST_ASSERT_EQ_INT(meta_chunk_dirty_bytes_ino(m, g.ino, cs, 0, &bytes), 0);
	TEST_ASSERT_EQ_INT(bytes, 0);
	meta_close(m);
}

static int count_garbage(void *arg, const uint8_t id[META_OBJECT_ID_LEN])
{
	(void)id;
	(*(int *)arg)++;
	return 0;
}

/* Upload transitions and object reference counts. */
/* The version of chunk IDX of INO now. */
static uint64_t version_of(struct meta *m, uint64_t ino, uint64_t idx)
{
	struct meta_chunk ch;

	TEST_ASSERT_EQ_INT(meta_chunk_get(m, ino, idx, &ch), 0);
	return ch.version;
}

static void test_objects(void)
{
	struct meta *m = open_fresh(tmpdir);
	struct meta_inode f = {.mode = S_IFREG | 0644, .nlink = 1};
	struct meta_chunk ch;
	uint8_t a[META_OBJECT_ID_LEN] = {1}, b[META_OBJECT_ID_LEN] = {2};
	uint64_t n, bytes;
	int garbage = 0;

	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &f, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 0, 5), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 1, 5), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_get(m, f.ino, 0, &ch), 0);
	TEST_ASSERT(ch.version > 0 && version_of(m, f.ino, 1) > ch.version);
	/* a stale version does not land; its object is garbage */
	TEST_ASSERT_EQ_INT(meta_chunk_set_clean(m, f.ino, 0, ch.version + 100, b, 10, 20), 0);
	/* released at 100: kept while only what was released before 100 may go */
	TEST_ASSERT_EQ_INT(meta_object_garbage(m, 10, 100, 99, count_garbage, &garbage), 0);
	TEST_ASSERT_EQ_INT(garbage, 0);
	TEST_ASSERT_EQ_INT(meta_object_garbage(m, 10, 200, 100, count_garbage, &garbage), 0);
	TEST_ASSERT_EQ_INT(garbage, 1);
	TEST_ASSERT_EQ_INT(meta_object_delete(m, b), 1);
	/* two chunks with the same content share one object */
	TEST_ASSERT_EQ_INT(meta_chunk_set_clean(m, f.ino, 0, version_of(m, f.ino, 0), a, 10, 20), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_set_clean(m, f.ino, 1, version_of(m, f.ino, 1), a, 10, 20), 1);
	TEST_ASSERT_EQ_INT(meta_object_stats(m, &n, &bytes), 0);
	TEST_ASSERT_EQ_INT(n, 1);
	TEST_ASSERT_EQ_INT(bytes, 20);
	TEST_ASSERT_EQ_INT(meta_object_exists(m, a), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_set_state(m, f.ino, 0, CHUNK_CLEAN, CHUNK_REMOTE), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_set_state(m, f.ino, 0, CHUNK_CLEAN, CHUNK_REMOTE), 0);
	/* rewriting keeps the reference until the new upload replaces it */
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 1, 6), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_set_clean(m, f.ino, 1, version_of(m, f.ino, 1), b, 10, 30), 1);
	TEST_ASSERT_EQ_INT(meta_object_stats(m, &n, &bytes), 0);
	TEST_ASSERT_EQ_INT(n, 2);
	/* deleting the rows drops the references: both objects become garbage */
	uint64_t before = version_of(m, f.ino, 0);
	TEST_ASSERT_EQ_INT(meta_chunk_delete_range(m, f.ino, 0, 0), 0);
	garbage = 0;
	TEST_ASSERT_EQ_INT(meta_object_garbage(m, 10, 100, 100, count_garbage, &garbage), 0);
	TEST_ASSERT_EQ_INT(garbage, 1);
	/* a row made anew never gets a version it had: an old upload must not land on it */
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 0, 7), 1);
	TEST_ASSERT(version_of(m, f.ino, 0) > before);
	TEST_ASSERT_EQ_INT(meta_chunk_set_clean(m, f.ino, 0, before, b, 10, 30), 0);
	TEST_ASSERT_EQ_INT(meta_inode_delete(m, f.ino), 0);
	garbage = 0;
	TEST_ASSERT_EQ_INT(meta_object_garbage(m, 10, 100, 100, count_garbage, &garbage), 0);
	TEST_ASSERT_EQ_INT(garbage, 2);
	meta_close(m);
}

/* The room REMOTE chunks would take: their lengths in whole blocks, nothing else. */
static void test_remote_bytes(void)
{
	struct meta *m = open_fresh(tmpdir);
	struct meta_inode f = {.mode = S_IFREG | 0644, .nlink = 1};
	uint8_t a[META_OBJECT_ID_LEN] = {1}, b[META_OBJECT_ID_LEN] = {2};
	uint64_t bytes = 1;

	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &f, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(meta_chunk_remote_bytes_ino(m, f.ino, 4096, &bytes), 0);
	TEST_ASSERT_EQ_INT(bytes, 0);
	/* chunk 0: full, chunk 3: 5000 bytes (two blocks), chunk 5 stays DIRTY */
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 0, 5), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 3, 5), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 5, 5), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_set_clean(m, f.ino, 0, version_of(m, f.ino, 0), a, 1 << 20, 10),
			   1);
	TEST_ASSERT_EQ_INT(meta_chunk_set_clean(m, f.ino, 3, version_of(m, f.ino, 3), b, 5000, 10), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_remote_bytes_ino(m, f.ino, 4096, &bytes), 0);
	TEST_ASSERT_EQ_INT(bytes, 0); /* CLEAN chunks are in the cache file */
	TEST_ASSERT_EQ_INT(meta_chunk_set_state(m, f.ino, 0, CHUNK_CLEAN, CHUNK_REMOTE), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_set_state(m, f.ino, 3, CHUNK_CLEAN, CHUNK_REMOTE), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_remote_bytes_ino(m, f.ino, 4096, &bytes), 0);
	TEST_ASSERT_EQ_INT(bytes, (1 << 20) + 8192);
	TEST_ASSERT_EQ_INT(meta_chunk_remote_bytes_ino(m, f.ino + 1, 4096, &bytes), 0);
	TEST_ASSERT_EQ_INT(bytes, 0);
	meta_close(m);
}

static void ignore_problem(void *arg, const char *p)
{
	if (getenv("TEST_META_VERBOSE"))
		fprintf(stderr, "problem: %s\n", p);
	(*(int *)arg)++;
}

static void test_check_repairs(void)
{
	struct meta *m = open_fresh(tmpdir);
	struct meta_inode f = {.mode = S_IFREG | 0644, .nlink = 1};
	struct meta_inode d = {.mode = S_IFDIR | 0755, .nlink = 2};
	struct meta_inode out;
	int n = 0;

	TEST_ASSERT_EQ_INT(meta_check(m, false, ignore_problem, &n), 0);
	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &f, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &d, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_insert(m, 1, "f", f.ino), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_insert(m, 1, "g", f.ino), 0); /* nlink should be 2 */
	TEST_ASSERT_EQ_INT(meta_dentry_insert(m, 1, "d", d.ino), 0); /* root nlink should be 3 */
	TEST_ASSERT_EQ_INT(meta_dentry_insert(m, 1, "ghost", 424242), 0);
	TEST_ASSERT_EQ_INT(meta_xattr_set(m, 434343, "user.x", "1", 1, 0), 0);
	n = 0;
	TEST_ASSERT_EQ_INT(meta_check(m, false, ignore_problem, &n), 4);
	TEST_ASSERT_EQ_INT(n, 4);
	n = 0;
	TEST_ASSERT_EQ_INT(meta_check(m, true, ignore_problem, &n), 4);
	n = 0;
	TEST_ASSERT_EQ_INT(meta_check(m, false, ignore_problem, &n), 0);
	TEST_ASSERT_EQ_INT(meta_inode_get(m, f.ino, &out), 0);
	TEST_ASSERT_EQ_INT(out.nlink, 2);
	TEST_ASSERT_EQ_INT(meta_inode_get(m, 1, &out), 0);
	TEST_ASSERT_EQ_INT(out.nlink, 3);
	meta_close(m);
}

/* Chunks that disagree with their file's size (chunk size 4 MiB here). */
static void test_check_chunks_against_the_size(void)
{
	struct meta *m = open_fresh(tmpdir);
	struct meta_inode f = {.mode = S_IFREG | 0644, .nlink = 1, .size = 5000000};
	struct meta_inode w = {.mode = S_IFREG | 0644, .nlink = 1, .size = 10,
			       .flags = META_INODE_WRITING};
	uint8_t a[META_OBJECT_ID_LEN] = {7};
	int n = 0;

	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &f, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &w, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_insert(m, 1, "size-f", f.ino), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_insert(m, 1, "size-w", w.ino), 0);
	/* chunk 1 of f: uploaded with more bytes than f has there */
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 1, 5), 1);
	uint64_t v = version_of(m, f.ino, 1);
	TEST_ASSERT_EQ_INT(meta_chunk_set_clean(m, f.ino, 1, v, a, 5000000 - (1 << 22), 10), 1);
	TEST_ASSERT_EQ_INT(meta_check(m, false, ignore_problem, &n), 0);
	TEST_ASSERT_EQ_INT(meta_chunk_set_clean(m, f.ino, 1, v, a, 5, 10), 0); /* CLEAN already */
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 1, 5), 1);
	TEST_ASSERT_EQ_INT(
	    meta_chunk_set_clean(m, f.ino, 1, version_of(m, f.ino, 1), a, 5000001 - (1 << 22), 10), 1);
	n = 0;
	TEST_ASSERT_EQ_INT(meta_check(m, false, ignore_problem, &n), 1);
	/* chunk 2 of f lies past its end; w is being written: its chunks may */
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 2, 5), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, w.ino, 3, 5), 1);
	n = 0;
	TEST_ASSERT_EQ_INT(meta_check(m, true, ignore_problem, &n), 2);
	n = 0;
	TEST_ASSERT_EQ_INT(meta_check(m, false, ignore_problem, &n), 1); /* the long one stays */
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 2, 5), 1); /* it was deleted */
	meta_close(m);
}

/* meta_inode_path: names through the oldest entries, links counted, the unlinked and circles. */
static void test_inode_path(void)
{
	struct meta *m = open_fresh(tmpdir);
	struct meta_inode d = {.mode = S_IFDIR | 0755, .nlink = 2};
	struct meta_inode e = {.mode = S_IFDIR | 0755, .nlink = 2};
	struct meta_inode f = {.mode = S_IFREG | 0644, .nlink = 2};
	struct meta_inode g = {.mode = S_IFREG | 0644, .nlink = 0};
	char buf[64], small[8];
	uint64_t links = 99;

	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &d, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &e, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &f, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &g, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_insert(m, META_ROOT_INO, "dir", d.ino), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_insert(m, d.ino, "sub \xff", e.ino), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_insert(m, e.ino, "file", f.ino), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_insert(m, META_ROOT_INO, "a-link", f.ino), 0);

	TEST_ASSERT_EQ_INT(meta_inode_path(m, META_ROOT_INO, buf, sizeof(buf), &links), 0);
	TEST_ASSERT_EQ_STR(buf, "/");
	TEST_ASSERT_EQ_INT(links, 1);
	TEST_ASSERT_EQ_INT(meta_inode_path(m, d.ino, buf, sizeof(buf), &links), 0);
	TEST_ASSERT_EQ_STR(buf, "/dir");
	TEST_ASSERT_EQ_INT(links, 1);
	/* the oldest entry names a file with two links, whose count is given */
	TEST_ASSERT_EQ_INT(meta_inode_path(m, f.ino, buf, sizeof(buf), &links), 0);
	TEST_ASSERT_EQ_STR(buf, "/dir/sub \xff/file");
	TEST_ASSERT_EQ_INT(links, 2);
	TEST_ASSERT_EQ_INT(meta_inode_path(m, f.ino, buf, sizeof(buf), NULL), 0);
	/* a rename moves the path with it */
	TEST_ASSERT_EQ_INT(meta_dentry_move(m, d.ino, "sub \xff", META_ROOT_INO, "top"), 0);
	TEST_ASSERT_EQ_INT(meta_inode_path(m, f.ino, buf, sizeof(buf), &links), 0);
	TEST_ASSERT_EQ_STR(buf, "/top/file");
	/* once the first name goes, the other one is named */
	TEST_ASSERT_EQ_INT(meta_dentry_delete(m, e.ino, "file"), 0);
	TEST_ASSERT_EQ_INT(meta_inode_path(m, f.ino, buf, sizeof(buf), &links), 0);
	TEST_ASSERT_EQ_STR(buf, "/a-link");
	TEST_ASSERT_EQ_INT(links, 1);
	/* too small a buffer */
	TEST_ASSERT_EQ_INT(meta_inode_path(m, f.ino, small, 7, &links), -ENAMETOOLONG);
	TEST_ASSERT_EQ_INT(meta_inode_path(m, f.ino, small, 8, &links), 0);
	TEST_ASSERT_EQ_STR(small, "/a-link");
	/* an unlinked inode, and one that does not exist */
	TEST_ASSERT_EQ_INT(meta_inode_path(m, g.ino, buf, sizeof(buf), &links), -ENOENT);
	TEST_ASSERT_EQ_INT(links, 0);
	TEST_ASSERT_EQ_INT(meta_inode_path(m, 99999, buf, sizeof(buf), &links), -ENOENT);
	/* a directory cut off from the root: its entries lead nowhere */
	TEST_ASSERT_EQ_INT(meta_dentry_insert(m, e.ino, "in-e", g.ino), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_delete(m, META_ROOT_INO, "top"), 0);
	TEST_ASSERT_EQ_INT(meta_inode_path(m, g.ino, buf, sizeof(buf), &links), -ENOENT);
	/* a circle (a damaged table): e inside itself */
	TEST_ASSERT_EQ_INT(meta_dentry_insert(m, e.ino, "self", e.ino), 0);
	TEST_ASSERT_EQ_INT(meta_inode_path(m, g.ino, buf, sizeof(buf), &links), -ELOOP);
	meta_close(m);
}

static int blocks_of_entry(void *arg, uint64_t id, const char *name, const struct meta_inode *in)
{
	struct meta_inode *out = arg;

	(void)id;
	if (strcmp(name, "f") == 0)
		*out = *in;
	return 0;
}

/*
 * A row's st_blocks: unknown until set, kept by get, update and readdir; a
 * database of an earlier version gains the column, its rows unknown.
 */
static void test_inode_blocks(void)
{
	char path[256];
	struct meta *m = open_fresh(tmpdir);
	struct meta_inode in = {.mode = S_IFREG | 0644, .nlink = 1, .size = 5000}, out;
	uint64_t old_ino;

	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &in, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(meta_inode_get(m, in.ino, &out), 0);
	TEST_ASSERT(!out.blocks_known);
	in.blocks = 16;
	in.blocks_known = true;
	TEST_ASSERT_EQ_INT(meta_inode_update(m, &in), 0);
	TEST_ASSERT_EQ_INT(meta_inode_get(m, in.ino, &out), 0);
	TEST_ASSERT(out.blocks_known);
	TEST_ASSERT_EQ_INT(out.blocks, 16);
	TEST_ASSERT_EQ_INT(meta_dentry_insert(m, META_ROOT_INO, "f", in.ino), 0);
	memset(&out, 0, sizeof(out));
	TEST_ASSERT_EQ_INT(meta_readdir(m, META_ROOT_INO, 0, blocks_of_entry, &out), 0);
	TEST_ASSERT_EQ_INT(out.ino, in.ino);
	TEST_ASSERT(out.blocks_known);
	TEST_ASSERT_EQ_INT(out.blocks, 16);
	in.blocks_known = false;
	TEST_ASSERT_EQ_INT(meta_inode_update(m, &in), 0);
	TEST_ASSERT_EQ_INT(meta_inode_get(m, in.ino, &out), 0);
	TEST_ASSERT(!out.blocks_known);
	/* the table as version 1 first wrote it, with a row of its own */
	TEST_ASSERT_EQ_INT(meta_exec(m, "ALTER TABLE inode DROP COLUMN blocks"), 0);
	TEST_ASSERT_EQ_INT(meta_exec(m, "INSERT INTO inode(mode, uid, gid, nlink, size, rdev, "
					"atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, "
					"btime_s, btime_ns) VALUES(33188, 0, 0, 1, 7, 0, 0, 0, 0, 0, "
					"0, 0, 0, 0)"),
			   0);
	old_ino = in.ino + 1;
	meta_close(m);
	snprintf(path, sizeof(path), "%s/meta.db", tmpdir);
	TEST_ASSERT_EQ_INT(meta_open(path, 1u << 22, 0, 0, &m), 0);
	TEST_ASSERT_EQ_INT(meta_inode_get(m, old_ino, &out), 0);
	TEST_ASSERT_EQ_INT(out.size, 7);
	TEST_ASSERT(!out.blocks_known);
	out.blocks = 8;
	out.blocks_known = true;
	TEST_ASSERT_EQ_INT(meta_inode_update(m, &out), 0);
	TEST_ASSERT_EQ_INT(meta_inode_get(m, old_ino, &out), 0);
	TEST_ASSERT(out.blocks_known);
	TEST_ASSERT_EQ_INT(out.blocks, 8);
	meta_close(m);
}

static long long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Commit N values of about a page each, one commit apiece, on inode INO. */
static void commit_pages(struct meta *m, uint64_t ino, int first, int n)
{
	char name[32], value[3000];

	memset(value, 'v', sizeof(value));
	for (int i = first; i < first + n; i++) {
		snprintf(name, sizeof(name), "user.k%d", i);
		TEST_ASSERT_EQ_INT(meta_xattr_set(m, ino, name, value, sizeof(value), 0), 0);
	}
}

/*
 * With the backfill thread, the WAL's pages reach the database file without
 * a commit copying them, and the WAL starts over rather than growing with
 * everything committed (9,000 commits of ~5 pages each here).
 */
static void test_backfill(void)
{
	char db[256], wal[256];
	struct meta *m = open_fresh(tmpdir);
	struct meta_inode in = {.mode = S_IFREG | 0644, .nlink = 1};
	long long before, first_round;

	snprintf(db, sizeof(db), "%s/meta.db", tmpdir);
	snprintf(wal, sizeof(wal), "%s/meta.db-wal", tmpdir);
	TEST_ASSERT_EQ_INT(meta_backfill_start(m), 0);
	TEST_ASSERT_EQ_INT(meta_backfill_start(m), 0); /* once */
	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &in, NULL, 0), 0);
	before = file_size(db);
	commit_pages(m, in.ino, 0, 1500);
	for (int i = 0; i < 500 && meta_backfill_runs(m) == 0; i++)
		usleep(10000);
	TEST_ASSERT(meta_backfill_runs(m) > 0);
	for (int i = 0; i < 500 && file_size(db) < before + 1000 * 3000; i++)
		usleep(10000);
	TEST_ASSERT(file_size(db) >= before + 1000 * 3000);
	/* SQLite keeps the -wal file's size when it starts over: it stays that of one round */
	first_round = file_size(wal);
	for (int round = 1; round < 6; round++) {
		usleep(200000);
		commit_pages(m, in.ino, round * 1500, 1500);
	}
	TEST_ASSERT(file_size(wal) < 2 * first_round);
	meta_backfill_stop(m);
	meta_backfill_stop(m); /* a no-op */
	commit_pages(m, in.ino, 9000, 10); /* SQLite's own copies again */
	meta_close(m);
	TEST_ASSERT_EQ_INT(meta_open(db, 1u << 22, 0, 0, &m), 0);
	TEST_ASSERT_EQ_INT(meta_backfill_start(m), 0);
	{
		char v[3000];
		size_t len = 0;
		TEST_ASSERT_EQ_INT(meta_xattr_get(m, in.ino, "user.k8999", v, sizeof(v), &len), 0);
		TEST_ASSERT_EQ_INT(len, 3000);
	}
	meta_close(m); /* stops the thread */
}

static void fresh_dir(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", tmpdir, tmpdir);
	TEST_ASSERT_EQ_INT(system(cmd), 0);
}


/* A changeset taken after commits, applied to a copy of the database before them, yields them. */
static void test_changes_round_trip(void)
{
	char a_path[256], b_path[256];
	struct meta *a = NULL, *b = NULL;
	struct meta_snapshot *snap = NULL;
	struct meta_inode f = {.mode = S_IFREG | 0600, .nlink = 1, .size = 10}, g;
	void *img = NULL, *cs = NULL;
	size_t imglen = 0, cslen = 0, ninos = 0;
	uint64_t *inos = NULL, rows = 0, ino;
	unsigned conflicts = 0;
	char v[16];
	FILE *fp;

	snprintf(a_path, sizeof(a_path), "%s/a.db", tmpdir);
	snprintf(b_path, sizeof(b_path), "%s/b.db", tmpdir);
	TEST_ASSERT_EQ_INT(meta_open(a_path, 1u << 22, 0, 0, &a), 0);
	TEST_ASSERT_EQ_INT(meta_changes_start(a), 0);
	TEST_ASSERT(!meta_changes_pending(a));
	/* the state the copy starts from: a snapshot, then the changes after it */
	TEST_ASSERT_EQ_INT(meta_snapshot_begin(a, &snap), 0);
	TEST_ASSERT_EQ_INT(meta_inode_insert(a, &f, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_insert(a, META_ROOT_INO, "f", f.ino), 0);
	TEST_ASSERT_EQ_INT(meta_xattr_set(a, f.ino, "user.k", "v", 1, 0), 0);
	TEST_ASSERT_EQ_INT(meta_local_set(a, "mine", "1"), 0);
	/* the snapshot holds the state of its begin, not what came after */
	TEST_ASSERT_EQ_INT(meta_snapshot_read(snap, &img, &imglen), 0);
	meta_snapshot_end(snap);
	fp = fopen(b_path, "wb");
	TEST_ASSERT(fp && fwrite(img, 1, imglen, fp) == imglen);
	fclose(fp);
	free(img);
	TEST_ASSERT_EQ_INT(meta_open(b_path, 1u << 22, 0, 0, &b), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_lookup(b, META_ROOT_INO, "f", &ino), -ENOENT);
	/* a rolled-back change leaves nothing; chunk access times are not recorded */
	TEST_ASSERT_EQ_INT(meta_begin(a), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_insert(a, META_ROOT_INO, "gone", f.ino), 0);
	meta_rollback(a);
	TEST_ASSERT(meta_changes_pending(a));
	TEST_ASSERT_EQ_INT(meta_begin(a), 0);
	TEST_ASSERT_EQ_INT(meta_changes_take(a, &cs, &cslen), -EBUSY);
	meta_rollback(a);
	TEST_ASSERT_EQ_INT(meta_changes_take(a, &cs, &cslen), 0);
	TEST_ASSERT(cslen > 0);
	TEST_ASSERT_EQ_INT(meta_changes_inodes(a, cs, cslen, &inos, &ninos, &rows), 0);
	/* the file and the directory of its entry */
	TEST_ASSERT_EQ_INT(ninos, 2);
	TEST_ASSERT_EQ_INT(inos[0], META_ROOT_INO);
	TEST_ASSERT_EQ_INT(inos[1], f.ino);
	TEST_ASSERT_EQ_INT(rows, 3);
	free(inos);
	TEST_ASSERT_EQ_INT(meta_changes_apply(b, cs, cslen, &conflicts), 0);
	TEST_ASSERT_EQ_INT(conflicts, 0);
	free(cs);
	TEST_ASSERT_EQ_INT(meta_dentry_lookup(b, META_ROOT_INO, "f", &ino), 0);
	TEST_ASSERT_EQ_INT(ino, f.ino);
	TEST_ASSERT_EQ_INT(meta_dentry_lookup(b, META_ROOT_INO, "gone", &ino), -ENOENT);
	TEST_ASSERT_EQ_INT(meta_inode_get(b, f.ino, &g), 0);
	TEST_ASSERT_EQ_INT(g.size, 10);
	/* local settings stay local */
	TEST_ASSERT_EQ_INT(meta_local_get(b, "mine", v, sizeof(v)), -ENOENT);
	/* a rename: the entry's old and new directories are named */
	struct meta_inode d = {.mode = S_IFDIR | 0755, .nlink = 2, .size = 4096};
	TEST_ASSERT_EQ_INT(meta_inode_insert(a, &d, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(meta_dentry_insert(a, META_ROOT_INO, "d", d.ino), 0);
	TEST_ASSERT_EQ_INT(meta_changes_take(a, &cs, &cslen), 0);
	TEST_ASSERT_EQ_INT(meta_changes_apply(b, cs, cslen, &conflicts), 0);
	free(cs);
	TEST_ASSERT_EQ_INT(meta_dentry_move(a, META_ROOT_INO, "f", d.ino, "f2"), 0);
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(a, f.ino, 0, 5), 1);
	TEST_ASSERT_EQ_INT(meta_changes_take(a, &cs, &cslen), 0);
	TEST_ASSERT_EQ_INT(meta_chunk_touch(a, f.ino, 0, 99), 0);
	TEST_ASSERT(!meta_changes_pending(a));
	TEST_ASSERT_EQ_INT(meta_changes_inodes(a, cs, cslen, &inos, &ninos, &rows), 0);
	TEST_ASSERT_EQ_INT(ninos, 3);
	free(inos);
	TEST_ASSERT_EQ_INT(meta_changes_apply(b, cs, cslen, &conflicts), 0);
	TEST_ASSERT_EQ_INT(conflicts, 0);
	free(cs);
	TEST_ASSERT_EQ_INT(meta_dentry_lookup(b, d.ino, "f2", &ino), 0);
	char path[64];
	TEST_ASSERT_EQ_INT(meta_inode_path(b, f.ino, path, sizeof(path), NULL), 0);
	TEST_ASSERT_EQ_STR(path, "/d/f2");
	meta_close(a);
	meta_close(b);
}

static int count_older(void *arg, uint64_t ino, uint64_t start, uint64_t end)
{
	(void)ino;
	(void)start;
	*(uint64_t *)arg += end - start;
	return 0;
}

/* A restored database: chunk states for an empty cache, and the ranges that are lost. */
static void test_restore_fixup_and_lost(void)
{
	uint64_t older = 0;
	struct meta *m = open_fresh(tmpdir);
	const uint32_t cs = 1u << 22;
	struct meta_inode f = {.mode = S_IFREG | 0644, .nlink = 1, .size = 2 * (1u << 22) + 100};
	struct meta_chunk ch;
	uint8_t obj[META_OBJECT_ID_LEN] = {7};

	TEST_ASSERT_EQ_INT(meta_inode_insert(m, &f, NULL, 0), 0);
	/* chunk 0 uploaded (CLEAN), chunk 1 rewritten after an upload of 1000 bytes, chunk 2 never */
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 0, 1), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_get(m, f.ino, 0, &ch), 0);
	TEST_ASSERT_EQ_INT(meta_chunk_set_clean(m, f.ino, 0, ch.version, obj, cs, 10), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 1, 1), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_get(m, f.ino, 1, &ch), 0);
	obj[1] = 1;
	TEST_ASSERT_EQ_INT(meta_chunk_set_clean(m, f.ino, 1, ch.version, obj, 1000, 10), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 1, 2), 1);
	TEST_ASSERT_EQ_INT(meta_chunk_set_dirty(m, f.ino, 2, 2), 1);
	TEST_ASSERT_EQ_INT(meta_restore_fixup(m, cs, NULL, count_older, &older), 2);
	/* chunk 1 comes back as uploaded: its first 1000 bytes are of another moment */
	TEST_ASSERT_EQ_INT(older, 1000);
	TEST_ASSERT_EQ_INT(meta_chunk_get(m, f.ino, 0, &ch), 0);
	TEST_ASSERT_EQ_INT(ch.state, CHUNK_REMOTE);
	TEST_ASSERT_EQ_INT(meta_chunk_get(m, f.ino, 1, &ch), 0);
	TEST_ASSERT_EQ_INT(ch.state, CHUNK_REMOTE);
	TEST_ASSERT_EQ_INT(meta_chunk_get(m, f.ino, 2, &ch), -ENOENT);
	struct meta_inode g;
	TEST_ASSERT_EQ_INT(meta_inode_get(m, f.ino, &g), 0);
	TEST_ASSERT(g.flags & META_INODE_LOST);
	/* lost: chunk 1 from byte 1000 on, and all of chunk 2 */
	TEST_ASSERT_EQ_INT(meta_lost_overlaps(m, f.ino, 0, cs + 1000), 0);
	TEST_ASSERT_EQ_INT(meta_lost_overlaps(m, f.ino, cs + 999, 2), 1);
	TEST_ASSERT_EQ_INT(meta_lost_overlaps(m, f.ino, 2 * (uint64_t)cs + 50, 1), 1);
	/* writing part of a range leaves the rest lost; truncating it away forgets it */
	TEST_ASSERT_EQ_INT(meta_lost_clear(m, f.ino, cs + 1000, 10), 1);
	TEST_ASSERT_EQ_INT(meta_lost_overlaps(m, f.ino, cs + 1000, 10), 0);
	TEST_ASSERT_EQ_INT(meta_lost_overlaps(m, f.ino, cs + 1010, 1), 1);
	TEST_ASSERT_EQ_INT(meta_lost_clear(m, f.ino, cs + 2000, 10), 1);
	TEST_ASSERT_EQ_INT(meta_lost_overlaps(m, f.ino, cs + 1999, 1), 1);
	TEST_ASSERT_EQ_INT(meta_lost_overlaps(m, f.ino, cs + 2005, 1), 0);
	TEST_ASSERT_EQ_INT(meta_lost_overlaps(m, f.ino, cs + 2010, 1), 1);
	TEST_ASSERT_EQ_INT(meta_lost_clear(m, f.ino, cs + 1005, UINT64_MAX), 0);
	TEST_ASSERT_EQ_INT(meta_lost_overlaps(m, f.ino, cs + 1005, UINT64_MAX / 2), 0);
	TEST_ASSERT_EQ_INT(meta_lost_clear(m, f.ino, 0, UINT64_MAX), 0);
	meta_close(m);
}


/* In a child that then dies (a crash): deferred ops A, B, then STEP. */
static void crash_child(int step)
{
	struct meta *m = open_fresh(tmpdir);
	struct meta_inode in = {.mode = S_IFREG | 0644, .nlink = 1};
	uint64_t ino;

	for (int i = 0; i < 2; i++) {
		char name[8];
		snprintf(name, sizeof(name), "d%d", i);
		if (meta_begin(m) || meta_inode_insert(m, &in, NULL, 0) ||
		    meta_dentry_insert(m, META_ROOT_INO, name, in.ino) || meta_commit_deferred(m))
			_exit(2);
	}
	/* the batch is seen by the connection itself, uncommitted */
	if (!meta_batch_open(m) || meta_dentry_lookup(m, META_ROOT_INO, "d1", &ino))
		_exit(3);
	if (step == 1 && meta_setting_set(m, "after", "1")) /* rule B2: commits the batch */
		_exit(4);
	if (step == 2) { /* an op rolled back inside the batch: the batch stays */
		if (meta_begin(m) || meta_dentry_insert(m, META_ROOT_INO, "gone", in.ino))
			_exit(5);
		meta_rollback(m);
		if (!meta_batch_open(m) || meta_flush(m) || meta_batch_open(m))
			_exit(6);
	}
	if (step == 3) { /* a transaction in a batch commits it all */
		if (meta_begin(m) || meta_dentry_insert(m, META_ROOT_INO, "t", in.ino) ||
		    meta_commit(m) || meta_batch_open(m))
			_exit(7);
	}
	_exit(0); /* no close: what was not committed is lost */
}

/* Group commit (meta.c rules B1-B3): a crash loses a batch whole, and only a batch. */
static void test_deferred_commits(void)
{
	const char *want[] = {"none", "all", "all", "all"};
	uint64_t ino;

	for (int step = 0; step < 4; step++) {
		pid_t pid;
		int status;
		struct meta *m;
		bool d0, d1;

		fresh_dir();
		pid = fork();
		if (pid == 0)
			crash_child(step);
		TEST_ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
		TEST_ASSERT(WIFEXITED(status));
		TEST_ASSERT_EQ_INT(WEXITSTATUS(status), 0);
		m = open_fresh(tmpdir);
		d0 = meta_dentry_lookup(m, META_ROOT_INO, "d0", &ino) == 0;
		d1 = meta_dentry_lookup(m, META_ROOT_INO, "d1", &ino) == 0;
		TEST_ASSERT(d0 == d1); /* never a part of a batch */
		TEST_ASSERT_EQ_STR(d0 ? "all" : "none", want[step]);
		TEST_ASSERT_EQ_INT(meta_dentry_lookup(m, META_ROOT_INO, "gone", &ino), -ENOENT);
		if (step == 3)
			TEST_ASSERT_EQ_INT(meta_dentry_lookup(m, META_ROOT_INO, "t", &ino), 0);
		meta_close(m);
	}
}

int main(void)
{
	char tmpl[] = "/tmp/zero-test-meta-XXXXXX";

	if (!mkdtemp(tmpl))
		return 1;
	snprintf(tmpdir, sizeof(tmpdir), "%s", tmpl);
	fresh_dir();
	TEST_RUN(test_root_and_settings);
	fresh_dir();
	TEST_RUN(test_inode_dentry);
	fresh_dir();
	TEST_RUN(test_inode_blocks);
	fresh_dir();
	TEST_RUN(test_backfill);
	fresh_dir();
	TEST_RUN(test_readdir_cookies);
	fresh_dir();
	TEST_RUN(test_xattr);
	fresh_dir();
	TEST_RUN(test_chunks_and_check);
	TEST_RUN(test_dirty_bytes);
	fresh_dir();
	TEST_RUN(test_check_repairs);
	TEST_RUN(test_check_chunks_against_the_size);
	fresh_dir();
	TEST_RUN(test_objects);
	TEST_RUN(test_remote_bytes);
	fresh_dir();
	TEST_RUN(test_changes_round_trip);
	fresh_dir();
	TEST_RUN(test_restore_fixup_and_lost);
	TEST_RUN(test_inode_path);
	TEST_RUN(test_deferred_commits);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		return 1;
	return TEST_MAIN_END();
}
