/*
 * evict.c - CLEAN -> REMOTE: when the cache passes its target, the tier
 * thread evicts least recently used CLEAN chunks down to the low watermark
 * (evict_until), punching each one's range out of its cache file
 * (evict_chunk); user.zero.evict evicts a whole file (evict_file). Also
 * what the evictor goes by: the access times of chunks, noted by reads and
 * written in batches (flush_atimes), and the cache's growth between two
 * measurements (cache_grew).
 *
 * Rules (numbered as in tier_internal.h):
 *  3. DIRTY chunks are never evicted; nor are chunks of pinned files,
 *     chunks a read is in (between fs_read_prepare and fs_read_done) or
 *     chunks being fetched. A reader checks for REMOTE chunks and registers
 *     its read under one hold of the lock, so nothing is evicted between.
 *  REMOTE is committed before the hole is punched: a crash in between
 *  leaves bytes that are fetched again over themselves, never a CLEAN mark
 *  over a hole.
 */
#include "tier/tier_internal.h"

#include "cache/cache.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The cache grew by about BYTES (lock held): let the evictor see it before its next walk. */
void cache_grew(struct tier *t, uint64_t bytes)
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

/* ---- access times ---- */

int flush_atimes(struct fs *fs)
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

/* ---- eviction ---- */

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
void evict_until(struct fs *fs, uint64_t used, uint64_t low)
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

int evict_file(struct fs *fs, uint64_t ino)
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
