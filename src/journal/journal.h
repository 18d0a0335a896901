/*
 * journal.h - the filesystem's metadata in the bucket: a log of the
 * changes, shipped every second, between snapshots of the whole database
 * (journal.c); restoring it into a new cache, at its newest state or a past
 * one (recover.c).
 *
 * The fs core owns the journal: it calls it with its lock, fs->lock, which
 * the journal takes itself around every use of the metadata (META). The
 * store is the tier's and outlives the journal.
 */
#ifndef ZERO_JOURNAL_H
#define ZERO_JOURNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct meta;
struct objstore;
struct journal;
struct keyring;

struct journal_options {
	struct objstore *store;
	const struct keyring *keys; /* the fs's keys (crypt/keys.h), NULL: not encrypted; not copied */
	struct meta *meta;     /* used only under *LOCK */
	pthread_mutex_t *lock; /* the fs core's lock */
	unsigned sync_interval_ms;  /* how often changes are shipped; 0: 1000 */
	unsigned snapshot_interval_s; /* a snapshot after this long with changes; 0: 3600 */
	int64_t retention_s;	      /* history kept; < 0: 7 days */
	bool restored;		      /* the database was just restored from the bucket */
	bool force;		      /* ship this cache's state even if the bucket's is newer */
	/* the writer's lease: its generation, and whether a newer writer fenced it (may be NULL) */
	uint32_t (*generation)(void *arg);
	bool (*fenced)(void *arg);
	void *lease_arg;
};

/*
 * Open the journal of the filesystem in META on STORE (lock not held, no
 * thread runs yet). Refuses (-ESTALE, ERR says why) a cache whose state is
 * behind the bucket's: another cache wrote after it (a copy of a cache
 * mounted elsewhere, or a recovery on another machine), unless FORCE.
 */
int journal_open(const struct journal_options *o, struct journal **out, char *err, size_t errlen);
int journal_start(struct journal *j);
/*
 * Whether the cache of META (not mounted) has the newest state of the
 * filesystem in STORE: 1 yes, 0 no (another cache wrote after it: its
 * object table does not know the newest objects), or -errno.
 */
int journal_cache_current(struct objstore *store, struct meta *m);
/* Ship what is left (lock not held) and stop the thread; 0 when the bucket has it all. */
int journal_stop(struct journal *j);
void journal_free(struct journal *j);

/*
 * Wait until every change committed before the call is in the bucket (lock
 * not held): syncUpload's fsync. -EIO when the bucket does not take it
 * within TIMEOUT_S seconds, -EROFS when fenced.
 */
int journal_sync(struct journal *j, unsigned timeout_s);

/* Objects released at or before this time may be collected (lock held). */
int64_t journal_gc_horizon(struct journal *j);

struct journal_status {
	uint64_t shipped_seq; /* the newest item in the bucket */
	uint32_t generation;
	uint64_t segments, snapshots, ship_errors;
	uint64_t shipped_bytes;
	double lag_s;	       /* age of the oldest change not in the bucket; 0 when none */
	uint64_t lag_bytes;    /* about how many bytes of changes are waiting */
	uint64_t lag_rows;     /* operations (commits) waiting to be shipped */
	int64_t last_ship;     /* when an item last landed, seconds */
	int64_t last_snapshot; /* seconds */
	int64_t retention_s;
	bool fenced;
	char last_error[160];
};
/* Lock held. */
void journal_status(struct journal *j, struct journal_status *st);

/* ---- checkpoint.c ---- */

/*
 * Name the current state NAME (lock not held): a snapshot in the bucket,
 * and its objects kept until it is deleted. -EEXIST when NAME is taken,
 * -EINVAL for a bad name, -EROFS when fenced.
 */
int journal_checkpoint_create(struct journal *j, const char *name);
/* Delete checkpoint NAME: -ENOENT when there is none. */
int journal_checkpoint_delete(struct journal *j, const char *name);
/* user.zero.checkpoint.OP (create, delete) set to a name: lock not held. */
int journal_checkpoint_xattr(struct journal *j, const char *op, const void *value, size_t size);
/* user.zero.checkpoints: "NAME CREATED OBJECTS\n" per checkpoint (lock held). */
int journal_checkpoints_text(struct meta *m, void *buf, size_t size, size_t *len);
/* 1..100 of [A-Za-z0-9._-], not starting with '.'. */
bool checkpoint_name_valid(const char *name);

struct checkpoint_info {
	char name[128];
	int64_t time_ms;
	uint64_t size;
};
/* The checkpoints in STORE; *OUT malloc'd. */
int checkpoint_list(struct objstore *store, struct checkpoint_info **out, size_t *n);

/* ---- recover.c ---- */

/* Which state to restore. */
struct journal_target {
	int64_t at_ms;		/* 0: the newest; else the newest state at or before this time */
	const char *checkpoint; /* a checkpoint's name (then at_ms is ignored) */
};

/* Progress of a restore, for the terminal: PHASE, DONE of TOTAL (bytes or items). */
typedef void (*journal_progress_cb)(void *arg, const char *phase, uint64_t done, uint64_t total);

/*
 * Restore the filesystem in STORE, whose objects KEYS open (NULL: not
 * encrypted), into a new database at DB_PATH (which must not exist), as
 * TARGET says. -ENOENT when the bucket holds no
 * journal; ERR says why on failure. The database is complete but not yet
 * fixed up for an empty cache (meta_restore_fixup).
 */
int journal_restore(struct objstore *store, const struct keyring *keys, const char *db_path, const struct journal_target *t,
		    journal_progress_cb progress, void *arg, char *err, size_t errlen);

/* One restorable state, for `zero recover --list`. */
struct journal_point {
	enum { POINT_SNAPSHOT, POINT_RANGE, POINT_CHECKPOINT } kind;
	int64_t from_ms, to_ms; /* a range of states (log items between from and to) */
	uint64_t seq;
	char name[128]; /* checkpoint */
};
/* Every point (sorted by time); *POINTS malloc'd. */
int journal_points(struct objstore *store, struct journal_point **points, size_t *n);

#endif /* ZERO_JOURNAL_H */
