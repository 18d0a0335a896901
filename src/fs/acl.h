/*
 * acl.h - POSIX ACLs as ext4 keeps them, stored as extended attributes.
 *
 * The kernel enforces ACLs itself (FUSE's POSIX ACL capability): it reads
 * them through getxattr, caches them and checks permissions with them. What
 * it leaves to the filesystem is what ext4 does in its own code, and that is
 * this module:
 *  - checking a value before it is stored (bad format: -EINVAL, an unknown
 *    version: -EOPNOTSUPP, as the kernel's posix_acl_from_xattr);
 *  - keeping the mode and the access ACL in step: setting an access ACL
 *    sets the mode's permission bits from it (and an ACL that says no more
 *    than a mode is not stored at all), chmod rewrites the owner, mask (or
 *    group) and other entries;
 *  - inheritance: a node created in a directory with a default ACL gets an
 *    access ACL from it, masked by the create mode (the umask does not
 *    apply then), and a directory also gets the default ACL.
 *
 * Values are the kernel's xattr form: a little-endian u32 version (2), then
 * entries of u16 tag, u16 perm, u32 id, sorted by tag.
 */
#ifndef ZERO_FS_ACL_H
#define ZERO_FS_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACL_NAME_ACCESS "system.posix_acl_access"
#define ACL_NAME_DEFAULT "system.posix_acl_default"

/* Is NAME one of the two ACL attributes? */
bool acl_is_name(const char *name);

/*
 * Check an ACL value; *COUNT gets its number of entries (0: an empty ACL,
 * which means "remove"). 0, -EINVAL or -EOPNOTSUPP.
 */
int acl_check(const void *value, size_t size, size_t *count);

/*
 * The permission bits a valid access ACL gives *MODE (the other bits stay).
 * Returns 1 when the ACL says more than the mode can (named entries or a
 * mask: it must be kept), 0 when the mode says it all.
 */
int acl_equiv_mode(const void *value, size_t size, uint32_t *mode);

/* chmod of a file with access ACL VALUE: its entries follow MODE. */
void acl_apply_mode(void *value, size_t size, uint32_t mode);

/*
 * A new node of *MODE inherits VALUE, a copy of its directory's default
 * ACL: both are masked by each other in place. Returns 1 when VALUE must
 * be stored as the node's access ACL, 0 when its mode says it all.
 */
int acl_create_masq(void *value, size_t size, uint32_t *mode);

/* ---- fs core hooks: fs->lock held ---- */

struct fs;
struct fs_ctx;
struct meta_inode;

/*
 * Set (VALUE) or remove (VALUE NULL) ACL NAME of IN inside the caller's
 * transaction; IN's mode changes as on ext4 (the caller stores IN). CTX is
 * who asks: an owner outside the file's group loses the setgid bit.
 */
int acl_set(struct fs *fs, const struct fs_ctx *ctx, struct meta_inode *in, const char *name,
	    const void *value, size_t size);

/* After IN's mode changed (chmod), inside the transaction: its access ACL follows. */
int acl_chmod(struct fs *fs, const struct meta_inode *in);

/* What a new node inherits from its directory (acl_inherit_prepare). */
struct acl_inherit {
	void *access; /* access ACL to store, or NULL; owned */
	size_t access_len;
	void *dflt; /* default ACL to store (directories), or NULL; owned */
	size_t dflt_len;
};

/*
 * Before creating a node of *MODE in directory PARENT by a caller whose
 * umask is UMASK: with a default ACL there, fill INH and mask *MODE by it;
 * without, apply UMASK. Symlinks inherit nothing. acl_inherit_release()
 * afterwards in every case.
 */
int acl_inherit_prepare(struct fs *fs, uint64_t parent, uint32_t *mode, uint32_t umask,
			struct acl_inherit *inh);
/* Store INH on the new inode INO (inside the creating transaction). */
int acl_inherit_store(struct fs *fs, uint64_t ino, const struct acl_inherit *inh);
void acl_inherit_release(struct acl_inherit *inh);

#endif /* ZERO_FS_ACL_H */
