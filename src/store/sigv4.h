/*
 * sigv4.h - AWS Signature Version 4: canonical request, string to sign,
 * signing key and the Authorization header. Pure functions (no I/O, no
 * clock), so they are tested against AWS's published example signatures.
 */
#ifndef ZERO_SIGV4_H
#define ZERO_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* A header to sign. NAME in any case; VALUE is trimmed and its inner runs of spaces collapsed. */
struct sigv4_header {
	const char *name;
	const char *value;
};

struct sigv4_request {
	const char *method; /* "GET", "PUT", ... */
	const char *path;   /* URI path, already URI-encoded (sigv4_uri_encode) */
	const char *query;  /* "k=v&k2" already encoded, any order, "" or NULL for none */
	const struct sigv4_header *headers;
	size_t nheaders;	  /* every header listed is signed; must include host */
	const char *payload_hash; /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
};

struct sigv4_credentials {
	const char *access_key_id;
	const char *secret_access_key;
	const char *region;
	const char *service; /* "s3" */
};

/* Lower-case hex SHA-256 of LEN bytes at DATA into HEX (65 bytes with NUL). */
void sigv4_sha256_hex(const void *data, size_t len, char hex[65]);

/* "YYYYMMDDTHHMMSSZ" for T (UTC) into OUT (17 bytes). */
void sigv4_amz_date(time_t t, char out[17]);

/*
 * URI-encode IN the way SigV4 wants: unreserved characters (A-Z a-z 0-9
 * - _ . ~) stay, '/' stays when KEEP_SLASH, every other byte becomes %XX
 * (upper-case hex). Returns a malloc'd string the caller frees, or NULL.
 */
char *sigv4_uri_encode(const char *in, bool keep_slash);

/* The signing key for DATE8 ("YYYYMMDD"), region and service into KEY. */
void sigv4_signing_key(const char *secret, const char *date8, const char *region,
		       const char *service, unsigned char key[32]);

/* The canonical request text; caller frees *OUT. Returns 0 or -errno. */
int sigv4_canonical_request(const struct sigv4_request *req, char **out);

/*
 * The whole Authorization header value for REQ signed at AMZ_DATE
 * ("YYYYMMDDTHHMMSSZ", the same as the request's x-amz-date) into OUT.
 * Returns 0, -ENOMEM, or -ENAMETOOLONG when OUTLEN is too small.
 */
int sigv4_authorization(const struct sigv4_request *req, const struct sigv4_credentials *cred,
			const char *amz_date, char *out, size_t outlen);

#endif /* ZERO_SIGV4_H */
