/*
 * meta_internal.h - what the files of src/meta/ share: the connection and
 * the error mapping. Only src/meta/ includes it (and, with it, sqlite3.h).
 *
 * meta.c is the schema and every statement of the filesystem; changes.c
 * the change log that is shipped to the bucket (SQLite's session
 * extension) and whole-database snapshots; restore.c what a restored
 * database needs before it is mounted, and the ranges it could not
 * restore; backfill.c the copy of the WAL into the database, on a thread
 * and a connection of its own.
 */
#ifndef ZERO_META_INTERNAL_H
#define ZERO_META_INTERNAL_H

#include "meta/meta.h"

/* the session extension (Debian's libsqlite3 is built with it) */
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>

sqlite3 *meta_db(struct meta *m);
/* sqlite3_step, and rule B2 of meta.c: a write outside every transaction commits the batch. */
int meta_step(struct meta *m, sqlite3_stmt *st);
/* Map an SQLite result code to -errno, logging what is not routine. */
int meta_errno(struct meta *m, int rc, const char *what);
/* Run SQL (no rows); -errno on failure, logged. */
int meta_exec(struct meta *m, const char *sql);
/* Run one statement of SQL with up to three integer parameters ?1..?3 (no rows). */
int meta_exec_int(struct meta *m, const char *sql, int64_t a, int64_t b, int64_t c);

/* backfill.c: its state, NULL when not started. */
struct backfill;
struct backfill **meta_backfill(struct meta *m);
/* changes.c: the session recording changes, NULL when none is. */
sqlite3_session **meta_session(struct meta *m);
/* changes.c: transactions committed since the last take. */
struct meta_rows {
	uint64_t rows;
};
struct meta_rows *meta_rows(struct meta *m);
/* Stop or go on recording (access times of chunks are not shipped). */
void meta_changes_pause(struct meta *m, bool pause);
void meta_changes_close(struct meta *m);

#endif /* ZERO_META_INTERNAL_H */
