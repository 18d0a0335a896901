/*
 * fs_internal.h - what fs.c (names, POSIX rules) and src/tier/ (the bucket
 * side: upload, eviction, fetch, garbage collection) share inside the fs
 * core. Nothing but fs.c and src/tier/ includes it; what fs.c calls in the
 * tier is in tier/tier.h.
 *
 * Locking: fs->lock protects every field of struct fs below it and every
 * field of every struct fs_inode, and the metadata connection. Nothing that
 * waits on the network or copies a chunk runs under it. Lock order: only
 * one lock exists; condition variables wait on it.
 */
#ifndef ZERO_FS_INTERNAL_H
#define ZERO_FS_INTERNAL_H

#include "common/chunk_bits.h"
#include "common/u64_list.h"
#include "fs/fs.h"
#include "fs/reftab.h"
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
/* a batch of deferred metadata commits is committed this long after it opened (fs.c) */
#define FS_BATCH_MS 10
#define FS_RELATIME_S (24 * 3600)
/* the allocation unit st_blocks counts a REMOTE chunk in (a chunk's length rounded up) */
#define FS_ALLOC_BLOCK 4096

/* A read between fs_read_prepare and fs_read_done: its chunks stay in the cache. */
struct fs_read {
	struct fs_inode *ip;
	uint64_t first, last; /* chunks it reads; first > last for a read at the end */
	struct fs_read *next; /* the inode's other reads in flight */
};

struct fs_inode {
	uint64_t ino;
	uint64_t nlookup;      /* references the kernel holds */
	uint32_t nopen;	       /* open handles */
	uint32_t nwriters;     /* of them, open for writing */
	uint32_t noverwriters; /* of those, without O_APPEND */
	uint32_t nread;	       /* reads between fs_read_prepare and fs_read_done */
	struct fs_read *reads; /* those reads, for the evictor */
	uint32_t nfetch;       /* chunk fetches in flight into this inode's cache file */
	uint32_t nwrite;       /* writes between fs_write_begin and fs_write_end */
	uint32_t nsync;	       /* fsyncs waiting for its chunks to reach the bucket (syncUpload) */
	uint64_t born_batch;   /* meta_batch_id() when it was created (0: committed then) */
	int fd;		       /* cache file, -1 while closed */
	bool attr_valid;       /* attr holds the inode's row */
	bool attr_dirty;       /* attr is newer than the row (size and times of a written file) */
	bool atime_dirty;      /* only the access time is newer: saved lazily, not on close */
	bool chunks_known;     /* dirty and remote have been loaded from the chunk table */
	struct meta_inode attr;
	struct chunk_bits dirty;  /* DIRTY mark committed for the chunk's current version */
	struct chunk_bits remote; /* chunk is REMOTE: its range in the cache file is a hole */
	struct timespec last_write;
	uint64_t last_write_idx; /* the chunk the last write ended in */
	bool last_write_back;	 /* the last write was the kernel's write-back of its cache */
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
	bool direct_io;	   /* see fs_file_direct_io() */
	struct fs_file *prev, *next; /* fs->files */
};

struct tier; /* src/tier/'s state (tier/tier_internal.h), reached through fs->tier */

struct fs {
	pthread_mutex_t lock; /* protects everything below */
	struct meta *meta;
	struct cache *cache;
	uint32_t chunk_size;
	uint64_t capacity; /* bytes statfs calls the filesystem's size */
	struct fs_inode **table; /* hash of in-memory inodes, chained */
	struct fs_file *files;	 /* the open handles, to free those never released */
	struct reftab refs;	 /* the kernel's references to idle inodes not in it */
	size_t table_size;	 /* power of two */
	size_t table_count;
	struct fs_inode *txn_touched; /* inodes changed by the open transaction */
	bool in_txn;
	int64_t batch_ms;	   /* group commit window (FS_BATCH_MS unless the options say) */
	unsigned rare_used;	   /* bit i: some inode has rare_names[i] (xattr.c); atomic */
	struct u64_list doomed;	   /* inodes deleted in the open batch: cache files to remove */
	pthread_cond_t fetch_cond; /* broadcast when a fetch ends (nfetch drops) */
	struct tier *tier;	   /* NULL without a bucket */
	struct journal *journal;   /* the metadata in the bucket; NULL without one, or read-only */
	bool sync_upload;	   /* fsync returns once the bucket has the file (syncUpload) */
	bool writeback_cache;	   /* see fs_options.writeback_cache */
	unsigned nwriters;	   /* handles open for writing, of all inodes */
	uint64_t room_margin;	   /* room kept for the kernel's cached writes (room.c); atomic */
	bool room_short;	   /* room.c: writers' attributes uncached; atomic */
	unsigned sync_timeout_s;   /* ... or fails with EIO after this long */
	struct lease *lease;	   /* not owned; NULL: none; set once by fs_new */
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

/*
 * Transactions with an undo record of the cached rows (fs.c): begin, then
 * roll back, or commit into the group commit's batch. fs->lock held.
 */
int txn_begin(struct fs *fs);
void txn_rollback(struct fs *fs);
int txn_commit_deferred(struct fs *fs);

/* At mount: which of the names answered from memory some inode holds (xattr.c). */
void xattr_rare_names_load(struct fs *fs);

#endif /* ZERO_FS_INTERNAL_H */
