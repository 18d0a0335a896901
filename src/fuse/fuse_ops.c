/*
 * fuse_ops.c - translates FUSE low-level requests into fs core calls.
 *
 * No policy and no SQL here: each handler unpacks the request, calls one fs_
 * function and replies. Errors from fs are -errno and are negated only here,
 * at the reply.
 *
 * Lookup counts: every fuse_reply_entry()/fuse_reply_create() and every
 * entry added by readdirplus hands the kernel one reference, which the fs
 * core has already counted; forget and forget_multi give them back.
 *
 * Reads reply with a buffer that names the cache file's descriptor, so
 * libfuse splices the bytes to the kernel without copying them through
 * user space; writes are spliced from the request pipe into the cache file.
 */
#define FUSE_USE_VERSION 314

#include "fuse/fuse_ops.h"

#include "common/log.h"
#include "fs/fs.h"
#include "fuse/bdi.h"
#include "fuse/initcaps.h"
#include "fuse/writeback.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

struct fuseops {
	struct fs *fs;
	struct fuse_session *se;
	struct fuseops_options opt;
	struct initcaps caps; /* what INIT was given beyond libfuse's list */
	struct wbflush *wb;   /* the writeback cache's threads (writeback.h); NULL without */
	unsigned max_read;    /* bytes per READ, as mounted (see fuseops_mount) */
	char *mountpoint;
	bool mounted;
};

static struct fs *req_fs(fuse_req_t req)
{
	return ((struct fuseops *)fuse_req_userdata(req))->fs;
}

static struct fuseops *req_ops(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static bool f_writeback(fuse_req_t req)
{
	return req_ops(req)->opt.writeback_cache;
}

static struct fs_file *fi_file(const struct fuse_file_info *fi)
{
	return (struct fs_file *)(uintptr_t)fi->fh;
}

/* Supplementary groups, read from the kernel only when a rule needs them. */
static bool ctx_in_group(const struct fs_ctx *ctx, gid_t gid)
{
	gid_t groups[64];
	int n;

	if (ctx->gid == gid)
		return true;
	n = fuse_req_getgroups(ctx->opaque, 64, groups);
	for (int i = 0; i < n && i < 64; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

static struct fs_ctx req_ctx(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct fs_ctx ctx = {c->uid, c->gid, ctx_in_group, req, c->umask};

	return ctx;
}

static void reply_err(fuse_req_t req, int ret)
{
	fuse_reply_err(req, -ret);
}

/*
 * A mount fenced by another holder of the lease is read-only: answer EROFS
 * to a request that would change something. True when it was answered.
 */
static bool refuse_readonly(fuse_req_t req)
{
	if (!fs_readonly(req_fs(req)))
		return false;
	fuse_reply_err(req, EROFS);
	return true;
}

/*
 * How long the kernel may keep ST. With the writeback cache, while writers'
 * room is short (fs/room.c), a regular file's attributes are not kept: the
 * kernel then asks for them before each write it would cache, and op_getattr
 * makes the writer wait or refuses it there.
 */
static double attr_timeout(fuse_req_t req, const struct stat *st)
{
	struct fuseops *f = req_ops(req);

	if (f->opt.writeback_cache && S_ISREG(st->st_mode) && fs_room_short(f->fs))
		return 0.0;
	return f->opt.attr_timeout;
}

static void fill_entry(fuse_req_t req, const struct stat *st, struct fuse_entry_param *e)
{
	struct fuseops *f = req_ops(req);

	memset(e, 0, sizeof(*e));
	e->ino = st->st_ino;
	e->generation = 1;
	e->attr = *st;
	e->attr_timeout = attr_timeout(req, st);
	e->entry_timeout = f->opt.entry_timeout;
}

/* Reply to an operation that created or found an entry. */
static void reply_entry(fuse_req_t req, int ret, const struct stat *st)
{
	struct fuse_entry_param e;

	if (ret) {
		reply_err(req, ret);
		return;
	}
	fill_entry(req, st, &e);
	if (fuse_reply_entry(req, &e) == -ENOENT)
		fs_forget(req_fs(req), st->st_ino, 1); /* the request was interrupted */
}

/*
 * Bytes per READ: 128 KiB and its header fit the pipe libfuse splices a
 * reply through (a pipe's default limit is 1 MiB), so a READ moves the cache
 * file's pages to the kernel without a copy; a larger READ was read into a
 * buffer first. The kernel keeps many of them in flight through the
 * read-ahead window (READ_AHEAD_KB). -o max_read=N still sets its own.
 */
#define MAX_READ (128u << 10)
/*
 * The kernel's read-ahead window: 128 KiB unless told. The mount sets its
 * bdi's (root only) before INIT is answered, and INIT asks for as much: the
 * kernel keeps the smaller of the two.
 */
#define READ_AHEAD_KB 1024u

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fuseops *f = userdata;
	unsigned int want = FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE | FUSE_CAP_SPLICE_READ |
			    FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_ASYNC_READ |
			    FUSE_CAP_PARALLEL_DIROPS |
			    FUSE_CAP_CACHE_SYMLINKS; /* a symlink's target never changes */

	/*
	 * POSIX ACLs: the kernel enforces them and caches them; the fs core
	 * keeps them (and inherits default ACLs), so the kernel must pass the
	 * create mode unmasked along with the umask (DONT_MASK).
	 */
	if ((conn->capable & FUSE_CAP_POSIX_ACL) && (conn->capable & FUSE_CAP_DONT_MASK))
		want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;

	if (f->opt.writeback_cache)
		want |= FUSE_CAP_WRITEBACK_CACHE;
	conn->want |= want & conn->capable;
	/*
	 * Setuid/setgid: initcaps adds HANDLE_KILLPRIV_V2 to the reply (fs
	 * clears the bits on write, truncate and chown, see fs_setattr), so the
	 * kernel stops asking for security.capability before every write.
	 * Without it the kernel clears them itself through setattr. O_TRUNC
	 * arrives as setattr.
	 */
	conn->want &= ~(unsigned int)(FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_ATOMIC_O_TRUNC |
				      FUSE_CAP_EXPORT_SUPPORT);
	if (!f->opt.writeback_cache)
		conn->want &= ~(unsigned int)FUSE_CAP_WRITEBACK_CACHE;
	conn->max_write = 1u << 20;
	conn->max_read = f->max_read; /* libfuse insists that it say what the mount said */
	conn->max_readahead = READ_AHEAD_KB << 10; /* the bdi's, set at the mount */
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	conn->time_gran = 1;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct stat st;
	int ret = fs_lookup(req_fs(req), parent, name, &st);

	if (ret == -ENOENT) {
		/* a negative entry the kernel may cache: this mount is the only writer */
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.entry_timeout = req_ops(req)->opt.entry_timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	reply_entry(req, ret, &st);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_forget(req_fs(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		fs_forget(req_fs(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/*
 * With the writeback cache the kernel asks with a handle before a write it
 * would cache (and before a read past the size it knows) once the
 * attributes have no cache time left: while room is short, a writer waits
 * here for it, or gets ENOSPC from its write() (fs/room.c).
 */
static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int ret = 0;

	if (fi && f_writeback(req))
		ret = fs_room_wait(req_fs(req), fi_file(fi));
	if (ret == 0)
		ret = fs_getattr(req_fs(req), ino, &st);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_attr(req, &st, attr_timeout(req, &st));
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct fs_ctx ctx = req_ctx(req);
	struct stat st;
	int set = 0, ret;

	if (refuse_readonly(req))
		return;

	if (to_set & FUSE_SET_ATTR_MODE)
		set |= FS_SET_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		set |= FS_SET_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		set |= FS_SET_GID;
	if (to_set & FUSE_SET_ATTR_SIZE)
		set |= FS_SET_SIZE;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		set |= FS_SET_ATIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		set |= FS_SET_ATIME;
	/*
	 * With the writeback cache the kernel sends "now" for mtime as a time of
	 * its own: an atime set to now beside it says that it is now (utimensat
	 * with no times, or touch), which an append-only file allows.
	 */
	if ((to_set & FUSE_SET_ATTR_MTIME_NOW) ||
	    (f_writeback(req) && (to_set & FUSE_SET_ATTR_MTIME) && (to_set & FUSE_SET_ATTR_ATIME_NOW)))
		set |= FS_SET_MTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		set |= FS_SET_MTIME;
	if (to_set & FUSE_SET_ATTR_CTIME)
		set |= FS_SET_CTIME;
	/*
	 * mtime (and ctime) alone through a descriptor: the writeback cache
	 * storing the times of writes (utimensat and futimens send no descriptor).
	 */
	if (fi && f_writeback(req) && (set & FS_SET_MTIME) && !(set & ~(FS_SET_MTIME | FS_SET_CTIME)))
		set |= FS_SET_WRITE_TIMES;
	ret = fs_setattr(req_fs(req), &ctx, ino, fi ? fi_file(fi) : NULL, attr, set, &st);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_attr(req, &st, attr_timeout(req, &st));
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[4097];
	size_t len = 0;
	int ret = fs_readlink(req_fs(req), ino, buf, sizeof(buf) - 1, &len);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	buf[len < sizeof(buf) - 1 ? len : sizeof(buf) - 1] = '\0';
	fuse_reply_readlink(req, buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct fs_ctx ctx = req_ctx(req);
	struct stat st;

	if (refuse_readonly(req))
		return;

	reply_entry(req, fs_mknod(req_fs(req), &ctx, parent, name, mode, rdev, &st), &st);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fs_ctx ctx = req_ctx(req);
	struct stat st;

	if (refuse_readonly(req))
		return;

	reply_entry(req, fs_mkdir(req_fs(req), &ctx, parent, name, mode, &st), &st);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct fs_ctx ctx = req_ctx(req);
	struct stat st;

	if (refuse_readonly(req))
		return;

	reply_entry(req, fs_symlink(req_fs(req), &ctx, parent, name, link, &st), &st);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct stat st;

	if (refuse_readonly(req))
		return;

	reply_entry(req, fs_link(req_fs(req), ino, newparent, newname, &st), &st);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (refuse_readonly(req))
		return;
	reply_err(req, fs_unlink(req_fs(req), parent, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (refuse_readonly(req))
		return;
	reply_err(req, fs_rmdir(req_fs(req), parent, name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct fs_ctx ctx = req_ctx(req);

	if (refuse_readonly(req))
		return;

	reply_err(req, fs_rename(req_fs(req), &ctx, parent, name, newparent, newname, flags));
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_file *fh;
	int ret;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		if (refuse_readonly(req))
			return;
	ret = fs_open(req_fs(req), ino, fi->flags, &fh);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	fi->fh = (uintptr_t)fh;
	/* every change to the bytes passes through the kernel: its cache stays valid */
	fi->keep_cache = fs_file_keep_cache(fh);
	fi->direct_io = fs_file_direct_io(fh);
	if (fi->direct_io)
		fi->keep_cache = 0;
	fi->noflush = 1; /* see op_flush */
	if (fuse_reply_open(req, fi) == -ENOENT)
		fs_release(req_fs(req), fh);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fs_ctx ctx = req_ctx(req);
	struct fuse_entry_param e;
	struct fs_file *fh;
	struct stat st;
	int ret;

	if (refuse_readonly(req))
		return;
	ret = fs_create(req_fs(req), &ctx, parent, name, mode, fi->flags, &fh, &st);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	fi->fh = (uintptr_t)fh;
	fi->keep_cache = 1;
	fi->noflush = 1; /* see op_flush */
	fill_entry(req, &st, &e);
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		fs_release(req_fs(req), fh);
		fs_forget(req_fs(req), st.st_ino, 1);
	}
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(0);
	struct fs *fs = req_fs(req); /* the reply frees REQ */
	struct fs_read *rd;
	size_t len;
	int fd, ret;

	(void)ino;
	ret = fs_read_prepare(fs, fi_file(fi), off, size, &fd, &len, &rd);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	if (len == 0) {
		fuse_reply_buf(req, NULL, 0); /* fd is -1 for an empty file without a cache file */
		fs_read_done(fs, rd);
		return;
	}
	buf.buf[0].size = len;
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
	fs_read_done(fs, rd);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
			 struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	struct fuseops *f = req_ops(req); /* the reply frees REQ */
	struct fs *fs = f->fs;
	struct fs_file *fh = fi_file(fi);
	ssize_t n;
	int fd, ret;

	if (refuse_readonly(req))
		return;

	(void)ino;
	struct fs_ctx ctx = req_ctx(req);

	/* a write-back of the kernel's page cache is nobody's write */
	const struct fs_ctx *writer = fi->writepage ? NULL : &ctx;
	ret = fs_write_begin(fs, writer, fh, off, out.buf[0].size, &fd);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = fd;
	out.buf[0].pos = off;
	n = fuse_buf_copy(&out, in, 0);
	if (n < 0) {
		fs_write_end(fs, writer, fh, off, 0);
		reply_err(req, (int)n);
		return;
	}
	fs_write_end(fs, writer, fh, off, (size_t)n);
	fuse_reply_write(req, (size_t)n);
	/* the kernel's write-back took room: the next cached writes may have to ask first */
	if (fi->writepage && !fs_room_short(fs))
		wbflush_room(f->wb);
}

/*
 * No FLUSH: a close() would wait for it. Without the writeback cache the
 * kernel sends none anyway (noflush at open); with it the kernel ignores
 * noflush, but, told ENOSYS once (no flush operation), it only writes the
 * file's dirty pages back at close, and returns their errors, without the
 * request. What a flush would do (commit the size and times) release does,
 * which does not hold up the closing process, and POSIX gives close no
 * durability. Locks are the kernel's: no lock owner to flush.
 */
static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	reply_err(req, fs_release(req_fs(req), fi_file(fi)));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	reply_err(req, fs_fsync(req_fs(req), fi_file(fi), datasync));
}

/*
 * No OPENDIR: Zero keeps nothing per open directory, and the kernel, told
 * ENOSYS once, opens directories itself from then on, with no OPENDIR and no
 * RELEASEDIR (two requests fewer per directory that find, du, ls or rm -r
 * opens), and with the flags this reply gave before: FOPEN_KEEP_CACHE and
 * FOPEN_CACHE_DIR, listings kept in its page cache. That is safe because
 * Zero is the only writer and every change to a directory passes through the
 * kernel, which drops the listing then. A warm ls -l costs no request, and
 * the ACLs the kernel caches survive it (a READDIRPLUS reply drops them). The
 * kernel has checked that the inode is a directory (it knows its mode).
 */
static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, ENOSYS);
}

struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
	bool plus;
};

static int dirbuf_add(void *arg, const char *name, const struct stat *st, off_t next)
{
	struct dirbuf *db = arg;
	size_t n;

	if (db->plus) {
		struct fuse_entry_param e;
		bool dots = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
		fill_entry(db->req, st, &e);
		if (dots)
			e.ino = 0; /* the kernel looks these up itself */
		n = fuse_add_direntry_plus(db->req, db->buf + db->used, db->size - db->used, name,
					   &e, next);
	} else {
		n = fuse_add_direntry(db->req, db->buf + db->used, db->size - db->used, name, st,
				      next);
	}
	if (n > db->size - db->used)
		return 1;
	db->used += n;
	return 0;
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct dirbuf db = {req, malloc(size), size, 0, plus};
	int ret;

	if (!db.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = fs_readdir(req_fs(req), ino, off, plus, dirbuf_add, &db);
	if (ret && db.used == 0)
		reply_err(req, ret);
	else
		fuse_reply_buf(req, db.buf, db.used);
	free(db.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	readdir_common(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	readdir_common(req, ino, size, off, true);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	(void)fi;
	reply_err(req, fs_fsyncdir(req_fs(req), ino));
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	int ret = fs_statfs(req_fs(req), &sv);

	(void)ino;
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_statfs(req, &sv);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct fs_ctx ctx = req_ctx(req);

	if (refuse_readonly(req))
		return;

	reply_err(req, fs_setxattr(req_fs(req), &ctx, ino, name, value, size, flags));
}

/* Reply to getxattr/listxattr: SIZE 0 asks for the length only. */
static void reply_xattr(fuse_req_t req, int ret, const char *buf, size_t size, size_t len)
{
	if (ret)
		reply_err(req, ret);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
}

/*
 * With the writeback cache, have the kernel write INO's dirty pages back (a
 * FUSE inode invalidation launders them as it drops the pages, and waits
 * for the WRITEs to be answered), for an answer that must count every byte
 * written. A syncfs would not do: it does not wait for FUSE's WRITEs. The
 * wait is in this thread, so a SIGKILL landing during it leaves the daemon
 * unable to exit (see writeback.c); these calls are rare and short. 0 or
 * -errno.
 */
static int kernel_pages_written(struct fuseops *f, fuse_ino_t ino)
{
	int ret;

	if (!f->opt.writeback_cache)
		return 0;
	ret = fuse_lowlevel_notify_inval_inode(f->se, ino, 0, 0);
	return ret == -ENOENT ? 0 : ret; /* an inode the kernel does not hold has no pages */
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fuseops *f = req_ops(req);
	char *buf = size ? malloc(size) : NULL;
	size_t len = 0;
	int ret;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* a file's residency counts the bytes written: the kernel's first (as in op_lseek) */
	if (strcmp(name, "user.zero.residency") == 0) {
		ret = kernel_pages_written(f, ino);
		if (ret) {
			free(buf);
			reply_err(req, ret);
			return;
		}
	}
	ret = fs_getxattr(f->fs, ino, name, buf, size, &len);

	reply_xattr(req, ret, buf, size, len);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs_ctx ctx = req_ctx(req);
	char *buf = size ? malloc(size) : NULL;
	size_t len = 0;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int ret = fs_listxattr(req_fs(req), &ctx, ino, buf, size, &len);

	reply_xattr(req, ret, buf, size, len);
	free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	if (refuse_readonly(req))
		return;
	reply_err(req, fs_removexattr(req_fs(req), ino, name));
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct fs_ctx ctx = req_ctx(req);

	if ((mask & W_OK) && refuse_readonly(req))
		return;
	reply_err(req, fs_access(req_fs(req), &ctx, ino, mask));
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	if (refuse_readonly(req))
		return;
	(void)ino;
	reply_err(req, fs_fallocate(req_fs(req), fi_file(fi), mode, offset, length));
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct fuseops *f = req_ops(req);
	off_t result;
	int ret;

	/*
	 * With the writeback cache, bytes written may still be the kernel's
	 * alone, and the kernel asks without writing them back first: have it
	 * write back the file's dirty pages (it launders them as it drops the
	 * pages), so that the holes and the data found are those written.
	 */
	if (whence == SEEK_DATA || whence == SEEK_HOLE) {
		ret = kernel_pages_written(f, ino);
		if (ret) {
			reply_err(req, ret);
			return;
		}
	}
	ret = fs_lseek(req_fs(req), fi_file(fi), off, whence, &result);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_lseek(req, result);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len, int flags)
{
	size_t copied;
	int ret;

	if (refuse_readonly(req))
		return;

	(void)ino_in;
	(void)ino_out;
	if (flags) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	struct fs_ctx ctx = req_ctx(req);

	ret = fs_copy_file_range(req_fs(req), &ctx, fi_file(fi_in), off_in, fi_file(fi_out),
				 off_out, len, &copied);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_write(req, copied);
}

/*
 * The chattr ioctls. The kernel's VFS turns FS_IOC_[GS]ETFLAGS and
 * FS_IOC_FS[GS]ETXATTR into its own requests with an unsigned int of flags
 * (or a struct fsxattr), on files and directories alike (FUSE_IOCTL_DIR),
 * after checking ownership and CAP_LINUX_IMMUTABLE; INO names the inode
 * either way, so FI (a directory's has no handle) is not used.
 */
static void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		     struct fuse_file_info *fi, unsigned flags, const void *in_buf, size_t in_bufsz,
		     size_t out_bufsz)
{
	struct fs *fs = req_fs(req);
	uint32_t fl = 0, xfl = 0;
	struct fsxattr fa;
	int ret;

	(void)arg;
	(void)fi;
	(void)flags;
	switch (cmd) {
	case FS_IOC_GETFLAGS:
	case FS_IOC32_GETFLAGS: {
		uint64_t out = 0; /* an int or a long: the low bytes first */
		ret = fs_get_flags(fs, ino, &fl, &xfl);
		if (ret)
			break;
		out = fl;
		fuse_reply_ioctl(req, 0, &out, out_bufsz < sizeof(out) ? out_bufsz : sizeof(out));
		return;
	}
	case FS_IOC_SETFLAGS:
	case FS_IOC32_SETFLAGS:
		if (fs_readonly(fs)) {
			ret = -EROFS;
			break;
		}
		if (in_bufsz < sizeof(fl)) {
			ret = -EINVAL;
			break;
		}
		memcpy(&fl, in_buf, sizeof(fl));
		ret = fs_set_flags(fs, ino, fl);
		if (ret == 0) {
			fuse_reply_ioctl(req, 0, NULL, 0);
			return;
		}
		break;
	case FS_IOC_FSGETXATTR:
		ret = fs_get_flags(fs, ino, &fl, &xfl);
		if (ret)
			break;
		memset(&fa, 0, sizeof(fa));
		fa.fsx_xflags = xfl;
		fuse_reply_ioctl(req, 0, &fa, out_bufsz < sizeof(fa) ? out_bufsz : sizeof(fa));
		return;
	case FS_IOC_FSSETXATTR:
		if (fs_readonly(fs)) {
			ret = -EROFS;
			break;
		}
		if (in_bufsz < sizeof(fa)) {
			ret = -EINVAL;
			break;
		}
		memcpy(&fa, in_buf, sizeof(fa));
		ret = fs_set_xflags(fs, ino, fa.fsx_xflags,
				    fa.fsx_extsize || fa.fsx_projid || fa.fsx_cowextsize);
		if (ret == 0) {
			fuse_reply_ioctl(req, 0, NULL, 0);
			return;
		}
		break;
	default:
		ret = -ENOTTY;
		break;
	}
	reply_err(req, ret);
}

static const struct fuse_lowlevel_ops zero_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .symlink = op_symlink,
    .link = op_link,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .rename = op_rename,
    .open = op_open,
    .create = op_create,
    .read = op_read,
    .write_buf = op_write_buf,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .access = op_access,
    .fallocate = op_fallocate,
    .lseek = op_lseek,
    .copy_file_range = op_copy_file_range,
    .ioctl = op_ioctl,
};

/*
 * The device's I/O, as libfuse's own but for the INIT exchange, which
 * initcaps sees and extends (see initcaps.h).
 */
static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	struct fuseops *f = userdata;
	ssize_t n = read(fd, buf, len);

	if (n > 0)
		initcaps_read(&f->caps, buf, (size_t)n);
	return n;
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct fuseops *f = userdata;

	initcaps_write(&f->caps, iov, count);
	return writev(fd, iov, count);
}

/* Replies and writes spliced as libfuse would (it splices only through these once they are set). */
static ssize_t io_splice(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
			 unsigned int flags, void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

static const struct fuse_custom_io device_io = {
    .read = io_read, .writev = io_writev, .splice_receive = io_splice, .splice_send = io_splice};

/* fuse_opt treats ',' and '\' specially inside -o values: escape them. */
static void escape_opt(const char *in, char *out, size_t size)
{
	size_t o = 0;

	for (; *in && o + 3 < size; in++) {
		if (*in == ',' || *in == '\\')
			out[o++] = '\\';
		out[o++] = *in;
	}
	out[o] = '\0';
}

/* The max_read=N of the -o options in ARGV (the last given), else MAX_READ. */
static unsigned mount_max_read(int argc, char **argv)
{
	static const struct fuse_opt spec[] = {{"max_read=%u", 0, 0}, FUSE_OPT_END};
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	unsigned max_read = MAX_READ;

	for (int i = 0; i < argc; i++) {
		if (fuse_opt_add_arg(&args, argv[i]) != 0)
			goto out;
	}
	if (fuse_opt_parse(&args, &max_read, spec, NULL) != 0)
		max_read = MAX_READ; /* fuse_session_new will say what is wrong */
out:
	fuse_opt_free_args(&args);
	return max_read;
}

/* A wider read-ahead window than the kernel's 128 KiB (root only; else left). */
static void set_read_ahead(const struct bdi *b)
{
	int ret = bdi_set(b, "read_ahead_kb", READ_AHEAD_KB);

	if (ret)
		log_debug("read-ahead: cannot set %s/read_ahead_kb: %s", b->dir, strerror(-ret));
}

int fuseops_mount(struct fs *fs, const char *mountpoint, const struct fuseops_options *opt,
		  struct fuseops **out, char *err, size_t errlen)
{
	char fsname[8192], opts[8192 + 128];
	char *argv[8];
	int argc = 0, ret;
	struct fuse_args args;
	struct bdi bdi;
	bool have_bdi;
	struct fuseops *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->fs = fs;
	f->opt = *opt;
	f->mountpoint = strdup(mountpoint);
	if (!f->mountpoint) {
		free(f);
		return -ENOMEM;
	}
	escape_opt(opt->fsname, fsname, sizeof(fsname));
	snprintf(opts, sizeof(opts),
		 "default_permissions,allow_other,max_read=%u,subtype=zero,fsname=%s", MAX_READ,
		 fsname);
	argv[argc++] = "zero";
	argv[argc++] = "-o";
	argv[argc++] = opts;
	if (opt->user_options && *opt->user_options) {
		argv[argc++] = "-o";
		argv[argc++] = (char *)opt->user_options;
	}
	if (opt->debug)
		argv[argc++] = "-d";
	argv[argc] = NULL;
	f->max_read = mount_max_read(argc, argv);
	args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	f->se = fuse_session_new(&args, &zero_ops, sizeof(zero_ops), f);
	fuse_opt_free_args(&args);
	if (!f->se) {
		snprintf(err, errlen, "cannot start a FUSE session (bad -o options?)");
		ret = -EINVAL;
		goto out_free;
	}
	if (fuse_session_mount(f->se, mountpoint) != 0) {
		snprintf(err, errlen, "cannot mount at %s (is /dev/fuse usable?)", mountpoint);
		ret = -EIO;
		goto out_destroy;
	}
	f->mounted = true;
	have_bdi = bdi_of_mount("fuse.zero", opt->fsname, &bdi) == 0;
	if (have_bdi)
		set_read_ahead(&bdi);
	if (opt->writeback_cache) /* before any write can be cached */
		wbflush_keep_room(fs, have_bdi ? &bdi : NULL);
	f->caps.want = INITCAPS_KILLPRIV_V2;
	if (fuse_session_custom_io(f->se, &device_io, fuse_session_fd(f->se)) != 0)
		log_warn("FUSE: cannot hook the device's I/O; setuid bits cleared by the kernel");
	*out = f;
	return 0;

out_destroy:
	fuse_session_destroy(f->se);
out_free:
	free(f->mountpoint);
	free(f);
	return ret;
}

int fuseops_run(struct fuseops *f)
{
	struct fuse_loop_config *cfg;
	int ret;

	if (fuse_set_signal_handlers(f->se) != 0)
		return -EIO;
	cfg = fuse_loop_cfg_create();
	if (!cfg) {
		fuse_remove_signal_handlers(f->se);
		return -ENOMEM;
	}
	/* the kernel's cached writes reach Zero within a second (writeback.h) */
	if (f->opt.writeback_cache && wbflush_start(f->fs, f->se, f->mountpoint, 1000, &f->wb) != 0)
		log_warn("cannot start the write-back thread: written bytes reach the cache "
			 "only at fsync, close or the kernel's own write-back");
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	fuse_loop_cfg_set_max_threads(cfg, 16);
	fuse_loop_cfg_set_idle_threads(cfg, 4);
	ret = fuse_session_loop_mt(f->se, cfg);
	fuse_loop_cfg_destroy(cfg);
	fuse_remove_signal_handlers(f->se);
	if (ret > 0)
		ret = 0; /* ended by a signal */
	return ret;
}

void fuseops_free(struct fuseops *f)
{
	if (!f)
		return;
	if (f->mounted)
		fuse_session_unmount(f->se);
	/*
	 * Only now, /dev/fuse closed: after a signal ended the session with a
	 * file open for writing, a write-back round may wait for WRITEs no
	 * thread serves any more, until the connection is gone.
	 */
	wbflush_stop(f->wb);
	fuse_session_destroy(f->se);
	free(f->mountpoint);
	free(f);
}
