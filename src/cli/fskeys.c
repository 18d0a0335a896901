/*
 * fskeys.c - the keys of the filesystem a command works on (see fskeys.h).
 *
 * Which superblock counts:
 *
 *	bucket answers, has one ........ the bucket's, checked against the
 *	                                 cache's copy (no older key epoch, no
 *	                                 unencrypted one for an encrypted fs)
 *	bucket answers, has none ....... a bound cache: none (the tier refuses
 *	                                 the wrong bucket); else a new filesystem
 *	bucket silent .................. the cache's copy; none: plain keys (the
 *	                                 tier refuses unless the cache is bound)
 *
 * Only an encrypted superblock asks for the passphrase. The cache's copy
 * lives in its database (setting "superblock", written by tier/binding.c).
 */
#include "cli/fskeys.h"

#include "cli/config.h"
#include "cli/passphrase.h"
#include "common/errbuf.h"
#include "journal/superblock.h"
#include "meta/meta.h"
#include "store/objstore.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* The cache's copy of its superblock into SB: true when there is one. */
static bool cached_superblock(const char *db_path, struct superblock *sb)
{
	char text[SUPERBLOCK_TEXT_MAX];
	struct meta *m = NULL;
	struct stat st;
	bool ok;

	if (!db_path || stat(db_path, &st) != 0 || meta_open(db_path, 0, 0, 0, &m) != 0)
		return false;
	ok = meta_setting_get(m, "superblock", text, sizeof(text)) == 0 &&
	     superblock_parse(text, strlen(text), sb, NULL, 0) == 0;
	meta_close(m);
	return ok;
}

/* Unlock SB's keys with the user's passphrase (sealed SB only asks). */
static int unlock(const struct config *cfg, struct objstore *store, const struct superblock *sb,
		  struct keyring *k, char *err, size_t errlen)
{
	char prompt[512], pass[PASSPHRASE_MAX + 1], why[512];
	struct passphrase_source src = {FSKEYS_ENV, cfg->passphrase_file, prompt, false};
	size_t len = 0;
	int ret;

	if (!superblock_sealed(sb))
		return superblock_unlock(sb, NULL, 0, k);
	snprintf(prompt, sizeof(prompt), "passphrase of the filesystem in %s: ",
		 objstore_describe(store));
	ret = passphrase_get(&src, pass, &len, why, sizeof(why));
	if (ret) {
		errbuf_set(err, errlen,
			   "the filesystem in %s is encrypted: %s (give it in %s, in a file "
			   "named by passphraseFile in the configuration, or on a terminal)",
			   objstore_describe(store), why, FSKEYS_ENV);
		return ret;
	}
	ret = superblock_unlock(sb, pass, len, k);
	explicit_bzero(pass, sizeof(pass));
	if (ret == -EKEYREJECTED)
		errbuf_set(err, errlen, "wrong passphrase for the encrypted filesystem in %s",
			   objstore_describe(store));
	else if (ret == -EBADMSG)
		errbuf_set(err, errlen,
			   "the superblock of %s was changed: its fields do not match its "
			   "authentication code; refusing it",
			   objstore_describe(store));
	else if (ret)
		errbuf_set(err, errlen, "cannot derive the key of the filesystem in %s: %s",
			   objstore_describe(store), strerror(-ret));
	return ret;
}

/* A new filesystem's keys: encrypted ones with a new passphrase, or none. */
static int create(const struct config *cfg, struct objstore *store, struct fskeys *out,
		  char *err, size_t errlen)
{
	char prompt[512], pass[PASSPHRASE_MAX + 1], why[512];
	struct passphrase_source src = {FSKEYS_ENV, cfg->passphrase_file, prompt, true};
	size_t len = 0;
	int ret;

	out->created = true;
	if (!config_encrypts(cfg))
		return 0;
	snprintf(prompt, sizeof(prompt),
		 "a new encrypted filesystem in %s: choose its passphrase: ",
		 objstore_describe(store));
	ret = passphrase_get(&src, pass, &len, why, sizeof(why));
	if (ret) {
		errbuf_set(err, errlen,
			   "a new filesystem in %s is encrypted: %s (give a passphrase in %s, in a "
			   "file named by passphraseFile in the configuration, or on a terminal; "
			   "or set encryption: false)",
			   objstore_describe(store), why, FSKEYS_ENV);
		return ret;
	}
	ret = keys_generate(&out->keys);
	if (ret == 0) {
		keys_kdf_default(&out->lock.kdf);
		out->lock.epoch = 1;
		ret = keys_lock(&out->keys, pass, len, &out->lock);
	}
	explicit_bzero(pass, sizeof(pass));
	if (ret)
		errbuf_set(err, errlen, "cannot make the keys of a new filesystem: %s",
			   strerror(-ret));
	return ret;
}

int fskeys_open(const struct config *cfg, struct objstore *store, const char *db_path,
		bool may_create, struct fskeys *out, char *err, size_t errlen)
{
	struct superblock sb, local;
	bool have_local;
	char why[512];
	int ret;

	memset(out, 0, sizeof(*out));
	have_local = cached_superblock(db_path, &local);
	ret = superblock_read(store, &sb, NULL, why, sizeof(why));
	if (ret == -ENOENT)
		return have_local || !may_create ? 0 : create(cfg, store, out, err, errlen);
	if (ret == -EPROTO || ret == -ENOTSUP) {
		errbuf_set(err, errlen, "%s/%s: %s", objstore_describe(store), SUPERBLOCK_KEY,
			   why);
		return -EPROTO;
	}
	if (ret) {
		/* the bucket is silent: the cache's copy, if it has one (tier_bind decides) */
		return have_local ? unlock(cfg, store, &local, &out->keys, err, errlen) : 0;
	}
	if (have_local && strcmp(local.fs_id, sb.fs_id) == 0) {
		if (superblock_sealed(&local) && !superblock_sealed(&sb)) {
			errbuf_set(err, errlen,
				   "the superblock of %s says the filesystem is not encrypted, but "
				   "this cache knows it encrypted: refusing a replaced superblock",
				   objstore_describe(store));
			return -ESTALE;
		}
		if (superblock_sealed(&local) && sb.lock.epoch < local.lock.epoch) {
			errbuf_set(err, errlen,
				   "the superblock of %s is older than this cache's copy (key epoch "
				   "%" PRIu64 " < %" PRIu64 "): an old superblock put back? refusing it",
				   objstore_describe(store), sb.lock.epoch, local.lock.epoch);
			return -ESTALE;
		}
	}
	if (!superblock_sealed(&sb) && cfg->encryption == 1) {
		errbuf_set(err, errlen,
			   "the filesystem in %s is not encrypted, but the configuration says "
			   "encryption: true (which applies to new filesystems): remove the key to "
			   "mount it",
			   objstore_describe(store));
		return -ESTALE;
	}
	return unlock(cfg, store, &sb, &out->keys, err, errlen);
}

void fskeys_release(struct fskeys *k)
{
	keys_release(&k->keys);
	memset(&k->lock, 0, sizeof(k->lock));
}
