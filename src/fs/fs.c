/*
 * fs.c - the filesystem core: POSIX semantics over meta (SQL) and cache (bytes).
 *
 * Locking: one mutex, fs->lock, protects the metadata connection, the
 * in-memory inode table and every field of every struct fs_inode. Bytes are
 * copied to and from cache files outside the lock: a cache file descriptor
 * stays open while any handle on its inode is open, and the kernel does not
 * release a handle with a read or write in flight.
 *
 * The in-memory inode (struct fs_inode) exists while the kernel holds a
 * lookup reference or a handle is open. It caches the inode's row; for files
 * being written, its size and times are newer than the row (attr_dirty) and
 * are committed on flush, fsync, release and every few seconds. Rules:
 *  1. Whenever an inode is in the table with attr_valid, its cached row is
 *     the truth; every change goes through inode_store() or marks it dirty.
 *  2. A chunk's DIRTY mark is committed before its bytes change (first write
 *     into it); the bitmap fs_inode.dirty remembers which marks are already
 *     committed, so later writes into a dirty chunk touch no SQL.
 *  3. A cache file's apparent size always equals the file's size, so after
 *     a crash the size is recovered from the cache file.
 *  4. An inode with no links is deleted, with its cache file, once the
 *     kernel has forgotten it and no handle is open; orphans left by a crash
 *     are deleted at the next mount.
 */
#include "fs/fs.h"
#include "fs/acl.h"
#include "fs/fileflags.h"
#include "fs/fs_internal.h"
#include "journal/journal.h"
#include "tier/tier.h"

#include "cache/cache.h"
#include "common/clock.h"
#include "common/log.h"
#include "journal/lease.h"
#include "meta/meta.h"
#include "store/objstore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- small helpers ---- */

struct timespec now_ts(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

static int check_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0)
		return -ENOENT;
	if (len > FS_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static bool ts_le(struct timespec a, struct timespec b)
{
	return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec <= b.tv_nsec);
}

/* ---- inode table ---- */

static size_t hash_ino(uint64_t ino, size_t size)
{
	return (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 20) & (size - 1);
}

struct fs_inode *itable_find(struct fs *fs, uint64_t ino)
{
	struct fs_inode *ip = fs->table[hash_ino(ino, fs->table_size)];

	while (ip && ip->ino != ino)
		ip = ip->hash_next;
	return ip;
}

static void itable_grow(struct fs *fs)
{
	size_t nsize = fs->table_size * 2;
	struct fs_inode **nt = calloc(nsize, sizeof(*nt));

	if (!nt)
		return; /* keep the longer chains */
	for (size_t i = 0; i < fs->table_size; i++) {
		struct fs_inode *ip = fs->table[i], *next;
		for (; ip; ip = next) {
			size_t h = hash_ino(ip->ino, nsize);
			next = ip->hash_next;
			ip->hash_next = nt[h];
			nt[h] = ip;
		}
	}
	free(fs->table);
	fs->table = nt;
	fs->table_size = nsize;
}

/*
 * Find or add the in-memory inode INO, with the kernel's references to it
 * if it was idle (fs->refs, see inode_compact); NULL only when out of memory.
 */
struct fs_inode *itable_get(struct fs *fs, uint64_t ino)
{
	struct fs_inode *ip = itable_find(fs, ino);
	size_t h;

	if (ip)
		return ip;
	ip = calloc(1, sizeof(*ip));
	if (!ip)
		return NULL;
	ip->ino = ino;
	ip->fd = -1;
	ip->nlookup = reftab_take(&fs->refs, ino);
	if (fs->table_count + 1 > fs->table_size)
		itable_grow(fs);
	h = hash_ino(ino, fs->table_size);
	ip->hash_next = fs->table[h];
	fs->table[h] = ip;
	fs->table_count++;
	return ip;
}

static void itable_remove(struct fs *fs, struct fs_inode *ip)
{
	struct fs_inode **pp = &fs->table[hash_ino(ip->ino, fs->table_size)];

	while (*pp != ip)
		pp = &(*pp)->hash_next;
	*pp = ip->hash_next;
	fs->table_count--;
	if (ip->fd >= 0)
		close(ip->fd);
	chunk_bits_free(&ip->dirty);
	chunk_bits_free(&ip->remote);
	free(ip);
}

/* ---- transactions with an undo record for the cached rows ---- */

int txn_begin(struct fs *fs)
{
	int ret = meta_begin(fs->meta);

	if (ret == 0) {
		fs->in_txn = true;
		fs->txn_touched = NULL;
	}
	return ret;
}

static void txn_forget_touched(struct fs *fs)
{
	struct fs_inode *ip = fs->txn_touched, *next;

	for (; ip; ip = next) {
		next = ip->txn_next;
		ip->txn_touched = false;
		ip->txn_next = NULL;
	}
	fs->txn_touched = NULL;
	fs->in_txn = false;
}

/* Put back the cached rows the open transaction changed, and end it. */
static void txn_undo_cache(struct fs *fs)
{
	for (struct fs_inode *ip = fs->txn_touched; ip; ip = ip->txn_next) {
		ip->attr = ip->saved;
		ip->attr_valid = ip->saved_valid;
		ip->attr_dirty = ip->saved_dirty;
		ip->atime_dirty = ip->saved_atime_dirty;
	}
	txn_forget_touched(fs);
}

void txn_rollback(struct fs *fs)
{
	meta_rollback(fs->meta);
	txn_undo_cache(fs);
}

static int batch_flush(struct fs *fs);
static void doomed_reap(struct fs *fs);

/* Commit (the batch with it); on failure everything is rolled back. */
static int txn_commit(struct fs *fs)
{
	int ret = meta_commit(fs->meta);

	if (ret) {
		txn_undo_cache(fs); /* meta_commit rolled the database back */
		batch_flush(fs);    /* fatal if that took a batch with it */
	} else {
		txn_forget_touched(fs);
		doomed_reap(fs);
	}
	return ret;
}

/*
 * Group commit. Operations that change only metadata (names, modes, owners,
 * times, links, xattrs) end with txn_commit_deferred: their commit waits in
 * the batch (meta.c rules B1-B3) until FS_BATCH_MS have passed (the flusher
 * commits it), or until anything else commits, or an fsync. POSIX asks for
 * durability only at fsync; a crash loses the last few milliseconds of such
 * operations, whole, as ext4 loses the seconds since its last journal
 * commit. Nothing outside the database depends on a deferred change: a
 * cache file is removed only after its inode's deletion is committed
 * (inode_delete), a truncate commits (it is not deferred), a chunk's DIRTY
 * mark commits the batch before the bytes change, an upload's CLEAN mark and
 * the evictor's REMOTE mark commit it, and the journal, snapshots and fsync
 * commit it first. Not while the cache's disk is short of space: a
 * commit that fails there loses the batch (rule B3).
 */

/* Commit the batch; a batch SQLite rolled back is fatal (rule B3). */
static int batch_flush(struct fs *fs)
{
	int ret = meta_flush(fs->meta);

	if (meta_batch_lost(fs->meta)) {
		log_error("metadata: deferred changes were lost (%s); stopping so that the next "
			  "mount recovers a consistent state",
			  strerror(-ret));
		abort();
	}
	doomed_reap(fs);
	return ret;
}

/* Commit the open transaction into the batch (see above); on failure everything is rolled back. */
int txn_commit_deferred(struct fs *fs)
{
	bool opens = !meta_batch_open(fs->meta);
	int ret;

	/* the disk is measured when a batch opens: a few ms of operations join it unmeasured */
	if (opens && fs->tier && tier_disk_low(fs))
		return txn_commit(fs);
	ret = meta_commit_deferred(fs->meta);
	if (ret) {
		meta_rollback(fs->meta);
		txn_undo_cache(fs);
		batch_flush(fs); /* fatal if the rollback took the batch */
		return ret;
	}
	txn_forget_touched(fs);
	if (meta_batch_age_ms(fs->meta) >= fs->batch_ms)
		return batch_flush(fs);
	if (opens)
		pthread_cond_broadcast(&fs->stop_cond); /* the flusher commits it in time */
	return 0;
}

static void txn_touch(struct fs *fs, struct fs_inode *ip)
{
	if (!fs->in_txn || ip->txn_touched)
		return;
	ip->txn_touched = true;
	ip->saved = ip->attr;
	ip->saved_valid = ip->attr_valid;
	ip->saved_dirty = ip->attr_dirty;
	ip->saved_atime_dirty = ip->atime_dirty;
	ip->txn_next = fs->txn_touched;
	fs->txn_touched = ip;
}

/* ---- inode rows, through the cache ---- */

int inode_load(struct fs *fs, uint64_t ino, struct meta_inode *out)
{
	struct fs_inode *ip = itable_find(fs, ino);
	int ret;

	if (ip && ip->attr_valid) {
		*out = ip->attr;
		return 0;
	}
	ret = meta_inode_get(fs->meta, ino, out);
	if (ret == 0 && ip) {
		ip->attr = *out;
		ip->attr_valid = true;
	}
	return ret;
}

static uint64_t live_blocks(struct fs *fs, const struct fs_inode *ip, const struct meta_inode *in);

/*
 * Commit IN as the row of its inode. It holds everything writes did to the
 * inode (callers start from inode_load), so it ends the inode's WRITING mark
 * unless a write is still between its begin and end.
 */
int inode_store(struct fs *fs, const struct meta_inode *in)
{
	struct fs_inode *ip = itable_find(fs, in->ino);
	struct meta_inode row = *in;
	int ret;

	if (!ip || ip->nwrite == 0)
		row.flags &= ~META_INODE_WRITING;
	/*
	 * The blocks, counted while the cache file is at hand (stat then needs
	 * neither it nor a query); once known they stay so until the data
	 * changes (the WRITING mark, a truncate), so a chmod or utimes of an
	 * open file does not count them again.
	 */
	if (S_ISREG(row.mode) && !row.blocks_known && ip && ip->fd >= 0 &&
	    !(row.flags & META_INODE_WRITING)) {
		row.blocks = live_blocks(fs, ip, &row);
		row.blocks_known = true;
	}
	if (ip)
		txn_touch(fs, ip);
	ret = meta_inode_update(fs->meta, &row);
	if (ret == 0 && ip) {
		ip->attr = row;
		ip->attr_valid = true;
		ip->attr_dirty = false;
		ip->atime_dirty = false;
	}
	return ret;
}

/*
 * Before IP's cache file changes under a size and mtime that are not yet
 * committed (a write, fallocate): commit its WRITING mark, so that recovery
 * knows that the cache file may be newer than the row. Once per commit of
 * the row, not per write. Lock held, IP->attr loaded.
 */
static int inode_mark_writing(struct fs *fs, struct fs_inode *ip)
{
	struct meta_inode row = ip->attr;
	int ret;

	if (row.flags & META_INODE_WRITING)
		return 0;
	row.flags |= META_INODE_WRITING;
	row.blocks_known = false; /* until the commit that ends the mark (inode_store) */
	txn_touch(fs, ip);
	ret = meta_inode_update(fs->meta, &row);
	if (ret == 0) {
		ip->attr = row;
		ip->attr_dirty = false; /* the row now holds the rest too */
		ip->atime_dirty = false;
	}
	return ret;
}

/*
 * Commit IP's in-memory size and times if they are newer than its row; a
 * newer access time alone only with ATIME (it waits for the periodic flush,
 * so that reading a file costs no metadata write on close).
 */
static int inode_flush(struct fs *fs, struct fs_inode *ip, bool atime)
{
	bool writing_ended = (ip->attr.flags & META_INODE_WRITING) && ip->nwrite == 0;
	int ret;

	if (!ip->attr_valid || !(ip->attr_dirty || writing_ended || (atime && ip->atime_dirty)))
		return 0;
	if (fs->in_txn)
		return inode_store(fs, &ip->attr);
	/* deferred: if it is lost, the committed WRITING mark sends recovery to the cache file */
	ret = txn_begin(fs);
	if (ret)
		return ret;
	ret = inode_store(fs, &ip->attr);
	if (ret) {
		txn_rollback(fs);
		return ret;
	}
	return txn_commit_deferred(fs);
}

/*
 * What the REMOTE chunks of INO would take in the cache, were they local:
 * a file's st_blocks counts them, so that du, tar -S and cp --sparse see
 * its data wherever it lives (a hole in the cache file is not a hole in
 * the file). No query when the chunk bits in memory show none.
 */
static uint64_t remote_bytes(struct fs *fs, const struct fs_inode *ip, const struct meta_inode *in)
{
	uint64_t bytes = 0;
	int ret;

	if (in->size == 0 || (ip && ip->chunks_known && !chunk_bits_any(&ip->remote)))
		return 0; /* no chunk lies past the end: an upload drops such a chunk */
	ret = meta_chunk_remote_bytes_ino(fs->meta, in->ino, FS_ALLOC_BLOCK, &bytes);
	if (ret) {
		log_warn("st_blocks of inode %" PRIu64 ": %s", in->ino, strerror(-ret));
		return 0;
	}
	return bytes;
}

/* A regular file's st_blocks from its cache file and its REMOTE chunks (IP may be NULL). */
static uint64_t live_blocks(struct fs *fs, const struct fs_inode *ip, const struct meta_inode *in)
{
	struct stat cst;
	int r = ip && ip->fd >= 0 ? (fstat(ip->fd, &cst) < 0 ? -errno : 0)
				  : cache_file_stat(fs->cache, in->ino, &cst);
	uint64_t blocks = r == 0 ? (uint64_t)cst.st_blocks : 0;

	return blocks + remote_bytes(fs, ip, in) / 512;
}

static void inode_to_stat(struct fs *fs, const struct meta_inode *in, struct stat *st)
{
	struct fs_inode *ip = itable_find(fs, in->ino);

	memset(st, 0, sizeof(*st));
	st->st_ino = in->ino;
	st->st_mode = in->mode;
	st->st_nlink = in->nlink;
	st->st_uid = in->uid;
	st->st_gid = in->gid;
	st->st_rdev = in->rdev;
	st->st_size = (off_t)in->size;
	st->st_blksize = 4096;
	st->st_atim = in->atime;
	st->st_mtim = in->mtime;
	st->st_ctim = in->ctime;
	if (S_ISREG(in->mode)) {
		/*
		 * The row's count unless the cache file is open (it may be changing)
		 * or the count is unknown: the entries of a listing then cost no stat
		 * of a cache file and no query each.
		 */
		bool stored = in->blocks_known && !(in->flags & META_INODE_WRITING) &&
			      !(ip && ip->fd >= 0);
		st->st_blocks = (blkcnt_t)(stored ? in->blocks : live_blocks(fs, ip, in));
	} else if (S_ISDIR(in->mode)) {
		st->st_blocks = 8;
	}
}

/*
 * Deferred deletions. An inode's deletion joins the batch like any other
 * metadata change, but its cache file may go only once the deletion is
 * committed (meta.c rule B1: a crash before the commit brings the inode
 * back, with its bytes). fs->doomed lists the inodes deleted in a batch not
 * yet committed; doomed_reap removes their cache files once no batch is
 * open (every commit path ends with it, and the flusher). Inode numbers are
 * never reused (AUTOINCREMENT), so a doomed number names no other file in
 * between.
 */
static void doomed_reap(struct fs *fs)
{
	if (fs->doomed.n == 0 || meta_batch_open(fs->meta))
		return;
	for (size_t i = 0; i < fs->doomed.n; i++) {
		int ret = cache_file_remove(fs->cache, fs->doomed.v[i]);
		if (ret)
			log_warn("removing cache file of inode %" PRIu64 ": %s", fs->doomed.v[i],
				 strerror(-ret));
	}
	fs->doomed.n = 0;
}

/* Delete inode IP->ino (no links left, no references) with its data. */
static int inode_delete(struct fs *fs, uint64_t ino)
{
	int ret = fs->in_txn ? -EBUSY : txn_begin(fs);

	if (ret == 0) {
		ret = meta_inode_delete(fs->meta, ino);
		if (ret == 0)
			ret = txn_commit_deferred(fs);
		else
			txn_rollback(fs);
	}
	/* the cache file goes only once its deletion is committed (see above) */
	if (ret == 0 && meta_batch_open(fs->meta) && u64_list_add(&fs->doomed, ino) == 0)
		return 0;
	if (ret == 0)
		ret = batch_flush(fs);
	if (ret) {
		log_error("deleting inode %" PRIu64 ": %s", ino, strerror(-ret));
		return ret;
	}
	ret = cache_file_remove(fs->cache, ino);
	if (ret)
		log_warn("removing cache file of inode %" PRIu64 ": %s", ino, strerror(-ret));
	return 0;
}

/*
 * An inode the kernel still references but nothing in the daemon uses (no
 * handle, read, write, fetch or fsync; nothing in memory newer than its
 * row, its upload delay over) leaves the table: the kernel's count of it
 * goes to fs->refs, 16 bytes instead of a struct fs_inode (reftab.h), so
 * that the daemon's memory does not follow the inodes the kernel keeps.
 * itable_get brings it back with its count. An idle inode is linked: one
 * whose last link goes stays in the table (inode_unlinked), so the kernel's
 * last forget of an idle inode only drops its count, with no look at its row.
 */
static void inode_compact(struct fs *fs, struct fs_inode *ip)
{
	struct meta_inode in;

	if (ip->nwrite > 0 || ip->nsync > 0 || ip->txn_touched || ip->atime_dirty)
		return; /* the periodic flush stores the access time, and compacts it then */
	if (inode_flush(fs, ip, false) || ip->attr_dirty)
		return;
	if (inode_load(fs, ip->ino, &in) || in.nlink == 0)
		return; /* unlinked: its last forget deletes it (fs_forget) */
	if (!fs->stopping && tier_write_is_recent(fs, ip))
		return;
	if (reftab_add(&fs->refs, ip->ino, ip->nlookup))
		return; /* no room for the entry: the inode stays */
	itable_remove(fs, ip);
}

/*
 * Drop IP from memory if nothing references it, or compact it if only the
 * kernel does; delete the inode if unlinked.
 */
void inode_maybe_free(struct fs *fs, struct fs_inode *ip)
{
	struct meta_inode in;

	if (ip->nopen > 0 || ip->nread > 0 || ip->nfetch > 0 || ip->ino == META_ROOT_INO)
		return;
	if (ip->nlookup > 0) {
		inode_compact(fs, ip);
		return;
	}
	if (inode_load(fs, ip->ino, &in) == 0) {
		if (in.nlink == 0)
			inode_delete(fs, ip->ino);
		else if (inode_flush(fs, ip, true))
			log_error("inode %" PRIu64 ": size and times not saved", ip->ino);
		else if (!fs->stopping && tier_write_is_recent(fs, ip))
			return; /* kept for its upload delay; fs_flush_all frees it later */
	}
	itable_remove(fs, ip);
}

/*
 * After the last link went: delete INO now if the kernel does not know it;
 * else its last forget deletes it, so an idle inode comes back to the table
 * (idle inodes are linked: inode_compact).
 */
static void inode_unlinked(struct fs *fs, uint64_t ino)
{
	struct fs_inode *ip = itable_find(fs, ino);

	if (!ip && reftab_get(&fs->refs, ino) == 0) {
		inode_delete(fs, ino);
		return;
	}
	if (!ip)
		ip = itable_get(fs, ino);
	if (ip)
		inode_maybe_free(fs, ip);
	else
		log_error("inode %" PRIu64 ": out of memory; deleted at the next mount", ino);
}

/* Make sure IP's cache file is open; a new one is sized to the file. */
static int inode_open_fd(struct fs *fs, struct fs_inode *ip)
{
	struct stat st;
	int fd;

	if (ip->fd >= 0)
		return 0;
	fd = cache_file_open(fs->cache, ip->ino, true);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != ip->attr.size) {
		if (ftruncate(fd, (off_t)ip->attr.size) < 0) {
			int ret = -errno;
			close(fd);
			return ret;
		}
	}
	ip->fd = fd;
	return 0;
}

static void inode_close_fd_if_unused(struct fs_inode *ip)
{
	if (ip->nopen == 0 && ip->fd >= 0) {
		close(ip->fd);
		ip->fd = -1;
	}
}

/* ---- chunk marks ---- */

struct chunk_load {
	struct fs *fs;
	struct fs_inode *ip;
};

static int chunk_load_cb(void *arg, uint64_t idx, enum meta_chunk_state state)
{
	struct chunk_load *cl = arg;
	struct fs_inode *ip = cl->ip;

	/*
	 * A dirty bit says that the next write needs no new DIRTY mark. Not so
	 * for a chunk an upload is reading: its mark predates the upload, which
	 * may have begun before this inode was in the table (so nobody cleared
	 * the bit for it, tier/upload.c rule 2), and a write trusting that mark
	 * would let the upload land as CLEAN over bytes it never read.
	 */
	if (state == CHUNK_DIRTY)
		return tier_chunk_uploading(cl->fs, ip->ino, idx) ? 0
								  : chunk_bits_set(&ip->dirty, idx);
	if (state == CHUNK_REMOTE)
		return chunk_bits_set(&ip->remote, idx);
	return 0;
}

int chunks_load(struct fs *fs, struct fs_inode *ip)
{
	struct chunk_load cl = {fs, ip};
	int ret;

	if (ip->chunks_known)
		return 0;
	ret = meta_chunk_list(fs->meta, ip->ino, chunk_load_cb, &cl);
	if (ret) {
		chunk_bits_free(&ip->dirty);
		chunk_bits_free(&ip->remote);
		return ret;
	}
	ip->chunks_known = true;
	return 0;
}

/* Commit DIRTY marks for chunks FIRST..LAST of IP that do not have one yet. */
static int chunks_mark_dirty(struct fs *fs, struct fs_inode *ip, uint64_t first, uint64_t last)
{
	int ret = chunks_load(fs, ip);

	for (uint64_t idx = first; ret == 0 && idx <= last; idx++) {
		if (chunk_bits_test(&ip->dirty, idx))
			continue;
		ret = meta_chunk_set_dirty(fs->meta, ip->ino, idx, now_ts().tv_sec);
		if (ret > 0)
			tier_note_dirty(fs, 1, 0);
		if (ret >= 0)
			ret = chunk_bits_set(&ip->dirty, idx);
		chunk_bits_clear(&ip->remote, idx, idx);
	}
	return ret;
}

/* Forget chunk rows FIRST..LAST (they became holes). */
static int chunks_drop(struct fs *fs, struct fs_inode *ip, uint64_t first, uint64_t last)
{
	int ret = meta_chunk_delete_range(fs->meta, ip->ino, first, last);

	if (ret == 0) {
		chunk_bits_clear(&ip->dirty, first, last);
		chunk_bits_clear(&ip->remote, first, last);
	}
	return ret;
}

/*
 * Bytes OFF..OFF+LEN-1 of IP (LEN UINT64_MAX: all from OFF) were written or
 * cut away: they are no longer lost (meta restore.c). Costs nothing for a
 * file without lost ranges. The caller stores IP's row.
 */
static int lost_forget(struct fs *fs, struct fs_inode *ip, uint64_t off, uint64_t len)
{
	int ret;

	if (!(ip->attr.flags & META_INODE_LOST))
		return 0;
	ret = meta_lost_clear(fs->meta, ip->ino, off, len);
	if (ret == 0) {
		ip->attr.flags &= ~META_INODE_LOST;
		ip->attr_dirty = true;
	}
	return ret < 0 ? ret : 0;
}

/*
 * Truncate IP to SIZE, inside the caller's transaction (the caller holds
 * the lock, has loaded IP->attr and stores it after): chunks wholly past
 * the new end go, the one holding it is marked DIRTY, and the cache file is
 * cut before the commit — on a full disk that is what makes room for the
 * commit. A crash in between leaves the cache file shorter than the row:
 * recovery takes it as the truncate having happened (recover_file_size).
 */
static int inode_truncate(struct fs *fs, struct fs_inode *ip, uint64_t size)
{
	uint64_t cs = fs->chunk_size, old = ip->attr.size;
	int ret;

	ret = inode_open_fd(fs, ip);
	if (ret)
		return ret;
	if (size < old) {
		/* chunks wholly past the end go; the one holding the new end changes */
		uint64_t first_gone = (size + cs - 1) / cs;
		ret = chunks_drop(fs, ip, first_gone, UINT64_MAX);
		if (ret == 0 && size % cs)
			ret = chunks_mark_dirty(fs, ip, size / cs, size / cs);
		if (ret)
			goto out;
	}
	if (ftruncate(ip->fd, (off_t)size) < 0)
		ret = -errno;
	else
		ip->attr.size = size;
	if (ret == 0)
		ret = lost_forget(fs, ip, size, UINT64_MAX);
out:
	inode_close_fd_if_unused(ip);
	return ret;
}

/* "16MiB" or "64KiB" for a chunk size (a power of two of at least 1 KiB), in BUF. */
static const char *size_name(uint32_t v, char *buf, size_t size)
{
	if (v % (1u << 20) == 0)
		snprintf(buf, size, "%" PRIu32 "MiB", v >> 20);
	else
		snprintf(buf, size, "%" PRIu32 "KiB", v >> 10);
	return buf;
}

/* ---- lifecycle ---- */

/*
 * A cache file shorter than its row, the file not being written: a truncate
 * cut it (inode_truncate cuts before it commits) and the crash came before
 * the commit. The truncate happened — its bytes are gone, and growing the
 * file back would give it zeros it never held (an uploaded chunk would even
 * read its old bytes again once evicted) —: the file takes the cache
 * file's size and time, its chunks past the end go, and the chunk holding
 * the end, whose bytes changed, is DIRTY.
 */
static int recover_truncate(struct fs *fs, struct meta_inode *in, const struct stat *st)
{
	uint64_t cs = fs->chunk_size, size = (uint64_t)st->st_size;
	struct meta_chunk ch;
	int ret;

	log_warn("recovery: inode %" PRIu64 ": a truncate from %" PRIu64 " to %" PRIu64
		 " bytes was under way; it is done",
		 in->ino, in->size, size);
	in->size = size;
	in->blocks_known = false;
	if (!ts_le(st->st_mtim, in->mtime))
		in->mtime = in->ctime = st->st_mtim;
	ret = meta_chunk_delete_range(fs->meta, in->ino, (size + cs - 1) / cs, UINT64_MAX);
	if (ret == 0 && size % cs && meta_chunk_get(fs->meta, in->ino, size / cs, &ch) == 0)
		ret = meta_chunk_set_dirty(fs->meta, in->ino, size / cs, now_ts().tv_sec);
	return ret < 0 ? ret : meta_inode_update(fs->meta, in);
}

/*
 * After a crash: a file that was being written (META_INODE_WRITING) takes
 * its size, and its mtime where newer, from its cache file, where the
 * writes landed. Every other file keeps its row (its cache file's mtime
 * says when a fetch or an eviction last touched it, nothing about the
 * file), but for a truncate under way (recover_truncate); a cache file
 * longer than the row (a truncate that grew the file, uncommitted) is cut
 * back to it.
 */
static int recover_file_size(void *arg, uint64_t ino)
{
	struct fs *fs = arg;
	struct meta_inode in;
	struct stat st;
	int ret;

	if (meta_inode_get(fs->meta, ino, &in) || cache_file_stat(fs->cache, ino, &st))
		return 0;
	if (!(in.flags & META_INODE_WRITING)) {
		if ((uint64_t)st.st_size == in.size)
			return 0;
		if ((uint64_t)st.st_size < in.size)
			return recover_truncate(fs, &in, &st);
		log_warn("recovery: inode %" PRIu64
			 ": cache file of %lld bytes cut to its size %" PRIu64,
			 ino, (long long)st.st_size, in.size);
		ret = cache_file_truncate(fs->cache, ino, in.size);
		if (ret)
			log_error("recovery: inode %" PRIu64 ": %s", ino, strerror(-ret));
		return 0;
	}
	log_warn("recovery: inode %" PRIu64 " was being written: size %" PRIu64
		 " -> %lld from its cache file",
		 ino, in.size, (long long)st.st_size);
	in.size = (uint64_t)st.st_size;
	in.blocks_known = false;
	if (!ts_le(st.st_mtim, in.mtime))
		in.mtime = in.ctime = st.st_mtim;
	in.flags &= ~META_INODE_WRITING;
	/* marks of writes whose bytes never landed lie past that size: they go */
	ret = meta_chunk_delete_range(fs->meta, ino,
				      (in.size + fs->chunk_size - 1) / fs->chunk_size, UINT64_MAX);
	return ret ? ret : meta_inode_update(fs->meta, &in);
}

static int delete_orphan(void *arg, uint64_t ino)
{
	return inode_delete(arg, ino);
}

static int remove_stray_cache_file(void *arg, uint64_t ino)
{
	struct fs *fs = arg;
	struct meta_inode in;

	if (meta_inode_get(fs->meta, ino, &in) == -ENOENT) {
		log_warn("removing cache file of unknown inode %" PRIu64, ino);
		cache_file_remove(fs->cache, ino);
	}
	return 0;
}

static void log_problem(void *arg, const char *problem)
{
	(void)arg;
	log_warn("fsck: %s", problem);
}

/*
 * Commits the batch of deferred metadata FS_BATCH_MS after it opened, and
 * every FS_FLUSH_INTERVAL_S the sizes and times of files being written.
 */
static void *flusher_main(void *arg)
{
	struct fs *fs = arg;
	struct timespec next_all = clock_after_ms(CLOCK_REALTIME, FS_FLUSH_INTERVAL_S * 1000);

	pthread_mutex_lock(&fs->lock);
	while (!fs->stopping) {
		struct timespec until = next_all;
		int64_t age = meta_batch_age_ms(fs->meta);

		if (meta_batch_open(fs->meta)) {
			struct timespec due = clock_after_ms(
			    CLOCK_REALTIME, age < fs->batch_ms ? fs->batch_ms - age : 0);
			if (!ts_le(until, due))
				until = due;
		}
		pthread_cond_timedwait(&fs->stop_cond, &fs->lock, &until);
		if (fs->stopping)
			break;
		if (meta_batch_age_ms(fs->meta) >= fs->batch_ms || meta_batch_lost(fs->meta))
			batch_flush(fs);
		doomed_reap(fs); /* also after a commit of the batch elsewhere */
		if (ts_le(next_all, now_ts())) {
			pthread_mutex_unlock(&fs->lock);
			fs_flush_all(fs);
			pthread_mutex_lock(&fs->lock);
			next_all = clock_after_ms(CLOCK_REALTIME, FS_FLUSH_INTERVAL_S * 1000);
		}
	}
	pthread_mutex_unlock(&fs->lock);
	return NULL;
}

/* The journal's view of the lease (journal/lease.h); no lease: generation 0, never fenced. */
static uint32_t lease_gen_of(void *arg)
{
	return arg ? (uint32_t)lease_generation(arg) : 0;
}

static bool lease_fenced_of(void *arg)
{
	return arg && lease_fenced(arg);
}

int fs_new(const struct fs_options *opt, struct fs **out, char *err, size_t errlen)
{
	char db_path[4096], buf[64];
	bool opt_store_taken = false;
	struct fs *fs;
	int ret;

	fs = calloc(1, sizeof(*fs));
	if (!fs) {
		objstore_free(opt->store);
		return -ENOMEM;
	}
	pthread_mutex_init(&fs->lock, NULL);
	pthread_cond_init(&fs->stop_cond, NULL);
	pthread_cond_init(&fs->fetch_cond, NULL);
	fs->lease = opt->lease;
	fs->batch_ms = opt->batch_ms ? opt->batch_ms : FS_BATCH_MS;
	fs->writeback_cache = opt->writeback_cache;
	fs->table_size = 1024;
	fs->table = calloc(fs->table_size, sizeof(*fs->table));
	if (!fs->table) {
		ret = -ENOMEM;
		goto out_free;
	}
	ret = cache_open(opt->cache_dir, &fs->cache);
	if (ret) {
		snprintf(err, errlen, "cannot open cache %s: %s", opt->cache_dir, strerror(-ret));
		goto out_free;
	}
	if (opt->db_path)
		snprintf(db_path, sizeof(db_path), "%s", opt->db_path);
	else
		snprintf(db_path, sizeof(db_path), "%s/meta.db", opt->cache_dir);
	ret = meta_open(db_path, opt->chunk_size ? opt->chunk_size : FS_DEFAULT_CHUNK_SIZE,
			getuid(), getgid(), &fs->meta);
	if (ret) {
		snprintf(err, errlen, "cannot open metadata %s: %s", db_path, strerror(-ret));
		goto out_free;
	}
	/* every change from here on is shipped to the bucket (src/journal/) */
	if (opt->store && !opt->readonly && (ret = meta_changes_start(fs->meta)) != 0) {
		snprintf(err, errlen, "cannot record the changes of %s: %s", db_path,
			 strerror(-ret));
		goto out_free;
	}
	ret = meta_setting_get(fs->meta, "chunk_size", buf, sizeof(buf));
	fs->chunk_size = ret == 0 ? (uint32_t)strtoul(buf, NULL, 10) : 0;
	fs->capacity = opt->capacity ? opt->capacity : FS_DEFAULT_CAPACITY;
	if (fs->chunk_size < 4096 || (fs->chunk_size & (fs->chunk_size - 1))) {
		snprintf(err, errlen, "metadata %s: bad chunk size '%s'", db_path, buf);
		ret = -EUCLEAN;
		goto out_free;
	}
	if (opt->chunk_size && opt->chunk_size != fs->chunk_size) {
		char want[16], have[16];
		snprintf(err, errlen,
			 "chunkSize is %s, but the filesystem in %s was created with %s chunks "
			 "(the chunk size is fixed when a filesystem is created)",
			 size_name(opt->chunk_size, want, sizeof(want)), opt->cache_dir,
			 size_name(fs->chunk_size, have, sizeof(have)));
		ret = -EINVAL;
		goto out_free;
	}

	xattr_rare_names_load(fs);
	if (meta_setting_get(fs->meta, "clean", buf, sizeof(buf)) == 0 && strcmp(buf, "0") == 0) {
		log_warn("the last mount of %s did not stop cleanly; checking", opt->cache_dir);
		ret = meta_check(fs->meta, true, log_problem, NULL);
		if (ret > 0)
			log_warn("fsck: repaired %d problems", ret);
		if (ret >= 0)
			ret = meta_file_list(fs->meta, recover_file_size, fs);
		if (ret < 0) {
			snprintf(err, errlen, "recovery of %s failed: %s", db_path, strerror(-ret));
			goto out_free;
		}
	}
	ret = meta_orphan_list(fs->meta, delete_orphan, fs);
	if (ret == 0)
		ret = batch_flush(fs); /* their cache files go: not strays */
	if (ret == 0)
		ret = cache_file_list(fs->cache, remove_stray_cache_file, fs);
	if (ret == 0)
		ret = meta_setting_set(fs->meta, "clean", "0");
	if (ret == 0)
		ret = meta_sync(fs->meta);
	doomed_reap(fs);
	if (ret) {
		snprintf(err, errlen, "cannot prepare %s: %s", db_path, strerror(-ret));
		goto out_free;
	}
	/* the root is never forgotten by the kernel: keep it in the table */
	if (!itable_get(fs, META_ROOT_INO)) {
		ret = -ENOMEM;
		goto out_free;
	}
	if (opt->store) {
		ret = tier_init(fs, opt, err, errlen);
		opt_store_taken = true;
		if (ret)
			goto out_free;
	}
	if (opt->store && !opt->readonly) {
		struct journal_options jo = {
		    .store = opt->store,
		    .keys = tier_keys(fs),
		    .meta = fs->meta,
		    .lock = &fs->lock,
		    .sync_interval_ms = opt->metadata_sync_ms,
		    .snapshot_interval_s = opt->snapshot_interval_s,
		    .retention_s = opt->retention_s,
		    .restored = opt->restored,
		    .force = opt->force,
		    .generation = lease_gen_of,
		    .fenced = lease_fenced_of,
		    .lease_arg = opt->lease,
		};
		ret = journal_open(&jo, &fs->journal, err, errlen);
		if (ret)
			goto out_free;
		fs->sync_upload = opt->sync_upload;
		fs->sync_timeout_s =
		    opt->backpressure_timeout_s ? opt->backpressure_timeout_s : 300;
	}
	*out = fs;
	return 0;

out_free:
	if (!opt_store_taken)
		objstore_free(opt->store);
	journal_free(fs->journal);
	tier_free(fs);
	for (size_t i = 0; fs->table && i < fs->table_size; i++)
		while (fs->table[i])
			itable_remove(fs, fs->table[i]);
	meta_close(fs->meta);
	cache_close(fs->cache);
	u64_list_free(&fs->doomed);
	reftab_free(&fs->refs);
	free(fs->table);
	free(fs);
	return ret;
}

int fs_start(struct fs *fs)
{
	int ret = pthread_create(&fs->flusher, NULL, flusher_main, fs);

	if (ret)
		return -ret;
	fs->flusher_running = true;
	/* the WAL's copy into the database stops holding up requests (backfill.c) */
	if (meta_backfill_start(fs->meta) != 0)
		log_warn("metadata: the WAL is copied inside commits, under the lock");
	if (fs->journal && (ret = journal_start(fs->journal)) != 0)
		return ret;
	return fs->tier ? tier_start(fs) : 0;
}

bool fs_readonly(const struct fs *fs)
{
	return fs->lease && lease_fenced(fs->lease);
}

int fs_flush_all(struct fs *fs)
{
	int ret = 0, first = 0;

	pthread_mutex_lock(&fs->lock);
	for (size_t i = 0; i < fs->table_size; i++) {
		struct fs_inode *ip, *next;
		for (ip = fs->table[i]; ip; ip = next) {
			next = ip->hash_next;
			if ((ret = inode_flush(fs, ip, true)) && !first)
				first = ret;
			else if (!ret)
				inode_maybe_free(fs, ip); /* its upload delay may be over */
		}
	}
	pthread_mutex_unlock(&fs->lock);
	return first;
}

int fs_free(struct fs *fs)
{
	size_t unreleased = 0;
	int ret, ret2;

	pthread_mutex_lock(&fs->lock);
	fs->stopping = true;
	pthread_cond_broadcast(&fs->stop_cond);
	pthread_mutex_unlock(&fs->lock);
	if (fs->flusher_running)
		pthread_join(fs->flusher, NULL);
	if (fs->tier)
		tier_stop(fs);

	ret = fs_flush_all(fs);
	/* the kernel is gone: nobody holds the unlinked-but-open files any more */
	ret2 = meta_orphan_list(fs->meta, delete_orphan, fs);
	if (!ret)
		ret = ret2;
	if (!ret)
		ret = meta_setting_set(fs->meta, "clean", "1");
	ret2 = meta_sync(fs->meta);
	if (!ret)
		ret = ret2;
	doomed_reap(fs);
	/* the bucket gets the last changes, the clean mark among them */
	if (fs->journal)
		journal_stop(fs->journal);
	journal_free(fs->journal);
	fs->journal = NULL;
	/* handles never released: a signal ended the session with files open */
	for (struct fs_file *fh = fs->files, *next; fh; fh = next) {
		next = fh->next;
		free(fh);
		unreleased++;
	}
	if (unreleased)
		log_warn("files still open when the session ended: %zu", unreleased);
	for (size_t i = 0; i < fs->table_size; i++)
		while (fs->table[i])
			itable_remove(fs, fs->table[i]);
	tier_free(fs);
	meta_close(fs->meta);
	cache_close(fs->cache);
	u64_list_free(&fs->doomed);
	reftab_free(&fs->refs);
	free(fs->table);
	pthread_cond_destroy(&fs->fetch_cond);
	pthread_cond_destroy(&fs->stop_cond);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
	return ret;
}

/* ---- names ---- */

static int lookup_locked(struct fs *fs, uint64_t parent, const char *name, uint64_t *ino)
{
	struct meta_inode dir;
	int ret = check_name(name);

	if (ret)
		return ret;
	ret = inode_load(fs, parent, &dir);
	if (ret)
		return ret;
	if (!S_ISDIR(dir.mode))
		return -ENOTDIR;
	if (strcmp(name, ".") == 0) {
		*ino = parent;
		return 0;
	}
	if (strcmp(name, "..") == 0)
		return meta_dir_parent(fs->meta, parent, ino);
	return meta_dentry_lookup(fs->meta, parent, name, ino);
}

/* Count a reference of the kernel to inode INO: in the table, or else in fs->refs. */
static int kernel_ref(struct fs *fs, uint64_t ino)
{
	struct fs_inode *ip = itable_find(fs, ino);

	if (!ip)
		return reftab_add(&fs->refs, ino, 1);
	ip->nlookup++;
	return 0;
}

/* Give inode IN to the kernel: count the reference and fill ST. */
static int hand_out(struct fs *fs, const struct meta_inode *in, struct stat *st)
{
	struct fs_inode *ip = itable_find(fs, in->ino);

	if (!ip) {
		int ret = reftab_add(&fs->refs, in->ino, 1); /* idle: a count is enough */
		if (ret == 0)
			inode_to_stat(fs, in, st);
		return ret;
	}
	if (!ip->attr_valid) {
		ip->attr = *in;
		ip->attr_valid = true;
	}
	ip->nlookup++;
	inode_to_stat(fs, &ip->attr, st);
	return 0;
}

int fs_lookup(struct fs *fs, uint64_t parent, const char *name, struct stat *st)
{
	struct meta_inode in;
	uint64_t ino;
	int ret;

	pthread_mutex_lock(&fs->lock);
	ret = lookup_locked(fs, parent, name, &ino);
	if (ret == 0)
		ret = inode_load(fs, ino, &in);
	if (ret == 0)
		ret = hand_out(fs, &in, st);
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

void fs_forget(struct fs *fs, uint64_t ino, uint64_t nlookup)
{
	struct fs_inode *ip;

	pthread_mutex_lock(&fs->lock);
	ip = itable_find(fs, ino);
	if (!ip) {
		/* an idle inode: its count is in fs->refs; linked, nothing to save */
		uint64_t have = reftab_take(&fs->refs, ino);
		if (have > nlookup)
			reftab_add(&fs->refs, ino, have - nlookup); /* fits: it was there */
	}
	if (ip) {
		if (ip->nlookup < nlookup) {
			log_error("forget of %" PRIu64 " below zero (%" PRIu64 " < %" PRIu64 ")",
				  ino, ip->nlookup, nlookup);
			ip->nlookup = 0;
		} else {
			ip->nlookup -= nlookup;
		}
		inode_maybe_free(fs, ip);
	}
	pthread_mutex_unlock(&fs->lock);
}

int fs_getattr(struct fs *fs, uint64_t ino, struct stat *st)
{
	struct meta_inode in;
	int ret;

	pthread_mutex_lock(&fs->lock);
	ret = inode_load(fs, ino, &in);
	if (ret == 0)
		inode_to_stat(fs, &in, st);
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

/*
 * The set-id bits of IN that CTX changing its owner takes away, as Linux
 * decides for ext4 (setattr_should_drop_sgid): setuid always; setgid when
 * group-executable, or when CTX is neither root (CAP_FSETID) nor in the
 * file's group — without group-execute it is no set-id bit (a mandatory
 * locking mark), kept for those who may set it.
 */
static mode_t setid_lost(const struct meta_inode *in, const struct fs_ctx *ctx)
{
	mode_t kill = in->mode & S_ISUID;

	if ((in->mode & S_ISGID) &&
	    ((in->mode & S_IXGRP) || (ctx->uid != 0 && !ctx->in_group(ctx, in->gid))))
		kill |= S_ISGID;
	return kill;
}

/*
 * The set-id bits a write or truncate of IN by CTX clears: those of
 * setid_lost(), of a regular file, unless CTX is root (CAP_FSETID). With
 * FUSE's HANDLE_KILLPRIV_V2 the kernel leaves this to the filesystem; without
 * it, it clears them first through setattr, and this finds nothing left.
 * No CTX (a write-back of the kernel's page cache): nothing.
 */
static mode_t setid_lost_to_write(const struct meta_inode *in, const struct fs_ctx *ctx)
{
	if (!ctx || ctx->uid == 0 || !S_ISREG(in->mode))
		return 0;
	return setid_lost(in, ctx);
}

/*
 * Before truncating IP to SIZE (lock held, outside a transaction): fetch
 * the chunk that will hold the new end, then wait for fetches into the
 * file to finish, so that none writes past the new end.
 */
static int prepare_truncate(struct fs *fs, struct fs_inode *ip, off_t size)
{
	uint64_t cs = fs->chunk_size;
	int ret;

	if (size < 0)
		return 0; /* refused later */
	ret = chunks_load(fs, ip);
	if (ret == 0 && (uint64_t)size % cs && (uint64_t)size < ip->attr.size)
		ret = tier_make_local(fs, ip, (uint64_t)size / cs, (uint64_t)size / cs);
	if (ret == 0)
		tier_wait_fetches(fs, ip);
	return ret;
}

int fs_setattr(struct fs *fs, const struct fs_ctx *ctx, uint64_t ino, struct fs_file *fh,
	       const struct stat *attr, int to_set, struct stat *st)
{
	struct timespec now = now_ts();
	struct fs_inode *ip;
	struct meta_inode in;
	int ret;

	pthread_mutex_lock(&fs->lock);
	ip = fh ? fh->ip : itable_get(fs, ino);
	if (!ip) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	ret = inode_load(fs, ino, &in);
	if (ret == 0)
		ret = fileflags_check_setattr(&in, to_set);
	if (ret)
		goto out_unlock;
	if ((to_set & FS_SET_SIZE) && S_ISREG(in.mode) && fs->tier) {
		/* the chunk that will hold the new end must be local; no fetch may run */
		ret = prepare_truncate(fs, ip, attr->st_size);
		if (ret == 0)
			ret = inode_load(fs, ino, &in);
		if (ret)
			goto out_unlock;
	}
	ret = txn_begin(fs);
	if (ret)
		goto out_unlock;
	if (to_set & FS_SET_SIZE) {
		if (S_ISDIR(in.mode)) {
			ret = -EISDIR;
			goto out_rollback;
		}
		if (!S_ISREG(in.mode)) {
			ret = -EINVAL;
			goto out_rollback;
		}
		if (attr->st_size < 0) {
			ret = -EINVAL;
			goto out_rollback;
		}
		if ((uint64_t)attr->st_size > FS_MAX_FILE_SIZE) {
			ret = -EFBIG;
			goto out_rollback;
		}
		txn_touch(fs, ip);
		ret = inode_truncate(fs, ip, (uint64_t)attr->st_size);
		if (ret)
			goto out_rollback;
		/* like ext4, even a truncate to the same size is a modification */
		in.mtime = now;
		in.size = (uint64_t)attr->st_size;
		in.blocks_known = false; /* counted again by inode_store if the cache file is open */
	}
	if (to_set & FS_SET_MODE) {
		in.mode = (in.mode & S_IFMT) | (attr->st_mode & 07777);
		ret = acl_chmod(fs, &in); /* the access ACL follows the mode */
		if (ret)
			goto out_rollback;
	}
	if (to_set & FS_SET_SIZE)
		in.mode &= ~setid_lost_to_write(&in, ctx);
	/*
	 * chown, even to the same owner, clears set-id bits of all but
	 * directories. So does a setattr with nothing to set: a chown(-1, -1),
	 * or the kernel clearing them before a write or fallocate by someone
	 * without CAP_FSETID (with HANDLE_KILLPRIV_V2 it no longer sends the mode).
	 */
	if (((to_set & (FS_SET_UID | FS_SET_GID)) || (to_set & ~FS_SET_CTIME) == 0) &&
	    !S_ISDIR(in.mode))
		in.mode &= ~setid_lost(&in, ctx);
	if (to_set & FS_SET_UID)
		in.uid = attr->st_uid;
	if (to_set & FS_SET_GID)
		in.gid = attr->st_gid;
	if (to_set & FS_SET_ATIME_NOW)
		in.atime = now;
	else if (to_set & FS_SET_ATIME)
		in.atime = attr->st_atim;
	if (to_set & FS_SET_MTIME_NOW)
		in.mtime = now;
	else if (to_set & FS_SET_MTIME)
		in.mtime = attr->st_mtim;
	in.ctime = (to_set & FS_SET_CTIME) ? attr->st_ctim : now;
	ret = inode_store(fs, &in);
	if (ret)
		goto out_rollback;
	ret = (to_set & FS_SET_SIZE) ? txn_commit(fs) : txn_commit_deferred(fs);
	if (ret == 0)
		inode_to_stat(fs, &in, st);
	goto out_unlock;

out_rollback:
	txn_rollback(fs);
out_unlock:
	if (ip && !fh)
		inode_maybe_free(fs, ip);
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

int fs_readlink(struct fs *fs, uint64_t ino, char *buf, size_t size, size_t *len)
{
	struct meta_inode in;
	int ret;

	pthread_mutex_lock(&fs->lock);
	ret = inode_load(fs, ino, &in);
	if (ret == 0 && !S_ISLNK(in.mode))
		ret = -EINVAL;
	if (ret == 0)
		ret = meta_symlink_get(fs->meta, ino, buf, size, len);
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

/*
 * Create inode MODE/RDEV (TARGET for a symlink) named NAME in PARENT, owned
 * by the caller, with setgid-directory inheritance as on ext4. On success
 * the kernel gets a reference (ST filled); *IPP, if given, is the inode.
 */
static int new_node(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name,
		    mode_t mode, dev_t rdev, const char *target, struct stat *st,
		    struct fs_inode **ipp)
{
	struct meta_inode dir, in = {0};
	struct timespec now = now_ts();
	struct acl_inherit inh = {0};
	uint64_t existing;
	int ret;

	ret = check_name(name);
	if (ret)
		return ret;
	ret = inode_load(fs, parent, &dir);
	if (ret)
		return ret;
	if (!S_ISDIR(dir.mode))
		return -ENOTDIR;
	if (dir.nlink == 0)
		return -ENOENT; /* removed directory */
	ret = meta_dentry_lookup(fs->meta, parent, name, &existing);
	if (ret == 0)
		return -EEXIST;
	if (ret != -ENOENT)
		return ret;
	ret = fileflags_check_dir_add(&dir);
	if (ret)
		return ret;
	if (S_ISDIR(mode) && dir.nlink >= FS_LINK_MAX)
		return -EMLINK;

	in.mode = mode;
	in.uid = ctx->uid;
	in.gid = ctx->gid;
	if (dir.mode & S_ISGID) {
		in.gid = dir.gid;
		if (S_ISDIR(mode))
			in.mode |= S_ISGID;
		else if ((in.mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) && ctx->uid != 0 &&
			 !ctx->in_group(ctx, in.gid))
			in.mode &= ~(mode_t)S_ISGID;
	}
	in.nlink = S_ISDIR(mode) ? 2 : 1;
	in.rdev = (S_ISCHR(mode) || S_ISBLK(mode)) ? rdev : 0;
	in.size = S_ISDIR(mode) ? 4096 : target ? strlen(target) : 0;
	in.atime = in.mtime = in.ctime = in.btime = now;
	in.blocks_known = true; /* none: a regular file gets its cache file at its first write */
	/* the directory's default ACL, or else the umask, masks the mode */
	ret = acl_inherit_prepare(fs, parent, &in.mode, ctx->umask, &inh);
	if (ret)
		goto out_release_acl;

	ret = txn_begin(fs);
	if (ret)
		goto out_release_acl;
	ret = meta_inode_insert(fs->meta, &in, target, target ? strlen(target) : 0);
	if (ret == 0)
		ret = acl_inherit_store(fs, in.ino, &inh);
	if (ret)
		goto out_rollback;
	ret = meta_dentry_insert(fs->meta, parent, name, in.ino);
	if (ret)
		goto out_rollback;
	dir.mtime = dir.ctime = now;
	if (S_ISDIR(mode))
		dir.nlink++;
	ret = inode_store(fs, &dir);
	if (ret)
		goto out_rollback;
	ret = txn_commit_deferred(fs);
	if (ret)
		goto out_release_acl;
	if (ipp) {
		/* the caller opens it: the whole inode, and its writes may join this batch */
		struct fs_inode *ip = itable_get(fs, in.ino);
		if (!ip) {
			ret = -ENOMEM;
			goto out_release_acl;
		}
		ip->born_batch = meta_batch_id(fs->meta);
		*ipp = ip;
	}
	ret = hand_out(fs, &in, st);
	goto out_release_acl;

out_rollback:
	txn_rollback(fs);
out_release_acl:
	acl_inherit_release(&inh);
	return ret;
}

int fs_mknod(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name,
	     mode_t mode, dev_t rdev, struct stat *st)
{
	int ret;

	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		break;
	case 0:
		mode |= S_IFREG;
		break;
	default:
		return -EINVAL;
	}
	pthread_mutex_lock(&fs->lock);
	ret = new_node(fs, ctx, parent, name, mode, rdev, NULL, st, NULL);
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

int fs_mkdir(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name,
	     mode_t mode, struct stat *st)
{
	int ret;

	pthread_mutex_lock(&fs->lock);
	ret = new_node(fs, ctx, parent, name, S_IFDIR | (mode & 07777), 0, NULL, st, NULL);
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

int fs_symlink(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name,
	       const char *target, struct stat *st)
{
	int ret;

	if (strlen(target) >= 4096)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&fs->lock);
	ret = new_node(fs, ctx, parent, name, S_IFLNK | 0777, 0, target, st, NULL);
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

int fs_link(struct fs *fs, uint64_t ino, uint64_t newparent, const char *newname, struct stat *st)
{
	struct meta_inode in, dir;
	struct timespec now = now_ts();
	uint64_t existing;
	int ret;

	pthread_mutex_lock(&fs->lock);
	ret = check_name(newname);
	if (ret == 0)
		ret = inode_load(fs, ino, &in);
	if (ret == 0)
		ret = inode_load(fs, newparent, &dir);
	if (ret)
		goto out_unlock;
	if (S_ISDIR(in.mode)) {
		ret = -EPERM;
		goto out_unlock;
	}
	if (!S_ISDIR(dir.mode)) {
		ret = -ENOTDIR;
		goto out_unlock;
	}
	if (dir.nlink == 0 || in.nlink == 0) {
		ret = -ENOENT;
		goto out_unlock;
	}
	if (in.nlink >= FS_LINK_MAX) {
		ret = -EMLINK;
		goto out_unlock;
	}
	ret = fileflags_check_dir_add(&dir);
	if (ret == 0)
		ret = fileflags_check_change(&in);
	if (ret)
		goto out_unlock;
	ret = meta_dentry_lookup(fs->meta, newparent, newname, &existing);
	if (ret == 0)
		ret = -EEXIST;
	if (ret != -ENOENT)
		goto out_unlock;
	ret = txn_begin(fs);
	if (ret)
		goto out_unlock;
	ret = meta_dentry_insert(fs->meta, newparent, newname, ino);
	if (ret)
		goto out_rollback;
	in.nlink++;
	in.ctime = now;
	ret = inode_store(fs, &in);
	if (ret)
		goto out_rollback;
	dir.mtime = dir.ctime = now;
	ret = inode_store(fs, &dir);
	if (ret)
		goto out_rollback;
	ret = txn_commit_deferred(fs);
	if (ret == 0)
		ret = hand_out(fs, &in, st);
	goto out_unlock;

out_rollback:
	txn_rollback(fs);
out_unlock:
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

/* Remove entry NAME of PARENT; DIR says whether rmdir or unlink semantics apply. */
static int remove_entry(struct fs *fs, uint64_t parent, const char *name, bool dir)
{
	struct meta_inode pin, in;
	struct timespec now = now_ts();
	uint64_t ino;
	int ret;

	pthread_mutex_lock(&fs->lock);
	if (dir && strcmp(name, ".") == 0) {
		ret = -EINVAL;
		goto out_unlock;
	}
	if (dir && strcmp(name, "..") == 0) {
		ret = -ENOTEMPTY;
		goto out_unlock;
	}
	ret = lookup_locked(fs, parent, name, &ino);
	if (ret == 0)
		ret = inode_load(fs, parent, &pin);
	if (ret == 0)
		ret = inode_load(fs, ino, &in);
	if (ret == 0)
		ret = fileflags_check_dir_remove(&pin);
	if (ret == 0)
		ret = fileflags_check_change(&in);
	if (ret)
		goto out_unlock;
	if (dir && !S_ISDIR(in.mode)) {
		ret = -ENOTDIR;
		goto out_unlock;
	}
	if (!dir && S_ISDIR(in.mode)) {
		ret = -EISDIR;
		goto out_unlock;
	}
	if (dir) {
		ret = meta_dir_has_entries(fs->meta, ino);
		if (ret) {
			ret = ret > 0 ? -ENOTEMPTY : ret;
			goto out_unlock;
		}
	}
	ret = txn_begin(fs);
	if (ret)
		goto out_unlock;
	ret = meta_dentry_delete(fs->meta, parent, name);
	if (ret)
		goto out_rollback;
	in.ctime = now;
	in.nlink = dir ? 0 : in.nlink - 1;
	ret = inode_store(fs, &in);
	if (ret)
		goto out_rollback;
	pin.mtime = pin.ctime = now;
	if (dir)
		pin.nlink--;
	ret = inode_store(fs, &pin);
	if (ret)
		goto out_rollback;
	ret = txn_commit_deferred(fs);
	if (ret == 0 && in.nlink == 0)
		inode_unlinked(fs, ino);
	goto out_unlock;

out_rollback:
	txn_rollback(fs);
out_unlock:
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

int fs_unlink(struct fs *fs, uint64_t parent, const char *name)
{
	return remove_entry(fs, parent, name, false);
}

int fs_rmdir(struct fs *fs, uint64_t parent, const char *name)
{
	return remove_entry(fs, parent, name, true);
}

/* True (1) when directory DIR is ANCESTOR or lies below it. */
static int is_within(struct fs *fs, uint64_t dir, uint64_t ancestor)
{
	for (int depth = 0; depth < 100000; depth++) {
		uint64_t up;
		int ret;

		if (dir == ancestor)
			return 1;
		if (dir == META_ROOT_INO)
			return 0;
		ret = meta_dir_parent(fs->meta, dir, &up);
		if (ret)
			return ret;
		dir = up;
	}
	return -ELOOP;
}

/*
 * RENAME_WHITEOUT: the name the source leaves becomes a whiteout, a
 * character device 0/0 with no permissions, owned by CTX (with the group of
 * a setgid directory), as ext4 makes it. Inside the rename's transaction.
 */
static int whiteout_insert(struct fs *fs, const struct fs_ctx *ctx, const struct meta_inode *dir,
			   const char *name, struct timespec now)
{
	struct meta_inode wh = {0};
	int ret;

	wh.mode = S_IFCHR;
	wh.uid = ctx->uid;
	wh.gid = (dir->mode & S_ISGID) ? dir->gid : ctx->gid;
	wh.nlink = 1;
	wh.atime = wh.mtime = wh.ctime = wh.btime = now;
	ret = meta_inode_insert(fs->meta, &wh, NULL, 0);
	if (ret == 0)
		ret = meta_dentry_insert(fs->meta, dir->ino, name, wh.ino);
	return ret;
}

int fs_rename(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name,
	      uint64_t newparent, const char *newname, unsigned int flags)
{
	struct meta_inode src, dst, pa, pb;
	struct meta_inode *pdst = &pb; /* the new parent's row; &pa when it is the same */
	struct timespec now = now_ts();
	uint64_t sino, dino = 0;
	bool exchange = flags & RENAME_EXCHANGE, whiteout = flags & RENAME_WHITEOUT, have_dst;
	int ret;

	if (flags & ~(unsigned int)(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) ||
	    (flags & RENAME_NOREPLACE && exchange) || (whiteout && exchange))
		return -EINVAL;
	pthread_mutex_lock(&fs->lock);
	ret = check_name(newname);
	if (ret == 0)
		ret = lookup_locked(fs, parent, name, &sino);
	if (ret)
		goto out_unlock;
	ret = lookup_locked(fs, newparent, newname, &dino);
	have_dst = ret == 0;
	if (ret && ret != -ENOENT)
		goto out_unlock;
	ret = 0;
	if (exchange && !have_dst) {
		ret = -ENOENT;
		goto out_unlock;
	}
	if (have_dst && (flags & RENAME_NOREPLACE)) {
		ret = -EEXIST;
		goto out_unlock;
	}
	if (have_dst && dino == sino)
		goto out_unlock; /* two names of one inode: nothing to do */
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(newname, ".") == 0 ||
	    strcmp(newname, "..") == 0) {
		ret = -EINVAL;
		goto out_unlock;
	}
	ret = inode_load(fs, sino, &src);
	if (ret == 0 && have_dst)
		ret = inode_load(fs, dino, &dst);
	if (ret == 0)
		ret = inode_load(fs, parent, &pa);
	if (ret == 0 && newparent != parent)
		ret = inode_load(fs, newparent, &pb);
	if (ret)
		goto out_unlock;
	if (newparent == parent)
		pdst = &pa;
	if (pdst->nlink == 0) {
		ret = -ENOENT;
		goto out_unlock;
	}
	/* the source leaves its directory; the target is replaced or added */
	ret = fileflags_check_dir_remove(&pa);
	if (ret == 0)
		ret = fileflags_check_change(&src);
	if (ret == 0)
		ret = have_dst ? fileflags_check_dir_remove(pdst) : fileflags_check_dir_add(pdst);
	if (ret == 0 && have_dst)
		ret = fileflags_check_change(&dst);
	if (ret)
		goto out_unlock;
	/* a directory may not move below itself */
	if (S_ISDIR(src.mode) && newparent != parent) {
		ret = is_within(fs, newparent, sino);
		if (ret) {
			ret = ret > 0 ? -EINVAL : ret;
			goto out_unlock;
		}
	}
	if (exchange && S_ISDIR(dst.mode) && newparent != parent) {
		ret = is_within(fs, parent, dino);
		if (ret) {
			ret = ret > 0 ? -EINVAL : ret;
			goto out_unlock;
		}
	}
	if (have_dst && !exchange) {
		if (S_ISDIR(src.mode) && !S_ISDIR(dst.mode)) {
			ret = -ENOTDIR;
			goto out_unlock;
		}
		if (!S_ISDIR(src.mode) && S_ISDIR(dst.mode)) {
			ret = -EISDIR;
			goto out_unlock;
		}
		if (S_ISDIR(dst.mode)) {
			ret = meta_dir_has_entries(fs->meta, dino);
			if (ret) {
				ret = ret > 0 ? -ENOTEMPTY : ret;
				goto out_unlock;
			}
		}
	}

	ret = txn_begin(fs);
	if (ret)
		goto out_unlock;
	if (exchange) {
		ret = meta_dentry_set_ino(fs->meta, parent, name, dino);
		if (ret == 0)
			ret = meta_dentry_set_ino(fs->meta, newparent, newname, sino);
		if (ret)
			goto out_rollback;
		if (newparent != parent) {
			if (S_ISDIR(src.mode)) {
				pa.nlink--;
				pdst->nlink++;
			}
			if (S_ISDIR(dst.mode)) {
				pdst->nlink--;
				pa.nlink++;
			}
		}
		dst.ctime = now;
		ret = inode_store(fs, &dst);
		if (ret)
			goto out_rollback;
	} else {
		if (have_dst) {
			ret = meta_dentry_delete(fs->meta, newparent, newname);
			if (ret)
				goto out_rollback;
			dst.ctime = now;
			if (S_ISDIR(dst.mode)) {
				dst.nlink = 0;
				pdst->nlink--;
			} else {
				dst.nlink--;
			}
			ret = inode_store(fs, &dst);
			if (ret)
				goto out_rollback;
		}
		ret = meta_dentry_move(fs->meta, parent, name, newparent, newname);
		if (ret == 0 && whiteout)
			ret = whiteout_insert(fs, ctx, &pa, name, now);
		if (ret)
			goto out_rollback;
		if (S_ISDIR(src.mode) && newparent != parent) {
			pa.nlink--;
			pdst->nlink++;
		}
	}
	src.ctime = now;
	ret = inode_store(fs, &src);
	if (ret)
		goto out_rollback;
	pa.mtime = pa.ctime = now;
	ret = inode_store(fs, &pa);
	if (ret == 0 && pdst != &pa) {
		pdst->mtime = pdst->ctime = now;
		ret = inode_store(fs, pdst);
	}
	if (ret)
		goto out_rollback;
	ret = txn_commit_deferred(fs);
	if (ret == 0 && have_dst && !exchange && dst.nlink == 0)
		inode_unlinked(fs, dino);
	goto out_unlock;

out_rollback:
	txn_rollback(fs);
out_unlock:
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

/* ---- files ---- */

/*
 * An access under relatime rules, in memory: the row is written with the
 * next periodic flush, so reading costs no metadata write of its own.
 */
static bool access_due(const struct meta_inode *a)
{
	struct timespec now = now_ts();

	return ts_le(a->atime, a->mtime) || ts_le(a->atime, a->ctime) ||
	       now.tv_sec - a->atime.tv_sec >= FS_RELATIME_S;
}

static void note_access(struct fs_inode *ip)
{
	if (ip->attr_valid && access_due(&ip->attr)) {
		ip->attr.atime = now_ts();
		ip->atime_dirty = true;
	}
}

bool fs_file_keep_cache(const struct fs_file *fh)
{
	return fh->keep_cache;
}

bool fs_file_direct_io(const struct fs_file *fh)
{
	return fh->direct_io;
}

/* Handle FH opened (DELTA 1) or released (-1): its inode's and FS's counts and list. Lock held. */
static void handle_count(struct fs *fs, struct fs_file *fh, int delta)
{
	struct fs_inode *ip = fh->ip;

	ip->nopen += delta;
	if ((fh->flags & O_ACCMODE) != O_RDONLY) {
		ip->nwriters += delta;
		ip->noverwriters += (fh->flags & O_APPEND) ? 0 : delta;
		fs->nwriters += delta;
	}
	if (delta > 0) {
		fh->prev = NULL;
		fh->next = fs->files;
		if (fs->files)
			fs->files->prev = fh;
		fs->files = fh;
	} else {
		if (fh->prev)
			fh->prev->next = fh->next;
		else
			fs->files = fh->next;
		if (fh->next)
			fh->next->prev = fh->prev;
	}
}

unsigned fs_writers(struct fs *fs)
{
	unsigned n;

	pthread_mutex_lock(&fs->lock);
	n = fs->nwriters;
	pthread_mutex_unlock(&fs->lock);
	return n;
}

static int file_open_locked(struct fs *fs, struct fs_inode *ip, int flags, struct fs_file **fhp)
{
	struct fs_file *fh;
	int ret;

	ret = inode_load(fs, ip->ino, &ip->attr);
	if (ret)
		return ret;
	if (S_ISDIR(ip->attr.mode))
		return -EISDIR;
	ret = fileflags_check_open(&ip->attr, flags);
	if (ret)
		return ret;
	fh = calloc(1, sizeof(*fh));
	if (!fh)
		return -ENOMEM;
	fh->ip = ip;
	fh->flags = flags;
	/* an empty file gets its cache file at its first write (untar, touch: no ext4 inode) */
	if (S_ISREG(ip->attr.mode) && ip->attr.size > 0) {
		ret = inode_open_fd(fs, ip);
		if (ret) {
			free(fh);
			return ret;
		}
	}
	handle_count(fs, fh, 1);
	fh->keep_cache = (flags & O_NOATIME) || !access_due(&ip->attr);
	fh->direct_io = (ip->attr.flags & META_INODE_LOST) != 0;
	*fhp = fh;
	return 0;
}

int fs_open(struct fs *fs, uint64_t ino, int flags, struct fs_file **fhp)
{
	struct fs_inode *ip;
	int ret;

	pthread_mutex_lock(&fs->lock);
	ip = itable_get(fs, ino);
	ret = ip ? file_open_locked(fs, ip, flags, fhp) : -ENOMEM;
	if (ret == 0 && (flags & O_TRUNC) && S_ISREG(ip->attr.mode)) {
		struct meta_inode in;
		if (fs->tier)
			tier_wait_fetches(fs, ip);
		in = ip->attr;
		ret = txn_begin(fs);
		if (ret == 0) {
			txn_touch(fs, ip);
			ret = inode_truncate(fs, ip, 0);
			if (ret == 0) {
				in.size = 0;
				in.mtime = in.ctime = now_ts();
				in.blocks_known = false;
				ret = inode_store(fs, &in);
			}
			if (ret == 0)
				ret = txn_commit(fs);
			else
				txn_rollback(fs);
		}
		if (ret) {
			handle_count(fs, *fhp, -1);
			free(*fhp);
		}
	}
	if (ret && ip)
		inode_maybe_free(fs, ip);
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

int fs_create(struct fs *fs, const struct fs_ctx *ctx, uint64_t parent, const char *name,
	      mode_t mode, int flags, struct fs_file **fhp, struct stat *st)
{
	struct fs_inode *ip = NULL;
	int ret;

	pthread_mutex_lock(&fs->lock);
	ret = new_node(fs, ctx, parent, name, S_IFREG | (mode & 07777), 0, NULL, st, &ip);
	if (ret == 0) {
		ret = file_open_locked(fs, ip, flags, fhp);
		if (ret) {
			/* the name exists now; the kernel gets no reference, so drop ours */
			ip->nlookup--;
			inode_maybe_free(fs, ip);
		}
	}
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

/* Are any of chunks FIRST..LAST of IP only in the bucket? */
static bool any_remote(const struct fs_inode *ip, uint64_t first, uint64_t last)
{
	for (uint64_t idx = first; idx <= last; idx++)
		if (chunk_bits_test(&ip->remote, idx))
			return true;
	return false;
}

int fs_read_prepare(struct fs *fs, struct fs_file *fh, off_t off, size_t size, int *fd, size_t *len,
		    struct fs_read **rd)
{
	struct fs_inode *ip = fh->ip;
	struct meta_inode *a = &ip->attr;
	uint64_t cs = fs->chunk_size;
	bool fetched = false;
	struct fs_read *r;
	int ret = 0;

	if (off < 0)
		return -EINVAL;
	pthread_mutex_lock(&fs->lock);
	for (;;) {
		*len = (uint64_t)off >= a->size		? 0
		       : a->size - (uint64_t)off < size ? a->size - (uint64_t)off
							: size;
		if (*len > 0 && (a->flags & META_INODE_LOST) &&
		    (ret = meta_lost_overlaps(fs->meta, ip->ino, (uint64_t)off, *len)) != 0) {
			/* never bytes the file did not hold (restore.c): EIO until rewritten */
			if (ret > 0) {
				log_warn("read of inode %" PRIu64
					 " at %lld: bytes lost in a recovery",
					 ip->ino, (long long)off);
				ret = -EIO;
			}
			goto out_unlock;
		}
		if (*len == 0 || !fs->tier)
			break;
		ret = chunks_load(fs, ip);
		if (ret)
			goto out_unlock;
		uint64_t first = (uint64_t)off / cs, last = ((uint64_t)off + *len - 1) / cs;
		if (!any_remote(ip, first, last))
			break;
		/* fetch, then look again: the file may have changed meanwhile */
		fetched = true;
		ret = tier_make_local(fs, ip, first, last);
		if (ret)
			goto out_unlock;
	}
	if (ip->fd < 0 && *len > 0) {
		ret = inode_open_fd(fs, ip); /* an empty file that grew through another handle */
		if (ret)
			goto out_unlock;
	}
	*fd = ip->fd; /* -1 for nothing to read from a file without a cache file */
	r = malloc(sizeof(*r));
	if (!r) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	r->ip = ip;
	r->first = *len ? (uint64_t)off / cs : 1;
	r->last = *len ? ((uint64_t)off + *len - 1) / cs : 0;
	r->next = ip->reads;
	ip->reads = r;
	ip->nread++;
	*rd = r;
	if (fs->tier && *len)
		tier_note_read(fs, fh, (uint64_t)off, *len, fetched);
	if (!(fh->flags & O_NOATIME))
		note_access(ip);
out_unlock:
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

void fs_read_done(struct fs *fs, struct fs_read *rd)
{
	struct fs_inode *ip = rd->ip;
	struct fs_read **pp;

	pthread_mutex_lock(&fs->lock);
	for (pp = &ip->reads; *pp && *pp != rd; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = rd->next;
	free(rd);
	ip->nread--;
	inode_maybe_free(fs, ip);
	pthread_mutex_unlock(&fs->lock);
}

/*
 * Bytes a write of LEN bytes at OFF into IP adds to the dirty data: the
 * whole (new) length of chunks it makes DIRTY, and the growth of the file
 * within chunks that are DIRTY already. Lock held.
 */
static uint64_t write_dirty_growth(struct fs *fs, struct fs_inode *ip, uint64_t off, size_t len)
{
	uint64_t cs = fs->chunk_size, first = off / cs, last = (off + len - 1) / cs;
	uint64_t size = ip->attr.size, grown = off + len > size ? off + len : size, bytes = 0;

	for (uint64_t idx = first; idx <= last; idx++) {
		uint64_t start = idx * cs, end = start + cs;
		uint64_t old_end = size < end ? (size > start ? size : start) : end;
		uint64_t new_end = grown < end ? grown : end;

		bytes += chunk_bits_test(&ip->dirty, idx) ? new_end - old_end : new_end - start;
	}
	return bytes;
}

/*
 * Before a write of LEN bytes at OFF into IP: wait while dirty data is at
 * its limit, fetch the REMOTE chunks the write only partly covers (a chunk
 * it covers to its end or to the end of the file needs no fetch), and wait
 * for fetches already under way of any chunk it writes.
 * Drops the lock while waiting; loops until nothing changed meanwhile.
 * *GROWTH: the dirty bytes the write adds (write_dirty_growth), reserved.
 */
static int write_make_room(struct fs *fs, struct fs_inode *ip, uint64_t off, size_t len,
			   uint64_t *growth)
{
	uint64_t cs = fs->chunk_size, first = off / cs, last = (off + len - 1) / cs;
	int ret;

	for (;;) {
		uint64_t partial = UINT64_MAX;

		ret = chunks_load(fs, ip);
		if (ret)
			return ret;
		for (uint64_t idx = first; idx <= last; idx++) {
			uint64_t start = idx * cs, end = start + cs;
			if (end > ip->attr.size)
				end = ip->attr.size > start ? ip->attr.size : start;
			if (chunk_bits_test(&ip->remote, idx) && (start < off || end > off + len) &&
			    partial == UINT64_MAX)
				partial = idx;
		}
		if (partial != UINT64_MAX) {
			ret = tier_make_local(fs, ip, partial, partial);
			if (ret)
				return ret;
			continue;
		}
		if (tier_wait_chunk_fetches(fs, ip, first, last))
			continue;
		*growth = write_dirty_growth(fs, ip, off, len);
		if (*growth == 0)
			break;
		ret = tier_reserve_dirty(fs, *growth);
		if (ret <= 0)
			return ret; /* room without waiting, or an error */
				    /* waited: look again */
	}
	return 0;
}

/* Before a write by CTX: clear the set-id bits it takes away, committing the new mode. Lock held. */
static int drop_setid_for(struct fs *fs, struct fs_inode *ip, const struct fs_ctx *ctx)
{
	struct meta_inode in = ip->attr;
	mode_t kill = setid_lost_to_write(&in, ctx);

	if (!kill)
		return 0;
	in.mode &= ~kill;
	in.ctime = now_ts();
	return inode_store(fs, &in);
}

/*
 * The marks a write of LEN bytes at OFF needs before its bytes land: the
 * inode's WRITING mark first (a crash between the two leaves no chunk past
 * a committed size), the chunks' DIRTY marks, the lost ranges it covers.
 * They are committed before the cache file changes — but for an inode
 * created in the batch still open: a crash loses its creation with the
 * marks, and its cache file is then a stray (removed at mount), so they
 * join the batch (untar, cp -r, git: create, write, close).
 */
static int write_marks(struct fs *fs, struct fs_inode *ip, uint64_t off, size_t len)
{
	bool defer = !fs->in_txn && ip->born_batch && ip->born_batch == meta_batch_id(fs->meta);
	int ret = defer ? txn_begin(fs) : 0;

	if (ret == 0)
		ret = inode_mark_writing(fs, ip);
	if (ret == 0)
		ret = chunks_mark_dirty(fs, ip, off / fs->chunk_size,
					(off + len - 1) / fs->chunk_size);
	if (ret == 0)
		ret = lost_forget(fs, ip, off, len);
	if (!defer)
		return ret;
	if (ret == 0)
		ret = txn_commit_deferred(fs); /* rolls back if it fails */
	else
		txn_rollback(fs);
	if (ret) {
		/* the chunk bits in memory may name marks the rollback took back: reload them */
		chunk_bits_free(&ip->dirty);
		chunk_bits_free(&ip->remote);
		ip->chunks_known = false;
	}
	return ret;
}

int fs_write_begin(struct fs *fs, const struct fs_ctx *ctx, struct fs_file *fh, off_t off,
		   size_t len, int *fd)
{
	struct fs_inode *ip = fh->ip;
	int ret;

	if (off < 0)
		return -EINVAL;
	if (len == 0) {
		pthread_mutex_lock(&fs->lock);
		ret = inode_open_fd(fs, ip);
		if (ret == 0)
			ip->nwrite++; /* paired with fs_write_end like any write */
		*fd = ip->fd;
		pthread_mutex_unlock(&fs->lock);
		return ret;
	}
	if ((uint64_t)off + len > FS_MAX_FILE_SIZE)
		return -EFBIG;
	pthread_mutex_lock(&fs->lock);
	ret = fileflags_check_write(&ip->attr);
	if (ret == 0)
		ret = inode_open_fd(fs, ip); /* the first write of an empty file makes it */
	if (ret == 0)
		ret = drop_setid_for(fs, ip, ctx);
	if (ret == 0 && fs->tier) {
		uint64_t growth = 0;

		ret = write_make_room(fs, ip, (uint64_t)off, len, &growth);
		if (ret == 0) {
			uint64_t end = (uint64_t)off + len, size = ip->attr.size;

			tier_note_dirty(fs, 0, (int64_t)growth);
			if (end > size)
				tier_note_append(fs, end - size < len ? end - size : len);
		}
	}
	if (ret == 0)
		ret = write_marks(fs, ip, (uint64_t)off, len);
	if (ret == 0)
		ip->nwrite++; /* until fs_write_end: no upload may read these chunks meanwhile */
	*fd = ip->fd;
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

void fs_write_end(struct fs *fs, const struct fs_ctx *ctx, struct fs_file *fh, off_t off,
		  size_t written)
{
	struct fs_inode *ip = fh->ip;

	pthread_mutex_lock(&fs->lock);
	ip->nwrite--;
	if (written == 0) {
		pthread_mutex_unlock(&fs->lock);
		return;
	}
	if ((uint64_t)off + written > ip->attr.size)
		ip->attr.size = (uint64_t)off + written;
	ip->last_write = now_ts();
	/*
	 * The kernel's write-back carries no time: the kernel keeps the times of
	 * cached writes and sends them itself (a SETATTR of the times) when they
	 * changed — in the clock tick of a truncate they did not, and a time of
	 * the write-back would stand in the row beside another in the kernel.
	 */
	if (ctx || !fs->writeback_cache)
		ip->attr.mtime = ip->attr.ctime = ip->last_write;
	ip->last_write_idx = ((uint64_t)off + written - 1) / fs->chunk_size;
	ip->last_write_back = !ctx;
	ip->attr_dirty = true;
	pthread_mutex_unlock(&fs->lock);
}

int fs_fsync(struct fs *fs, struct fs_file *fh, bool datasync)
{
	struct fs_inode *ip = fh->ip;
	int ret = 0, fd;

	pthread_mutex_lock(&fs->lock);
	fd = ip->fd; /* -1: an empty file without a cache file; open while FH is */
	pthread_mutex_unlock(&fs->lock);
	if (fd >= 0 && (datasync ? fdatasync(fd) : fsync(fd)) < 0)
		return -errno;
	pthread_mutex_lock(&fs->lock);
	ret = inode_flush(fs, ip, false);
	if (ret == 0)
		ret = meta_sync(fs->meta);
	/* syncUpload: durable in the bucket too, data first, then the metadata naming it */
	if (ret == 0 && fs->sync_upload && fs->tier && fs->journal)
		ret = tier_upload_now(fs, ip, fs->sync_timeout_s);
	pthread_mutex_unlock(&fs->lock);
	if (ret == 0 && fs->sync_upload && fs->tier && fs->journal)
		ret = journal_sync(fs->journal, fs->sync_timeout_s);
	return ret;
}

int fs_release(struct fs *fs, struct fs_file *fh)
{
	struct fs_inode *ip = fh->ip;
	int ret;

	pthread_mutex_lock(&fs->lock);
	ret = inode_flush(fs, ip, false);
	handle_count(fs, fh, -1);
	inode_close_fd_if_unused(ip);
	inode_maybe_free(fs, ip);
	pthread_mutex_unlock(&fs->lock);
	free(fh);
	return ret;
}

int fs_fallocate(struct fs *fs, struct fs_file *fh, int mode, off_t off, off_t len)
{
	struct fs_inode *ip = fh->ip;
	uint64_t cs = fs->chunk_size, end;
	bool punch = mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE);
	int ret;

	if (off < 0 || len <= 0)
		return -EINVAL;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	end = (uint64_t)off + (uint64_t)len;
	if (end > FS_MAX_FILE_SIZE)
		return -EFBIG;
	pthread_mutex_lock(&fs->lock);
	if (!S_ISREG(ip->attr.mode)) {
		ret = -ENODEV;
		goto out_unlock;
	}
	ret = inode_open_fd(fs, ip);
	if (ret)
		goto out_unlock;
	ret = fileflags_check_fallocate(&ip->attr, mode);
	if (ret)
		goto out_unlock;
	if (punch && fs->tier) {
		/* partly cleared chunks must be local; no fetch may refill what is cleared */
		ret = chunks_load(fs, ip);
		if (ret == 0)
			ret = tier_make_local(fs, ip, (uint64_t)off / cs, (uint64_t)off / cs);
		if (ret == 0)
			ret = tier_make_local(fs, ip, (end - 1) / cs, (end - 1) / cs);
		if (ret)
			goto out_unlock;
		tier_wait_fetches(fs, ip);
	}
	/* before any chunk row changes: a crash then leaves none past a committed size */
	ret = inode_mark_writing(fs, ip);
	if (ret)
		goto out_unlock;
	if (punch) {
		/* the range may reach past the end of the file; only the part inside matters */
		uint64_t pend = end < ip->attr.size ? end : ip->attr.size;
		if ((uint64_t)off < pend) {
			uint64_t first_full = ((uint64_t)off + cs - 1) / cs, end_full = pend / cs;
			if (pend == ip->attr.size)
				end_full = (pend + cs - 1) / cs; /* the short last chunk is whole */
			if ((mode & FALLOC_FL_PUNCH_HOLE) && first_full < end_full)
				ret = chunks_drop(fs, ip, first_full, end_full - 1);
			else
				ret = 0;
			if (ret == 0 && (uint64_t)off / cs < first_full)
				ret = chunks_mark_dirty(fs, ip, (uint64_t)off / cs,
							(uint64_t)off / cs);
			if (ret == 0 && end_full * cs < pend)
				ret = chunks_mark_dirty(fs, ip, end_full, end_full);
			if (ret == 0 && !(mode & FALLOC_FL_PUNCH_HOLE))
				ret =
				    chunks_mark_dirty(fs, ip, (uint64_t)off / cs, (pend - 1) / cs);
			if (ret)
				goto out_unlock;
		}
	}
	if (fallocate(ip->fd, mode, off, len) < 0) {
		ret = -errno;
		goto out_unlock;
	}
	ret = 0;
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > ip->attr.size) {
		ip->attr.size = end;
		ip->attr.mtime = ip->attr.ctime = now_ts();
		ip->attr_dirty = true;
	} else if (punch) {
		ip->attr.mtime = ip->attr.ctime = now_ts();
		ip->attr_dirty = true;
	}
out_unlock:
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

int fs_lseek(struct fs *fs, struct fs_file *fh, off_t off, int whence, off_t *result)
{
	struct fs_inode *ip = fh->ip;
	off_t r;
	int ret = 0;

	pthread_mutex_lock(&fs->lock);
	if (ip->fd < 0 && ip->attr.size == 0 && (whence == SEEK_DATA || whence == SEEK_HOLE)) {
		pthread_mutex_unlock(&fs->lock);
		return -ENXIO; /* an empty file without a cache file: nothing at any offset */
	}
	ret = inode_open_fd(fs, ip);
	if (ret == 0 && fs->tier) {
		ret = chunks_load(fs, ip);
		if (ret == 0)
			ret = tier_lseek(fs, ip, off, whence, result);
		pthread_mutex_unlock(&fs->lock);
		return ret;
	}
	pthread_mutex_unlock(&fs->lock);
	if (ret)
		return ret;
	r = lseek(ip->fd, off, whence);
	if (r < 0)
		return -errno;
	*result = r;
	return 0;
}

int fs_copy_file_range(struct fs *fs, const struct fs_ctx *ctx, struct fs_file *in, off_t off_in,
		       struct fs_file *out, off_t off_out, size_t len, size_t *copied)
{
	size_t avail, done = 0;
	struct fs_read *rd;
	int fd_in, fd_out, ret;

	*copied = 0;
	ret = fs_read_prepare(fs, in, off_in, len, &fd_in, &avail, &rd);
	if (ret)
		return ret;
	if (avail == 0)
		goto out_read_done;
	ret = fs_write_begin(fs, ctx, out, off_out, avail, &fd_out);
	if (ret)
		goto out_read_done;
	while (done < avail) {
		loff_t oi = off_in + (off_t)done, oo = off_out + (off_t)done;
		ssize_t n = copy_file_range(fd_in, &oi, fd_out, &oo, avail - done, 0);
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	fs_write_end(fs, ctx, out, off_out, done);
	*copied = done;
	if (done)
		ret = 0;
out_read_done:
	fs_read_done(fs, rd);
	return ret;
}

/* ---- directories ---- */

struct readdir_state {
	struct fs *fs;
	bool plus;
	fs_dirent_cb cb;
	void *arg;
	int full; /* the callback ran out of room */
};

static int readdir_one(void *arg, uint64_t id, const char *name, const struct meta_inode *row)
{
	struct readdir_state *rs = arg;
	struct fs_inode *ip = itable_find(rs->fs, row->ino);
	const struct meta_inode *in = ip && ip->attr_valid ? &ip->attr : row;
	struct stat st;

	if (rs->plus) {
		inode_to_stat(rs->fs, in, &st);
	} else {
		memset(&st, 0, sizeof(st));
		st.st_ino = in->ino;
		st.st_mode = in->mode;
	}
	if (rs->cb(rs->arg, name, &st, (off_t)(id + 2))) {
		rs->full = 1;
		return 1;
	}
	if (rs->plus)
		return kernel_ref(rs->fs, row->ino);
	return 0;
}

int fs_readdir(struct fs *fs, uint64_t ino, off_t off, bool plus, fs_dirent_cb cb, void *arg)
{
	struct readdir_state rs = {fs, plus, cb, arg, 0};
	struct meta_inode dir;
	struct stat st;
	int ret;

	pthread_mutex_lock(&fs->lock);
	ret = inode_load(fs, ino, &dir);
	if (ret)
		goto out_unlock;
	if (!S_ISDIR(dir.mode)) {
		ret = -ENOTDIR;
		goto out_unlock;
	}
	if (off == 0) {
		/* the access time waits in memory (an idle directory comes back for it) */
		struct fs_inode *dp = itable_get(fs, ino);
		if (dp) {
			if (!dp->attr_valid) {
				dp->attr = dir;
				dp->attr_valid = true;
			}
			note_access(dp);
		}
	}
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFDIR;
	if (off < 1) {
		st.st_ino = ino;
		if (cb(arg, ".", &st, 1))
			goto out_unlock;
	}
	if (off < 2) {
		uint64_t up;
		ret = meta_dir_parent(fs->meta, ino, &up);
		if (ret)
			goto out_unlock;
		st.st_ino = up;
		if (cb(arg, "..", &st, 2))
			goto out_unlock;
	}
	ret = meta_readdir(fs->meta, ino, off < 2 ? 0 : (uint64_t)off - 2, readdir_one, &rs);
	if (ret > 0)
		ret = 0;
out_unlock:
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

int fs_fsyncdir(struct fs *fs, uint64_t ino)
{
	struct meta_inode in;
	int ret;

	pthread_mutex_lock(&fs->lock);
	ret = inode_load(fs, ino, &in);
	if (ret == 0)
		ret = meta_sync(fs->meta);
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

/* ---- the rest ---- */

/*
 * The filesystem as df should show it: its capacity (the capacity option,
 * the bucket's size has no limit) and the bytes of all its files, local or
 * not; the cache's own use is in `zero status`.
 */
int fs_statfs(struct fs *fs, struct statvfs *out)
{
	uint64_t count = 0, bytes = 0, blocks, used;
	int ret;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&fs->lock);
	ret = meta_inode_usage(fs->meta, &count, &bytes);
	pthread_mutex_unlock(&fs->lock);
	if (ret)
		return ret;
	out->f_bsize = FS_STATFS_BLOCK;
	out->f_frsize = FS_STATFS_BLOCK;
	out->f_namemax = FS_NAME_MAX;
	blocks = fs->capacity / FS_STATFS_BLOCK;
	used = (bytes + FS_STATFS_BLOCK - 1) / FS_STATFS_BLOCK;
	out->f_blocks = used > blocks ? used : blocks;
	out->f_bfree = out->f_bavail = out->f_blocks - used;
	out->f_files = count + (1ull << 32);
	out->f_ffree = out->f_favail = 1ull << 32;
	return 0;
}

int fs_access(struct fs *fs, const struct fs_ctx *ctx, uint64_t ino, int mask)
{
	struct meta_inode in;
	unsigned int bits;
	int ret;

	pthread_mutex_lock(&fs->lock);
	ret = inode_load(fs, ino, &in);
	pthread_mutex_unlock(&fs->lock);
	if (ret || mask == F_OK)
		return ret;
	if (ctx->uid == 0) {
		/* root may execute only what someone may execute (or search any directory) */
		if ((mask & X_OK) && !S_ISDIR(in.mode) && !(in.mode & 0111))
			return -EACCES;
		return 0;
	}
	if (ctx->uid == in.uid)
		bits = (in.mode >> 6) & 7;
	else if (ctx->in_group(ctx, in.gid))
		bits = (in.mode >> 3) & 7;
	else
		bits = in.mode & 7;
	return ((unsigned int)mask & ~bits & 7) ? -EACCES : 0;
}
