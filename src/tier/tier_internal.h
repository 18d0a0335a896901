/*
 * tier_internal.h - what the files of src/tier/ share: struct tier (the
 * tier's state, reached through fs->tier), the tunables, and the helpers
 * that one job's file calls in another's. Only the files of src/tier/
 * include it; fs.c sees the tier through tier.h alone.
 *
 * Chunk states and who moves them (see docs/design.md):
 *
 *	write (fs.c)        any -> DIRTY, a new version (REMOTE fetched first when partly written)
 *	upload_one()        DIRTY -> CLEAN, only if the version is unchanged since it began
 *	evict_until()       CLEAN -> REMOTE, least recently used first, punching the hole
 *	fetch_chunk()       REMOTE -> CLEAN, after the object is verified
 *
 * (upload_one is in upload.c, evict_until in evict.c, fetch_chunk in fetch.c.)
 *
 * Rules. Rule 1 holds everywhere; each of the others is written out at the
 * top of the file that keeps it, and "rule N" in any of these files means
 * this numbering:
 *  1. Nothing that waits on the network or copies a chunk runs under
 *     fs->lock; every decision is taken, and re-checked, under it.
 *  2. upload.c: an upload lands only if the chunk's version did not move,
 *     and none begins while a write to the inode is in flight.
 *  3. evict.c: what is never evicted (DIRTY chunks, pinned files, chunks a
 *     read is in or that are being fetched).
 *  4. fetch.c: one fetch per chunk at a time; what waits for fetches.
 *  5. collect.c: objects are never overwritten; an upload of content the
 *     collector is deleting waits for it to go.
 *  6. fetch.c: every object read is verified before its bytes reach the
 *     cache file.
 *
 * Locking: fs->lock (fs/fs_internal.h) protects the fields of struct tier;
 * its condition variables wait on it. The store, id_key and the limits are
 * set by tier_init and only read afterwards; the thread fields belong to
 * tier_start and tier_stop.
 */
#ifndef ZERO_TIER_INTERNAL_H
#define ZERO_TIER_INTERNAL_H

#include "crypt/keys.h"
#include "format/envelope.h"
#include "fs/fs_internal.h"
#include "tier/tier.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* How far a sequential reader is read ahead: at most 64 MiB and a quarter of the target. */
#define READAHEAD_BYTES (64u << 20)
#define READAHEAD_TARGET_PART 4
/* user.zero.sync lifts uploadDelay this long; `zero sync` sets it again while it waits */
#define SYNC_WINDOW_S 5
#define READAHEAD_QUEUE 64
#define READAHEAD_THREADS 4
#define ATIME_BATCH 4096
#define DEFAULT_UPLOADERS 4
/* The most chunk buffers of transfers (memory.c), in use or idle. */
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

struct atime_note {
	uint64_t ino, idx;
	int64_t t;
};

struct tier {
	struct objstore *store; /* owned */
	struct keyring keys; /* the filesystem's keys: object ids, and sealing when encrypted */
	uint64_t key_epoch;  /* encrypted: the superblock's key epoch (passphrase changes + 1) */
	uint64_t target;      /* bytes; 0 = no eviction */
	uint64_t low;	      /* evict down to this */
	uint64_t dirty_limit; /* bytes of DIRTY chunks before writers wait; 0 = none */
	unsigned upload_delay_s;
	unsigned backpressure_timeout_s;
	unsigned nuploaders;
	unsigned ra_chunks; /* chunks read ahead of a sequential reader, 1 to READAHEAD_QUEUE / 2 */
	unsigned orphan_safety_age_s;	  /* the orphan sweep keeps unknown objects younger than this */
	unsigned orphan_sweep_interval_s; /* between sweeps; 0: none */

	int64_t dirty_chunks;	       /* recounted every few seconds, adjusted in between */
	int64_t dirty_bytes;	       /* file bytes in them: what the dirty limit counts */
	bool pressure;		       /* writers are waiting for room */
	time_t sync_until;	       /* user.zero.sync: no uploadDelay until then */
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
	unsigned units_used, units_max, units_peak; /* transfer buffers, memory.c */
	pthread_cond_t mem_cond;		    /* a unit was given back */
	time_t bufs_used; /* last buf_get; the pool is emptied after BUF_IDLE_S without one */
	struct chunk_ref raq[READAHEAD_QUEUE]; /* read-ahead ring; each entry holds nfetch */
	size_t ra_head, ra_count;
	struct atime_note *atimes; /* access times waiting to be written */
	size_t natimes;
	uint64_t cursor_ino, cursor_idx; /* where the uploaders' scan goes on */
	/* the orphan sweep under way (collect.c): the tier thread's own, no lock */
	bool sweep_active;
	char *sweep_token; /* where the listing goes on; NULL: from the start */
	time_t sweep_next; /* when the next sweep begins */
	uint64_t sweep_found, sweep_found_bytes;

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
	uint64_t orphans_found, orphan_bytes; /* unknown objects the last complete sweep saw */
	uint64_t orphans_deleted, orphan_deleted_bytes, sweeps;
	time_t sweep_last; /* when the last sweep ended; 0: none yet */
	double upload_rate; /* bytes per second, smoothed */
	struct timespec rate_at;
	uint64_t rate_bytes;
	uint64_t cache_used; /* last measured, plus what fetches and appends added since */
	uint64_t disk_free;	/* the cache's filesystem, diskspace.c */
	uint64_t disk_min_free; /* the floor kept free there */
	bool disk_measured;
	char last_error[256];
};

static inline double ts_seconds(struct timespec t)
{
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- diskspace.c: free space on the cache's disk (lock held) ---- */

/* statvfs the cache's filesystem: disk_free and disk_min_free. */
void disk_space_measure(struct fs *fs);
/* Bytes to evict to get back above the floor of free space; 0 when above it. */
uint64_t disk_space_shortfall(struct fs *fs);
/* Whether NEW_BYTES more would take the disk below its floor; if not, reserves them. */
bool disk_space_low(struct fs *fs, uint64_t new_bytes);
/* The same question, reserving nothing. */
bool disk_space_short(struct fs *fs, uint64_t bytes);

/* ---- memory.c: transfer buffers within a budget (lock held) ---- */

void mem_init(struct fs *fs);
void mem_release(struct tier *t);
/* The size of one unit: a chunk and the largest envelope header. */
size_t mem_unit_size(struct fs *fs);
/*
 * Take a unit of the budget (waiting, with the lock dropped, until one is
 * free), for a buffer the caller allocates itself; SECOND for the second
 * buffer of a transfer that holds one already. mem_give gives it back.
 */
void mem_take(struct fs *fs, bool second);
void mem_give(struct tier *t);
/* A unit-sized buffer within the budget (may wait, like mem_take); NULL when out of memory. */
void *buf_get(struct fs *fs, bool second);
/* Give BUF (may be NULL) and its unit back. */
void buf_put(struct tier *t, void *buf);
/* Free the idle buffers. */
void bufs_drop(struct tier *t);
/* The daemon's resident memory in bytes (0 if unknown). */
uint64_t mem_rss(void);

/* ---- tier.c: the life cycle, shared helpers ---- */

/* Record the last error for user.zero.status, and log it. */
/* status.c: user.zero.status into OUT (SIZE bytes); its length, or -errno. Lock held. */
int tier_status_json(struct fs *fs, char *out, size_t size);
/* binding.c: check the bucket's superblock against the cache, or create it; ERR says why not. */
int tier_bind(struct fs *fs, struct tier *t, const struct fs_options *opt, char *err,
	      size_t errlen);
void note_error(struct tier *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Bytes of chunk IDX of a file of SIZE bytes. */
uint64_t chunk_len(struct fs *fs, uint64_t size, uint64_t idx);

/* ---- upload.c ---- */

/* Count the bytes in DIRTY chunks afresh (lock held). */
int dirty_recount(struct fs *fs);
/* An uploader thread; ARG is the struct fs. */
void *uploader_main(void *arg);

/* ---- evict.c ---- */

/* The cache grew by about BYTES (lock held): wakes the evictor past the target. */
void cache_grew(struct tier *t, uint64_t bytes);
/* Write the noted access times of chunks (lock held). */
int flush_atimes(struct fs *fs);
/* Evict least recently used CLEAN chunks until the cache uses at most LOW bytes (lock not held). */
void evict_until(struct fs *fs, uint64_t used, uint64_t low);
/* Evict the CLEAN chunks of file INO (lock held): user.zero.evict. */
int evict_file(struct fs *fs, uint64_t ino);

/* ---- fetch.c ---- */

/* The fetch of chunk IDX of INO in flight, or NULL (lock held). */
struct fetch *fetch_find(struct tier *t, uint64_t ino, uint64_t idx);
/* Queue REMOTE chunk IDX of IP for the read-ahead threads (lock held). */
void ra_enqueue(struct fs *fs, struct fs_inode *ip, uint64_t idx);
/* A read-ahead thread; ARG is the struct fs. */
void *readahead_main(void *arg);

/* ---- collect.c ---- */

/* Delete one batch of unreferenced objects (lock not held). */
void gc_once(struct fs *fs);
/* The orphan sweep: when one is due or under way, one page of it (lock not held). */
void sweep_step(struct fs *fs);

#endif /* ZERO_TIER_INTERNAL_H */
