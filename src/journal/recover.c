/*
 * recover.c - the filesystem back from its bucket: the newest snapshot on
 * the journal's chain (journal_internal.h) at or before the state asked
 * for, then each log item after it, in seq order while they follow each
 * other, into a new database. Nothing but metadata is downloaded; the data
 * comes back on demand, chunk by chunk.
 *
 * Rules:
 *  1. The database is written under a temporary name and renamed into place
 *     only when complete: an interrupted restore leaves no database, and the
 *     next mount starts over.
 *  2. A log item that does not follow the one before (a gap: it never
 *     landed) ends the chain there: later items are based on a state the
 *     bucket does not have.
 */
#include "journal/journal.h"
#include "journal/journal_internal.h"

#include "common/log.h"
#include "meta/meta.h"
#include "store/objstore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int write_image(const char *path, const void *buf, size_t len)
{
	const char *p = buf;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	int ret = 0;

	if (fd < 0)
		return -errno;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	return ret;
}

static void unlink_db(const char *path)
{
	char side[4400];

	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
}

/* Open the image at TMP, apply ITEMS[FIRST..] that follow each other up to AT_MS. */
static int apply_log(struct objstore *store, const struct keyring *keys, const char *tmp,
		     const struct item *items, const bool *keep, size_t n, size_t base, int64_t at_ms,
		     journal_progress_cb progress, void *arg, uint64_t *last_seq, uint32_t *last_gen,
		     char *err, size_t errlen)
{
	struct meta *m = NULL;
	uint64_t seq = items[base].seq, total = 0, done = 0;
	unsigned conflicts = 0;
	char v[64];
	int ret;

	ret = meta_open(tmp, 0, 0, 0, &m);
	if (ret) {
		snprintf(err, errlen, "the snapshot %s is not a database Zero reads: %s",
			 items[base].key, strerror(-ret));
		return ret;
	}
	for (size_t i = base + 1; i < n; i++)
		if (keep[i])
			total++;
	for (size_t i = base + 1; i < n && ret == 0; i++) {
		struct item_body b;
		unsigned c = 0;

		if (!keep[i])
			continue;
		if (items[i].seq != seq + 1 || (at_ms && items[i].time_ms > at_ms))
			break; /* rule 2, or past the time asked for */
		if (items[i].kind == ITEM_SNAPSHOT)
			break; /* a later base would have been chosen: not reached */
		ret = item_fetch(store, keys, &items[i], &b);
		if (ret) {
			snprintf(err, errlen, "cannot read %s: %s", items[i].key,
				 ret == -EBADMSG ? "corrupt object" : objstore_reason(ret));
			break;
		}
		ret = meta_changes_apply(m, b.body, b.body_len, &c);
		item_body_free(&b);
		if (ret) {
			snprintf(err, errlen, "cannot apply %s: %s", items[i].key, strerror(-ret));
			break;
		}
		conflicts += c;
		seq = items[i].seq;
		*last_gen = items[i].gen;
		if (progress)
			progress(arg, "log", ++done, total);
	}
	if (conflicts)
		log_warn("restore: %u rows of the log did not fit the state before them", conflicts);
	/* this cache's own state starts afresh: it holds what the bucket has up to SEQ */
	if (ret == 0)
		ret = meta_local_clear(m);
	snprintf(v, sizeof(v), "%" PRIu64 " %" PRIu32, seq, *last_gen);
	if (ret == 0)
		ret = meta_local_set(m, "journal_last", v);
	if (ret == 0)
		ret = meta_sync(m);
	*last_seq = seq;
	meta_close(m);
	return ret;
}

int journal_restore(struct objstore *store, const struct keyring *keys, const char *db_path, const struct journal_target *t,
		    journal_progress_cb progress, void *arg, char *err, size_t errlen)
{
	char tmp[4200];
	struct item *items = NULL, cp;
	struct item_body b = {0};
	bool *keep = NULL;
	size_t n = 0, base = SIZE_MAX;
	uint64_t last_seq = 0;
	uint32_t last_gen = 0;
	int ret;

	snprintf(tmp, sizeof(tmp), "%s.restoring", db_path);
	unlink_db(tmp);
	if (t && t->checkpoint) {
		memset(&cp, 0, sizeof(cp));
		snprintf(cp.key, sizeof(cp.key), "%s", CHECKPOINT_PREFIX);
		if (strlen(t->checkpoint) + strlen(CHECKPOINT_PREFIX) >= sizeof(cp.key)) {
			snprintf(err, errlen, "checkpoint name too long");
			return -ENAMETOOLONG;
		}
		snprintf(cp.key, sizeof(cp.key), "%s%s", CHECKPOINT_PREFIX, t->checkpoint);
		char *buf = NULL;
		size_t len = 0;
		ret = objstore_get(store, cp.key, 0, UINT64_MAX, &buf, &len);
		if (ret == 0) {
			ret = item_decode(keys, cp.key, buf, len, &b);
			free(buf);
		}
		if (ret) {
			snprintf(err, errlen, "checkpoint %s: %s", t->checkpoint,
				 ret == -ENOENT	   ? "no such checkpoint"
				 : ret == -EBADMSG ? "corrupt object"
						   : objstore_reason(ret));
			return ret;
		}
		ret = write_image(tmp, b.body, b.body_len);
		item_body_free(&b);
		if (ret == 0) {
			struct meta *m = NULL;
			ret = meta_open(tmp, 0, 0, 0, &m);
			if (ret == 0)
				ret = meta_local_clear(m);
			meta_close(m);
		}
		goto out_rename;
	}

	ret = items_list(store, &items, &n);
	if (ret) {
		snprintf(err, errlen, "cannot list the metadata in %s: %s", objstore_describe(store),
			 objstore_reason(ret));
		return ret;
	}
	keep = calloc(n ? n : 1, sizeof(*keep));
	if (!keep) {
		ret = -ENOMEM;
		goto out;
	}
	items_chain(items, n, keep);
	for (size_t i = 0; i < n; i++)
		if (keep[i] && items[i].kind == ITEM_SNAPSHOT &&
		    (!t || !t->at_ms || items[i].time_ms <= t->at_ms))
			base = i;
	if (base == SIZE_MAX) {
		ret = -ENOENT;
		snprintf(err, errlen, "%s holds no metadata snapshot%s", objstore_describe(store),
			 t && t->at_ms ? " at or before that time" : "");
		goto out;
	}
	if (progress)
		progress(arg, "snapshot", 0, items[base].size);
	ret = item_fetch(store, keys, &items[base], &b);
	if (ret) {
		snprintf(err, errlen, "cannot read the snapshot %s: %s", items[base].key,
			 ret == -EBADMSG ? "corrupt object" : objstore_reason(ret));
		goto out;
	}
	if (progress)
		progress(arg, "snapshot", items[base].size, items[base].size);
	last_gen = items[base].gen;
	ret = write_image(tmp, b.body, b.body_len);
	item_body_free(&b);
	if (ret) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-ret));
		goto out;
	}
	ret = apply_log(store, keys, tmp, items, keep, n, base, t ? t->at_ms : 0, progress, arg,
			&last_seq, &last_gen, err, errlen);
	if (ret == 0)
		log_info("restore: snapshot %" PRIu64 " and the log up to %" PRIu64 " from %s",
			 items[base].seq, last_seq, objstore_describe(store));
out_rename:
	if (ret == 0 && rename(tmp, db_path) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot rename %s: %s", tmp, strerror(errno));
	}
out:
	if (ret)
		unlink_db(tmp);
	else {
		/* the side files of the temporary name are empty after the close */
		char side[4400];
		snprintf(side, sizeof(side), "%s-wal", tmp);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", tmp);
		unlink(side);
	}
	free(items);
	free(keep);
	return ret;
}

int journal_points(struct objstore *store, struct journal_point **points, size_t *np)
{
	struct item *items = NULL;
	struct journal_point *p = NULL;
	bool *keep = NULL;
	size_t n = 0, count = 0;
	int ret;

	*points = NULL;
	*np = 0;
	ret = items_list(store, &items, &n);
	if (ret)
		return ret;
	keep = calloc(n ? n : 1, sizeof(*keep));
	p = calloc(n ? n : 1, sizeof(*p));
	if (!keep || !p) {
		ret = -ENOMEM;
		goto out;
	}
	items_chain(items, n, keep);
	for (size_t i = 0; i < n; i++) {
		if (!keep[i] || items[i].kind != ITEM_SNAPSHOT)
			continue;
		struct journal_point *pt = &p[count++];
		uint64_t seq = items[i].seq;
		pt->kind = POINT_RANGE;
		pt->from_ms = pt->to_ms = items[i].time_ms;
		pt->seq = seq;
		for (size_t k = i + 1; k < n; k++) {
			if (!keep[k])
				continue;
			if (items[k].seq != seq + 1 || items[k].kind == ITEM_SNAPSHOT)
				break;
			seq = items[k].seq;
			pt->to_ms = items[k].time_ms;
		}
	}
	*points = p;
	*np = count;
	p = NULL;
out:
	free(p);
	free(items);
	free(keep);
	return ret;
}
