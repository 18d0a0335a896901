/*
 * xattr.c - extended attributes: get, set, list and remove, for the fs core.
 *
 * Stored in the metadata database (meta_xattr_*), one row per name; the
 * two POSIX ACLs go through acl.c (they are the mode's too); user.zero.*
 * are computed by the tier (residency, status) or name checkpoints (the
 * journal); trusted.* are listed only to root. A change updates the inode's
 * ctime in the same transaction and joins the group commit.
 */
#include "fs/acl.h"
#include "fs/fileflags.h"
#include "fs/fs.h"
#include "fs/fs_internal.h"
#include "journal/journal.h"
#include "meta/meta.h"
#include "tier/tier.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Zero stores user, trusted and security attributes and the two POSIX ACLs of system.*. */
static int check_xattr_name(const char *name)
{
	if (strncmp(name, "user.", 5) && strncmp(name, "trusted.", 8) &&
	    strncmp(name, "security.", 9) && !acl_is_name(name))
		return -EOPNOTSUPP;
	if (strlen(name) > 255)
		return -ERANGE;
	return 0;
}

/* Zero's own attributes: computed, never stored or listed. */
static bool is_zero_xattr(const char *name)
{
	return strncmp(name, "user.zero.", 10) == 0;
}

/*
 * Names the kernel asks for of every file though hardly any filesystem
 * holds them: security.capability before the first write after each time
 * it learns the file's attributes (to clear it; with HANDLE_KILLPRIV_V2,
 * before every write without it), and
 * security.selinux, which ls -l asks of every file when SELinux is off (with
 * it on, the kernel answers). Until one is stored, they are answered from
 * memory, without the lock: security.capability ENODATA, security.selinux
 * EOPNOTSUPP — a filesystem without labels, which ls then stops asking (it
 * remembers that per device). The first one stored turns on the answers of
 * ext4 (fs->rare_used, also taken from the table at mount).
 */
static const struct {
	const char *name;
	int absent; /* the answer while no inode has it */
} rare_names[] = {{"security.capability", -ENODATA}, {"security.selinux", -EOPNOTSUPP}};

static int rare_name(const char *name)
{
	for (size_t i = 0; i < sizeof(rare_names) / sizeof(rare_names[0]); i++)
		if (strcmp(name, rare_names[i].name) == 0)
			return (int)i;
	return -1;
}

/* At mount: which of the rare names some inode holds (on an error: as if all). */
void xattr_rare_names_load(struct fs *fs)
{
	for (size_t i = 0; i < sizeof(rare_names) / sizeof(rare_names[0]); i++)
		if (meta_xattr_name_used(fs->meta, rare_names[i].name) != 0)
			fs->rare_used |= 1u << i;
}

/*
 * Set (FLAGS >= 0) or remove (FLAGS -1) attribute NAME of INO for CTX, and
 * update its ctime. ACLs go through acl_set(), which may change the mode.
 */
static int xattr_change(struct fs *fs, const struct fs_ctx *ctx, uint64_t ino, const char *name,
			const void *value, size_t size, int flags)
{
	struct meta_inode in;
	int ret;

	pthread_mutex_lock(&fs->lock);
	ret = inode_load(fs, ino, &in);
	if (ret == 0)
		ret = fileflags_check_change(&in);
	if (ret)
		goto out_unlock;
	ret = txn_begin(fs);
	if (ret)
		goto out_unlock;
	if (flags >= 0 && rare_name(name) >= 0) /* before the row exists: readers look it up */
		__atomic_fetch_or(&fs->rare_used, 1u << rare_name(name), __ATOMIC_SEQ_CST);
	if (acl_is_name(name))
		ret = acl_set(fs, ctx, &in, name, flags >= 0 ? value : NULL, size);
	else if (flags >= 0)
		ret = meta_xattr_set(fs->meta, ino, name, value, size, flags);
	else
		ret = meta_xattr_remove(fs->meta, ino, name);
	if (ret == 0) {
		in.ctime = now_ts();
		ret = inode_store(fs, &in);
	}
	if (ret)
		txn_rollback(fs);
	else
		ret = txn_commit_deferred(fs);
out_unlock:
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

int fs_setxattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t ino, const char *name,
		const void *value, size_t size, int flags)
{
	int ret = check_xattr_name(name);

	if (ret)
		return ret;
	if (strncmp(name, "user.zero.checkpoint.", 21) == 0) {
		/* names a state of the whole filesystem: its owner's (or root's) call */
		if (ctx->uid != 0 && ctx->uid != getuid())
			return -EPERM;
		return fs->journal ? journal_checkpoint_xattr(fs->journal, name + 21, value, size)
				   : -EROFS;
	}
	if (is_zero_xattr(name)) {
		pthread_mutex_lock(&fs->lock);
		ret = fs->tier ? tier_setxattr(fs, ino, name, value, size) : -ENOTSUP;
		pthread_mutex_unlock(&fs->lock);
		return ret;
	}
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	return xattr_change(fs, ctx, ino, name, value, size, flags);
}

int fs_getxattr(struct fs *fs, uint64_t ino, const char *name, void *buf, size_t size, size_t *len)
{
	int ret = check_xattr_name(name);

	if (ret)
		return ret == -EOPNOTSUPP ? -ENODATA : ret;
	ret = rare_name(name);
	if (ret >= 0 && !(__atomic_load_n(&fs->rare_used, __ATOMIC_SEQ_CST) & (1u << ret)))
		return rare_names[ret].absent;
	pthread_mutex_lock(&fs->lock);
	if (strcmp(name, "user.zero.checkpoints") == 0)
		ret = journal_checkpoints_text(fs->meta, buf, size, len);
	else if (is_zero_xattr(name))
		ret = fs->tier ? tier_getxattr(fs, ino, name, buf, size, len) : -ENODATA;
	else
		ret = meta_xattr_get(fs->meta, ino, name, buf, size, len);
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

/* Drop the trusted.* names from the NUL-separated list BUF of length *LEN. */
static void drop_trusted_names(char *buf, size_t *len)
{
	size_t in = 0, out = 0;

	while (in < *len) {
		size_t n = strlen(buf + in) + 1;
		if (strncmp(buf + in, "trusted.", 8) != 0) {
			memmove(buf + out, buf + in, n);
			out += n;
		}
		in += n;
	}
	*len = out;
}

int fs_listxattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t ino, char *buf, size_t size,
		 size_t *len)
{
	char *all = NULL;
	size_t full = 0;
	int ret;

	pthread_mutex_lock(&fs->lock);
	ret = meta_xattr_list(fs->meta, ino, NULL, 0, &full);
	if (ret == 0 && ctx->uid != 0 && full > 0) {
		/* only a privileged caller sees trusted.* names, as on ext4 */
		all = malloc(full);
		ret = all ? meta_xattr_list(fs->meta, ino, all, full, &full) : -ENOMEM;
		if (ret == 0)
			drop_trusted_names(all, &full);
	} else if (ret == 0 && size) {
		ret = meta_xattr_list(fs->meta, ino, buf, size, &full);
	}
	pthread_mutex_unlock(&fs->lock);
	if (ret == 0 && all && size) {
		if (full > size)
			ret = -ERANGE;
		else
			memcpy(buf, all, full);
	}
	free(all);
	*len = full;
	return ret;
}

int fs_removexattr(struct fs *fs, uint64_t ino, const char *name)
{
	int ret = check_xattr_name(name);

	if (ret)
		return ret == -EOPNOTSUPP ? -ENODATA : ret;
	return xattr_change(fs, NULL, ino, name, NULL, 0, -1);
}
