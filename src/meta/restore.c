/*
 * restore.c - a database restored from the bucket, made ready for an empty
 * cache, and the byte ranges a recovery could not restore.
 *
 * The state shipped to the bucket is the cache's metadata as it was: its
 * CLEAN chunks are in the bucket, its DIRTY ones are newer than any object
 * (they may still name the object of their last upload). In a new cache
 * nothing is local, so:
 *  - CLEAN becomes REMOTE;
 *  - a DIRTY chunk with an object becomes REMOTE on that object: the chunk
 *    comes back as it was last uploaded. What the file holds past that
 *    object's end in the chunk never reached the bucket and is lost;
 *  - a DIRTY chunk without an object (never uploaded) is lost whole, and
 *    its row goes (its range would otherwise read as a hole: zeros the
 *    file never held).
 * A lost range is a row of `lost`, and its file carries META_INODE_LOST so
 * that reads of files without one cost no query. Reads that touch a lost
 * byte are EIO (fs.c) until it is written again or truncated away.
 */
#include "meta/meta_internal.h"

#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct dirty_row {
	uint64_t ino, idx, length, size;
	bool has_object;
};

static int lost_add(struct meta *m, uint64_t ino, uint64_t start, uint64_t end)
{
	return meta_exec_int(m,
			     "INSERT INTO lost(ino, start, end) VALUES(?1, ?2, ?3) "
			     "ON CONFLICT(ino, start) DO UPDATE SET end = max(end, excluded.end)",
			     (int64_t)ino, (int64_t)start, (int64_t)end);
}

int meta_restore_fixup(struct meta *m, uint32_t chunk_size, meta_lost_cb cb, meta_lost_cb older_cb,
		       void *arg)
{
	sqlite3 *db = meta_db(m);
	struct dirty_row *rows = NULL;
	size_t n = 0, cap = 0, nolder = 0;
	sqlite3_stmt *st;
	int rc, ret, lost = 0, older = 0;

	ret = meta_exec(m, "BEGIN IMMEDIATE");
	if (ret)
		return ret;
	rc = sqlite3_prepare_v2(db,
				"SELECT c.ino, c.idx, c.length, c.object IS NOT NULL, i.size FROM "
				"chunk c JOIN inode i ON i.ino = c.ino WHERE c.state = 0 "
				"ORDER BY c.ino, c.idx",
				-1, &st, NULL);
	if (rc != SQLITE_OK) {
		ret = meta_errno(m, rc, "restore: dirty chunks");
		goto out_rollback;
	}
	while ((rc = meta_step(m, st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 256;
			struct dirty_row *nr = realloc(rows, ncap * sizeof(*nr));
			if (!nr) {
				rc = SQLITE_NOMEM;
				break;
			}
			rows = nr;
			cap = ncap;
		}
		rows[n++] = (struct dirty_row){
		    .ino = (uint64_t)sqlite3_column_int64(st, 0),
		    .idx = (uint64_t)sqlite3_column_int64(st, 1),
		    .length = (uint64_t)sqlite3_column_int64(st, 2),
		    .has_object = sqlite3_column_int(st, 3) != 0,
		    .size = (uint64_t)sqlite3_column_int64(st, 4),
		};
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		ret = meta_errno(m, rc, "restore: dirty chunks");
		goto out_rollback;
	}
	for (size_t i = 0; i < n && ret == 0; i++) {
		const struct dirty_row *r = &rows[i];
		uint64_t start = r->idx * chunk_size, extent;

		if (start >= r->size) {
			/* past the end (a truncate whose row change was shipped later) */
			ret = meta_chunk_delete_range(m, r->ino, r->idx, r->idx);
			continue;
		}
		extent = r->size - start < chunk_size ? r->size - start : chunk_size;
		if (r->has_object) {
			ret = meta_chunk_set_state(m, r->ino, r->idx, CHUNK_DIRTY, CHUNK_REMOTE);
			older++;
			/* reported below: bytes of another moment than the rest of the file */
			rows[nolder++] = *r;
			if (ret >= 0 && r->length < extent) {
				ret = lost_add(m, r->ino, start + r->length, start + extent);
				lost++;
			}
			if (ret > 0)
				ret = 0;
		} else {
			ret = meta_chunk_delete_range(m, r->ino, r->idx, r->idx);
			if (ret == 0)
				ret = lost_add(m, r->ino, start, start + extent);
			lost++;
		}
	}
	if (ret == 0)
		ret = meta_exec(m, "UPDATE chunk SET state = 2 WHERE state = 1");
	/* nothing is being written in a new cache; files with lost ranges say so */
	if (ret == 0)
		ret = meta_exec_int(m, "UPDATE inode SET flags = (flags & ~?1) | "
				       "(CASE WHEN ino IN (SELECT ino FROM lost) THEN ?2 ELSE 0 END)",
				    META_INODE_WRITING | META_INODE_LOST, META_INODE_LOST, 0);
	if (ret == 0)
		ret = meta_setting_set(m, "clean", "1");
	if (ret)
		goto out_rollback;
	ret = meta_exec(m, "COMMIT");
	if (ret) {
		free(rows);
		return ret;
	}
	if (older)
		log_info("restore: %d chunks written after their last upload come back as they "
			 "were uploaded",
			 older);
	for (size_t i = 0; older_cb && ret == 0 && i < nolder; i++) {
		uint64_t start = rows[i].idx * chunk_size;
		uint64_t extent = rows[i].size - start < chunk_size ? rows[i].size - start : chunk_size;
		uint64_t len = rows[i].length < extent ? rows[i].length : extent;
		if (len)
			ret = older_cb(arg, rows[i].ino, start, start + len);
	}
	free(rows);
	if (ret == 0 && cb)
		ret = meta_lost_list(m, cb, arg);
	return ret ? ret : lost;

out_rollback:
	free(rows);
	meta_exec(m, "ROLLBACK");
	return ret;
}

int meta_lost_overlaps(struct meta *m, uint64_t ino, uint64_t off, uint64_t len)
{
	sqlite3_stmt *st;
	int rc, ret;

	rc = sqlite3_prepare_v2(meta_db(m),
				"SELECT 1 FROM lost WHERE ino = ?1 AND start < ?3 AND end > ?2 LIMIT 1",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return meta_errno(m, rc, "lost ranges");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)off);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)(len > INT64_MAX - off ? INT64_MAX : off + len));
	rc = meta_step(m, st);
	ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : meta_errno(m, rc, "lost ranges");
	sqlite3_finalize(st);
	return ret;
}

int meta_lost_clear(struct meta *m, uint64_t ino, uint64_t off, uint64_t len)
{
	uint64_t end = len > INT64_MAX - off ? INT64_MAX : off + len;
	sqlite3_stmt *st;
	int rc, ret;

	/* cut [off, end) out of every range it overlaps: keep what lies before and after */
	ret = meta_exec_int(m,
			    "INSERT OR REPLACE INTO lost(ino, start, end) SELECT ino, ?3, end FROM lost "
			    "WHERE ino = ?1 AND start < ?3 AND end > ?3",
			    (int64_t)ino, (int64_t)off, (int64_t)end);
	if (ret == 0)
		ret = meta_exec_int(m,
				    "UPDATE lost SET end = ?2 WHERE ino = ?1 AND start < ?2 AND "
				    "end > ?2",
				    (int64_t)ino, (int64_t)off, 0);
	if (ret == 0)
		ret = meta_exec_int(m, "DELETE FROM lost WHERE ino = ?1 AND start >= ?2 AND start < ?3",
				    (int64_t)ino, (int64_t)off, (int64_t)end);
	if (ret)
		return ret;
	rc = sqlite3_prepare_v2(meta_db(m), "SELECT 1 FROM lost WHERE ino = ?1 LIMIT 1", -1, &st,
				NULL);
	if (rc != SQLITE_OK)
		return meta_errno(m, rc, "lost ranges");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ino);
	rc = meta_step(m, st);
	ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : meta_errno(m, rc, "lost ranges");
	sqlite3_finalize(st);
	return ret;
}

int meta_lost_list(struct meta *m, meta_lost_cb cb, void *arg)
{
	sqlite3_stmt *st;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(meta_db(m), "SELECT ino, start, end FROM lost ORDER BY ino, start",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return meta_errno(m, rc, "lost ranges");
	while (ret == 0 && (rc = meta_step(m, st)) == SQLITE_ROW)
		ret = cb(arg, (uint64_t)sqlite3_column_int64(st, 0),
			 (uint64_t)sqlite3_column_int64(st, 1), (uint64_t)sqlite3_column_int64(st, 2));
	if (ret == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = meta_errno(m, rc, "lost ranges");
	sqlite3_finalize(st);
	return ret;
}
