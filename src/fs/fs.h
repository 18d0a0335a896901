/*
 * fs.h - Zero's filesystem core: inodes, directory entries and POSIX rules.
 *
 * The fuse layer translates each kernel request into one call here; this
 * module never sees FUSE types. Every call returns 0 or -errno. Calls that
 * hand an inode to the kernel (lookup, mknod, mkdir, symlink, link, create,
 * readdir with plus) add one to that inode's lookup count on success;
 * fs_forget() takes them away. An inode whose link count and lookup count
 * are zero and that no one has open is deleted with its data.
 *
 * All calls are thread-safe.
 */
#ifndef ZERO_FS_H
#define ZERO_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

struct fs;
struct fs_file;

/* Who is asking. */
struct fs_ctx {
	uid_t uid;
	gid_t gid;
	/* true when the caller is a member of GID (its own gid or a supplementary one) */
	bool (*in_group)(const struct fs_ctx *ctx, gid_t gid);
	void *opaque; /* for in_group */
	/* the caller's umask: applied to new nodes unless a default ACL replaces it */
	mode_t umask;
};

struct objstore;
struct keyring;
struct keys_lock;
struct lease;

struct fs_options {
	const char *cache_dir; /* required; must exist */
	const char *db_path;   /* NULL: CACHE/meta.db */
	uint32_t chunk_size;   /* 0: FS_DEFAULT_CHUNK_SIZE for a new filesystem, any for an
				  existing one; else it must be the filesystem's */
	/* the bucket; NULL: none (nothing is uploaded or evicted). fs_new takes ownership. */
	struct objstore *store;
	uint64_t target_bytes;		 /* cache size target; 0: no eviction */
	uint64_t capacity;		 /* the size statfs (df) shows; 0: FS_DEFAULT_CAPACITY */
	unsigned upload_delay_s;	 /* seconds without writes before a chunk is uploaded */
	unsigned backpressure_timeout_s; /* writers waiting for uploads get ENOSPC after this */
	unsigned uploaders;		 /* parallel uploads; 0: default */
	unsigned batch_ms;		 /* group commit: deferred changes wait this long; 0: default */
	/* the metadata in the bucket (src/journal/) */
	unsigned metadata_sync_ms;	 /* changes shipped this often; 0: every second */
	unsigned snapshot_interval_s;	 /* a snapshot this often while things change; 0: hourly */
	int64_t retention_s;		 /* point-in-time history kept; < 0: 7 days */
	bool restored;			 /* the database was just restored from the bucket */
	bool force;			 /* ship this cache's state even if the bucket's is newer */
	/*
	 * A read-only view (a past state): nothing is shipped, uploaded or
	 * collected; the kernel mount is read-only.
	 */
	bool readonly;
	/* fsync waits until the file's chunks and the metadata naming them are in the bucket */
	bool sync_upload;
	/*
	 * The kernel caches writes (FUSE's writeback cache): writes reach fs
	 * when written back, without their writer (fs_write_begin's CTX NULL).
	 */
	bool writeback_cache;
	/* the orphan sweep (tier/collect.c): objects no row knows, older than the age, go */
	unsigned orphan_safety_age_s;	  /* 0: 24 hours */
	unsigned orphan_sweep_interval_s; /* 0: no periodic sweep */
	/* this mount's lease of the filesystem (journal/lease.h); NULL: none. Not owned: it
	   outlives the fs. Once it is fenced, the fs is read-only (fs_readonly). */
	struct lease *lease;
	/*
	 * The filesystem's keys (crypt/keys.h), unlocked by the caller from the
	 * bucket's superblock; NULL or a plain keyring: not encrypted. Copied.
	 */
	const struct keyring *keys;
	/* A new encrypted filesystem: its data key wrapped by the passphrase, for the superblock. */
	const struct keys_lock *new_lock;
};

/* What fs_setattr changes. */
enum {
	FS_SET_MODE = 1 << 0,
	FS_SET_UID = 1 << 1,
	FS_SET_GID = 1 << 2,
	FS_SET_SIZE = 1 << 3,
	FS_SET_ATIME = 1 << 4, /* to attr->st_atim */
	FS_SET_MTIME = 1 << 5, /* to attr->st_mtim */
	FS_SET_ATIME_NOW = 1 << 6,
	FS_SET_MTIME_NOW = 1 << 7,
	FS_SET_CTIME = 1 << 8, /* to attr->st_ctim */
	/* with MTIME/CTIME: the times of writes made, from the kernel's writeback cache */
	FS_SET_WRITE_TIMES = 1 << 9,
};

#define FS_DEFAULT_CHUNK_SIZE (16u << 20) /* see docs/design.md, Chunks */
#define FS_NAME_MAX 255
/* The size df shows when the capacity option is not set: 1 PiB (a bucket has no limit). */
#define FS_DEFAULT_CAPACITY (1ULL << 50)
/* statfs's block: the unit df counts the capacity and the files' bytes in */
#define FS_STATFS_BLOCK 4096

/*
 * Open the filesystem whose cache is OPT->cache_dir. The caller must hold
 * the cache's lock. After an unclean stop, metadata is checked and repaired
 * and file sizes are recovered from the cache files. ERR gets a one-line
 * reason on failure. Caller owns *OUT (fs_free).
 */
int fs_new(const struct fs_options *opt, struct fs **out, char *err, size_t errlen);
/* Start the background threads; call once, after any fork. */
int fs_start(struct fs *fs);
/* Flush every pending change, delete orphans, record a clean stop and free FS. */
int fs_free(struct fs *fs);
/*
 * True once another mount took the filesystem's lease: every request that
 * would change something gets EROFS, and nothing more goes to the bucket.
 */
bool fs_readonly(const struct fs *fs);
/* Commit in-memory file sizes and times now (called periodically). */
int fs_flush_all(struct fs *fs);

int fs_lookup(struct fs *fs, uint64_t parent, const char *name, struct stat *st);
void fs_forget(struct fs *fs, uint64_t ino, uint64_t nlookup);
int fs_getattr(struct fs *fs, uint64_t ino, struct stat *st);
/* FH may be NULL. */
int fs_setattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t ino, struct fs_file *fh,
	       const struct stat *attr, int to_set, struct stat *st);
int fs_readlink(struct fs *fs, uint64_t ino, char *buf, size_t size, size_t *len);
int fs_mknod(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name,
	     mode_t mode, dev_t rdev, struct stat *st);
int fs_mkdir(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name,
	     mode_t mode, struct stat *st);
int fs_symlink(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name,
	       const char *target, struct stat *st);
int fs_link(struct fs *fs, uint64_t ino, uint64_t newparent, const char *newname, struct stat *st);
int fs_unlink(struct fs *fs, uint64_t parent, const char *name);
int fs_rmdir(struct fs *fs, uint64_t parent, const char *name);
/*
 * FLAGS: 0, RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT (with or
 * without NOREPLACE; the whiteout left behind belongs to CTX).
 */
int fs_rename(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name,
	      uint64_t newparent, const char *newname, unsigned int flags);

int fs_open(struct fs *fs, uint64_t ino, int flags, struct fs_file **fh);
/*
 * May the kernel keep its cached pages of the file open through FH? Not
 * when a read is due to update the access time (relatime): reads served
 * from the page cache never reach the filesystem.
 */
bool fs_file_keep_cache(const struct fs_file *fh);
/*
 * The file has ranges a recovery could not restore: the kernel should pass
 * reads on as they were asked (not whole pages), so that EIO is exactly
 * where bytes are lost and the bytes around them read.
 */
bool fs_file_direct_io(const struct fs_file *fh);
int fs_create(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name,
	      mode_t mode, int flags, struct fs_file **fh, struct stat *st);
/*
 * Prepare a read of SIZE bytes at OFF: fetch what is only in the bucket;
 * *FD gets the cache file to read from (valid until the handle is
 * released) and *LEN the number of bytes that exist there (0 at or past
 * the end of the file).
 */
struct fs_read;
int fs_read_prepare(struct fs *fs, struct fs_file *fh, off_t off, size_t size, int *fd, size_t *len,
		    struct fs_read **rd);
/*
 * The bytes of a successful fs_read_prepare() have been sent: RD, not the
 * handle (which the kernel may release as soon as the reply is out), says
 * which read ended. Until then the bytes stay in the cache file.
 */
void fs_read_done(struct fs *fs, struct fs_read *rd);
/* How many handles are open for writing (the kernel's writeback cache may hold their bytes). */
unsigned fs_writers(struct fs *fs);

/*
 * Writers' room under the kernel's writeback cache (room.c). The fuse layer
 * sets the margin, BYTES the kernel may hold unwritten for the mount, once;
 * until then (and without the writeback cache) none is kept.
 */
void fs_room_set_margin(struct fs *fs, uint64_t bytes);
/* The margin to keep where the kernel may hold KERNEL_BOUND bytes: at most that, less for
 * a small dirty limit (the kernel's bound is then to be lowered to it). */
uint64_t fs_room_margin_for(struct fs *fs, uint64_t kernel_bound);
/* Whether room is short now (decided again; the fuse layer's per-second look). */
bool fs_room_check(struct fs *fs);
/* Whether room was short at the last look: attributes of regular files are then not cached. */
bool fs_room_short(const struct fs *fs);
/*
 * The kernel asks for FH's attributes before it caches a write (room was
 * short): wait as a write would for room, or -ENOSPC. 0 at once for a
 * handle not open for writing or with room.
 */
int fs_room_wait(struct fs *fs, const struct fs_file *fh);
/* Up to MAX inodes open for writing into INOS; how many. */
size_t fs_room_writers(struct fs *fs, uint64_t *inos, size_t max);
/*
 * A write is three steps: fs_write_begin() (by CTX, the writer; NULL for the kernel writing back
 * its page cache) marks the chunks dirty, clears set-id bits the writer takes away, and gives
 * the cache file; the caller copies the bytes into *FD at OFF; then
 * fs_write_end() (by the same CTX) records the new size and times with what was written
 * (with the writeback cache, the kernel's write-back leaves the times: it sends them).
 * Every successful fs_write_begin() must be followed by fs_write_end(),
 * with WRITTEN 0 when the copy failed.
 */
int fs_write_begin(struct fs *fs, const struct fs_ctx *ctx, struct fs_file *fh, off_t off,
		   size_t len, int *fd);
void fs_write_end(struct fs *fs, const struct fs_ctx *ctx, struct fs_file *fh, off_t off,
		  size_t written);
int fs_fsync(struct fs *fs, struct fs_file *fh, bool datasync);
/* Closes the handle; FH is freed. */
int fs_release(struct fs *fs, struct fs_file *fh);
int fs_fallocate(struct fs *fs, struct fs_file *fh, int mode, off_t off, off_t len);
int fs_lseek(struct fs *fs, struct fs_file *fh, off_t off, int whence, off_t *result);
int fs_copy_file_range(struct fs *fs, const struct fs_ctx *ctx, struct fs_file *in, off_t off_in,
		       struct fs_file *out, off_t off_out, size_t len, size_t *copied);

/*
 * Directory entries after cookie OFF. CB is given each entry with the
 * cookie of the entry after it; it returns nonzero when it has no room for
 * it (then the walk stops and the entry is not counted). With PLUS, every
 * entry CB accepts (other than "." and "..") adds to its inode's lookup
 * count and ST is complete; without PLUS only st_ino and st_mode are set.
 */
typedef int (*fs_dirent_cb)(void *arg, const char *name, const struct stat *st, off_t next);
int fs_readdir(struct fs *fs, uint64_t ino, off_t off, bool plus, fs_dirent_cb cb, void *arg);
int fs_fsyncdir(struct fs *fs, uint64_t ino);

int fs_statfs(struct fs *fs, struct statvfs *out);
/* CTX: who asks (setting an access ACL may clear the setgid bit, as on ext4). */
int fs_setxattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t ino, const char *name,
		const void *value, size_t size, int flags);
/* SIZE 0 asks for the length only (*LEN). */
int fs_getxattr(struct fs *fs, uint64_t ino, const char *name, void *buf, size_t size, size_t *len);
/* Names the caller may see (trusted.* only for root). */
int fs_listxattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t ino, char *buf, size_t size,
		 size_t *len);
int fs_removexattr(struct fs *fs, uint64_t ino, const char *name);
/*
 * chattr flags (fileflags.c): *FLAGS gets the FS_IOC_GETFLAGS bits and
 * *XFLAGS the FS_IOC_FSGETXATTR ones. Only immutable and append-only are
 * kept; setting any other flag (or, with xflags, any other field:
 * OTHER_FIELDS) is -EOPNOTSUPP. The caller's right to change them is the
 * kernel's check.
 */
int fs_get_flags(struct fs *fs, uint64_t ino, uint32_t *flags, uint32_t *xflags);
int fs_set_flags(struct fs *fs, uint64_t ino, uint32_t flags);
int fs_set_xflags(struct fs *fs, uint64_t ino, uint32_t xflags, bool other_fields);
/* MASK is R_OK|W_OK|X_OK or F_OK. */
int fs_access(struct fs *fs, const struct fs_ctx *ctx, uint64_t ino, int mask);

#endif /* ZERO_FS_H */
