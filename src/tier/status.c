/*
 * status.c - user.zero.status: the tier's counters, the lease and the
 * journal's lag as one line of JSON (what `zero status` shows). Lock held.
 */
#include "tier/tier_internal.h"

#include "common/log.h"
#include "journal/journal.h"
#include "journal/lease.h"
#include "store/objstore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* json_pack with its error said in the log: NULL on failure. */
#define PACK(...) json_pack_ex(&jerr, 0, __VA_ARGS__)

/*
 * The lease members of the status line: state, holder (ours, or the one
 * that fenced us), generation and expiry, and "lease_fenced". Nothing for a
 * mount without a lease. 0 or -ENOMEM.
 */
static int status_lease(struct fs *fs, json_t *o)
{
	const struct lease_record *who;
	struct lease_status ls;
	json_error_t jerr;
	json_t *l;

	if (!fs->lease)
		return 0;
	lease_get_status(fs->lease, &ls);
	who = ls.state == LEASE_FENCED ? &ls.holder : &ls.mine;
	l = PACK("{s:s, s:b, s:s, s:I, s:s, s:I, s:I, s:I, s:s, s:b}", "lease",
		 lease_state_name(ls.state), "lease_fenced", ls.state == LEASE_FENCED, "lease_host",
		 who->host, "lease_pid", (json_int_t)who->pid, "lease_cache_id", who->cache_id,
		 "lease_generation", (json_int_t)who->generation, "lease_expires",
		 (json_int_t)who->expires, "lease_my_generation", (json_int_t)ls.mine.generation,
		 "lease_renew_error", ls.last_error ? strerror(-ls.last_error) : "",
		 "lease_conditional", ls.conditional);
	if (!l || json_object_update(o, l) != 0) {
		log_error("status: %s", l ? "out of memory" : jerr.text);
		json_decref(l);
		return -ENOMEM;
	}
	json_decref(l);
	return 0;
}

/* The journal's members: how far behind the bucket's metadata is (src/journal/). */
static int status_journal(struct fs *fs, json_t *o)
{
	struct journal_status js;
	json_error_t jerr;
	json_t *j;

	if (!fs->journal)
		return 0;
	journal_status(fs->journal, &js);
	j = PACK("{s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "meta_seq",
		 (json_int_t)js.shipped_seq, "meta_generation", (json_int_t)js.generation,
		 "meta_lag_s", js.lag_s, "meta_lag_bytes", (json_int_t)js.lag_bytes,
		 "meta_lag_rows", (json_int_t)js.lag_rows, "meta_segments",
		 (json_int_t)js.segments, "meta_snapshots", (json_int_t)js.snapshots,
		 "meta_ship_errors", (json_int_t)js.ship_errors, "meta_shipped_bytes",
		 (json_int_t)js.shipped_bytes, "meta_last_ship", (json_int_t)js.last_ship,
		 "meta_last_snapshot", (json_int_t)js.last_snapshot, "meta_retention_s",
		 (json_int_t)js.retention_s, "meta_fenced", js.fenced);
	if (!j || json_object_update(o, j) != 0) {
		log_error("status: %s", j ? "out of memory" : jerr.text);
		json_decref(j);
		return -ENOMEM;
	}
	json_decref(j);
	return 0;
}

int tier_status_json(struct fs *fs, char *out, size_t size)
{
	struct tier *t = fs->tier;
	uint64_t count[3], bytes[3], objects = 0, stored = 0;
	uint64_t dirty;
	double eta, hit;
	json_error_t jerr;
	json_t *o, *more;
	char *text;
	int ret;

	/* the bytes recounted with the chunks, so that the two agree (upload.c) */
	ret = meta_chunk_counts(fs->meta, count, bytes);
	if (ret == 0)
		ret = dirty_recount(fs);
	if (ret == 0)
		ret = meta_object_stats(fs->meta, &objects, &stored);
	if (ret)
		return ret;
	t->dirty_chunks = (int64_t)count[CHUNK_DIRTY];
	uint64_t unit = mem_unit_size(fs);
	dirty = t->dirty_bytes > 0 ? (uint64_t)t->dirty_bytes : 0;
	eta = t->upload_rate > 0 ? (double)dirty / t->upload_rate : -1;
	hit = t->reads_local ? 1.0 - (double)t->reads_fetched / (double)t->reads_local : 1.0;
	if (hit < 0)
		hit = 0;
	/* in two packs: one format string of every member is past what a reader can check */
	o = PACK("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:I, s:I, "
		 "s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I}",
		 "bucket", objstore_describe(t->store), "encryption",
		 t->keys.sealed ? KEYS_CIPHER_NAME : "none", "key_epoch", (json_int_t)t->key_epoch,
		 "chunk_size", (json_int_t)fs->chunk_size, "cache_used", (json_int_t)t->cache_used,
		 "cache_target", (json_int_t)t->target, "dirty_chunks",
		 (json_int_t)count[CHUNK_DIRTY], "dirty_bytes", (json_int_t)dirty, "uploading",
		 (json_int_t)t->nuploading, "upload_rate", t->upload_rate, "upload_eta_s", eta,
		 "uploads", (json_int_t)t->uploads, "uploaded_bytes", (json_int_t)t->upload_bytes,
		 "dedup_hits", (json_int_t)t->dedup_hits, "clean_chunks",
		 (json_int_t)count[CHUNK_CLEAN], "remote_chunks", (json_int_t)count[CHUNK_REMOTE],
		 "bucket_objects", (json_int_t)objects, "bucket_bytes", (json_int_t)stored, "reads",
		 (json_int_t)t->reads_local, "reads_fetched", (json_int_t)t->reads_fetched,
		 "hit_ratio", hit, "fetches", (json_int_t)t->fetches_done, "fetched_bytes",
		 (json_int_t)t->fetch_bytes);
	more = PACK("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:I, s:I, s:I, s:I, "
		    "s:I, s:I, s:s}",
		    "fetch_errors", (json_int_t)t->fetch_errors, "upload_errors",
		    (json_int_t)t->upload_errors, "evictions", (json_int_t)t->evictions,
		    "evicted_bytes", (json_int_t)t->evicted_bytes, "gc_deleted",
		    (json_int_t)t->gc_deleted, "orphans_found", (json_int_t)t->orphans_found,
		    "orphan_bytes", (json_int_t)t->orphan_bytes, "orphans_deleted",
		    (json_int_t)t->orphans_deleted, "orphan_sweeps", (json_int_t)t->sweeps,
		    "orphan_sweep_last", (json_int_t)t->sweep_last, "writers_waiting", t->pressure,
		    "memory_rss", (json_int_t)mem_rss(), "inodes_in_memory",
		    (json_int_t)fs->table_count, "inodes_idle", (json_int_t)fs->refs.count,
		    "memory_buffers", (json_int_t)((t->units_used + t->nbufs) * unit),
		    "memory_buffers_peak", (json_int_t)(t->units_peak * unit),
		    "memory_buffers_limit", (json_int_t)(t->units_max * unit), "last_error",
		    t->last_error);
	ret = o && more ? json_object_update(o, more) : -1;
	if (ret)
		log_error("status: %s", o && more ? "out of memory" : jerr.text);
	json_decref(more);
	if (ret == 0)
		ret = status_lease(fs, o);
	if (ret == 0)
		ret = status_journal(fs, o);
	text = ret == 0 ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return -ENOMEM;
	ret = snprintf(out, size, "%s\n", text);
	free(text);
	return ret > 0 && (size_t)ret < size ? ret : -ERANGE;
}
