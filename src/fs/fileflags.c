/*
 * fileflags.c - chattr's immutable and append-only flags: FS_IOC_GETFLAGS /
 * FS_IOC_SETFLAGS and FS_IOC_FSGETXATTR / FS_IOC_FSSETXATTR, and the checks
 * the fs core makes with them. See fileflags.h for the rules.
 */
#include "fs/fileflags.h"

#include "fs/fs.h"
#include "fs/fs_internal.h"
#include "meta/meta.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>

#define FLAGS_KEPT (META_INODE_IMMUTABLE | META_INODE_APPEND)

static bool immutable(const struct meta_inode *in)
{
	return in->flags & META_INODE_IMMUTABLE;
}

static bool append_only(const struct meta_inode *in)
{
	return in->flags & META_INODE_APPEND;
}

int fileflags_check_open(const struct meta_inode *in, int flags)
{
	bool writing = (flags & O_ACCMODE) != O_RDONLY;

	if (immutable(in) && (writing || (flags & O_TRUNC)))
		return -EPERM;
	if (append_only(in) && ((writing && !(flags & O_APPEND)) || (flags & O_TRUNC)))
		return -EPERM;
	return 0;
}

int fileflags_check_setattr(const struct meta_inode *in, int to_set)
{
	if (immutable(in))
		return -EPERM;
	/*
	 * Touching to the current time is the one change an append-only file
	 * allows, and the times of its appends, which the kernel's writeback
	 * cache stores after them.
	 */
	if (append_only(in) && (to_set & FS_SET_WRITE_TIMES))
		return 0;
	if (append_only(in) && (to_set & (FS_SET_MODE | FS_SET_UID | FS_SET_GID | FS_SET_SIZE |
					  FS_SET_ATIME | FS_SET_MTIME)))
		return -EPERM;
	return 0;
}

int fileflags_check_write(const struct meta_inode *in)
{
	return immutable(in) ? -EPERM : 0;
}

int fileflags_check_fallocate(const struct meta_inode *in, int mode)
{
	if (immutable(in) || (append_only(in) && (mode & ~FALLOC_FL_KEEP_SIZE)))
		return -EPERM;
	return 0;
}

int fileflags_check_change(const struct meta_inode *in)
{
	return immutable(in) || append_only(in) ? -EPERM : 0;
}

int fileflags_check_dir_add(const struct meta_inode *dir)
{
	return immutable(dir) ? -EPERM : 0;
}

int fileflags_check_dir_remove(const struct meta_inode *dir)
{
	return immutable(dir) || append_only(dir) ? -EPERM : 0;
}

/* ---- the ioctls ---- */

int fs_get_flags(struct fs *fs, uint64_t ino, uint32_t *flags, uint32_t *xflags)
{
	struct meta_inode in;
	int ret;

	pthread_mutex_lock(&fs->lock);
	ret = inode_load(fs, ino, &in);
	pthread_mutex_unlock(&fs->lock);
	if (ret)
		return ret;
	*flags = (immutable(&in) ? FS_IMMUTABLE_FL : 0) | (append_only(&in) ? FS_APPEND_FL : 0);
	*xflags =
	    (immutable(&in) ? FS_XFLAG_IMMUTABLE : 0) | (append_only(&in) ? FS_XFLAG_APPEND : 0);
	return 0;
}

/* Replace IN's kept flags with KEPT (META_INODE_* bits); ctime changes as on ext4. */
/*
 * With the kernel's writeback cache, a write through a descriptor the flag
 * forbids would land in the page cache and be refused only when written
 * back, its bytes seen meanwhile: so the flag is refused (EBUSY) while such
 * a descriptor is open — for immutable any open for writing, for
 * append-only one without O_APPEND. Without the cache Zero refuses the
 * writes themselves, as ext4 does. Lock held.
 */
static int flags_check_writers(struct fs *fs, uint64_t ino, const struct meta_inode *in,
			       uint32_t kept)
{
	struct fs_inode *ip = fs->writeback_cache ? itable_find(fs, ino) : NULL;

	if (!ip)
		return 0;
	if ((kept & META_INODE_IMMUTABLE) && !immutable(in) && ip->nwriters)
		return -EBUSY;
	if ((kept & META_INODE_APPEND) && !append_only(in) && ip->noverwriters)
		return -EBUSY;
	return 0;
}

static int flags_store(struct fs *fs, uint64_t ino, uint32_t kept)
{
	struct meta_inode in;
	int ret;

	pthread_mutex_lock(&fs->lock);
	ret = inode_load(fs, ino, &in);
	if (ret == 0 && !S_ISREG(in.mode) && !S_ISDIR(in.mode))
		ret = -ENOTTY; /* only files and directories can be opened for the ioctl */
	if (ret == 0)
		ret = flags_check_writers(fs, ino, &in, kept);
	if (ret == 0) {
		in.flags = (in.flags & ~(uint32_t)FLAGS_KEPT) | kept;
		in.ctime = now_ts();
		ret = inode_store(fs, &in);
	}
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

int fs_set_flags(struct fs *fs, uint64_t ino, uint32_t flags)
{
	if (flags & ~(uint32_t)(FS_IMMUTABLE_FL | FS_APPEND_FL))
		return -EOPNOTSUPP;
	return flags_store(fs, ino,
			   ((flags & FS_IMMUTABLE_FL) ? META_INODE_IMMUTABLE : 0) |
			       ((flags & FS_APPEND_FL) ? META_INODE_APPEND : 0));
}

int fs_set_xflags(struct fs *fs, uint64_t ino, uint32_t xflags, bool other_fields)
{
	if ((xflags & ~(uint32_t)(FS_XFLAG_IMMUTABLE | FS_XFLAG_APPEND)) || other_fields)
		return -EOPNOTSUPP;
	return flags_store(fs, ino,
			   ((xflags & FS_XFLAG_IMMUTABLE) ? META_INODE_IMMUTABLE : 0) |
			       ((xflags & FS_XFLAG_APPEND) ? META_INODE_APPEND : 0));
}
