/*
 * meta.c - the SQLite schema and every statement Zero runs.
 *
 * Statements are prepared once, on open, and reset after each use. The
 * connection runs in WAL mode with synchronous=NORMAL: a commit is atomic
 * and survives a crash of the process; meta_sync() makes it survive a crash
 * of the machine. See meta.h for the rules every function follows.
 */
#include "meta/meta_internal.h"

#include "common/clock.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define META_SCHEMA_VERSION "1"

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS settings(k TEXT PRIMARY KEY, v TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS inode("
    "  ino INTEGER PRIMARY KEY AUTOINCREMENT, mode INTEGER NOT NULL, uid INTEGER NOT NULL,"
    "  gid INTEGER NOT NULL, nlink INTEGER NOT NULL, size INTEGER NOT NULL,"
    "  rdev INTEGER NOT NULL, atime_s INTEGER NOT NULL, atime_ns INTEGER NOT NULL,"
    "  mtime_s INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_s INTEGER NOT NULL,"
    "  ctime_ns INTEGER NOT NULL, btime_s INTEGER NOT NULL, btime_ns INTEGER NOT NULL,"
    "  flags INTEGER NOT NULL DEFAULT 0, target BLOB, blocks INTEGER);"
    "CREATE TABLE IF NOT EXISTS dentry("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, parent INTEGER NOT NULL, name BLOB NOT NULL,"
    "  ino INTEGER NOT NULL, UNIQUE(parent, name));"
    "CREATE INDEX IF NOT EXISTS dentry_ino ON dentry(ino);"
    "CREATE INDEX IF NOT EXISTS dentry_parent_id ON dentry(parent, id);"
    "CREATE TABLE IF NOT EXISTS xattr(ino INTEGER NOT NULL, name BLOB NOT NULL,"
    "  value BLOB NOT NULL, PRIMARY KEY(ino, name)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS chunk(ino INTEGER NOT NULL, idx INTEGER NOT NULL,"
    "  state INTEGER NOT NULL, object BLOB, length INTEGER NOT NULL DEFAULT 0,"
    "  version INTEGER NOT NULL DEFAULT 0, atime INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY(ino, idx)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS chunk_state ON chunk(state, ino, idx);"
    "CREATE INDEX IF NOT EXISTS chunk_lru ON chunk(atime) WHERE state = 1;"
    "CREATE TABLE IF NOT EXISTS object(id BLOB PRIMARY KEY, refcount INTEGER NOT NULL,"
    "  stored_size INTEGER NOT NULL, released INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    /* this cache's own state, never shipped to the bucket (changes.c) */
    "CREATE TABLE IF NOT EXISTS local(k TEXT PRIMARY KEY, v TEXT NOT NULL);"
    /* byte ranges a recovery could not restore: reads there are EIO (restore.c) */
    "CREATE TABLE IF NOT EXISTS lost(ino INTEGER NOT NULL, start INTEGER NOT NULL,"
    "  end INTEGER NOT NULL, PRIMARY KEY(ino, start)) WITHOUT ROWID;"
    /* named states of the filesystem and the objects they keep (journal/checkpoint.c) */
    "CREATE TABLE IF NOT EXISTS checkpoint(name TEXT PRIMARY KEY, created INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL, key TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS checkpoint_object(name TEXT NOT NULL, id BLOB NOT NULL,"
    "  PRIMARY KEY(name, id)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS checkpoint_object_id ON checkpoint_object(id);";

#define INODE_COLS                                                                                 \
	"ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, "  \
	"ctime_ns, btime_s, btime_ns, flags, blocks"

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SETTING_GET,
	ST_SETTING_SET,
	ST_INODE_GET,
	ST_INODE_INSERT,
	ST_INODE_UPDATE,
	ST_INODE_DELETE,
	ST_INODE_XATTRS_DELETE,
	ST_INODE_LOST_DELETE,
	ST_SYMLINK_GET,
	ST_INODE_COUNT,
	ST_DENTRY_LOOKUP,
	ST_DENTRY_INSERT,
	ST_DENTRY_DELETE,
	ST_DENTRY_MOVE,
	ST_DENTRY_SET_INO,
	ST_DIR_HAS_ENTRIES,
	ST_DIR_PARENT,
	ST_READDIR,
	ST_XATTR_GET,
	ST_XATTR_INSERT,
	ST_XATTR_UPDATE,
	ST_XATTR_UPSERT,
	ST_XATTR_LIST,
	ST_XATTR_REMOVE,
	ST_CHUNK_DELETE_RANGE,
	ST_CHUNK_LIST,
	ST_CHUNK_GET,
	ST_CHUNK_INSERT_DIRTY,
	ST_CHUNK_UPDATE_DIRTY,
	ST_CHUNK_MAX_VERSION,
	ST_CHUNK_SET_CLEAN,
	ST_CHUNK_SET_STATE,
	ST_CHUNK_DIRTY_LIST,
	ST_CHUNK_LRU_LIST,
	ST_CHUNK_TOUCH,
	ST_CHUNK_COUNTS,
	ST_CHUNK_DIRTY_BYTES,
	ST_CHUNK_DIRTY_BYTES_INO,
	ST_CHUNK_REMOTE_BYTES_INO,
	ST_CHUNK_RESIDENCY,
	ST_OBJECT_UNREF_RANGE,
	ST_OBJECT_REF,
	ST_OBJECT_UNREF,
	ST_OBJECT_ENSURE,
	ST_OBJECT_EXISTS,
	ST_OBJECT_GARBAGE,
	ST_OBJECT_STAMP,
	ST_OBJECT_DELETE,
	ST_OBJECT_STATS,
	ST_ORPHAN_LIST,
	ST_FILE_LIST,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SETTING_GET] = "SELECT v FROM settings WHERE k = ?1",
    [ST_SETTING_SET] = "INSERT INTO settings(k, v) VALUES(?1, ?2) "
		       "ON CONFLICT(k) DO UPDATE SET v = excluded.v",
    [ST_INODE_GET] = "SELECT " INODE_COLS " FROM inode WHERE ino = ?1",
    [ST_INODE_INSERT] = "INSERT INTO inode(mode, uid, gid, nlink, size, rdev, atime_s, "
			"atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, btime_s, btime_ns, "
			"flags, target, blocks) VALUES(?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
			"?13, ?14, ?15, ?16, ?17, ?18)",
    [ST_INODE_UPDATE] = "UPDATE inode SET mode = ?2, uid = ?3, gid = ?4, nlink = ?5, size = ?6, "
			"rdev = ?7, atime_s = ?8, atime_ns = ?9, mtime_s = ?10, mtime_ns = ?11, "
			"ctime_s = ?12, ctime_ns = ?13, btime_s = ?14, btime_ns = ?15, flags = ?16, "
			"blocks = ?18 WHERE ino = ?1",
    [ST_INODE_DELETE] = "DELETE FROM inode WHERE ino = ?1",
    [ST_INODE_XATTRS_DELETE] = "DELETE FROM xattr WHERE ino = ?1",
    [ST_INODE_LOST_DELETE] = "DELETE FROM lost WHERE ino = ?1",
    [ST_SYMLINK_GET] = "SELECT target FROM inode WHERE ino = ?1",
    [ST_INODE_COUNT] = "SELECT count(*), coalesce(sum(CASE WHEN (mode & 61440) = 32768 "
		       "THEN size ELSE 0 END), 0) FROM inode WHERE nlink > 0",
    [ST_DENTRY_LOOKUP] = "SELECT ino FROM dentry WHERE parent = ?1 AND name = ?2",
    [ST_DENTRY_INSERT] = "INSERT INTO dentry(parent, name, ino) VALUES(?1, ?2, ?3)",
    [ST_DENTRY_DELETE] = "DELETE FROM dentry WHERE parent = ?1 AND name = ?2",
    [ST_DENTRY_MOVE] = "UPDATE dentry SET parent = ?3, name = ?4 WHERE parent = ?1 AND name = ?2",
    [ST_DENTRY_SET_INO] = "UPDATE dentry SET ino = ?3 WHERE parent = ?1 AND name = ?2",
    [ST_DIR_HAS_ENTRIES] = "SELECT 1 FROM dentry WHERE parent = ?1 LIMIT 1",
    [ST_DIR_PARENT] = "SELECT parent FROM dentry WHERE ino = ?1 LIMIT 1",
    [ST_READDIR] = "SELECT d.id, d.name, i.ino, i.mode, i.uid, i.gid, i.nlink, i.size, i.rdev, "
		   "i.atime_s, i.atime_ns, i.mtime_s, i.mtime_ns, i.ctime_s, i.ctime_ns, "
		   "i.btime_s, i.btime_ns, i.flags, i.blocks FROM dentry d JOIN inode i ON i.ino = d.ino "
		   "WHERE d.parent = ?1 AND d.id > ?2 ORDER BY d.id",
    [ST_XATTR_GET] = "SELECT value FROM xattr WHERE ino = ?1 AND name = ?2",
    [ST_XATTR_INSERT] = "INSERT INTO xattr(ino, name, value) VALUES(?1, ?2, ?3)",
    [ST_XATTR_UPDATE] = "UPDATE xattr SET value = ?3 WHERE ino = ?1 AND name = ?2",
    [ST_XATTR_UPSERT] = "INSERT INTO xattr(ino, name, value) VALUES(?1, ?2, ?3) "
			"ON CONFLICT(ino, name) DO UPDATE SET value = excluded.value",
    [ST_XATTR_LIST] = "SELECT name FROM xattr WHERE ino = ?1 ORDER BY name",
    [ST_XATTR_REMOVE] = "DELETE FROM xattr WHERE ino = ?1 AND name = ?2",
    [ST_CHUNK_DELETE_RANGE] = "DELETE FROM chunk WHERE ino = ?1 AND idx >= ?2 AND idx <= ?3",
    [ST_CHUNK_LIST] = "SELECT idx, state FROM chunk WHERE ino = ?1 ORDER BY idx",
    [ST_CHUNK_GET] = "SELECT state, object, length, version, atime FROM chunk "
		     "WHERE ino = ?1 AND idx = ?2",
    [ST_CHUNK_INSERT_DIRTY] = "INSERT INTO chunk(ino, idx, state, version, atime) "
			      "VALUES(?1, ?2, 0, ?4, ?3)",
    [ST_CHUNK_UPDATE_DIRTY] = "UPDATE chunk SET state = 0, version = ?4, atime = ?3 "
			      "WHERE ino = ?1 AND idx = ?2",
    [ST_CHUNK_MAX_VERSION] = "SELECT coalesce(max(version), 0) FROM chunk",
    [ST_CHUNK_SET_CLEAN] = "UPDATE chunk SET state = 1, object = ?3, length = ?4 "
			   "WHERE ino = ?1 AND idx = ?2",
    [ST_CHUNK_SET_STATE] = "UPDATE chunk SET state = ?4 WHERE ino = ?1 AND idx = ?2 AND state = ?3",
    [ST_CHUNK_DIRTY_LIST] = "SELECT ino, idx, state, object, length, version, atime FROM chunk "
			    "WHERE state = 0 AND (ino > ?1 OR (ino = ?1 AND idx > ?2)) "
			    "ORDER BY state, ino, idx LIMIT ?3",
    [ST_CHUNK_LRU_LIST] = "SELECT ino, idx, state, object, length, version, atime FROM chunk "
			  "WHERE state = 1 ORDER BY atime LIMIT ?1",
    [ST_CHUNK_TOUCH] = "UPDATE chunk SET atime = ?3 WHERE ino = ?1 AND idx = ?2",
    [ST_CHUNK_COUNTS] = "SELECT state, count(*), sum(length) FROM chunk GROUP BY state",
    [ST_CHUNK_DIRTY_BYTES] = "SELECT total(min(?1, max(0, i.size - c.idx * ?1))) FROM chunk c "
			     "JOIN inode i ON i.ino = c.ino WHERE c.state = 0",
    [ST_CHUNK_DIRTY_BYTES_INO] = "SELECT total(min(?1, max(0, ?3 - idx * ?1))) FROM chunk "
				 "WHERE ino = ?2 AND state = 0",
    /* by the chunk_state index: no row is read for a file without REMOTE chunks */
    [ST_CHUNK_REMOTE_BYTES_INO] = "SELECT total((length + ?2 - 1) / ?2 * ?2) FROM chunk "
				  "WHERE state = 2 AND ino = ?1",
    [ST_CHUNK_RESIDENCY] = "SELECT state, idx FROM chunk WHERE ino = ?1",
    [ST_OBJECT_UNREF_RANGE] =
	"UPDATE object SET refcount = refcount - (SELECT count(*) FROM chunk c "
	"WHERE c.ino = ?1 AND c.idx >= ?2 AND c.idx <= ?3 AND c.object = object.id) "
	"WHERE id IN (SELECT object FROM chunk WHERE ino = ?1 AND idx >= ?2 AND idx <= ?3 "
	"AND object IS NOT NULL)",
    [ST_OBJECT_REF] = "INSERT INTO object(id, refcount, stored_size) VALUES(?1, 1, ?2) "
		      "ON CONFLICT(id) DO UPDATE SET refcount = refcount + 1, released = 0",
    [ST_OBJECT_UNREF] = "UPDATE object SET refcount = refcount - 1 WHERE id = ?1",
    [ST_OBJECT_ENSURE] = "INSERT OR IGNORE INTO object(id, refcount, stored_size) "
			 "VALUES(?1, 0, ?2)",
    [ST_OBJECT_EXISTS] = "SELECT refcount FROM object WHERE id = ?1",
    /* released before ?2 and kept by no checkpoint */
    [ST_OBJECT_GARBAGE] = "SELECT id FROM object o WHERE refcount <= 0 AND released > 0 AND "
			  "released <= ?2 AND NOT EXISTS (SELECT 1 FROM checkpoint_object c "
			  "WHERE c.id = o.id) LIMIT ?1",
    [ST_OBJECT_STAMP] = "UPDATE object SET released = ?1 WHERE refcount <= 0 AND released = 0",
    [ST_OBJECT_DELETE] = "DELETE FROM object WHERE id = ?1 AND refcount <= 0",
    [ST_OBJECT_STATS] = "SELECT count(*), coalesce(sum(stored_size), 0) FROM object "
			"WHERE refcount > 0",
    [ST_ORPHAN_LIST] = "SELECT ino FROM inode WHERE nlink = 0",
    [ST_FILE_LIST] = "SELECT ino FROM inode WHERE (mode & 61440) = 32768",
};

struct meta {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];
	/*
	 * The last chunk version handed out. Every transition to DIRTY takes
	 * the next one, so that a version never comes back for a chunk, not
	 * even for a row deleted (truncate, O_TRUNC) and made anew while an
	 * upload of its old content is under way: that upload must not land.
	 * Starts above every version in the table.
	 */
	uint64_t version_seq;
	sqlite3_session *session; /* changes.c: what is shipped to the bucket */
	struct meta_rows rows;	  /* changes.c: rows it recorded since the last take */
	/* total changes after open: a cache changed outside a journaled mount is known (changes.c)
	 */
	sqlite3_int64 changes_at_open;
	/* deferred commits (rules B1-B3 below) */
	bool batch;		/* the open transaction holds deferred commits */
	bool joined;		/* the open meta_begin() is the savepoint meta_tx in the batch */
	bool batch_lost;	/* SQLite rolled a batch back: the caller's memory is wrong */
	int depth;		/* meta_begin() and helper savepoints open */
	int64_t batch_since_ms; /* CLOCK_MONOTONIC, when the batch opened */
	uint64_t batch_seq;	/* batches opened so far: the open one's id */
	struct backfill *backfill; /* backfill.c: the WAL's copy, off the caller's thread */
};

sqlite3 *meta_db(struct meta *m)
{
	return m->db;
}

struct backfill **meta_backfill(struct meta *m)
{
	return &m->backfill;
}

sqlite3_session **meta_session(struct meta *m)
{
	return &m->session;
}

struct meta_rows *meta_rows(struct meta *m)
{
	return &m->rows;
}

static int exec_sql(struct meta *m, const char *sql);

/* Map an SQLite result code to -errno, logging what is not routine. */
static int sqlite_errno(struct meta *m, int rc, const char *what)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_FULL:
		log_error("metadata: %s: %s", what, sqlite3_errmsg(m->db));
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		log_error("metadata: %s: %s", what, sqlite3_errmsg(m->db));
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CANTOPEN:
		log_error("metadata: %s: %s", what, sqlite3_errmsg(m->db));
		return -ENOENT;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		log_error("metadata: %s: %s", what, sqlite3_errmsg(m->db));
		return -EUCLEAN;
	default:
		log_error("metadata: %s: %s (sqlite %d)", what, sqlite3_errmsg(m->db), rc);
		return -EIO;
	}
}

/* Reset statement ID and return it ready for binding. */
static sqlite3_stmt *stmt_get(struct meta *m, enum stmt_id id)
{
	sqlite3_stmt *st = m->stmt[id];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/*
 * ---- deferred commits (group commit) ----
 *
 * An operation of the fs core that changes only metadata may end with
 * meta_commit_deferred(): its changes stay in an open transaction, the
 * batch, which the caller commits within milliseconds (meta_flush), so that
 * many operations share one commit. Rules:
 *  B1. Only changes whose loss in a crash leaves a consistent state may be
 *      deferred: nothing outside the database (a cache file's bytes, an
 *      object in the bucket, another connection) may depend on them. A
 *      crash loses the batch whole (it is one transaction), never a part.
 *  B2. Every other change commits the batch with it, so it is durable
 *      (against a crash of the process) when its call returns, as without
 *      batches: a meta_begin() in a batch is the savepoint meta_tx, and its
 *      meta_commit() commits everything; a write statement outside any
 *      transaction or savepoint commits the batch after it (meta_step); raw
 *      SQL (exec_sql), the change log, snapshots, sync and close commit it
 *      first. Reads see the batch (one connection).
 *  B3. A batch whose commit fails stays open and is tried again, unless
 *      SQLite rolled it back (a full disk, an I/O error): then
 *      meta_batch_lost() is true, the caller's view in memory is wrong, and
 *      it must stop (fs.c aborts: a crash, which the next mount recovers).
 */

/* SQL of the batch machinery itself: no rule B2. */
static int exec_raw(struct meta *m, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(m->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		log_error("metadata: %s: %s", sql, msg ? msg : sqlite3_errmsg(m->db));
		sqlite3_free(msg);
		return sqlite_errno(m, rc, "exec");
	}
	return 0;
}

static int batch_commit(struct meta *m)
{
	int ret;

	if (!m->batch)
		return 0;
	ret = exec_raw(m, "COMMIT");
	if (ret == 0) {
		m->batch = false;
	} else if (sqlite3_get_autocommit(m->db)) {
		m->batch = false;
		m->batch_lost = true; /* rule B3 */
		log_error("metadata: the last deferred changes were rolled back: %s",
			  strerror(-ret));
	}
	return ret;
}

int meta_flush(struct meta *m)
{
	return m->depth ? 0 : batch_commit(m);
}

bool meta_batch_open(const struct meta *m)
{
	return m->batch;
}

uint64_t meta_batch_id(const struct meta *m)
{
	return m->batch ? m->batch_seq : 0;
}

int64_t meta_batch_age_ms(const struct meta *m)
{
	return m->batch ? clock_ms(CLOCK_MONOTONIC) - m->batch_since_ms : 0;
}

bool meta_batch_lost(const struct meta *m)
{
	return m->batch_lost;
}

int meta_step(struct meta *m, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	/* rule B2: a write outside every transaction commits the batch with it */
	if (rc == SQLITE_DONE && m->batch && m->depth == 0 && !sqlite3_stmt_readonly(st) &&
	    batch_commit(m) != 0)
		rc = SQLITE_IOERR;
	return rc;
}

/* Run a statement that returns no rows. */
static int stmt_exec(struct meta *m, sqlite3_stmt *st, const char *what)
{
	int rc = meta_step(m, st);
	int ret = rc == SQLITE_DONE ? 0 : sqlite_errno(m, rc, what);

	sqlite3_reset(st);
	return ret;
}

static void bind_name(sqlite3_stmt *st, int col, const char *name)
{
	sqlite3_bind_blob(st, col, name, (int)strlen(name), SQLITE_STATIC);
}

int meta_errno(struct meta *m, int rc, const char *what)
{
	return sqlite_errno(m, rc, what);
}

int meta_exec(struct meta *m, const char *sql)
{
	return exec_sql(m, sql);
}

int meta_exec_int(struct meta *m, const char *sql, int64_t a, int64_t b, int64_t c)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(m->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return sqlite_errno(m, rc, sql);
	for (int i = 1; i <= sqlite3_bind_parameter_count(st) && i <= 3; i++)
		sqlite3_bind_int64(st, i, i == 1 ? a : i == 2 ? b : c);
	rc = meta_step(m, st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqlite_errno(m, rc, sql);
}

static int exec_sql(struct meta *m, const char *sql)
{
	if (m->batch && m->depth == 0) {
		int ret = batch_commit(m); /* rule B2 */
		if (ret)
			return ret;
	}
	return exec_raw(m, sql);
}

static void inode_from_row(sqlite3_stmt *st, int c, struct meta_inode *in)
{
	in->ino = (uint64_t)sqlite3_column_int64(st, c + 0);
	in->mode = (uint32_t)sqlite3_column_int64(st, c + 1);
	in->uid = (uint32_t)sqlite3_column_int64(st, c + 2);
	in->gid = (uint32_t)sqlite3_column_int64(st, c + 3);
	in->nlink = (uint32_t)sqlite3_column_int64(st, c + 4);
	in->size = (uint64_t)sqlite3_column_int64(st, c + 5);
	in->rdev = (uint64_t)sqlite3_column_int64(st, c + 6);
	in->atime.tv_sec = sqlite3_column_int64(st, c + 7);
	in->atime.tv_nsec = sqlite3_column_int64(st, c + 8);
	in->mtime.tv_sec = sqlite3_column_int64(st, c + 9);
	in->mtime.tv_nsec = sqlite3_column_int64(st, c + 10);
	in->ctime.tv_sec = sqlite3_column_int64(st, c + 11);
	in->ctime.tv_nsec = sqlite3_column_int64(st, c + 12);
	in->btime.tv_sec = sqlite3_column_int64(st, c + 13);
	in->btime.tv_nsec = sqlite3_column_int64(st, c + 14);
	in->flags = (uint32_t)sqlite3_column_int64(st, c + 15);
	in->blocks_known = sqlite3_column_type(st, c + 16) != SQLITE_NULL;
	in->blocks = in->blocks_known ? (uint64_t)sqlite3_column_int64(st, c + 16) : 0;
}

/* Bind IN's fields to parameters ?2..?16 and ?18 (?1 is the ino, ?17 a symlink's target). */
static void inode_bind(sqlite3_stmt *st, const struct meta_inode *in)
{
	sqlite3_bind_int64(st, 2, in->mode);
	sqlite3_bind_int64(st, 3, in->uid);
	sqlite3_bind_int64(st, 4, in->gid);
	sqlite3_bind_int64(st, 5, in->nlink);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)in->size);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)in->rdev);
	sqlite3_bind_int64(st, 8, in->atime.tv_sec);
	sqlite3_bind_int64(st, 9, in->atime.tv_nsec);
	sqlite3_bind_int64(st, 10, in->mtime.tv_sec);
	sqlite3_bind_int64(st, 11, in->mtime.tv_nsec);
	sqlite3_bind_int64(st, 12, in->ctime.tv_sec);
	sqlite3_bind_int64(st, 13, in->ctime.tv_nsec);
	sqlite3_bind_int64(st, 14, in->btime.tv_sec);
	sqlite3_bind_int64(st, 15, in->btime.tv_nsec);
	sqlite3_bind_int64(st, 16, in->flags);
	if (in->blocks_known)
		sqlite3_bind_int64(st, 18, (sqlite3_int64)in->blocks);
	else
		sqlite3_bind_null(st, 18);
}

static int meta_init_new(struct meta *m, uint32_t chunk_size, uid_t root_uid, gid_t root_gid)
{
	struct meta_inode root = {0};
	unsigned char id[16];
	char buf[64];
	int ret;

	clock_gettime(CLOCK_REALTIME, &root.atime);
	root.mtime = root.ctime = root.btime = root.atime;
	root.mode = S_IFDIR | 0755;
	root.uid = root_uid;
	root.gid = root_gid;
	root.nlink = 2;
	root.size = 4096;
	ret = meta_inode_insert(m, &root, NULL, 0);
	if (ret)
		return ret;
	if (root.ino != META_ROOT_INO)
		return -EUCLEAN;
	snprintf(buf, sizeof(buf), "%" PRIu32, chunk_size);
	ret = meta_setting_set(m, "chunk_size", buf);
	if (ret)
		return ret;
	if (getrandom(id, sizeof(id), 0) != sizeof(id))
		return -EIO;
	for (size_t i = 0; i < sizeof(id); i++)
		snprintf(buf + 2 * i, 3, "%02x", id[i]);
	ret = meta_setting_set(m, "fs_id", buf);
	if (ret)
		return ret;
	return meta_setting_set(m, "schema_version", META_SCHEMA_VERSION);
}

/*
 * Columns added since schema version 1 was first written, each the last of
 * its table in new databases too (a changeset names columns by position;
 * one recorded before a column was added applies after it).
 */
static const struct {
	const char *probe, *add;
} added_columns[] = {
    {"SELECT released FROM object LIMIT 0",
     "ALTER TABLE object ADD COLUMN released INTEGER NOT NULL DEFAULT 0"},
    {"SELECT blocks FROM inode LIMIT 0", "ALTER TABLE inode ADD COLUMN blocks INTEGER"},
};

static int schema_upgrade(struct meta *m)
{
	for (size_t i = 0; i < sizeof(added_columns) / sizeof(added_columns[0]); i++) {
		sqlite3_stmt *st;
		int ret;

		if (sqlite3_prepare_v2(m->db, added_columns[i].probe, -1, &st, NULL) == SQLITE_OK) {
			sqlite3_finalize(st);
			continue;
		}
		ret = exec_sql(m, added_columns[i].add);
		if (ret)
			return ret;
	}
	return 0;
}

static int version_seq_load(struct meta *m)
{
	sqlite3_stmt *st = stmt_get(m, ST_CHUNK_MAX_VERSION);
	int rc = meta_step(m, st), ret = 0;

	if (rc == SQLITE_ROW)
		m->version_seq = (uint64_t)sqlite3_column_int64(st, 0);
	else
		ret = sqlite_errno(m, rc, "chunk versions");
	sqlite3_reset(st);
	return ret;
}

int meta_open(const char *path, uint32_t chunk_size, uid_t root_uid, gid_t root_gid,
	      struct meta **out)
{
	struct meta *m = calloc(1, sizeof(*m));
	char version[16];
	int rc, ret, fd;

	if (!m)
		return -ENOMEM;
	/*
	 * The database holds every name and xattr value and the key of the
	 * object ids: 0600 whatever the umask. SQLite would create it 0644, and
	 * it gives the -wal and -shm files the database's mode.
	 */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (fchmod(fd, 0600) < 0)
			log_warn("metadata: cannot make %s private: %s", path, strerror(errno));
		close(fd);
	}
	rc = sqlite3_open_v2(
	    path, &m->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		ret = m->db ? sqlite_errno(m, rc, "open") : -ENOMEM;
		goto out_close;
	}
	sqlite3_busy_timeout(m->db, 5000);
	ret = exec_sql(m, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			  "PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY;");
	if (ret)
		goto out_close;
	ret = exec_sql(m, "BEGIN IMMEDIATE");
	if (ret)
		goto out_close;
	ret = exec_sql(m, schema_sql);
	if (ret)
		goto out_rollback;
	ret = schema_upgrade(m);
	if (ret)
		goto out_rollback;
	for (int i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(m->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					&m->stmt[i], NULL);
		if (rc != SQLITE_OK) {
			ret = sqlite_errno(m, rc, stmt_sql[i]);
			goto out_rollback;
		}
	}
	ret = meta_setting_get(m, "schema_version", version, sizeof(version));
	if (ret == -ENOENT) {
		ret = meta_init_new(m, chunk_size, root_uid, root_gid);
	} else if (ret == 0 && strcmp(version, META_SCHEMA_VERSION) != 0) {
		log_error("metadata: %s has schema version %s; this zero knows %s", path, version,
			  META_SCHEMA_VERSION);
		ret = -EPROTONOSUPPORT;
	}
	if (ret == 0)
		ret = version_seq_load(m);
	if (ret)
		goto out_rollback;
	ret = exec_sql(m, "COMMIT");
	if (ret)
		goto out_close;
	m->changes_at_open = sqlite3_total_changes64(m->db);
	*out = m;
	return 0;

out_rollback:
	sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
out_close:
	meta_close(m);
	return ret;
}

void meta_close(struct meta *m)
{
	if (!m)
		return;
	meta_backfill_stop(m);
	if (batch_commit(m))
		log_error("metadata: deferred changes lost at close");
	/* changes.c rule 3: changed without a session, the bucket's copy is behind */
	if (!*meta_session(m) && sqlite3_total_changes64(m->db) != m->changes_at_open)
		meta_local_set(m, "journal_stale", "1");
	meta_changes_close(m);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(m->stmt[i]);
	sqlite3_close(m->db);
	free(m);
}

int meta_begin(struct meta *m)
{
	int ret;

	if (m->depth)
		return -EBUSY; /* not nested */
	if (m->batch) {
		ret = exec_raw(m, "SAVEPOINT meta_tx"); /* rule B2 */
		m->joined = ret == 0;
	} else {
		ret = stmt_exec(m, stmt_get(m, ST_BEGIN), "begin");
	}
	if (ret == 0)
		m->depth = 1;
	return ret;
}

int meta_commit(struct meta *m)
{
	int ret;

	if (m->joined) {
		ret = exec_raw(m, "RELEASE meta_tx");
		m->joined = false;
		m->depth = 0;
		return ret ? ret : batch_commit(m);
	}
	m->depth = 0;
	ret = stmt_exec(m, stmt_get(m, ST_COMMIT), "commit");
	if (ret)
		meta_rollback(m);
	return ret;
}

int meta_commit_deferred(struct meta *m)
{
	m->depth = 0;
	if (m->joined) {
		m->joined = false;
		return exec_raw(m, "RELEASE meta_tx");
	}
	m->batch = true; /* the transaction stays open: rule B1 */
	m->batch_since_ms = clock_ms(CLOCK_MONOTONIC);
	m->batch_seq++;
	return 0;
}

void meta_rollback(struct meta *m)
{
	m->depth = 0;
	if (m->joined) {
		/* this operation's changes go; the batch before it stays */
		m->joined = false;
		if (exec_raw(m, "ROLLBACK TO meta_tx") == 0 && exec_raw(m, "RELEASE meta_tx") == 0)
			return;
	}
	if (!sqlite3_get_autocommit(m->db))
		stmt_exec(m, stmt_get(m, ST_ROLLBACK), "rollback");
	if (m->batch) {
		m->batch = false;
		m->batch_lost = true; /* rule B3 */
		log_error("metadata: a rollback took the last deferred changes with it");
	}
}

int meta_sync(struct meta *m)
{
	int ret = exec_sql(m, "PRAGMA synchronous=FULL"); /* commits the batch first (rule B2) */

	if (ret)
		return ret;
	/* A write transaction under FULL fsyncs the WAL, and with it every earlier commit. */
	ret = meta_setting_set(m, "last_sync", "1");
	int ret2 = exec_sql(m, "PRAGMA synchronous=NORMAL");
	return ret ? ret : ret2;
}

int meta_setting_get(struct meta *m, const char *key, char *buf, size_t size)
{
	sqlite3_stmt *st = stmt_get(m, ST_SETTING_GET);
	int rc, ret;

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = meta_step(m, st);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		ret = snprintf(buf, size, "%s", v ? v : "") >= (int)size ? -ERANGE : 0;
	} else {
		ret = rc == SQLITE_DONE ? -ENOENT : sqlite_errno(m, rc, "setting get");
	}
	sqlite3_reset(st);
	return ret;
}

int meta_setting_set(struct meta *m, const char *key, const char *value)
{
	sqlite3_stmt *st = stmt_get(m, ST_SETTING_SET);

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	return stmt_exec(m, st, "setting set");
}

int meta_inode_get(struct meta *m, uint64_t ino, struct meta_inode *out)
{
	sqlite3_stmt *st = stmt_get(m, ST_INODE_GET);
	int rc, ret = 0;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	rc = meta_step(m, st);
	if (rc == SQLITE_ROW)
		inode_from_row(st, 0, out);
	else
		ret = rc == SQLITE_DONE ? -ENOENT : sqlite_errno(m, rc, "inode get");
	sqlite3_reset(st);
	return ret;
}

int meta_inode_insert(struct meta *m, struct meta_inode *in, const char *target, size_t target_len)
{
	sqlite3_stmt *st = stmt_get(m, ST_INODE_INSERT);
	int ret;

	inode_bind(st, in);
	if (target)
		sqlite3_bind_blob(st, 17, target, (int)target_len, SQLITE_STATIC);
	ret = stmt_exec(m, st, "inode insert");
	if (ret == 0)
		in->ino = (uint64_t)sqlite3_last_insert_rowid(m->db);
	return ret;
}

int meta_inode_update(struct meta *m, const struct meta_inode *in)
{
	sqlite3_stmt *st = stmt_get(m, ST_INODE_UPDATE);
	int ret;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)in->ino);
	inode_bind(st, in);
	ret = stmt_exec(m, st, "inode update");
	if (ret == 0 && sqlite3_changes(m->db) == 0)
		ret = -ENOENT;
	return ret;
}

static int chunk_delete_range(struct meta *m, uint64_t ino, uint64_t first, uint64_t last);
static int savepoint_begin(struct meta *m);
static int savepoint_end(struct meta *m, int ret);

int meta_inode_delete(struct meta *m, uint64_t ino)
{
	static const enum stmt_id ids[] = {ST_INODE_XATTRS_DELETE, ST_INODE_LOST_DELETE,
					   ST_INODE_DELETE};
	int ret = savepoint_begin(m);

	if (ret)
		return ret;
	ret = chunk_delete_range(m, ino, 0, UINT64_MAX);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]) && ret == 0; i++) {
		sqlite3_stmt *st = stmt_get(m, ids[i]);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
		ret = stmt_exec(m, st, "inode delete");
	}
	return savepoint_end(m, ret);
}

int meta_symlink_get(struct meta *m, uint64_t ino, char *buf, size_t size, size_t *len)
{
	sqlite3_stmt *st = stmt_get(m, ST_SYMLINK_GET);
	int rc, ret = 0;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	rc = meta_step(m, st);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		const void *p = sqlite3_column_blob(st, 0);
		*len = n;
		if (n > size)
			n = size;
		if (n)
			memcpy(buf, p, n);
	} else {
		ret = rc == SQLITE_DONE ? -ENOENT : sqlite_errno(m, rc, "symlink get");
	}
	sqlite3_reset(st);
	return ret;
}

int meta_inode_usage(struct meta *m, uint64_t *count, uint64_t *bytes)
{
	sqlite3_stmt *st = stmt_get(m, ST_INODE_COUNT);
	int rc = meta_step(m, st);
	int ret = 0;

	if (rc == SQLITE_ROW) {
		*count = (uint64_t)sqlite3_column_int64(st, 0);
		*bytes = (uint64_t)sqlite3_column_int64(st, 1);
	}
	else
		ret = sqlite_errno(m, rc, "inode count");
	sqlite3_reset(st);
	return ret;
}

int meta_dentry_lookup(struct meta *m, uint64_t parent, const char *name, uint64_t *ino)
{
	sqlite3_stmt *st = stmt_get(m, ST_DENTRY_LOOKUP);
	int rc, ret = 0;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
	bind_name(st, 2, name);
	rc = meta_step(m, st);
	if (rc == SQLITE_ROW)
		*ino = (uint64_t)sqlite3_column_int64(st, 0);
	else
		ret = rc == SQLITE_DONE ? -ENOENT : sqlite_errno(m, rc, "lookup");
	sqlite3_reset(st);
	return ret;
}

int meta_dentry_insert(struct meta *m, uint64_t parent, const char *name, uint64_t ino)
{
	sqlite3_stmt *st = stmt_get(m, ST_DENTRY_INSERT);

	sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
	bind_name(st, 2, name);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)ino);
	return stmt_exec(m, st, "dentry insert");
}

/* Run ST (already bound) and map "no row changed" to -ENOENT. */
static int stmt_exec_changed(struct meta *m, sqlite3_stmt *st, const char *what)
{
	int ret = stmt_exec(m, st, what);

	if (ret == 0 && sqlite3_changes(m->db) == 0)
		ret = -ENOENT;
	return ret;
}

int meta_dentry_delete(struct meta *m, uint64_t parent, const char *name)
{
	sqlite3_stmt *st = stmt_get(m, ST_DENTRY_DELETE);

	sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
	bind_name(st, 2, name);
	return stmt_exec_changed(m, st, "dentry delete");
}

int meta_dentry_move(struct meta *m, uint64_t parent, const char *name, uint64_t newparent,
		     const char *newname)
{
	sqlite3_stmt *st = stmt_get(m, ST_DENTRY_MOVE);

	sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
	bind_name(st, 2, name);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)newparent);
	bind_name(st, 4, newname);
	return stmt_exec_changed(m, st, "dentry move");
}

int meta_dentry_set_ino(struct meta *m, uint64_t parent, const char *name, uint64_t ino)
{
	sqlite3_stmt *st = stmt_get(m, ST_DENTRY_SET_INO);

	sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
	bind_name(st, 2, name);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)ino);
	return stmt_exec_changed(m, st, "dentry set ino");
}

int meta_dir_has_entries(struct meta *m, uint64_t ino)
{
	sqlite3_stmt *st = stmt_get(m, ST_DIR_HAS_ENTRIES);
	int rc, ret;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	rc = meta_step(m, st);
	ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : sqlite_errno(m, rc, "dir entries");
	sqlite3_reset(st);
	return ret;
}

int meta_dir_parent(struct meta *m, uint64_t ino, uint64_t *parent)
{
	sqlite3_stmt *st;
	int rc, ret = 0;

	if (ino == META_ROOT_INO) {
		*parent = META_ROOT_INO;
		return 0;
	}
	st = stmt_get(m, ST_DIR_PARENT);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	rc = meta_step(m, st);
	if (rc == SQLITE_ROW)
		*parent = (uint64_t)sqlite3_column_int64(st, 0);
	else
		ret = rc == SQLITE_DONE ? -ENOENT : sqlite_errno(m, rc, "dir parent");
	sqlite3_reset(st);
	return ret;
}

int meta_readdir(struct meta *m, uint64_t parent, uint64_t after, meta_readdir_cb cb, void *arg)
{
	sqlite3_stmt *st = stmt_get(m, ST_READDIR);
	char name[256];
	int rc, ret = 0;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)after);
	while ((rc = meta_step(m, st)) == SQLITE_ROW) {
		struct meta_inode in;
		size_t n = (size_t)sqlite3_column_bytes(st, 1);

		if (n >= sizeof(name))
			n = sizeof(name) - 1;
		memcpy(name, sqlite3_column_blob(st, 1), n);
		name[n] = '\0';
		inode_from_row(st, 2, &in);
		ret = cb(arg, (uint64_t)sqlite3_column_int64(st, 0), name, &in);
		if (ret)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = sqlite_errno(m, rc, "readdir");
	sqlite3_reset(st);
	return ret;
}

int meta_xattr_get(struct meta *m, uint64_t ino, const char *name, void *buf, size_t size,
		   size_t *len)
{
	sqlite3_stmt *st = stmt_get(m, ST_XATTR_GET);
	int rc, ret = 0;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	bind_name(st, 2, name);
	rc = meta_step(m, st);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		*len = n;
		if (size) {
			if (n > size)
				ret = -ERANGE;
			else if (n)
				memcpy(buf, sqlite3_column_blob(st, 0), n);
		}
	} else {
		ret = rc == SQLITE_DONE ? -ENODATA : sqlite_errno(m, rc, "xattr get");
	}
	sqlite3_reset(st);
	return ret;
}

int meta_xattr_set(struct meta *m, uint64_t ino, const char *name, const void *value, size_t len,
		   int flags)
{
	enum stmt_id id = (flags & XATTR_CREATE)    ? ST_XATTR_INSERT
			  : (flags & XATTR_REPLACE) ? ST_XATTR_UPDATE
						    : ST_XATTR_UPSERT;
	sqlite3_stmt *st = stmt_get(m, id);
	int ret;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	bind_name(st, 2, name);
	/* A zero-length value must still be a blob, not NULL. */
	sqlite3_bind_blob(st, 3, len ? value : "", (int)len, SQLITE_STATIC);
	ret = stmt_exec(m, st, "xattr set");
	if (id == ST_XATTR_UPDATE && ret == 0 && sqlite3_changes(m->db) == 0)
		ret = -ENODATA;
	return ret; /* -EEXIST from the primary key for XATTR_CREATE */
}

int meta_xattr_name_used(struct meta *m, const char *name)
{
	sqlite3_stmt *st;
	int rc =
	    sqlite3_prepare_v2(m->db, "SELECT 1 FROM xattr WHERE name = ? LIMIT 1", -1, &st, NULL);

	if (rc != SQLITE_OK)
		return sqlite_errno(m, rc, "xattr name used");
	bind_name(st, 1, name);
	rc = meta_step(m, st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW	   ? 1
	       : rc == SQLITE_DONE ? 0
				   : sqlite_errno(m, rc, "xattr name used");
}

int meta_xattr_list(struct meta *m, uint64_t ino, char *buf, size_t size, size_t *len)
{
	sqlite3_stmt *st = stmt_get(m, ST_XATTR_LIST);
	size_t total = 0;
	int rc, ret = 0;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	while ((rc = meta_step(m, st)) == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		if (size && total + n + 1 <= size) {
			memcpy(buf + total, sqlite3_column_blob(st, 0), n);
			buf[total + n] = '\0';
		}
		total += n + 1;
	}
	if (rc != SQLITE_DONE)
		ret = sqlite_errno(m, rc, "xattr list");
	sqlite3_reset(st);
	*len = total;
	if (ret == 0 && size && total > size)
		ret = -ERANGE;
	return ret;
}

int meta_xattr_remove(struct meta *m, uint64_t ino, const char *name)
{
	sqlite3_stmt *st = stmt_get(m, ST_XATTR_REMOVE);
	int ret;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	bind_name(st, 2, name);
	ret = stmt_exec_changed(m, st, "xattr remove");
	return ret == -ENOENT ? -ENODATA : ret;
}

/*
 * Statements that must apply together run inside a savepoint (nestable in a
 * transaction). Outside a transaction the savepoint is one, and its RELEASE
 * is the commit: when that fails (a full disk: SQLITE_FULL), the
 * transaction would stay open and every later BEGIN fail ("cannot start a
 * transaction within a transaction"), so it is rolled back.
 */
static int savepoint_begin(struct meta *m)
{
	int ret = exec_raw(m, "SAVEPOINT meta_sp"); /* in a batch: nested in it */

	if (ret == 0)
		m->depth++;
	return ret;
}

static int savepoint_end(struct meta *m, int ret)
{
	int ret2;

	if (ret)
		exec_raw(m, "ROLLBACK TO meta_sp");
	ret2 = exec_raw(m, "RELEASE meta_sp");
	m->depth--;
	if (ret2)
		meta_rollback(m);
	else if (ret == 0 && m->depth == 0)
		ret2 = batch_commit(m); /* rule B2 */
	return ret ? ret : ret2;
}

static void bind_range(sqlite3_stmt *st, uint64_t ino, uint64_t first, uint64_t last)
{
	if (last > (uint64_t)INT64_MAX)
		last = (uint64_t)INT64_MAX;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)first);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)last);
}

/* Drop the object references of chunks FIRST..LAST of INO, then the rows. */
static int chunk_delete_range(struct meta *m, uint64_t ino, uint64_t first, uint64_t last)
{
	sqlite3_stmt *st = stmt_get(m, ST_OBJECT_UNREF_RANGE);
	int ret;

	bind_range(st, ino, first, last);
	ret = stmt_exec(m, st, "object unref");
	if (ret)
		return ret;
	st = stmt_get(m, ST_CHUNK_DELETE_RANGE);
	bind_range(st, ino, first, last);
	return stmt_exec(m, st, "chunk delete");
}

int meta_chunk_delete_range(struct meta *m, uint64_t ino, uint64_t first, uint64_t last)
{
	int ret = savepoint_begin(m);

	if (ret)
		return ret;
	return savepoint_end(m, chunk_delete_range(m, ino, first, last));
}

static void chunk_from_row(sqlite3_stmt *st, int c, struct meta_chunk *ch)
{
	const void *obj = sqlite3_column_blob(st, c + 1);

	ch->state = (enum meta_chunk_state)sqlite3_column_int(st, c);
	ch->has_object = obj && sqlite3_column_bytes(st, c + 1) == META_OBJECT_ID_LEN;
	if (ch->has_object)
		memcpy(ch->object, obj, META_OBJECT_ID_LEN);
	ch->length = (uint64_t)sqlite3_column_int64(st, c + 2);
	ch->version = (uint64_t)sqlite3_column_int64(st, c + 3);
	ch->atime = sqlite3_column_int64(st, c + 4);
}

int meta_chunk_get(struct meta *m, uint64_t ino, uint64_t idx, struct meta_chunk *out)
{
	sqlite3_stmt *st = stmt_get(m, ST_CHUNK_GET);
	int rc, ret = 0;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)idx);
	rc = meta_step(m, st);
	if (rc == SQLITE_ROW) {
		out->ino = ino;
		out->idx = idx;
		chunk_from_row(st, 0, out);
	} else {
		ret = rc == SQLITE_DONE ? -ENOENT : sqlite_errno(m, rc, "chunk get");
	}
	sqlite3_reset(st);
	return ret;
}

int meta_chunk_set_dirty(struct meta *m, uint64_t ino, uint64_t idx, int64_t now)
{
	struct meta_chunk ch;
	sqlite3_stmt *st;
	int ret = meta_chunk_get(m, ino, idx, &ch);

	if (ret && ret != -ENOENT)
		return ret;
	st = stmt_get(m, ret == -ENOENT ? ST_CHUNK_INSERT_DIRTY : ST_CHUNK_UPDATE_DIRTY);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)idx);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)(m->version_seq + 1));
	int was_dirty = ret == 0 && ch.state == CHUNK_DIRTY;
	ret = stmt_exec(m, st, "chunk dirty");
	if (ret == 0)
		m->version_seq++; /* (a rolled-back one is only skipped) */
	return ret ? ret : !was_dirty;
}

int meta_chunk_set_clean(struct meta *m, uint64_t ino, uint64_t idx, uint64_t version,
			 const uint8_t object[META_OBJECT_ID_LEN], uint64_t length,
			 uint64_t stored_size)
{
	struct meta_chunk ch;
	sqlite3_stmt *st;
	int ret, done = 0;

	ret = savepoint_begin(m);
	if (ret)
		return ret;
	ret = meta_chunk_get(m, ino, idx, &ch);
	if (ret == -ENOENT || (ret == 0 && (ch.state != CHUNK_DIRTY || ch.version != version))) {
		/* the chunk changed or went while it was uploaded: the object is garbage */
		st = stmt_get(m, ST_OBJECT_ENSURE);
		sqlite3_bind_blob(st, 1, object, META_OBJECT_ID_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)stored_size);
		ret = stmt_exec(m, st, "object ensure");
		goto out;
	}
	if (ret)
		goto out;
	st = stmt_get(m, ST_OBJECT_REF);
	sqlite3_bind_blob(st, 1, object, META_OBJECT_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)stored_size);
	ret = stmt_exec(m, st, "object ref");
	if (ret == 0 && ch.has_object) {
		st = stmt_get(m, ST_OBJECT_UNREF);
		sqlite3_bind_blob(st, 1, ch.object, META_OBJECT_ID_LEN, SQLITE_STATIC);
		ret = stmt_exec(m, st, "object unref");
	}
	if (ret == 0) {
		st = stmt_get(m, ST_CHUNK_SET_CLEAN);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)idx);
		sqlite3_bind_blob(st, 3, object, META_OBJECT_ID_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)length);
		ret = stmt_exec(m, st, "chunk clean");
	}
	done = 1;
out:
	ret = savepoint_end(m, ret);
	return ret ? ret : done;
}

int meta_chunk_set_state(struct meta *m, uint64_t ino, uint64_t idx, enum meta_chunk_state from,
			 enum meta_chunk_state to)
{
	sqlite3_stmt *st = stmt_get(m, ST_CHUNK_SET_STATE);
	int ret;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)idx);
	sqlite3_bind_int(st, 3, from);
	sqlite3_bind_int(st, 4, to);
	ret = stmt_exec(m, st, "chunk state");
	return ret ? ret : sqlite3_changes(m->db) > 0;
}

/* Run ST and hand each row (ino, idx, then the chunk columns) to CB. */
static int chunk_rows(struct meta *m, sqlite3_stmt *st, meta_chunk_row_cb cb, void *arg)
{
	int rc, ret = 0;

	while ((rc = meta_step(m, st)) == SQLITE_ROW) {
		struct meta_chunk ch;
		ch.ino = (uint64_t)sqlite3_column_int64(st, 0);
		ch.idx = (uint64_t)sqlite3_column_int64(st, 1);
		chunk_from_row(st, 2, &ch);
		ret = cb(arg, &ch);
		if (ret)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = sqlite_errno(m, rc, "chunk rows");
	sqlite3_reset(st);
	return ret;
}

int meta_chunk_dirty_list(struct meta *m, uint64_t after_ino, uint64_t after_idx, size_t limit,
			  meta_chunk_row_cb cb, void *arg)
{
	sqlite3_stmt *st = stmt_get(m, ST_CHUNK_DIRTY_LIST);

	sqlite3_bind_int64(st, 1, (sqlite3_int64)after_ino);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)after_idx);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
	return chunk_rows(m, st, cb, arg);
}

int meta_chunk_lru_list(struct meta *m, size_t limit, meta_chunk_row_cb cb, void *arg)
{
	sqlite3_stmt *st = stmt_get(m, ST_CHUNK_LRU_LIST);

	sqlite3_bind_int64(st, 1, (sqlite3_int64)limit);
	return chunk_rows(m, st, cb, arg);
}

int meta_chunk_touch(struct meta *m, uint64_t ino, uint64_t idx, int64_t atime)
{
	sqlite3_stmt *st = stmt_get(m, ST_CHUNK_TOUCH);
	int ret;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)idx);
	sqlite3_bind_int64(st, 3, atime);
	/* eviction order is this cache's business: not shipped */
	meta_changes_pause(m, true);
	ret = stmt_exec(m, st, "chunk touch");
	meta_changes_pause(m, false);
	return ret;
}

int meta_chunk_counts(struct meta *m, uint64_t count[3], uint64_t bytes[3])
{
	sqlite3_stmt *st = stmt_get(m, ST_CHUNK_COUNTS);
	int rc, ret = 0;

	memset(count, 0, 3 * sizeof(*count));
	memset(bytes, 0, 3 * sizeof(*bytes));
	while ((rc = meta_step(m, st)) == SQLITE_ROW) {
		int s = sqlite3_column_int(st, 0);
		if (s < 0 || s > 2)
			continue;
		count[s] = (uint64_t)sqlite3_column_int64(st, 1);
		bytes[s] = (uint64_t)sqlite3_column_int64(st, 2);
	}
	if (rc != SQLITE_DONE)
		ret = sqlite_errno(m, rc, "chunk counts");
	sqlite3_reset(st);
	return ret;
}

/* The one number statement ST yields (bound already), into *OUT. */
static int stmt_total(struct meta *m, sqlite3_stmt *st, const char *what, uint64_t *out)
{
	int rc, ret = 0;

	*out = 0;
	rc = meta_step(m, st);
	if (rc == SQLITE_ROW)
		*out = (uint64_t)sqlite3_column_double(st, 0);
	else
		ret = sqlite_errno(m, rc, what);
	sqlite3_reset(st);
	return ret;
}

int meta_chunk_dirty_bytes(struct meta *m, uint64_t chunk_size, uint64_t *bytes)
{
	sqlite3_stmt *st = stmt_get(m, ST_CHUNK_DIRTY_BYTES);

	sqlite3_bind_int64(st, 1, (sqlite3_int64)chunk_size);
	return stmt_total(m, st, "dirty bytes", bytes);
}

int meta_chunk_dirty_bytes_ino(struct meta *m, uint64_t ino, uint64_t chunk_size, uint64_t size,
			       uint64_t *bytes)
{
	sqlite3_stmt *st = stmt_get(m, ST_CHUNK_DIRTY_BYTES_INO);

	sqlite3_bind_int64(st, 1, (sqlite3_int64)chunk_size);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)ino);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)size);
	return stmt_total(m, st, "dirty bytes of a file", bytes);
}

int meta_chunk_remote_bytes_ino(struct meta *m, uint64_t ino, uint64_t block, uint64_t *bytes)
{
	sqlite3_stmt *st = stmt_get(m, ST_CHUNK_REMOTE_BYTES_INO);

	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)block);
	return stmt_total(m, st, "remote bytes of a file", bytes);
}

int meta_chunk_residency(struct meta *m, uint64_t ino, meta_chunk_cb cb, void *arg)
{
	sqlite3_stmt *st = stmt_get(m, ST_CHUNK_RESIDENCY);
	int rc, ret = 0;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	while ((rc = meta_step(m, st)) == SQLITE_ROW) {
		ret = cb(arg, (uint64_t)sqlite3_column_int64(st, 1),
			 (enum meta_chunk_state)sqlite3_column_int(st, 0));
		if (ret)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = sqlite_errno(m, rc, "chunk residency");
	sqlite3_reset(st);
	return ret;
}

int meta_object_exists(struct meta *m, const uint8_t id[META_OBJECT_ID_LEN])
{
	sqlite3_stmt *st = stmt_get(m, ST_OBJECT_EXISTS);
	int rc, ret;

	sqlite3_bind_blob(st, 1, id, META_OBJECT_ID_LEN, SQLITE_STATIC);
	rc = meta_step(m, st);
	ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : sqlite_errno(m, rc, "object exists");
	sqlite3_reset(st);
	return ret;
}

int meta_object_garbage(struct meta *m, size_t limit, int64_t now, int64_t released_before,
			meta_object_cb cb, void *arg)
{
	sqlite3_stmt *st = stmt_get(m, ST_OBJECT_STAMP);
	uint8_t(*ids)[META_OBJECT_ID_LEN] = NULL;
	size_t n = 0;
	int rc, ret;

	/* objects that lost their last reference since the last call were released now */
	sqlite3_bind_int64(st, 1, now);
	ret = stmt_exec(m, st, "object release");
	if (ret)
		return ret;
	ids = calloc(limit ? limit : 1, META_OBJECT_ID_LEN);
	if (!ids)
		return -ENOMEM;
	st = stmt_get(m, ST_OBJECT_GARBAGE);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)limit);
	sqlite3_bind_int64(st, 2, released_before);
	while ((rc = meta_step(m, st)) == SQLITE_ROW && n < limit) {
		if (sqlite3_column_bytes(st, 0) == META_OBJECT_ID_LEN)
			memcpy(ids[n++], sqlite3_column_blob(st, 0), META_OBJECT_ID_LEN);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = sqlite_errno(m, rc, "object garbage");
	sqlite3_reset(st);
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = cb(arg, ids[i]);
	free(ids);
	return ret;
}

int meta_object_delete(struct meta *m, const uint8_t id[META_OBJECT_ID_LEN])
{
	sqlite3_stmt *st = stmt_get(m, ST_OBJECT_DELETE);
	int ret;

	sqlite3_bind_blob(st, 1, id, META_OBJECT_ID_LEN, SQLITE_STATIC);
	ret = stmt_exec(m, st, "object delete");
	return ret ? ret : sqlite3_changes(m->db) > 0;
}

int meta_object_stats(struct meta *m, uint64_t *count, uint64_t *bytes)
{
	sqlite3_stmt *st = stmt_get(m, ST_OBJECT_STATS);
	int rc = meta_step(m, st), ret = 0;

	if (rc == SQLITE_ROW) {
		*count = (uint64_t)sqlite3_column_int64(st, 0);
		*bytes = (uint64_t)sqlite3_column_int64(st, 1);
	} else {
		ret = sqlite_errno(m, rc, "object stats");
	}
	sqlite3_reset(st);
	return ret;
}

/* The statements below run seldom (fsck, the orphan sweep): prepared on each call. */

int meta_inode_path(struct meta *m, uint64_t ino, char *buf, size_t size, uint64_t *links)
{
	static const char sql[] =
	    "SELECT parent, name, (SELECT count(*) FROM dentry WHERE ino = ?1) "
	    "FROM dentry WHERE ino = ?1 ORDER BY id LIMIT 1";
	sqlite3_stmt *st = NULL;
	uint64_t *seen = NULL; /* the inodes walked through, to tell a circle */
	char *tmp = NULL;
	size_t pos;
	int rc, ret = 0;

	if (size < 2)
		return -ENAMETOOLONG;
	rc = sqlite3_prepare_v2(m->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_errno(m, rc, "inode path");
	tmp = malloc(size);
	seen = calloc(size / 2 + 1, sizeof(*seen));
	if (!tmp || !seen) {
		ret = -ENOMEM;
		goto out_finalize;
	}
	/* the path is built from its end: tmp[pos..size-1] holds it so far */
	pos = size - 1;
	tmp[pos] = '\0';
	if (links)
		*links = ino == META_ROOT_INO ? 1 : 0;
	/* every step takes 2 bytes or more: at most size / 2 of them fit */
	for (size_t depth = 0; ino != META_ROOT_INO; depth++) {
		const void *name;
		size_t len;

		for (size_t i = 0; i < depth; i++) {
			if (seen[i] == ino) {
				ret = -ELOOP;
				goto out_free;
			}
		}
		if (depth > size / 2) {
			ret = -ENAMETOOLONG;
			goto out_free;
		}
		seen[depth] = ino;
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
		rc = meta_step(m, st);
		if (rc == SQLITE_DONE) {
			ret = -ENOENT;
			goto out_free;
		}
		if (rc != SQLITE_ROW) {
			ret = sqlite_errno(m, rc, "inode path");
			goto out_free;
		}
		if (links && depth == 0)
			*links = (uint64_t)sqlite3_column_int64(st, 2);
		name = sqlite3_column_blob(st, 1);
		len = (size_t)sqlite3_column_bytes(st, 1);
		if (len + 1 > pos) {
			ret = -ENAMETOOLONG;
			goto out_free;
		}
		pos -= len;
		if (len)
			memcpy(tmp + pos, name, len);
		tmp[--pos] = '/';
		ino = (uint64_t)sqlite3_column_int64(st, 0);
	}
	if (pos == size - 1)
		tmp[--pos] = '/'; /* the root itself */
	memcpy(buf, tmp + pos, size - pos);
out_free:
	free(seen);
	free(tmp);
out_finalize:
	sqlite3_finalize(st);
	return ret;
}

int meta_chunk_object_list(struct meta *m, meta_chunk_object_cb cb, void *arg)
{
	static const char sql[] =
	    "SELECT c.ino, c.idx, c.state, c.object, c.length, c.version, c.atime, "
	    "coalesce(o.stored_size, 0) FROM chunk c LEFT JOIN object o ON o.id = c.object "
	    "WHERE c.object IS NOT NULL ORDER BY c.object, c.ino, c.idx";
	sqlite3_stmt *st = NULL;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(m->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_errno(m, rc, "chunk objects");
	while ((rc = meta_step(m, st)) == SQLITE_ROW) {
		struct meta_chunk ch = {0};

		if (sqlite3_column_bytes(st, 3) != META_OBJECT_ID_LEN)
			continue; /* not an id Zero wrote; meta_check has no rule for it */
		ch.ino = (uint64_t)sqlite3_column_int64(st, 0);
		ch.idx = (uint64_t)sqlite3_column_int64(st, 1);
		ch.state = (enum meta_chunk_state)sqlite3_column_int(st, 2);
		ch.has_object = true;
		memcpy(ch.object, sqlite3_column_blob(st, 3), META_OBJECT_ID_LEN);
		ch.length = (uint64_t)sqlite3_column_int64(st, 4);
		ch.version = (uint64_t)sqlite3_column_int64(st, 5);
		ch.atime = sqlite3_column_int64(st, 6);
		ret = cb(arg, &ch, (uint64_t)sqlite3_column_int64(st, 7));
		if (ret)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = sqlite_errno(m, rc, "chunk objects");
	sqlite3_finalize(st);
	return ret;
}

static int id_compare(const void *a, const void *b)
{
	return memcmp(a, b, META_OBJECT_ID_LEN);
}

int meta_object_filter_unknown(struct meta *m, uint8_t (*ids)[META_OBJECT_ID_LEN], size_t n,
			       size_t *kept)
{
	sqlite3_stmt *st = NULL;
	bool *referenced = NULL;
	size_t k = 0;
	int rc, ret = 0;

	*kept = 0;
	for (size_t i = 0; i < n; i++) {
		ret = meta_object_exists(m, ids[i]);
		if (ret < 0)
			return ret;
		if (ret == 0) {
			if (k != i)
				memcpy(ids[k], ids[i], META_OBJECT_ID_LEN);
			k++;
		}
	}
	ret = 0;
	if (k == 0)
		return 0;
	/*
	 * No object row: a chunk row may still name it (a table meta_check
	 * would repair). The chunk table has no index on object: one scan.
	 */
	qsort(ids, k, META_OBJECT_ID_LEN, id_compare);
	referenced = calloc(k, sizeof(*referenced));
	if (!referenced)
		return -ENOMEM;
	rc = sqlite3_prepare_v2(m->db, "SELECT object FROM chunk WHERE object IS NOT NULL", -1, &st,
				NULL);
	if (rc != SQLITE_OK) {
		ret = sqlite_errno(m, rc, "object references");
		goto out_free;
	}
	while ((rc = meta_step(m, st)) == SQLITE_ROW) {
		const uint8_t *hit;

		if (sqlite3_column_bytes(st, 0) != META_OBJECT_ID_LEN)
			continue;
		hit = bsearch(sqlite3_column_blob(st, 0), ids, k, META_OBJECT_ID_LEN, id_compare);
		if (hit)
			referenced[(size_t)(hit - ids[0]) / META_OBJECT_ID_LEN] = true;
	}
	if (rc != SQLITE_DONE) {
		ret = sqlite_errno(m, rc, "object references");
		goto out_finalize;
	}
	for (size_t i = 0; i < k; i++)
		if (!referenced[i])
			memmove(ids[(*kept)++], ids[i], META_OBJECT_ID_LEN);
out_finalize:
	sqlite3_finalize(st);
out_free:
	free(referenced);
	return ret;
}

int meta_chunk_list(struct meta *m, uint64_t ino, meta_chunk_cb cb, void *arg)
{
	sqlite3_stmt *st = stmt_get(m, ST_CHUNK_LIST);
	int rc, ret = 0;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	while ((rc = meta_step(m, st)) == SQLITE_ROW) {
		ret = cb(arg, (uint64_t)sqlite3_column_int64(st, 0),
			 (enum meta_chunk_state)sqlite3_column_int(st, 1));
		if (ret)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = sqlite_errno(m, rc, "chunk list");
	sqlite3_reset(st);
	return ret;
}

/* Collect the first column of every row of ST into a heap array, then call CB on each:
 * callbacks may then change the table the statement reads. */
static int ino_list_run(struct meta *m, sqlite3_stmt *st, meta_ino_cb cb, void *arg)
{
	uint64_t *inos = NULL;
	size_t n = 0, cap = 0;
	int rc, ret = 0;

	while ((rc = meta_step(m, st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			uint64_t *p = realloc(inos, ncap * sizeof(*p));
			if (!p) {
				ret = -ENOMEM;
				goto out;
			}
			inos = p;
			cap = ncap;
		}
		inos[n++] = (uint64_t)sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE)
		ret = sqlite_errno(m, rc, "list");
out:
	sqlite3_reset(st);
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = cb(arg, inos[i]);
	free(inos);
	return ret;
}

int meta_orphan_list(struct meta *m, meta_ino_cb cb, void *arg)
{
	return ino_list_run(m, stmt_get(m, ST_ORPHAN_LIST), cb, arg);
}

int meta_file_list(struct meta *m, meta_ino_cb cb, void *arg)
{
	return ino_list_run(m, stmt_get(m, ST_FILE_LIST), cb, arg);
}

/*
 * One consistency rule: SELECT finds the bad rows (first column a short
 * description), FIX repairs all of them.
 */
struct check_rule {
	const char *what;
	const char *select;
	const char *fix;
};

static const struct check_rule check_rules[] = {
    {"entry points at a missing inode",
     "SELECT 'entry ' || quote(name) || ' in ' || parent || ' -> ' || ino FROM dentry "
     "WHERE ino NOT IN (SELECT ino FROM inode)",
     "DELETE FROM dentry WHERE ino NOT IN (SELECT ino FROM inode)"},
    {"entry in a missing or non-directory parent",
     "SELECT 'entry ' || quote(name) || ' in ' || parent FROM dentry WHERE parent NOT IN "
     "(SELECT ino FROM inode WHERE (mode & 61440) = 16384)",
     "DELETE FROM dentry WHERE parent NOT IN "
     "(SELECT ino FROM inode WHERE (mode & 61440) = 16384)"},
    {"wrong link count of a non-directory",
     "SELECT 'inode ' || i.ino || ' nlink ' || i.nlink || ' but ' || "
     "(SELECT count(*) FROM dentry d WHERE d.ino = i.ino) || ' entries' FROM inode i "
     "WHERE (i.mode & 61440) != 16384 AND i.nlink != "
     "(SELECT count(*) FROM dentry d WHERE d.ino = i.ino)",
     "UPDATE inode SET nlink = (SELECT count(*) FROM dentry d WHERE d.ino = inode.ino) "
     "WHERE (mode & 61440) != 16384"},
    {"wrong link count of a directory",
     "SELECT 'directory ' || i.ino || ' nlink ' || i.nlink FROM inode i "
     "WHERE (i.mode & 61440) = 16384 AND i.nlink != 2 + (SELECT count(*) FROM dentry d "
     "JOIN inode c ON c.ino = d.ino WHERE d.parent = i.ino AND (c.mode & 61440) = 16384)",
     "UPDATE inode SET nlink = 2 + (SELECT count(*) FROM dentry d JOIN inode c ON c.ino = d.ino "
     "WHERE d.parent = inode.ino AND (c.mode & 61440) = 16384) "
     "WHERE (mode & 61440) = 16384"},
    {"directory with other than one entry",
     "SELECT 'directory ' || i.ino || ' has ' || (SELECT count(*) FROM dentry d "
     "WHERE d.ino = i.ino) || ' entries' FROM inode i WHERE (i.mode & 61440) = 16384 AND "
     "i.ino != 1 AND (SELECT count(*) FROM dentry d WHERE d.ino = i.ino) > 1",
     "DELETE FROM dentry WHERE id IN (SELECT d.id FROM dentry d JOIN inode i ON i.ino = d.ino "
     "WHERE (i.mode & 61440) = 16384 AND d.id != (SELECT min(id) FROM dentry e "
     "WHERE e.ino = d.ino))"},
    {"chunk of a missing inode or a non-file",
     "SELECT 'chunk ' || ino || '/' || idx FROM chunk WHERE ino NOT IN "
     "(SELECT ino FROM inode WHERE (mode & 61440) = 32768)",
     "DELETE FROM chunk WHERE ino NOT IN (SELECT ino FROM inode WHERE (mode & 61440) = "
     "32768)"},
    {"xattr of a missing inode",
     "SELECT 'xattr ' || quote(name) || ' of ' || ino FROM xattr WHERE ino NOT IN "
     "(SELECT ino FROM inode)",
     "DELETE FROM xattr WHERE ino NOT IN (SELECT ino FROM inode)"},
    {"clean chunk without an object",
     "SELECT 'chunk ' || ino || '/' || idx FROM chunk WHERE state = 1 AND object IS NULL",
     "UPDATE chunk SET state = 0, version = version + 1 WHERE state = 1 AND object IS NULL"},
    {"remote chunk without an object (its data is lost)",
     "SELECT 'chunk ' || ino || '/' || idx FROM chunk WHERE state = 2 AND object IS NULL", NULL},
    /*
     * A file that is not being written (no WRITING mark, 8) has no chunk
     * past its end, and no uploaded chunk longer than the file there: an
     * upload that landed over a later write or truncate left one such.
     */
    {"chunk past the end of its file",
     "SELECT 'chunk ' || c.ino || '/' || c.idx || ' past the end (size ' || i.size || ')' "
     "FROM chunk c JOIN inode i ON i.ino = c.ino WHERE (i.flags & 8) = 0 AND c.idx * "
     "(SELECT CAST(v AS INTEGER) FROM settings WHERE k = 'chunk_size') >= i.size",
     "DELETE FROM chunk WHERE (ino, idx) IN (SELECT c.ino, c.idx FROM chunk c JOIN inode i "
     "ON i.ino = c.ino WHERE (i.flags & 8) = 0 AND c.idx * "
     "(SELECT CAST(v AS INTEGER) FROM settings WHERE k = 'chunk_size') >= i.size)"},
    {"uploaded chunk longer than its file there",
     "SELECT 'chunk ' || c.ino || '/' || c.idx || ' of ' || c.length || ' bytes, file size ' || "
     "i.size FROM chunk c JOIN inode i ON i.ino = c.ino WHERE c.state IN (1, 2) AND "
     "(i.flags & 8) = 0 AND c.length > i.size - c.idx * "
     "(SELECT CAST(v AS INTEGER) FROM settings WHERE k = 'chunk_size')",
     NULL},
    {"wrong object reference count",
     "SELECT 'object ' || hex(o.id) || ' refcount ' || o.refcount || ' but ' || "
     "coalesce(r.n, 0) || ' references' FROM object o LEFT JOIN (SELECT object, count(*) AS n "
     "FROM chunk WHERE object IS NOT NULL GROUP BY object) r ON r.object = o.id "
     "WHERE o.refcount != coalesce(r.n, 0)",
     "UPDATE object SET refcount = (SELECT count(*) FROM chunk c WHERE c.object = object.id)"},
    {"chunk references an unknown object",
     "SELECT 'chunk ' || ino || '/' || idx FROM chunk WHERE object IS NOT NULL AND object NOT IN "
     "(SELECT id FROM object)",
     "INSERT OR IGNORE INTO object(id, refcount, stored_size) SELECT object, count(*), 0 "
     "FROM chunk WHERE object IS NOT NULL AND object NOT IN (SELECT id FROM object) "
     "GROUP BY object"},
    {"root is missing or not a directory",
     "SELECT 'root' WHERE NOT EXISTS (SELECT 1 FROM inode WHERE ino = 1 AND "
     "(mode & 61440) = 16384)",
     NULL},
};

int meta_check(struct meta *m, bool repair, meta_report_cb report, void *arg)
{
	int problems = 0, ret;
	char line[512];

	ret = exec_sql(m, "BEGIN IMMEDIATE");
	if (ret)
		return ret;
	/* sqlite's own structural check first */
	{
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(m->db, "PRAGMA integrity_check", -1, &st, NULL) ==
		    SQLITE_OK) {
			while (meta_step(m, st) == SQLITE_ROW) {
				const char *r = (const char *)sqlite3_column_text(st, 0);
				if (r && strcmp(r, "ok") != 0) {
					snprintf(line, sizeof(line), "database: %s", r);
					report(arg, line);
					problems++;
				}
			}
			sqlite3_finalize(st);
		}
	}
	for (size_t i = 0; i < sizeof(check_rules) / sizeof(check_rules[0]); i++) {
		const struct check_rule *r = &check_rules[i];
		sqlite3_stmt *st;
		int found = 0, rc;

		rc = sqlite3_prepare_v2(m->db, r->select, -1, &st, NULL);
		if (rc != SQLITE_OK) {
			ret = sqlite_errno(m, rc, r->what);
			goto out_rollback;
		}
		while ((rc = meta_step(m, st)) == SQLITE_ROW) {
			snprintf(line, sizeof(line), "%s: %s", r->what,
				 (const char *)sqlite3_column_text(st, 0));
			report(arg, line);
			found++;
		}
		sqlite3_finalize(st);
		problems += found;
		if (found && repair && r->fix) {
			ret = exec_sql(m, r->fix);
			if (ret)
				goto out_rollback;
		}
	}
	ret = exec_sql(m, "COMMIT");
	return ret ? ret : problems;

out_rollback:
	exec_sql(m, "ROLLBACK");
	return ret;
}
