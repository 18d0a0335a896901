/*
 * superblock.c - the superblock's text, its MAC and its keys (see
 * superblock.h). The text is "key=value" lines after a first line
 * "zero-superblock"; format 2 ends with "mac=", over the canonical text of
 * every line before it (as superblock_format writes them), so the MAC
 * checks the values, not the spelling, and a line added by hand is ignored.
 */
#include "journal/superblock.h"

#include "common/errbuf.h"
#include "store/objstore.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "zero-superblock\n"

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool hex_decode(const char *in, uint8_t *out, size_t n)
{
	if (strlen(in) != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

/* Value of line "KEY=value" of TEXT (LEN bytes) into BUF; false when absent or too long. */
static bool field(const char *text, size_t len, const char *key, char *buf, size_t size)
{
	size_t klen = strlen(key);
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (n > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
			if (n - klen - 1 >= size)
				return false;
			memcpy(buf, p + klen + 1, n - klen - 1);
			buf[n - klen - 1] = '\0';
			return true;
		}
		p += n + 1;
	}
	return false;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return !errno && !*end;
}

int superblock_parse(const char *text, size_t len, struct superblock *sb, char *err,
		     size_t errlen)
{
	char v[2 * KEYS_WRAPPED_LEN + 1];
	uint64_t n;

	memset(sb, 0, sizeof(*sb));
	if (len < strlen(MAGIC) || memcmp(text, MAGIC, strlen(MAGIC)) != 0 ||
	    !field(text, len, "format", v, sizeof(v)) || !parse_u64(v, &n)) {
		errbuf_set(err, errlen, "not a Zero superblock");
		return -EPROTO;
	}
	if (n != SUPERBLOCK_PLAIN && n != SUPERBLOCK_SEALED) {
		errbuf_set(err, errlen, "the superblock has format version %s; this zero reads 1 and 2",
			   v);
		return -ENOTSUP;
	}
	sb->format = (int)n;
#define REQUIRE(cond, what)                                                                        \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			errbuf_set(err, errlen, "the superblock has no valid %s", what);           \
			return -EPROTO;                                                            \
		}                                                                                  \
	} while (0)
	REQUIRE(field(text, len, "fs_id", sb->fs_id, sizeof(sb->fs_id)) && sb->fs_id[0], "fs_id");
	REQUIRE(field(text, len, "chunk_size", v, sizeof(v)) && parse_u64(v, &n) && n &&
			n <= UINT32_MAX && (n & (n - 1)) == 0,
		"chunk_size");
	sb->chunk_size = (uint32_t)n;
	/* created is informational: superblocks of early versions may lack it */
	if (field(text, len, "created", v, sizeof(v)) && parse_u64(v, &n) && n <= INT64_MAX)
		sb->created = (int64_t)n;
	if (sb->format == SUPERBLOCK_PLAIN) {
		REQUIRE(field(text, len, "id_key", v, sizeof(v)) &&
				hex_decode(v, sb->id_key, KEYS_LEN),
			"id_key");
		return 0;
	}
	REQUIRE(field(text, len, "cipher", v, sizeof(v)) && strcmp(v, KEYS_CIPHER_NAME) == 0,
		"cipher (" KEYS_CIPHER_NAME ")");
	REQUIRE(field(text, len, "kdf", v, sizeof(v)) && strcmp(v, KEYS_KDF_NAME) == 0,
		"kdf (" KEYS_KDF_NAME ")");
	REQUIRE(field(text, len, "kdf_ops", v, sizeof(v)) && parse_u64(v, &sb->lock.kdf.ops),
		"kdf_ops");
	REQUIRE(field(text, len, "kdf_mem", v, sizeof(v)) && parse_u64(v, &sb->lock.kdf.mem),
		"kdf_mem");
	REQUIRE(keys_kdf_valid(sb->lock.kdf.ops, sb->lock.kdf.mem), "KDF limits");
	REQUIRE(field(text, len, "kdf_salt", v, sizeof(v)) &&
			hex_decode(v, sb->lock.kdf.salt, KEYS_SALT_LEN),
		"kdf_salt");
	REQUIRE(field(text, len, "key_epoch", v, sizeof(v)) && parse_u64(v, &sb->lock.epoch) &&
			sb->lock.epoch,
		"key_epoch");
	REQUIRE(field(text, len, "wrapped_key", v, sizeof(v)) &&
			hex_decode(v, sb->lock.wrapped, KEYS_WRAPPED_LEN),
		"wrapped_key");
	REQUIRE(field(text, len, "mac", v, sizeof(v)) && hex_decode(v, sb->mac, KEYS_MAC_LEN),
		"mac");
#undef REQUIRE
	return 0;
}

/* The canonical text of SB without its MAC line; the length, or -ENAMETOOLONG. */
static int format_fields(const struct superblock *sb, char *buf, size_t size)
{
	char a[2 * KEYS_WRAPPED_LEN + 1], b[2 * KEYS_WRAPPED_LEN + 1];
	int n;

	if (sb->format == SUPERBLOCK_PLAIN) {
		hex_encode(sb->id_key, KEYS_LEN, a);
		n = snprintf(buf, size,
			     MAGIC "format=1\nfs_id=%s\nchunk_size=%" PRIu32
				   "\nid_key=%s\ncreated=%" PRId64 "\n",
			     sb->fs_id, sb->chunk_size, a, sb->created);
	} else {
		hex_encode(sb->lock.kdf.salt, KEYS_SALT_LEN, a);
		hex_encode(sb->lock.wrapped, KEYS_WRAPPED_LEN, b);
		n = snprintf(buf, size,
			     MAGIC "format=2\nfs_id=%s\nchunk_size=%" PRIu32 "\ncreated=%" PRId64
				   "\ncipher=" KEYS_CIPHER_NAME "\nkdf=" KEYS_KDF_NAME
				   "\nkdf_ops=%" PRIu64 "\nkdf_mem=%" PRIu64 "\nkdf_salt=%s\n"
				   "key_epoch=%" PRIu64 "\nwrapped_key=%s\n",
			     sb->fs_id, sb->chunk_size, sb->created, sb->lock.kdf.ops,
			     sb->lock.kdf.mem, a, sb->lock.epoch, b);
	}
	return n > 0 && (size_t)n < size ? n : -ENAMETOOLONG;
}

int superblock_format(struct superblock *sb, const struct keyring *k, char *buf, size_t size)
{
	char mac[2 * KEYS_MAC_LEN + 1];
	int n = format_fields(sb, buf, size);

	if (n < 0 || sb->format == SUPERBLOCK_PLAIN)
		return n;
	if (!k || !k->sealed)
		return -EINVAL;
	keys_mac(k, buf, (size_t)n, sb->mac);
	hex_encode(sb->mac, KEYS_MAC_LEN, mac);
	if ((size_t)n + 4 + 2 * KEYS_MAC_LEN + 1 >= size)
		return -ENAMETOOLONG;
	n += snprintf(buf + n, size - (size_t)n, "mac=%s\n", mac);
	return n;
}

int superblock_verify(const struct superblock *sb, const struct keyring *k)
{
	char text[SUPERBLOCK_TEXT_MAX];
	int n;

	if (!superblock_sealed(sb) || !k->sealed)
		return -EINVAL;
	n = format_fields(sb, text, sizeof(text));
	if (n < 0)
		return n;
	return keys_mac_ok(k, text, (size_t)n, sb->mac) ? 0 : -EBADMSG;
}

int superblock_unlock(const struct superblock *sb, const char *pass, size_t len,
		      struct keyring *k)
{
	struct keyring opened;
	int ret;

	if (!superblock_sealed(sb)) {
		keys_plain(k, sb->id_key);
		return 0;
	}
	ret = keys_unlock(&sb->lock, pass, len, &opened);
	if (ret)
		return ret;
	ret = superblock_verify(sb, &opened);
	if (ret == 0)
		*k = opened;
	keys_release(&opened);
	return ret;
}

int superblock_read(struct objstore *store, struct superblock *sb, char **textp, char *err,
		    size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int ret;

	if (textp)
		*textp = NULL;
	ret = objstore_get(store, SUPERBLOCK_KEY, 0, SUPERBLOCK_TEXT_MAX, &text, &len);
	if (ret) {
		if (ret != -ENOENT)
			errbuf_set(err, errlen, "cannot read the superblock of %s: %s",
				   objstore_describe(store), objstore_reason(ret));
		return ret;
	}
	ret = superblock_parse(text, len, sb, err, errlen);
	if (ret == 0 && textp) {
		char *t = realloc(text, len + 1);
		if (!t) {
			ret = -ENOMEM;
		} else {
			t[len] = '\0';
			*textp = t;
			text = NULL;
		}
	}
	free(text);
	return ret;
}

int superblock_write(struct objstore *store, struct superblock *sb, const struct keyring *k,
		     char **textp)
{
	char text[SUPERBLOCK_TEXT_MAX];
	int n, ret;

	if (textp)
		*textp = NULL;
	n = superblock_format(sb, k, text, sizeof(text));
	if (n < 0)
		return n;
	ret = objstore_put(store, SUPERBLOCK_KEY, text, (size_t)n);
	if (ret == 0 && textp) {
		*textp = strdup(text);
		if (!*textp)
			ret = -ENOMEM;
	}
	return ret;
}
