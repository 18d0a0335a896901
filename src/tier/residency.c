/*
 * residency.c - where a file's bytes are, as users see and steer it:
 * SEEK_DATA / SEEK_HOLE (tier_lseek) and the user.zero.* attributes.
 * Read: user.zero.status (the tier's counters as one line of JSON),
 * user.zero.residency (a file's local, remote and dirty bytes) and
 * user.zero.pinned. Written: user.zero.pin, user.zero.evict (evict.c does
 * it) and user.zero.fetch (a range of chunks, through fetch.c).
 *
 * Invariants: a REMOTE chunk is data to SEEK_DATA / SEEK_HOLE, as if it
 * were local. user.zero.evict goes through evict_chunk (evict.c), so it
 * leaves DIRTY chunks, chunks a read is in and chunks being fetched; unlike
 * the evictor it does not skip pinned files.
 */
#include "tier/tier_internal.h"

#include "journal/journal.h"
#include "journal/lease.h"
#include "store/objstore.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- SEEK_DATA / SEEK_HOLE ---- */

int tier_lseek(struct fs *fs, struct fs_inode *ip, off_t off, int whence, off_t *result)
{
	uint64_t cs = fs->chunk_size, size = ip->attr.size, pos;
	off_t r;

	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		r = lseek(ip->fd, off, whence);
		if (r < 0)
			return -errno;
		*result = r;
		return 0;
	}
	if (off < 0)
		return -ENXIO;
	if ((uint64_t)off >= size)
		return -ENXIO;
	pos = (uint64_t)off;
	if (whence == SEEK_DATA) {
		uint64_t next_remote = UINT64_MAX;
		for (uint64_t idx = pos / cs; idx * cs < size; idx++) {
			if (chunk_bits_test(&ip->remote, idx)) {
				next_remote = idx * cs > pos ? idx * cs : pos;
				break;
			}
		}
		r = lseek(ip->fd, (off_t)pos, SEEK_DATA);
		uint64_t data = r < 0 ? UINT64_MAX : (uint64_t)r;
		uint64_t res = data < next_remote ? data : next_remote;
		if (res >= size)
			return -ENXIO;
		*result = (off_t)res;
		return 0;
	}
	for (;;) {
		if (chunk_bits_test(&ip->remote, pos / cs)) {
			pos = (pos / cs + 1) * cs; /* a REMOTE chunk is data */
			if (pos >= size) {
				*result = (off_t)size;
				return 0;
			}
			continue;
		}
		r = lseek(ip->fd, (off_t)pos, SEEK_HOLE);
		if (r < 0)
			return -errno;
		if ((uint64_t)r >= size || !chunk_bits_test(&ip->remote, (uint64_t)r / cs)) {
			*result = r > (off_t)size ? (off_t)size : r;
			return 0;
		}
		pos = (uint64_t)r;
	}
}

/* ---- user.zero.* attributes ---- */

struct residency {
	struct fs *fs;
	uint64_t size;
	uint64_t local, remote, dirty;
};

static int residency_cb(void *arg, uint64_t idx, enum meta_chunk_state state)
{
	struct residency *r = arg;
	uint64_t n = chunk_len(r->fs, r->size, idx);

	if (state == CHUNK_REMOTE) {
		r->remote += n;
	} else {
		r->local += n;
		if (state == CHUNK_DIRTY)
			r->dirty += n;
	}
	return 0;
}

/* Copy TEXT into BUF (SIZE 0: length only). */
static int xattr_reply(const char *text, size_t n, void *buf, size_t size, size_t *len)
{
	*len = n;
	if (size == 0)
		return 0;
	if (n > size)
		return -ERANGE;
	memcpy(buf, text, n);
	return 0;
}

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

static int status_json(struct fs *fs, char *out, size_t size)
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

int tier_getxattr(struct fs *fs, uint64_t ino, const char *name, void *buf, size_t size,
		  size_t *len)
{
	char text[4096];
	struct meta_inode in;
	int n, ret;

	ret = inode_load(fs, ino, &in);
	if (ret)
		return ret;
	if (strcmp(name, "user.zero.status") == 0) {
		n = status_json(fs, text, sizeof(text));
		if (n < 0)
			return n;
		return xattr_reply(text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1,
				   buf, size, len);
	}
	if (strcmp(name, "user.zero.residency") == 0 && S_ISREG(in.mode)) {
		struct residency r = {fs, in.size, 0, 0, 0};
		ret = meta_chunk_residency(fs->meta, ino, residency_cb, &r);
		if (ret)
			return ret;
		n = snprintf(text, sizeof(text),
			     "size=%" PRIu64 " local=%" PRIu64 " remote=%" PRIu64 " dirty=%" PRIu64
			     " pinned=%d\n",
			     in.size, r.local, r.remote, r.dirty, !!(in.flags & META_INODE_PINNED));
		return xattr_reply(text, (size_t)n, buf, size, len);
	}
	if (strcmp(name, "user.zero.pinned") == 0) {
		n = snprintf(text, sizeof(text), "%d", !!(in.flags & META_INODE_PINNED));
		return xattr_reply(text, (size_t)n, buf, size, len);
	}
	return -ENODATA;
}

/* Parse "FIRST-LAST" or "FIRST" chunk indices. */
static int parse_range(const char *v, size_t size, uint64_t *first, uint64_t *last)
{
	char tmp[64];
	char *end;

	if (size == 0 || size >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, v, size);
	tmp[size] = '\0';
	*first = strtoull(tmp, &end, 10);
	*last = *first;
	if (*end == '-')
		*last = strtoull(end + 1, &end, 10);
	return (*end == '\0' || *end == '\n') && *first <= *last ? 0 : -EINVAL;
}

int tier_setxattr(struct fs *fs, uint64_t ino, const char *name, const void *value, size_t size)
{
	struct meta_inode in;
	struct fs_inode *ip;
	uint64_t first, last;
	int ret = inode_load(fs, ino, &in);

	if (ret)
		return ret;
	if (strcmp(name, "user.zero.pin") == 0) {
		bool on = size == 1 && ((const char *)value)[0] == '1';
		if (!on && !(size == 1 && ((const char *)value)[0] == '0'))
			return -EINVAL;
		in.flags = on ? in.flags | META_INODE_PINNED : in.flags & ~META_INODE_PINNED;
		return inode_store(fs, &in);
	}
	if (!S_ISREG(in.mode))
		return -EINVAL;
	if (strcmp(name, "user.zero.evict") == 0)
		return evict_file(fs, ino);
	if (strcmp(name, "user.zero.fetch") == 0) {
		ret = parse_range(value, size, &first, &last);
		if (ret)
			return ret;
		ip = itable_get(fs, ino);
		if (!ip)
			return -ENOMEM;
		if (!ip->attr_valid) {
			ip->attr = in;
			ip->attr_valid = true;
		}
		if (last * fs->chunk_size >= in.size)
			last = in.size ? (in.size - 1) / fs->chunk_size : 0;
		ret = first * fs->chunk_size < in.size ? chunks_load(fs, ip) : 0;
		if (ret == 0 && first * fs->chunk_size < in.size) {
			/* the read-ahead threads fetch alongside this one */
			for (uint64_t idx = first + 1; idx <= last; idx++)
				ra_enqueue(fs, ip, idx);
			ret = tier_make_local(fs, ip, first, last);
		}
		inode_maybe_free(fs, ip);
		return ret;
	}
	return -ENOTSUP;
}
