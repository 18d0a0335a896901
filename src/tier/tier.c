/*
 * tier.c - the bucket side of the fs core: its life cycle and its main
 * thread. tier_init checks the bucket's superblock against the cache (or
 * creates it) and counts the dirty data; tier_start and tier_stop start
 * and join every thread of src/tier/: the uploaders (upload.c), the
 * read-ahead threads (fetch.c) and the tier thread (tier_main), which once
 * a second writes the noted access times, recounts the dirty data every
 * few rounds, collects garbage and sweeps for orphans (collect.c) and, when
 * the cache passes its target, evicts (evict.c). Also here: helpers every job uses.
 *
 * Invariants (the rules are in tier_internal.h):
 *  - One filesystem per bucket: a superblock with another fs_id, format
 *    version or chunk size is refused, and so is a bucket that holds Zero
 *    objects but no superblock. A cache bound to its bucket mounts on the
 *    cache alone while the bucket does not answer.
 */
#include "tier/tier_internal.h"

#include "cache/cache.h"
#include "common/log.h"
#include "format/envelope.h"
#include "journal/lease.h"
#include "store/objstore.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#define LOW_WATERMARK_PERCENT 90

void note_error(struct tier *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->last_error, sizeof(t->last_error), fmt, ap);
	va_end(ap);
	log_error("%s", t->last_error);
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
	mem_init(fs);
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
	t->orphan_safety_age_s = opt->orphan_safety_age_s ? opt->orphan_safety_age_s : 86400;
	t->orphan_sweep_interval_s = opt->orphan_sweep_interval_s;
	/* the first sweep a minute after mount (sooner with a shorter interval): a crash's leaks */
	t->sweep_next = time(NULL) + (t->orphan_sweep_interval_s < 60 ? t->orphan_sweep_interval_s : 60);
	t->atimes = calloc(ATIME_BATCH, sizeof(*t->atimes));
	if (!t->atimes)
		return -ENOMEM;
	ret = tier_bind(fs, t, opt, err, errlen);
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

void tier_free(struct fs *fs)
{
	struct tier *t = fs->tier;

	if (!t)
		return;
	objstore_free(t->store);
	keys_release(&t->keys);
	pthread_cond_destroy(&t->upload_cond);
	pthread_cond_destroy(&t->work_cond);
	pthread_cond_destroy(&t->ra_cond);
	free(t->uploading);
	free(t->deleting);
	free(t->sweep_token);
	free(t->atimes);
	mem_release(t);
	free(t->upload_threads);
	free(t);
	fs->tier = NULL;
}

const struct keyring *tier_keys(const struct fs *fs)
{
	return &fs->tier->keys;
}

/* Bytes of chunk IDX of a file of SIZE bytes. */
uint64_t chunk_len(struct fs *fs, uint64_t size, uint64_t idx)
{
	uint64_t start = idx * fs->chunk_size;

	if (start >= size)
		return 0;
	return size - start < fs->chunk_size ? size - start : fs->chunk_size;
}

/* ---- the tier thread ---- */

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
		sweep_step(fs);
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
		/* evict down to the low watermark past the target, and for free disk space */
		disk_space_measure(fs);
		uint64_t shortfall = disk_space_shortfall(fs), low = used;
		if (t->target && used > t->target)
			low = t->low;
		uint64_t for_disk = used > shortfall ? used - shortfall : 0;
		if (shortfall && for_disk < low)
			low = for_disk;
		pthread_mutex_unlock(&fs->lock);
		if (low < used)
			evict_until(fs, used, low);

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
