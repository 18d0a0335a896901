/*
 * checkpoint.c - named states of the filesystem: `zero checkpoint create
 * NAME` puts a snapshot of the whole database under
 * zero/meta/checkpoint/NAME and records, in the metadata itself, every
 * object that state names; the collector keeps those until `zero
 * checkpoint delete NAME` (rule 2 of journal.c). A checkpoint does not
 * expire with the retention of the history.
 *
 * Rules:
 *  1. The rows come first, the object after: a crash between leaves a
 *     checkpoint row without an object (listed, and deletable), never an
 *     object whose data the collector may take.
 *  2. Names are 1 to 100 of [A-Za-z0-9._-], not starting with '.'.
 */
#include "journal/journal.h"
#include "journal/journal_internal.h"

#include "common/log.h"
#include "meta/meta.h"
#include "store/objstore.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 100

bool checkpoint_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > NAME_MAX_LEN || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

int journal_checkpoint_create(struct journal *j, const char *name)
{
	struct journal_access a;
	struct meta_snapshot *snap = NULL;
	char key[sizeof(CHECKPOINT_PREFIX) + NAME_MAX_LEN + 1];
	void *img = NULL;
	size_t imglen = 0, objlen = 0;
	uint8_t *obj = NULL;
	int64_t t = 0;
	int ret;

	if (!checkpoint_name_valid(name))
		return -EINVAL;
	snprintf(key, sizeof(key), "%s%s", CHECKPOINT_PREFIX, name);
	journal_access(j, &a);
	pthread_mutex_lock(a.lock);
	journal_access(j, &a);
	if (a.fenced) {
		pthread_mutex_unlock(a.lock);
		return -EROFS;
	}
	t = time(NULL);
	ret = meta_checkpoint_add(a.meta, name, t, a.seq, key); /* rule 1 */
	if (ret == 0)
		ret = meta_snapshot_begin(a.meta, &snap);
	pthread_mutex_unlock(a.lock);
	if (ret)
		return ret;
	ret = meta_snapshot_read(snap, &img, &imglen);
	meta_snapshot_end(snap);
	if (ret == 0)
		ret = item_encode(a.keys, key, ITEM_SNAPSHOT, a.seq, a.gen, t * 1000, 0, NULL, 0, img,
				  imglen, &obj, &objlen);
	if (ret == 0)
		ret = objstore_put(a.store, key, obj, objlen);
	free(img);
	free(obj);
	if (ret) {
		char k[sizeof(key)];
		log_error("checkpoint %s: cannot put it in the bucket: %s", name, strerror(-ret));
		pthread_mutex_lock(a.lock);
		meta_checkpoint_remove(a.meta, name, k, sizeof(k));
		pthread_mutex_unlock(a.lock);
		return ret == -ENOENT ? -EIO : ret;
	}
	log_info("checkpoint %s created", name);
	return 0;
}

int journal_checkpoint_delete(struct journal *j, const char *name)
{
	struct journal_access a;
	char key[sizeof(CHECKPOINT_PREFIX) + NAME_MAX_LEN + 1];
	int ret;

	if (!checkpoint_name_valid(name))
		return -EINVAL;
	journal_access(j, &a);
	pthread_mutex_lock(a.lock);
	ret = a.fenced ? -EROFS : meta_checkpoint_remove(a.meta, name, key, sizeof(key));
	pthread_mutex_unlock(a.lock);
	if (ret)
		return ret;
	/* the rows are gone: its objects may be collected; the snapshot goes too */
	ret = objstore_delete(a.store, key);
	if (ret)
		log_warn("checkpoint %s: its snapshot %s stays in the bucket: %s", name, key,
			 strerror(-ret));
	log_info("checkpoint %s deleted", name);
	return 0;
}

struct cp_list {
	struct checkpoint_info *v;
	size_t n, cap;
	int err;
};

static int cp_cb(void *arg, const struct objstore_entry *e)
{
	struct cp_list *l = arg;
	const char *name = e->key + strlen(CHECKPOINT_PREFIX);

	if (!checkpoint_name_valid(name))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct checkpoint_info *nv = realloc(l->v, cap * sizeof(*nv));
		if (!nv) {
			l->err = -ENOMEM;
			return 1;
		}
		l->v = nv;
		l->cap = cap;
	}
	snprintf(l->v[l->n].name, sizeof(l->v[l->n].name), "%s", name);
	l->v[l->n].time_ms = (int64_t)e->mtime * 1000;
	l->v[l->n].size = e->size;
	l->n++;
	return 0;
}

int checkpoint_list(struct objstore *store, struct checkpoint_info **out, size_t *n)
{
	struct cp_list l = {0};
	int ret = objstore_list_all(store, CHECKPOINT_PREFIX, cp_cb, &l);

	if (ret == 0 || ret == 1)
		ret = l.err;
	if (ret) {
		free(l.v);
		return ret;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}

int journal_checkpoint_xattr(struct journal *j, const char *op, const void *value, size_t size)
{
	char name[NAME_MAX_LEN + 1];

	if (size == 0 || size > NAME_MAX_LEN)
		return -EINVAL;
	memcpy(name, value, size);
	name[size] = '\0';
	if (strcmp(op, "create") == 0)
		return journal_checkpoint_create(j, name);
	if (strcmp(op, "delete") == 0)
		return journal_checkpoint_delete(j, name);
	return -EOPNOTSUPP;
}

struct cp_text {
	char *buf;
	size_t size, len;
};

static int cp_text_cb(void *arg, const char *name, int64_t created, uint64_t objects)
{
	struct cp_text *t = arg;
	char line[256];
	int n = snprintf(line, sizeof(line), "%s %" PRId64 " %" PRIu64 "\n", name, created, objects);

	if (t->size && t->len + (size_t)n <= t->size)
		memcpy(t->buf + t->len, line, (size_t)n);
	t->len += (size_t)n;
	return 0;
}

int journal_checkpoints_text(struct meta *m, void *buf, size_t size, size_t *len)
{
	struct cp_text t = {buf, size, 0};
	int ret = meta_checkpoint_list(m, cp_text_cb, &t);

	if (ret)
		return ret;
	*len = t.len;
	return size && t.len > size ? -ERANGE : 0;
}
