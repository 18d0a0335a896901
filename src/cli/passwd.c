/*
 * passwd.c - `zero passwd`: change the passphrase of an encrypted
 * filesystem. The data key is wrapped again under the new passphrase (a
 * new salt, the key epoch + 1) and the superblock replaced; no object is
 * rewritten, and the old passphrase no longer opens the filesystem.
 */
#include "cli/cachedir.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "cli/fskeys.h"
#include "cli/passphrase.h"
#include "journal/superblock.h"
#include "store/objstore.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NEW_ENV "ZERO_NEW_PASSPHRASE"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: zero passwd [CACHE] [--config FILE] [--new-passphrase-file FILE]\n\n"
		"Change the passphrase of the encrypted filesystem in the configured bucket.\n"
		"Its data key is wrapped again under the new passphrase: nothing else in the\n"
		"bucket is rewritten, and the old passphrase stops opening the filesystem.\n"
		"The current passphrase comes from ZERO_PASSPHRASE, passphraseFile in the\n"
		"configuration, or the terminal; the new one from --new-passphrase-file,\n"
		"ZERO_NEW_PASSPHRASE, or the terminal (asked twice). Remember to change\n"
		"passphraseFile too. A mount running now keeps working; each cache takes the\n"
		"new superblock at its next mount. CACHE matters only for the embedded default\n"
		"bucket (CACHE/bucket; default cache $XDG_DATA_HOME/zero).\n\n"
		"options:\n"
		"  --config FILE               configuration file (the bucket, passphraseFile)\n"
		"  --new-passphrase-file FILE  take the new passphrase from FILE (private to\n"
		"                              its owner; one trailing newline is dropped)\n"
		"  -h, --help                  show this help\n");
}

int cli_passwd(int argc, char **argv)
{
	const char *config_path = NULL, *new_file = NULL, *cache_arg = NULL;
	char cache[PATH_MAX], err[1024], why[512], pass[PASSPHRASE_MAX + 1];
	struct passphrase_source src = {NEW_ENV, NULL, "new passphrase: ", true};
	struct config cfg = {0};
	struct objstore *store = NULL;
	struct fskeys keys = {0};
	struct superblock sb;
	size_t len = 0;
	int ret, status = 1;

	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config_path = argv[++i];
		} else if (strcmp(argv[i], "--new-passphrase-file") == 0 && i + 1 < argc) {
			new_file = argv[++i];
		} else if (argv[i][0] == '-' || cache_arg) {
			usage(stderr);
			return 2;
		} else {
			cache_arg = argv[i];
		}
	}
	if (config_load(config_path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "zero: %s\n", err);
		return 1;
	}
	if (cfg.bucket_dir_default) {
		char *dir = NULL;
		if (!cache_arg && cachedir_default(cache, sizeof(cache)) == 0)
			cache_arg = cache;
		if (!cache_arg || asprintf(&dir, "%s/bucket", cache_arg) < 0) {
			fprintf(stderr, "zero: no CACHE given and neither XDG_DATA_HOME nor HOME set\n");
			goto out_config;
		}
		free(cfg.bucket_dir);
		cfg.bucket_dir = dir;
	}
	ret = objstore_open_from_config(&cfg, &store, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "zero: %s\n", err);
		goto out_config;
	}
	ret = superblock_read(store, &sb, NULL, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "zero: %s\n",
			ret == -ENOENT ? "the bucket holds no Zero filesystem (no superblock)" : why);
		goto out_store;
	}
	if (!superblock_sealed(&sb)) {
		fprintf(stderr,
			"zero: the filesystem in %s is not encrypted: it has no passphrase to "
			"change\n",
			objstore_describe(store));
		goto out_store;
	}
	ret = fskeys_open(&cfg, store, NULL, false, &keys, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "zero: %s\n", err);
		goto out_store;
	}
	src.file = new_file;
	ret = passphrase_get(&src, pass, &len, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "zero: the new passphrase: %s (give it with --new-passphrase-file, "
				"in %s, or on a terminal)\n",
			why, NEW_ENV);
		goto out_keys;
	}
	keys_kdf_default(&sb.lock.kdf);
	sb.lock.epoch++;
	ret = keys_lock(&keys.keys, pass, len, &sb.lock);
	explicit_bzero(pass, sizeof(pass));
	if (ret == 0)
		ret = superblock_write(store, &sb, &keys.keys, NULL);
	if (ret) {
		fprintf(stderr, "zero: cannot write the new superblock to %s: %s\n",
			objstore_describe(store), objstore_reason(ret));
		goto out_keys;
	}
	printf("zero: the passphrase of the filesystem in %s is changed (key epoch %" PRIu64 ")\n",
	       objstore_describe(store), sb.lock.epoch);
	status = 0;
out_keys:
	fskeys_release(&keys);
out_store:
	objstore_free(store);
out_config:
	config_release(&cfg);
	return status;
}
