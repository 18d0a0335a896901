/*
 * diskspace.c - the real free space of the cache's disk, a limit beside
 * targetDiskUsage.
 *
 * The target says how much of the disk Zero may use, but the disk can be
 * smaller than the target, or shared with other programs that fill it. So
 * the tier keeps a floor of free space on the cache's filesystem
 * (disk_min_free: 5 % of the filesystem, at least 16 MiB and at most
 * 1 GiB): below it, the evictor frees clean chunks as if the target had
 * been passed (evict.c), and writers wait for uploads as if the dirty limit
 * had been reached (upload.c, tier_reserve_dirty), so that a disk filled by
 * Zero's own data never runs out under the metadata.
 *
 * Invariant: disk_free is at most what statvfs(2) said at the last
 * measurement, minus what writers reserved since (an estimate between
 * measurements that errs on the side of measuring again).
 *
 * Locking: the fields are protected by fs->lock; statvfs runs under it
 * (it does not wait on the disk).
 */
#include "tier/tier_internal.h"

#include "cache/cache.h"

#include <sys/statvfs.h>

#define MIN_FREE_PERCENT 5
#define MIN_FREE_LOW (16ull << 20)
#define MIN_FREE_HIGH (1ull << 30)

void disk_space_measure(struct fs *fs)
{
	struct tier *t = fs->tier;
	struct statvfs sv;
	uint64_t total, min_free;

	if (cache_statvfs(fs->cache, &sv) != 0)
		return; /* keep the last figures */
	total = (uint64_t)sv.f_blocks * sv.f_frsize;
	min_free = total / 100 * MIN_FREE_PERCENT;
	if (min_free < MIN_FREE_LOW)
		min_free = MIN_FREE_LOW;
	if (min_free > MIN_FREE_HIGH)
		min_free = MIN_FREE_HIGH;
	t->disk_free = (uint64_t)sv.f_bavail * sv.f_frsize;
	t->disk_min_free = min_free;
	t->disk_measured = true;
}

uint64_t disk_space_shortfall(struct fs *fs)
{
	struct tier *t = fs->tier;

	if (!t->disk_measured || t->disk_free >= t->disk_min_free)
		return 0;
	/* free up to twice the floor, so that eviction does not run for every chunk */
	return 2 * t->disk_min_free - t->disk_free;
}

bool tier_disk_low(struct fs *fs)
{
	/* measured now, not estimated: another program may have filled the disk */
	disk_space_measure(fs);
	return disk_space_low(fs, 0);
}

bool disk_space_short(struct fs *fs, uint64_t bytes)
{
	struct tier *t = fs->tier;

	if (!t->disk_measured)
		return false;
	if (t->disk_free < t->disk_min_free + bytes)
		disk_space_measure(fs); /* the estimate says low: look again */
	return t->disk_free < t->disk_min_free + bytes;
}

bool disk_space_low(struct fs *fs, uint64_t new_bytes)
{
	if (disk_space_short(fs, new_bytes))
		return true;
	if (fs->tier->disk_measured)
		fs->tier->disk_free -= new_bytes;
	return false;
}
