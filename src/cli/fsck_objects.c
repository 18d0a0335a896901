/*
 * fsck_objects.c - `zero fsck --objects / --verify` on an unmounted cache:
 * the chunk objects its metadata references, checked against the bucket,
 * and the objects in the bucket that nothing references (orphans).
 *
 *  --objects  one LIST of zero/chunks/ (1000 keys a request, far cheaper
 *             than a HEAD per object) against every chunk row that names
 *             an object: a referenced object that is missing, or whose
 *             size is not its recorded stored_size, is a problem.
 *  --verify   also GETs each referenced object once and checks it as a
 *             fetch would (the envelope's checksum, the plaintext length
 *             against each chunk row) and more: its keyed id recomputed
 *             from the plaintext against its name.
 * Every problem names the files it touches: a path (and how many more
 * links the file has, or that it has no name), the chunk and its bytes.
 *
 * Orphans are chunk objects (envelope_id_from_key) that no object row and
 * no chunk row knows: uploads that landed before a crash could record them.
 * They are reported; with --repair those older than the safety age (the
 * bucket's mtime) are deleted. Invariants: nothing else is ever deleted or
 * written (not a referenced object, not one with an object row, nothing
 * outside zero/chunks/, nothing whose key is not a chunk key), and the
 * bucket must hold this cache's filesystem (its superblock's fs_id), so an
 * interrupted fsck leaves at worst fewer orphans.
 */
#include "cli/fsck_objects.h"

#include "crypt/keys.h"
#include "journal/superblock.h"

#include "journal/journal.h"

#include "format/envelope.h"
#include "meta/meta.h"
#include "store/objstore.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNKS_PREFIX "zero/chunks/"
#define ORPHANS_SHOWN 20
#define DELETE_BATCH 1000

_Static_assert(ENVELOPE_KEY_LEN == ENVELOPE_ID_LEN, "id_key parsed as an id");

/* One chunk object in the bucket. */
struct listed {
	uint8_t id[ENVELOPE_ID_LEN];
	uint64_t size;
	time_t mtime;
	bool referenced; /* a chunk row names it */
	bool bad;	 /* reported (wrong size): --verify leaves it */
};

struct progress {
	bool tty;
	double t0, shown;
	uint64_t done, total, done_bytes, total_bytes;
};

struct ctx {
	struct meta *m;
	struct objstore *s;
	const struct fsck_objects_opts *o;
	struct fsck_objects_result *res;
	uint32_t chunk_size;
	uint8_t id_key[ENVELOPE_KEY_LEN];
	bool have_id_key;
	struct listed *listed; /* sorted by id */
	size_t nlisted, cap;
	uint64_t foreign, listed_bytes;
	/* the walk over the chunk rows, in object order */
	uint8_t cur[ENVELOPE_ID_LEN];
	bool have_cur, cur_bad;
	struct listed *cur_entry;
	const char *cur_problem; /* --verify: what is wrong with the current object, NULL: fine */
	uint64_t cur_plain;	 /* --verify: its plaintext length */
	uint64_t referenced, chunks;
	struct progress pg;
	int err; /* a failure that stops the walk, after its message */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* BYTES as "12.3 MB" into BUF. */
static const char *human(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
	double v = (double)bytes;
	int u = 0;

	while (v >= 1000 && u < 5) {
		v /= 1000;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}

static int listed_compare(const void *a, const void *b)
{
	return memcmp(a, b, ENVELOPE_ID_LEN);
}

static struct listed *listed_find(struct ctx *c, const uint8_t id[ENVELOPE_ID_LEN])
{
	return bsearch(id, c->listed, c->nlisted, sizeof(*c->listed), listed_compare);
}

static int list_cb(void *arg, const struct objstore_entry *e)
{
	struct ctx *c = arg;
	struct listed *l;

	if (c->nlisted == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 1024;
		struct listed *p = realloc(c->listed, ncap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		c->listed = p;
		c->cap = ncap;
	}
	l = &c->listed[c->nlisted];
	if (envelope_id_from_key(e->key, l->id) != 0) {
		c->foreign++; /* not a chunk key: neither checked nor ever deleted */
		return 0;
	}
	l->size = e->size;
	l->mtime = e->mtime;
	l->referenced = l->bad = false;
	c->listed_bytes += e->size;
	c->nlisted++;
	return 0;
}

/* ---- progress of --verify, on stderr when it is a terminal ---- */

static void progress_clear(struct ctx *c)
{
	if (c->pg.tty && c->pg.shown > 0) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
}

static void progress_show(struct ctx *c, bool force)
{
	struct progress *p = &c->pg;
	double t = now_s(), el = t - p->t0, rate, frac;
	char bar[31], a[16], b[16], r[16], eta[32];
	int fill;

	if (!p->tty || (!force && t - p->shown < 0.2))
		return;
	p->shown = t;
	frac = p->total_bytes ? (double)p->done_bytes / (double)p->total_bytes
	       : p->total     ? (double)p->done / (double)p->total
			      : 1.0;
	fill = (int)(frac * 30);
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	rate = el > 0 ? (double)p->done_bytes / el : 0;
	if (rate > 0 && p->total_bytes > p->done_bytes) {
		uint64_t s = (uint64_t)((double)(p->total_bytes - p->done_bytes) / rate);
		snprintf(eta, sizeof(eta), "ETA %" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 3600,
			 s / 60 % 60, s % 60);
	} else {
		snprintf(eta, sizeof(eta), "ETA --:--:--");
	}
	fprintf(stderr, "\r\033[Kverify [%s] %3.0f%% %" PRIu64 "/%" PRIu64 " objects %s/%s %s/s %s",
		bar, frac * 100, p->done, p->total, human(p->done_bytes, a, sizeof(a)),
		human(p->total_bytes, b, sizeof(b)), human((uint64_t)rate, r, sizeof(r)), eta);
	fflush(stderr);
}

/* ---- problems, naming the file ---- */

/* Print one problem of chunk CH: WHAT (e.g. "missing object KEY") and the file it belongs to. */
static void report_chunk(struct ctx *c, const char *what, const struct meta_chunk *ch)
{
	char path[4096], where[4200];
	uint64_t links = 0, first = ch->idx * c->chunk_size;
	int ret;

	ret = meta_inode_path(c->m, ch->ino, path, sizeof(path), &links);
	if (ret == 0 && links > 1)
		snprintf(where, sizeof(where), "%s (+%" PRIu64 " more link%s)", path, links - 1,
			 links > 2 ? "s" : "");
	else if (ret == 0)
		snprintf(where, sizeof(where), "%s", path);
	else if (ret == -ENOENT)
		snprintf(where, sizeof(where), "inode %" PRIu64 " (no name: unlinked)", ch->ino);
	else
		snprintf(where, sizeof(where), "inode %" PRIu64 " (path: %s)", ch->ino,
			 strerror(-ret));
	progress_clear(c);
	printf("  %s: %s chunk %" PRIu64 " (bytes %" PRIu64 "-%" PRIu64 ")\n", what, where, ch->idx,
	       first, first + (ch->length ? ch->length - 1 : 0));
	fflush(stdout);
}

static void object_bad(struct ctx *c)
{
	if (!c->cur_bad) {
		c->cur_bad = true;
		c->res->damaged++;
	}
}

/* A new object in the walk (rows come in object order): reset the per-object state. */
static bool object_next(struct ctx *c, const struct meta_chunk *ch)
{
	if (c->have_cur && memcmp(c->cur, ch->object, ENVELOPE_ID_LEN) == 0)
		return false;
	memcpy(c->cur, ch->object, ENVELOPE_ID_LEN);
	c->have_cur = true;
	c->cur_bad = false;
	c->cur_entry = listed_find(c, ch->object);
	return true;
}

/* --objects: each referenced object is listed, with its recorded size. */
static int objects_cb(void *arg, const struct meta_chunk *ch, uint64_t stored_size)
{
	struct ctx *c = arg;
	char key[ENVELOPE_OBJECT_KEY_SIZE], what[ENVELOPE_OBJECT_KEY_SIZE + 96];
	bool first = object_next(c, ch);
	struct listed *l = c->cur_entry;

	c->chunks++;
	envelope_object_key(ch->object, key, sizeof(key));
	if (first)
		c->referenced++;
	if (!l) {
		snprintf(what, sizeof(what), "missing object %s", key);
		report_chunk(c, what, ch);
		object_bad(c);
		return 0;
	}
	if (first) {
		l->referenced = true;
		/* stored_size 0: not known (meta_check's repair of a lost object row) */
		if (stored_size && stored_size != l->size)
			l->bad = true;
		else {
			c->pg.total++;
			c->pg.total_bytes += l->size;
		}
	}
	if (l->bad) {
		snprintf(what, sizeof(what), "object %s has %" PRIu64 " bytes, not %" PRIu64, key,
			 l->size, stored_size);
		report_chunk(c, what, ch);
		object_bad(c);
	}
	return 0;
}

/* GET and check the current object (its entry L): c->cur_problem says what is wrong. */
static int verify_object(struct ctx *c, struct listed *l)
{
	char key[ENVELOPE_OBJECT_KEY_SIZE];
	uint8_t id[ENVELOPE_ID_LEN];
	char *obj = NULL;
	void *plain = NULL;
	size_t objlen = 0, plen = 0;
	uint64_t hdr_len;
	int ret;

	c->cur_problem = NULL;
	envelope_object_key(l->id, key, sizeof(key));
	if (l->size > (uint64_t)c->chunk_size + ENVELOPE_HEADER_MAX) {
		c->cur_problem = "is larger than any chunk object";
		return 0;
	}
	ret = objstore_get(c->s, key, 0, UINT64_MAX, &obj, &objlen);
	if (ret == -ENOENT) {
		c->cur_problem = "is missing (deleted since the listing)";
		return 0;
	}
	if (ret) {
		progress_clear(c);
		fprintf(stderr, "zero: cannot read %s: %s\n", key, objstore_reason(ret));
		return ret;
	}
	c->pg.done_bytes += objlen;
	if (envelope_plaintext_len(obj, objlen, &hdr_len) != 0) {
		c->cur_problem = "is not a Zero object (corrupt header)";
		goto out;
	}
	if (hdr_len > c->chunk_size) {
		c->cur_problem = "has a header that claims more than a chunk (corrupt)";
		goto out;
	}
	plain = malloc(hdr_len ? hdr_len : 1);
	if (!plain) {
		ret = -ENOMEM;
		goto out;
	}
	ret = envelope_decode(keys_object_key(c->o->keys), key, obj, objlen, plain, hdr_len, &plen);
	if (ret == -ENOKEY) {
		c->cur_problem = "is encrypted: no key here to verify it";
		ret = 0;
		goto out;
	}
	if (ret) {
		c->cur_problem = c->o->keys && c->o->keys->sealed
				     ? "fails its authentication (corrupt, changed, or not stored "
				       "under this name)"
				     : "fails its checksum (corrupt)";
		ret = 0;
		goto out;
	}
	c->cur_plain = plen;
	if (c->have_id_key) {
		envelope_object_id(c->id_key, plain, plen, id);
		if (memcmp(id, l->id, ENVELOPE_ID_LEN) != 0)
			c->cur_problem = "holds other content than its name says";
	}
out:
	free(plain);
	free(obj);
	return ret;
}

/* --verify: each referenced object that is listed with the right size, once. */
static int verify_cb(void *arg, const struct meta_chunk *ch, uint64_t stored_size)
{
	struct ctx *c = arg;
	char key[ENVELOPE_OBJECT_KEY_SIZE], what[ENVELOPE_OBJECT_KEY_SIZE + 128];
	struct listed *l;
	int ret;

	(void)stored_size;
	if (object_next(c, ch)) {
		l = c->cur_entry;
		c->cur_problem = NULL;
		if (!l || l->bad) {
			c->cur_entry = NULL; /* reported by --objects */
			return 0;
		}
		ret = verify_object(c, l);
		if (ret)
			return ret;
		c->pg.done++;
		progress_show(c, false);
	}
	if (!c->cur_entry)
		return 0;
	envelope_object_key(ch->object, key, sizeof(key));
	if (c->cur_problem)
		snprintf(what, sizeof(what), "object %s %s", key, c->cur_problem);
	else if (c->cur_plain != ch->length)
		snprintf(what, sizeof(what),
			 "object %s holds %" PRIu64 " bytes, the chunk %" PRIu64, key, c->cur_plain,
			 ch->length);
	else
		return 0;
	report_chunk(c, what, ch);
	object_bad(c);
	return 0;
}

/* ---- the bucket must hold this filesystem ---- */

static int check_superblock(struct ctx *c)
{
	char fs_id[64], why[512] = "";
	struct superblock sb;
	int ret;

	ret = meta_setting_get(c->m, "fs_id", fs_id, sizeof(fs_id));
	if (ret) {
		fprintf(stderr, "zero: the metadata has no fs_id\n");
		return ret;
	}
	ret = superblock_read(c->s, &sb, NULL, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "zero: %s\n",
			ret == -ENOENT ? "the bucket has no superblock (wrong bucket, prefix or "
					 "endpoint?)"
				       : why);
		return ret;
	}
	if (strcmp(sb.fs_id, fs_id) != 0) {
		fprintf(stderr,
			"zero: %s holds another filesystem than this cache's (%s): refusing to "
			"check it\n",
			objstore_describe(c->s), fs_id);
		return -EEXIST;
	}
	return 0;
}

/* ---- orphans ---- */

static int delete_orphans(struct ctx *c, uint8_t (*ids)[ENVELOPE_ID_LEN], size_t n)
{
	char **keys = calloc(n ? n : 1, sizeof(*keys));
	int ret = keys ? 0 : -ENOMEM;

	for (size_t i = 0; ret == 0 && i < n; i++) {
		keys[i] = malloc(ENVELOPE_OBJECT_KEY_SIZE);
		if (keys[i])
			envelope_object_key(ids[i], keys[i], ENVELOPE_OBJECT_KEY_SIZE);
		else
			ret = -ENOMEM;
	}
	for (size_t i = 0; ret == 0 && i < n; i += DELETE_BATCH) {
		size_t k = n - i < DELETE_BATCH ? n - i : DELETE_BATCH;
		ret = objstore_delete_many(c->s, (const char *const *)keys + i, k);
		if (ret == 0)
			c->res->orphans_deleted += k;
	}
	if (ret)
		fprintf(stderr, "zero: deleting orphans: %s\n", objstore_reason(ret));
	for (size_t i = 0; keys && i < n; i++)
		free(keys[i]);
	free(keys);
	return ret;
}

static int orphans(struct ctx *c)
{
	uint8_t(*ids)[ENVELOPE_ID_LEN] = calloc(c->nlisted ? c->nlisted : 1, ENVELOPE_ID_LEN);
	uint8_t(*old)[ENVELOPE_ID_LEN] = calloc(c->nlisted ? c->nlisted : 1, ENVELOPE_ID_LEN);
	uint64_t bytes = 0, old_bytes = 0;
	size_t n = 0, unknown = 0, nold = 0, shown = 0;
	time_t now = time(NULL);
	char h[16], key[ENVELOPE_OBJECT_KEY_SIZE];
	int ret;

	if (!ids || !old) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < c->nlisted; i++)
		if (!c->listed[i].referenced)
			memcpy(ids[n++], c->listed[i].id, ENVELOPE_ID_LEN);
	/* garbage the collector will delete has a row: only what no row knows */
	ret = meta_object_filter_unknown(c->m, ids, n, &unknown);
	if (ret) {
		fprintf(stderr, "zero: reading the object table: %s\n", strerror(-ret));
		goto out;
	}
	qsort(ids, unknown, ENVELOPE_ID_LEN, listed_compare);
	for (size_t i = 0; i < unknown; i++) {
		const struct listed *l = listed_find(c, ids[i]);
		/* mtime 0: the store did not say when: never old enough */
		bool is_old = l->mtime && now - l->mtime >= (time_t)c->o->safety_age_s;
		long long age = l->mtime ? (long long)(now - l->mtime) : -1;

		bytes += l->size;
		if (is_old) {
			memcpy(old[nold++], l->id, ENVELOPE_ID_LEN);
			old_bytes += l->size;
		}
		if (shown++ < ORPHANS_SHOWN) {
			envelope_object_key(l->id, key, sizeof(key));
			if (age < 0)
				printf(
				    "  orphan %s: %s, age unknown (kept), no file references it\n",
				    key, human(l->size, h, sizeof(h)));
			else
				printf("  orphan %s: %s, %lld s old, no file references it%s\n",
				       key, human(l->size, h, sizeof(h)), age,
				       is_old ? "" : "; younger than the safety age: kept");
		}
	}
	if (unknown > ORPHANS_SHOWN)
		printf("  ... and %zu more orphans\n", unknown - ORPHANS_SHOWN);
	c->res->orphans_old = nold;
	c->res->orphans_young = unknown - nold;
	if (unknown == 0) {
		printf("orphans: none\n");
		goto out;
	}
	printf("orphans: %zu object%s (%s) that no file references", unknown,
	       unknown == 1 ? "" : "s", human(bytes, h, sizeof(h)));
	printf(", %zu older than %u s (%s)", nold, c->o->safety_age_s,
	       human(old_bytes, h, sizeof(h)));
	/* a cache behind the bucket does not know the newest objects: they would look leaked */
	int current = nold && c->o->repair ? journal_cache_current(c->s, c->m) : 1;
	if (current != 1) {
		printf(": kept: %s\n",
		       current == 0 ? "this cache is behind the bucket (another cache wrote since), "
				      "so it cannot tell leaked objects from newer ones"
				    : "cannot tell whether this cache is the bucket's newest state");
	} else if (nold && c->o->repair) {
		ret = delete_orphans(c, old, nold);
		printf(ret ? ": deleting them failed\n" : ": deleted\n");
	} else if (nold) {
		printf(": run with --repair to delete them\n");
	} else {
		printf(": kept (orphanSafetyAge)\n");
	}
out:
	free(old);
	free(ids);
	return ret;
}

int fsck_objects(struct meta *m, struct objstore *s, const struct fsck_objects_opts *o,
		 struct fsck_objects_result *res)
{
	struct ctx c = {.m = m, .s = s, .o = o, .res = res};
	char buf[2 * ENVELOPE_KEY_LEN + 1], h[16];
	int ret;

	memset(res, 0, sizeof(*res));
	ret = meta_setting_get(m, "chunk_size", buf, sizeof(buf));
	c.chunk_size = ret == 0 ? (uint32_t)strtoul(buf, NULL, 10) : 0;
	if (c.chunk_size == 0) {
		fprintf(stderr, "zero: the metadata has no chunk size\n");
		return -EINVAL;
	}
	if (o->keys && o->keys->sealed) {
		memcpy(c.id_key, o->keys->id_key, sizeof(c.id_key));
		c.have_id_key = true;
	} else {
		c.have_id_key = meta_setting_get(m, "id_key", buf, sizeof(buf)) == 0 &&
				envelope_id_from_hex(buf, c.id_key) == 0;
	}
	ret = check_superblock(&c);
	if (ret)
		return ret;

	printf("listing %s in %s\n", CHUNKS_PREFIX, objstore_describe(s));
	fflush(stdout);
	ret = objstore_list_all(s, CHUNKS_PREFIX, list_cb, &c);
	if (ret) {
		fprintf(stderr, "zero: cannot list %s in %s: %s\n", CHUNKS_PREFIX,
			objstore_describe(s), objstore_reason(ret));
		goto out;
	}
	qsort(c.listed, c.nlisted, sizeof(*c.listed), listed_compare);
	printf("bucket: %zu chunk objects, %s", c.nlisted, human(c.listed_bytes, h, sizeof(h)));
	if (c.foreign)
		printf(" (and %" PRIu64 " other keys under %s, left alone)", c.foreign,
		       CHUNKS_PREFIX);
	printf("\n");

	ret = meta_chunk_object_list(m, objects_cb, &c);
	if (ret) {
		fprintf(stderr, "zero: reading the chunk table: %s\n", strerror(-ret));
		goto out;
	}
	if (o->verify) {
		c.have_cur = false;
		c.pg.tty = isatty(STDERR_FILENO);
		c.pg.t0 = now_s();
		progress_show(&c, true);
		ret = meta_chunk_object_list(m, verify_cb, &c);
		if (ret == 0)
			progress_show(&c, true); /* where it ended */
		progress_clear(&c);
		double el = now_s() - c.pg.t0;
		char a[16], r[16];
		printf("verified %" PRIu64 " objects (%s) in %.1f s, %s/s\n", c.pg.done,
		       human(c.pg.done_bytes, a, sizeof(a)), el,
		       human(el > 0 ? (uint64_t)((double)c.pg.done_bytes / el) : 0, r, sizeof(r)));
		if (ret) {
			if (ret == -ENOMEM)
				fprintf(stderr, "zero: verifying stopped: %s\n", strerror(-ret));
			goto out;
		}
		if (!c.have_id_key && c.referenced)
			printf("note: the metadata has no id_key: object names were not checked\n");
	}
	if (res->damaged)
		printf("objects: %" PRIu64 " of %" PRIu64
		       " referenced objects missing or damaged: the data of the files named "
		       "above is lost there\n",
		       res->damaged, c.referenced);
	else
		printf("objects: all %" PRIu64 " referenced objects (%" PRIu64 " chunks) %s\n",
		       c.referenced, c.chunks, o->verify ? "present and intact" : "present");
	ret = orphans(&c);
out:
	free(c.listed);
	return ret;
}
