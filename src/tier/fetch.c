/*
 * fetch.c - REMOTE -> CLEAN: fetch on access (tier_make_local, which runs
 * fetch_chunk for each REMOTE chunk a read or a partial write needs), the
 * waits for fetches under way, and read-ahead: a reader that continues
 * where it stopped queues the next chunks (tier_note_read, ra_enqueue) for
 * the read-ahead threads (readahead_main). tier_note_read also notes the
 * access times that evict.c writes.
 *
 * Rules (numbered as in tier_internal.h):
 *  4. One fetch per chunk at a time: later readers wait for it
 *     (struct fetch). A fetch holds its inode (nfetch), and truncation,
 *     hole punching and freeing wait until no fetch writes into the file;
 *     a write waits for the fetches of the chunks it writes, even where it
 *     needs none of their bytes (tier_wait_chunk_fetches). An entry of the
 *     read-ahead queue holds its inode (nfetch) too.
 *  6. Every object read is verified (envelope_open) before its bytes
 *     reach the cache file: a bad object is EIO, logged with its id.
 */
#include "tier/tier_internal.h"

#include "cache/cache.h"
#include "common/log.h"
#include "format/envelope.h"
#include "store/objstore.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

struct fetch *fetch_find(struct tier *t, uint64_t ino, uint64_t idx)
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
	ret = envelope_open(keys_object_key(&t->keys), key, obj, sink.len, NULL, 0, plain, len);
	if (ret != -ENOBUFS)
		return ret;
	pthread_mutex_lock(&fs->lock);
	*scratch = buf_get(fs, true); /* the second buffer of this fetch */
	pthread_mutex_unlock(&fs->lock);
	if (!*scratch)
		return -ENOMEM;
	return envelope_open(keys_object_key(&t->keys), key, obj, sink.len, *scratch, fs->chunk_size,
			     plain, len);
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

	/* (may wait for memory: the chunk row is read after) */
	obj = buf_get(fs, false);
	if (!obj) {
		ret = -ENOMEM;
		goto out_finish;
	}
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
	fd = cache_file_open(fs->cache, ip->ino, false);
	if (fd < 0) {
		ret = fd;
		goto out_finish;
	}
	envelope_object_key(ch.object, key, sizeof(key));
	envelope_id_hex(ch.object, hex);
	/*
	 * Never past the file's end (a chunk longer than its file there is an
	 * inconsistency fsck reports): truncation waits for this fetch, and a
	 * write that extends the file leaves zeros between.
	 */
	struct meta_inode in;
	uint64_t room = inode_load(fs, ip->ino, &in) == 0 ? chunk_len(fs, in.size, idx) : 0;
	pthread_mutex_unlock(&fs->lock);

	ret = fetch_object(fs, key, obj, &scratch, &plain, &len);
	if (ret == 0 && len != ch.length)
		ret = -EBADMSG;
	size_t wlen = len < room ? len : (size_t)room;
	if (ret == 0 && wlen && pwrite(fd, plain, wlen, (off_t)(idx * fs->chunk_size)) != (ssize_t)wlen)
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
				   ip->ino, idx, objstore_reason(ret));
		if (ret == -ENOSPC || ret == -EDQUOT)
			pthread_cond_broadcast(&t->work_cond); /* no room for it: evict */
		else
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
void ra_enqueue(struct fs *fs, struct fs_inode *ip, uint64_t idx)
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

void *readahead_main(void *arg)
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
