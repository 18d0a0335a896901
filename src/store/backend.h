/*
 * backend.h - what the object-store backends share with objstore.c: the
 * common head of every handle and the backend constructors. Not for use
 * outside src/store.
 */
#ifndef ZERO_STORE_BACKEND_H
#define ZERO_STORE_BACKEND_H

#include "store/objstore.h"

#include <stdatomic.h>

/* Every backend's handle starts with this; backends cast to their own type. */
struct objstore {
	const struct objstore_ops *ops;
	char *prefix;	/* "" or ending in '/'; owned */
	char *describe; /* e.g. "s3 http://127.0.0.1:4568 bucket b"; owned */
	atomic_uint refs; /* references (objstore_ref); the last objstore_free frees */
};

/* Parameters of an s3 store, filled from the config or by the b2 bootstrap. */
struct s3_params {
	const char *endpoint; /* scheme://host[:port], no trailing '/' */
	const char *bucket;
	const char *region;
	const char *access_key_id;
	const char *secret_access_key;
	const char *ca_file; /* NULL: system CAs only */
	bool path_style;
	unsigned max_parallel;
	uint64_t multipart_threshold;
	uint64_t multipart_part_size;
	unsigned connect_timeout_s;
	unsigned low_speed_timeout_s;
	unsigned max_retries;
	unsigned retry_base_ms;
	const char
	    *upload_checksum; /* "crc32c", "sha256", "md5"; NULL: md5 for Backblaze, else crc32c */
	bool sign_payload;    /* x-amz-content-sha256 = the body's SHA-256, not UNSIGNED-PAYLOAD */
};

/* Backend constructors: on success *OUT has ops and describe set; prefix is set by the caller. */
int store_file_open(const char *dir, struct objstore **out, char *err, size_t errlen);
int store_s3_open(const struct s3_params *p, struct objstore **out, char *err, size_t errlen);

/*
 * Backblaze bootstrap: authorize with ACCOUNT_ID/APPLICATION_KEY at API_URL
 * (NULL: the public one), find BUCKET_ID's name and the S3 endpoint. Caller
 * owns *ENDPOINT and *BUCKET_NAME.
 */
int b2_bootstrap(const char *api_url, const char *account_id, const char *application_key,
		 const char *bucket_id, const struct s3_params *tuning, char **endpoint,
		 char **bucket_name, char **region, char *err, size_t errlen);

#endif /* ZERO_STORE_BACKEND_H */
