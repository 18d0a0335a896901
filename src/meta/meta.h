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
};

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

int meta_begin(struct meta *m);
int meta_commit(struct meta *m);
void meta_rollback(struct meta *m);
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
/* Number of inodes (for statfs). */
int meta_inode_count(struct meta *m, uint64_t *count);

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
int meta_xattr_remove(struct meta *m, uint64_t ino, const char *name);

/* Mark chunk IDX of INO DIRTY (creating the row), bumping its version. */
int meta_chunk_set_dirty(struct meta *m, uint64_t ino, uint64_t idx);
/* Delete chunk rows FIRST..LAST (inclusive) of INO. */
int meta_chunk_delete_range(struct meta *m, uint64_t ino, uint64_t first, uint64_t last);
/* Call CB for each chunk row of INO in index order; nonzero from CB stops. */
typedef int (*meta_chunk_cb)(void *arg, uint64_t idx, enum meta_chunk_state state);
int meta_chunk_list(struct meta *m, uint64_t ino, meta_chunk_cb cb, void *arg);

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

#endif /* ZERO_META_H */
