/*
 * tier.h - the bucket side of the fs core, as fs.c calls it: set-up, the
 * superblock and the threads (tier.c); making chunks local and waiting for
 * fetches, and read-ahead (fetch.c); dirty data and backpressure
 * (upload.c); growth of the cache (evict.c); SEEK_DATA / SEEK_HOLE and the
 * user.zero.* attributes (residency.c).
 *
 * The tier works on fs.c's state (struct fs and struct fs_inode, in
 * fs/fs_internal.h) under fs.c's one lock, fs->lock; its own state,
 * struct tier, is reached through fs->tier (NULL without a bucket) and
 * private to src/tier/ (tier_internal.h).
 */
#ifndef ZERO_TIER_H
#define ZERO_TIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct fs;
struct fs_file;
struct fs_inode;
struct fs_options;
struct keyring;

/* All with fs->lock held unless said otherwise. */

/*
 * Set up tiering for FS on the store in OPT (taking ownership of it):
 * check or create the superblock. ERR gets the reason on failure.
 */
int tier_init(struct fs *fs, const struct fs_options *opt, char *err, size_t errlen);
int tier_start(struct fs *fs); /* without the lock */
void tier_stop(struct fs *fs); /* without the lock; uploads what it can first */
void tier_free(struct fs *fs);
/* The filesystem's keys, settled by tier_init; valid until tier_free. */
const struct keyring *tier_keys(const struct fs *fs);

/*
 * Make chunks FIRST..LAST of IP local (fetch the REMOTE ones). Drops and
 * retakes fs->lock while it waits: the caller must not be inside a
 * transaction and must re-check what it read before.
 */
int tier_make_local(struct fs *fs, struct fs_inode *ip, uint64_t first, uint64_t last);
/* Whether chunk IDX of INO is being uploaded (lock held). */
bool tier_chunk_uploading(struct fs *fs, uint64_t ino, uint64_t idx);
/*
 * Whether IP was written less than uploadDelay ago (lock held). Its time
 * of last write lives only in the in-memory inode, so fs.c keeps such an
 * inode in its table after the kernel forgets it: otherwise its chunks
 * would go up at once, the delay ignored.
 */
bool tier_write_is_recent(struct fs *fs, const struct fs_inode *ip);
/* Whether the cache's disk is below its floor of free space, measured now (lock held). */
bool tier_disk_low(struct fs *fs);
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
/*
 * Upload IP's DIRTY chunks now (no uploadDelay) and wait, dropping the lock,
 * until it has none: syncUpload's fsync. -EIO after TIMEOUT_S seconds
 * (the bucket does not take them), -EROFS once fenced.
 */
int tier_upload_now(struct fs *fs, struct fs_inode *ip, unsigned timeout_s);
/* Writers wait here while dirty data is at the limit: NEW_BYTES are about to become dirty. */
int tier_reserve_dirty(struct fs *fs, uint64_t new_bytes);
/*
 * Whether a writer of up to BYTES more would wait in tier_reserve_dirty, or
 * writers wait already (lock held). Reserves nothing.
 */
bool tier_room_short(struct fs *fs, uint64_t bytes);
/* The dirty limit writers wait at (lock held); 0: none. */
uint64_t tier_dirty_limit(struct fs *fs);
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

#endif /* ZERO_TIER_H */
