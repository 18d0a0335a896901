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
 *  A mount that lost its lease deletes nothing: the new holder may use the
 *  object. Before each batch the lease is read again (lease_check); only a
 *  lease still ours, and not about to expire, lets the batch go.
 */
#include "tier/tier_internal.h"

#include "common/log.h"
#include "format/envelope.h"
#include "journal/lease.h"
#include "store/objstore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GC_BATCH 256

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
	ret = meta_object_garbage(fs->meta, GC_BATCH, gc_cb, &b);
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
		note_error(t, "deleting %zu unreferenced objects: %s", b.n, store_reason(ret));
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
