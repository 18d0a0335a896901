/*
 * utab.c - a Zero mount noted for umount(8) (see utab.h), with libmount's
 * own update API, as udisks notes its mounts: umount(8) finds a FUSE
 * mount's type by statfs ("fuse", no helper to run) unless utab holds
 * userspace options for the mountpoint; with helper=fuse.zero there, it
 * runs /sbin/umount.fuse.zero and removes the entry after it.
 */
#include "cli/utab.h"

#include <errno.h>
#include <libmount.h>

int utab_note_helper(const char *source, const char *target)
{
	struct libmnt_update *upd = mnt_new_update();
	struct libmnt_fs *fs = mnt_new_fs();
	int ret = -ENOMEM;

	if (!upd || !fs)
		goto out_free;
	ret = mnt_fs_set_source(fs, source);
	if (ret == 0)
		ret = mnt_fs_set_target(fs, target);
	if (ret == 0)
		ret = mnt_fs_set_fstype(fs, "fuse.zero");
	if (ret == 0)
		ret = mnt_fs_set_options(fs, "helper=fuse.zero");
	if (ret == 0)
		ret = mnt_update_set_fs(upd, 0, NULL, fs);
	/* 1: nothing to update (no utab on this system) */
	if (ret == 0)
		ret = mnt_update_table(upd, NULL);
	else if (ret == 1)
		ret = 0;
out_free:
	mnt_free_fs(fs);
	mnt_free_update(upd);
	return ret < 0 ? ret : 0;
}

int utab_forget(const char *target)
{
	struct libmnt_update *upd = mnt_new_update();
	int ret = -ENOMEM;

	if (!upd)
		return ret;
	ret = mnt_update_set_fs(upd, 0, target, NULL);
	if (ret == 0)
		ret = mnt_update_table(upd, NULL);
	mnt_free_update(upd);
	return ret < 0 ? ret : 0;
}
