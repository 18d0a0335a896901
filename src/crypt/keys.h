/*
 * keys.h - the keys of an encrypted filesystem: a passphrase turned into a
 * key-encryption key (Argon2id), the random data key it wraps, and the keys
 * derived from the data key. Pure functions over memory (libsodium): no
 * I/O; where the passphrase comes from is the caller's business.
 *
 * Hierarchy (docs/format.md, *Keys*):
 *
 *	passphrase --Argon2id(salt, ops, mem)--> key-encryption key
 *	key-encryption key --XChaCha20-Poly1305--> wraps the data key (random, per fs)
 *	data key --BLAKE2b KDF, context "zerokeys"--> 1 object key: seals every object
 *	                                             2 id key: keyed ids of chunks
 *	                                             3 superblock key: MAC of the superblock
 *
 * Invariants:
 *  1. The data key never leaves memory unwrapped; a wrapped key opens only
 *     with the passphrase and the KDF parameters and epoch it was wrapped
 *     with (they are its associated data).
 *  2. Changing the passphrase rewraps the same data key: every derived key,
 *     and so every object in the bucket, stays as it is.
 *  3. A plain (unencrypted) keyring has no object key: envelopes stay
 *     unsealed, and only its id key is set.
 */
#ifndef ZERO_KEYS_H
#define ZERO_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYS_LEN 32
#define KEYS_SALT_LEN 16
#define KEYS_WRAPPED_LEN (24 + KEYS_LEN + 16) /* nonce, wrapped key, tag */
#define KEYS_MAC_LEN 32
#define KEYS_KDF_NAME "argon2id13"
#define KEYS_CIPHER_NAME "xchacha20poly1305"

/* How a passphrase becomes the key-encryption key; stored beside the wrapped key. */
struct keys_kdf {
	uint64_t ops; /* Argon2id passes */
	uint64_t mem; /* bytes of memory */
	uint8_t salt[KEYS_SALT_LEN];
};

/* The data key wrapped by a passphrase: all a superblock needs to open it again. */
struct keys_lock {
	struct keys_kdf kdf;
	uint64_t epoch; /* 1 at creation, + 1 at every passphrase change */
	uint8_t wrapped[KEYS_WRAPPED_LEN];
};

/* The keys of one filesystem in memory. Embedded; keys_release wipes it. */
struct keyring {
	bool sealed;			/* an encrypted filesystem */
	uint8_t data_key[KEYS_LEN];	/* sealed only; kept to rewrap it */
	uint8_t object_key[KEYS_LEN];	/* sealed only */
	uint8_t id_key[KEYS_LEN];	/* both */
	uint8_t superblock_key[KEYS_LEN]; /* sealed only */
};

/* The KDF limits of a new lock (libsodium's interactive ones: 64 MiB, 2 passes), a random salt. */
void keys_kdf_default(struct keys_kdf *kdf);
/* Whether OPS and MEM are limits libsodium's Argon2id accepts (a superblock's are checked). */
bool keys_kdf_valid(uint64_t ops, uint64_t mem);

/* A new encrypted filesystem's keyring: a random data key and the keys derived from it. */
int keys_generate(struct keyring *k);
/* The keyring of an unencrypted filesystem: only the id key, stored in the clear. */
void keys_plain(struct keyring *k, const uint8_t id_key[KEYS_LEN]);

/*
 * Wrap K's data key with PASS (LEN bytes) into LOCK, whose kdf and epoch
 * the caller set. -ENOMEM when Argon2id cannot get its memory, -EINVAL
 * for a plain keyring or invalid limits.
 */
int keys_lock(const struct keyring *k, const char *pass, size_t len, struct keys_lock *lock);
/*
 * Open LOCK with PASS into K (derives every key). -EKEYREJECTED for a
 * wrong passphrase (or a lock whose parameters were changed), -ENOMEM,
 * -EINVAL for invalid limits. K is untouched on error.
 */
int keys_unlock(const struct keys_lock *lock, const char *pass, size_t len, struct keyring *k);

/* MAC (keyed BLAKE2b-256 with the superblock key) of LEN bytes of MSG. */
void keys_mac(const struct keyring *k, const void *msg, size_t len, uint8_t mac[KEYS_MAC_LEN]);
/* Whether MAC is MSG's under K, in constant time. */
bool keys_mac_ok(const struct keyring *k, const void *msg, size_t len,
		 const uint8_t mac[KEYS_MAC_LEN]);

/* The key that seals objects, or NULL for a plain filesystem (envelope_opts.data_key). */
const uint8_t *keys_object_key(const struct keyring *k);

/* Wipe K (NULL ok). */
void keys_release(struct keyring *k);

#endif /* ZERO_KEYS_H */
