/*
 * journal.c - shipping the metadata to the bucket: every sync interval (1 s)
 * the changes committed since the last item become a log item; a snapshot
 * of the whole database starts the journal, follows an unclean stop, a
 * restore or a database changed without a journal, and is taken every
 * snapshot interval while things change. Items older than the retention are
 * deleted, but for the snapshot they need.
 *
 * Rules:
 *  1. Each item is one state of the database (meta changes.c, rule 1), and
 *     items are put one at a time in seq order: an item is in the bucket
 *     only after every item before it. A failed put is retried, with the
 *     changes since waiting in the session, until it lands.
 *  2. Data before metadata: a chunk row names an object only once its put
 *     has landed (tier/upload.c), so no item names an object that is not in
 *     the bucket. An object is collected only when released at or before
 *     journal_gc_horizon: longer ago than the retention, and before the
 *     newest item in the bucket was taken (so the bucket's newest state no
 *     longer names it, and neither does any state the retention keeps).
 *  3. The seq of an item is recorded in `local` (journal_last, made
 *     durable) before its put, so a mount knows what its cache wrote last:
 *     an item in the bucket beyond it was written by someone else, and this
 *     cache is behind (journal_open refuses it).
 *  4. Nothing is sent while nothing changes: an idle mount puts no item.
 *  5. A fenced writer (a newer lease generation) puts nothing more.
 */
#include "journal/journal.h"
#include "journal/journal_internal.h"

#include "common/clock.h"
#include "common/log.h"
#include "meta/meta.h"
#include "store/objstore.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SYNC_MS 1000
#define DEFAULT_SNAPSHOT_S 3600
#define DEFAULT_RETENTION_S (7 * 86400)
/* log items between two snapshots at most, whatever the interval */
#define SNAPSHOT_EVERY_ITEMS 3600
/* how often old items are looked for, at most */
#define RETENTION_PASS_S 600
/* ... and at least this long between two (a short retention needs no LIST a second) */
#define RETENTION_PASS_MIN_S 10
#define RETRY_MAX_MS 30000

struct journal {
	struct journal_options o;
	pthread_t thread;
	bool started, stopping;
	pthread_cond_t cond;	  /* wakes the thread: a sync wants its changes now, or stop */
	pthread_cond_t done_cond; /* an item landed, or a take found nothing */

	uint64_t last_seq;	/* the newest item taken (shipped or being put) */
	uint64_t shipped_seq;	/* the newest item in the bucket */
	uint64_t takes;		/* takes done, empty ones included (journal_sync) */
	bool need_snapshot;
	bool synced;		/* the bucket has every change */
	int64_t first_pending_ms; /* when changes began to wait; 0 when none do */
	int64_t inflight_since_ms; /* when the changes of the item being put began to wait */
	int64_t shipped_take_s;	  /* when the newest item in the bucket was taken */
	int64_t last_snapshot_ms;
	uint64_t items_since_snapshot;
	int64_t last_retention_s;
	bool shipped_since_retention;

	/* statistics */
	uint64_t segments, snapshots, ship_errors, shipped_bytes;
	uint64_t pending_rows; /* operations (commits) in the item being put */
	uint64_t pending_bytes;
	bool fenced;
	char last_error[160];
};

static int64_t now_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

static uint32_t generation(struct journal *j)
{
	return j->o.generation ? j->o.generation(j->o.lease_arg) : 0;
}

static bool fenced(struct journal *j)
{
	if (!j->fenced && j->o.fenced && j->o.fenced(j->o.lease_arg)) {
		j->fenced = true;
		log_error("journal: a newer writer holds this filesystem; no more metadata is "
			  "shipped from this mount");
	}
	return j->fenced;
}

/* Rule 3: the seq about to be put, recorded durably (lock held). */
static int record_last(struct journal *j, uint64_t seq)
{
	char v[64];
	int ret;

	snprintf(v, sizeof(v), "%" PRIu64 " %" PRIu32, seq, generation(j));
	ret = meta_local_set(j->o.meta, "journal_last", v);
	if (ret == 0)
		ret = meta_sync(j->o.meta);
	return ret;
}

static int max_seq_in_bucket(struct journal *j, uint64_t *max)
{
	struct item *items = NULL;
	size_t n = 0;
	int ret = items_list(j->o.store, &items, &n);

	*max = 0;
	for (size_t i = 0; ret == 0 && i < n; i++)
		if (items[i].seq > *max)
			*max = items[i].seq;
	free(items);
	return ret;
}

int journal_cache_current(struct objstore *store, struct meta *m)
{
	char v[64];
	size_t n = 0;
	int ret;

	if (meta_local_get(m, "journal_last", v, sizeof(v)) != 0)
		return 1; /* never shipped: a filesystem from before the journal, or a new one */
	ret = items_at(store, strtoull(v, NULL, 10) + 1, &n);
	if (ret)
		return ret;
	return n == 0;
}

int journal_open(const struct journal_options *o, struct journal **out, char *err, size_t errlen)
{
	struct journal *j = calloc(1, sizeof(*j));
	char v[64] = "", synced[8] = "", stale[8] = "";
	bool have_last;
	int ret = 0;

	if (!j)
		return -ENOMEM;
	j->o = *o;
	if (!j->o.sync_interval_ms)
		j->o.sync_interval_ms = DEFAULT_SYNC_MS;
	if (!j->o.snapshot_interval_s)
		j->o.snapshot_interval_s = DEFAULT_SNAPSHOT_S;
	if (j->o.retention_s < 0)
		j->o.retention_s = DEFAULT_RETENTION_S;
	pthread_cond_init(&j->cond, NULL);
	pthread_cond_init(&j->done_cond, NULL);

	pthread_mutex_lock(o->lock);
	have_last = meta_local_get(o->meta, "journal_last", v, sizeof(v)) == 0;
	meta_local_get(o->meta, "journal_synced", synced, sizeof(synced));
	meta_local_get(o->meta, "journal_stale", stale, sizeof(stale));
	pthread_mutex_unlock(o->lock);
	if (have_last)
		j->last_seq = strtoull(v, NULL, 10);

	if (have_last && !o->restored) {
		size_t n = 0;
		ret = items_at(o->store, j->last_seq + 1, &n);
		if (ret) {
			/* the bucket does not answer: go on from the cache, check again when it does */
			log_warn("journal: cannot list %s (%s); shipping metadata resumes when it "
				 "answers",
				 objstore_describe(o->store), objstore_reason(ret));
			ret = 0;
			j->need_snapshot = true;
		} else if (n > 0 && !o->force) {
			snprintf(err, errlen,
				 "the bucket %s holds a newer state of this filesystem than this "
				 "cache (item %" PRIu64 " and later, written by another cache: a "
				 "copy of this cache, or a recovery elsewhere). Mount the bucket's "
				 "state with a new, empty cache directory, or mount with --force to "
				 "make this cache's state the newest (what was written since is then "
				 "only in the bucket's history)",
				 objstore_describe(o->store), j->last_seq + 1);
			ret = -ESTALE;
			goto out_free;
		} else if (n > 0) {
			log_warn("journal: --force: this cache's state replaces the bucket's newer one");
		}
	}
	if (!have_last || o->force) {
		uint64_t max = 0;
		ret = max_seq_in_bucket(j, &max);
		if (ret) {
			snprintf(err, errlen, "cannot list the metadata in %s: %s",
				 objstore_describe(o->store), objstore_reason(ret));
			goto out_free;
		}
		if (max > j->last_seq)
			j->last_seq = max;
	}
	j->shipped_seq = j->last_seq;
	/* a state the bucket may not have: ship it whole first */
	j->need_snapshot = j->need_snapshot || !have_last || o->restored || o->force ||
			   strcmp(synced, "1") != 0 || strcmp(stale, "1") == 0;
	j->shipped_take_s = j->need_snapshot ? 0 : time(NULL);
	j->last_snapshot_ms = now_ms();
	j->last_retention_s = time(NULL);
	pthread_mutex_lock(o->lock);
	ret = meta_local_set(o->meta, "journal_synced", "0");
	if (ret == 0)
		ret = meta_local_set(o->meta, "journal_stale", "0");
	pthread_mutex_unlock(o->lock);
	if (ret) {
		snprintf(err, errlen, "cannot write the journal's state: %s", strerror(-ret));
		goto out_free;
	}
	if (j->need_snapshot)
		log_info("journal: the bucket gets a snapshot of the metadata first");
	*out = j;
	return 0;

out_free:
	journal_free(j);
	return ret;
}

/*
 * Put ITEM (encoded, LEN bytes) under KEY, retrying while the bucket fails
 * (lock held; dropped while it waits). Returns 0, or -ECANCELED when the
 * journal stops or is fenced before it lands.
 */
static int put_item(struct journal *j, const char *key, const uint8_t *obj, size_t len,
		    bool stopping_tries_once)
{
	unsigned delay_ms = 200;

	for (;;) {
		int ret;

		if (fenced(j))
			return -ECANCELED;
		pthread_mutex_unlock(j->o.lock);
		ret = objstore_put(j->o.store, key, obj, len);
		pthread_mutex_lock(j->o.lock);
		if (ret == 0) {
			j->shipped_bytes += len;
			return 0;
		}
		j->ship_errors++;
		snprintf(j->last_error, sizeof(j->last_error), "putting %.60s: %.80s", key,
			 objstore_reason(ret));
		log_error("journal: %s", j->last_error);
		if (j->stopping && stopping_tries_once)
			return -ECANCELED;
		struct timespec until = clock_after_ms(CLOCK_REALTIME, delay_ms);
		pthread_cond_timedwait(&j->cond, j->o.lock, &until);
		delay_ms = delay_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : delay_ms * 2;
		if (j->stopping)
			stopping_tries_once = true;
	}
}

/*
 * Take what changed and put it as one item (lock held). Returns 0 with
 * nothing to do or done, -errno when it could not (the changes are kept or
 * a snapshot is due).
 */
static int ship_once(struct journal *j, bool final)
{
	bool snapshot = j->need_snapshot;
	struct meta_snapshot *snap = NULL;
	void *cs = NULL, *img = NULL;
	uint64_t *inos = NULL, rows = 0, seq;
	size_t cslen = 0, imglen = 0, ninos = 0, objlen = 0;
	uint8_t *obj = NULL;
	char key[JOURNAL_KEY_SIZE];
	int64_t t_ms = now_ms();
	int64_t take_s = time(NULL);
	int ret;

	if (fenced(j))
		return -EROFS;
	if (!snapshot && !meta_changes_pending(j->o.meta)) {
		/* commits that changed nothing shipped (access times of chunks) */
		meta_changes_rows_reset(j->o.meta);
		return 0;
	}
	if (!snapshot && (j->items_since_snapshot >= SNAPSHOT_EVERY_ITEMS ||
			  t_ms - j->last_snapshot_ms >= (int64_t)j->o.snapshot_interval_s * 1000))
		snapshot = true;
	uint64_t ops = meta_changes_rows(j->o.meta);
	ret = meta_changes_take(j->o.meta, &cs, &cslen);
	if (ret)
		return ret; /* -EBUSY: inside a transaction, next time */
	j->takes++;
	if (!snapshot && cslen == 0) {
		/* the changes cancelled out */
		j->first_pending_ms = 0;
		pthread_cond_broadcast(&j->done_cond);
		return 0;
	}
	if (snapshot) {
		ret = meta_snapshot_begin(j->o.meta, &snap);
		if (ret)
			goto out;
	} else {
		ret = meta_changes_inodes(j->o.meta, cs, cslen, &inos, &ninos, &rows);
		if (ret)
			goto out;
	}
	seq = j->last_seq + 1;
	ret = record_last(j, seq);
	if (ret)
		goto out;
	meta_changes_rows_reset(j->o.meta); /* that commit was the journal's own */
	j->last_seq = seq;
	j->pending_rows = ops;
	j->pending_bytes = cslen;
	j->inflight_since_ms = j->first_pending_ms ? j->first_pending_ms : t_ms;
	j->first_pending_ms = 0;

	/* the state is fixed: the work on it needs no lock */
	pthread_mutex_unlock(j->o.lock);
	if (snapshot) {
		ret = meta_snapshot_read(snap, &img, &imglen);
		meta_snapshot_end(snap);
		snap = NULL;
	}
	if (ret == 0)
		ret = item_key(key, seq, generation(j), t_ms, snapshot ? ITEM_SNAPSHOT : ITEM_LOG);
	if (ret == 0)
		ret = item_encode(j->o.keys, key, snapshot ? ITEM_SNAPSHOT : ITEM_LOG, seq,
				  generation(j), t_ms, ops, inos, ninos, snapshot ? img : cs,
				  snapshot ? imglen : cslen, &obj, &objlen);
	pthread_mutex_lock(j->o.lock);
	if (ret == 0)
		ret = put_item(j, key, obj, objlen, final);
	if (ret) {
		/* this item never lands: the next is a snapshot, at the next seq */
		j->need_snapshot = true;
		if (!j->first_pending_ms)
			j->first_pending_ms = j->inflight_since_ms;
		j->inflight_since_ms = 0;
		goto out;
	}
	j->shipped_seq = seq;
	j->shipped_take_s = take_s;
	j->pending_rows = j->pending_bytes = 0;
	j->inflight_since_ms = 0;
	j->shipped_since_retention = true;
	if (snapshot) {
		j->snapshots++;
		j->need_snapshot = false;
		j->last_snapshot_ms = t_ms;
		j->items_since_snapshot = 0;
	} else {
		j->segments++;
		j->items_since_snapshot++;
	}
	pthread_cond_broadcast(&j->done_cond);
out:
	if (ret && ret != -ECANCELED)
		log_error("journal: shipping item %" PRIu64 " failed: %s", j->last_seq + 1,
			  strerror(-ret));
	if (snap)
		meta_snapshot_end(snap);
	free(cs);
	free(img);
	free(inos);
	free(obj);
	return ret;
}

/*
 * Delete items the retention no longer keeps (lock held, dropped for the
 * bucket): everything before the newest snapshot at or before the horizon,
 * and items off the chain older than the horizon.
 */
static void retention_pass(struct journal *j)
{
	int64_t horizon_ms = now_ms() - j->o.retention_s * 1000;
	struct item *items = NULL;
	bool *keep = NULL;
	const char **del = NULL;
	size_t n = 0, ndel = 0;
	uint64_t base = 0;
	int ret;

	j->last_retention_s = time(NULL);
	j->shipped_since_retention = false;
	pthread_mutex_unlock(j->o.lock);
	ret = items_list(j->o.store, &items, &n);
	if (ret == 0 && n) {
		keep = calloc(n, sizeof(*keep));
		del = calloc(n, sizeof(*del));
		if (!keep || !del)
			ret = -ENOMEM;
	}
	if (ret == 0 && n) {
		items_chain(items, n, keep);
		for (size_t i = 0; i < n; i++)
			if (keep[i] && items[i].kind == ITEM_SNAPSHOT &&
			    items[i].time_ms <= horizon_ms && items[i].seq <= j->shipped_seq)
				base = items[i].seq;
		for (size_t i = 0; i < n; i++) {
			if (items[i].seq > j->shipped_seq)
				continue; /* not ours to judge yet */
			if ((keep[i] && items[i].seq < base) ||
			    (!keep[i] && items[i].time_ms <= horizon_ms))
				del[ndel++] = items[i].key;
		}
		if (ndel)
			ret = objstore_delete_many(j->o.store, del, ndel);
		if (ret)
			log_warn("journal: deleting %zu items past the retention: %s", ndel,
				 objstore_reason(ret));
		else if (ndel)
			log_info("journal: deleted %zu items past the retention", ndel);
	}
	free(items);
	free(keep);
	free(del);
	pthread_mutex_lock(j->o.lock);
}

static void *journal_main(void *arg)
{
	struct journal *j = arg;

	bool first = true;

	pthread_mutex_lock(j->o.lock);
	while (!j->stopping) {
		struct timespec until;
		int64_t wake = now_ms() + j->o.sync_interval_ms;

		until.tv_sec = wake / 1000;
		until.tv_nsec = (wake % 1000) * 1000000;
		/* a snapshot the bucket needs goes at once, not a second later */
		if (!(first && j->need_snapshot))
			pthread_cond_timedwait(&j->cond, j->o.lock, &until);
		first = false;
		if (j->stopping)
			break;
		if (fenced(j)) {
			pthread_cond_broadcast(&j->done_cond);
			continue;
		}
		if (meta_changes_pending(j->o.meta) && !j->first_pending_ms)
			j->first_pending_ms = now_ms();
		ship_once(j, false);
		if (j->shipped_since_retention &&
		    time(NULL) - j->last_retention_s >=
			(j->o.retention_s < RETENTION_PASS_MIN_S ? RETENTION_PASS_MIN_S
			 : j->o.retention_s < RETENTION_PASS_S	 ? j->o.retention_s
								 : RETENTION_PASS_S))
			retention_pass(j);
	}
	pthread_mutex_unlock(j->o.lock);
	return NULL;
}

int journal_start(struct journal *j)
{
	int ret = pthread_create(&j->thread, NULL, journal_main, j);

	if (ret)
		return -ret;
	j->started = true;
	return 0;
}

int journal_stop(struct journal *j)
{
	int ret;

	if (!j)
		return 0;
	pthread_mutex_lock(j->o.lock);
	j->stopping = true;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(j->o.lock);
	if (j->started)
		pthread_join(j->thread, NULL);
	j->started = false;
	pthread_mutex_lock(j->o.lock);
	/* the last changes (the clean mark among them), one try each */
	ret = ship_once(j, true);
	if (ret == 0 && meta_changes_pending(j->o.meta))
		ret = ship_once(j, true);
	if (ret == 0 && !j->need_snapshot && !fenced(j))
		ret = meta_local_set(j->o.meta, "journal_synced", "1");
	else if (ret == 0)
		ret = -EIO;
	if (ret == 0)
		ret = meta_sync(j->o.meta);
	pthread_mutex_unlock(j->o.lock);
	if (ret)
		log_warn("journal: the bucket does not have the last changes (%s); the next mount "
			 "ships a snapshot",
			 strerror(-ret));
	return ret;
}

void journal_free(struct journal *j)
{
	if (!j)
		return;
	pthread_cond_destroy(&j->cond);
	pthread_cond_destroy(&j->done_cond);
	free(j);
}

int journal_sync(struct journal *j, unsigned timeout_s)
{
	struct timespec until;
	uint64_t t0, target = 0;
	bool have_target = false;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_s;
	pthread_mutex_lock(j->o.lock);
	if (!meta_changes_pending(j->o.meta) && !j->need_snapshot) {
		target = j->last_seq;
		have_target = true;
	}
	t0 = j->takes;
	pthread_cond_broadcast(&j->cond);
	for (;;) {
		if (fenced(j)) {
			ret = -EROFS;
			break;
		}
		if (!have_target && j->takes > t0 && !j->need_snapshot) {
			target = j->last_seq;
			have_target = true;
		}
		if (have_target && j->shipped_seq >= target)
			break;
		if (pthread_cond_timedwait(&j->done_cond, j->o.lock, &until) == ETIMEDOUT) {
			ret = -EIO;
			break;
		}
	}
	pthread_mutex_unlock(j->o.lock);
	return ret;
}

int64_t journal_gc_horizon(struct journal *j)
{
	int64_t now = time(NULL), h = now - j->o.retention_s, shipped;

	/*
	 * Rule 2: released before the newest item in the bucket was taken (a
	 * release in the second of the take may have come after it), or, when
	 * nothing waits to be shipped, before now.
	 */
	if (!meta_changes_pending(j->o.meta) && j->shipped_seq == j->last_seq && !j->need_snapshot)
		shipped = now;
	else
		shipped = j->shipped_take_s - 1;
	if (shipped < h)
		h = shipped;
	return j->fenced ? 0 : h;
}

void journal_access(struct journal *j, struct journal_access *a)
{
	a->store = j->o.store;
	a->keys = j->o.keys;
	a->meta = j->o.meta;
	a->lock = j->o.lock;
	a->seq = j->last_seq;
	a->gen = generation(j);
	a->fenced = j->fenced;
}

void journal_status(struct journal *j, struct journal_status *st)
{
	memset(st, 0, sizeof(*st));
	st->shipped_seq = j->shipped_seq;
	st->generation = generation(j);
	st->segments = j->segments;
	st->snapshots = j->snapshots;
	st->ship_errors = j->ship_errors;
	st->shipped_bytes = j->shipped_bytes;
	int64_t since = j->inflight_since_ms;
	if (j->first_pending_ms && (!since || j->first_pending_ms < since))
		since = j->first_pending_ms;
	if (since)
		st->lag_s = (double)(now_ms() - since) / 1000.0;
	st->lag_bytes = meta_changes_bytes(j->o.meta) + j->pending_bytes;
	st->lag_rows = (meta_changes_pending(j->o.meta) ? meta_changes_rows(j->o.meta) : 0) +
		       j->pending_rows;
	st->last_ship = j->shipped_take_s;
	st->last_snapshot = j->last_snapshot_ms / 1000;
	st->retention_s = j->o.retention_s;
	st->fenced = j->fenced;
	snprintf(st->last_error, sizeof(st->last_error), "%s", j->last_error);
}
