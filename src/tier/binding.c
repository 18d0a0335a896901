/*
 * binding.c - which bucket this cache belongs to: tier_bind checks the
 * bucket's superblock (journal/superblock.h) against the cache, or creates
 * it for a new filesystem (rule: one filesystem per bucket), and settles
 * the keys the tier works with.
 *
 * Invariants:
 *  - A superblock with another fs_id, format version or chunk size is
 *    refused, and so is a bucket that holds Zero objects but no superblock.
 *  - An encrypted filesystem's superblock must verify under its keys (the
 *    caller unlocked them from it), and an encrypted filesystem never
 *    takes an unencrypted superblock for its own (no downgrade).
 *  - A cache bound to its bucket mounts on the cache alone while the bucket
 *    does not answer. The cache keeps a copy of the superblock (setting
 *    "superblock"), from which an encrypted one is unlocked meanwhile.
 */
#include "tier/tier_internal.h"

#include "common/log.h"
#include "format/envelope.h"
#include "journal/lease.h"
#include "journal/superblock.h"
#include "store/objstore.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

_Static_assert(KEYS_LEN == ENVELOPE_ID_LEN, "the id key is written as an id is");

/* The cache's id key of an unencrypted filesystem (setting "id_key"). */
static bool plain_id_key(struct fs *fs, uint8_t key[KEYS_LEN])
{
	char hex[2 * KEYS_LEN + 1];

	return meta_setting_get(fs->meta, "id_key", hex, sizeof(hex)) == 0 &&
	       envelope_id_from_hex(hex, key) == 0;
}

/* Record in the cache that it belongs to the filesystem of superblock TEXT. */
static int bind_cache(struct fs *fs, struct tier *t, const char *text)
{
	char hex[2 * KEYS_LEN + 1];
	int ret = 0;

	if (!t->keys.sealed) {
		envelope_id_hex(t->keys.id_key, hex);
		ret = meta_setting_set(fs->meta, "id_key", hex);
	}
	if (ret == 0)
		ret = meta_setting_set(fs->meta, "superblock", text);
	if (ret == 0)
		ret = meta_setting_set(fs->meta, "bucket_bound", "1");
	return ret;
}

#define FIRST_MAX 256 /* the first foreign key, as the refusal names it */

/*
 * A key under "zero/" that is not a filesystem's: the lease (taken before the
 * superblock is made) and what a probe of conditional writes leaves for a
 * moment (or, after a crash, for good): another mount making its filesystem
 * at the same moment probes the same prefix. Stops at any other key.
 */
static int foreign_key(void *ctx, const struct objstore_entry *e)
{
	char *first = ctx;

	if (strcmp(e->key, LEASE_KEY) == 0 ||
	    strncmp(e->key, OBJSTORE_PROBE_PREFIX, strlen(OBJSTORE_PROBE_PREFIX)) == 0)
		return 0;
	snprintf(first, FIRST_MAX, "%s", e->key);
	return 1;
}

static int sb_create(struct fs *fs, struct tier *t, const char *fs_id, const struct keys_lock *lock,
		     char *err, size_t errlen)
{
	struct superblock sb = {.chunk_size = fs->chunk_size, .created = time(NULL)};
	char first[FIRST_MAX] = "", *text = NULL;
	int ret;

	/* an empty bucket, or one that holds no Zero objects but the lease and probes only */
	ret = objstore_list_all(t->store, "zero/", foreign_key, first);
	if (ret == 1) {
		snprintf(err, errlen,
			 "%s holds Zero objects (%s) but no superblock: refusing to create a "
			 "filesystem over them",
			 objstore_describe(t->store), first);
		return -EEXIST;
	}
	if (ret) {
		snprintf(err, errlen, "cannot list %s: %s", objstore_describe(t->store),
			 objstore_reason(ret));
		return ret;
	}
	snprintf(sb.fs_id, sizeof(sb.fs_id), "%s", fs_id);
	if (t->keys.sealed) {
		if (!lock) {
			snprintf(err, errlen, "no wrapped key to create an encrypted filesystem with");
			return -EINVAL;
		}
		sb.format = SUPERBLOCK_SEALED;
		sb.lock = *lock;
		t->key_epoch = lock->epoch;
	} else {
		sb.format = SUPERBLOCK_PLAIN;
		if (!plain_id_key(fs, t->keys.id_key))
			randombytes_buf(t->keys.id_key, KEYS_LEN);
		memcpy(sb.id_key, t->keys.id_key, KEYS_LEN);
	}
	ret = superblock_write(t->store, &sb, &t->keys, &text);
	if (ret) {
		snprintf(err, errlen, "cannot write the superblock to %s: %s",
			 objstore_describe(t->store), objstore_reason(ret));
		return ret;
	}
	ret = bind_cache(fs, t, text);
	free(text);
	log_info("created filesystem %s in %s (%s)", sb.fs_id, objstore_describe(t->store),
		 t->keys.sealed ? "encrypted" : "not encrypted");
	return ret;
}

/* The bucket does not answer: whether the cache may mount alone, with the keys it has. */
static int sb_unreachable(struct fs *fs, struct tier *t, const char *bound, int why, char *err,
			  size_t errlen)
{
	if (strcmp(bound, "1") == 0 && (t->keys.sealed || plain_id_key(fs, t->keys.id_key))) {
		/* local data stays usable; uploads wait for the bucket */
		log_warn("cannot read the superblock of %s (%s); mounting on the cache alone "
			 "until it answers",
			 objstore_describe(t->store), objstore_reason(why));
		return 0;
	}
	snprintf(err, errlen, "cannot reach the bucket %s: %s", objstore_describe(t->store),
		 objstore_reason(why));
	return why;
}

int tier_bind(struct fs *fs, struct tier *t, const struct fs_options *opt, char *err,
	      size_t errlen)
{
	char fs_id[64], bound[8] = "", why[256] = "";
	struct superblock sb;
	char *text = NULL;
	int ret;

	if (opt->keys)
		t->keys = *opt->keys;
	ret = meta_setting_get(fs->meta, "fs_id", fs_id, sizeof(fs_id));
	if (ret) {
		snprintf(err, errlen, "metadata has no fs_id");
		return ret;
	}
	meta_setting_get(fs->meta, "bucket_bound", bound, sizeof(bound));
	ret = superblock_read(t->store, &sb, &text, why, sizeof(why));
	if (ret == -ENOENT) {
		if (strcmp(bound, "1") == 0) {
			snprintf(
			    err, errlen,
			    "%s has no Zero superblock, but this cache's filesystem %s lives in a "
			    "bucket: wrong bucket, prefix or endpoint?",
			    objstore_describe(t->store), fs_id);
			return -ENOENT;
		}
		return sb_create(fs, t, fs_id, opt->new_lock, err, errlen);
	}
	if (ret == -EPROTO || ret == -ENOTSUP) {
		snprintf(err, errlen, "%s/%s: %s", objstore_describe(t->store), SUPERBLOCK_KEY,
			 why);
		return -EPROTO;
	}
	if (ret)
		return sb_unreachable(fs, t, bound, ret, err, errlen);
	ret = -EPROTO;
	if (strcmp(sb.fs_id, fs_id) != 0) {
		snprintf(err, errlen,
			 "%s holds another filesystem (%s), not this cache's (%s); use another "
			 "bucket or prefix, or the cache that belongs to it",
			 objstore_describe(t->store), sb.fs_id, fs_id);
		ret = -EEXIST;
		goto out;
	}
	if (sb.chunk_size != fs->chunk_size) {
		snprintf(err, errlen,
			 "the superblock's chunk size %" PRIu32 " differs from the cache's %" PRIu32,
			 sb.chunk_size, fs->chunk_size);
		goto out;
	}
	if (superblock_sealed(&sb) != t->keys.sealed) {
		snprintf(err, errlen,
			 superblock_sealed(&sb)
			     ? "the filesystem in %s is encrypted, but no key was given for it"
			     : "the superblock of %s says the filesystem is not encrypted, but it is: "
			       "refusing a replaced superblock",
			 objstore_describe(t->store));
		goto out;
	}
	if (t->keys.sealed && superblock_verify(&sb, &t->keys) != 0) {
		snprintf(err, errlen,
			 "the superblock of %s does not verify under this filesystem's key: "
			 "changed or replaced",
			 objstore_describe(t->store));
		goto out;
	}
	if (!t->keys.sealed)
		memcpy(t->keys.id_key, sb.id_key, KEYS_LEN);
	else
		t->key_epoch = sb.lock.epoch;
	ret = bind_cache(fs, t, text);
out:
	free(text);
	return ret;
}
