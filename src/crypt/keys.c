/*
 * keys.c - passphrase -> key-encryption key -> data key -> derived keys
 * (see keys.h for the hierarchy and its invariants).
 *
 * The wrap's associated data is "zero-key" followed by the KDF's limits,
 * salt and the epoch, little-endian: changing any of them in a superblock
 * (to weaken the KDF, or to pass off an old lock as a new one) makes the
 * wrapped key fail to open, exactly like a wrong passphrase.
 */
#include "crypt/keys.h"

#include "common/le.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#define KDF_CONTEXT "zerokeys"
#define SUBKEY_OBJECT 1
#define SUBKEY_ID 2
#define SUBKEY_SUPERBLOCK 3
#define WRAP_AD_MAGIC "zero-key"
#define WRAP_AD_LEN (8 + 8 + 8 + KEYS_SALT_LEN + 8)
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES

_Static_assert(KEYS_SALT_LEN == crypto_pwhash_SALTBYTES, "Argon2id salt");
_Static_assert(KEYS_LEN == crypto_kdf_KEYBYTES, "KDF master key");
_Static_assert(KEYS_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "wrap key");
_Static_assert(KEYS_WRAPPED_LEN ==
		   NONCE_LEN + KEYS_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES,
	       "wrapped key layout");
_Static_assert(sizeof(KDF_CONTEXT) - 1 == crypto_kdf_CONTEXTBYTES, "KDF context");

void keys_kdf_default(struct keys_kdf *kdf)
{
	kdf->ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
	kdf->mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
	randombytes_buf(kdf->salt, sizeof(kdf->salt));
}

bool keys_kdf_valid(uint64_t ops, uint64_t mem)
{
	/* Sensitive limits are the most a superblock may ask of a machine (1 GiB). */
	return ops >= crypto_pwhash_OPSLIMIT_MIN && ops <= crypto_pwhash_OPSLIMIT_SENSITIVE &&
	       mem >= crypto_pwhash_MEMLIMIT_MIN && mem <= crypto_pwhash_MEMLIMIT_SENSITIVE;
}

static int derive(struct keyring *k)
{
	if (crypto_kdf_derive_from_key(k->object_key, KEYS_LEN, SUBKEY_OBJECT, KDF_CONTEXT,
				       k->data_key) != 0 ||
	    crypto_kdf_derive_from_key(k->id_key, KEYS_LEN, SUBKEY_ID, KDF_CONTEXT,
				       k->data_key) != 0 ||
	    crypto_kdf_derive_from_key(k->superblock_key, KEYS_LEN, SUBKEY_SUPERBLOCK,
				       KDF_CONTEXT, k->data_key) != 0)
		return -EIO;
	k->sealed = true;
	return 0;
}

int keys_generate(struct keyring *k)
{
	if (sodium_init() < 0)
		return -EIO;
	memset(k, 0, sizeof(*k));
	crypto_kdf_keygen(k->data_key);
	return derive(k);
}

void keys_plain(struct keyring *k, const uint8_t id_key[KEYS_LEN])
{
	memset(k, 0, sizeof(*k));
	memcpy(k->id_key, id_key, KEYS_LEN);
}

/* The passphrase's key-encryption key under LOCK's KDF. */
static int kek_derive(const struct keys_lock *lock, const char *pass, size_t len,
		      uint8_t kek[KEYS_LEN])
{
	if (sodium_init() < 0)
		return -EIO;
	if (!keys_kdf_valid(lock->kdf.ops, lock->kdf.mem))
		return -EINVAL;
	if (crypto_pwhash(kek, KEYS_LEN, pass, len, lock->kdf.salt, lock->kdf.ops,
			  (size_t)lock->kdf.mem, crypto_pwhash_ALG_ARGON2ID13) != 0)
		return -ENOMEM; /* libsodium's one failure: no memory for the limits */
	return 0;
}

static void wrap_ad(const struct keys_lock *lock, uint8_t ad[WRAP_AD_LEN])
{
	memcpy(ad, WRAP_AD_MAGIC, 8);
	put_le64(ad + 8, lock->kdf.ops);
	put_le64(ad + 16, lock->kdf.mem);
	memcpy(ad + 24, lock->kdf.salt, KEYS_SALT_LEN);
	put_le64(ad + 24 + KEYS_SALT_LEN, lock->epoch);
}

int keys_lock(const struct keyring *k, const char *pass, size_t len, struct keys_lock *lock)
{
	uint8_t kek[KEYS_LEN], ad[WRAP_AD_LEN];
	int ret;

	if (!k->sealed)
		return -EINVAL;
	ret = kek_derive(lock, pass, len, kek);
	if (ret)
		return ret;
	wrap_ad(lock, ad);
	randombytes_buf(lock->wrapped, NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(lock->wrapped + NONCE_LEN, NULL, k->data_key,
						   KEYS_LEN, ad, sizeof(ad), NULL, lock->wrapped,
						   kek);
	sodium_memzero(kek, sizeof(kek));
	return 0;
}

int keys_unlock(const struct keys_lock *lock, const char *pass, size_t len, struct keyring *k)
{
	uint8_t kek[KEYS_LEN], ad[WRAP_AD_LEN];
	struct keyring opened = {0};
	int ret;

	ret = kek_derive(lock, pass, len, kek);
	if (ret)
		return ret;
	wrap_ad(lock, ad);
	ret = crypto_aead_xchacha20poly1305_ietf_decrypt(
		  opened.data_key, NULL, NULL, lock->wrapped + NONCE_LEN,
		  KEYS_WRAPPED_LEN - NONCE_LEN, ad, sizeof(ad), lock->wrapped, kek) == 0
		  ? derive(&opened)
		  : -EKEYREJECTED;
	sodium_memzero(kek, sizeof(kek));
	if (ret == 0)
		*k = opened;
	sodium_memzero(&opened, sizeof(opened));
	return ret;
}

void keys_mac(const struct keyring *k, const void *msg, size_t len, uint8_t mac[KEYS_MAC_LEN])
{
	crypto_generichash(mac, KEYS_MAC_LEN, msg, len, k->superblock_key, KEYS_LEN);
}

bool keys_mac_ok(const struct keyring *k, const void *msg, size_t len,
		 const uint8_t mac[KEYS_MAC_LEN])
{
	uint8_t want[KEYS_MAC_LEN];

	keys_mac(k, msg, len, want);
	return sodium_memcmp(want, mac, KEYS_MAC_LEN) == 0;
}

const uint8_t *keys_object_key(const struct keyring *k)
{
	return k && k->sealed ? k->object_key : NULL;
}

void keys_release(struct keyring *k)
{
	if (k)
		sodium_memzero(k, sizeof(*k));
}
