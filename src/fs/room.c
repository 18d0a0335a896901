/*
 * room.c - writers' room under the kernel's writeback cache.
 *
 * With the writeback cache a write() lands in the kernel's page cache and
 * reaches Zero later, when the kernel writes it back; by then it is too late
 * to make the writer wait for uploads or to refuse it (ENOSPC) — the error
 * would come at fsync or close, and the bytes be dropped. The kernel bounds
 * what it holds unwritten for one FUSE mount (its dirty limit: 1 % of the
 * machine's, strictly, some tens of MiB); this module keeps that much room:
 *
 *  - Room is short when a writer of the kernel's bound more would have to
 *    wait (tier_room_short: the dirty limit, the disk's floor of free
 *    space, or writers waiting already). fs_room_check decides, every
 *    200 ms while files are open for writing and after each write-back
 *    (fuse/writeback.c), and the fuse layer then has the kernel forget the
 *    attributes of every inode open for writing (fs_room_writers).
 *  - While room is short, attributes of regular files are given with no
 *    cache time (fs_room_short), so the kernel asks for them (GETATTR with
 *    the writer's handle) before each write it would cache. fs_room_wait
 *    answers that question the way a write without the cache is answered:
 *    it waits for uploads, and fails with ENOSPC when they stay impossible.
 *
 * So a writer waits, or is refused, at write() as without the cache; what
 * the kernel accepted before room went short fits in the room kept.
 *
 * The room kept is taken from the dirty limit, for cached writers only: a
 * writer that would fit in it without the cache may wait with it. So the
 * kernel's bound is lowered to an eighth of the dirty limit where it is more
 * (fs_room_margin_for; the fuse layer sets it on the mount's bdi), which a
 * small cache (a test's 64 MB) needs and the default 10 GB does not.
 *
 * Locking: the margin is set once, at the mount before any request (none is
 * kept without the writeback cache), and read atomically; room_short is read without
 * the lock (a stale answer costs one round of caching, within the margin);
 * everything else under fs->lock.
 */
#include "fs/fs_internal.h"

#include "tier/tier.h"

#include <fcntl.h>

/* at most this share of the dirty limit is kept as room, and at least MARGIN_MIN */
#define MARGIN_SHARE 8
#define MARGIN_MIN (4ull << 20)

uint64_t fs_room_margin_for(struct fs *fs, uint64_t kernel_bound)
{
	uint64_t limit, want;

	pthread_mutex_lock(&fs->lock);
	limit = tier_dirty_limit(fs);
	pthread_mutex_unlock(&fs->lock);
	want = limit / MARGIN_SHARE;
	if (want < MARGIN_MIN)
		want = MARGIN_MIN;
	return limit && want < kernel_bound ? want : kernel_bound;
}

void fs_room_set_margin(struct fs *fs, uint64_t bytes)
{
	__atomic_store_n(&fs->room_margin, bytes, __ATOMIC_RELAXED);
}

/* Lock held. */
static bool room_short_locked(struct fs *fs)
{
	uint64_t margin = __atomic_load_n(&fs->room_margin, __ATOMIC_RELAXED);
	bool s = margin && tier_room_short(fs, margin);

	__atomic_store_n(&fs->room_short, s, __ATOMIC_RELAXED);
	return s;
}

bool fs_room_check(struct fs *fs)
{
	bool s;

	pthread_mutex_lock(&fs->lock);
	s = room_short_locked(fs);
	pthread_mutex_unlock(&fs->lock);
	return s;
}

bool fs_room_short(const struct fs *fs)
{
	return __atomic_load_n(&fs->room_short, __ATOMIC_RELAXED);
}

int fs_room_wait(struct fs *fs, const struct fs_file *fh)
{
	uint64_t margin = __atomic_load_n(&fs->room_margin, __ATOMIC_RELAXED);
	int ret = 0;

	if (!margin || (fh->flags & O_ACCMODE) == O_RDONLY)
		return 0;
	pthread_mutex_lock(&fs->lock);
	if (room_short_locked(fs)) {
		ret = tier_reserve_dirty(fs, margin);
		room_short_locked(fs);
	}
	pthread_mutex_unlock(&fs->lock);
	return ret < 0 ? ret : 0;
}

size_t fs_room_writers(struct fs *fs, uint64_t *inos, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&fs->lock);
	for (size_t i = 0; i < fs->table_size && n < max; i++)
		for (struct fs_inode *ip = fs->table[i]; ip && n < max; ip = ip->hash_next)
			if (ip->nwriters > 0)
				inos[n++] = ip->ino;
	pthread_mutex_unlock(&fs->lock);
	return n;
}
