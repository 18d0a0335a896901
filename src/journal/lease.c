/*
 * lease.c - the lease object `zero/lease`: one read-write mount per
 * filesystem, and the fencing of a mount that lost it.
 *
 * The object is a few key=value lines (lease_record_format). A mount is
 * known by its nonce, random per mount: a copied cache has the same cache
 * id as its original, so the cache id alone cannot tell them apart.
 *
 * States and the function that moves between them:
 *
 *	lease_acquire --> HELD ----(renew / lease_check: another nonce or
 *	      |            ^        generation in the object)----> FENCED
 *	      | bucket     | try_take (renewal thread)                ^
 *	      v silent     |                                          |
 *	    PENDING -------+------(try_take: a live lease of another)--+
 *
 * FENCED is final. Rules:
 *  1. Where the store does conditional writes (objstore_conditional), a
 *     take is a compare-and-swap: read, decide, put our record only if the
 *     object is still what we read (If-Match its tag, or If-None-Match when
 *     there was none). Of two mounts racing, the store lets one put land.
 *     A renewal is one conditional put against the tag of our last put, so
 *     a takeover in between fails it and fences us at once.
 *     Elsewhere (s3rver, older S3 implementations) the protocol needs no
 *     conditional writes: read, decide, put our record, wait
 *     LEASE_SETTLE_MS, read back; we hold the lease only if the read-back
 *     shows our nonce and generation. Two mounts racing both read back the
 *     one that wrote last.
 *  2. Every acquire writes generation + 1; a renewal keeps the generation
 *     and moves the expiry to now + ttl. Generations only grow: a released
 *     lease keeps its generation in the object (only a lease never taken
 *     over, generation 1, is deleted at release).
 *  3. A renewal that cannot reach the bucket is retried and is not fencing;
 *     lease_check answers non-zero meanwhile, so nothing is deleted.
 *  4. No network I/O under l->lock. The renewal thread is the only writer
 *     of the object after lease_start; lease_check only reads.
 */
#include "journal/lease.h"

#include "common/log.h"
#include "crypt/keys.h"
#include "format/envelope.h"
#include "store/objstore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define LEASE_MAGIC "zero-lease\n"
#define LEASE_TEXT_MAX 2048
#define LEASE_SETTLE_MS 300	  /* between our put and the read-back (rule 1) */
#define LEASE_RETRY_MAX_S 5	  /* a failed renewal is retried at least this often */

struct lease {
	struct objstore *store; /* a reference of our own (objstore_ref) */
	bool sealed;		/* an encrypted fs: the object is sealed with seal_key */
	uint8_t seal_key[ENVELOPE_KEY_LEN];
	unsigned ttl_s;
	bool force;
	_Atomic int state;	     /* enum lease_state; read without the lock */
	_Atomic uint64_t generation; /* mine.generation once HELD, else 0 */
	bool cas; /* rule 1: the store does conditional puts; set by try_take under lock */

	pthread_mutex_t lock; /* protects everything below */
	struct lease_record mine;
	char tag[OBJSTORE_ETAG_MAX]; /* with CAS: the tag of our last put */
	struct lease_record holder;  /* who fenced us */
	int64_t renewed;
	int last_error;
	void (*fenced_fn)(void *arg);
	void *fenced_arg;
	bool fenced_called;
	bool stopping;
	pthread_cond_t stop_cond; /* CLOCK_MONOTONIC */
	pthread_t thread;
	bool thread_running;
};

/* ---- the text ---- */

static bool field_ok(const char *v)
{
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return strlen(v) < LEASE_FIELD_MAX;
}

int lease_record_format(const struct lease_record *rec, char *buf, size_t size)
{
	int n;

	if (!field_ok(rec->host) || !field_ok(rec->cache_id) || !field_ok(rec->nonce) ||
	    !field_ok(rec->boot_id) || !rec->nonce[0])
		return -EINVAL;
	n = snprintf(buf, size,
		     LEASE_MAGIC "host=%s\ncache_id=%s\npid=%ld\nnonce=%s\nboot_id=%s\n"
				 "generation=%" PRIu64 "\nexpires=%" PRId64 "\ntaken=%" PRId64
				 "\nstate=%s\n",
		     rec->host, rec->cache_id, rec->pid, rec->nonce, rec->boot_id, rec->generation,
		     rec->expires, rec->taken, rec->released ? "released" : "held");
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return n;
}

static bool parse_i64(const char *v, int64_t *out)
{
	char *end;
	long long x;

	if (!*v)
		return false;
	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || *end)
		return false;
	*out = x;
	return true;
}

int lease_record_parse(const char *text, size_t len, struct lease_record *out)
{
	const char *p = text, *end = text + len;
	bool have_gen = false, have_exp = false, have_state = false;
	int64_t v;

	memset(out, 0, sizeof(*out));
	if (len < strlen(LEASE_MAGIC) || memcmp(text, LEASE_MAGIC, strlen(LEASE_MAGIC)) != 0)
		return -EPROTO;
	p += strlen(LEASE_MAGIC);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eq;
		char key[32], val[LEASE_FIELD_MAX];
		size_t klen, vlen;

		if (!nl)
			nl = end;
		eq = memchr(p, '=', (size_t)(nl - p));
		if (!eq) {
			if (nl == p) { /* an empty line */
				p = nl + 1;
				continue;
			}
			return -EPROTO;
		}
		klen = (size_t)(eq - p);
		vlen = (size_t)(nl - eq - 1);
		if (klen == 0 || klen >= sizeof(key) || vlen >= sizeof(val))
			return -EPROTO;
		memcpy(key, p, klen);
		key[klen] = '\0';
		memcpy(val, eq + 1, vlen);
		val[vlen] = '\0';
		if (!field_ok(val))
			return -EPROTO;
		if (strcmp(key, "host") == 0) {
			snprintf(out->host, sizeof(out->host), "%s", val);
		} else if (strcmp(key, "cache_id") == 0) {
			snprintf(out->cache_id, sizeof(out->cache_id), "%s", val);
		} else if (strcmp(key, "nonce") == 0) {
			snprintf(out->nonce, sizeof(out->nonce), "%s", val);
		} else if (strcmp(key, "boot_id") == 0) {
			snprintf(out->boot_id, sizeof(out->boot_id), "%s", val);
		} else if (strcmp(key, "pid") == 0) {
			if (!parse_i64(val, &v) || v < 0)
				return -EPROTO;
			out->pid = (long)v;
		} else if (strcmp(key, "generation") == 0) {
			if (!parse_i64(val, &v) || v < 1)
				return -EPROTO;
			out->generation = (uint64_t)v;
			have_gen = true;
		} else if (strcmp(key, "expires") == 0) {
			if (!parse_i64(val, &out->expires))
				return -EPROTO;
			have_exp = true;
		} else if (strcmp(key, "taken") == 0) {
			if (!parse_i64(val, &out->taken))
				return -EPROTO;
		} else if (strcmp(key, "state") == 0) {
			if (strcmp(val, "released") == 0)
				out->released = true;
			else if (strcmp(val, "held") != 0)
				return -EPROTO;
			have_state = true;
		} /* unknown keys: a later version's; ignored */
		p = nl + 1;
	}
	if (!have_gen || !have_exp || !have_state || !out->nonce[0])
		return -EPROTO;
	return 0;
}

/* ---- the object ---- */

/*
 * Read the object into *REC; *EXISTS false when there is none. Its tag
 * into TAG (OBJSTORE_ETAG_MAX bytes; "" when there is none), also when it
 * is not a lease (-EPROTO). 0 or -errno.
 */
static int lease_read(struct lease *l, struct lease_record *rec, bool *exists, char *tag)
{
	char *text = NULL;
	size_t len = 0;
	int ret;

	*exists = false;
	ret = objstore_get_tagged(l->store, LEASE_KEY, LEASE_TEXT_MAX + ENVELOPE_HEADER_MAX, &text,
				  &len, tag);
	if (ret == -ENOENT)
		return 0;
	if (ret == -EFBIG)
		text = NULL, len = 0; /* too long for a lease: not one */
	else if (ret)
		return ret;
	if (l->sealed && text) {
		/* the plaintext is shorter than the object: opened where it lies */
		char plain[LEASE_TEXT_MAX + ENVELOPE_HEADER_MAX];
		size_t plen = 0;
		ret = envelope_decode(l->seal_key, LEASE_KEY, text, len, plain, sizeof(plain),
				      &plen);
		ret = ret ? -EPROTO : lease_record_parse(plain, plen, rec);
		explicit_bzero(plain, sizeof(plain));
	} else {
		ret = lease_record_parse(text, len, rec);
	}
	free(text);
	if (ret) {
		log_error("%s/%s is not a Zero lease", objstore_describe(l->store), LEASE_KEY);
		return ret;
	}
	*exists = true;
	return 0;
}

/*
 * Put REC. With CAS (rule 1) only over the object tagged IF_MATCH, or
 * where there is none (IF_MATCH ""), and the new tag into TAG; -EEXIST
 * when the object is not that. 0 or -errno.
 */
static int lease_write(struct lease *l, const struct lease_record *rec, const char *if_match,
		       char *tag)
{
	char text[LEASE_TEXT_MAX];
	int n = lease_record_format(rec, text, sizeof(text));
	struct envelope_opts o = {.codec = ENVELOPE_CODEC_NONE, .data_key = l->seal_key,
				  .name = LEASE_KEY};
	uint8_t *obj = (uint8_t *)text;
	size_t len = (size_t)n;
	int ret;

	if (n < 0)
		return n;
	if (l->sealed) {
		/* its fields say who mounts the filesystem where: nothing for the bucket to read */
		ret = envelope_encode(&o, text, (size_t)n, &obj, &len);
		if (ret)
			return ret;
	}
	if (!l->cas)
		ret = objstore_put(l->store, LEASE_KEY, obj, len);
	else
		ret = objstore_put_if(l->store, LEASE_KEY, obj, len,
				      if_match && *if_match ? if_match : NULL, tag);
	if (obj != (uint8_t *)text)
		free(obj);
	return ret;
}

static bool same_mount(const struct lease_record *a, const struct lease_record *b)
{
	return strcmp(a->nonce, b->nonce) == 0 && a->generation == b->generation;
}

/* PID runs on this machine (a zombie, killed and not yet reaped, does not). */
static bool pid_alive(long pid)
{
	char path[64], buf[512];
	const char *state;
	ssize_t n;
	int fd;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? false : kill((pid_t)pid, 0) == 0 || errno == EPERM;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	state = strrchr(buf, ')'); /* "PID (COMM) STATE ..." */
	return !(state && (state[2] == 'Z' || state[2] == 'X'));
}

/*
 * REC is held by a daemon of this machine that is gone: same host, and the
 * machine rebooted since or the pid is dead. Whatever its cache (this one
 * after a kill -9, or one whose disk was lost and that is being restored
 * into a new cache), nobody writes under that lease any more. (A copy of a
 * live cache is refused: its original's daemon is alive.) A holder on
 * another host is waited for until its lease expires.
 */
static bool holder_is_gone(const struct lease *l, const struct lease_record *rec)
{
	if (strcmp(rec->host, l->mine.host) != 0)
		return false;
	if (rec->boot_id[0] && l->mine.boot_id[0] && strcmp(rec->boot_id, l->mine.boot_id) != 0)
		return true;
	return rec->pid != (long)getpid() && !pid_alive(rec->pid);
}

static void format_when(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!localtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
		snprintf(buf, size, "%" PRId64, t);
}

/* "host H, pid P, cache C" */
static void describe_holder(const struct lease_record *r, char *buf, size_t size)
{
	snprintf(buf, size, "host %s, pid %ld, cache %s", r->host[0] ? r->host : "?", r->pid,
		 r->cache_id[0] ? r->cache_id : "?");
}

static void refusal(const struct lease *l, const struct lease_record *cur, const char *what,
		    char *err, size_t errlen)
{
	char who[3 * LEASE_FIELD_MAX + 64], when[64];
	int64_t left = cur->expires - (int64_t)time(NULL);

	describe_holder(cur, who, sizeof(who));
	format_when(cur->expires, when, sizeof(when));
	snprintf(err, errlen,
		 "%s: the filesystem in %s is mounted read-write by %s; its lease expires at %s "
		 "(in %" PRId64 " s); unmount it there, wait until the lease expires, or mount "
		 "with --force",
		 what, objstore_describe(l->store), who, when, left > 0 ? left : 0);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Rule 1: take the lease if it is free, expired, our own dead daemon's, or
 * (FORCE) anyone's. 0: held (l->mine is what we wrote); -EBUSY: another
 * holds it (*CUR says who, ERR why); else the bucket's -errno. WARN gets a
 * warning for the user when one is due.
 */
static int try_take(struct lease *l, struct lease_record *cur, char *err, size_t errlen,
		    char *warn, size_t warnlen)
{
	struct lease_record next, back;
	char tag[OBJSTORE_ETAG_MAX], newtag[OBJSTORE_ETAG_MAX] = "";
	bool exists;
	int64_t now = (int64_t)time(NULL);
	char who[3 * LEASE_FIELD_MAX + 64], when[64];
	int ret;

	if (!l->cas) { /* the store's answer was not known yet when we began */
		bool cas = objstore_conditional(l->store);

		pthread_mutex_lock(&l->lock);
		l->cas = cas; /* written by one thread at a time; read by others under the lock */
		pthread_mutex_unlock(&l->lock);
	}
	ret = lease_read(l, cur, &exists, tag);
	if (ret == -EPROTO && l->force) {
		exists = false; /* --force replaces what is not a lease */
	} else if (ret == -EPROTO) {
		snprintf(err, errlen,
			 "%s/%s is not a Zero lease%s: refusing to mount over it (mount with --force "
			 "to replace it)",
			 objstore_describe(l->store), LEASE_KEY,
			 l->sealed ? " this filesystem's key opens (another filesystem's, or damaged)"
				   : "");
		return ret;
	} else if (ret) {
		return ret;
	}
	pthread_mutex_lock(&l->lock);
	next = l->mine;
	pthread_mutex_unlock(&l->lock);
	next.generation = 1;
	if (exists && strcmp(cur->nonce, next.nonce) == 0 && !cur->released) {
		/* ours already (a read-back that failed before): keep its generation */
		next.generation = cur->generation;
	} else if (exists) {
		next.generation = cur->generation + 1;
		describe_holder(cur, who, sizeof(who));
		format_when(cur->expires, when, sizeof(when));
		if (cur->released) {
			/* free */
		} else if (cur->expires <= now) {
			snprintf(warn, warnlen, "took over the expired lease of %s (expired at %s)",
				 who, when);
		} else if (holder_is_gone(l, cur)) {
			snprintf(warn, warnlen,
				 "took over the lease of a daemon of this machine that is gone "
				 "(pid %ld, cache %s)",
				 cur->pid, cur->cache_id);
		} else if (l->force) {
			snprintf(warn, warnlen,
				 "--force: took the live lease of %s (valid until %s); that mount "
				 "turns read-only when it next renews",
				 who, when);
		} else {
			refusal(l, cur, "refused", err, errlen);
			return -EBUSY;
		}
	}
	next.taken = now;
	next.expires = now + l->ttl_s;
	next.released = false;
	ret = lease_write(l, &next, tag, newtag);
	if (ret && ret != -EEXIST)
		return ret;
	if (!l->cas)
		sleep_ms(LEASE_SETTLE_MS);
	if (ret == -EEXIST || !l->cas) {
		/*
		 * Without CAS: read back (rule 1). With it, the put was refused:
		 * another mount wrote since our read, unless it was our own put
		 * whose answer was lost and whose retry found it there.
		 */
		ret = lease_read(l, &back, &exists, newtag);
		if (ret == -EPROTO) {
			snprintf(err, errlen,
				 "lost the race for the lease in %s to a mount whose lease this one "
				 "cannot read (a new filesystem made at the same moment with another "
				 "key?)",
				 objstore_describe(l->store));
			return -EBUSY;
		}
		if (ret)
			return ret;
	} else {
		back = next;
		exists = true;
	}
	if (!exists || !same_mount(&back, &next) || back.released) {
		if (!exists)
			memset(cur, 0, sizeof(*cur));
		else
			*cur = back;
		refusal(l, cur, "lost the race for the lease", err, errlen);
		return -EBUSY;
	}
	pthread_mutex_lock(&l->lock);
	l->mine = next;
	snprintf(l->tag, sizeof(l->tag), "%s", newtag);
	l->renewed = now;
	l->last_error = 0;
	pthread_mutex_unlock(&l->lock);
	atomic_store(&l->generation, next.generation);
	atomic_store(&l->state, LEASE_HELD);
	return 0;
}

/* Another mount holds the lease (CUR): read-only from now on; FN called once. */
static void fence(struct lease *l, const struct lease_record *cur)
{
	void (*fn)(void *arg) = NULL;
	void *arg = NULL;
	char who[3 * LEASE_FIELD_MAX + 64];
	uint64_t gen;

	pthread_mutex_lock(&l->lock);
	if (atomic_load(&l->state) == LEASE_FENCED) {
		pthread_mutex_unlock(&l->lock);
		return;
	}
	l->holder = *cur;
	gen = l->mine.generation;
	atomic_store(&l->state, LEASE_FENCED);
	if (!l->fenced_called) {
		l->fenced_called = true;
		fn = l->fenced_fn;
		arg = l->fenced_arg;
	}
	pthread_mutex_unlock(&l->lock);
	describe_holder(cur, who, sizeof(who));
	log_error("lease: %s/%s now names %s (generation %" PRIu64 ", ours %" PRIu64
		  "): another mount took the filesystem; this one stops writing to the bucket "
		  "and is read-only (EROFS) from now on",
		  objstore_describe(l->store), LEASE_KEY, who, cur->generation, gen);
	if (fn)
		fn(arg);
}

static void note_result(struct lease *l, int ret, const char *what)
{
	int before;

	pthread_mutex_lock(&l->lock);
	before = l->last_error;
	l->last_error = ret;
	if (ret == 0)
		l->renewed = (int64_t)time(NULL);
	pthread_mutex_unlock(&l->lock);
	if (ret && !before)
		log_warn("lease: cannot %s the lease in %s: %s; retrying (the mount goes on "
			 "writing locally)",
			 what, objstore_describe(l->store), strerror(-ret));
	else if (!ret && before)
		log_info("lease: the bucket answers again; lease renewed");
}

/*
 * With CAS, a refused renewal (-EEXIST): the object is not our last put.
 * Ours still when the refused put was a retry of one that landed; then
 * its tag into l->tag. 0, -ESTALE when fenced, else the bucket's -errno.
 */
static int renew_refused(struct lease *l, const struct lease_record *next)
{
	struct lease_record cur;
	char tag[OBJSTORE_ETAG_MAX];
	bool exists;
	int ret = lease_read(l, &cur, &exists, tag);

	if (ret)
		return ret;
	if (exists && (!same_mount(&cur, next) || cur.released)) {
		fence(l, &cur);
		return -ESTALE;
	}
	if (!exists)
		return -EAGAIN; /* vanished: written again on the next round */
	pthread_mutex_lock(&l->lock);
	l->mine = cur;
	snprintf(l->tag, sizeof(l->tag), "%s", tag);
	pthread_mutex_unlock(&l->lock);
	return 0;
}

/*
 * One renewal of a held lease (rule 2). With CAS (rule 1) one conditional
 * put; without, a read that checks we still hold it, then the put.
 * 0, -ESTALE when fenced, else the bucket's -errno.
 */
static int renew(struct lease *l)
{
	struct lease_record cur, next;
	char tag[OBJSTORE_ETAG_MAX], newtag[OBJSTORE_ETAG_MAX] = "";
	bool exists = true;
	int ret;

	pthread_mutex_lock(&l->lock);
	next = l->mine;
	snprintf(tag, sizeof(tag), "%s", l->tag);
	pthread_mutex_unlock(&l->lock);
	if (!l->cas) {
		ret = lease_read(l, &cur, &exists, tag);
		if (ret) {
			note_result(l, ret, "read");
			return ret;
		}
		if (exists && (!same_mount(&cur, &next) || cur.released)) {
			fence(l, &cur);
			return -ESTALE;
		}
	}
	if (!exists) {
		log_warn("lease: %s/%s has vanished; writing it again", objstore_describe(l->store),
			 LEASE_KEY);
		tag[0] = '\0';
	}
	next.pid = (long)getpid();
	next.expires = (int64_t)time(NULL) + l->ttl_s;
	ret = lease_write(l, &next, tag, newtag);
	if (ret == -EEXIST) {
		ret = renew_refused(l, &next);
		if (ret == -ESTALE)
			return ret;
		if (ret == -EAGAIN) {
			log_warn("lease: %s/%s has vanished; writing it again",
				 objstore_describe(l->store), LEASE_KEY);
			pthread_mutex_lock(&l->lock);
			l->tag[0] = '\0';
			pthread_mutex_unlock(&l->lock);
		}
	} else if (ret == 0) {
		pthread_mutex_lock(&l->lock);
		l->mine = next;
		snprintf(l->tag, sizeof(l->tag), "%s", newtag);
		pthread_mutex_unlock(&l->lock);
	}
	note_result(l, ret, "renew");
	return ret;
}

/* ---- the calls ---- */

static void read_boot_id(char *buf, size_t size)
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

int lease_acquire(struct objstore *store, const struct keyring *keys, const char *cache_id,
		  bool force, unsigned ttl_s, struct lease **out, char *err, size_t errlen)
{
	struct lease_record cur;
	unsigned char raw[16];
	pthread_condattr_t ca;
	struct lease *l;
	int ret;

	if (errlen)
		err[0] = '\0';
	if (ttl_s < LEASE_MIN_TTL_S || ttl_s > LEASE_MAX_TTL_S || !field_ok(cache_id))
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		free(l);
		return -EIO;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(l->mine.nonce + 2 * i, 3, "%02x", raw[i]);
	if (gethostname(l->mine.host, sizeof(l->mine.host) - 1) < 0 || !field_ok(l->mine.host))
		snprintf(l->mine.host, sizeof(l->mine.host), "unknown");
	snprintf(l->mine.cache_id, sizeof(l->mine.cache_id), "%s", cache_id);
	read_boot_id(l->mine.boot_id, sizeof(l->mine.boot_id));
	l->mine.pid = (long)getpid();
	l->store = objstore_ref(store);
	if (keys_object_key(keys)) {
		l->sealed = true;
		memcpy(l->seal_key, keys_object_key(keys), sizeof(l->seal_key));
	}
	l->ttl_s = ttl_s;
	l->force = force;
	atomic_init(&l->state, LEASE_PENDING);
	atomic_init(&l->generation, 0);
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->stop_cond, &ca);
	pthread_condattr_destroy(&ca);

	ret = try_take(l, &cur, err, errlen, err, errlen);
	if (ret == -EBUSY || ret == -EPROTO)
		goto out_free;
	if (ret) {
		/* the bucket does not answer: mount on the cache, take the lease later */
		snprintf(err, errlen,
			 "cannot take the lease in %s (%s); writing locally until the bucket "
			 "answers, then taking it (or turning read-only if another mount has it)",
			 objstore_describe(store), strerror(-ret));
		log_warn("lease: %s", err);
		pthread_mutex_lock(&l->lock);
		l->last_error = ret;
		pthread_mutex_unlock(&l->lock);
	} else {
		log_info("lease: holding %s/%s, generation %" PRIu64 ", renewed every %u s (%s)",
			 objstore_describe(store), LEASE_KEY, l->mine.generation,
			 ttl_s / 3 ? ttl_s / 3 : 1,
			 l->cas ? "conditional writes" : "read-back, no conditional writes");
		if (err[0])
			log_warn("lease: %s", err);
	}
	*out = l;
	return 0;

out_free:
	objstore_free(l->store);
	pthread_cond_destroy(&l->stop_cond);
	pthread_mutex_destroy(&l->lock);
	free(l);
	return ret;
}

static void *renewer_main(void *arg)
{
	struct lease *l = arg;

	pthread_mutex_lock(&l->lock);
	while (!l->stopping) {
		unsigned wait = l->ttl_s / 3 ? l->ttl_s / 3 : 1;
		struct timespec until;
		int state = atomic_load(&l->state);

		if ((l->last_error || state == LEASE_PENDING) && wait > LEASE_RETRY_MAX_S)
			wait = LEASE_RETRY_MAX_S;
		if (state == LEASE_FENCED)
			wait = 3600; /* nothing left to do but wait for the unmount */
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += wait;
		while (!l->stopping &&
		       pthread_cond_timedwait(&l->stop_cond, &l->lock, &until) != ETIMEDOUT)
			;
		if (l->stopping)
			break;
		pthread_mutex_unlock(&l->lock);
		if (state == LEASE_HELD) {
			renew(l);
		} else if (state == LEASE_PENDING) {
			struct lease_record cur;
			char err[1024] = "", warn[512] = "";
			int ret = try_take(l, &cur, err, sizeof(err), warn, sizeof(warn));

			if (ret == -EBUSY || ret == -EPROTO) {
				log_error("lease: %s", err);
				fence(l, &cur);
			} else if (ret == 0) {
				log_info("lease: the bucket answers; holding %s, generation %" PRIu64,
					 LEASE_KEY, lease_generation(l));
				if (warn[0])
					log_warn("lease: %s", warn);
			} else {
				note_result(l, ret, "take");
			}
		}
		pthread_mutex_lock(&l->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

int lease_start(struct lease *l)
{
	int ret;

	pthread_mutex_lock(&l->lock);
	l->mine.pid = (long)getpid(); /* the daemon's, after the fork */
	pthread_mutex_unlock(&l->lock);
	if (atomic_load(&l->state) == LEASE_HELD)
		renew(l);
	ret = pthread_create(&l->thread, NULL, renewer_main, l);
	if (ret)
		return -ret;
	l->thread_running = true;
	return 0;
}

uint64_t lease_generation(const struct lease *l)
{
	return atomic_load(&((struct lease *)l)->generation);
}

bool lease_fenced(const struct lease *l)
{
	return atomic_load(&((struct lease *)l)->state) == LEASE_FENCED;
}

int lease_check(struct lease *l)
{
	struct lease_record cur, mine;
	char tag[OBJSTORE_ETAG_MAX];
	bool exists;
	int ret;

	switch (atomic_load(&l->state)) {
	case LEASE_FENCED:
		return -ESTALE;
	case LEASE_PENDING:
		return -EAGAIN;
	default:
		break;
	}
	ret = lease_read(l, &cur, &exists, tag);
	if (ret)
		return ret;
	if (!exists)
		return -EAGAIN; /* vanished: the renewal writes it again */
	pthread_mutex_lock(&l->lock);
	mine = l->mine;
	pthread_mutex_unlock(&l->lock);
	if (!same_mount(&cur, &mine) || cur.released) {
		fence(l, &cur);
		return -ESTALE;
	}
	if (cur.expires - (int64_t)time(NULL) < (int64_t)(l->ttl_s / 3))
		return -EAGAIN;
	return 0;
}

void lease_on_fenced(struct lease *l, void (*fn)(void *arg), void *arg)
{
	bool now = false;

	pthread_mutex_lock(&l->lock);
	l->fenced_fn = fn;
	l->fenced_arg = arg;
	if (atomic_load(&l->state) == LEASE_FENCED && !l->fenced_called) {
		l->fenced_called = true;
		now = true;
	}
	pthread_mutex_unlock(&l->lock);
	if (now && fn)
		fn(arg);
}

void lease_release(struct lease *l)
{
	struct lease_record cur, mine;
	char tag[OBJSTORE_ETAG_MAX], newtag[OBJSTORE_ETAG_MAX];
	bool exists;
	int ret;

	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->stopping = true;
	pthread_cond_broadcast(&l->stop_cond);
	pthread_mutex_unlock(&l->lock);
	if (l->thread_running)
		pthread_join(l->thread, NULL);
	mine = l->mine;
	if (atomic_load(&l->state) == LEASE_HELD) {
		ret = lease_read(l, &cur, &exists, tag);
		if (ret == 0 && exists && same_mount(&cur, &mine) && !cur.released) {
			if (mine.generation == 1) {
				ret = objstore_delete(l->store, LEASE_KEY);
			} else {
				mine.released = true;
				mine.expires = (int64_t)time(NULL);
				ret = lease_write(l, &mine, tag, newtag);
			}
		} else if (ret == 0 && exists) {
			log_warn("lease: %s/%s names another mount at unmount; left as it is",
				 objstore_describe(l->store), LEASE_KEY);
		}
		if (ret)
			log_warn("lease: cannot give the lease back (%s); it expires by itself",
				 strerror(-ret));
		else
			log_info("lease: given back (generation %" PRIu64 ")", mine.generation);
	}
	objstore_free(l->store);
	pthread_cond_destroy(&l->stop_cond);
	pthread_mutex_destroy(&l->lock);
	explicit_bzero(l->seal_key, sizeof(l->seal_key));
	free(l);
}

void lease_get_status(const struct lease *l, struct lease_status *out)
{
	struct lease *ml = (struct lease *)l; /* the lock is not part of the value */

	pthread_mutex_lock(&ml->lock);
	out->state = atomic_load(&ml->state);
	out->mine = ml->mine;
	out->holder = ml->holder;
	out->renewed = ml->renewed;
	out->last_error = ml->last_error;
	out->conditional = ml->cas;
	pthread_mutex_unlock(&ml->lock);
	if (out->state != LEASE_HELD && out->state != LEASE_FENCED)
		out->mine.generation = 0;
}

const char *lease_state_name(enum lease_state s)
{
	switch (s) {
	case LEASE_HELD:
		return "held";
	case LEASE_FENCED:
		return "fenced";
	default:
		return "pending";
	}
}
