/*
 * meta.h - Zero's metadata store: the only module that speaks SQL.
 *
 * One SQLite database (WAL) per filesystem holds inodes, directory entries,
 * extended attributes, the chunk table and settings. A struct meta is one
 * connection; it is NOT thread-safe: the caller serialises all calls (the fs
 * core does, under fs->lock).
 *
 * Rules:
 *  1. Every function that acts returns 0 or -errno; lookups of a missing row
 *     return -ENOENT (-ENODATA for xattrs).
 *  2. Nothing is committed implicitly inside a meta_begin()/meta_commit()
 *     pair; outside one, each call is its own transaction.
 *  3. Directory entry ids only grow and are never reused; they are the
 *     readdir cookies, so a cookie stays valid while entries change.
 *  4. Inode numbers are never reused (the kernel may still know an old one).
 */
#ifndef ZERO_META_H
#define ZERO_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define META_ROOT_INO 1

struct meta;

struct meta_inode {
	uint64_t ino;
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	uint32_t nlink;
	uint64_t size;
	uint64_t rdev;
	struct timespec atime;
	struct timespec mtime;
	struct timespec ctime;
	struct timespec btime;
	uint32_t flags; /* META_INODE_* */
	/*
	 * A regular file's st_blocks as of the last time its size and times
	 * were written down with its cache file open (fs.c inode_store): the
	 * cache file's blocks and its remote chunks' as if local, which
	 * eviction and fetching leave as they are. Unknown (NULL in the
	 * table) while it is being written, after a size change without the
	 * cache file at hand, and in rows of earlier versions.
	 */
	uint64_t blocks;
	bool blocks_known;
};

/* The file's chunks stay local whatever the pressure (zero pin). */
#define META_INODE_PINNED 1u
/* chattr +i and +a (src/fs/fileflags.c) */
#define META_INODE_IMMUTABLE (1u << 1)
#define META_INODE_APPEND (1u << 2)
/*
 * The file's bytes or size may be newer than this row: set (committed)
 * before a write or fallocate changes the cache file, cleared by the commit
 * that writes down its size and times. Recovery after a crash takes the size
 * and mtime from the cache file only for such files.
 */
#define META_INODE_WRITING (1u << 3)
/* Ranges of the file are lost (a recovery could not restore them): see meta_lost_* */
#define META_INODE_LOST (1u << 4)

/* Chunk states, see docs/design.md. */
enum meta_chunk_state { CHUNK_DIRTY = 0, CHUNK_CLEAN = 1, CHUNK_REMOTE = 2 };

/*
 * Open (creating if needed) the database at PATH. A new database gets the
 * schema, a root directory owned by ROOT_UID/ROOT_GID with mode 0755, and
 * the settings "chunk_size" = CHUNK_SIZE and "fs_id". On success *OUT is
 * owned by the caller (meta_close).
 */
int meta_open(const char *path, uint32_t chunk_size, uid_t root_uid, gid_t root_gid,
	      struct meta **out);
void meta_close(struct meta *m);
/*
 * Copy the WAL into the database from a thread of its own (backfill.c)
 * rather than inside the commits that fill it. For a long-lived user (the
 * mount); meta_close stops it. 0 or -errno.
 */
int meta_backfill_start(struct meta *m);
void meta_backfill_stop(struct meta *m);
/* Copies the thread has made so far. */
unsigned long meta_backfill_runs(struct meta *m);

int meta_begin(struct meta *m);
int meta_commit(struct meta *m);
void meta_rollback(struct meta *m);
/*
 * Group commit (meta.c, rules B1-B3): end a meta_begin() without committing
 * it; its changes wait in the batch, an open transaction that the next
 * commit of anything else, or meta_flush(), commits. Only for changes that
 * nothing outside the database depends on until then.
 */
int meta_commit_deferred(struct meta *m);
/* Commit the batch now (no-op without one, or inside a transaction). */
int meta_flush(struct meta *m);
bool meta_batch_open(const struct meta *m);
/*
 * The open batch's id, 0 without one: a change made while the id was N is
 * uncommitted (and would be lost whole in a crash) as long as it is still N.
 */
uint64_t meta_batch_id(const struct meta *m);
/* Milliseconds since the batch opened; 0 without one. */
int64_t meta_batch_age_ms(const struct meta *m);
/* SQLite rolled a batch back (a full disk, an I/O error): what it held is gone (rule B3). */
bool meta_batch_lost(const struct meta *m);
/*
 * Make everything committed so far durable: a commit under
 * synchronous=FULL, which fsyncs the write-ahead log.
 */
int meta_sync(struct meta *m);

/* Settings: small text values. get returns -ENOENT when absent. */
int meta_setting_get(struct meta *m, const char *key, char *buf, size_t size);
int meta_setting_set(struct meta *m, const char *key, const char *value);

int meta_inode_get(struct meta *m, uint64_t ino, struct meta_inode *out);
/* Insert IN (its ino is ignored); the new number is stored in IN->ino. */
int meta_inode_insert(struct meta *m, struct meta_inode *in, const char *target, size_t target_len);
int meta_inode_update(struct meta *m, const struct meta_inode *in);
/* Delete the inode with its xattrs and chunk rows. */
int meta_inode_delete(struct meta *m, uint64_t ino);
/* Symlink target; *LEN gets its length (may exceed SIZE: then it is cut). */
int meta_symlink_get(struct meta *m, uint64_t ino, char *buf, size_t size, size_t *len);
/*
 * Number of inodes that have a name, and the bytes of all such regular
 * files (their sizes), for statfs.
 */
int meta_inode_usage(struct meta *m, uint64_t *count, uint64_t *bytes);

int meta_dentry_lookup(struct meta *m, uint64_t parent, const char *name, uint64_t *ino);
int meta_dentry_insert(struct meta *m, uint64_t parent, const char *name, uint64_t ino);
int meta_dentry_delete(struct meta *m, uint64_t parent, const char *name);
/* Move entry (PARENT, NAME) to (NEWPARENT, NEWNAME), keeping its id. */
int meta_dentry_move(struct meta *m, uint64_t parent, const char *name, uint64_t newparent,
		     const char *newname);
/* Point the existing entry (PARENT, NAME) at INO. */
int meta_dentry_set_ino(struct meta *m, uint64_t parent, const char *name, uint64_t ino);
/* 1 when directory INO has entries, 0 when empty. */
int meta_dir_has_entries(struct meta *m, uint64_t ino);
/* The directory holding directory INO (the root is its own parent). */
int meta_dir_parent(struct meta *m, uint64_t ino, uint64_t *parent);

/*
 * Entries of directory PARENT with id > AFTER, in id order. CB gets each
 * entry's id, name and inode; returning nonzero stops the walk (that value
 * is returned).
 */
typedef int (*meta_readdir_cb)(void *arg, uint64_t id, const char *name,
			       const struct meta_inode *inode);
int meta_readdir(struct meta *m, uint64_t parent, uint64_t after, meta_readdir_cb cb, void *arg);

/* Extended attributes. Flags are XATTR_CREATE / XATTR_REPLACE. */
int meta_xattr_get(struct meta *m, uint64_t ino, const char *name, void *buf, size_t size,
		   size_t *len);
int meta_xattr_set(struct meta *m, uint64_t ino, const char *name, const void *value, size_t len,
		   int flags);
/* NUL-separated names into BUF; *LEN gets the full length needed. */
int meta_xattr_list(struct meta *m, uint64_t ino, char *buf, size_t size, size_t *len);
/* 1 if some inode has an extended attribute NAME, 0 if none has (a scan: for mount time). */
int meta_xattr_name_used(struct meta *m, const char *name);
int meta_xattr_remove(struct meta *m, uint64_t ino, const char *name);

#define META_OBJECT_ID_LEN 32

/* One row of the chunk table. */
struct meta_chunk {
	uint64_t ino, idx;
	enum meta_chunk_state state;
	bool has_object; /* object[] names the chunk's last uploaded object */
	uint8_t object[META_OBJECT_ID_LEN];
	uint64_t length;  /* plaintext bytes in that object */
	uint64_t version; /* bumped by every transition to DIRTY */
	int64_t atime;	  /* last access, seconds */
};

/*
 * Object references: a chunk row references its object (the object column)
 * from its first upload until the row is deleted or a newer upload replaces
 * it, DIRTY rows included. object.refcount counts those references; an
 * object whose count is zero is garbage.
 */

int meta_chunk_get(struct meta *m, uint64_t ino, uint64_t idx, struct meta_chunk *out);
/*
 * Mark chunk IDX of INO DIRTY (creating the row), giving it a new version
 * (one no chunk had before: versions never come back, even for a row that
 * was deleted and is made anew) and setting its access time to NOW. Returns 1 when it was not DIRTY
 * before, 0 when it was.
 */
int meta_chunk_set_dirty(struct meta *m, uint64_t ino, uint64_t idx, int64_t now);
/*
 * An upload of the chunk at VERSION produced OBJECT: if the chunk is still
 * DIRTY at VERSION it becomes CLEAN, referencing OBJECT (its previous
 * object loses a reference) and 1 is returned. Otherwise (written or
 * removed meanwhile) 0 is returned and OBJECT is recorded as garbage.
 */
int meta_chunk_set_clean(struct meta *m, uint64_t ino, uint64_t idx, uint64_t version,
			 const uint8_t object[META_OBJECT_ID_LEN], uint64_t length,
			 uint64_t stored_size);
/* FROM -> TO for one chunk; 1 when it was in FROM, 0 when not. */
int meta_chunk_set_state(struct meta *m, uint64_t ino, uint64_t idx, enum meta_chunk_state from,
			 enum meta_chunk_state to);
/* Delete chunk rows FIRST..LAST (inclusive) of INO, dropping their object references. */
int meta_chunk_delete_range(struct meta *m, uint64_t ino, uint64_t first, uint64_t last);
typedef int (*meta_chunk_row_cb)(void *arg, const struct meta_chunk *chunk);
/* Up to LIMIT DIRTY chunks after (AFTER_INO, AFTER_IDX), in (ino, idx) order. */
int meta_chunk_dirty_list(struct meta *m, uint64_t after_ino, uint64_t after_idx, size_t limit,
			  meta_chunk_row_cb cb, void *arg);
/* Up to LIMIT CLEAN chunks, least recently used first. */
int meta_chunk_lru_list(struct meta *m, size_t limit, meta_chunk_row_cb cb, void *arg);
int meta_chunk_touch(struct meta *m, uint64_t ino, uint64_t idx, int64_t atime);
/* Number of chunks and plaintext bytes of their objects, per state. */
int meta_chunk_counts(struct meta *m, uint64_t count[3], uint64_t bytes[3]);
/*
 * Bytes of file data in DIRTY chunks of CHUNK_SIZE, by the sizes in the
 * inode rows (a file being written may be longer in memory).
 */
int meta_chunk_dirty_bytes(struct meta *m, uint64_t chunk_size, uint64_t *bytes);
/* The same for the DIRTY chunks of INO only, were the file SIZE bytes long. */
int meta_chunk_dirty_bytes_ino(struct meta *m, uint64_t ino, uint64_t chunk_size, uint64_t size,
			       uint64_t *bytes);
/*
 * Bytes the REMOTE chunks of INO would take in the cache: their lengths,
 * each rounded up to BLOCK. Costs one index probe for a file without any.
 */
int meta_chunk_remote_bytes_ino(struct meta *m, uint64_t ino, uint64_t block, uint64_t *bytes);

/* 1 when a row for object ID exists (referenced or garbage), else 0. */
int meta_object_exists(struct meta *m, const uint8_t id[META_OBJECT_ID_LEN]);
typedef int (*meta_object_cb)(void *arg, const uint8_t id[META_OBJECT_ID_LEN]);
/*
 * Up to LIMIT unreferenced objects that may go: released (their last
 * reference dropped) at or before RELEASED_BEFORE and kept by no
 * checkpoint. Objects found unreferenced for the first time are stamped
 * released at NOW (so an object is kept at least as long as asked, never
 * less).
 */
int meta_object_garbage(struct meta *m, size_t limit, int64_t now, int64_t released_before,
			meta_object_cb cb, void *arg);
/* Forget unreferenced object ID; 1 when deleted, 0 when it is referenced again. */
int meta_object_delete(struct meta *m, const uint8_t id[META_OBJECT_ID_LEN]);
/* Referenced objects: how many, and their stored bytes. */
int meta_object_stats(struct meta *m, uint64_t *count, uint64_t *bytes);

/*
 * A path of inode INO from the root ("/dir/file"; the root is "/"), through
 * each inode's oldest entry, into BUF (SIZE bytes). *LINKS (may be NULL)
 * gets the number of entries INO has. -ENOENT when INO or a directory above
 * it has no entry (unlinked, or cut off from the root), -ELOOP when the
 * entries go round in a circle, -ENAMETOOLONG when BUF is too small.
 */
int meta_inode_path(struct meta *m, uint64_t ino, char *buf, size_t size, uint64_t *links);
/*
 * Every chunk row that references an object, ordered by object id (so the
 * rows of a shared object come together), then ino and idx. CB gets the
 * row and the object's stored_size (0 when the object has no row, or its
 * size is not known); nonzero from CB stops the walk (that value is
 * returned). CB must not change the chunk or object tables.
 */
typedef int (*meta_chunk_object_cb)(void *arg, const struct meta_chunk *chunk,
				    uint64_t stored_size);
int meta_chunk_object_list(struct meta *m, meta_chunk_object_cb cb, void *arg);
/*
 * Of the N object ids in IDS, keep those no row knows: no object row and
 * no chunk row referencing them (the leaked uploads of the orphan sweep).
 * They are moved to the front, in an unspecified order; *KEPT gets their
 * number. One indexed lookup per id, and one scan of the chunk table when
 * any id has no object row.
 */
int meta_object_filter_unknown(struct meta *m, uint8_t (*ids)[META_OBJECT_ID_LEN], size_t n,
			       size_t *kept);
/* Call CB for each chunk row of INO in index order; nonzero from CB stops. */
typedef int (*meta_chunk_cb)(void *arg, uint64_t idx, enum meta_chunk_state state);
int meta_chunk_list(struct meta *m, uint64_t ino, meta_chunk_cb cb, void *arg);
/* Every chunk row of INO (any order). */
int meta_chunk_residency(struct meta *m, uint64_t ino, meta_chunk_cb cb, void *arg);

/* Every inode whose link count is zero (orphans left by a crash or unmount). */
typedef int (*meta_ino_cb)(void *arg, uint64_t ino);
int meta_orphan_list(struct meta *m, meta_ino_cb cb, void *arg);
/* Every inode that is a regular file. */
int meta_file_list(struct meta *m, meta_ino_cb cb, void *arg);

/*
 * Consistency check. Each problem found is described through REPORT; with
 * REPAIR, it is also fixed. Returns the number of problems (>= 0) or -errno.
 */
typedef void (*meta_report_cb)(void *arg, const char *problem);
int meta_check(struct meta *m, bool repair, meta_report_cb report, void *arg);

/* ---- this cache's own settings, never shipped (changes.c) ---- */

int meta_local_get(struct meta *m, const char *key, char *buf, size_t size);
int meta_local_set(struct meta *m, const char *key, const char *value);
/* Forget every local setting (a database restored from the bucket). */
int meta_local_clear(struct meta *m);

/* ---- the change log shipped to the bucket (changes.c) ---- */

/*
 * Record every change from now on (every table but `local`; not the access
 * times of chunks). Call right after meta_open, before anything changes.
 */
int meta_changes_start(struct meta *m);
/* Whether changes were recorded since the last take. */
bool meta_changes_pending(struct meta *m);
/* Transactions committed since the last take (the operations waiting to be shipped). */
uint64_t meta_changes_rows(struct meta *m);
void meta_changes_rows_reset(struct meta *m);
/* About how many bytes the changeset would take now. */
uint64_t meta_changes_bytes(struct meta *m);
/*
 * The changeset of everything committed since the start or the last take,
 * into *BUF (malloc'd, caller frees; NULL and 0 when the changes cancelled
 * out), and start over. -EBUSY inside a transaction.
 */
int meta_changes_take(struct meta *m, void **buf, size_t *len);
/*
 * The inodes changeset CS touches (rows of inodes, their xattrs, chunks and
 * lost ranges; both the inode and the directory of each entry), sorted and
 * unique, into *INOS (malloc'd) and *N; *ROWS gets the number of rows
 * changed. M (may be NULL) is the database the changeset was taken from,
 * for the directory of an entry whose directory did not change.
 */
int meta_changes_inodes(struct meta *m, const void *cs, size_t len, uint64_t **inos, size_t *n,
			uint64_t *rows);
/* Apply changeset CS; *CONFLICTS counts rows that did not fit (the changeset's won). */
int meta_changes_apply(struct meta *m, const void *cs, size_t len, unsigned *conflicts);

/*
 * A snapshot: the whole database as of meta_snapshot_begin (a second
 * connection holds a read transaction), read out later without the
 * caller's lock.
 */
struct meta_snapshot;
int meta_snapshot_begin(struct meta *m, struct meta_snapshot **out);
/* The database image, into *BUF (malloc'd, caller frees). */
int meta_snapshot_read(struct meta_snapshot *s, void **buf, size_t *len);
void meta_snapshot_end(struct meta_snapshot *s);

/*
 * Checkpoints (changes.c): a named state; every object the chunk table
 * names now is kept (never collected) until the checkpoint is removed.
 * KEY is its object in the bucket. add: -EEXIST when NAME is taken.
 */
int meta_checkpoint_add(struct meta *m, const char *name, int64_t created, uint64_t seq,
			const char *key);
/* Remove NAME (its KEY into KEY); -ENOENT when there is none. */
int meta_checkpoint_remove(struct meta *m, const char *name, char *key, size_t keysize);
typedef int (*meta_checkpoint_cb)(void *arg, const char *name, int64_t created, uint64_t objects);
int meta_checkpoint_list(struct meta *m, meta_checkpoint_cb cb, void *arg);

/* ---- a restored database, and what it could not restore (restore.c) ---- */

/* One range a recovery could not restore: bytes START..END-1 of INO. */
typedef int (*meta_lost_cb)(void *arg, uint64_t ino, uint64_t start, uint64_t end);
/*
 * Make a database restored from the bucket mountable on an empty cache:
 * every chunk is REMOTE (CLEAN ones were in the bucket; a DIRTY one keeps
 * its last uploaded object where that covers it), no file is marked
 * WRITING, and each byte range whose newest content never reached the
 * bucket is recorded lost (reads there are EIO) and reported through CB.
 * The ranges of DIRTY chunks that come back as last uploaded (older than
 * the rest of their file may be) are reported through OLDER_CB. Either
 * may be NULL. Returns the number of lost ranges or -errno.
 */
int meta_restore_fixup(struct meta *m, uint32_t chunk_size, meta_lost_cb cb, meta_lost_cb older_cb,
		       void *arg);
/* Whether any of bytes OFF..OFF+LEN-1 of INO are lost: 1 yes, 0 no. */
int meta_lost_overlaps(struct meta *m, uint64_t ino, uint64_t off, uint64_t len);
/*
 * Bytes OFF..OFF+LEN-1 of INO were written (or, LEN UINT64_MAX, everything
 * from OFF on was truncated away): they are no longer lost. 1 when ranges
 * of INO remain lost, 0 when none does.
 */
int meta_lost_clear(struct meta *m, uint64_t ino, uint64_t off, uint64_t len);
/* Every lost range, in (ino, start) order. */
int meta_lost_list(struct meta *m, meta_lost_cb cb, void *arg);

#endif /* ZERO_META_H */
