/*
 * lease.h - one writer per filesystem: the lease object `zero/lease` in the
 * bucket, taken at mount, renewed, and the fencing that follows from it.
 *
 * A read-write mount holds the lease: the object names it (host, cache id,
 * pid, a random nonce of this mount) and says until when it holds it. Each
 * acquire raises the lease's generation by one; the generation is the
 * fencing token that metadata segments carry. A mount that finds another
 * nonce or a newer generation in the object is fenced: it must stop writing
 * to the bucket and turn read-only (lease_fenced, lease_on_fenced).
 *
 * The protocol needs no conditional writes (docs/design.md, Lease): read,
 * decide, put, wait a moment, read back; only a read-back that shows our
 * nonce means we hold it.
 *
 * All calls are thread-safe once lease_acquire has returned.
 */
#ifndef ZERO_LEASE_H
#define ZERO_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct objstore;
struct keyring;
struct lease;

/* Key of the lease object, relative to the store's prefix. */
#define LEASE_KEY "zero/lease"
/* leaseTimeout when the configuration does not set it (seconds) */
#define LEASE_DEFAULT_TTL_S 60
/* the bounds of leaseTimeout */
#define LEASE_MIN_TTL_S 2
#define LEASE_MAX_TTL_S 3600
/* the longest host name, cache id or nonce a lease object may carry */
#define LEASE_FIELD_MAX 128

/* What a lease object says (the parsed text). */
struct lease_record {
	char host[LEASE_FIELD_MAX];
	char cache_id[LEASE_FIELD_MAX];
	char nonce[LEASE_FIELD_MAX];   /* this mount's, random */
	char boot_id[LEASE_FIELD_MAX]; /* the holder's boot (tells a reboot from a live pid) */
	long pid;
	uint64_t generation;
	int64_t expires; /* unix seconds */
	int64_t taken;	 /* unix seconds: when this generation was acquired */
	bool released;	 /* the holder unmounted cleanly: free, generation kept */
};

/*
 * Parse the text of a lease object (LEN bytes, not NUL-terminated). 0, or
 * -EPROTO when it is not a lease (no "zero-lease" first line, a required
 * field missing or malformed). Unknown keys are ignored.
 */
int lease_record_parse(const char *text, size_t len, struct lease_record *out);
/* Write REC as lease text into BUF; the length, or -ENAMETOOLONG / -EINVAL (bad field). */
int lease_record_format(const struct lease_record *rec, char *buf, size_t size);

/*
 * Take the lease object LEASE_KEY on STORE. With the KEYS of an encrypted
 * filesystem (NULL or plain: not encrypted) the object is sealed, so the
 * bucket learns nothing of who mounts it where. The lease keeps a reference of
 * its own to STORE (objstore_ref), so the caller may hand its reference on.
 * Refuses (-EBUSY; ERR names the holder's host, pid, cache id and when its
 * lease expires) when a live lease of another mount exists; takes over an
 * expired one, or one of this cache's own daemon that is gone (same host
 * and cache id, pid dead or machine rebooted); FORCE takes a live one too.
 * When the bucket does not answer, returns 0 with the lease pending: the
 * renewal thread takes it once the bucket answers (or fences the mount if
 * another holds it then).
 * On success ERR holds a warning for the user when one is due (a live lease
 * was forced, an expired one taken over, the bucket did not answer), else "".
 * TTL_S: seconds a lease lasts without renewal (renewed every TTL_S / 3).
 * Caller owns *OUT (lease_release). No threads are started.
 */
int lease_acquire(struct objstore *store, const struct keyring *keys, const char *cache_id,
		  bool force, unsigned ttl_s, struct lease **out, char *err, size_t errlen);
/*
 * Start the renewal thread; call once, after the daemon forked (no thread
 * may exist before fork). Records the daemon's pid in the lease at once.
 */
int lease_start(struct lease *l);
/* The fencing token of the held lease: grows by one at every acquire; 0 while pending. */
uint64_t lease_generation(const struct lease *l);
/* A newer generation or another mount's nonce was seen in the bucket: stop writing. */
bool lease_fenced(const struct lease *l);
/*
 * Read the lease object now. 0: still ours, with at least a third of the
 * timeout left (so no one may take it without --force before we act);
 * -ESTALE: fenced (and lease_fenced is set from now on); -EAGAIN: not held
 * yet, or too close to expiring; another -errno: the bucket did not answer.
 * A caller about to delete objects acts only on 0.
 */
int lease_check(struct lease *l);
/* FN(ARG) is called once, from the thread that notices the fencing, without locks held. */
void lease_on_fenced(struct lease *l, void (*fn)(void *arg), void *arg);
/*
 * Stop the thread, give the lease back if it is still ours, drop the store
 * reference and free L (NULL ok). A lease never taken over (generation 1)
 * is deleted; a later one is kept, marked released, so that generations
 * only grow.
 */
void lease_release(struct lease *l);

/* For `zero status`: the state of this mount's lease. */
enum lease_state {
	LEASE_PENDING, /* the bucket has not answered yet */
	LEASE_HELD,
	LEASE_FENCED, /* another mount holds it: read-only */
};

struct lease_status {
	enum lease_state state;
	struct lease_record mine;   /* what we wrote (generation 0 while pending) */
	struct lease_record holder; /* when fenced: who holds it now */
	int64_t renewed;	    /* unix seconds of the last successful renewal, 0: none */
	int last_error;		    /* -errno of the last failed renewal, 0 when it succeeded */
	bool conditional;	    /* taken and renewed with conditional puts (lease.c rule 1) */
};

void lease_get_status(const struct lease *l, struct lease_status *out);
const char *lease_state_name(enum lease_state s);

#endif /* ZERO_LEASE_H */
