/*
 * utab.h - telling umount(8) to run Zero's helper: a Zero mount is noted in
 * libmount's table of userspace mount options (/run/mount/utab) with
 * helper=fuse.zero, so `umount MOUNTPOINT` runs /sbin/umount.fuse.zero,
 * which waits for the daemon as `zero umount` does.
 */
#ifndef ZERO_UTAB_H
#define ZERO_UTAB_H

/*
 * Note the mount of SOURCE (the cache) at TARGET. Best effort: without the
 * right to write utab (not root) nothing is noted and umount(8) unmounts
 * without waiting. 0 or -errno.
 */
int utab_note_helper(const char *source, const char *target);
/* The mount at TARGET is gone: its note goes too (none is fine). 0 or -errno. */
int utab_forget(const char *target);

#endif /* ZERO_UTAB_H */
