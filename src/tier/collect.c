/*
 * collect.c - the garbage collector: the tier thread deletes, a batch at a
 * time, the objects that no chunk row references any more (gc_once), from
 * the bucket first and then from the object table.
 *
 * Rules (numbered as in tier_internal.h):
 *  5. Objects are content-addressed and never overwritten. The garbage
 *     collector deletes objects nothing references; an id it is deleting is
 *     in `deleting`, and an upload of the same content waits for it to go.
 *  An object whose delete fails stays in the table, and is tried again.
 *  An object is deleted only when the journal's retention no longer needs
 *  it (journal_gc_horizon: released long enough ago, and the bucket's
 *  newest metadata no longer names it), and no checkpoint keeps it.
 *
 * The orphan sweep (sweep_step): an upload puts its object before its row
 * is committed, so a crash in between leaves an object in the bucket that
 * no row knows and nothing will ever delete. Every orphanSweepInterval the
 * tier thread lists zero/chunks/, one page (SWEEP_PAGE keys) per round so
 * that eviction and collection go on meanwhile, and deletes the objects
 *  - whose key is a chunk key (envelope_id_from_key; nothing else under
 *    zero/chunks/, and nothing outside it, is ever touched),
 *  - that no object row and no chunk row knows, checked under fs->lock
 *    after the page was listed (a row committed since is seen),
 *  - that no upload in flight has as its content (its put may have landed
 *    and its row not yet), and
 *  - that are older than orphanSafetyAge by the bucket's own clock (an
 *    upload of another process, or a clock far off, is kept).
 * Their ids are in `deleting` while they go, so an upload of the same
 * content waits instead of referencing an object that is about to go
 * (rule 5). The sweep and gc_once run in the tier thread, one after the
 * other, so `deleting` holds one batch at a time. The check of the chunk
 * rows scans the chunk table under the lock, once per page that holds an
 * orphan: leaks are rare, and the chunk table has no index on objects.
 *  A mount that lost its lease deletes nothing: the new holder may use the
 *  object. Before each batch the lease is read again (lease_check); only a
 *  lease still ours, and not about to expire, lets the batch go.
 */
#include "tier/tier_internal.h"

#include "common/log.h"
#include "format/envelope.h"
#include "journal/journal.h"
#include "journal/lease.h"
#include "store/objstore.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define GC_BATCH 256
#define SWEEP_PREFIX "zero/chunks/"
#define SWEEP_PAGE 1000

struct gc_batch {
	uint8_t (*ids)[ENVELOPE_ID_LEN];
	size_t n;
};

static int gc_cb(void *arg, const uint8_t id[META_OBJECT_ID_LEN])
{
	struct gc_batch *b = arg;

	memcpy(b->ids[b->n++], id, ENVELOPE_ID_LEN);
	return 0;
}

/* Delete unreferenced objects from the bucket, then forget them (rule 5). */
void gc_once(struct fs *fs)
{
	struct tier *t = fs->tier;
	struct gc_batch b = {calloc(GC_BATCH, ENVELOPE_ID_LEN), 0};
	char **keys = NULL;
	int ret;

	if (!b.ids)
		return;
	pthread_mutex_lock(&fs->lock);
	if (!fs->journal) {
		/* a read-only view of a past state: its objects are the live filesystem's */
		pthread_mutex_unlock(&fs->lock);
		free(b.ids);
		return;
	}
	ret = meta_object_garbage(fs->meta, GC_BATCH, time(NULL), journal_gc_horizon(fs->journal),
				  gc_cb, &b);
	if (ret || b.n == 0) {
		pthread_mutex_unlock(&fs->lock);
		free(b.ids);
		return;
	}
	t->deleting = b.ids;
	t->ndeleting = b.n;
	pthread_mutex_unlock(&fs->lock);

	/* no network under the lock: the lease is read with the batch marked deleting */
	if (fs->lease && (ret = lease_check(fs->lease)) != 0) {
		if (ret != -ESTALE && ret != -EAGAIN)
			log_debug("gc: the lease cannot be checked (%s); deleting later",
				  strerror(-ret));
		goto out_unmark;
	}

	keys = calloc(b.n, sizeof(*keys));
	for (size_t i = 0; keys && i < b.n; i++) {
		keys[i] = malloc(ENVELOPE_OBJECT_KEY_SIZE);
		if (keys[i])
			envelope_object_key(b.ids[i], keys[i], ENVELOPE_OBJECT_KEY_SIZE);
		else
			ret = -ENOMEM;
	}
	if (!keys)
		ret = -ENOMEM;
	if (ret == 0)
		ret = objstore_delete_many(t->store, (const char *const *)keys, b.n);

	pthread_mutex_lock(&fs->lock);
	if (ret == 0) {
		for (size_t i = 0; i < b.n; i++)
			if (meta_object_delete(fs->meta, b.ids[i]) > 0)
				t->gc_deleted++;
	} else {
		note_error(t, "deleting %zu unreferenced objects: %s", b.n, objstore_reason(ret));
	}
	pthread_mutex_unlock(&fs->lock);
out_unmark:
	pthread_mutex_lock(&fs->lock);
	t->deleting = NULL;
	t->ndeleting = 0;
	pthread_mutex_unlock(&fs->lock);
	for (size_t i = 0; keys && i < b.n; i++)
		free(keys[i]);
	free(keys);
	free(b.ids);
}

/* ---- the orphan sweep ---- */

struct orphan {
	uint8_t id[ENVELOPE_ID_LEN];
	uint64_t size;
	time_t mtime;
};

static int orphan_compare(const void *a, const void *b)
{
	return memcmp(a, b, ENVELOPE_ID_LEN);
}

/* Whether an upload in flight has content ID (lock held). */
static bool uploading_has_id(struct tier *t, const uint8_t id[ENVELOPE_ID_LEN])
{
	for (size_t i = 0; i < t->nuploading; i++)
		if (t->uploading[i].has_id && memcmp(t->uploading[i].id, id, ENVELOPE_ID_LEN) == 0)
			return true;
	return false;
}

/* The sweep is over (lock held): its counts become the status's, the next is due later. */
static void sweep_end(struct tier *t, bool complete)
{
	time_t now = time(NULL);

	if (complete) {
		t->orphans_found = t->sweep_found;
		t->orphan_bytes = t->sweep_found_bytes;
		t->sweep_last = now;
		t->sweeps++;
	}
	t->sweep_active = false;
	free(t->sweep_token);
	t->sweep_token = NULL;
	t->sweep_next = now + (time_t)t->orphan_sweep_interval_s;
}

void sweep_step(struct fs *fs)
{
	struct tier *t = fs->tier;
	struct objstore_list page = {0};
	struct orphan *cand = NULL;
	uint8_t(*ids)[ENVELOPE_ID_LEN] = NULL, (*del)[ENVELOPE_ID_LEN] = NULL;
	char **keys = NULL;
	size_t n = 0, unknown = 0, ndel = 0;
	uint64_t del_bytes = 0;
	time_t now = time(NULL);
	int ret;

	/* a read-only past state does not know the live filesystem's newer objects */
	if (!fs->journal || t->orphan_sweep_interval_s == 0 ||
	    (!t->sweep_active && now < t->sweep_next))
		return;
	if (!t->sweep_active) {
		t->sweep_active = true;
		t->sweep_found = t->sweep_found_bytes = 0;
	}
	ret = objstore_list(t->store, SWEEP_PREFIX, t->sweep_token, SWEEP_PAGE, &page);
	if (ret) {
		pthread_mutex_lock(&fs->lock);
		note_error(t, "orphan sweep: listing %s: %s", SWEEP_PREFIX, objstore_reason(ret));
		sweep_end(t, false);
		pthread_mutex_unlock(&fs->lock);
		return;
	}
	cand = calloc(page.count ? page.count : 1, sizeof(*cand));
	ids = calloc(page.count ? page.count : 1, ENVELOPE_ID_LEN);
	del = calloc(page.count ? page.count : 1, ENVELOPE_ID_LEN);
	if (!cand || !ids || !del)
		goto out; /* out of memory: this page again next round */
	for (size_t i = 0; i < page.count; i++) {
		if (envelope_id_from_key(page.entries[i].key, cand[n].id) != 0)
			continue; /* not a chunk object: not ours to delete */
		cand[n].size = page.entries[i].size;
		cand[n].mtime = page.entries[i].mtime;
		memcpy(ids[n], cand[n].id, ENVELOPE_ID_LEN);
		n++;
	}
	qsort(cand, n, sizeof(*cand), orphan_compare);

	pthread_mutex_lock(&fs->lock);
	/* after the listing: a row committed since it was taken is seen here */
	ret = meta_object_filter_unknown(fs->meta, ids, n, &unknown);
	if (ret) {
		note_error(t, "orphan sweep: %s", strerror(-ret));
		pthread_mutex_unlock(&fs->lock);
		goto out;
	}
	for (size_t i = 0; i < unknown; i++) {
		const struct orphan *o = bsearch(ids[i], cand, n, sizeof(*cand), orphan_compare);

		if (!o)
			continue;
		t->sweep_found++;
		t->sweep_found_bytes += o->size;
		/* mtime 0: the store did not say when it was made, so it is never old enough */
		if (o->mtime == 0 || now - o->mtime < (time_t)t->orphan_safety_age_s ||
		    uploading_has_id(t, o->id))
			continue;
		memcpy(del[ndel++], o->id, ENVELOPE_ID_LEN);
		del_bytes += o->size;
	}
	if (ndel) {
		t->deleting = del; /* rule 5: an upload of this content waits */
		t->ndeleting = ndel;
	}
	pthread_mutex_unlock(&fs->lock);

	if (ndel) {
		keys = calloc(ndel, sizeof(*keys));
		ret = keys ? 0 : -ENOMEM;
		for (size_t i = 0; ret == 0 && i < ndel; i++) {
			keys[i] = malloc(ENVELOPE_OBJECT_KEY_SIZE);
			if (keys[i])
				envelope_object_key(del[i], keys[i], ENVELOPE_OBJECT_KEY_SIZE);
			else
				ret = -ENOMEM;
		}
		if (ret == 0)
			ret = objstore_delete_many(t->store, (const char *const *)keys, ndel);
	}

	pthread_mutex_lock(&fs->lock);
	if (ndel) {
		if (ret == 0) {
			t->orphans_deleted += ndel;
			t->orphan_deleted_bytes += del_bytes;
			log_info(
			    "orphan sweep: deleted %zu objects that nothing references (%" PRIu64
			    " bytes), older than %u s",
			    ndel, del_bytes, t->orphan_safety_age_s);
		} else {
			note_error(t, "orphan sweep: deleting %zu objects: %s", ndel,
				   objstore_reason(ret));
		}
		t->deleting = NULL;
		t->ndeleting = 0;
	}
	if (page.next_token) {
		free(t->sweep_token);
		t->sweep_token = page.next_token;
		page.next_token = NULL;
	} else {
		sweep_end(t, true);
	}
	pthread_mutex_unlock(&fs->lock);
out:
	for (size_t i = 0; keys && i < ndel; i++)
		free(keys[i]);
	free(keys);
	free(del);
	free(ids);
	free(cand);
	objstore_list_release(&page);
}
