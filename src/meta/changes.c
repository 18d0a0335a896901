/*
 * changes.c - the metadata's change log and snapshots, for shipping the
 * filesystem to the bucket (src/journal/).
 *
 * The change log is SQLite's session extension: a session attached to every
 * table but `local` records each row a statement changes, and a changeset
 * taken between transactions is exactly what the commits since the last one
 * changed (a rolled-back change leaves nothing: the session compares each
 * row's first old image with the row as it is when the changeset is taken).
 * Applied to a copy of the database as it was when the previous changeset
 * was taken, it yields the database as it is now.
 *
 * Rules:
 *  1. A changeset is only taken outside a transaction (-EBUSY inside one),
 *     so every one ends at a commit: each state shipped is one the database
 *     was in.
 *  2. The `local` table (this cache's own state: what it shipped, its
 *     marks) and the access times of chunks (the eviction order, rewritten
 *     every second while files are read) are not recorded.
 *  3. A database changed without a session (zero fsck --repair, a mount
 *     without a bucket) says so in `local` ("journal_stale"), so that the
 *     journal ships it whole before it ships changes to it.
 */
#include "meta/meta_internal.h"

#include "common/log.h"
#include "common/u64_list.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- local settings ---- */

int meta_local_get(struct meta *m, const char *key, char *buf, size_t size)
{
	sqlite3 *db = meta_db(m);
	sqlite3_stmt *st;
	int rc, ret;

	rc = sqlite3_prepare_v2(db, "SELECT v FROM local WHERE k = ?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return meta_errno(m, rc, "local get");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = meta_step(m, st);
	if (rc == SQLITE_ROW) {
		snprintf(buf, size, "%s", (const char *)sqlite3_column_text(st, 0));
		ret = 0;
	} else {
		ret = rc == SQLITE_DONE ? -ENOENT : meta_errno(m, rc, "local get");
	}
	sqlite3_finalize(st);
	return ret;
}

int meta_local_set(struct meta *m, const char *key, const char *value)
{
	sqlite3 *db = meta_db(m);
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db,
				"INSERT INTO local(k, v) VALUES(?1, ?2) ON CONFLICT(k) DO UPDATE "
				"SET v = excluded.v",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return meta_errno(m, rc, "local set");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	rc = meta_step(m, st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : meta_errno(m, rc, "local set");
}

int meta_local_clear(struct meta *m)
{
	return meta_exec(m, "DELETE FROM local");
}

/* ---- the session ---- */

/*
 * Count the transactions committed, for meta_changes_rows: the metadata
 * operations waiting to be shipped (a commit hook; the update hook would
 * miss the tables WITHOUT ROWID).
 */
static int count_commit(void *arg)
{
	struct meta_rows *c = arg;

	c->rows++;
	return 0; /* go on with the commit */
}

/* Rule 2: `local` is this cache's alone. */
static int table_filter(void *arg, const char *table)
{
	(void)arg;
	return strcmp(table, "local") != 0;
}

int meta_changes_start(struct meta *m)
{
	sqlite3_session **sp = meta_session(m), *s;
	int on = 1, rc;

	if (*sp)
		return 0;
	rc = sqlite3session_create(meta_db(m), "main", &s);
	if (rc != SQLITE_OK)
		return meta_errno(m, rc, "session");
	sqlite3session_table_filter(s, table_filter, NULL);
	/* for meta_changes_bytes */
	sqlite3session_object_config(s, SQLITE_SESSION_OBJCONFIG_SIZE, &on);
	rc = sqlite3session_attach(s, NULL);
	if (rc != SQLITE_OK) {
		sqlite3session_delete(s);
		return meta_errno(m, rc, "session attach");
	}
	*sp = s;
	sqlite3_commit_hook(meta_db(m), count_commit, meta_rows(m));
	return 0;
}

void meta_changes_close(struct meta *m)
{
	sqlite3_session **sp = meta_session(m);

	if (*sp) {
		sqlite3session_delete(*sp);
		*sp = NULL;
	}
}

void meta_changes_pause(struct meta *m, bool pause)
{
	sqlite3_session *s = *meta_session(m);

	if (s)
		sqlite3session_enable(s, pause ? 0 : 1);
}

uint64_t meta_changes_rows(struct meta *m)
{
	return meta_rows(m)->rows;
}

void meta_changes_rows_reset(struct meta *m)
{
	meta_rows(m)->rows = 0;
}

bool meta_changes_pending(struct meta *m)
{
	sqlite3_session *s = *meta_session(m);

	return s && !sqlite3session_isempty(s);
}

uint64_t meta_changes_bytes(struct meta *m)
{
	sqlite3_session *s = *meta_session(m);

	return s ? (uint64_t)sqlite3session_changeset_size(s) : 0;
}

int meta_changes_take(struct meta *m, void **buf, size_t *len)
{
	sqlite3_session **sp = meta_session(m);
	void *cs = NULL;
	int n = 0, rc, ret;

	*buf = NULL;
	*len = 0;
	if (!*sp)
		return -EINVAL;
	ret = meta_flush(m); /* what is shipped is committed (meta.c rule B2) */
	if (ret)
		return ret;
	if (!sqlite3_get_autocommit(meta_db(m)))
		return -EBUSY; /* rule 1 */
	rc = sqlite3session_changeset(*sp, &n, &cs);
	if (rc != SQLITE_OK)
		return meta_errno(m, rc, "changeset");
	if (n > 0) {
		*buf = malloc((size_t)n);
		if (!*buf) {
			sqlite3_free(cs);
			return -ENOMEM;
		}
		memcpy(*buf, cs, (size_t)n);
		*len = (size_t)n;
	}
	sqlite3_free(cs);
	meta_rows(m)->rows = 0;
	/* start over: the next changeset begins where this one ends */
	meta_changes_close(m);
	ret = meta_changes_start(m);
	if (ret) {
		free(*buf);
		*buf = NULL;
		*len = 0;
	}
	return ret;
}

/* ---- what a changeset touched ---- */

/* Add integer value V, if it is one (an undefined column is NULL). */
static int ino_add_value(struct u64_list *s, sqlite3_value *v)
{
	if (!v || sqlite3_value_type(v) != SQLITE_INTEGER)
		return 0;
	return u64_list_add(s, (uint64_t)sqlite3_value_int64(v));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The parent of directory entry ID as the database has it now (0 when gone).
 * *ST is prepared on first use; the caller finalizes it.
 */
static uint64_t dentry_parent_now(struct meta *m, sqlite3_stmt **st, sqlite3_value *id)
{
	uint64_t parent = 0;

	if (!m || !id)
		return 0;
	if (!*st && sqlite3_prepare_v2(meta_db(m), "SELECT parent FROM dentry WHERE id = ?1", -1,
				       st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_reset(*st);
	sqlite3_bind_value(*st, 1, id);
	if (meta_step(m, *st) == SQLITE_ROW)
		parent = (uint64_t)sqlite3_column_int64(*st, 0);
	return parent;
}

int meta_changes_inodes(struct meta *m, const void *cs, size_t len, uint64_t **inos, size_t *n,
			uint64_t *rows)
{
	struct u64_list set = {0};
	sqlite3_changeset_iter *it;
	sqlite3_stmt *parent_st = NULL;
	int rc, ret = 0;

	*inos = NULL;
	*n = 0;
	*rows = 0;
	if (len == 0)
		return 0;
	rc = sqlite3changeset_start(&it, (int)len, (void *)cs);
	if (rc != SQLITE_OK)
		return -EINVAL;
	while (ret == 0 && sqlite3changeset_next(it) == SQLITE_ROW) {
		const char *table;
		int ncol, op, indirect;
		sqlite3_value *v;

		sqlite3changeset_op(it, &table, &ncol, &op, &indirect);
		(*rows)++;
		for (int side = 0; side < 2 && ret == 0; side++) {
			/* side 0: the old values (UPDATE, DELETE), 1: the new (INSERT, UPDATE) */
			if ((side == 0 && op == SQLITE_INSERT) || (side == 1 && op == SQLITE_DELETE))
				continue;
			int (*get)(sqlite3_changeset_iter *, int, sqlite3_value **) =
			    side == 0 ? sqlite3changeset_old : sqlite3changeset_new;
			if (strcmp(table, "dentry") == 0) {
				/* the entry's inode and its directory (parent, then ino) */
				for (int col = 1; col <= 3; col += 2) {
					v = NULL;
					if (get(it, col, &v) == SQLITE_OK && ret == 0)
						ret = ino_add_value(&set, v);
				}
				if (op == SQLITE_UPDATE && side == 1) {
					/* an unchanged parent is not in the changeset */
					sqlite3_value *id = NULL;
					uint64_t p;
					sqlite3changeset_old(it, 0, &id);
					p = dentry_parent_now(m, &parent_st, id);
					if (p)
						ret = u64_list_add(&set, p);
				}
			} else if (strcmp(table, "inode") == 0 || strcmp(table, "xattr") == 0 ||
				   strcmp(table, "chunk") == 0 || strcmp(table, "lost") == 0) {
				v = NULL;
				if (get(it, 0, &v) == SQLITE_OK)
					ret = ino_add_value(&set, v);
			}
		}
	}
	rc = sqlite3changeset_finalize(it);
	sqlite3_finalize(parent_st);
	if (ret == 0 && rc != SQLITE_OK)
		ret = -EINVAL;
	if (ret) {
		free(set.v);
		return ret;
	}
	if (set.n > 1)
		qsort(set.v, set.n, sizeof(*set.v), cmp_u64);
	size_t w = 0;
	for (size_t i = 0; i < set.n; i++)
		if (w == 0 || set.v[w - 1] != set.v[i])
			set.v[w++] = set.v[i];
	*inos = set.v;
	*n = w;
	return 0;
}

/* ---- applying one ---- */

struct apply_ctx {
	unsigned conflicts;
};

/*
 * The target is the state the changeset was taken after, so conflicts mean
 * a difference that does not matter (the access time of a chunk, rule 2) or
 * a state that is not quite that one: the changeset's row wins, rows it
 * would update or delete that are not there are left out, and each is
 * counted.
 */
static int apply_conflict(void *arg, int kind, sqlite3_changeset_iter *it)
{
	struct apply_ctx *c = arg;
	const char *table;
	int ncol, op, indirect;

	sqlite3changeset_op(it, &table, &ncol, &op, &indirect);
	switch (kind) {
	case SQLITE_CHANGESET_DATA:
		if (strcmp(table, "chunk") != 0)
			c->conflicts++;
		return SQLITE_CHANGESET_REPLACE;
	case SQLITE_CHANGESET_CONFLICT:
		c->conflicts++;
		return SQLITE_CHANGESET_REPLACE;
	default: /* NOTFOUND, CONSTRAINT, FOREIGN_KEY */
		c->conflicts++;
		return SQLITE_CHANGESET_OMIT;
	}
}

int meta_changes_apply(struct meta *m, const void *cs, size_t len, unsigned *conflicts)
{
	struct apply_ctx c = {0};
	int rc;

	*conflicts = 0;
	if (len == 0)
		return 0;
	rc = sqlite3changeset_apply(meta_db(m), (int)len, (void *)cs, NULL, apply_conflict, &c);
	*conflicts = c.conflicts;
	return rc == SQLITE_OK ? 0 : meta_errno(m, rc, "apply changeset");
}

/* ---- snapshots ---- */

struct meta_snapshot {
	sqlite3 *db; /* a second connection, in a read transaction */
};

int meta_snapshot_begin(struct meta *m, struct meta_snapshot **out)
{
	const char *path = sqlite3_db_filename(meta_db(m), "main");
	struct meta_snapshot *s;
	int rc = meta_flush(m); /* the other connection sees only what is committed */

	if (rc)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(s->db, 5000);
		/* the read transaction pins the state as of now (WAL keeps it for us) */
		rc = sqlite3_exec(s->db, "BEGIN; SELECT count(*) FROM settings;", NULL, NULL,
				  NULL);
	}
	if (rc != SQLITE_OK) {
		log_error("metadata: snapshot of %s: %s", path,
			  s->db ? sqlite3_errmsg(s->db) : "no memory");
		meta_snapshot_end(s);
		return -EIO;
	}
	*out = s;
	return 0;
}

int meta_snapshot_read(struct meta_snapshot *s, void **buf, size_t *len)
{
	sqlite3_int64 n = 0;
	unsigned char *img = sqlite3_serialize(s->db, "main", &n, 0);

	*buf = NULL;
	*len = 0;
	if (!img)
		return -ENOMEM;
	*buf = malloc((size_t)n);
	if (!*buf) {
		sqlite3_free(img);
		return -ENOMEM;
	}
	memcpy(*buf, img, (size_t)n);
	*len = (size_t)n;
	sqlite3_free(img);
	return 0;
}

void meta_snapshot_end(struct meta_snapshot *s)
{
	if (!s)
		return;
	if (s->db) {
		sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
		sqlite3_close(s->db);
	}
	free(s);
}

/* ---- checkpoints: named states, and the objects they keep ---- */

int meta_checkpoint_add(struct meta *m, const char *name, int64_t created, uint64_t seq,
			const char *key)
{
	sqlite3 *db = meta_db(m);
	sqlite3_stmt *st;
	int rc, ret;

	ret = meta_exec(m, "SAVEPOINT checkpoint_add");
	if (ret)
		return ret;
	rc = sqlite3_prepare_v2(db, "INSERT INTO checkpoint(name, created, seq, key) "
				    "VALUES(?1, ?2, ?3, ?4)",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, created);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)seq);
		sqlite3_bind_text(st, 4, key, -1, SQLITE_STATIC);
		rc = meta_step(m, st);
		sqlite3_finalize(st);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	if (rc == SQLITE_OK) {
		rc = sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO checkpoint_object(name, id) "
					    "SELECT DISTINCT ?1, object FROM chunk WHERE object IS "
					    "NOT NULL",
					-1, &st, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
			rc = meta_step(m, st);
			sqlite3_finalize(st);
			if (rc == SQLITE_DONE)
				rc = SQLITE_OK;
		}
	}
	ret = rc == SQLITE_OK ? 0 : meta_errno(m, rc, "checkpoint");
	if (ret)
		meta_exec(m, "ROLLBACK TO checkpoint_add");
	meta_exec(m, "RELEASE checkpoint_add");
	return ret;
}

int meta_checkpoint_remove(struct meta *m, const char *name, char *key, size_t keysize)
{
	sqlite3 *db = meta_db(m);
	sqlite3_stmt *st;
	int rc, ret;

	rc = sqlite3_prepare_v2(db, "SELECT key FROM checkpoint WHERE name = ?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return meta_errno(m, rc, "checkpoint");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = meta_step(m, st);
	if (rc == SQLITE_ROW)
		snprintf(key, keysize, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? -ENOENT : meta_errno(m, rc, "checkpoint");
	ret = meta_exec(m, "SAVEPOINT checkpoint_remove");
	if (ret)
		return ret;
	for (int i = 0; i < 2 && ret == 0; i++) {
		rc = sqlite3_prepare_v2(db,
					i == 0 ? "DELETE FROM checkpoint_object WHERE name = ?1"
					       : "DELETE FROM checkpoint WHERE name = ?1",
					-1, &st, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
			rc = meta_step(m, st);
			sqlite3_finalize(st);
		}
		if (rc != SQLITE_DONE)
			ret = meta_errno(m, rc, "checkpoint");
	}
	if (ret)
		meta_exec(m, "ROLLBACK TO checkpoint_remove");
	meta_exec(m, "RELEASE checkpoint_remove");
	return ret;
}

int meta_checkpoint_list(struct meta *m, meta_checkpoint_cb cb, void *arg)
{
	sqlite3_stmt *st;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(meta_db(m),
				"SELECT c.name, c.created, (SELECT count(*) FROM checkpoint_object o "
				"WHERE o.name = c.name) FROM checkpoint c ORDER BY c.created, c.name",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return meta_errno(m, rc, "checkpoints");
	while (ret == 0 && (rc = meta_step(m, st)) == SQLITE_ROW)
		ret = cb(arg, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
			 (uint64_t)sqlite3_column_int64(st, 2));
	if (ret == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = meta_errno(m, rc, "checkpoints");
	sqlite3_finalize(st);
	return ret;
}
