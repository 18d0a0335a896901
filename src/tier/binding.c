/*
 * binding.c - which bucket this cache belongs to: tier_bind checks the
 * bucket's superblock against the cache, or creates it for a new
 * filesystem (rule: one filesystem per bucket).
 *
 * Invariants:
 *  - A superblock with another fs_id, format version or chunk size is
 *    refused, and so is a bucket that holds Zero objects but no superblock.
 *  - A cache bound to its bucket mounts on the cache alone while the bucket
 *    does not answer.
 */
#include "tier/tier_internal.h"

#include "common/log.h"
#include "format/envelope.h"
#include "journal/lease.h"
#include "store/objstore.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#define SUPERBLOCK_KEY "zero/superblock"
#define FORMAT_VERSION 1

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}

static int hex_decode(const char *in, uint8_t *out, size_t n)
{
	if (strlen(in) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(in + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	return 0;
}

/* Value of "KEY=value" in the superblock TEXT, into BUF. */
static bool sb_field(const char *text, const char *key, char *buf, size_t size)
{
	size_t klen = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			const char *v = p + klen + 1;
			size_t n = strcspn(v, "\n");
			if (n >= size)
				return false;
			memcpy(buf, v, n);
			buf[n] = '\0';
			return true;
		}
	}
	return false;
}

static int sb_create(struct fs *fs, struct tier *t, const char *fs_id, char *err, size_t errlen)
{
	char text[512], key_hex[2 * ENVELOPE_KEY_LEN + 1], buf[64];
	struct objstore_list page = {0};
	int n, ret;

	/* an empty bucket, or one that holds no Zero objects but the lease (taken first), only */
	ret = objstore_list(t->store, "zero/", NULL, 2, &page);
	for (size_t i = 0; ret == 0 && i < page.count; i++) {
		if (strcmp(page.entries[i].key, LEASE_KEY) == 0)
			continue;
		snprintf(err, errlen,
			 "%s holds Zero objects (%s) but no superblock: refusing to create a "
			 "filesystem over them",
			 objstore_describe(t->store), page.entries[i].key);
		objstore_list_release(&page);
		return -EEXIST;
	}
	objstore_list_release(&page);
	if (ret) {
		snprintf(err, errlen, "cannot list %s: %s", objstore_describe(t->store),
			 objstore_reason(ret));
		return ret;
	}
	if (meta_setting_get(fs->meta, "id_key", key_hex, sizeof(key_hex)) != 0 ||
	    hex_decode(key_hex, t->id_key, ENVELOPE_KEY_LEN) != 0) {
		randombytes_buf(t->id_key, ENVELOPE_KEY_LEN);
		hex_encode(t->id_key, ENVELOPE_KEY_LEN, key_hex);
	}
	n = snprintf(text, sizeof(text),
		     "zero-superblock\nformat=%d\nfs_id=%s\nchunk_size=%" PRIu32
		     "\nid_key=%s\ncreated=%lld\n",
		     FORMAT_VERSION, fs_id, fs->chunk_size, key_hex, (long long)time(NULL));
	ret = objstore_put(t->store, SUPERBLOCK_KEY, text, (size_t)n);
	if (ret) {
		snprintf(err, errlen, "cannot write the superblock to %s: %s",
			 objstore_describe(t->store), objstore_reason(ret));
		return ret;
	}
	ret = meta_setting_set(fs->meta, "id_key", key_hex);
	if (ret == 0)
		ret = meta_setting_set(fs->meta, "bucket_bound", "1");
	snprintf(buf, sizeof(buf), "%s", fs_id);
	log_info("created filesystem %s in %s", buf, objstore_describe(t->store));
	return ret;
}

/* Check the bucket's superblock against this cache, or create it (rule: one fs per bucket). */
int tier_bind(struct fs *fs, struct tier *t, char *err, size_t errlen)
{
	char fs_id[64], bound[8] = "", field[160];
	char *text = NULL;
	size_t len = 0;
	int ret;

	ret = meta_setting_get(fs->meta, "fs_id", fs_id, sizeof(fs_id));
	if (ret) {
		snprintf(err, errlen, "metadata has no fs_id");
		return ret;
	}
	meta_setting_get(fs->meta, "bucket_bound", bound, sizeof(bound));
	ret = objstore_get(t->store, SUPERBLOCK_KEY, 0, 4096, &text, &len);
	if (ret == -ENOENT) {
		if (strcmp(bound, "1") == 0) {
			snprintf(
			    err, errlen,
			    "%s has no Zero superblock, but this cache's filesystem %s lives in a "
			    "bucket: wrong bucket, prefix or endpoint?",
			    objstore_describe(t->store), fs_id);
			return -ENOENT;
		}
		return sb_create(fs, t, fs_id, err, errlen);
	}
	if (ret) {
		if (strcmp(bound, "1") == 0) {
			/* local data stays usable; uploads wait for the bucket */
			log_warn(
			    "cannot read the superblock of %s (%s); mounting on the cache alone "
			    "until it answers",
			    objstore_describe(t->store), objstore_reason(ret));
			char key_hex[2 * ENVELOPE_KEY_LEN + 1];
			if (meta_setting_get(fs->meta, "id_key", key_hex, sizeof(key_hex)) == 0 &&
			    hex_decode(key_hex, t->id_key, ENVELOPE_KEY_LEN) == 0)
				return 0;
		}
		snprintf(err, errlen, "cannot reach the bucket %s: %s", objstore_describe(t->store),
			 objstore_reason(ret));
		return ret;
	}
	text = realloc(text, len + 1);
	if (!text)
		return -ENOMEM;
	text[len] = '\0';
	ret = -EPROTO;
	if (strncmp(text, "zero-superblock\n", 16) != 0 ||
	    !sb_field(text, "format", field, sizeof(field))) {
		snprintf(err, errlen, "%s/%s is not a Zero superblock", objstore_describe(t->store),
			 SUPERBLOCK_KEY);
		goto out;
	}
	if (atoi(field) != FORMAT_VERSION) {
		snprintf(err, errlen,
			 "the filesystem in %s has format version %s; this zero reads version %d",
			 objstore_describe(t->store), field, FORMAT_VERSION);
		goto out;
	}
	if (!sb_field(text, "fs_id", field, sizeof(field)) || strcmp(field, fs_id) != 0) {
		snprintf(err, errlen,
			 "%s holds another filesystem (%s), not this cache's (%s); use another "
			 "bucket or prefix, or the cache that belongs to it",
			 objstore_describe(t->store), field, fs_id);
		ret = -EEXIST;
		goto out;
	}
	if (!sb_field(text, "chunk_size", field, sizeof(field)) ||
	    strtoul(field, NULL, 10) != fs->chunk_size) {
		snprintf(err, errlen,
			 "the superblock's chunk size %s differs from the cache's %" PRIu32, field,
			 fs->chunk_size);
		goto out;
	}
	if (!sb_field(text, "id_key", field, sizeof(field)) ||
	    hex_decode(field, t->id_key, ENVELOPE_KEY_LEN) != 0) {
		snprintf(err, errlen, "the superblock has no valid id_key");
		goto out;
	}
	ret = meta_setting_set(fs->meta, "id_key", field);
	if (ret == 0)
		ret = meta_setting_set(fs->meta, "bucket_bound", "1");
out:
	free(text);
	return ret;
}
