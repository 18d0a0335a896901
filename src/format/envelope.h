/*
 * envelope.h - the object format: the small versioned envelope around every
 * chunk object Zero puts in the bucket, and the content address (object id)
 * of a chunk. Pure functions over memory: no I/O, no global state.
 *
 * Layout (version 2, all integers little-endian; docs/format.md has the
 * full table):
 *
 *	fields	32 bytes: magic "ZOBJ", version, codec, flags, header length,
 *		plaintext length, payload length
 *	plain	checksum[32]	GMAC(fields || payload), 16 zeros	header = 64
 *		(version 1, still read: BLAKE2b-256(fields || payload))
 *	sealed	nonce[24] tag[16]	XChaCha20-Poly1305,	header = 72
 *		AD = fields || the object's name in the bucket
 *	payload	the plaintext, or its zstd frame; encrypted when sealed
 *
 * Invariants:
 *  1. envelope_decode() and envelope_open() hand out bytes only after the checksum or the AEAD
 *     tag verified; anything else is -EBADMSG, never wrong data.
 *  2. An object is exactly header + payload bytes: shorter or longer is
 *     -EBADMSG.
 *  3. codec ZSTD is only ever written when the frame is smaller than the
 *     plaintext, so 0 < payload < plaintext for zstd and payload ==
 *     plaintext for none; a reader enforces both.
 *  4. With a data key, only sealed objects are accepted (no downgrade to an
 *     unauthenticated object); without one, only plain objects.
 */
#ifndef ZERO_ENVELOPE_H
#define ZERO_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#define ENVELOPE_ID_LEN 32
#define ENVELOPE_KEY_LEN 32 /* id key and data key */
/* Bytes envelope_plaintext_len() needs from the start of an object. */
#define ENVELOPE_PEEK_LEN 32
/* Largest header of any object this version writes (sealed). */
#define ENVELOPE_HEADER_MAX 72
/* The longest object name a sealed object is bound to (S3 keys are at most 1024 bytes). */
#define ENVELOPE_NAME_MAX 1024
/* Size of the buffer envelope_object_key() fills, NUL included. */
#define ENVELOPE_OBJECT_KEY_SIZE (sizeof("zero/chunks/hh/") + 2 * ENVELOPE_ID_LEN)

enum envelope_codec {
	ENVELOPE_CODEC_NONE = 0,
	ENVELOPE_CODEC_ZSTD = 1,
	ENVELOPE_CODEC_LZ4 = 2, /* reserved: encode says -ENOTSUP, decode -EBADMSG */
};

/*
 * The content address of a chunk: keyed BLAKE2b-256 of PLAINTEXT with the
 * filesystem's 32-byte id KEY, so equal chunks share one object and ids
 * reveal nothing about contents to whoever reads the bucket.
 */
void envelope_object_id(const uint8_t key[ENVELOPE_KEY_LEN], const void *plaintext, size_t len,
			uint8_t id[ENVELOPE_ID_LEN]);

/* Lower-case hex of ID into HEX (65 bytes with the NUL). */
void envelope_id_hex(const uint8_t id[ENVELOPE_ID_LEN], char hex[2 * ENVELOPE_ID_LEN + 1]);

/*
 * Parse exactly 64 lower-case hex digits (what envelope_id_hex writes, and
 * so what bucket listings hold) into ID. 0, or -EINVAL for anything else;
 * ID is untouched on error.
 */
int envelope_id_from_hex(const char *hex, uint8_t id[ENVELOPE_ID_LEN]);

/*
 * The object's key in the bucket, relative to the configured prefix:
 * "zero/chunks/<first 2 hex>/<64 hex>". KEY holds SIZE bytes; with SIZE >=
 * ENVELOPE_OBJECT_KEY_SIZE the key is complete (shorter is truncated, but
 * always NUL-terminated when SIZE > 0).
 */
void envelope_object_key(const uint8_t id[ENVELOPE_ID_LEN], char *key, size_t size);

/*
 * The id of the chunk object named KEY (relative to the prefix), when KEY
 * is exactly what envelope_object_key() writes: 0, or -EINVAL for any
 * other key (ID untouched). Keys under zero/chunks/ that fail this are not
 * Zero's chunk objects.
 */
int envelope_id_from_key(const char *key, uint8_t id[ENVELOPE_ID_LEN]);

struct envelope_opts {
	int codec;		 /* enum envelope_codec */
	int zstd_level;		 /* zstd's scale, 0 = zstd's default; ignored for NONE */
	const uint8_t *data_key; /* ENVELOPE_KEY_LEN bytes to seal the object, NULL = plain */
	/*
	 * Sealed only: the name the object is stored under (relative to the
	 * prefix; NULL = ""), bound into the tag: it opens under that name only.
	 */
	const char *name;
};

/*
 * Wrap LEN bytes of PLAINTEXT (NULL allowed when LEN is 0) as one object.
 * With codec ZSTD the payload is a zstd frame when that is smaller than the
 * plaintext, else the plaintext itself under codec NONE. On success *OUT is
 * a malloc'd buffer of *OUTLEN bytes that the caller owns and frees; on
 * error *OUT is NULL.
 * -EINVAL for bad options (unknown codec, level out of zstd's range),
 * -ENAMETOOLONG for a name beyond ENVELOPE_NAME_MAX,
 * -ENOTSUP for LZ4, -ENOMEM, -EFBIG for a plaintext beyond zstd's bound,
 * -EIO if libsodium cannot initialise.
 */
int envelope_encode(const struct envelope_opts *o, const void *plaintext, size_t len, uint8_t **out,
		    size_t *outlen);

/*
 * Verify and unwrap the OBJLEN-byte object OBJ into DST, which holds DSTCAP
 * bytes; *LEN = the plaintext bytes written. DATA_KEY is the fs's data key
 * for sealed objects, NULL for plain ones; NAME the name it was sealed for
 * (ignored for plain objects). The caller owns DST; on error
 * its first DSTCAP bytes are unspecified (but never handed out as data).
 *	-EBADMSG	corrupt, truncated, trailing bytes, unknown magic,
 *			version, codec or flag, wrong key or name, or a plain
 *			object when DATA_KEY is given
 *	-ENOKEY		the object is sealed and DATA_KEY is NULL
 *	-ERANGE		DSTCAP is smaller than the plaintext length in the
 *			header (size DST with envelope_plaintext_len())
 *	-ENOMEM		no memory for the decrypted frame of a sealed zstd object
 * -ERANGE is only returned for a header whose lengths agree with each other
 * and OBJLEN; a flipped length bit is -EBADMSG.
 */
int envelope_decode(const uint8_t *data_key, const char *name, const void *obj, size_t objlen,
		    void *dst, size_t dstcap, size_t *len);

/*
 * envelope_decode() without the copy: verify OBJ where it lies and point
 * *PLAIN at its plaintext (*LEN bytes). An uncompressed object is opened in
 * place: *PLAIN points into OBJ, which is decrypted in place when sealed
 * (so OBJ is changed, also on failure). A compressed one is decoded into
 * SCRATCH (SCRATCHCAP bytes), which *PLAIN then points at; with SCRATCH
 * NULL it is -ENOBUFS, before any verification, so the caller can find a
 * buffer and call again. Otherwise the errors of envelope_decode().
 */
int envelope_open(const uint8_t *data_key, const char *name, void *obj, size_t objlen,
		  void *scratch, size_t scratchcap, const void **plain, size_t *len);

/*
 * Peek the plaintext length recorded in an object's header, for sizing the
 * buffer of envelope_decode(). Only the first ENVELOPE_PEEK_LEN bytes are
 * read, so OBJ may be the start of a ranged GET. The value is not verified
 * until envelope_decode() succeeds: callers bound it (e.g. by the chunk
 * size) before allocating. 0, or -EBADMSG if OBJ does not start an envelope
 * this version can read.
 */
int envelope_plaintext_len(const void *obj, size_t objlen, uint64_t *len);

#endif /* ZERO_ENVELOPE_H */
