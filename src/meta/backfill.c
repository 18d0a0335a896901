/*
 * backfill.c - the WAL copied into the database by a thread of its own, off
 * the filesystem's lock.
 *
 * In WAL mode each commit appends pages to the -wal file; copying them back
 * into the database file is what SQLite calls a checkpoint (the word is taken
 * here by the filesystem's named states: this is the backfill, SQLite's name
 * for the copy). By default the connection that commits does it, inside the
 * commit, once 1,000 pages are in the WAL: with synchronous=NORMAL that is
 * ~4 MB written and two fsyncs, and for Zero it ran under the fs lock, every
 * few hundred operations, while every request waited (the slow rounds of a
 * find during uploads, each upload a commit).
 *
 * Here the main connection's WAL hook replaces its automatic checkpoints: it
 * wakes this thread once BACKFILL_PAGES are in the WAL, and the thread runs a
 * PASSIVE checkpoint on a connection of its own, which waits for no reader or
 * writer and is waited for by none; the main connection starts the WAL over
 * at its next write once everything was copied. Durability is unchanged: a
 * commit is in the WAL before its call returns, and the copy syncs the WAL
 * before and the database after, as before. Should the thread fall behind so
 * far that the WAL reaches BACKFILL_MAX_PAGES, the committing connection
 * copies it itself, as SQLite would have (the WAL stays bounded).
 */
#include "common/log.h"
#include "meta/meta_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#define BACKFILL_PAGES 1000	 /* SQLite's own default for automatic checkpoints */
#define BACKFILL_MAX_PAGES 16000 /* ~64 MB of WAL at 4 KiB pages */

struct backfill {
	sqlite3 *db; /* the thread's own connection */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool wanted;   /* the WAL holds BACKFILL_PAGES: copy it */
	bool stopping;
	unsigned long runs; /* copies done (tests) */
};

static void *backfill_main(void *arg)
{
	struct backfill *b = arg;

	pthread_mutex_lock(&b->lock);
	while (!b->stopping) {
		int rc, log_pages = 0, copied = 0;

		if (!b->wanted) {
			pthread_cond_wait(&b->wake, &b->lock);
			continue;
		}
		b->wanted = false;
		pthread_mutex_unlock(&b->lock);
		rc = sqlite3_wal_checkpoint_v2(b->db, "main", SQLITE_CHECKPOINT_PASSIVE, &log_pages,
					       &copied);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
			log_warn("metadata: copying the WAL into the database: %s",
				 sqlite3_errmsg(b->db));
		pthread_mutex_lock(&b->lock);
		b->runs++;
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

/* The main connection's WAL hook: after each commit, the pages now in the WAL. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct backfill *b = arg;

	if (pages >= BACKFILL_MAX_PAGES) {
		int log_pages = 0, copied = 0;
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &copied);
		return SQLITE_OK;
	}
	if (pages >= BACKFILL_PAGES) {
		pthread_mutex_lock(&b->lock);
		if (!b->wanted) {
			b->wanted = true;
			pthread_cond_signal(&b->wake);
		}
		pthread_mutex_unlock(&b->lock);
	}
	return SQLITE_OK;
}

int meta_backfill_start(struct meta *m)
{
	sqlite3 *db = meta_db(m);
	const char *path = sqlite3_db_filename(db, "main");
	struct backfill *b;
	int rc, ret;

	if (*meta_backfill(m))
		return 0;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->wake, NULL);
	rc = sqlite3_open_v2(path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(b->db, "PRAGMA synchronous=NORMAL; PRAGMA cache_size=16", NULL,
				  NULL, NULL);
	if (rc != SQLITE_OK) {
		log_error("metadata: a second connection to %s: %s", path,
			  b->db ? sqlite3_errmsg(b->db) : "no memory");
		ret = -EIO;
		goto out_free;
	}
	ret = -pthread_create(&b->thread, NULL, backfill_main, b);
	if (ret)
		goto out_free;
	*meta_backfill(m) = b;
	sqlite3_wal_hook(db, wal_hook, b); /* in place of sqlite3_wal_autocheckpoint */
	return 0;

out_free:
	sqlite3_close(b->db);
	pthread_cond_destroy(&b->wake);
	pthread_mutex_destroy(&b->lock);
	free(b);
	return ret;
}

void meta_backfill_stop(struct meta *m)
{
	struct backfill *b = *meta_backfill(m);

	if (!b)
		return;
	sqlite3_wal_autocheckpoint(meta_db(m), BACKFILL_PAGES); /* the hook goes: SQLite's again */
	pthread_mutex_lock(&b->lock);
	b->stopping = true;
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->thread, NULL);
	sqlite3_close(b->db);
	pthread_cond_destroy(&b->wake);
	pthread_mutex_destroy(&b->lock);
	free(b);
	*meta_backfill(m) = NULL;
}

unsigned long meta_backfill_runs(struct meta *m)
{
	struct backfill *b = *meta_backfill(m);
	unsigned long n;

	if (!b)
		return 0;
	pthread_mutex_lock(&b->lock);
	n = b->runs;
	pthread_mutex_unlock(&b->lock);
	return n;
}
