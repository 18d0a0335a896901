/*
 * status.c - user.zero.status: the tier's counters, the lease and the
 * journal's lag as one line of JSON (what `zero status` shows). Lock held.
 */
#include "tier/tier_internal.h"

#include "journal/journal.h"
#include "journal/lease.h"
#include "store/objstore.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Copy S into OUT as the inside of a JSON string (the lease's fields are printable). */
static void json_escape(const char *s, char *out, size_t size)
{
	size_t o = 0;

	for (; *s && o + 2 < size; s++) {
		if (*s == '"' || *s == '\\')
			out[o++] = '\\';
		out[o++] = (*s >= 0 && *s < 32) ? ' ' : *s;
	}
	out[o] = '\0';
}

/*
 * The lease members of the status line (each with a leading comma), "" for
 * a mount without a lease: state, holder (ours, or the one that fenced us),
 * generation and expiry, and "lease_fenced".
 */
static void status_lease(struct fs *fs, char *out, size_t size)
{
	const struct lease_record *who;
	struct lease_status ls;
	char host[2 * LEASE_FIELD_MAX], cache[2 * LEASE_FIELD_MAX];

	out[0] = '\0';
	if (!fs->lease)
		return;
	lease_get_status(fs->lease, &ls);
	who = ls.state == LEASE_FENCED ? &ls.holder : &ls.mine;
	json_escape(who->host, host, sizeof(host));
	json_escape(who->cache_id, cache, sizeof(cache));
	snprintf(out, size,
		 ",\"lease\":\"%s\",\"lease_fenced\":%s,\"lease_host\":\"%s\",\"lease_pid\":%ld"
		 ",\"lease_cache_id\":\"%s\",\"lease_generation\":%" PRIu64
		 ",\"lease_expires\":%" PRId64 ",\"lease_my_generation\":%" PRIu64
		 ",\"lease_renew_error\":\"%s\",\"lease_conditional\":%s",
		 lease_state_name(ls.state), ls.state == LEASE_FENCED ? "true" : "false", host,
		 who->pid, cache, who->generation, who->expires, ls.mine.generation,
		 ls.last_error ? strerror(-ls.last_error) : "", ls.conditional ? "true" : "false");
}

int tier_status_json(struct fs *fs, char *out, size_t size)
{
	struct tier *t = fs->tier;
	uint64_t count[3], bytes[3], objects = 0, stored = 0;
	uint64_t cs = fs->chunk_size;
	uint64_t dirty;
	double eta, hit;
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
	char err[sizeof(t->last_error) * 2];
	size_t o = 0;
	for (const char *p = t->last_error; *p && o + 2 < sizeof(err); p++) {
		if (*p == '"' || *p == '\\')
			err[o++] = '\\';
		err[o++] = (*p >= 0 && *p < 32) ? ' ' : *p;
	}
	err[o] = '\0';
	char lease[1024];
	status_lease(fs, lease, sizeof(lease));
	int n = snprintf(
	    out, size,
	    "{\"bucket\":\"%s\",\"encryption\":\"%s\",\"key_epoch\":%" PRIu64
	    ",\"chunk_size\":%" PRIu64 ",\"cache_used\":%" PRIu64
	    ",\"cache_target\":%" PRIu64 ",\"dirty_chunks\":%" PRIu64 ",\"dirty_bytes\":%" PRIu64
	    ",\"uploading\":%zu,\"upload_rate\":%.0f"
	    ",\"upload_eta_s\":%.0f,\"uploads\":%" PRIu64 ",\"uploaded_bytes\":%" PRIu64
	    ",\"dedup_hits\":%" PRIu64 ",\"clean_chunks\":%" PRIu64 ",\"remote_chunks\":%" PRIu64
	    ",\"bucket_objects\":%" PRIu64 ",\"bucket_bytes\":%" PRIu64 ",\"reads\":%" PRIu64
	    ",\"reads_fetched\":%" PRIu64 ",\"hit_ratio\":%.4f,\"fetches\":%" PRIu64
	    ",\"fetched_bytes\":%" PRIu64 ",\"fetch_errors\":%" PRIu64 ",\"upload_errors\":%" PRIu64
	    ",\"evictions\":%" PRIu64 ",\"evicted_bytes\":%" PRIu64 ",\"gc_deleted\":%" PRIu64
	    ",\"orphans_found\":%" PRIu64 ",\"orphan_bytes\":%" PRIu64
	    ",\"orphans_deleted\":%" PRIu64 ",\"orphan_sweeps\":%" PRIu64
	    ",\"orphan_sweep_last\":%lld,\"writers_waiting\":%s,\"memory_rss\":%" PRIu64
	    ",\"inodes_in_memory\":%zu,\"inodes_idle\":%zu,\"memory_buffers\":%" PRIu64
	    ",\"memory_buffers_peak\":%" PRIu64 ",\"memory_buffers_limit\":%" PRIu64
	    ",\"last_error\":\"%s\"%s}\n",
	    objstore_describe(t->store), t->keys.sealed ? KEYS_CIPHER_NAME : "none", t->key_epoch,
	    cs, t->cache_used, t->target, count[CHUNK_DIRTY], dirty,
	    t->nuploading, t->upload_rate, eta, t->uploads, t->upload_bytes, t->dedup_hits,
	    count[CHUNK_CLEAN], count[CHUNK_REMOTE], objects, stored, t->reads_local,
	    t->reads_fetched, hit, t->fetches_done, t->fetch_bytes, t->fetch_errors,
	    t->upload_errors, t->evictions, t->evicted_bytes, t->gc_deleted, t->orphans_found,
	    t->orphan_bytes, t->orphans_deleted, t->sweeps, (long long)t->sweep_last,
	    t->pressure ? "true" : "false", mem_rss(), fs->table_count, fs->refs.count,
	    (t->units_used + t->nbufs) * unit, t->units_peak * unit, t->units_max * unit, err,
	    lease);
	if (n > 2 && (size_t)n < size && fs->journal) {
		/* the metadata in the bucket: how far behind it is (src/journal/) */
		struct journal_status js;
		journal_status(fs->journal, &js);
		n -= 2; /* "}\n" */
		n += snprintf(
		    out + n, size - (size_t)n,
		    ",\"meta_seq\":%" PRIu64 ",\"meta_generation\":%" PRIu32
		    ",\"meta_lag_s\":%.1f,\"meta_lag_bytes\":%" PRIu64 ",\"meta_lag_rows\":%" PRIu64
		    ",\"meta_segments\":%" PRIu64 ",\"meta_snapshots\":%" PRIu64
		    ",\"meta_ship_errors\":%" PRIu64 ",\"meta_shipped_bytes\":%" PRIu64
		    ",\"meta_last_ship\":%" PRId64 ",\"meta_last_snapshot\":%" PRId64
		    ",\"meta_retention_s\":%" PRId64 ",\"meta_fenced\":%s}\n",
		    js.shipped_seq, js.generation, js.lag_s, js.lag_bytes, js.lag_rows, js.segments,
		    js.snapshots, js.ship_errors, js.shipped_bytes, js.last_ship, js.last_snapshot,
		    js.retention_s, js.fenced ? "true" : "false");
	}
	return n;
}
