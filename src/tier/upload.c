/*
 * upload.c - DIRTY -> CLEAN: the uploader threads (uploader_main) pick a
 * DIRTY chunk (pick_dirty), put its object in the bucket unless identical
 * content is there already, and mark it CLEAN (upload_one). Also the count
 * of dirty data and the backpressure on writers that it drives
 * (tier_reserve_dirty).
 *
 * Rules (numbered as in tier_internal.h):
 *  2. An upload begins by clearing the inode's in-memory DIRTY bit, so the
 *     next write commits a new DIRTY mark (and version) before its bytes
 *     change; the upload then lands only if the version did not move. No
 *     upload begins while a write to the inode is in flight (nwrite), whose
 *     mark predates the upload but whose bytes may land after its read.
 *     Dirty bits loaded from the table later (chunks_load) leave out the
 *     chunks being uploaded, for the same reason.
 *  5. (collect.c) An upload whose content the collector is deleting does not
 *     reference it: it tries again later. Identical content on its way up
 *     is waited for, then shared.
 */
#include "tier/tier_internal.h"

#include "cache/cache.h"
#include "format/envelope.h"
#include "store/objstore.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ZSTD_LEVEL 1
/* a chunk written less than this ago by a file still open may be written again at once */
#define WRITER_IDLE_MS 1000

/*
 * Count the bytes in DIRTY chunks afresh (lock held): by the sizes in the
 * inode rows, corrected for files whose size in memory is newer. (The
 * in-memory DIRTY bits cannot tell: an upload clears them when it starts.)
 */
int dirty_recount(struct fs *fs)
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

bool tier_chunk_uploading(struct fs *fs, uint64_t ino, uint64_t idx)
{
	return fs->tier && uploading_find(fs->tier, ino, idx);
}

bool tier_write_is_recent(struct fs *fs, const struct fs_inode *ip)
{
	if (!fs->tier || ip->last_write.tv_sec == 0)
		return false;
	return now_ts().tv_sec - ip->last_write.tv_sec < (time_t)fs->tier->upload_delay_s;
}

/* Is another upload putting the object ID up right now? */
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

void tier_note_dirty(struct fs *fs, int chunks, int64_t bytes)
{
	if (fs->tier) {
		fs->tier->dirty_chunks += chunks;
		fs->tier->dirty_bytes += bytes;
	}
}

/* ---- backpressure ---- */

int tier_reserve_dirty(struct fs *fs, uint64_t new_bytes)
{
	struct tier *t = fs->tier;
	bool waited = false, recounted = false;

	if (!t || !t->dirty_limit)
		return 0;
	/* room is the dirty limit, and free space on the cache's disk (diskspace.c) */
	while (t->dirty_bytes > 0 && ((uint64_t)t->dirty_bytes + new_bytes > t->dirty_limit ||
				      disk_space_low(fs, new_bytes))) {
		struct timespec now = now_ts(), until = now;
		/*
		 * The count is exact after a recount; in between, unlinks and
		 * truncations of dirty chunks have not given their bytes back:
		 * recount before waiting for room that may be free.
		 */
		if (!recounted) {
			recounted = true;
			if (dirty_recount(fs) == 0)
				continue;
		}
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
				   "the cache (or its disk) and nothing was uploaded for %u s",
				   t->dirty_bytes, t->backpressure_timeout_s);
			return -ENOSPC;
		}
		until.tv_sec += 1;
		pthread_cond_timedwait(&t->upload_cond, &fs->lock, &until);
		waited = true;
	}
	return waited ? 1 : 0;
}

bool tier_room_short(struct fs *fs, uint64_t bytes)
{
	struct tier *t = fs->tier;

	if (!t || !t->dirty_limit)
		return false;
	return t->pressure || (uint64_t)t->dirty_bytes + bytes > t->dirty_limit ||
	       disk_space_short(fs, bytes);
}

uint64_t tier_dirty_limit(struct fs *fs)
{
	return fs->tier ? fs->tier->dirty_limit : 0;
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
	if (ip && ip->nsync == 0 && time(NULL) >= t->sync_until) {
		/* (an fsync waiting for the bucket, syncUpload, or `zero sync` want them now) */
		struct timespec now = now_ts();
		time_t idle = now.tv_sec - ip->last_write.tv_sec;
		int64_t idle_ms = idle * 1000 + (now.tv_nsec - ip->last_write.tv_nsec) / 1000000;
		if (!t->pressure && idle < (time_t)t->upload_delay_s)
			return 0; /* still being written */
		if (ip->nopen > 0 && idle_ms < WRITER_IDLE_MS) {
			if (ch->idx == ip->last_write_idx)
				return 0; /* a writer may be in this very chunk: it would go up twice */
			/*
			 * The kernel writes its cache back in pieces, many at once and
			 * out of order: a chunk before the last one written may still
			 * lack some. Under pressure it goes anyway (at worst twice).
			 */
			if (ip->last_write_back && !t->pressure)
				return 0;
		}
	}
	p->found = *ch;
	p->have = true;
	return 0;
}

/*
 * Find a DIRTY chunk to upload; false when there is none right now, and
 * always once the mount lost its lease (it writes nothing more to the bucket).
 */
static bool pick_dirty(struct fs *fs, struct meta_chunk *out)
{
	struct tier *t = fs->tier;

	if (fs_readonly(fs))
		return false;
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
	bool encoding = false;

	/* memory first (it may wait): what follows is decided after */
	buf = buf_get(fs, false);
	if (!buf)
		return -ENOMEM;
	ret = inode_load(fs, ch->ino, &in);
	if (ret == -ENOENT)
		ret = 0; /* deleted meanwhile */
	if (ret)
		goto out_buf;
	len = chunk_len(fs, in.size, ch->idx);
	if (len == 0) {
		/*
		 * Past the end (a crash between a truncate's steps, a write that
		 * failed after its mark): nothing to keep. If the row cannot go
		 * (a full disk), the error makes the uploader wait before it
		 * picks the chunk again.
		 */
		ret = meta_chunk_delete_range(fs->meta, ch->ino, ch->idx, ch->idx);
		goto out_buf;
	}
	ret = uploading_add(t, ch->ino, ch->idx);
	if (ret)
		goto out_buf;
	ip = itable_find(fs, ch->ino);
	if (ip)
		chunk_bits_clear(&ip->dirty, ch->idx, ch->idx); /* rule 2 */
	fd = cache_file_open(fs->cache, ch->ino, false);
	pthread_mutex_unlock(&fs->lock);

	if (fd < 0)
		ret = fd;
	else if (pread(fd, buf, len, (off_t)(ch->idx * fs->chunk_size)) != (ssize_t)len)
		ret = -EIO;
	if (ret == 0)
		envelope_object_id(t->keys.id_key, buf, len, id);

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
	mem_take(fs, true); /* the encoded object is this upload's second buffer */
	encoding = true;
	pthread_mutex_unlock(&fs->lock);

	envelope_object_key(id, key, sizeof(key));
	struct envelope_opts eo = {ENVELOPE_CODEC_ZSTD, ZSTD_LEVEL, keys_object_key(&t->keys), key};
	ret = envelope_encode(&eo, buf, len, &obj, &objlen);
	if (ret == 0)
		ret = objstore_put(t->store, key, obj, objlen);

	pthread_mutex_lock(&fs->lock);
	if (ret) {
		t->upload_errors++;
		note_error(t, "uploading chunk %" PRIu64 "/%" PRIu64 ": %s", ch->ino, ch->idx,
			   objstore_reason(ret));
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
	free(obj);
	if (encoding)
		mem_give(t);
out_buf:
	buf_put(t, buf);
	return ret;
}

int tier_upload_now(struct fs *fs, struct fs_inode *ip, unsigned timeout_s)
{
	struct tier *t = fs->tier;
	struct timespec until = now_ts();
	uint64_t bytes = 0;
	int ret;

	until.tv_sec += timeout_s;
	ip->nsync++;
	pthread_cond_broadcast(&t->work_cond);
	for (;;) {
		if (fs_readonly(fs)) {
			ret = -EROFS;
			break;
		}
		/* every DIRTY row counts a whole chunk here: none left is what matters */
		ret = meta_chunk_dirty_bytes_ino(fs->meta, ip->ino, fs->chunk_size, UINT64_MAX / 2,
						 &bytes);
		if (ret || bytes == 0)
			break;
		if (pthread_cond_timedwait(&t->upload_cond, &fs->lock, &until) == ETIMEDOUT) {
			note_error(t, "fsync of inode %" PRIu64 ": its chunks did not reach the "
				      "bucket in %u s",
				   ip->ino, timeout_s);
			ret = -EIO;
			break;
		}
	}
	ip->nsync--;
	return ret;
}

void *uploader_main(void *arg)
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
