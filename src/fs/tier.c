/*
 * tier.c - the bucket side of the fs core: upload, eviction, fetch on
 * access, read-ahead, garbage collection, and the user.zero.* attributes.
 *
 * Chunk states and who moves them (see docs/design.md):
 *
 *	write (fs.c)        any -> DIRTY, version += 1 (REMOTE fetched first when partly written)
 *	upload_one()        DIRTY -> CLEAN, only if the version is unchanged since it began
 *	evict_until()       CLEAN -> REMOTE, least recently used first, punching the hole
 *	fetch_chunk()       REMOTE -> CLEAN, after the object is verified
 *
 * Rules:
 *  1. Nothing that waits on the network or copies a chunk runs under
 *     fs->lock; every decision is taken, and re-checked, under it.
 *  2. An upload begins by clearing the inode's in-memory DIRTY bit, so the
 *     next write commits a new DIRTY mark (and version) before its bytes
 *     change; the upload then lands only if the version did not move. No
 *     upload begins while a write to the inode is in flight (nwrite), whose
 *     mark predates the upload but whose bytes may land after its read.
 *     Dirty bits loaded from the table later (chunks_load) leave out the
 *     chunks being uploaded, for the same reason.
 *  3. DIRTY chunks are never evicted; nor are chunks of pinned files,
 *     chunks a read is in (between fs_read_prepare and fs_read_done) or
 *     chunks being fetched. A reader checks for REMOTE chunks and registers
 *     its read under one hold of the lock, so nothing is evicted between.
 *  4. One fetch per chunk at a time: later readers wait for it
 *     (struct fetch). A fetch holds its inode (nfetch), and truncation,
 *     hole punching and freeing wait until no fetch writes into the file;
 *     a write waits for the fetches of the chunks it writes, even where it
 *     needs none of their bytes (tier_wait_chunk_fetches).
 *  5. Objects are content-addressed and never overwritten. The garbage
 *     collector deletes objects nothing references; an id it is deleting is
 *     in `deleting`, and an upload of the same content waits for it to go.
 *  6. Every object read is verified (envelope_open) before its bytes
 *     reach the cache file: a bad object is EIO, logged with its id.
 */
#include "fs/fs_internal.h"

#include "cache/cache.h"
#include "common/log.h"
#include "format/envelope.h"
#include "store/objstore.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUPERBLOCK_KEY "zero/superblock"
#define FORMAT_VERSION 1
/* How far a sequential reader is read ahead: at most 64 MiB and a quarter of the target. */
#define READAHEAD_BYTES (64u << 20)
#define READAHEAD_TARGET_PART 4
#define READAHEAD_QUEUE 64
#define READAHEAD_THREADS 4
#define ATIME_BATCH 4096
#define GC_BATCH 256
#define DEFAULT_UPLOADERS 4
#define LOW_WATERMARK_PERCENT 90
#define ZSTD_LEVEL 1
/* Chunk buffers kept for the next fetch or upload: one per read-ahead thread and default uploader. */
#define BUF_POOL (READAHEAD_THREADS + DEFAULT_UPLOADERS)
#define BUF_IDLE_S 30

struct chunk_ref {
	uint64_t ino, idx;
};

/* A fetch in flight; readers of the same chunk wait for it (rule 4). */
struct fetch {
	uint64_t ino, idx;
	bool done;
	int err;
	int refs; /* the fetcher and each waiter */
	struct fetch *next;
};

/* An upload in flight: its chunk and, once read, the object id of its content. */
struct upload_ref {
	uint64_t ino, idx;
	bool has_id;
	uint8_t id[ENVELOPE_ID_LEN];
};

static int dirty_recount(struct fs *fs);

struct atime_note {
	uint64_t ino, idx;
	int64_t t;
};

struct tier {
	struct objstore *store; /* owned */
	uint8_t id_key[ENVELOPE_KEY_LEN];
	uint64_t target;      /* bytes; 0 = no eviction */
	uint64_t low;	      /* evict down to this */
	uint64_t dirty_limit; /* bytes of DIRTY chunks before writers wait; 0 = none */
	unsigned upload_delay_s;
	unsigned backpressure_timeout_s;
	unsigned nuploaders;
	unsigned ra_chunks; /* chunks read ahead of a sequential reader, 1 to READAHEAD_QUEUE / 2 */

	int64_t dirty_chunks;	       /* recounted every few seconds, adjusted in between */
	int64_t dirty_bytes;	       /* file bytes in them: what the dirty limit counts */
	bool pressure;		       /* writers are waiting for room */
	struct timespec last_progress; /* last upload that freed dirty room */
	pthread_cond_t upload_cond;    /* an upload ended */
	pthread_cond_t work_cond;      /* wake the uploaders and the tier thread */
	pthread_cond_t ra_cond;	       /* read-ahead queue not empty */

	struct upload_ref *uploading; /* uploads in flight */
	size_t nuploading, uploading_cap;
	uint8_t (*deleting)[ENVELOPE_ID_LEN]; /* objects the collector is deleting (rule 5) */
	size_t ndeleting;
	struct fetch *fetches;
	void *bufs[BUF_POOL]; /* idle object buffers, chunk size + largest header */
	size_t nbufs;
	time_t bufs_used; /* last buf_get; the pool is emptied after BUF_IDLE_S without one */
	struct chunk_ref raq[READAHEAD_QUEUE]; /* read-ahead ring; each entry holds nfetch */
	size_t ra_head, ra_count;
	struct atime_note *atimes; /* access times waiting to be written */
	size_t natimes;
	uint64_t cursor_ino, cursor_idx; /* where the uploaders' scan goes on */

	pthread_t *upload_threads;
	pthread_t tier_thread;
	pthread_t ra_threads[READAHEAD_THREADS];
	unsigned nthreads_started;
	bool started;

	/* statistics, for user.zero.status */
	uint64_t uploads, upload_bytes, upload_errors, dedup_hits;
	uint64_t fetches_done, fetch_bytes, fetch_errors;
	uint64_t reads_local, reads_fetched;
	uint64_t evictions, evicted_bytes, gc_deleted;
	double upload_rate; /* bytes per second, smoothed */
	struct timespec rate_at;
	uint64_t rate_bytes;
	uint64_t cache_used; /* last measured, plus what fetches and appends added since */
	char last_error[256];
};

static double ts_seconds(struct timespec t)
{
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void note_error(struct tier *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note_error(struct tier *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->last_error, sizeof(t->last_error), fmt, ap);
	va_end(ap);
	log_error("%s", t->last_error);
}

static const char *store_reason(int err)
{
	const struct objstore_error *e = objstore_last_error();

	return e->err && e->message[0] ? e->message : strerror(-err);
}

/* ---- superblock ---- */

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

	/* an empty bucket, or one that holds no Zero objects, only */
	ret = objstore_list(t->store, "zero/", NULL, 1, &page);
	if (ret == 0 && page.count > 0) {
		snprintf(err, errlen,
			 "%s holds Zero objects (%s) but no superblock: refusing to create a "
			 "filesystem over them",
			 objstore_describe(t->store), page.entries[0].key);
		objstore_list_release(&page);
		return -EEXIST;
	}
	objstore_list_release(&page);
	if (ret) {
		snprintf(err, errlen, "cannot list %s: %s", objstore_describe(t->store),
			 store_reason(ret));
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
			 objstore_describe(t->store), store_reason(ret));
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
static int sb_check(struct fs *fs, struct tier *t, char *err, size_t errlen)
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
			    objstore_describe(t->store), store_reason(ret));
			char key_hex[2 * ENVELOPE_KEY_LEN + 1];
			if (meta_setting_get(fs->meta, "id_key", key_hex, sizeof(key_hex)) == 0 &&
			    hex_decode(key_hex, t->id_key, ENVELOPE_KEY_LEN) == 0)
				return 0;
		}
		snprintf(err, errlen, "cannot reach the bucket %s: %s", objstore_describe(t->store),
			 store_reason(ret));
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

/* ---- life cycle ---- */

/*
 * Chunks to read ahead of a sequential reader: READAHEAD_BYTES, less with a
 * small TARGET (fetched chunks ahead of the reader count against it too).
 */
static unsigned readahead_chunks(uint64_t target, uint32_t chunk_size)
{
	uint64_t window = READAHEAD_BYTES;

	if (target && target / READAHEAD_TARGET_PART < window)
		window = target / READAHEAD_TARGET_PART;
	window /= chunk_size;
	if (window < 1)
		return 1;
	return window > READAHEAD_QUEUE / 2 ? READAHEAD_QUEUE / 2 : (unsigned)window;
}

int tier_init(struct fs *fs, const struct fs_options *opt, char *err, size_t errlen)
{
	struct tier *t = calloc(1, sizeof(*t));
	uint64_t count[3], bytes[3];
	int ret;

	if (!t) {
		objstore_free(opt->store);
		return -ENOMEM;
	}
	t->store = opt->store;
	fs->tier = t;
	pthread_cond_init(&t->upload_cond, NULL);
	pthread_cond_init(&t->work_cond, NULL);
	pthread_cond_init(&t->ra_cond, NULL);
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium cannot start");
		return -EIO;
	}
	t->target = opt->target_bytes;
	t->low = t->target / 100 * LOW_WATERMARK_PERCENT;
	t->dirty_limit = t->target;
	t->upload_delay_s = opt->upload_delay_s;
	t->backpressure_timeout_s = opt->backpressure_timeout_s ? opt->backpressure_timeout_s : 300;
	t->nuploaders = opt->uploaders ? opt->uploaders : DEFAULT_UPLOADERS;
	t->ra_chunks = readahead_chunks(t->target, fs->chunk_size);
	t->atimes = calloc(ATIME_BATCH, sizeof(*t->atimes));
	if (!t->atimes)
		return -ENOMEM;
	ret = sb_check(fs, t, err, errlen);
	if (ret)
		return ret;
	ret = meta_chunk_counts(fs->meta, count, bytes);
	if (ret) {
		snprintf(err, errlen, "cannot count chunks: %s", strerror(-ret));
		return ret;
	}
	t->dirty_chunks = (int64_t)count[CHUNK_DIRTY];
	ret = dirty_recount(fs);
	if (ret) {
		snprintf(err, errlen, "cannot count dirty bytes: %s", strerror(-ret));
		return ret;
	}
	return meta_sync(fs->meta);
}

/*
 * A buffer of chunk size + largest header for a fetch or an upload, lock held.
 * Reused ones are already faulted in: a fresh chunk-sized malloc costs a page
 * fault per page, more than the copy the bytes take into the cache file.
 */
static void *buf_get(struct fs *fs)
{
	struct tier *t = fs->tier;

	t->bufs_used = time(NULL);
	if (t->nbufs)
		return t->bufs[--t->nbufs];
	return malloc((size_t)fs->chunk_size + ENVELOPE_HEADER_MAX);
}

static void buf_put(struct tier *t, void *buf)
{
	if (buf && t->nbufs < BUF_POOL)
		t->bufs[t->nbufs++] = buf;
	else
		free(buf);
}

/* Free the idle buffers (lock held, or the tier is stopped). */
static void bufs_drop(struct tier *t)
{
	while (t->nbufs)
		free(t->bufs[--t->nbufs]);
}

void tier_free(struct fs *fs)
{
	struct tier *t = fs->tier;

	if (!t)
		return;
	objstore_free(t->store);
	pthread_cond_destroy(&t->upload_cond);
	pthread_cond_destroy(&t->work_cond);
	pthread_cond_destroy(&t->ra_cond);
	free(t->uploading);
	free(t->deleting);
	free(t->atimes);
	bufs_drop(t);
	free(t->upload_threads);
	free(t);
	fs->tier = NULL;
}

/* Bytes of chunk IDX of a file of SIZE bytes. */
static uint64_t chunk_len(struct fs *fs, uint64_t size, uint64_t idx)
{
	uint64_t start = idx * fs->chunk_size;

	if (start >= size)
		return 0;
	return size - start < fs->chunk_size ? size - start : fs->chunk_size;
}

/*
 * Count the bytes in DIRTY chunks afresh (lock held): by the sizes in the
 * inode rows, corrected for files whose size in memory is newer. (The
 * in-memory DIRTY bits cannot tell: an upload clears them when it starts.)
 */
static int dirty_recount(struct fs *fs)
{
	uint64_t bytes;
	int64_t fix = 0;
	int ret;

	ret = meta_chunk_dirty_bytes(fs->meta, fs->chunk_size, &bytes);
	for (size_t i = 0; ret == 0 && i < fs->table_size; i++)
		for (struct fs_inode *ip = fs->table[i]; ret == 0 && ip; ip = ip->hash_next) {
			struct meta_inode row;
			uint64_t now, then;

			if (!ip->attr_valid || !ip->attr_dirty ||
			    meta_inode_get(fs->meta, ip->ino, &row) != 0 ||
			    row.size == ip->attr.size)
				continue;
			ret = meta_chunk_dirty_bytes_ino(fs->meta, ip->ino, fs->chunk_size,
							 ip->attr.size, &now);
			if (ret == 0)
				ret = meta_chunk_dirty_bytes_ino(fs->meta, ip->ino, fs->chunk_size,
								 row.size, &then);
			if (ret == 0)
				fix += (int64_t)now - (int64_t)then;
		}
	if (ret == 0)
		fs->tier->dirty_bytes = (int64_t)bytes + fix;
	return ret;
}

/* ---- bookkeeping helpers (lock held) ---- */

static int uploading_add(struct tier *t, uint64_t ino, uint64_t idx)
{
	if (t->nuploading == t->uploading_cap) {
		size_t ncap = t->uploading_cap ? 2 * t->uploading_cap : 16;
		struct upload_ref *p = realloc(t->uploading, ncap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		t->uploading = p;
		t->uploading_cap = ncap;
	}
	t->uploading[t->nuploading++] = (struct upload_ref){.ino = ino, .idx = idx};
	return 0;
}

static struct upload_ref *uploading_find(struct tier *t, uint64_t ino, uint64_t idx)
{
	for (size_t i = 0; i < t->nuploading; i++)
		if (t->uploading[i].ino == ino && t->uploading[i].idx == idx)
			return &t->uploading[i];
	return NULL;
}

/* Is another upload putting the object ID up right now? */
bool tier_chunk_uploading(struct fs *fs, uint64_t ino, uint64_t idx)
{
	return fs->tier && uploading_find(fs->tier, ino, idx);
}

static bool uploading_id_elsewhere(struct tier *t, uint64_t ino, uint64_t idx,
				   const uint8_t id[ENVELOPE_ID_LEN])
{
	for (size_t i = 0; i < t->nuploading; i++) {
		struct upload_ref *u = &t->uploading[i];
		if (u->has_id && !(u->ino == ino && u->idx == idx) &&
		    memcmp(u->id, id, ENVELOPE_ID_LEN) == 0)
			return true;
	}
	return false;
}

static void uploading_remove(struct tier *t, uint64_t ino, uint64_t idx)
{
	for (size_t i = 0; i < t->nuploading; i++) {
		if (t->uploading[i].ino == ino && t->uploading[i].idx == idx) {
			t->uploading[i] = t->uploading[--t->nuploading];
			return;
		}
	}
}

static bool deleting_has(struct tier *t, const uint8_t id[ENVELOPE_ID_LEN])
{
	for (size_t i = 0; i < t->ndeleting; i++)
		if (memcmp(t->deleting[i], id, ENVELOPE_ID_LEN) == 0)
			return true;
	return false;
}

static struct fetch *fetch_find(struct tier *t, uint64_t ino, uint64_t idx)
{
	for (struct fetch *f = t->fetches; f; f = f->next)
		if (f->ino == ino && f->idx == idx)
			return f;
	return NULL;
}

static void fetch_unlink(struct tier *t, struct fetch *f)
{
	struct fetch **pp = &t->fetches;

	while (*pp && *pp != f)
		pp = &(*pp)->next;
	if (*pp)
		*pp = f->next;
}

void tier_note_dirty(struct fs *fs, int chunks, int64_t bytes)
{
	if (fs->tier) {
		fs->tier->dirty_chunks += chunks;
		fs->tier->dirty_bytes += bytes;
	}
}

/* The cache grew by about BYTES (lock held): let the evictor see it before its next walk. */
static void cache_grew(struct tier *t, uint64_t bytes)
{
	t->cache_used += bytes;
	if (t->target && t->cache_used > t->target)
		pthread_cond_broadcast(&t->work_cond);
}

void tier_note_append(struct fs *fs, uint64_t bytes)
{
	if (fs->tier)
		cache_grew(fs->tier, bytes);
}

/* ---- fetch on access ---- */

/*
 * GET object KEY into OBJ (sized by buf_get) and open it: verify, and
 * decrypt or decompress, into *PLAIN (*LEN bytes). Uncompressed objects
 * are opened in place; a compressed one takes a second buffer, *SCRATCH,
 * which the caller gives back. Lock not held.
 */
static int fetch_object(struct fs *fs, const char *key, void *obj, void **scratch,
			const void **plain, size_t *len)
{
	struct tier *t = fs->tier;
	size_t cap = (size_t)fs->chunk_size + ENVELOPE_HEADER_MAX;
	struct objstore_sink sink = {.fd = -1, .buf = obj, .cap = cap, .max = cap};
	int ret;

	ret = objstore_get_sink(t->store, key, 0, UINT64_MAX, &sink);
	if (ret)
		return ret;
	if (sink.buf != obj) /* cannot happen: the sink may not grow past MAX */
		return -EIO;
	ret = envelope_open(NULL, obj, sink.len, NULL, 0, plain, len);
	if (ret != -ENOBUFS)
		return ret;
	pthread_mutex_lock(&fs->lock);
	*scratch = buf_get(fs);
	pthread_mutex_unlock(&fs->lock);
	if (!*scratch)
		return -ENOMEM;
	return envelope_open(NULL, obj, sink.len, *scratch, fs->chunk_size, plain, len);
}

/*
 * Fetch chunk IDX of IP as the one fetcher (lock held on entry and exit,
 * dropped while the object travels and is verified and written).
 */
static int fetch_chunk(struct fs *fs, struct fs_inode *ip, uint64_t idx)
{
	struct tier *t = fs->tier;
	char key[ENVELOPE_OBJECT_KEY_SIZE], hex[2 * ENVELOPE_ID_LEN + 1];
	struct meta_chunk ch;
	struct fetch *f;
	void *obj = NULL, *scratch = NULL;
	const void *plain;
	size_t len = 0;
	int fd = -1, ret;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->ino = ip->ino;
	f->idx = idx;
	f->refs = 1;
	f->next = t->fetches;
	t->fetches = f;
	ip->nfetch++;

	ret = meta_chunk_get(fs->meta, ip->ino, idx, &ch);
	if (ret == -ENOENT || (ret == 0 && ch.state != CHUNK_REMOTE)) {
		chunk_bits_clear(&ip->remote, idx, idx); /* the bit was stale */
		ret = 0;
		goto out_finish;
	}
	if (ret)
		goto out_finish;
	if (!ch.has_object) {
		log_error("chunk %" PRIu64 "/%" PRIu64 " is REMOTE without an object", ip->ino,
			  idx);
		ret = -EIO;
		goto out_finish;
	}
	obj = buf_get(fs);
	if (!obj) {
		ret = -ENOMEM;
		goto out_finish;
	}
	fd = cache_file_open(fs->cache, ip->ino, false);
	if (fd < 0) {
		ret = fd;
		goto out_finish;
	}
	envelope_object_key(ch.object, key, sizeof(key));
	envelope_id_hex(ch.object, hex);
	pthread_mutex_unlock(&fs->lock);

	ret = fetch_object(fs, key, obj, &scratch, &plain, &len);
	if (ret == 0 && len != ch.length)
		ret = -EBADMSG;
	if (ret == 0 && pwrite(fd, plain, len, (off_t)(idx * fs->chunk_size)) != (ssize_t)len)
		ret = errno ? -errno : -EIO;

	pthread_mutex_lock(&fs->lock);
	if (ret == 0) {
		ret = meta_chunk_set_state(fs->meta, ip->ino, idx, CHUNK_REMOTE, CHUNK_CLEAN);
		if (ret >= 0) {
			meta_chunk_touch(fs->meta, ip->ino, idx, now_ts().tv_sec);
			chunk_bits_clear(&ip->remote, idx, idx);
			t->fetches_done++;
			t->fetch_bytes += len;
			cache_grew(t, len);
			ret = 0;
		}
	} else {
		t->fetch_errors++;
		if (ret == -EBADMSG)
			note_error(t,
				   "object %s (chunk %" PRIu64 "/%" PRIu64 ") is corrupt: "
				   "not using it",
				   hex, ip->ino, idx);
		else
			note_error(t, "fetching object %s (chunk %" PRIu64 "/%" PRIu64 "): %s", hex,
				   ip->ino, idx, store_reason(ret));
		ret = -EIO;
	}
out_finish:
	if (fd >= 0)
		close(fd);
	buf_put(t, obj);
	buf_put(t, scratch);
	f->done = true;
	f->err = ret;
	fetch_unlink(t, f);
	ip->nfetch--;
	pthread_cond_broadcast(&fs->fetch_cond);
	if (--f->refs == 0)
		free(f);
	return ret;
}

/* Wait for fetch F to end (lock held, dropped meanwhile); its result. */
static int fetch_wait(struct fs *fs, struct fetch *f)
{
	int ret;

	f->refs++;
	while (!f->done)
		pthread_cond_wait(&fs->fetch_cond, &fs->lock);
	ret = f->err;
	if (--f->refs == 0)
		free(f);
	return ret;
}

int tier_make_local(struct fs *fs, struct fs_inode *ip, uint64_t first, uint64_t last)
{
	struct tier *t = fs->tier;
	int ret;

	if (!t)
		return 0;
	ret = chunks_load(fs, ip);
	for (uint64_t idx = first; ret == 0 && idx <= last; idx++) {
		while (ret == 0 && chunk_bits_test(&ip->remote, idx)) {
			struct fetch *f = fetch_find(t, ip->ino, idx);
			ret = f ? fetch_wait(fs, f) : fetch_chunk(fs, ip, idx);
		}
	}
	return ret;
}

bool tier_wait_chunk_fetches(struct fs *fs, struct fs_inode *ip, uint64_t first, uint64_t last)
{
	for (struct fetch *f = fs->tier ? fs->tier->fetches : NULL; f; f = f->next)
		if (f->ino == ip->ino && f->idx >= first && f->idx <= last) {
			fetch_wait(fs, f);
			return true;
		}
	return false;
}

void tier_wait_fetches(struct fs *fs, struct fs_inode *ip)
{
	while (ip->nfetch > 0)
		pthread_cond_wait(&fs->fetch_cond, &fs->lock);
}

/* ---- reads: access times and read-ahead ---- */

/* Queue REMOTE chunk IDX of IP for the read-ahead threads, unless it is on its way. */
static void ra_enqueue(struct fs *fs, struct fs_inode *ip, uint64_t idx)
{
	struct tier *t = fs->tier;

	if (!chunk_bits_test(&ip->remote, idx) || fetch_find(t, ip->ino, idx) ||
	    t->ra_count == READAHEAD_QUEUE)
		return;
	for (size_t i = 0; i < t->ra_count; i++) {
		struct chunk_ref *r = &t->raq[(t->ra_head + i) % READAHEAD_QUEUE];
		if (r->ino == ip->ino && r->idx == idx)
			return;
	}
	t->raq[(t->ra_head + t->ra_count++) % READAHEAD_QUEUE] = (struct chunk_ref){ip->ino, idx};
	ip->nfetch++; /* the queue entry holds the inode */
	pthread_cond_signal(&t->ra_cond);
}

void tier_note_read(struct fs *fs, struct fs_file *fh, uint64_t off, uint64_t len, bool fetched)
{
	struct tier *t = fs->tier;
	struct fs_inode *ip = fh->ip;
	uint64_t cs = fs->chunk_size, first = off / cs, last = (off + len - 1) / cs;
	time_t now = time(NULL);
	bool sequential = off == fh->next_off;

	t->reads_local++;
	if (fetched)
		t->reads_fetched++;
	for (uint64_t idx = first; idx <= last; idx++) {
		if (idx == ip->last_touch_idx && now - ip->last_touch < 10)
			continue;
		ip->last_touch_idx = idx;
		ip->last_touch = now;
		if (t->natimes < ATIME_BATCH)
			t->atimes[t->natimes++] = (struct atime_note){ip->ino, idx, now};
	}
	fh->next_off = off + len;
	if (!sequential)
		return;
	for (uint64_t idx = last + 1; idx <= last + t->ra_chunks; idx++) {
		if (idx * cs >= ip->attr.size)
			break;
		ra_enqueue(fs, ip, idx);
	}
}

static void *readahead_main(void *arg)
{
	struct fs *fs = arg;
	struct tier *t = fs->tier;

	pthread_mutex_lock(&fs->lock);
	while (!fs->stopping) {
		if (t->ra_count == 0) {
			pthread_cond_wait(&t->ra_cond, &fs->lock);
			continue;
		}
		struct chunk_ref r = t->raq[t->ra_head];
		t->ra_head = (t->ra_head + 1) % READAHEAD_QUEUE;
		t->ra_count--;
		struct fs_inode *ip = itable_find(fs, r.ino);
		if (!ip)
			continue; /* cannot happen: the entry holds it */
		if (chunk_bits_test(&ip->remote, r.idx) && !fetch_find(t, r.ino, r.idx))
			fetch_chunk(fs, ip, r.idx);
		ip->nfetch--;
		pthread_cond_broadcast(&fs->fetch_cond);
		inode_maybe_free(fs, ip);
	}
	/* drop what is still queued */
	while (t->ra_count) {
		struct chunk_ref r = t->raq[t->ra_head];
		struct fs_inode *ip = itable_find(fs, r.ino);
		t->ra_head = (t->ra_head + 1) % READAHEAD_QUEUE;
		t->ra_count--;
		if (ip)
			ip->nfetch--;
	}
	pthread_cond_broadcast(&fs->fetch_cond);
	pthread_mutex_unlock(&fs->lock);
	return NULL;
}

/* ---- backpressure ---- */

int tier_reserve_dirty(struct fs *fs, uint64_t new_bytes)
{
	struct tier *t = fs->tier;
	bool waited = false;

	if (!t || !t->dirty_limit)
		return 0;
	while (t->dirty_bytes > 0 && (uint64_t)t->dirty_bytes + new_bytes > t->dirty_limit) {
		struct timespec now = now_ts(), until = now;
		if (!waited) {
			/* the clock of the timeout starts with the first writer that waits */
			if (!t->pressure)
				t->last_progress = now;
			t->pressure = true;
			pthread_cond_broadcast(&t->work_cond);
		}
		if (ts_seconds(now) - ts_seconds(t->last_progress) >=
		    (double)t->backpressure_timeout_s) {
			note_error(t,
				   "no space for new data: %" PRId64 " bytes not yet uploaded fill "
				   "the cache and nothing was uploaded for %u s",
				   t->dirty_bytes, t->backpressure_timeout_s);
			return -ENOSPC;
		}
		until.tv_sec += 1;
		pthread_cond_timedwait(&t->upload_cond, &fs->lock, &until);
		waited = true;
	}
	return waited ? 1 : 0;
}

/* ---- upload ---- */

struct pick {
	struct fs *fs;
	struct meta_chunk found;
	bool have;
	size_t seen;
	uint64_t last_ino, last_idx;
};

static int pick_cb(void *arg, const struct meta_chunk *ch)
{
	struct pick *p = arg;
	struct fs *fs = p->fs;
	struct tier *t = fs->tier;
	struct fs_inode *ip;

	p->seen++;
	p->last_ino = ch->ino;
	p->last_idx = ch->idx;
	if (p->have || uploading_find(t, ch->ino, ch->idx))
		return 0;
	ip = itable_find(fs, ch->ino);
	if (ip && ip->nwrite > 0)
		return 0; /* a write is between its DIRTY mark and its bytes (rule 2) */
	if (ip) {
		time_t idle = now_ts().tv_sec - ip->last_write.tv_sec;
		if (!t->pressure && idle < (time_t)t->upload_delay_s)
			return 0; /* still being written */
		if (ip->nopen > 0 && ch->idx == ip->last_write_idx && idle < 1)
			return 0; /* a writer may be in this very chunk: it would go up twice */
	}
	p->found = *ch;
	p->have = true;
	return 0;
}

/* Find a DIRTY chunk to upload; false when there is none right now. */
static bool pick_dirty(struct fs *fs, struct meta_chunk *out)
{
	struct tier *t = fs->tier;

	for (int pass = 0; pass < 2; pass++) {
		for (;;) {
			struct pick p = {.fs = fs};
			if (meta_chunk_dirty_list(fs->meta, t->cursor_ino, t->cursor_idx, 64,
						  pick_cb, &p) != 0)
				return false;
			if (p.have) {
				t->cursor_ino = p.found.ino;
				t->cursor_idx = p.found.idx;
				*out = p.found;
				return true;
			}
			if (p.seen < 64)
				break;
			t->cursor_ino = p.last_ino;
			t->cursor_idx = p.last_idx;
		}
		if (t->cursor_ino == 0 && t->cursor_idx == 0)
			break;
		t->cursor_ino = 0; /* from the start once more */
		t->cursor_idx = 0;
	}
	return false;
}

static void upload_rate_add(struct tier *t, uint64_t bytes)
{
	struct timespec now = now_ts();
	double dt;

	t->rate_bytes += bytes;
	if (t->rate_at.tv_sec == 0)
		t->rate_at = now;
	dt = ts_seconds(now) - ts_seconds(t->rate_at);
	if (dt >= 1.0) {
		double r = (double)t->rate_bytes / dt;
		t->upload_rate = t->upload_rate ? 0.7 * t->upload_rate + 0.3 * r : r;
		t->rate_bytes = 0;
		t->rate_at = now;
	}
}

/*
 * Upload chunk CH (lock held on entry and exit). Returns 0 when it is
 * done or no longer needed, -errno when the bucket failed.
 */
static int upload_one(struct fs *fs, const struct meta_chunk *ch)
{
	struct tier *t = fs->tier;
	uint8_t id[ENVELOPE_ID_LEN], *obj = NULL;
	char key[ENVELOPE_OBJECT_KEY_SIZE];
	struct meta_inode in;
	struct fs_inode *ip;
	char *buf = NULL;
	size_t objlen = 0;
	uint64_t len;
	int fd = -1, ret, landed = 0;

	ret = inode_load(fs, ch->ino, &in);
	if (ret == -ENOENT)
		return 0; /* deleted meanwhile */
	if (ret)
		return ret;
	len = chunk_len(fs, in.size, ch->idx);
	if (len == 0) {
		/* past the end (a crash between a truncate's steps): nothing to keep */
		meta_chunk_delete_range(fs->meta, ch->ino, ch->idx, ch->idx);
		return 0;
	}
	ret = uploading_add(t, ch->ino, ch->idx);
	if (ret)
		return ret;
	ip = itable_find(fs, ch->ino);
	if (ip)
		chunk_bits_clear(&ip->dirty, ch->idx, ch->idx); /* rule 2 */
	fd = cache_file_open(fs->cache, ch->ino, false);
	buf = buf_get(fs);
	pthread_mutex_unlock(&fs->lock);

	if (fd < 0)
		ret = fd;
	else if (!buf)
		ret = -ENOMEM;
	else if (pread(fd, buf, len, (off_t)(ch->idx * fs->chunk_size)) != (ssize_t)len)
		ret = -EIO;
	if (ret == 0)
		envelope_object_id(t->id_key, buf, len, id);

	pthread_mutex_lock(&fs->lock);
	if (ret)
		goto out;
	if (deleting_has(t, id)) {
		ret = -EAGAIN; /* the collector is deleting this content: try again later */
		goto out;
	}
	/*
	 * Identical content on its way up already: wait for it, then share it.
	 * The id is claimed only after the wait, so that waiters never wait
	 * for each other.
	 */
	while (uploading_id_elsewhere(t, ch->ino, ch->idx, id))
		pthread_cond_wait(&t->upload_cond, &fs->lock);
	struct upload_ref *me = uploading_find(t, ch->ino, ch->idx);
	memcpy(me->id, id, ENVELOPE_ID_LEN);
	me->has_id = true;
	ret = meta_object_exists(fs->meta, id);
	if (ret > 0) {
		/* stored already: reference it (rule 5 keeps it from going meanwhile) */
		ret = meta_chunk_set_clean(fs->meta, ch->ino, ch->idx, ch->version, id, len, 0);
		if (ret > 0)
			t->dedup_hits++;
		landed = ret > 0;
		ret = ret < 0 ? ret : 0;
		goto out;
	}
	if (ret < 0)
		goto out;
	pthread_mutex_unlock(&fs->lock);

	struct envelope_opts eo = {ENVELOPE_CODEC_ZSTD, ZSTD_LEVEL, NULL};
	ret = envelope_encode(&eo, buf, len, &obj, &objlen);
	if (ret == 0) {
		envelope_object_key(id, key, sizeof(key));
		ret = objstore_put(t->store, key, obj, objlen);
	}

	pthread_mutex_lock(&fs->lock);
	if (ret) {
		t->upload_errors++;
		note_error(t, "uploading chunk %" PRIu64 "/%" PRIu64 ": %s", ch->ino, ch->idx,
			   store_reason(ret));
		goto out;
	}
	t->uploads++;
	t->upload_bytes += objlen;
	upload_rate_add(t, objlen);
	ret = meta_chunk_set_clean(fs->meta, ch->ino, ch->idx, ch->version, id, len, objlen);
	landed = ret > 0;
	ret = ret < 0 ? ret : 0;
out:
	if (landed) {
		t->dirty_chunks--;
		t->dirty_bytes -= (int64_t)len;
		t->last_progress = now_ts();
	}
	uploading_remove(t, ch->ino, ch->idx);
	pthread_cond_broadcast(&t->upload_cond);
	if (fd >= 0)
		close(fd);
	buf_put(t, buf);
	free(obj);
	return ret;
}

static void *uploader_main(void *arg)
{
	struct fs *fs = arg;
	struct tier *t = fs->tier;
	unsigned backoff = 0;

	pthread_mutex_lock(&fs->lock);
	while (!fs->stopping) {
		struct meta_chunk ch;
		struct timespec until = now_ts();

		if (backoff == 0 && pick_dirty(fs, &ch)) {
			int ret = upload_one(fs, &ch);
			if (ret && ret != -EAGAIN)
				backoff = backoff ? backoff * 2 : 1;
			continue;
		}
		until.tv_sec += backoff ? (backoff > 30 ? 30 : backoff) : 1;
		pthread_cond_timedwait(&t->work_cond, &fs->lock, &until);
		if (backoff && now_ts().tv_sec >= until.tv_sec)
			backoff = backoff >= 30 ? 30 : backoff; /* retry after the wait */
		if (backoff)
			backoff = 0;
	}
	pthread_mutex_unlock(&fs->lock);
	return NULL;
}

/* ---- eviction, garbage collection, access times ---- */

static int flush_atimes(struct fs *fs)
{
	struct tier *t = fs->tier;
	int ret;

	if (t->natimes == 0)
		return 0;
	ret = meta_begin(fs->meta);
	for (size_t i = 0; ret == 0 && i < t->natimes; i++)
		ret =
		    meta_chunk_touch(fs->meta, t->atimes[i].ino, t->atimes[i].idx, t->atimes[i].t);
	if (ret == 0)
		ret = meta_commit(fs->meta);
	else
		meta_rollback(fs->meta);
	t->natimes = 0;
	return ret;
}

static bool inode_pinned(struct fs *fs, uint64_t ino)
{
	struct meta_inode in;

	return inode_load(fs, ino, &in) == 0 && (in.flags & META_INODE_PINNED);
}

/* Punch chunk CH out of the cache (lock held); bytes freed, or 0 when it must stay. */
static uint64_t evict_chunk(struct fs *fs, const struct meta_chunk *ch)
{
	struct tier *t = fs->tier;
	struct fs_inode *ip = itable_find(fs, ch->ino);
	struct stat before, after;
	int fd, ret;

	if (ip) {
		/* rule 3: not a chunk a read is in, nor one being fetched */
		for (const struct fs_read *r = ip->reads; r; r = r->next)
			if (ch->idx >= r->first && ch->idx <= r->last)
				return 0;
		if (fetch_find(t, ch->ino, ch->idx))
			return 0;
	}
	fd = cache_file_open(fs->cache, ch->ino, false);
	if (fd < 0)
		return 0;
	/*
	 * REMOTE is committed before the hole is punched: after a crash in
	 * between, the bytes are fetched again over themselves, whereas a
	 * CLEAN mark over a hole would read as zeros.
	 */
	ret = meta_chunk_set_state(fs->meta, ch->ino, ch->idx, CHUNK_CLEAN, CHUNK_REMOTE);
	if (ret <= 0) {
		close(fd);
		return 0;
	}
	if (ip && ip->chunks_known)
		chunk_bits_set(&ip->remote, ch->idx);
	if (fstat(fd, &before) < 0 ||
	    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(ch->idx * fs->chunk_size), (off_t)fs->chunk_size) < 0 ||
	    fstat(fd, &after) < 0) {
		log_error("evicting chunk %" PRIu64 "/%" PRIu64 ": %s", ch->ino, ch->idx,
			  strerror(errno));
		close(fd);
		return 1; /* REMOTE with its bytes still here: correct, only not smaller */
	}
	close(fd);
	t->evictions++;
	/* (a write or fetch into another chunk of the file may have added blocks meanwhile) */
	uint64_t freed = before.st_blocks > after.st_blocks
			     ? (uint64_t)(before.st_blocks - after.st_blocks) * 512
			     : 0;
	t->evicted_bytes += freed;
	return freed ? freed : 1;
}

struct lru_pick {
	struct meta_chunk ch[64];
	size_t n;
};

static int lru_cb(void *arg, const struct meta_chunk *ch)
{
	struct lru_pick *p = arg;

	if (p->n < 64)
		p->ch[p->n++] = *ch;
	return 0;
}

/* Evict least recently used CLEAN chunks until the cache uses at most LOW bytes. */
static void evict_until(struct fs *fs, uint64_t used, uint64_t low)
{
	struct lru_pick *p = malloc(sizeof(*p));
	size_t skip = 0;

	if (!p)
		return;
	pthread_mutex_lock(&fs->lock);
	while (used > low && !fs->stopping) {
		uint64_t before = used;
		p->n = 0;
		if (meta_chunk_lru_list(fs->meta, 64 + skip, lru_cb, p) != 0 || p->n == 0)
			break;
		for (size_t i = 0; i < p->n && used > low; i++) {
			if (inode_pinned(fs, p->ch[i].ino))
				continue;
			uint64_t freed = evict_chunk(fs, &p->ch[i]);
			used = freed > used ? 0 : used - freed;
		}
		if (used == before) {
			/* all of these must stay: look further down the list, within reason */
			if (p->n < 64 + skip || skip >= 4096)
				break;
			skip += 64;
		}
	}
	fs->tier->cache_used = used;
	pthread_mutex_unlock(&fs->lock);
	free(p);
}

struct gc_batch {
	uint8_t (*ids)[ENVELOPE_ID_LEN];
	size_t n;
};

static int gc_cb(void *arg, const uint8_t id[META_OBJECT_ID_LEN])
{
	struct gc_batch *b = arg;

	memcpy(b->ids[b->n++], id, ENVELOPE_ID_LEN);
	return 0;
}

/* Delete unreferenced objects from the bucket, then forget them (rule 5). */
static void gc_once(struct fs *fs)
{
	struct tier *t = fs->tier;
	struct gc_batch b = {calloc(GC_BATCH, ENVELOPE_ID_LEN), 0};
	char **keys = NULL;
	int ret;

	if (!b.ids)
		return;
	pthread_mutex_lock(&fs->lock);
	ret = meta_object_garbage(fs->meta, GC_BATCH, gc_cb, &b);
	if (ret || b.n == 0) {
		pthread_mutex_unlock(&fs->lock);
		free(b.ids);
		return;
	}
	t->deleting = b.ids;
	t->ndeleting = b.n;
	pthread_mutex_unlock(&fs->lock);

	keys = calloc(b.n, sizeof(*keys));
	for (size_t i = 0; keys && i < b.n; i++) {
		keys[i] = malloc(ENVELOPE_OBJECT_KEY_SIZE);
		if (keys[i])
			envelope_object_key(b.ids[i], keys[i], ENVELOPE_OBJECT_KEY_SIZE);
		else
			ret = -ENOMEM;
	}
	if (!keys)
		ret = -ENOMEM;
	if (ret == 0)
		ret = objstore_delete_many(t->store, (const char *const *)keys, b.n);

	pthread_mutex_lock(&fs->lock);
	if (ret == 0) {
		for (size_t i = 0; i < b.n; i++)
			if (meta_object_delete(fs->meta, b.ids[i]) > 0)
				t->gc_deleted++;
	} else {
		note_error(t, "deleting %zu unreferenced objects: %s", b.n, store_reason(ret));
	}
	t->deleting = NULL;
	t->ndeleting = 0;
	pthread_mutex_unlock(&fs->lock);
	for (size_t i = 0; keys && i < b.n; i++)
		free(keys[i]);
	free(keys);
	free(b.ids);
}

static void *tier_main(void *arg)
{
	struct fs *fs = arg;
	struct tier *t = fs->tier;
	unsigned round = 0;
	time_t next_measure = 0;

	pthread_mutex_lock(&fs->lock);
	while (!fs->stopping) {
		struct timespec until = now_ts();
		uint64_t count[3], bytes[3], used = 0;

		flush_atimes(fs);
		if (time(NULL) - t->bufs_used > BUF_IDLE_S)
			bufs_drop(t); /* idle: give the memory back */
		if (round++ % 5 == 0 && meta_chunk_counts(fs->meta, count, bytes) == 0 &&
		    dirty_recount(fs) == 0) {
			t->dirty_chunks = (int64_t)count[CHUNK_DIRTY];
			if (t->pressure && (uint64_t)t->dirty_bytes <= t->dirty_limit / 2)
				t->pressure = false;
		}
		pthread_mutex_unlock(&fs->lock);

		gc_once(fs);
		/*
		 * Measuring walks every cache file: with many files that costs,
		 * so the pause between walks grows with the time a walk takes.
		 */
		bool measured = false;
		if (now_ts().tv_sec >= next_measure) {
			struct timespec t0 = now_ts();

			measured = cache_usage(fs->cache, &used) == 0;
			next_measure =
			    now_ts().tv_sec + (time_t)((ts_seconds(now_ts()) - ts_seconds(t0)) * 20);
		}
		/* measured, or else grown by fetches and appends since the last walk */
		pthread_mutex_lock(&fs->lock);
		if (measured)
			t->cache_used = used;
		used = t->cache_used;
		pthread_mutex_unlock(&fs->lock);
		if (t->target && used > t->target)
			evict_until(fs, used, t->low);

		pthread_mutex_lock(&fs->lock);
		if (t->pressure && t->dirty_chunks == 0)
			t->pressure = false;
		until.tv_sec += 1;
		if (!fs->stopping)
			pthread_cond_timedwait(&t->work_cond, &fs->lock, &until);
	}
	flush_atimes(fs);
	pthread_mutex_unlock(&fs->lock);
	return NULL;
}

int tier_start(struct fs *fs)
{
	struct tier *t = fs->tier;
	int ret;

	t->last_progress = now_ts();
	t->upload_threads = calloc(t->nuploaders, sizeof(*t->upload_threads));
	if (!t->upload_threads)
		return -ENOMEM;
	for (unsigned i = 0; i < t->nuploaders; i++) {
		ret = pthread_create(&t->upload_threads[i], NULL, uploader_main, fs);
		if (ret)
			return -ret;
		t->nthreads_started++;
	}
	for (int i = 0; i < READAHEAD_THREADS; i++) {
		ret = pthread_create(&t->ra_threads[i], NULL, readahead_main, fs);
		if (ret)
			return -ret;
	}
	ret = pthread_create(&t->tier_thread, NULL, tier_main, fs);
	if (ret)
		return -ret;
	t->started = true;
	return 0;
}

void tier_stop(struct fs *fs)
{
	struct tier *t = fs->tier;

	pthread_mutex_lock(&fs->lock);
	fs->stopping = true;
	pthread_cond_broadcast(&t->work_cond);
	pthread_cond_broadcast(&t->ra_cond);
	pthread_cond_broadcast(&t->upload_cond);
	pthread_mutex_unlock(&fs->lock);
	for (unsigned i = 0; i < t->nthreads_started; i++)
		pthread_join(t->upload_threads[i], NULL);
	t->nthreads_started = 0;
	if (t->started) {
		for (int i = 0; i < READAHEAD_THREADS; i++)
			pthread_join(t->ra_threads[i], NULL);
		pthread_join(t->tier_thread, NULL);
		t->started = false;
	}
}

/* ---- SEEK_DATA / SEEK_HOLE ---- */

int tier_lseek(struct fs *fs, struct fs_inode *ip, off_t off, int whence, off_t *result)
{
	uint64_t cs = fs->chunk_size, size = ip->attr.size, pos;
	off_t r;

	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		r = lseek(ip->fd, off, whence);
		if (r < 0)
			return -errno;
		*result = r;
		return 0;
	}
	if (off < 0)
		return -ENXIO;
	if ((uint64_t)off >= size)
		return -ENXIO;
	pos = (uint64_t)off;
	if (whence == SEEK_DATA) {
		uint64_t next_remote = UINT64_MAX;
		for (uint64_t idx = pos / cs; idx * cs < size; idx++) {
			if (chunk_bits_test(&ip->remote, idx)) {
				next_remote = idx * cs > pos ? idx * cs : pos;
				break;
			}
		}
		r = lseek(ip->fd, (off_t)pos, SEEK_DATA);
		uint64_t data = r < 0 ? UINT64_MAX : (uint64_t)r;
		uint64_t res = data < next_remote ? data : next_remote;
		if (res >= size)
			return -ENXIO;
		*result = (off_t)res;
		return 0;
	}
	for (;;) {
		if (chunk_bits_test(&ip->remote, pos / cs)) {
			pos = (pos / cs + 1) * cs; /* a REMOTE chunk is data */
			if (pos >= size) {
				*result = (off_t)size;
				return 0;
			}
			continue;
		}
		r = lseek(ip->fd, (off_t)pos, SEEK_HOLE);
		if (r < 0)
			return -errno;
		if ((uint64_t)r >= size || !chunk_bits_test(&ip->remote, (uint64_t)r / cs)) {
			*result = r > (off_t)size ? (off_t)size : r;
			return 0;
		}
		pos = (uint64_t)r;
	}
}

/* ---- user.zero.* attributes ---- */

struct residency {
	struct fs *fs;
	uint64_t size;
	uint64_t local, remote, dirty;
};

static int residency_cb(void *arg, uint64_t idx, enum meta_chunk_state state)
{
	struct residency *r = arg;
	uint64_t n = chunk_len(r->fs, r->size, idx);

	if (state == CHUNK_REMOTE) {
		r->remote += n;
	} else {
		r->local += n;
		if (state == CHUNK_DIRTY)
			r->dirty += n;
	}
	return 0;
}

/* Copy TEXT into BUF (SIZE 0: length only). */
static int xattr_reply(const char *text, size_t n, void *buf, size_t size, size_t *len)
{
	*len = n;
	if (size == 0)
		return 0;
	if (n > size)
		return -ERANGE;
	memcpy(buf, text, n);
	return 0;
}

static int status_json(struct fs *fs, char *out, size_t size)
{
	struct tier *t = fs->tier;
	uint64_t count[3], bytes[3], objects = 0, stored = 0;
	uint64_t cs = fs->chunk_size;
	uint64_t dirty;
	double eta, hit;
	int ret;

	ret = meta_chunk_counts(fs->meta, count, bytes);
	if (ret == 0)
		ret = meta_object_stats(fs->meta, &objects, &stored);
	if (ret)
		return ret;
	dirty = t->dirty_bytes > 0 ? (uint64_t)t->dirty_bytes : 0;
	eta = t->upload_rate > 0 ? (double)dirty / t->upload_rate : -1;
	hit = t->reads_local ? 1.0 - (double)t->reads_fetched / (double)t->reads_local : 1.0;
	if (hit < 0)
		hit = 0;
	char err[sizeof(t->last_error) * 2];
	size_t o = 0;
	for (const char *p = t->last_error; *p && o + 2 < sizeof(err); p++) {
		if (*p == '"' || *p == '\\')
			err[o++] = '\\';
		err[o++] = (*p >= 0 && *p < 32) ? ' ' : *p;
	}
	err[o] = '\0';
	return snprintf(
	    out, size,
	    "{\"bucket\":\"%s\",\"chunk_size\":%" PRIu64 ",\"cache_used\":%" PRIu64
	    ",\"cache_target\":%" PRIu64 ",\"dirty_chunks\":%" PRIu64 ",\"dirty_bytes\":%" PRIu64
	    ",\"uploading\":%zu,\"upload_rate\":%.0f"
	    ",\"upload_eta_s\":%.0f,\"uploads\":%" PRIu64 ",\"uploaded_bytes\":%" PRIu64
	    ",\"dedup_hits\":%" PRIu64 ",\"clean_chunks\":%" PRIu64 ",\"remote_chunks\":%" PRIu64
	    ",\"bucket_objects\":%" PRIu64 ",\"bucket_bytes\":%" PRIu64 ",\"reads\":%" PRIu64
	    ",\"reads_fetched\":%" PRIu64 ",\"hit_ratio\":%.4f,\"fetches\":%" PRIu64
	    ",\"fetched_bytes\":%" PRIu64 ",\"fetch_errors\":%" PRIu64 ",\"upload_errors\":%" PRIu64
	    ",\"evictions\":%" PRIu64 ",\"evicted_bytes\":%" PRIu64 ",\"gc_deleted\":%" PRIu64
	    ",\"writers_waiting\":%s,\"last_error\":\"%s\"}\n",
	    objstore_describe(t->store), cs, t->cache_used, t->target, count[CHUNK_DIRTY], dirty,
	    t->nuploading, t->upload_rate, eta, t->uploads, t->upload_bytes, t->dedup_hits,
	    count[CHUNK_CLEAN], count[CHUNK_REMOTE], objects, stored, t->reads_local,
	    t->reads_fetched, hit, t->fetches_done, t->fetch_bytes, t->fetch_errors,
	    t->upload_errors, t->evictions, t->evicted_bytes, t->gc_deleted,
	    t->pressure ? "true" : "false", err);
}

int tier_getxattr(struct fs *fs, uint64_t ino, const char *name, void *buf, size_t size,
		  size_t *len)
{
	char text[4096];
	struct meta_inode in;
	int n, ret;

	ret = inode_load(fs, ino, &in);
	if (ret)
		return ret;
	if (strcmp(name, "user.zero.status") == 0) {
		n = status_json(fs, text, sizeof(text));
		if (n < 0)
			return n;
		return xattr_reply(text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1,
				   buf, size, len);
	}
	if (strcmp(name, "user.zero.residency") == 0 && S_ISREG(in.mode)) {
		struct residency r = {fs, in.size, 0, 0, 0};
		ret = meta_chunk_residency(fs->meta, ino, residency_cb, &r);
		if (ret)
			return ret;
		n = snprintf(text, sizeof(text),
			     "size=%" PRIu64 " local=%" PRIu64 " remote=%" PRIu64 " dirty=%" PRIu64
			     " pinned=%d\n",
			     in.size, r.local, r.remote, r.dirty, !!(in.flags & META_INODE_PINNED));
		return xattr_reply(text, (size_t)n, buf, size, len);
	}
	if (strcmp(name, "user.zero.pinned") == 0) {
		n = snprintf(text, sizeof(text), "%d", !!(in.flags & META_INODE_PINNED));
		return xattr_reply(text, (size_t)n, buf, size, len);
	}
	return -ENODATA;
}

/* Parse "FIRST-LAST" or "FIRST" chunk indices. */
static int parse_range(const char *v, size_t size, uint64_t *first, uint64_t *last)
{
	char tmp[64];
	char *end;

	if (size == 0 || size >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, v, size);
	tmp[size] = '\0';
	*first = strtoull(tmp, &end, 10);
	*last = *first;
	if (*end == '-')
		*last = strtoull(end + 1, &end, 10);
	return (*end == '\0' || *end == '\n') && *first <= *last ? 0 : -EINVAL;
}

static int evict_file(struct fs *fs, uint64_t ino)
{
	struct meta_chunk ch;
	struct meta_inode in;
	uint64_t cs = fs->chunk_size;
	int ret = inode_load(fs, ino, &in);

	for (uint64_t idx = 0; ret == 0 && idx * cs < in.size; idx++) {
		if (meta_chunk_get(fs->meta, ino, idx, &ch) == 0 && ch.state == CHUNK_CLEAN)
			evict_chunk(fs, &ch);
	}
	return ret;
}

int tier_setxattr(struct fs *fs, uint64_t ino, const char *name, const void *value, size_t size)
{
	struct meta_inode in;
	struct fs_inode *ip;
	uint64_t first, last;
	int ret = inode_load(fs, ino, &in);

	if (ret)
		return ret;
	if (strcmp(name, "user.zero.pin") == 0) {
		bool on = size == 1 && ((const char *)value)[0] == '1';
		if (!on && !(size == 1 && ((const char *)value)[0] == '0'))
			return -EINVAL;
		in.flags = on ? in.flags | META_INODE_PINNED : in.flags & ~META_INODE_PINNED;
		return inode_store(fs, &in);
	}
	if (!S_ISREG(in.mode))
		return -EINVAL;
	if (strcmp(name, "user.zero.evict") == 0)
		return evict_file(fs, ino);
	if (strcmp(name, "user.zero.fetch") == 0) {
		ret = parse_range(value, size, &first, &last);
		if (ret)
			return ret;
		ip = itable_get(fs, ino);
		if (!ip)
			return -ENOMEM;
		if (!ip->attr_valid) {
			ip->attr = in;
			ip->attr_valid = true;
		}
		if (last * fs->chunk_size >= in.size)
			last = in.size ? (in.size - 1) / fs->chunk_size : 0;
		ret = first * fs->chunk_size < in.size ? chunks_load(fs, ip) : 0;
		if (ret == 0 && first * fs->chunk_size < in.size) {
			/* the read-ahead threads fetch alongside this one */
			for (uint64_t idx = first + 1; idx <= last; idx++)
				ra_enqueue(fs, ip, idx);
			ret = tier_make_local(fs, ip, first, last);
		}
		inode_maybe_free(fs, ip);
		return ret;
	}
	return -ENOTSUP;
}
