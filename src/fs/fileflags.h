/*
 * fileflags.h - the chattr flags Zero keeps, immutable (i) and append-only
 * (a), and the rules they impose, as on ext4.
 *
 * On ext4 the VFS enforces these flags from the inode's i_flags; a FUSE
 * inode's i_flags are the kernel's own, so the fs core enforces them here
 * instead, with the same errors (EPERM):
 *  - immutable: no open for writing, no write (even through a descriptor
 *    opened before), no setattr of any kind (truncate, chmod, chown, times),
 *    no setxattr/removexattr (ACLs too), no link, rename or unlink of it,
 *    and in a directory no entry added, removed or renamed;
 *  - append-only: open for writing only with O_APPEND and never O_TRUNC; no
 *    truncate, chmod, chown or explicit times (touching to now is allowed),
 *    no xattr changes, no link, rename or unlink of it, no fallocate beyond
 *    KEEP_SIZE; in a directory entries may be added but not removed.
 * Setting or clearing either flag needs CAP_LINUX_IMMUTABLE, and changing
 * flags at all needs ownership: the kernel checks both before it asks.
 * Every other flag is refused with EOPNOTSUPP (ext4 would keep some).
 * With the kernel's writeback cache (the default), writes reach Zero only
 * when written back: a flag that would refuse a descriptor open for writing
 * (immutable: any; append-only: one without O_APPEND) is itself refused
 * with EBUSY while such a descriptor is open, and the kernel's write-back of
 * the times of appends is allowed on an append-only file.
 *
 * The flags are bits of the inode row's flags column (META_INODE_*).
 */
#ifndef ZERO_FS_FILEFLAGS_H
#define ZERO_FS_FILEFLAGS_H

#include <stdint.h>

struct meta_inode;

/* Each returns 0 or -EPERM. */
/* An open with FLAGS (O_ACCMODE, O_APPEND, O_TRUNC) of IN. */
int fileflags_check_open(const struct meta_inode *in, int flags);
/* A setattr of the FS_SET_* bits TO_SET on IN. */
int fileflags_check_setattr(const struct meta_inode *in, int to_set);
/* A write into IN's bytes. */
int fileflags_check_write(const struct meta_inode *in);
/* A fallocate of MODE on IN. */
int fileflags_check_fallocate(const struct meta_inode *in, int mode);
/* A change of IN itself by name or attribute: xattrs, link, unlink, rename of it. */
int fileflags_check_change(const struct meta_inode *in);
/* A new entry in directory DIR. */
int fileflags_check_dir_add(const struct meta_inode *dir);
/* An entry of directory DIR removed or renamed away. */
int fileflags_check_dir_remove(const struct meta_inode *dir);

#endif /* ZERO_FS_FILEFLAGS_H */
