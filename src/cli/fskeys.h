/*
 * fskeys.h - the keys of the filesystem a command works on: unlocked from
 * the bucket's superblock with the user's passphrase, from the cache's copy
 * of it while the bucket does not answer, or made for a new filesystem.
 */
#ifndef ZERO_FSKEYS_H
#define ZERO_FSKEYS_H

#include "crypt/keys.h"

#include <stdbool.h>
#include <stddef.h>

struct config;
struct objstore;

struct fskeys {
	struct keyring keys;	 /* plain (sealed false) for an unencrypted filesystem */
	struct keys_lock lock;	 /* a new encrypted filesystem: its wrapped data key */
	bool created;		 /* no filesystem in the bucket yet: LOCK is for its superblock */
};

/* The passphrase's environment variable. */
#define FSKEYS_ENV "ZERO_PASSPHRASE"

/*
 * Open the keys of the filesystem in STORE for the cache whose database is
 * DB_PATH (it may not exist: a new cache). With MAY_CREATE and no
 * filesystem in the bucket, a new one's keys: encrypted as CFG says
 * (config_encrypts), with a new passphrase. The passphrase comes from
 * ZERO_PASSPHRASE, CFG's passphraseFile or the terminal.
 * Refused, with ERR saying why: a wrong passphrase (-EKEYREJECTED), a
 * superblock whose fields were changed (-EBADMSG), one older than the
 * cache's copy or unencrypted where the cache's is encrypted (-ESTALE),
 * none given (-ENOKEY), the bucket not answering and no copy (store error).
 * Nothing is written anywhere. Caller releases OUT (fskeys_release).
 */
int fskeys_open(const struct config *cfg, struct objstore *store, const char *db_path,
		bool may_create, struct fskeys *out, char *err, size_t errlen);
void fskeys_release(struct fskeys *k);

#endif /* ZERO_FSKEYS_H */
