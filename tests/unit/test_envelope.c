/*
 * test_envelope.c - unit tests of the object format: round trips in every
 * mode and size class (decode and in-place open), the byte layout pinned by
 * a known answer (the version 2 checksum computed with Python's
 * cryptography package), version 1 objects still read, every single-byte
 * corruption and every truncation of small objects rejected, keys,
 * options, and the content address against BLAKE2b values computed
 * independently (Python's hashlib.blake2b).
 */
#include "format/envelope.h"
#include "test.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <sodium.h>

#define MIB (1024 * 1024)

static const uint8_t data_key[ENVELOPE_KEY_LEN] = {
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
};

/* Bytes 0, 1, ..., 31: the id key of the known answers below. */
static void counting_key(uint8_t key[ENVELOPE_KEY_LEN])
{
	for (int i = 0; i < ENVELOPE_KEY_LEN; i++)
		key[i] = (uint8_t)i;
}

static void hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned int b;

		sscanf(hex + 2 * i, "%2x", &b);
		out[i] = (uint8_t)b;
	}
}

/* Text that zstd shrinks well, but not a single repeated byte. */
static void fill_compressible(uint8_t *buf, size_t len)
{
	static const char text[] = "chunk objects are content-addressed and never overwritten; ";

	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(text[i % (sizeof(text) - 1)] + (i / 4096) % 3);
}

static uint8_t *make_plaintext(size_t len, bool compressible)
{
	uint8_t *p = malloc(len ? len : 1);

	if (!p)
		return NULL;
	if (compressible)
		fill_compressible(p, len);
	else
		randombytes_buf(p, len);
	return p;
}

/*
 * envelope_open() on a copy of OBJ gives PLAIN: in place when stored
 * uncompressed, NULL, through a scratch buffer (-ENOBUFS without one) when not.
 */
static void check_open(const uint8_t *key, const uint8_t *obj, size_t objlen,
		       const uint8_t *plain, size_t len)
{
	uint8_t *copy = malloc(objlen), *scratch = malloc(len + 1);
	const void *got = NULL;
	size_t gotlen = 99;
	int ret;

	TEST_ASSERT(copy && scratch);
	if (!copy || !scratch)
		goto out_free;
	memcpy(copy, obj, objlen);
	ret = envelope_open(key, NULL, copy, objlen, NULL, 0, &got, &gotlen);
	if (obj[5] == ENVELOPE_CODEC_NONE) {
		TEST_ASSERT_EQ_INT(ret, 0);
		TEST_ASSERT(got == copy + (key ? 72 : 64));
	} else {
		TEST_ASSERT_EQ_INT(ret, -ENOBUFS);
		TEST_ASSERT(got == NULL && gotlen == 0);
		ret = envelope_open(key, NULL, copy, objlen, scratch, len, &got, &gotlen);
		TEST_ASSERT_EQ_INT(ret, 0);
		TEST_ASSERT(got == scratch);
	}
	TEST_ASSERT_EQ_INT(gotlen, len);
	TEST_ASSERT(ret != 0 || len == 0 || memcmp(got, plain, len) == 0);
out_free:
	free(copy);
	free(scratch);
}

/* Encode and decode one plaintext; check what the header says on the way. */
static void check_round_trip(size_t len, bool compressible, int codec, const uint8_t *key)
{
	struct envelope_opts o = {.codec = codec, .zstd_level = 3, .data_key = key};
	uint8_t *plain = make_plaintext(len, compressible);
	uint8_t *obj = NULL, *dst = malloc(len + 1);
	size_t objlen = 0, got = 12345;
	size_t header = key ? 72 : 64;
	uint64_t peek = 0;

	TEST_ASSERT(plain && dst);
	if (!plain || !dst)
		goto out_free;
	TEST_ASSERT_EQ_INT(envelope_encode(&o, plain, len, &obj, &objlen), 0);
	if (!obj)
		goto out_free;
	TEST_ASSERT(objlen >= header);
	TEST_ASSERT_EQ_INT(obj[6], key ? 1 : 0);
	if (codec == ENVELOPE_CODEC_ZSTD && compressible && len >= 4095) {
		TEST_ASSERT_EQ_INT(obj[5], ENVELOPE_CODEC_ZSTD);
		TEST_ASSERT(objlen < header + len / 4);
	} else {
		/* Stored: no codec asked for, or zstd did not make it smaller. */
		TEST_ASSERT_EQ_INT(obj[5], ENVELOPE_CODEC_NONE);
		TEST_ASSERT_EQ_INT(objlen, header + len);
	}
	TEST_ASSERT_EQ_INT(envelope_plaintext_len(obj, ENVELOPE_PEEK_LEN, &peek), 0);
	TEST_ASSERT_EQ_INT(peek, len);

	TEST_ASSERT_EQ_INT(envelope_decode(key, NULL, obj, objlen, dst, len, &got), 0);
	TEST_ASSERT_EQ_INT(got, len);
	TEST_ASSERT(len == 0 || memcmp(dst, plain, len) == 0);
	if (len > 0) {
		TEST_ASSERT_EQ_INT(envelope_decode(key, NULL, obj, objlen, dst, len - 1, &got), -ERANGE);
		TEST_ASSERT_EQ_INT(got, 0);
	}
	check_open(key, obj, objlen, plain, len);
out_free:
	free(obj);
	free(dst);
	free(plain);
}

static void test_round_trips(void)
{
	static const size_t sizes[] = {0, 1, 4095, 4 * MIB};

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
		for (int compressible = 0; compressible < 2; compressible++)
			for (int codec = 0; codec < 2; codec++) {
				check_round_trip(sizes[s], compressible, codec, NULL);
				check_round_trip(sizes[s], compressible, codec, data_key);
			}
}

static void test_empty_plaintext_may_be_null(void)
{
	struct envelope_opts o = {.codec = ENVELOPE_CODEC_ZSTD};
	uint8_t *obj = NULL;
	size_t objlen, got = 1;

	TEST_ASSERT_EQ_INT(envelope_encode(&o, NULL, 0, &obj, &objlen), 0);
	TEST_ASSERT_EQ_INT(objlen, 64);
	TEST_ASSERT_EQ_INT(envelope_decode(NULL, NULL, obj, objlen, NULL, 0, &got), 0);
	TEST_ASSERT_EQ_INT(got, 0);
	free(obj);

	o.data_key = data_key;
	TEST_ASSERT_EQ_INT(envelope_encode(&o, NULL, 0, &obj, &objlen), 0);
	TEST_ASSERT_EQ_INT(objlen, 72);
	TEST_ASSERT_EQ_INT(envelope_decode(data_key, NULL, obj, objlen, NULL, 0, &got), 0);
	free(obj);
}

/*
 * The version 2 layout, byte by byte. The checksum is the AES-128-GCM tag
 * (zero key and nonce, empty plaintext, fields || payload as associated
 * data) computed with Python's cryptography package, then 16 zero bytes.
 */
static void test_plain_layout_known_answer(void)
{
	/* clang-format off */
	static const uint8_t fields[32] = {
		'Z', 'O', 'B', 'J', 2, 0, 0, 0,	/* magic, version, codec, flags, reserved */
		64, 0, 0, 0, 0, 0, 0, 0,	/* header length, reserved */
		3, 0, 0, 0, 0, 0, 0, 0,		/* plaintext length */
		3, 0, 0, 0, 0, 0, 0, 0,		/* payload length */
	};
	/* clang-format on */
	static const uint8_t zeros[16];
	struct envelope_opts o = {.codec = ENVELOPE_CODEC_NONE};
	uint8_t *obj = NULL, sum[16];
	size_t objlen = 0;

	hex_to_bytes("820b29568e0e8b818f8e4516911915f2", sum, 16);
	TEST_ASSERT_EQ_INT(envelope_encode(&o, "abc", 3, &obj, &objlen), 0);
	TEST_ASSERT_EQ_INT(objlen, 67);
	if (objlen != 67)
		goto out_free;
	TEST_ASSERT(memcmp(obj, fields, 32) == 0);
	TEST_ASSERT(memcmp(obj + 32, sum, 16) == 0);
	TEST_ASSERT(memcmp(obj + 48, zeros, 16) == 0);
	TEST_ASSERT(memcmp(obj + 64, "abc", 3) == 0);
out_free:
	free(obj);
}

/*
 * Objects written by version 1 (BLAKE2b-256 checksum, computed with
 * Python's hashlib) stay readable, and are still verified.
 */
static void test_version1_objects_readable(void)
{
	/* clang-format off */
	uint8_t obj[67] = {
		'Z', 'O', 'B', 'J', 1, 0, 0, 0,
		64, 0, 0, 0, 0, 0, 0, 0,
		3, 0, 0, 0, 0, 0, 0, 0,
		3, 0, 0, 0, 0, 0, 0, 0,
	};
	/* clang-format on */
	uint8_t dst[3];
	const void *plain;
	size_t got = 0;

	hex_to_bytes("3463b3a130f714775f5ea0363291e0e9d0c137a895a95f915b634d0d98ec63e3", obj + 32,
		     32);
	memcpy(obj + 64, "abc", 3);
	TEST_ASSERT_EQ_INT(envelope_decode(NULL, NULL, obj, sizeof(obj), dst, sizeof(dst), &got), 0);
	TEST_ASSERT(got == 3 && memcmp(dst, "abc", 3) == 0);
	TEST_ASSERT_EQ_INT(envelope_open(NULL, NULL, obj, sizeof(obj), NULL, 0, &plain, &got), 0);
	TEST_ASSERT(got == 3 && plain == obj + 64);
	/* A version 1 object under the version 2 checksum is corrupt, and vice versa. */
	obj[4] = 2;
	TEST_ASSERT_EQ_INT(envelope_decode(NULL, NULL, obj, sizeof(obj), dst, sizeof(dst), &got),
			   -EBADMSG);
	obj[4] = 1;
	obj[66] ^= 1;
	TEST_ASSERT_EQ_INT(envelope_decode(NULL, NULL, obj, sizeof(obj), dst, sizeof(dst), &got),
			   -EBADMSG);
}

static void test_sealed_layout(void)
{
	struct envelope_opts o = {.codec = ENVELOPE_CODEC_NONE, .data_key = data_key};
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;

	TEST_ASSERT_EQ_INT(envelope_encode(&o, "abc", 3, &a, &alen), 0);
	TEST_ASSERT_EQ_INT(envelope_encode(&o, "abc", 3, &b, &blen), 0);
	TEST_ASSERT_EQ_INT(alen, 75);
	if (!a || !b || alen != 75 || blen != 75)
		goto out_free;
	TEST_ASSERT(memcmp(a, "ZOBJ", 4) == 0);
	TEST_ASSERT_EQ_INT(a[6], 1);
	TEST_ASSERT_EQ_INT(a[8], 72);
	TEST_ASSERT(memcmp(a, b, 32) == 0);
	/* A fresh random nonce each time, so equal plaintexts seal differently... */
	TEST_ASSERT(memcmp(a + 32, b + 32, 24) != 0);
	TEST_ASSERT(memcmp(a + 72, b + 72, 3) != 0);
	/* ...and the plaintext is not visible. */
	TEST_ASSERT(memcmp(a + 72, "abc", 3) != 0);
out_free:
	free(a);
	free(b);
}

/*
 * The sealed payload is libsodium's XChaCha20-Poly1305 (IETF) to the byte,
 * with AD = the 32 bytes of fields || the name, whichever library computes
 * it: libsodium opens what the envelope sealed, and the envelope opens what
 * libsodium sealed, for sizes around the cipher's 64-byte blocks and large.
 */
static void test_sealed_payload_is_libsodiums_xchacha20poly1305(void)
{
	static const size_t sizes[] = {0, 1, 63, 64, 65, 1000, 4096, 1u << 20, (5u << 20) + 7};
	static const char name[] = "zero/meta/j/0000000000000001-00000001-1796596416810-S";

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = sizes[i], objlen = 0, got = 0;
		struct envelope_opts o = {.codec = ENVELOPE_CODEC_NONE, .data_key = data_key,
					  .name = name};
		uint8_t *plain = malloc(len + 1), *dst = malloc(len + 1), *obj = NULL;
		uint8_t ad[32 + sizeof(name) - 1];

		randombytes_buf(plain, len);
		TEST_ASSERT_EQ_INT(envelope_encode(&o, plain, len, &obj, &objlen), 0);
		if (!obj)
			goto next;
		memcpy(ad, obj, 32);
		memcpy(ad + 32, name, sizeof(name) - 1);
		/* libsodium opens ours */
		TEST_ASSERT_EQ_INT(crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
				       dst, NULL, obj + 72, len, obj + 56, ad, sizeof(ad), obj + 32,
				       data_key),
				   0);
		TEST_ASSERT(len == 0 || memcmp(dst, plain, len) == 0);
		/* we open libsodium's */
		crypto_aead_xchacha20poly1305_ietf_encrypt_detached(obj + 72, obj + 56, NULL, plain,
								    len, ad, sizeof(ad), NULL,
								    obj + 32, data_key);
		TEST_ASSERT_EQ_INT(envelope_decode(data_key, name, obj, objlen, dst, len + 1, &got), 0);
		TEST_ASSERT(got == len && (len == 0 || memcmp(dst, plain, len) == 0));
		/* a flipped tag bit: refused, and nothing decrypted is left in DST */
		obj[60] ^= 4;
		memset(dst, 0xee, len + 1);
		TEST_ASSERT_EQ_INT(envelope_decode(data_key, name, obj, objlen, dst, len + 1, &got),
				   -EBADMSG);
		for (size_t j = 0; j < len && len < 100000; j++)
			if (dst[j] == plain[j] && plain[j] != 0) {
				TEST_ASSERT(!"plaintext left in DST after a failed tag");
				break;
			}
	next:
		free(obj);
		free(plain);
		free(dst);
	}
}

/* Decode a copy of exactly LEN bytes of OBJ, so a sanitizer sees any overread. */
static int decode_copy(const uint8_t *key, const uint8_t *obj, size_t len, uint8_t *dst,
		       size_t dstcap, size_t *got)
{
	uint8_t *copy = malloc(len ? len : 1);
	int ret;

	if (!copy)
		return -ENOMEM;
	memcpy(copy, obj, len);
	ret = envelope_decode(key, NULL, copy, len, dst, dstcap, got);
	free(copy);
	return ret;
}

/* envelope_open() of a copy of OBJ (it may decrypt in place), NULL, scratch DST. */
static int open_copy(const uint8_t *key, const uint8_t *obj, size_t len, uint8_t *dst,
		     size_t dstcap, size_t *got)
{
	uint8_t *copy = malloc(len ? len : 1);
	const void *plain;
	int ret;

	if (!copy)
		return -ENOMEM;
	memcpy(copy, obj, len);
	ret = envelope_open(key, NULL, copy, len, dst, dstcap, &plain, got);
	free(copy);
	return ret;
}

/*
 * Flip bits of byte I (every header byte, then payload bytes every STEP)
 * with a few masks: each must be -EBADMSG with nothing reported decoded.
 */
static void check_corruptions(const uint8_t *key, uint8_t *obj, size_t objlen, size_t header,
			      size_t step, uint8_t *dst, size_t dstcap)
{
	static const uint8_t masks[] = {0x01, 0x80, 0xff};
	int bad = 0;

	for (size_t i = 0; i < objlen; i += i < header ? 1 : step) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			size_t got = 99;
			int ret;

			obj[i] ^= masks[m];
			ret = envelope_decode(key, NULL, obj, objlen, dst, dstcap, &got);
			if (ret == -EBADMSG && got == 0)
				ret = open_copy(key, obj, objlen, dst, dstcap, &got);
			obj[i] ^= masks[m];
			if (ret != -EBADMSG || got != 0) {
				if (bad++ < 5)
					fprintf(stderr, "byte %zu mask %#x: %d\n", i, masks[m],
						ret);
			}
		}
	}
	TEST_ASSERT_EQ_INT(bad, 0);
}

static void check_corruption_mode(size_t len, bool compressible, int codec, const uint8_t *key,
				  size_t step)
{
	struct envelope_opts o = {.codec = codec, .zstd_level = 3, .data_key = key};
	uint8_t *plain = make_plaintext(len, compressible);
	size_t dstcap = 2 * len + 4096; /* room, so no corruption can hide behind -ERANGE */
	uint8_t *dst = malloc(dstcap);
	uint8_t *obj = NULL;
	size_t objlen = 0, got;

	TEST_ASSERT(plain && dst);
	if (!plain || !dst)
		goto out_free;
	TEST_ASSERT_EQ_INT(envelope_encode(&o, plain, len, &obj, &objlen), 0);
	if (!obj)
		goto out_free;
	TEST_ASSERT_EQ_INT(obj[5], codec);
	check_corruptions(key, obj, objlen, key ? 72 : 64, step, dst, dstcap);
	/* Unharmed after all that flipping back. */
	TEST_ASSERT_EQ_INT(envelope_decode(key, NULL, obj, objlen, dst, dstcap, &got), 0);
	TEST_ASSERT(got == len && memcmp(dst, plain, len) == 0);
out_free:
	free(obj);
	free(dst);
	free(plain);
}

static void test_every_single_byte_corruption(void)
{
	/* Small objects: every byte. */
	for (int sealed = 0; sealed < 2; sealed++) {
		const uint8_t *key = sealed ? data_key : NULL;

		check_corruption_mode(200, false, ENVELOPE_CODEC_NONE, key, 1);
		check_corruption_mode(2000, true, ENVELOPE_CODEC_ZSTD, key, 1);
		check_corruption_mode(0, false, ENVELOPE_CODEC_NONE, key, 1);
		/* A chunk-sized object: the whole header, a sample of the payload. */
		check_corruption_mode(4 * MIB, false, ENVELOPE_CODEC_NONE, key, 65537);
		check_corruption_mode(4 * MIB, true, ENVELOPE_CODEC_ZSTD, key, 2003);
	}
}

static void check_truncations(int codec, const uint8_t *key)
{
	struct envelope_opts o = {.codec = codec, .zstd_level = 1, .data_key = key};
	uint8_t plain[1500], dst[2048];
	uint8_t *obj = NULL, *longer = NULL;
	size_t objlen = 0, got;
	int bad = 0;

	fill_compressible(plain, sizeof(plain));
	TEST_ASSERT_EQ_INT(envelope_encode(&o, plain, sizeof(plain), &obj, &objlen), 0);
	if (!obj)
		return;
	for (size_t n = 0; n < objlen; n++) {
		int ret = decode_copy(key, obj, n, dst, sizeof(dst), &got);

		if (ret != -EBADMSG && bad++ < 5)
			fprintf(stderr, "truncated to %zu: %d\n", n, ret);
	}
	TEST_ASSERT_EQ_INT(bad, 0);
	TEST_ASSERT_EQ_INT(decode_copy(key, obj, objlen, dst, sizeof(dst), &got), 0);
	/* A trailing byte is no better than a missing one. */
	longer = calloc(1, objlen + 1);
	if (longer) {
		memcpy(longer, obj, objlen);
		TEST_ASSERT_EQ_INT(envelope_decode(key, NULL, longer, objlen + 1, dst, sizeof(dst), &got),
				   -EBADMSG);
	}
	free(longer);
	free(obj);
}

static void test_truncation_at_every_length(void)
{
	check_truncations(ENVELOPE_CODEC_NONE, NULL);
	check_truncations(ENVELOPE_CODEC_ZSTD, NULL);
	check_truncations(ENVELOPE_CODEC_NONE, data_key);
	check_truncations(ENVELOPE_CODEC_ZSTD, data_key);
}

static void test_keys(void)
{
	struct envelope_opts o = {.codec = ENVELOPE_CODEC_ZSTD, .zstd_level = 3};
	uint8_t wrong[ENVELOPE_KEY_LEN];
	uint8_t plain[3000], dst[3000];
	uint8_t *sealed = NULL, *plainobj = NULL;
	size_t slen = 0, plen = 0, got;

	memcpy(wrong, data_key, sizeof(wrong));
	wrong[31] ^= 1;
	fill_compressible(plain, sizeof(plain));
	TEST_ASSERT_EQ_INT(envelope_encode(&o, plain, sizeof(plain), &plainobj, &plen), 0);
	o.data_key = data_key;
	TEST_ASSERT_EQ_INT(envelope_encode(&o, plain, sizeof(plain), &sealed, &slen), 0);
	if (!sealed || !plainobj)
		goto out_free;

	TEST_ASSERT_EQ_INT(envelope_decode(wrong, NULL, sealed, slen, dst, sizeof(dst), &got), -EBADMSG);
	TEST_ASSERT_EQ_INT(envelope_decode(NULL, NULL, sealed, slen, dst, sizeof(dst), &got), -ENOKEY);
	/* An encrypted fs does not take an unsealed object for one of its own. */
	TEST_ASSERT_EQ_INT(envelope_decode(data_key, NULL, plainobj, plen, dst, sizeof(dst), &got),
			   -EBADMSG);
	TEST_ASSERT_EQ_INT(envelope_decode(data_key, NULL, sealed, slen, dst, sizeof(dst), &got), 0);
	TEST_ASSERT(got == sizeof(plain) && memcmp(dst, plain, got) == 0);
out_free:
	free(sealed);
	free(plainobj);
}

/*
 * A sealed object opens only under the name it was sealed for: moved or
 * copied to another name (a swap, a replay of an old object) it is
 * -EBADMSG, for both codecs and both decode paths.
 */
static void test_sealed_objects_are_bound_to_their_name(void)
{
	static const char *name = "zero/chunks/ab/abcdef";
	static const char *other[] = {"zero/chunks/ab/abcdeg", "zero/chunks/ab/abcde", "", NULL};
	static const int codecs[] = {ENVELOPE_CODEC_NONE, ENVELOPE_CODEC_ZSTD};
	char toolong[ENVELOPE_NAME_MAX + 2];
	uint8_t plain[3000], dst[3000];

	memset(toolong, 'k', sizeof(toolong) - 1);
	toolong[sizeof(toolong) - 1] = '\0';
	fill_compressible(plain, sizeof(plain));
	for (size_t c = 0; c < 2; c++) {
		struct envelope_opts o = {.codec = codecs[c], .zstd_level = 3, .data_key = data_key,
					  .name = name};
		uint8_t *obj = NULL, *copy = NULL;
		const void *got_plain;
		size_t len = 0, got;

		TEST_ASSERT_EQ_INT(envelope_encode(&o, plain, sizeof(plain), &obj, &len), 0);
		if (!obj)
			continue;
		for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
			TEST_ASSERT_EQ_INT(envelope_decode(data_key, other[i], obj, len, dst,
							   sizeof(dst), &got),
					   -EBADMSG);
		TEST_ASSERT_EQ_INT(envelope_decode(data_key, toolong, obj, len, dst, sizeof(dst), &got),
				   -EBADMSG);
		copy = malloc(len);
		memcpy(copy, obj, len);
		TEST_ASSERT_EQ_INT(envelope_open(data_key, "zero/other", copy, len, dst, sizeof(dst),
						 &got_plain, &got),
				   -EBADMSG);
		memcpy(copy, obj, len);
		TEST_ASSERT_EQ_INT(envelope_open(data_key, name, copy, len, dst, sizeof(dst),
						 &got_plain, &got),
				   0);
		TEST_ASSERT(got == sizeof(plain) && memcmp(got_plain, plain, got) == 0);
		TEST_ASSERT_EQ_INT(envelope_decode(data_key, name, obj, len, dst, sizeof(dst), &got),
				   0);
		TEST_ASSERT(got == sizeof(plain) && memcmp(dst, plain, got) == 0);
		free(copy);
		free(obj);
		/* a name no object could be stored under is refused at encode */
		o.name = toolong;
		TEST_ASSERT_EQ_INT(envelope_encode(&o, plain, sizeof(plain), &obj, &len),
				   -ENAMETOOLONG);
	}
}

/* The version 2 checksum of A || B into SUM[16], as the format defines it. */
static int gmac(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t sum[16])
{
	static const uint8_t zero_key[16], zero_iv[12];
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int outl, ok;

	if (!ctx)
		return -1;
	ok = EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, zero_key, zero_iv) == 1 &&
	     EVP_EncryptUpdate(ctx, NULL, &outl, a, (int)alen) == 1 &&
	     EVP_EncryptUpdate(ctx, NULL, &outl, b, (int)blen) == 1 &&
	     EVP_EncryptFinal_ex(ctx, NULL, &outl) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, sum) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* A header that is well checksummed but says something this version cannot read. */
static void test_unknown_version_and_codec(void)
{
	struct envelope_opts o = {.codec = ENVELOPE_CODEC_NONE};
	uint8_t *obj = NULL, dst[16];
	size_t objlen = 0, got;
	uint64_t peek;

	TEST_ASSERT_EQ_INT(envelope_encode(&o, "abc", 3, &obj, &objlen), 0);
	if (!obj)
		return;
	for (int which = 0; which < 4; which++) {
		uint8_t saved[32];

		memcpy(saved, obj, 32);
		if (which == 0)
			obj[4] = 3; /* a version from the future */
		else if (which == 1)
			obj[4] = 0;
		else if (which == 2)
			obj[5] = ENVELOPE_CODEC_LZ4;
		else
			obj[6] = 0x02; /* an unknown flag */
		/* Re-checksum, so only the field itself is wrong. */
		TEST_ASSERT_EQ_INT(gmac(obj, 32, obj + 64, 3, obj + 32), 0);
		TEST_ASSERT_EQ_INT(envelope_decode(NULL, NULL, obj, objlen, dst, sizeof(dst), &got),
				   -EBADMSG);
		TEST_ASSERT_EQ_INT(envelope_plaintext_len(obj, objlen, &peek), -EBADMSG);
		memcpy(obj, saved, 32);
	}
	free(obj);
}

static void test_plaintext_len_peek(void)
{
	struct envelope_opts o = {
	    .codec = ENVELOPE_CODEC_ZSTD, .zstd_level = 5, .data_key = data_key};
	uint8_t plain[10000], *obj = NULL;
	size_t objlen = 0;
	uint64_t peek = 0;

	fill_compressible(plain, sizeof(plain));
	TEST_ASSERT_EQ_INT(envelope_encode(&o, plain, sizeof(plain), &obj, &objlen), 0);
	if (!obj)
		return;
	TEST_ASSERT_EQ_INT(envelope_plaintext_len(obj, objlen, &peek), 0);
	TEST_ASSERT_EQ_INT(peek, sizeof(plain));
	TEST_ASSERT_EQ_INT(envelope_plaintext_len(obj, ENVELOPE_PEEK_LEN - 1, &peek), -EBADMSG);
	TEST_ASSERT_EQ_INT(envelope_plaintext_len(plain, sizeof(plain), &peek), -EBADMSG);
	TEST_ASSERT_EQ_INT(envelope_plaintext_len("", 0, &peek), -EBADMSG);
	free(obj);
}

static void test_encode_options(void)
{
	static const int levels[] = {-5, 0, 1, 19};
	struct envelope_opts o = {.codec = ENVELOPE_CODEC_LZ4};
	uint8_t plain[8192], dst[8192];
	uint8_t *obj = (uint8_t *)&o;
	size_t objlen = 7, got;

	TEST_ASSERT_EQ_INT(envelope_encode(&o, "x", 1, &obj, &objlen), -ENOTSUP);
	TEST_ASSERT(obj == NULL && objlen == 0);
	o.codec = 3;
	TEST_ASSERT_EQ_INT(envelope_encode(&o, "x", 1, &obj, &objlen), -EINVAL);
	o.codec = -1;
	TEST_ASSERT_EQ_INT(envelope_encode(&o, "x", 1, &obj, &objlen), -EINVAL);
	o.codec = ENVELOPE_CODEC_ZSTD;
	o.zstd_level = 1000;
	TEST_ASSERT_EQ_INT(envelope_encode(&o, "x", 1, &obj, &objlen), -EINVAL);
	TEST_ASSERT_EQ_INT(envelope_encode(&o, NULL, 1, &obj, &objlen), -EINVAL);

	/* zstd's whole level range works, fast negative levels included. */
	fill_compressible(plain, sizeof(plain));
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		o.zstd_level = levels[i];
		TEST_ASSERT_EQ_INT(envelope_encode(&o, plain, sizeof(plain), &obj, &objlen), 0);
		if (!obj)
			continue;
		TEST_ASSERT_EQ_INT(obj[5], ENVELOPE_CODEC_ZSTD);
		TEST_ASSERT_EQ_INT(envelope_decode(NULL, NULL, obj, objlen, dst, sizeof(dst), &got), 0);
		TEST_ASSERT(got == sizeof(plain) && memcmp(dst, plain, got) == 0);
		free(obj);
	}
}

/* Keyed BLAKE2b-256, key 00..1f; expected values from Python's hashlib.blake2b. */
static void test_object_id_known_answers(void)
{
	uint8_t key[ENVELOPE_KEY_LEN], msg[256], id[ENVELOPE_ID_LEN];
	char hex[2 * ENVELOPE_ID_LEN + 1];

	counting_key(key);
	for (int i = 0; i < 256; i++)
		msg[i] = (uint8_t)i;
	envelope_object_id(key, NULL, 0, id);
	envelope_id_hex(id, hex);
	TEST_ASSERT_EQ_STR(hex, "4e51e7a913fc80137da52880fecca175bf81e117d5c68126dc2774033517ea0d");
	envelope_object_id(key, msg, sizeof(msg), id);
	envelope_id_hex(id, hex);
	TEST_ASSERT_EQ_STR(hex, "b42be36ea26392f67d1d3706ffa72b6c61c2ff38e1fabd9a49e154d54b967d83");
}

static void test_object_ids(void)
{
	uint8_t key[ENVELOPE_KEY_LEN], other[ENVELOPE_KEY_LEN];
	uint8_t a[ENVELOPE_ID_LEN], b[ENVELOPE_ID_LEN], c[ENVELOPE_ID_LEN], d[ENVELOPE_ID_LEN];
	uint8_t buf1[4096], buf2[4096];

	counting_key(key);
	memcpy(other, key, sizeof(other));
	other[0] ^= 0x80;
	fill_compressible(buf1, sizeof(buf1));
	memcpy(buf2, buf1, sizeof(buf2));
	envelope_object_id(key, buf1, sizeof(buf1), a);
	envelope_object_id(key, buf2, sizeof(buf2), b);
	TEST_ASSERT(memcmp(a, b, sizeof(a)) == 0);
	envelope_object_id(other, buf1, sizeof(buf1), c);
	TEST_ASSERT(memcmp(a, c, sizeof(a)) != 0);
	buf2[4095] ^= 1;
	envelope_object_id(key, buf2, sizeof(buf2), d);
	TEST_ASSERT(memcmp(a, d, sizeof(a)) != 0);
}

static void test_hex_and_object_key(void)
{
	static const char hex_in[] =
	    "00ff10a9b42be36ea26392f67d1d3706ffa72b6c61c2ff38e1fabd9a49e154d5";
	uint8_t id[ENVELOPE_ID_LEN], keep[ENVELOPE_ID_LEN];
	char hex[2 * ENVELOPE_ID_LEN + 1], key[ENVELOPE_OBJECT_KEY_SIZE], small[16];
	char bad[2 * ENVELOPE_ID_LEN + 2];

	TEST_ASSERT_EQ_INT(ENVELOPE_OBJECT_KEY_SIZE, 80);
	TEST_ASSERT_EQ_INT(envelope_id_from_hex(hex_in, id), 0);
	TEST_ASSERT_EQ_INT(id[0], 0x00);
	TEST_ASSERT_EQ_INT(id[1], 0xff);
	TEST_ASSERT_EQ_INT(id[3], 0xa9);
	envelope_id_hex(id, hex);
	TEST_ASSERT_EQ_STR(hex, hex_in);

	envelope_object_key(id, key, sizeof(key));
	TEST_ASSERT_EQ_STR(key, "zero/chunks/00/"
				"00ff10a9b42be36ea26392f67d1d3706ffa72b6c61c2ff38e1fabd9a49e154d5");
	TEST_ASSERT_EQ_INT(strlen(key) + 1, ENVELOPE_OBJECT_KEY_SIZE);
	envelope_object_key(id, small, sizeof(small));
	TEST_ASSERT_EQ_STR(small, "zero/chunks/00/");
	envelope_object_key(id, NULL, 0);

	memcpy(keep, id, sizeof(keep));
	memcpy(bad, hex_in, sizeof(hex_in));
	bad[10] = 'A'; /* upper case is not what we write */
	TEST_ASSERT_EQ_INT(envelope_id_from_hex(bad, id), -EINVAL);
	bad[10] = 'g';
	TEST_ASSERT_EQ_INT(envelope_id_from_hex(bad, id), -EINVAL);
	memcpy(bad, hex_in, sizeof(hex_in));
	bad[63] = '\0';
	TEST_ASSERT_EQ_INT(envelope_id_from_hex(bad, id), -EINVAL);
	memcpy(bad, hex_in, sizeof(hex_in));
	bad[64] = '0';
	bad[65] = '\0';
	TEST_ASSERT_EQ_INT(envelope_id_from_hex(bad, id), -EINVAL);
	TEST_ASSERT_EQ_INT(envelope_id_from_hex("", id), -EINVAL);
	TEST_ASSERT_EQ_INT(envelope_id_from_hex(NULL, id), -EINVAL);
	TEST_ASSERT(memcmp(id, keep, sizeof(id)) == 0);
}

static void test_id_from_key(void)
{
	static const char hex_in[] =
	    "00ff10a9b42be36ea26392f67d1d3706ffa72b6c61c2ff38e1fabd9a49e154d5";
	uint8_t id[ENVELOPE_ID_LEN], back[ENVELOPE_ID_LEN], keep[ENVELOPE_ID_LEN];
	char key[ENVELOPE_OBJECT_KEY_SIZE + 8];

	TEST_ASSERT_EQ_INT(envelope_id_from_hex(hex_in, id), 0);
	envelope_object_key(id, key, sizeof(key));
	TEST_ASSERT_EQ_INT(envelope_id_from_key(key, back), 0);
	TEST_ASSERT(memcmp(id, back, sizeof(id)) == 0);

	memcpy(keep, back, sizeof(keep));
	/* the directory must be the id's first two digits */
	snprintf(key, sizeof(key), "zero/chunks/01/%s", hex_in);
	TEST_ASSERT_EQ_INT(envelope_id_from_key(key, back), -EINVAL);
	snprintf(key, sizeof(key), "zero/chunks/00/%s0", hex_in);
	TEST_ASSERT_EQ_INT(envelope_id_from_key(key, back), -EINVAL);
	snprintf(key, sizeof(key), "zero/chunks/00/%.63s", hex_in);
	TEST_ASSERT_EQ_INT(envelope_id_from_key(key, back), -EINVAL);
	snprintf(key, sizeof(key), "zero/chunks/00x%s", hex_in);
	TEST_ASSERT_EQ_INT(envelope_id_from_key(key, back), -EINVAL);
	snprintf(key, sizeof(key), "zero/meta/000/%s", hex_in);
	TEST_ASSERT_EQ_INT(envelope_id_from_key(key, back), -EINVAL);
	snprintf(key, sizeof(key), "zero/chunks/00/%s", hex_in);
	key[20] = 'A';
	TEST_ASSERT_EQ_INT(envelope_id_from_key(key, back), -EINVAL);
	TEST_ASSERT_EQ_INT(envelope_id_from_key("zero/lease", back), -EINVAL);
	TEST_ASSERT_EQ_INT(envelope_id_from_key(NULL, back), -EINVAL);
	TEST_ASSERT(memcmp(back, keep, sizeof(back)) == 0);
}

int main(void)
{
	if (sodium_init() < 0) {
		fprintf(stderr, "sodium_init failed\n");
		return 1;
	}
	TEST_RUN(test_round_trips);
	TEST_RUN(test_empty_plaintext_may_be_null);
	TEST_RUN(test_plain_layout_known_answer);
	TEST_RUN(test_version1_objects_readable);
	TEST_RUN(test_sealed_layout);
	TEST_RUN(test_sealed_payload_is_libsodiums_xchacha20poly1305);
	TEST_RUN(test_every_single_byte_corruption);
	TEST_RUN(test_truncation_at_every_length);
	TEST_RUN(test_keys);
	TEST_RUN(test_sealed_objects_are_bound_to_their_name);
	TEST_RUN(test_unknown_version_and_codec);
	TEST_RUN(test_plaintext_len_peek);
	TEST_RUN(test_encode_options);
	TEST_RUN(test_object_id_known_answers);
	TEST_RUN(test_object_ids);
	TEST_RUN(test_hex_and_object_key);
	TEST_RUN(test_id_from_key);
	return TEST_MAIN_END();
}
