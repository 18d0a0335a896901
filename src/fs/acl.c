/*
 * acl.c - POSIX ACLs: checking values, keeping mode and ACL in step, and
 * inheritance of default ACLs, with ext4's (the kernel's posix_acl.c)
 * rules. See acl.h for what the kernel does and what is left to us.
 *
 * The first half works on xattr values alone; the second half is the fs
 * core's use of it, under fs->lock, inside the caller's transaction.
 */
#include "fs/acl.h"

#include "common/log.h"
#include "fs/fs_internal.h"
#include "meta/meta.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ACL_VERSION 2
#define ACL_HEADER 4
#define ACL_ENTRY 8
#define ACL_UNDEFINED_ID 0xFFFFFFFFu

/* Tags, in the order a valid ACL lists them. */
enum {
	TAG_USER_OBJ = 0x01,
	TAG_USER = 0x02,
	TAG_GROUP_OBJ = 0x04,
	TAG_GROUP = 0x08,
	TAG_MASK = 0x10,
	TAG_OTHER = 0x20,
};

#define PERM_RWX 7u

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint8_t *entry_at(const void *value, size_t i)
{
	return (uint8_t *)value + ACL_HEADER + i * ACL_ENTRY;
}

static uint16_t entry_tag(const uint8_t *e)
{
	return get_le16(e);
}

static uint16_t entry_perm(const uint8_t *e)
{
	return get_le16(e + 2);
}

static void entry_set_perm(uint8_t *e, uint16_t perm)
{
	put_le16(e + 2, perm);
}

static size_t entry_count(size_t size)
{
	return (size - ACL_HEADER) / ACL_ENTRY;
}

bool acl_is_name(const char *name)
{
	return strcmp(name, ACL_NAME_ACCESS) == 0 || strcmp(name, ACL_NAME_DEFAULT) == 0;
}

int acl_check(const void *value, size_t size, size_t *count)
{
	/* the states of the kernel's posix_acl_valid(): which tags may come next */
	enum { WANT_USER_OBJ, IN_USERS, IN_GROUPS, WANT_OTHER, DONE } state = WANT_USER_OBJ;
	bool needs_mask = false;
	size_t n;

	if (size < ACL_HEADER)
		return -EINVAL;
	if (get_le32(value) != ACL_VERSION)
		return -EOPNOTSUPP;
	if ((size - ACL_HEADER) % ACL_ENTRY)
		return -EINVAL;
	n = entry_count(size);
	*count = n;
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = entry_at(value, i);
		uint32_t id = get_le32(e + 4);

		if (entry_perm(e) & ~PERM_RWX)
			return -EINVAL;
		switch (entry_tag(e)) {
		case TAG_USER_OBJ:
			if (state != WANT_USER_OBJ)
				return -EINVAL;
			state = IN_USERS;
			break;
		case TAG_USER:
			if (state != IN_USERS || id == ACL_UNDEFINED_ID)
				return -EINVAL;
			needs_mask = true;
			break;
		case TAG_GROUP_OBJ:
			if (state != IN_USERS)
				return -EINVAL;
			state = IN_GROUPS;
			break;
		case TAG_GROUP:
			if (state != IN_GROUPS || id == ACL_UNDEFINED_ID)
				return -EINVAL;
			needs_mask = true;
			break;
		case TAG_MASK:
			if (state != IN_GROUPS)
				return -EINVAL;
			state = WANT_OTHER;
			break;
		case TAG_OTHER:
			if (state != WANT_OTHER && !(state == IN_GROUPS && !needs_mask))
				return -EINVAL;
			state = DONE;
			break;
		default:
			return -EINVAL;
		}
	}
	return state == DONE ? 0 : -EINVAL;
}

int acl_equiv_mode(const void *value, size_t size, uint32_t *mode)
{
	uint32_t bits = 0;
	int not_equiv = 0;

	for (size_t i = 0; i < entry_count(size); i++) {
		const uint8_t *e = entry_at(value, i);
		uint32_t perm = entry_perm(e) & PERM_RWX;

		switch (entry_tag(e)) {
		case TAG_USER_OBJ:
			bits |= perm << 6;
			break;
		case TAG_GROUP_OBJ:
			bits |= perm << 3;
			break;
		case TAG_OTHER:
			bits |= perm;
			break;
		case TAG_MASK:
			/* comes after the group entry: the group class shows the mask */
			bits = (bits & ~(uint32_t)S_IRWXG) | perm << 3;
			not_equiv = 1;
			break;
		default: /* named users and groups */
			not_equiv = 1;
			break;
		}
	}
	*mode = (*mode & ~(uint32_t)0777) | bits;
	return not_equiv;
}

void acl_apply_mode(void *value, size_t size, uint32_t mode)
{
	uint8_t *group_obj = NULL, *mask = NULL;

	for (size_t i = 0; i < entry_count(size); i++) {
		uint8_t *e = entry_at(value, i);

		switch (entry_tag(e)) {
		case TAG_USER_OBJ:
			entry_set_perm(e, (uint16_t)((mode >> 6) & PERM_RWX));
			break;
		case TAG_GROUP_OBJ:
			group_obj = e;
			break;
		case TAG_MASK:
			mask = e;
			break;
		case TAG_OTHER:
			entry_set_perm(e, (uint16_t)(mode & PERM_RWX));
			break;
		default:
			break;
		}
	}
	/* with a mask, the group bits are the mask's; the group entry keeps its own */
	if (mask)
		entry_set_perm(mask, (uint16_t)((mode >> 3) & PERM_RWX));
	else if (group_obj)
		entry_set_perm(group_obj, (uint16_t)((mode >> 3) & PERM_RWX));
}

int acl_create_masq(void *value, size_t size, uint32_t *mode)
{
	uint8_t *group_obj = NULL, *mask = NULL;
	uint32_t m = *mode & 0777;
	int not_equiv = 0;

	for (size_t i = 0; i < entry_count(size); i++) {
		uint8_t *e = entry_at(value, i);
		uint32_t perm = entry_perm(e);

		switch (entry_tag(e)) {
		case TAG_USER_OBJ:
			perm &= (m >> 6) & PERM_RWX;
			entry_set_perm(e, (uint16_t)perm);
			m &= (perm << 6) | ~(uint32_t)S_IRWXU;
			break;
		case TAG_GROUP_OBJ:
			group_obj = e;
			break;
		case TAG_MASK:
			mask = e;
			not_equiv = 1;
			break;
		case TAG_OTHER:
			perm &= m & PERM_RWX;
			entry_set_perm(e, (uint16_t)perm);
			m &= perm | ~(uint32_t)S_IRWXO;
			break;
		default:
			not_equiv = 1;
			break;
		}
	}
	/* the group class: the mask when there is one, else the group entry */
	uint8_t *g = mask ? mask : group_obj;
	if (g) {
		uint32_t perm = entry_perm(g) & ((m >> 3) & PERM_RWX);
		entry_set_perm(g, (uint16_t)perm);
		m &= (perm << 3) | ~(uint32_t)S_IRWXG;
	}
	*mode = (*mode & ~(uint32_t)0777) | m;
	return not_equiv;
}

/* ---- the fs core's use ---- */

/* Read attribute NAME of INO into a new buffer (*BUF, caller frees); -ENODATA when absent. */
static int xattr_read(struct fs *fs, uint64_t ino, const char *name, void **buf, size_t *len)
{
	size_t need = 0;
	void *p;
	int ret;

	*buf = NULL;
	ret = meta_xattr_get(fs->meta, ino, name, NULL, 0, &need);
	if (ret)
		return ret;
	p = malloc(need ? need : 1);
	if (!p)
		return -ENOMEM;
	ret = meta_xattr_get(fs->meta, ino, name, p, need, len);
	if (ret) {
		free(p);
		return ret;
	}
	*buf = p;
	return 0;
}

/* A stored ACL the kernel would refuse: say so, and treat it as an I/O error. */
static int stored_acl_bad(uint64_t ino, const char *name, int ret)
{
	log_error("inode %" PRIu64 ": stored %s is not a valid ACL (%s)", ino, name,
		  strerror(-ret));
	return -EIO;
}

static int acl_remove(struct fs *fs, uint64_t ino, const char *name)
{
	int ret = meta_xattr_remove(fs->meta, ino, name);

	/* like ext4, removing an ACL that is not there succeeds */
	return ret == -ENODATA ? 0 : ret;
}

int acl_set(struct fs *fs, const struct fs_ctx *ctx, struct meta_inode *in, const char *name,
	    const void *value, size_t size)
{
	bool access = strcmp(name, ACL_NAME_ACCESS) == 0;
	size_t count = 0;
	uint32_t mode;
	int ret;

	if (!value)
		return acl_remove(fs, in->ino, name);
	ret = acl_check(value, size, &count);
	if (ret)
		return ret;
	if (count == 0)
		return acl_remove(fs, in->ino, name);
	if (!access) {
		if (!S_ISDIR(in->mode))
			return -EACCES; /* only directories have default ACLs */
		return meta_xattr_set(fs->meta, in->ino, name, value, size, 0);
	}
	mode = in->mode;
	if (acl_equiv_mode(value, size, &mode))
		ret = meta_xattr_set(fs->meta, in->ino, name, value, size, 0);
	else
		ret = acl_remove(fs, in->ino, name); /* the mode says it all */
	if (ret)
		return ret;
	if (ctx && ctx->uid != 0 && !ctx->in_group(ctx, in->gid))
		mode &= ~(uint32_t)S_ISGID;
	in->mode = mode;
	return 0;
}

int acl_chmod(struct fs *fs, const struct meta_inode *in)
{
	size_t len = 0, count;
	void *acl;
	int ret;

	if (S_ISLNK(in->mode))
		return 0;
	ret = xattr_read(fs, in->ino, ACL_NAME_ACCESS, &acl, &len);
	if (ret)
		return ret == -ENODATA ? 0 : ret;
	ret = acl_check(acl, len, &count);
	if (ret) {
		ret = stored_acl_bad(in->ino, ACL_NAME_ACCESS, ret);
		goto out_free;
	}
	acl_apply_mode(acl, len, in->mode);
	ret = meta_xattr_set(fs->meta, in->ino, ACL_NAME_ACCESS, acl, len, 0);
out_free:
	free(acl);
	return ret;
}

int acl_inherit_prepare(struct fs *fs, uint64_t parent, uint32_t *mode, uint32_t umask,
			struct acl_inherit *inh)
{
	size_t len = 0, count;
	void *dflt, *access;
	int ret;

	memset(inh, 0, sizeof(*inh));
	if (S_ISLNK(*mode))
		return 0;
	ret = xattr_read(fs, parent, ACL_NAME_DEFAULT, &dflt, &len);
	if (ret == -ENODATA) {
		*mode &= ~(umask & 0777);
		return 0;
	}
	if (ret)
		return ret;
	ret = acl_check(dflt, len, &count);
	if (ret || count == 0) {
		ret = ret ? stored_acl_bad(parent, ACL_NAME_DEFAULT, ret) : 0;
		goto out_free_dflt;
	}
	access = malloc(len);
	if (!access) {
		ret = -ENOMEM;
		goto out_free_dflt;
	}
	memcpy(access, dflt, len);
	if (acl_create_masq(access, len, mode)) {
		inh->access = access;
		inh->access_len = len;
	} else {
		free(access);
	}
	if (S_ISDIR(*mode)) {
		inh->dflt = dflt;
		inh->dflt_len = len;
		return 0;
	}
out_free_dflt:
	free(dflt);
	return ret;
}

int acl_inherit_store(struct fs *fs, uint64_t ino, const struct acl_inherit *inh)
{
	int ret = 0;

	if (inh->access)
		ret =
		    meta_xattr_set(fs->meta, ino, ACL_NAME_ACCESS, inh->access, inh->access_len, 0);
	if (ret == 0 && inh->dflt)
		ret = meta_xattr_set(fs->meta, ino, ACL_NAME_DEFAULT, inh->dflt, inh->dflt_len, 0);
	return ret;
}

void acl_inherit_release(struct acl_inherit *inh)
{
	free(inh->access);
	free(inh->dflt);
	memset(inh, 0, sizeof(*inh));
}
