/*
 * config.h - Zero's configuration file (~/.config/zero/config.yml or --config FILE).
 *
 * Parsed with libyaml. Every problem (unknown key, wrong type, impossible
 * value, unreadable file) is reported as "FILE:LINE: key 'KEY': what is wrong".
 * Credentials may also come from the environment (see config.c).
 */
#ifndef ZERO_CONFIG_H
#define ZERO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config {
	char *path;		     /* file that was loaded, or NULL when none exists */
	char *backend;		     /* "file" (default), "s3" or "b2" */
	char *bucket_dir;	     /* file backend: directory acting as the bucket */
	bool bucket_dir_default;     /* bucket_dir was not configured: the default applies */
	char *endpoint;		     /* s3: https://host[:port] */
	char *bucket;		     /* s3: bucket name */
	char *region;		     /* s3: region, default "us-east-1" */
	char *prefix;		     /* key prefix inside the bucket, may be "" */
	char *access_key_id;	     /* s3 credentials */
	char *secret_access_key;
	char *ca_file;		     /* extra CA bundle for https */
	bool path_style;	     /* s3: path-style addressing (default true) */
	char *account_id;	     /* b2: Backblaze key id */
	char *application_key;	     /* b2: Backblaze application key */
	char *bucket_id;	     /* b2: bucket id */
	char *sqlite_file_location;  /* metadata database; default CACHE/meta.db */
	uint64_t target_disk_usage; /* cache size target in bytes; 0 = unset */
	uint64_t chunk_size;	     /* bytes, a power of two; new filesystems; 0 = default */
	/* tuning */
	unsigned upload_delay_s;		  /* seconds without writes before upload */
	unsigned metadata_backup_interval_s;	  /* seconds between metadata snapshots */
	unsigned metadata_sync_interval_s;	  /* seconds between shipments of metadata changes */
	unsigned metadata_retention_s;		  /* seconds of point-in-time history kept */
	bool sync_upload;			  /* fsync waits until the bucket has the file */
	bool writeback_cache;			  /* the kernel caches writes (default true) */
	unsigned max_parallel_transfers;	  /* concurrent HTTP transfers */
	uint64_t multipart_threshold;		  /* bytes; above it PUT is multipart */
	uint64_t multipart_part_size;		  /* bytes per part */
	unsigned connect_timeout_s;
	unsigned low_speed_timeout_s;
	unsigned max_retries;
	/* added by the store layer */
	unsigned retry_base_ms;		  /* first retry delay; doubles each retry */
	unsigned backpressure_timeout_s;  /* writers waiting for uploads get ENOSPC after this */
	unsigned orphan_safety_age_s;	  /* an unknown chunk object younger than this is kept */
	unsigned orphan_sweep_interval_s; /* between the collector's orphan sweeps; 0 = none */
	unsigned lease_timeout_s;	  /* a mount's lease lasts this long unrenewed */
	char *b2_api_url;		  /* b2: authorize URL (tests point it at a fake) */
	char *upload_checksum;		  /* s3: "crc32c", "sha256" or "md5"; NULL: by endpoint */
	bool sign_payload;		  /* s3: sign the body's SHA-256 (default false) */
	/* encryption of a new filesystem: 1 on, 0 off, -1 unset (config_encrypts decides) */
	int encryption;
	char *passphrase_file; /* the passphrase, in a file private to its owner */
	uint64_t capacity;     /* bytes df shows as the filesystem's size; 0: the default */
	char *metrics_listen;  /* "HOST:PORT" of the Prometheus endpoint, or NULL: none */
};

/* Whether a new filesystem under CFG is encrypted: as set, else on for s3 and b2 buckets. */
bool config_encrypts(const struct config *cfg);

/* Default location of the file backend's bucket directory; caller frees. */
char *config_default_bucket_dir(void);

/*
 * Parse configuration text BUF (LEN bytes) as if read from file NAME, without
 * touching the environment or the file system (used by config_load and by
 * the unit tests). Same contract as config_load otherwise.
 */
int config_parse(const char *name, const char *buf, size_t len, struct config *cfg, char *err,
		 size_t errlen);

/* Fill unset credentials and endpoint from the environment (AWS_*, B2_*). */
void config_apply_env(struct config *cfg);

/*
 * Load the configuration. PATH NULL means the default location
 * ($XDG_CONFIG_HOME/zero/config.yml, else ~/.config/zero/config.yml), which
 * may be absent (defaults apply); an explicit PATH must exist. On failure
 * returns -errno (or -EINVAL for bad content) and writes a one-line message
 * naming file, line and key into ERR. On success CFG is filled and owned by
 * the caller (config_release). A file with secrets readable by group or
 * others gets a warning on stderr.
 */
int config_load(const char *path, struct config *cfg, char *err, size_t errlen);

/* Free everything config_load allocated; CFG may then be loaded again. */
void config_release(struct config *cfg);

#endif /* ZERO_CONFIG_H */
