/*
 * fs_internal.h - what fs.c (names, POSIX rules) and tier.c (the bucket
 * side: upload, eviction, fetch, garbage collection) share inside the fs
 * core. Nothing outside src/fs/ includes it.
 *
 * Locking: fs->lock protects every field of struct fs below it and every
 * field of every struct fs_inode, and the metadata connection. Nothing that
 * waits on the network or copies a chunk runs under it. Lock order: only
 * one lock exists; condition variables wait on it.
 */
#ifndef ZERO_FS_INTERNAL_H
#define ZERO_FS_INTERNAL_H

#include "fs/fs.h"
#include "meta/meta.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct cache;
struct objstore;

#define FS_LINK_MAX 65000
/* the largest file: what ext4, the usual home of the cache, can hold */
#define FS_MAX_FILE_SIZE ((1ull << 44) - 4096)
#define FS_FLUSH_INTERVAL_S 5
#define FS_RELATIME_S (24 * 3600)
/* the allocation unit st_blocks counts a REMOTE chunk in (a chunk's length rounded up) */
#define FS_ALLOC_BLOCK 4096

/* A growable bit per chunk. */
struct chunk_bits {
	uint8_t *bits;
	size_t len; /* bytes */
};

int chunk_bits_set(struct chunk_bits *b, uint64_t idx);
bool chunk_bits_test(const struct chunk_bits *b, uint64_t idx);
bool chunk_bits_any(const struct chunk_bits *b);
void chunk_bits_clear(struct chunk_bits *b, uint64_t first, uint64_t last);
void chunk_bits_free(struct chunk_bits *b);

/* A read between fs_read_prepare and fs_read_done: its chunks stay in the cache. */
struct fs_read {
	struct fs_inode *ip;
	uint64_t first, last; /* chunks it reads; first > last for a read at the end */
	struct fs_read *next; /* the inode's other reads in flight */
};

struct fs_inode {
	uint64_t ino;
	uint64_t nlookup;  /* references the kernel holds */
	uint32_t nopen;	   /* open handles */
	uint32_t nread;	   /* reads between fs_read_prepare and fs_read_done */
	struct fs_read *reads; /* those reads, for the evictor */
	uint32_t nfetch;   /* chunk fetches in flight into this inode's cache file */
	uint32_t nwrite;   /* writes between fs_write_begin and fs_write_end */
	int fd;		   /* cache file, -1 while closed */
	bool attr_valid;   /* attr holds the inode's row */
	bool attr_dirty;   /* attr is newer than the row (size and times of a written file) */
	bool atime_dirty;  /* only the access time is newer: saved lazily, not on close */
	bool chunks_known; /* dirty and remote have been loaded from the chunk table */
	struct meta_inode attr;
	struct chunk_bits dirty;  /* DIRTY mark committed for the chunk's current version */
	struct chunk_bits remote; /* chunk is REMOTE: its range in the cache file is a hole */
	struct timespec last_write;
	uint64_t last_write_idx; /* the chunk the last write ended in */
	uint64_t last_touch_idx; /* the chunk whose access time was noted last, and when */
	time_t last_touch;
	/* undo record of the current transaction */
	bool txn_touched, saved_valid, saved_dirty, saved_atime_dirty;
	struct meta_inode saved;
	struct fs_inode *txn_next;
	struct fs_inode *hash_next;
};

struct fs_file {
	struct fs_inode *ip;
	int flags;
	uint64_t next_off; /* where a sequential reader reads next (read-ahead) */
	bool keep_cache;   /* see fs_file_keep_cache() */
};

struct tier; /* tier.c's state, reached through fs->tier */

struct fs {
	pthread_mutex_t lock; /* protects everything below */
	struct meta *meta;
	struct cache *cache;
	uint32_t chunk_size;
	struct fs_inode **table; /* hash of in-memory inodes, chained */
	size_t table_size;	 /* power of two */
	size_t table_count;
	struct fs_inode *txn_touched; /* inodes changed by the open transaction */
	bool in_txn;
	pthread_cond_t fetch_cond; /* broadcast when a fetch ends (nfetch drops) */
	struct tier *tier;	   /* NULL without a bucket */
	/* flusher thread */
	pthread_t flusher;
	bool flusher_running;
	bool stopping;
	pthread_cond_t stop_cond;
};

struct timespec now_ts(void);

/* Inode table and rows; all with fs->lock held. */
struct fs_inode *itable_find(struct fs *fs, uint64_t ino);
struct fs_inode *itable_get(struct fs *fs, uint64_t ino);
int inode_load(struct fs *fs, uint64_t ino, struct meta_inode *out);
int inode_store(struct fs *fs, const struct meta_inode *in);
void inode_maybe_free(struct fs *fs, struct fs_inode *ip);
/* Load IP's dirty and remote bits from the chunk table once. */
int chunks_load(struct fs *fs, struct fs_inode *ip);

/* ---- tier.c: the bucket side. All with fs->lock held unless said otherwise. ---- */

/*
 * Set up tiering for FS on the store in OPT (taking ownership of it):
 * check or create the superblock. ERR gets the reason on failure.
 */
int tier_init(struct fs *fs, const struct fs_options *opt, char *err, size_t errlen);
int tier_start(struct fs *fs); /* without the lock */
void tier_stop(struct fs *fs); /* without the lock; uploads what it can first */
void tier_free(struct fs *fs);

/*
 * Make chunks FIRST..LAST of IP local (fetch the REMOTE ones). Drops and
 * retakes fs->lock while it waits: the caller must not be inside a
 * transaction and must re-check what it read before.
 */
int tier_make_local(struct fs *fs, struct fs_inode *ip, uint64_t first, uint64_t last);
/*
 * Wait (dropping the lock) until no fetch of chunks FIRST..LAST of IP is
 * under way; true if it waited, and the caller must look again. A fetch
 * writes the old bytes into the cache file outside the lock, so a write
 * that makes such a chunk DIRTY without fetching it (it covers the whole
 * chunk) must wait, or those old bytes land over its own.
 */
bool tier_wait_chunk_fetches(struct fs *fs, struct fs_inode *ip, uint64_t first, uint64_t last);
/* Wait (dropping the lock) until no fetch writes into IP's cache file. */
void tier_wait_fetches(struct fs *fs, struct fs_inode *ip);
/* Writers wait here while dirty data is at the limit: NEW_BYTES are about to become dirty. */
int tier_reserve_dirty(struct fs *fs, uint64_t new_bytes);
/* CHUNKS became DIRTY (or stopped being so), and the dirty data grew by BYTES. */
void tier_note_dirty(struct fs *fs, int chunks, int64_t bytes);
/* A write is about to add BYTES past the end of a file: the cache grows. */
void tier_note_append(struct fs *fs, uint64_t bytes);
/*
 * A read of LEN bytes at OFF (FETCHED: part of it had to come from the
 * bucket): statistics, access times, and read-ahead for sequential readers.
 */
void tier_note_read(struct fs *fs, struct fs_file *fh, uint64_t off, uint64_t len, bool fetched);
/* SEEK_DATA / SEEK_HOLE with REMOTE chunks counted as data. */
int tier_lseek(struct fs *fs, struct fs_inode *ip, off_t off, int whence, off_t *result);
/* The user.zero.* attributes: 1 when NAME is one (then RET holds the result). */
int tier_getxattr(struct fs *fs, uint64_t ino, const char *name, void *buf, size_t size,
		  size_t *len);
int tier_setxattr(struct fs *fs, uint64_t ino, const char *name, const void *value, size_t size);

#endif /* ZERO_FS_INTERNAL_H */
