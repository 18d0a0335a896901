/*
 * superblock.h - the superblock object `zero/superblock`: what a bucket
 * holds about its filesystem before anything else can be read (format,
 * fs id, chunk size) and, for an encrypted one, the data key wrapped by
 * the passphrase (crypt/keys.h). docs/format.md has the text, line by line.
 *
 * Format 1 (unencrypted): the object-id key in the clear. Format 2
 * (encrypted): no secret in the clear; the KDF's salt and limits, the key
 * epoch and the wrapped data key, and a MAC (keyed by a key derived from
 * the data key) over every other field, so a changed chunk size, fs id or
 * KDF limit is refused as surely as a wrong passphrase.
 *
 * Invariants:
 *  1. A parsed superblock is complete: every field its format needs is
 *     present and well-formed, else it is -EPROTO with the reason in ERR.
 *  2. A format 2 superblock is trusted only once superblock_unlock (or
 *     superblock_verify with an open keyring) has checked its MAC.
 */
#ifndef ZERO_SUPERBLOCK_H
#define ZERO_SUPERBLOCK_H

#include "crypt/keys.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct objstore;

#define SUPERBLOCK_KEY "zero/superblock"
#define SUPERBLOCK_TEXT_MAX 4096
#define SUPERBLOCK_PLAIN 1  /* format of an unencrypted filesystem */
#define SUPERBLOCK_SEALED 2 /* format of an encrypted one */
#define SUPERBLOCK_FS_ID_MAX 64

struct superblock {
	int format; /* SUPERBLOCK_PLAIN or SUPERBLOCK_SEALED */
	char fs_id[SUPERBLOCK_FS_ID_MAX];
	uint32_t chunk_size;
	int64_t created;	  /* unix seconds */
	uint8_t id_key[KEYS_LEN]; /* PLAIN only */
	struct keys_lock lock;	  /* SEALED only */
	uint8_t mac[KEYS_MAC_LEN]; /* SEALED only: set by superblock_format */
};

static inline bool superblock_sealed(const struct superblock *sb)
{
	return sb->format == SUPERBLOCK_SEALED;
}

/*
 * Parse LEN bytes of superblock TEXT into SB. -EPROTO when it is not a
 * superblock or a field is missing or malformed, -ENOTSUP for a format this
 * version does not read; ERR says which.
 */
int superblock_parse(const char *text, size_t len, struct superblock *sb, char *err,
		     size_t errlen);
/*
 * Write SB as text into BUF (SIZE bytes); the length, or -ENAMETOOLONG.
 * A sealed one is MAC'd with K (its superblock key), which sets SB->mac.
 */
int superblock_format(struct superblock *sb, const struct keyring *k, char *buf, size_t size);

/*
 * The keyring of SB's filesystem: for a plain one its id key; for a sealed
 * one the data key unwrapped with PASS (LEN bytes), and the MAC checked.
 * -EKEYREJECTED: wrong passphrase; -EBADMSG: the passphrase opens the key
 * but the superblock's fields were changed; -ENOMEM, -EINVAL (limits).
 */
int superblock_unlock(const struct superblock *sb, const char *pass, size_t len,
		      struct keyring *k);
/* Whether sealed SB's MAC verifies under the open keyring K (-EBADMSG if not). */
int superblock_verify(const struct superblock *sb, const struct keyring *k);

/*
 * GET and parse the bucket's superblock: 0, -ENOENT when there is none, a
 * store error, or superblock_parse's. ERR says why on any error but -ENOENT.
 * With TEXT non-NULL, the text itself too (caller frees).
 */
int superblock_read(struct objstore *store, struct superblock *sb, char **text, char *err,
		    size_t errlen);
/* Format SB (see superblock_format) and PUT it; with TEXT non-NULL also the text (caller frees). */
int superblock_write(struct objstore *store, struct superblock *sb, const struct keyring *k,
		     char **text);

#endif /* ZERO_SUPERBLOCK_H */
