/*
 * test_fs.c - unit tests of the filesystem core (fs.c) through its API,
 * on a real cache directory: no kernel, no FUSE.
 */
#include "fs/fs.h"
#include "fs/fs_internal.h"
#include "meta/meta.h"
#include "../unit/test.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

static bool in_no_group(const struct fs_ctx *ctx, gid_t gid)
{
	return ctx->gid == gid;
}

static const struct fs_ctx root_ctx = {0, 0, in_no_group, NULL, 0};

/* BATCH_MS: the group commit window (0: the default, 10 ms) */
static struct fs *open_fs_batch(unsigned batch_ms)
{
	struct fs_options opt = {.cache_dir = dir, .chunk_size = 1u << 16, .batch_ms = batch_ms};
	struct fs *fs = NULL;
	char err[256] = "";

	TEST_ASSERT_EQ_INT(fs_new(&opt, &fs, err, sizeof(err)), 0);
	return fs;
}

static struct fs *open_fs(void)
{
	return open_fs_batch(0);
}

static void fresh_dir(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", dir, dir);
	TEST_ASSERT_EQ_INT(system(cmd), 0);
}

/* Write LEN bytes of BYTE at OFF through the three-step write path. */
static void write_bytes(struct fs *fs, struct fs_file *fh, off_t off, size_t len, int byte)
{
	char *buf = malloc(len);
	int fd = -1;

	memset(buf, byte, len);
	TEST_ASSERT_EQ_INT(fs_write_begin(fs, &root_ctx, fh, off, len, &fd), 0);
	TEST_ASSERT_EQ_INT(pwrite(fd, buf, len, off), (long long)len);
	fs_write_end(fs, &root_ctx, fh, off, len);
	free(buf);
}

static bool cache_file_exists(uint64_t ino)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/data/%llu", dir, (unsigned long long)ino);
	return access(path, F_OK) == 0;
}

/* A deleted inode's cache file goes once its deletion is committed: within the batch's 10 ms. */
static bool cache_file_gone_soon(uint64_t ino)
{
	for (int i = 0; i < 200 && cache_file_exists(ino); i++)
		usleep(10 * 1000);
	return !cache_file_exists(ino);
}

static int count_chunk(void *arg, uint64_t idx, enum meta_chunk_state state)
{
	(void)idx;
	if (state == CHUNK_DIRTY)
		(*(int *)arg)++;
	return 0;
}

static void test_write_read_persist(void)
{
	struct fs *fs = open_fs();
	struct fs_file *fh;
	struct stat st;
	struct fs_read *rd;
	size_t len;
	int fd, dirty = 0;
	struct meta *m;
	char path[128];

	TEST_ASSERT_EQ_INT(fs_create(fs, &root_ctx, 1, "f", 0644, O_RDWR, &fh, &st), 0);
	write_bytes(fs, fh, 0, 100000, 'a');   /* chunks 0 and 1 of 64 KiB */
	write_bytes(fs, fh, 1 << 20, 10, 'b'); /* chunk 16 */
	TEST_ASSERT_EQ_INT(fs_read_prepare(fs, fh, (1 << 20) + 5, 100, &fd, &len, &rd), 0);
	TEST_ASSERT_EQ_INT(len, 5);
	fs_read_done(fs, rd);
	TEST_ASSERT_EQ_INT(fs_read_prepare(fs, fh, 2 << 20, 100, &fd, &len, &rd), 0);
	TEST_ASSERT_EQ_INT(len, 0);
	fs_read_done(fs, rd);
	TEST_ASSERT_EQ_INT(fs_release(fs, fh), 0);
	TEST_ASSERT_EQ_INT(fs_getattr(fs, st.st_ino, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_size, (1 << 20) + 10);
	fs_forget(fs, st.st_ino, 1);
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);

	/* the chunk table has the three dirty chunks, committed */
	snprintf(path, sizeof(path), "%s/meta.db", dir);
	TEST_ASSERT_EQ_INT(meta_open(path, 1u << 16, 0, 0, &m), 0);
	TEST_ASSERT_EQ_INT(meta_chunk_list(m, st.st_ino, count_chunk, &dirty), 0);
	TEST_ASSERT_EQ_INT(dirty, 3);
	meta_close(m);

	fs = open_fs();
	TEST_ASSERT_EQ_INT(fs_lookup(fs, 1, "f", &st), 0);
	TEST_ASSERT_EQ_INT(st.st_size, (1 << 20) + 10);
	/* truncate drops the chunks past the end and dirties the one holding it */
	{
		struct stat attr = {.st_size = 70000};
		TEST_ASSERT_EQ_INT(
		    fs_setattr(fs, &root_ctx, st.st_ino, NULL, &attr, FS_SET_SIZE, &st), 0);
	}
	TEST_ASSERT_EQ_INT(st.st_size, 70000);
	fs_forget(fs, st.st_ino, 1);
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);
	TEST_ASSERT_EQ_INT(meta_open(path, 1u << 16, 0, 0, &m), 0);
	dirty = 0;
	TEST_ASSERT_EQ_INT(meta_chunk_list(m, st.st_ino, count_chunk, &dirty), 0);
	TEST_ASSERT_EQ_INT(dirty, 2);
	meta_close(m);
}

static void test_unlink_while_open(void)
{
	struct fs *fs = open_fs();

	TEST_ASSERT_EQ_INT(fs_start(fs), 0); /* the flusher: it commits the batch */
	struct fs_file *fh;
	struct fs_read *rd;
	struct stat st;
	size_t len;
	int fd;

	TEST_ASSERT_EQ_INT(fs_create(fs, &root_ctx, 1, "g", 0644, O_RDWR, &fh, &st), 0);
	write_bytes(fs, fh, 0, 5000, 'x');
	TEST_ASSERT_EQ_INT(fs_unlink(fs, 1, "g"), 0);
	TEST_ASSERT_EQ_INT(fs_lookup(fs, 1, "g", &st), -ENOENT);
	TEST_ASSERT(cache_file_exists(st.st_ino));
	TEST_ASSERT_EQ_INT(fs_read_prepare(fs, fh, 0, 8192, &fd, &len, &rd), 0);
	TEST_ASSERT_EQ_INT(len, 5000);
	fs_read_done(fs, rd);
	TEST_ASSERT_EQ_INT(fs_release(fs, fh), 0);
	TEST_ASSERT(cache_file_exists(st.st_ino)); /* the kernel still knows it */
	fs_forget(fs, st.st_ino, 1);
	TEST_ASSERT_EQ_INT(fs_getattr(fs, st.st_ino, &st), -ENOENT);
	TEST_ASSERT(cache_file_gone_soon(st.st_ino));
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);
}

static void test_rename_rules(void)
{
	struct fs *fs = open_fs();
	struct stat a, b, d, e, st;

	TEST_ASSERT_EQ_INT(fs_mkdir(fs, &root_ctx, 1, "a", 0755, &a), 0);
	TEST_ASSERT_EQ_INT(fs_mkdir(fs, &root_ctx, a.st_ino, "b", 0755, &b), 0);
	TEST_ASSERT_EQ_INT(fs_mknod(fs, &root_ctx, 1, "f", S_IFREG | 0644, 0, &d), 0);
	TEST_ASSERT_EQ_INT(fs_mknod(fs, &root_ctx, b.st_ino, "g", S_IFREG | 0644, 0, &e), 0);
	/* into its own subtree */
	TEST_ASSERT_EQ_INT(fs_rename(fs, &root_ctx, 1, "a", b.st_ino, "x", 0), -EINVAL);
	/* directory over file and file over directory */
	TEST_ASSERT_EQ_INT(fs_rename(fs, &root_ctx, 1, "a", 1, "f", 0), -ENOTDIR);
	TEST_ASSERT_EQ_INT(fs_rename(fs, &root_ctx, 1, "f", 1, "a", 0), -EISDIR);
	/* over a non-empty directory */
	TEST_ASSERT_EQ_INT(fs_mkdir(fs, &root_ctx, 1, "c", 0755, &st), 0);
	TEST_ASSERT_EQ_INT(fs_rename(fs, &root_ctx, 1, "c", a.st_ino, "b", 0), -ENOTEMPTY);
	TEST_ASSERT_EQ_INT(fs_rename(fs, &root_ctx, 1, "f", b.st_ino, "g", RENAME_NOREPLACE),
			   -EEXIST);
	TEST_ASSERT_EQ_INT(fs_rename(fs, &root_ctx, 1, "f", b.st_ino, "g", RENAME_EXCHANGE), 0);
	TEST_ASSERT_EQ_INT(fs_lookup(fs, 1, "f", &st), 0);
	TEST_ASSERT_EQ_INT(st.st_ino, e.st_ino);
	/* exchanging a directory across parents moves the parents' link counts */
	TEST_ASSERT_EQ_INT(fs_rename(fs, &root_ctx, 1, "c", b.st_ino, "g", RENAME_EXCHANGE), 0);
	TEST_ASSERT_EQ_INT(fs_getattr(fs, b.st_ino, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_nlink, 3);
	TEST_ASSERT_EQ_INT(fs_getattr(fs, 1, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_nlink, 3); /* root: a, and the file that came back */
	/* a plain move over a file drops the victim's link */
	TEST_ASSERT_EQ_INT(fs_rename(fs, &root_ctx, 1, "c", 1, "f", 0), 0);
	TEST_ASSERT_EQ_INT(fs_getattr(fs, e.st_ino, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_nlink, 0);
	TEST_ASSERT_EQ_INT(fs_rename(fs, &root_ctx, 1, "nope", 1, "x", 0), -ENOENT);
	TEST_ASSERT_EQ_INT(fs_rename(fs, &root_ctx, 1, "f", 1, "x", 8), -EINVAL);
	/* a whiteout stays where the source was: a character device 0/0, mode 0 */
	TEST_ASSERT_EQ_INT(
	    fs_rename(fs, &root_ctx, 1, "f", 1, "x", RENAME_WHITEOUT | RENAME_EXCHANGE), -EINVAL);
	TEST_ASSERT_EQ_INT(fs_rename(fs, &root_ctx, 1, "f", 1, "x", RENAME_WHITEOUT), 0);
	TEST_ASSERT_EQ_INT(fs_lookup(fs, 1, "f", &st), 0);
	TEST_ASSERT_EQ_INT(st.st_mode, S_IFCHR);
	TEST_ASSERT_EQ_INT(st.st_rdev, 0);
	TEST_ASSERT_EQ_INT(
	    fs_rename(fs, &root_ctx, 1, "x", 1, "f", RENAME_WHITEOUT | RENAME_NOREPLACE), -EEXIST);
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);
}

static void test_names_and_links(void)
{
	struct fs *fs = open_fs();
	char longname[300];
	struct stat st, st2;

	memset(longname, 'n', sizeof(longname));
	longname[256] = '\0';
	TEST_ASSERT_EQ_INT(fs_mknod(fs, &root_ctx, 1, longname, S_IFREG | 0644, 0, &st),
			   -ENAMETOOLONG);
	longname[255] = '\0';
	TEST_ASSERT_EQ_INT(fs_mknod(fs, &root_ctx, 1, longname, S_IFREG | 0644, 0, &st), 0);
	TEST_ASSERT_EQ_INT(fs_mknod(fs, &root_ctx, 1, longname, S_IFREG | 0644, 0, &st), -EEXIST);
	TEST_ASSERT_EQ_INT(fs_link(fs, st.st_ino, 1, "h", &st2), 0);
	TEST_ASSERT_EQ_INT(st2.st_nlink, 2);
	TEST_ASSERT_EQ_INT(fs_link(fs, 1, 1, "rootlink", &st2), -EPERM);
	TEST_ASSERT_EQ_INT(fs_unlink(fs, 1, longname), 0);
	TEST_ASSERT_EQ_INT(fs_getattr(fs, st.st_ino, &st2), 0);
	TEST_ASSERT_EQ_INT(st2.st_nlink, 1);
	TEST_ASSERT_EQ_INT(fs_rmdir(fs, 1, "h"), -ENOTDIR);
	TEST_ASSERT_EQ_INT(fs_symlink(fs, &root_ctx, 1, "s", "target", &st2), 0);
	{
		char buf[16];
		size_t len;
		TEST_ASSERT_EQ_INT(fs_readlink(fs, st2.st_ino, buf, sizeof(buf), &len), 0);
		TEST_ASSERT_EQ_INT(len, 6);
		TEST_ASSERT_EQ_INT(fs_readlink(fs, 1, buf, sizeof(buf), &len), -EINVAL);
	}
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);
}

static void test_setgid_directory(void)
{
	struct fs *fs = open_fs();
	struct fs_ctx user = {1000, 1000, in_no_group, NULL, 0};
	struct stat d, st, attr = {.st_mode = 02775, .st_gid = 50};

	TEST_ASSERT_EQ_INT(fs_mkdir(fs, &root_ctx, 1, "sg", 0755, &d), 0);
	TEST_ASSERT_EQ_INT(
	    fs_setattr(fs, &root_ctx, d.st_ino, NULL, &attr, FS_SET_MODE | FS_SET_GID, &d), 0);
	TEST_ASSERT_EQ_INT(fs_mkdir(fs, &user, d.st_ino, "sub", 0755, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_gid, 50);
	TEST_ASSERT(st.st_mode & S_ISGID);
	/* a setgid file created by a non-member loses its setgid bit */
	TEST_ASSERT_EQ_INT(fs_mknod(fs, &user, d.st_ino, "f", S_IFREG | 02755, 0, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_gid, 50);
	TEST_ASSERT(!(st.st_mode & S_ISGID));
	TEST_ASSERT_EQ_INT(st.st_uid, 1000);
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);
}

static void test_punch_and_bounds(void)
{
	struct fs *fs = open_fs();
	struct fs_file *fh;
	struct stat st;
	int fd;

	TEST_ASSERT_EQ_INT(fs_create(fs, &root_ctx, 1, "p", 0644, O_RDWR, &fh, &st), 0);
	write_bytes(fs, fh, 0, 4 << 16, 'p');
	TEST_ASSERT_EQ_INT(fs_fallocate(fs, fh, FALLOC_FL_PUNCH_HOLE, 0, 4096), -EOPNOTSUPP);
	TEST_ASSERT_EQ_INT(
	    fs_fallocate(fs, fh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1 << 16, 1 << 16), 0);
	TEST_ASSERT_EQ_INT(fs_fallocate(fs, fh, 0, 0, 8 << 16), 0);
	TEST_ASSERT_EQ_INT(fs_getattr(fs, st.st_ino, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_size, 8 << 16);
	TEST_ASSERT_EQ_INT(fs_write_begin(fs, &root_ctx, fh, (off_t)1 << 45, 1, &fd), -EFBIG);
	TEST_ASSERT_EQ_INT(fs_release(fs, fh), 0);
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);
}

/* st_blocks of ino's cache file, as the disk says */
static long long cache_file_blocks(uint64_t ino)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/data/%llu", dir, (unsigned long long)ino);
	return stat(path, &st) == 0 ? (long long)st.st_blocks : -1;
}

/*
 * A file's st_blocks while it is open is its cache file's; once closed, the
 * count written down then, without a look at the cache file (which a listing
 * of many files would pay for each); after a size change made without the
 * cache file open, the cache file's again, until the next close.
 */
static void test_blocks_kept_in_the_row(void)
{
	struct fs *fs = open_fs();
	struct fs_file *fh;
	struct stat st, attr = {0};
	char path[128];
	long long blocks;
	int fd;

	TEST_ASSERT_EQ_INT(fs_create(fs, &root_ctx, 1, "e", 0644, O_RDWR, &fh, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_blocks, 0); /* no cache file yet */
	TEST_ASSERT_EQ_INT(fs_release(fs, fh), 0);
	TEST_ASSERT_EQ_INT(fs_create(fs, &root_ctx, 1, "f", 0644, O_RDWR, &fh, &st), 0);
	write_bytes(fs, fh, 0, 100000, 'a');
	write_bytes(fs, fh, 1 << 20, 10, 'b'); /* sparse between */
	blocks = cache_file_blocks(st.st_ino);
	TEST_ASSERT(blocks >= 100000 / 512 && blocks < (1 << 20) / 512);
	TEST_ASSERT_EQ_INT(fs_getattr(fs, st.st_ino, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_blocks, blocks);
	TEST_ASSERT_EQ_INT(fs_release(fs, fh), 0);
	/* behind Zero's back: the closed file's count is the row's, not the disk's */
	snprintf(path, sizeof(path), "%s/data/%llu", dir, (unsigned long long)st.st_ino);
	fd = open(path, O_RDWR);
	TEST_ASSERT(fd >= 0);
	TEST_ASSERT_EQ_INT(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 65536), 0);
	close(fd);
	TEST_ASSERT(cache_file_blocks(st.st_ino) < blocks);
	TEST_ASSERT_EQ_INT(fs_getattr(fs, st.st_ino, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_blocks, blocks);
	fs_forget(fs, st.st_ino, 1);
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);
	fs = open_fs(); /* from the table */
	TEST_ASSERT_EQ_INT(fs_getattr(fs, st.st_ino, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_blocks, blocks);
	/* a truncate without the file open: the cache file's count again */
	attr.st_size = 50000;
	TEST_ASSERT_EQ_INT(fs_setattr(fs, &root_ctx, st.st_ino, NULL, &attr, FS_SET_SIZE, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_blocks, cache_file_blocks(st.st_ino));
	TEST_ASSERT_EQ_INT(fs_getattr(fs, st.st_ino, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_blocks, cache_file_blocks(st.st_ino));
	/* written and closed again: counted at the close */
	TEST_ASSERT_EQ_INT(fs_open(fs, st.st_ino, O_RDWR, &fh), 0);
	write_bytes(fs, fh, 0, 300000, 'c');
	TEST_ASSERT_EQ_INT(fs_release(fs, fh), 0);
	blocks = cache_file_blocks(st.st_ino);
	TEST_ASSERT(blocks >= 300000 / 512);
	TEST_ASSERT_EQ_INT(fs_getattr(fs, st.st_ino, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_blocks, blocks);
	fs_forget(fs, st.st_ino, 1);
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);
}

/* A child writes and dies without a word; the next open recovers the size. */
/* Wait for the child PID (a "crash": it exits without fs_free); it must have exited 0. */
static void wait_child(pid_t pid)
{
	int status;

	TEST_ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
	TEST_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_crash_recovery(void)
{
	struct stat st;
	pid_t pid = fork();

	if (pid == 0) {
		struct fs *fs = open_fs();
		struct fs_file *fh;
		if (fs_create(fs, &root_ctx, 1, "c", 0644, O_RDWR, &fh, &st))
			_exit(1);
		if (fs_fsync(fs, fh, false)) /* the creation committed */
			_exit(2);
		write_bytes(fs, fh, 0, 12345, 'c'); /* size only in memory */
		_exit(0);
	}
	wait_child(pid);
	struct fs *fs = open_fs();
	TEST_ASSERT_EQ_INT(fs_lookup(fs, 1, "c", &st), 0);
	TEST_ASSERT_EQ_INT(st.st_size, 12345);
	fs_forget(fs, st.st_ino, 1);
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);
}

/*
 * A truncate cuts the cache file before it commits (a full disk needs the
 * room): a crash in between leaves the cache file shorter than the row.
 * Recovery takes the truncate as done — never the old size with a tail of
 * zeros the file never held.
 */
static void test_crash_inside_a_truncate(void)
{
	struct stat st;
	struct fs_file *fh;
	char path[128], buf[70000];
	size_t len = 0;
	pid_t pid = fork();

	if (pid == 0) {
		struct fs *fs = open_fs();
		if (fs_create(fs, &root_ctx, 1, "t", 0644, O_RDWR, &fh, &st))
			_exit(1);
		write_bytes(fs, fh, 0, 150000, 't'); /* three chunks of 64 KiB */
		if (fs_fsync(fs, fh, false))
			_exit(2);
		/* the truncate's first half, as the crash found it */
		snprintf(path, sizeof(path), "%s/data/%llu", dir, (unsigned long long)st.st_ino);
		if (truncate(path, 70000) < 0)
			_exit(3);
		_exit(0);
	}
	wait_child(pid);
	struct fs *fs = open_fs();
	TEST_ASSERT_EQ_INT(fs_lookup(fs, 1, "t", &st), 0);
	TEST_ASSERT_EQ_INT(st.st_size, 70000);
	TEST_ASSERT_EQ_INT(fs_open(fs, st.st_ino, O_RDONLY, &fh), 0);
	{
		struct fs_read *rd;
		int fd;
		TEST_ASSERT_EQ_INT(fs_read_prepare(fs, fh, 0, sizeof(buf), &fd, &len, &rd), 0);
		TEST_ASSERT_EQ_INT(len, 70000);
		TEST_ASSERT_EQ_INT(pread(fd, buf, len, 0), 70000);
		fs_read_done(fs, rd);
	}
	TEST_ASSERT(buf[0] == 't' && buf[69999] == 't');
	fs_release(fs, fh);
	fs_forget(fs, st.st_ino, 1);
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);
}

/* Read the LEN bytes of file NAME in the root; true if each is BYTE. */
static bool file_holds(struct fs *fs, const char *name, size_t len, char byte)
{
	struct fs_file *fh;
	struct fs_read *rd;
	struct stat st;
	char buf[8192];
	size_t got = 0;
	bool ok = false;
	int fd;

	if (len > sizeof(buf) || fs_lookup(fs, 1, name, &st) || (size_t)st.st_size != len)
		return false;
	if (fs_open(fs, st.st_ino, O_RDONLY, &fh) == 0) {
		if (fs_read_prepare(fs, fh, 0, sizeof(buf), &fd, &got, &rd) == 0) {
			ok = got == len && pread(fd, buf, len, 0) == (ssize_t)len;
			for (size_t i = 0; ok && i < len; i++)
				ok = buf[i] == byte;
			fs_read_done(fs, rd);
		}
		fs_release(fs, fh);
	}
	fs_forget(fs, st.st_ino, 1);
	return ok;
}

/*
 * Group commit: a crash loses the open batch whole. A file created and
 * written inside it is gone with its cache file (its write marks joined the
 * batch, its bytes are a stray); what was committed before stays.
 */
static void test_crash_loses_the_batch_whole(void)
{
	struct stat st;
	int pfd[2];
	uint64_t ino = 0;

	TEST_ASSERT_EQ_INT(pipe(pfd), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct fs *fs = open_fs_batch(600000); /* nothing commits by age */
		struct fs_file *fh;
		if (fs_create(fs, &root_ctx, 1, "kept", 0644, O_RDWR, &fh, &st))
			_exit(1);
		write_bytes(fs, fh, 0, 3000, 'k');
		if (fs_fsync(fs, fh, false) || fs_release(fs, fh))
			_exit(2);
		if (fs_create(fs, &root_ctx, 1, "new", 0644, O_RDWR, &fh, &st))
			_exit(3);
		write_bytes(fs, fh, 0, 5000, 'n');
		if (fs_release(fs, fh) || !cache_file_exists(st.st_ino))
			_exit(4);
		ino = st.st_ino;
		if (write(pfd[1], &ino, sizeof(ino)) != sizeof(ino))
			_exit(5);
		_exit(0);
	}
	close(pfd[1]);
	wait_child(pid);
	TEST_ASSERT_EQ_INT(read(pfd[0], &ino, sizeof(ino)), (long long)sizeof(ino));
	close(pfd[0]);
	struct fs *fs = open_fs();
	TEST_ASSERT_EQ_INT(fs_lookup(fs, 1, "new", &st), -ENOENT);
	TEST_ASSERT(!cache_file_exists(ino));
	TEST_ASSERT(file_holds(fs, "kept", 3000, 'k'));
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);
}

/* Whether the kernel's references to INO are all the daemon keeps of it (idle: fs.c, inode_compact). */
static bool inode_idle(struct fs *fs, uint64_t ino, uint64_t *refs)
{
	bool idle;

	pthread_mutex_lock(&fs->lock);
	idle = !itable_find(fs, ino);
	*refs = reftab_get(&fs->refs, ino);
	pthread_mutex_unlock(&fs->lock);
	return idle;
}

/*
 * An idle inode is forgotten without a look at its row, so one whose last
 * link goes while the kernel knows it must not stay idle: it is deleted at
 * the kernel's last forget, not before, whether the kernel looked it up
 * once or twice; a linked idle inode forgotten stays whole.
 */
static void test_idle_inodes_unlinked_and_forgotten(void)
{
	struct fs *fs = open_fs();
	struct fs_file *fh;
	struct stat st, kst;
	uint64_t refs;

	TEST_ASSERT_EQ_INT(fs_start(fs), 0);
	TEST_ASSERT_EQ_INT(fs_create(fs, &root_ctx, 1, "h", 0644, O_RDWR, &fh, &st), 0);
	write_bytes(fs, fh, 0, 3000, 'h');
	TEST_ASSERT_EQ_INT(fs_release(fs, fh), 0);
	TEST_ASSERT_EQ_INT(fs_lookup(fs, 1, "h", &st), 0);
	TEST_ASSERT_EQ_INT(fs_link(fs, st.st_ino, 1, "h2", &st), 0);
	TEST_ASSERT(inode_idle(fs, st.st_ino, &refs));
	TEST_ASSERT_EQ_INT(refs, 3);
	TEST_ASSERT_EQ_INT(fs_unlink(fs, 1, "h"), 0); /* one link left: still idle */
	TEST_ASSERT(inode_idle(fs, st.st_ino, &refs));
	TEST_ASSERT_EQ_INT(fs_unlink(fs, 1, "h2"), 0);
	TEST_ASSERT(!inode_idle(fs, st.st_ino, &refs));
	fs_forget(fs, st.st_ino, 2);
	TEST_ASSERT_EQ_INT(fs_getattr(fs, st.st_ino, &kst), 0);
	TEST_ASSERT_EQ_INT(kst.st_nlink, 0);
	TEST_ASSERT(cache_file_exists(st.st_ino));
	fs_forget(fs, st.st_ino, 1);
	TEST_ASSERT_EQ_INT(fs_getattr(fs, st.st_ino, &kst), -ENOENT);
	TEST_ASSERT(cache_file_gone_soon(st.st_ino));

	/* linked: the last forget drops the count, the file stays */
	TEST_ASSERT_EQ_INT(fs_create(fs, &root_ctx, 1, "k", 0644, O_RDWR, &fh, &st), 0);
	write_bytes(fs, fh, 0, 3000, 'k');
	TEST_ASSERT_EQ_INT(fs_release(fs, fh), 0);
	TEST_ASSERT(inode_idle(fs, st.st_ino, &refs));
	TEST_ASSERT_EQ_INT(refs, 1);
	fs_forget(fs, st.st_ino, 1);
	TEST_ASSERT(inode_idle(fs, st.st_ino, &refs));
	TEST_ASSERT_EQ_INT(refs, 0);
	TEST_ASSERT(file_holds(fs, "k", 3000, 'k'));
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);
}

/*
 * A deletion waits in the batch, and its cache file with it: a crash before
 * the commit brings the file back whole, never a name without its bytes.
 */
static void test_crash_before_a_deletion_commits(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct fs *fs = open_fs_batch(600000);
		struct fs_file *fh;
		struct stat st;
		if (fs_create(fs, &root_ctx, 1, "d", 0644, O_RDWR, &fh, &st))
			_exit(1);
		write_bytes(fs, fh, 0, 5000, 'd');
		if (fs_fsync(fs, fh, false) || fs_release(fs, fh))
			_exit(2);
		if (fs_unlink(fs, 1, "d"))
			_exit(3);
		fs_forget(fs, st.st_ino, 1); /* no references left: the inode is deleted */
		if (fs_getattr(fs, st.st_ino, &st) != -ENOENT)
			_exit(4);
		_exit(0);
	}
	wait_child(pid);
	struct fs *fs = open_fs();
	TEST_ASSERT(file_holds(fs, "d", 5000, 'd'));
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);
}

/*
 * security.selinux and security.capability are answered from memory until
 * some inode has one (fs.c, rare_names); the first one stored, and at the
 * next mount the table, turn on the answers of ext4.
 */
static void test_rare_xattr_names(void)
{
	struct fs *fs = open_fs();
	struct fs_file *fh;
	struct stat a, b;
	char buf[64];
	size_t len = 0;

	TEST_ASSERT_EQ_INT(fs_create(fs, &root_ctx, 1, "a", 0644, O_RDWR, &fh, &a), 0);
	TEST_ASSERT_EQ_INT(fs_release(fs, fh), 0);
	TEST_ASSERT_EQ_INT(fs_create(fs, &root_ctx, 1, "b", 0644, O_RDWR, &fh, &b), 0);
	TEST_ASSERT_EQ_INT(fs_release(fs, fh), 0);
	TEST_ASSERT_EQ_INT(fs_getxattr(fs, b.st_ino, "security.selinux", buf, sizeof(buf), &len),
			   -EOPNOTSUPP);
	TEST_ASSERT_EQ_INT(fs_getxattr(fs, b.st_ino, "security.capability", buf, sizeof(buf), &len),
			   -ENODATA);
	TEST_ASSERT_EQ_INT(fs_setxattr(fs, &root_ctx, a.st_ino, "security.selinux", "l", 1, 0), 0);
	TEST_ASSERT_EQ_INT(fs_getxattr(fs, a.st_ino, "security.selinux", buf, sizeof(buf), &len),
			   0);
	TEST_ASSERT_EQ_INT(len, 1);
	TEST_ASSERT_EQ_INT(fs_getxattr(fs, b.st_ino, "security.selinux", buf, sizeof(buf), &len),
			   -ENODATA);
	TEST_ASSERT_EQ_INT(fs_setxattr(fs, &root_ctx, a.st_ino, "security.capability", "c", 1, 0),
			   0);
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);

	fs = open_fs(); /* the table says which names are in use */
	TEST_ASSERT_EQ_INT(fs_getxattr(fs, a.st_ino, "security.capability", buf, sizeof(buf), &len),
			   0);
	TEST_ASSERT_EQ_INT(fs_getxattr(fs, b.st_ino, "security.selinux", buf, sizeof(buf), &len),
			   -ENODATA);
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);
}

/* An empty file gets no cache file (no ext4 inode) until its first write. */
static void test_cache_file_at_first_write(void)
{
	struct fs *fs = open_fs();
	struct fs_file *fh, *fh2;
	struct fs_read *rd;
	struct stat st;
	size_t len = 1;
	off_t pos = 0;
	int fd = 0;

	TEST_ASSERT_EQ_INT(fs_create(fs, &root_ctx, 1, "e", 0644, O_RDWR, &fh, &st), 0);
	TEST_ASSERT(!cache_file_exists(st.st_ino));
	TEST_ASSERT_EQ_INT(fs_read_prepare(fs, fh, 0, 4096, &fd, &len, &rd), 0);
	TEST_ASSERT_EQ_INT(len, 0);
	fs_read_done(fs, rd);
	TEST_ASSERT_EQ_INT(fs_fsync(fs, fh, false), 0);
	TEST_ASSERT_EQ_INT(fs_lseek(fs, fh, 0, SEEK_DATA, &pos), -ENXIO);
	TEST_ASSERT_EQ_INT(fs_release(fs, fh), 0);
	TEST_ASSERT(!cache_file_exists(st.st_ino));
	TEST_ASSERT_EQ_INT(fs_open(fs, st.st_ino, O_RDWR, &fh), 0);
	TEST_ASSERT_EQ_INT(fs_open(fs, st.st_ino, O_RDONLY, &fh2), 0);
	TEST_ASSERT(!cache_file_exists(st.st_ino));
	write_bytes(fs, fh, 0, 100, 'w');
	TEST_ASSERT(cache_file_exists(st.st_ino));
	/* the other handle, opened while the file was empty, reads the bytes */
	TEST_ASSERT_EQ_INT(fs_read_prepare(fs, fh2, 0, 4096, &fd, &len, &rd), 0);
	TEST_ASSERT_EQ_INT(len, 100);
	TEST_ASSERT(fd >= 0);
	fs_read_done(fs, rd);
	TEST_ASSERT_EQ_INT(fs_release(fs, fh2), 0);
	TEST_ASSERT_EQ_INT(fs_release(fs, fh), 0);
	fs_forget(fs, st.st_ino, 1);
	TEST_ASSERT(file_holds(fs, "e", 100, 'w'));
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);
}

/*
 * Set-id bits as Linux clears them for ext4, now Zero's to do (the kernel
 * leaves them to a filesystem with HANDLE_KILLPRIV_V2): a write or truncate
 * by someone other than root clears setuid, and setgid when group-executable
 * or the writer is outside the file's group; root's do not; a chown — or a
 * setattr with nothing to set, as chown(-1, -1) arrives — clears setuid
 * whoever makes it; the kernel's write-back of its cache (no writer) nothing.
 */
static void test_setid_bits_cleared_as_linux_does(void)
{
	struct fs *fs = open_fs();
	const struct fs_ctx user = {1000, 1000, in_no_group, NULL, 0};
	const struct fs_ctx member = {1000, 0, in_no_group, NULL, 0}; /* of the file's group */
	struct fs_file *fh;
	struct stat st, attr = {0};
	int fd;

	TEST_ASSERT_EQ_INT(fs_create(fs, &root_ctx, 1, "f", 0666, O_RDWR, &fh, &st), 0);
	{
		const struct {
			mode_t mode;
			const struct fs_ctx *who; /* NULL: the kernel writing back */
			mode_t after;
		} cases[] = {
		    {06777, &user, 0777},	 {06767, &user, 0767},	   {02767, &user, 0767},
		    {06777, &member, 0777},	 {06767, &member, 02767}, {04767, &member, 0767},
		    {06777, &root_ctx, 06777}, {06777, NULL, 06777},
		};
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			attr.st_mode = cases[i].mode;
			TEST_ASSERT_EQ_INT(fs_setattr(fs, &root_ctx, st.st_ino, NULL, &attr,
						      FS_SET_MODE, &st),
					   0);
			TEST_ASSERT_EQ_INT(fs_write_begin(fs, cases[i].who, fh, 0, 1, &fd), 0);
			TEST_ASSERT_EQ_INT(pwrite(fd, "x", 1, 0), 1);
			fs_write_end(fs, cases[i].who, fh, 0, 1);
			TEST_ASSERT_EQ_INT(fs_getattr(fs, st.st_ino, &st), 0);
			TEST_ASSERT_EQ_INT(st.st_mode & 07777, cases[i].after);
		}
	}
	/* a user's truncate clears them, root's does not */
	attr.st_mode = 06777;
	TEST_ASSERT_EQ_INT(fs_setattr(fs, &root_ctx, st.st_ino, NULL, &attr, FS_SET_MODE, &st), 0);
	attr.st_size = 0;
	TEST_ASSERT_EQ_INT(fs_setattr(fs, &root_ctx, st.st_ino, NULL, &attr, FS_SET_SIZE, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_mode & 07777, 06777);
	TEST_ASSERT_EQ_INT(fs_setattr(fs, &user, st.st_ino, NULL, &attr, FS_SET_SIZE, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_mode & 07777, 0777);
	/* chown by root, and a setattr with nothing to set (chown(-1, -1)) */
	attr.st_mode = 06745;
	TEST_ASSERT_EQ_INT(fs_setattr(fs, &root_ctx, st.st_ino, NULL, &attr, FS_SET_MODE, &st), 0);
	attr.st_uid = 5;
	TEST_ASSERT_EQ_INT(fs_setattr(fs, &root_ctx, st.st_ino, NULL, &attr, FS_SET_UID, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_mode & 07777, 02745); /* setgid without g+x: kept for root */
	attr.st_mode = 06755;
	TEST_ASSERT_EQ_INT(fs_setattr(fs, &root_ctx, st.st_ino, NULL, &attr, FS_SET_MODE, &st), 0);
	TEST_ASSERT_EQ_INT(fs_setattr(fs, &root_ctx, st.st_ino, NULL, &attr, 0, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_mode & 07777, 0755);
	/* times alone leave them */
	attr.st_mode = 06755;
	TEST_ASSERT_EQ_INT(fs_setattr(fs, &root_ctx, st.st_ino, NULL, &attr, FS_SET_MODE, &st), 0);
	TEST_ASSERT_EQ_INT(fs_setattr(fs, &user, st.st_ino, NULL, &attr, FS_SET_MTIME_NOW, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_mode & 07777, 06755);
	TEST_ASSERT_EQ_INT(fs_release(fs, fh), 0);
	fs_forget(fs, st.st_ino, 1);
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);
}

/*
 * With the writeback cache, the kernel's write-back (no writer) changes the
 * size but not the times: the kernel keeps them and sends them itself. A
 * writer's write sets them, with the cache or without.
 */
static void test_writeback_leaves_the_times(void)
{
	struct fs_options opt = {.cache_dir = dir, .chunk_size = 1u << 16, .writeback_cache = true};
	struct timespec old = {.tv_sec = 1000000000, .tv_nsec = 5};
	struct stat st, attr = {0};
	struct fs_file *fh;
	struct fs *fs = NULL;
	char err[256] = "";
	int fd = -1;

	TEST_ASSERT_EQ_INT(fs_new(&opt, &fs, err, sizeof(err)), 0);
	TEST_ASSERT_EQ_INT(fs_create(fs, &root_ctx, 1, "f", 0644, O_RDWR, &fh, &st), 0);
	attr.st_mtim = old;
	TEST_ASSERT_EQ_INT(fs_setattr(fs, &root_ctx, st.st_ino, fh, &attr, FS_SET_MTIME, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_mtim.tv_sec, old.tv_sec);
	TEST_ASSERT_EQ_INT(fs_write_begin(fs, NULL, fh, 0, 3, &fd), 0);
	TEST_ASSERT_EQ_INT(pwrite(fd, "abc", 3, 0), 3);
	fs_write_end(fs, NULL, fh, 0, 3);
	TEST_ASSERT_EQ_INT(fs_getattr(fs, st.st_ino, &st), 0);
	TEST_ASSERT_EQ_INT(st.st_size, 3);
	TEST_ASSERT_EQ_INT(st.st_mtim.tv_sec, old.tv_sec);
	TEST_ASSERT_EQ_INT(st.st_mtim.tv_nsec, old.tv_nsec);
	write_bytes(fs, fh, 3, 2, 'x'); /* a writer's own */
	TEST_ASSERT_EQ_INT(fs_getattr(fs, st.st_ino, &st), 0);
	TEST_ASSERT(st.st_mtim.tv_sec > old.tv_sec);
	TEST_ASSERT_EQ_INT(fs_release(fs, fh), 0);
	TEST_ASSERT_EQ_INT(fs_free(fs), 0);
}

int main(void)
{
	char tmpl[] = "/tmp/zero-test-fs-XXXXXX";

	if (!mkdtemp(tmpl))
		return 1;
	snprintf(dir, sizeof(dir), "%s", tmpl);
	void (*tests[])(void) = {test_write_read_persist,
				 test_unlink_while_open,
				 test_rename_rules,
				 test_names_and_links,
				 test_setgid_directory,
				 test_punch_and_bounds,
				 test_blocks_kept_in_the_row,
				 test_crash_recovery,
				 test_crash_inside_a_truncate,
				 test_crash_loses_the_batch_whole,
				 test_crash_before_a_deletion_commits,
				 test_idle_inodes_unlinked_and_forgotten,
				 test_rare_xattr_names,
				 test_cache_file_at_first_write,
				 test_setid_bits_cleared_as_linux_does,
				 test_writeback_leaves_the_times};
	const char *names[] = {"test_write_read_persist",
			       "test_unlink_while_open",
			       "test_rename_rules",
			       "test_names_and_links",
			       "test_setgid_directory",
			       "test_punch_and_bounds",
			       "test_blocks_kept_in_the_row",
			       "test_crash_recovery",
			       "test_crash_inside_a_truncate",
			       "test_crash_loses_the_batch_whole",
			       "test_crash_before_a_deletion_commits",
			       "test_idle_inodes_unlinked_and_forgotten",
			       "test_rare_xattr_names",
			       "test_cache_file_at_first_write",
			       "test_setid_bits_cleared_as_linux_does",
			       "test_writeback_leaves_the_times"};
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		int before = test_failed_asserts;
		fresh_dir();
		tests[i]();
		if (test_failed_asserts == before) {
			test_passed_count++;
		} else {
			test_failed_count++;
			fprintf(stderr, "FAIL %s\n", names[i]);
		}
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return TEST_MAIN_END();
}
