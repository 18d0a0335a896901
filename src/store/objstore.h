/*
 * objstore.h - the object-store interface: a flat namespace of immutable
 * byte strings ("objects") under string keys, behind a vtable of backends.
 *
 * Backends: "file" (a local directory acting as a bucket, the embedded
 * default), "s3" (any S3-compatible service, SigV4) and "b2" (Backblaze
 * keys, bootstrapped into the s3 backend). See docs/objstore.md.
 *
 * Rules every backend keeps:
 *  1. Keys are 1..1024 bytes of UTF-8 without NUL, no leading '/', no empty,
 *     "." or ".." component. objstore_* checks them before a backend sees
 *     them (-EINVAL otherwise).
 *  2. A put is atomic: a reader sees the old object, or no object, or the
 *     whole new one, never a part. A failed put leaves no new object.
 *  3. Every function returns 0 or -errno. The errno set is small and the
 *     same for all backends: -ENOENT (no such object), -EACCES (credentials
 *     refused), -ENXIO (no such bucket), -ECONNREFUSED / -EHOSTUNREACH /
 *     -ETIMEDOUT / -ECONNRESET (network, after retries), -EPROTO (TLS or a
 *     malformed answer), -EAGAIN (server still throttling after retries),
 *     -EIO (server error after retries, local I/O error), -EINVAL (a request
 *     the server calls invalid), -ENOMEM; rarer: -EREMOTE (redirected: wrong
 *     region or endpoint), -EBUSY (409 conflict), -EFBIG (too large for the
 *     server or for a bounded sink), -ENAMETOOLONG (a key component the file
 *     backend can't name). http.c's http_map_error is the one mapping for
 *     HTTP; docs/objstore.md has the table.
 *  4. Failures are logged once, where they are mapped to errno, and the
 *     detail of the calling thread's last failure is kept for callers that
 *     print advice (objstore_last_error).
 *  5. Handles are safe to use from several threads at once.
 *  6. A conditional put (objstore_put_if) is a compare-and-swap: it lands
 *     only if the key is absent, or still holds the object of the entity
 *     tag the caller read. Stores that do conditional writes: the file
 *     backend (under a lock, atomic against other conditional puts) and S3
 *     services that honour If-None-Match / If-Match, which is probed once
 *     per handle (objstore_conditional). Elsewhere it is -ENOTSUP.
 *
 * The configured key prefix is applied in objstore.c, above the backends:
 * callers use keys relative to it, backends receive full keys, and listings
 * hand back relative keys.
 */
#ifndef ZERO_OBJSTORE_H
#define ZERO_OBJSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct config;

/* An open object store. Opaque; created by objstore_open_from_config. */
struct objstore;

#define OBJSTORE_ETAG_MAX 80

/* Result of head and of each listing entry. */
struct objstore_info {
	uint64_t size;		      /* bytes */
	time_t mtime;		      /* last modification, seconds since the epoch (0 if unknown) */
	char etag[OBJSTORE_ETAG_MAX]; /* backend's entity tag without quotes, "" if unknown */
};

/* One listed object; KEY is owned by the listing it belongs to. */
struct objstore_entry {
	char *key;
	uint64_t size;
	time_t mtime;
};

/* One page of a listing. Caller owns it (objstore_list_release). */
struct objstore_list {
	struct objstore_entry *entries; /* in ascending byte order of key */
	size_t count;
	char *next_token; /* NULL when this is the last page; else pass to the next call */
};

/*
 * Where get puts the bytes. FD >= 0: written with pwrite at OFFSET onwards
 * (the caller owns FD). FD < 0: a growing heap buffer BUF of LEN bytes that
 * the caller frees; MAX, when non-zero, bounds it (-EFBIG beyond).
 */
struct objstore_sink {
	int fd;
	uint64_t offset;
	char *buf;
	size_t len, cap, max;
	uint64_t written; /* bytes delivered so far (both modes) */
	/*
	 * Entity tag of the object read, for a later conditional put; filled
	 * by a backend that has it for free (s3), or when WANT_ETAG is set.
	 */
	bool want_etag;
	char etag[OBJSTORE_ETAG_MAX];
};

/* Where put takes the bytes: LEN bytes from BUF, or (BUF NULL) from FD at OFFSET. */
struct objstore_source {
	const void *buf;
	int fd;
	uint64_t offset;
	uint64_t len;
};

/* Detail of the calling thread's last failure (thread-local). */
struct objstore_error {
	int err;	   /* -errno returned */
	long http_status;  /* 0 when no HTTP answer */
	char code[64];	   /* server's error code, e.g. "NoSuchBucket", or curl's reason */
	char message[512]; /* server's message or a local description */
};

/*
 * The backend vtable. KEY arguments are full keys (prefix included) and
 * already validated. Every slot returns 0 or -errno (rule 3).
 */
struct objstore_ops {
	const char *name;

	/* Store SRC under KEY, replacing any object there (rule 2). */
	int (*put)(struct objstore *s, const char *key, const struct objstore_source *src);

	/*
	 * Read LEN bytes from OFF of KEY into SINK; LEN UINT64_MAX means to the
	 * end. A range running past the end yields the bytes that exist (none
	 * when OFF >= size). -ENOENT if KEY is absent. A transfer that
	 * broke off may resume where it stopped (the sink keeps its bytes)
	 * or start the sink over (objstore_sink_reset).
	 */
	int (*get)(struct objstore *s, const char *key, uint64_t off, uint64_t len,
		   struct objstore_sink *sink);

	/*
	 * Rule 6: store SRC under KEY only if KEY is absent (IF_MATCH NULL) or
	 * holds the object tagged IF_MATCH; -EEXIST otherwise. The new tag
	 * into ETAG (OBJSTORE_ETAG_MAX bytes). NULL slot: -ENOTSUP.
	 */
	int (*put_if)(struct objstore *s, const char *key, const struct objstore_source *src,
		      const char *if_match, char *etag);

	/* 1 if put_if holds its condition on this store, 0 if not, -errno if unknown yet. */
	int (*conditional)(struct objstore *s);

	/* Size, mtime and etag of KEY; -ENOENT if absent. */
	int (*head)(struct objstore *s, const char *key, struct objstore_info *info);

	/* Remove KEY. Removing an absent key succeeds. */
	int (*del)(struct objstore *s, const char *key);

	/*
	 * Remove N keys (any N; the backend batches). Absent keys count as
	 * removed. On failure some keys may be gone and others not.
	 */
	int (*delete_many)(struct objstore *s, const char *const *keys, size_t n);

	/*
	 * One page of at most MAX (1..1000) keys starting with PREFIX, in
	 * ascending order, after the position TOKEN from the previous page
	 * (NULL for the first page). Keys in PAGE are full keys.
	 */
	int (*list)(struct objstore *s, const char *prefix, const char *token, size_t max,
		    struct objstore_list *page);

	/* Release the backend's handle. */
	void (*free)(struct objstore *s);
};

/*
 * Open the store CFG describes (cfg->backend). ERR receives a one-line
 * reason on failure (missing keys, bad endpoint, B2 authorization refused).
 * Caller owns *OUT (objstore_free). Does not contact the server except for
 * the b2 bootstrap.
 */
int objstore_open_from_config(const struct config *cfg, struct objstore **out, char *err,
			      size_t errlen);
/* Drop one reference to S (NULL ok); the last one frees the handle. */
void objstore_free(struct objstore *s);
/*
 * One more reference to S, for a second owner (the fs and the lease share
 * the mount's store); each owner calls objstore_free once. Returns S.
 */
struct objstore *objstore_ref(struct objstore *s);

/* Name of the backend ("file", "s3"), and a human description of where it points. */
const char *objstore_backend_name(const struct objstore *s);
const char *objstore_describe(const struct objstore *s);

/* The calls below take keys relative to the configured prefix. */
int objstore_put(struct objstore *s, const char *key, const void *buf, size_t len);
int objstore_put_fd(struct objstore *s, const char *key, int fd, uint64_t off, uint64_t len);

/*
 * Rule 6. 0 and the new object's tag in ETAG (OBJSTORE_ETAG_MAX bytes, may
 * be NULL); -EEXIST when KEY is not absent (IF_MATCH NULL) or does not hold
 * the object tagged IF_MATCH; -ENOTSUP when the store has no conditional
 * writes. A retried request whose first attempt landed also answers -EEXIST:
 * read the key again to tell.
 */
int objstore_put_if(struct objstore *s, const char *key, const void *buf, size_t len,
		    const char *if_match, char *etag);
/*
 * Whether objstore_put_if holds its condition on S. The s3 backend asks the
 * server once (two conditional PUTs and a DELETE of a probe key under
 * OBJSTORE_PROBE_PREFIX); until the server answers, false.
 */
#define OBJSTORE_PROBE_PREFIX "zero/probe/"
bool objstore_conditional(struct objstore *s);

/* Whole object (or range) into a malloc'd buffer; caller frees *BUF. */
int objstore_get(struct objstore *s, const char *key, uint64_t off, uint64_t len, char **buf,
		 size_t *buflen);
/* As objstore_get of a whole object of at most MAX bytes, with its tag into ETAG. */
int objstore_get_tagged(struct objstore *s, const char *key, size_t max, char **buf,
			size_t *buflen, char *etag);
int objstore_get_sink(struct objstore *s, const char *key, uint64_t off, uint64_t len,
		      struct objstore_sink *sink);
int objstore_head(struct objstore *s, const char *key, struct objstore_info *info);
int objstore_delete(struct objstore *s, const char *key);
int objstore_delete_many(struct objstore *s, const char *const *keys, size_t n);

/* As the list slot, with keys relative to the prefix in PAGE. */
int objstore_list(struct objstore *s, const char *prefix, const char *token, size_t max,
		  struct objstore_list *page);
void objstore_list_release(struct objstore_list *page);

/* Call FN for every key under PREFIX, page after page; stops at FN's first non-zero. */
int objstore_list_all(struct objstore *s, const char *prefix,
		      int (*fn)(void *ctx, const struct objstore_entry *entry), void *ctx);

/* True when KEY satisfies rule 1. */
bool objstore_key_valid(const char *key);

/* The calling thread's last failure (never NULL; zeroed when none). */
const struct objstore_error *objstore_last_error(void);
/* What to print for failure ERR of the calling thread's last call: the store's message, else strerror. */
const char *objstore_reason(int err);

/* For backends and the transport: record the calling thread's last failure. */
void objstore_error_set(int err, long http_status, const char *code, const char *message);
void objstore_error_clear(void);

/* Sink helpers for backends. */
int objstore_sink_write(struct objstore_sink *sink, const void *data, size_t len);
void objstore_sink_reset(struct objstore_sink *sink);

#endif /* ZERO_OBJSTORE_H */
