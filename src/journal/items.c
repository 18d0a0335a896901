/*
 * items.c - the journal's objects in the bucket: their keys, their content,
 * listing them and walking their chain (see journal_internal.h).
 *
 * Content (all integers little-endian), inside the object envelope with
 * codec zstd (docs/format.md), so that an encrypted filesystem seals it like
 * any chunk:
 *
 *	0  "ZJNL"      4  version (1)     8  kind (1 log, 2 snapshot)   12 0
 *	16 generation  24 seq             32 time, ms since the epoch
 *	40 inodes      48 body length     56 operations (commits) it holds
 *	64 inodes x 8 bytes (sorted), then the body
 */
#include "journal/journal_internal.h"

#include "common/le.h"
#include "crypt/keys.h"
#include "format/envelope.h"
#include "store/objstore.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITEM_MAGIC "ZJNL"
#define ITEM_VERSION 1
#define ITEM_HEADER 64
/* zstd level for metadata: small objects, sent every second */
#define ITEM_ZSTD_LEVEL 3
/* a database image or changeset this large is refused on decode */
#define ITEM_MAX_PLAIN (64ULL << 30)

int item_key(char key[JOURNAL_KEY_SIZE], uint64_t seq, uint32_t gen, int64_t time_ms,
	     enum item_kind kind)
{
	int n = snprintf(key, JOURNAL_KEY_SIZE, JOURNAL_PREFIX "%016" PRIx64 "-%08" PRIx32 "-%013" PRId64 "-%c",
			 seq, gen, time_ms, kind == ITEM_SNAPSHOT ? 'S' : 'L');

	return n > 0 && n < JOURNAL_KEY_SIZE ? 0 : -EINVAL;
}

int item_parse(const char *key, struct item *it)
{
	const char *p = key;
	char kind, end;
	int64_t t;
	uint64_t seq;
	uint32_t gen;

	if (strncmp(p, JOURNAL_PREFIX, strlen(JOURNAL_PREFIX)) != 0)
		return -EINVAL;
	p += strlen(JOURNAL_PREFIX);
	if (strlen(p) != 16 + 1 + 8 + 1 + 13 + 1 + 1)
		return -EINVAL;
	if (sscanf(p, "%16" SCNx64 "-%8" SCNx32 "-%13" SCNd64 "-%c%c", &seq, &gen, &t, &kind,
		   &end) != 4 ||
	    (kind != 'L' && kind != 'S'))
		return -EINVAL;
	memset(it, 0, sizeof(*it));
	it->seq = seq;
	it->gen = gen;
	it->time_ms = t;
	it->kind = kind == 'S' ? ITEM_SNAPSHOT : ITEM_LOG;
	snprintf(it->key, sizeof(it->key), "%s", key);
	return 0;
}

int item_encode(const struct keyring *keys, const char *name, enum item_kind kind, uint64_t seq,
		uint32_t gen, int64_t time_ms, uint64_t rows, const uint64_t *inodes,
		size_t ninodes, const void *body, size_t body_len, uint8_t **out, size_t *outlen)
{
	size_t len = ITEM_HEADER + 8 * ninodes + body_len;
	struct envelope_opts o = {.codec = ENVELOPE_CODEC_ZSTD,
				  .zstd_level = ITEM_ZSTD_LEVEL,
				  .data_key = keys_object_key(keys),
				  .name = name};
	uint8_t *plain = malloc(len);
	int ret;

	if (!plain)
		return -ENOMEM;
	memset(plain, 0, ITEM_HEADER);
	memcpy(plain, ITEM_MAGIC, 4);
	put_le32(plain + 4, ITEM_VERSION);
	put_le32(plain + 8, (uint32_t)kind);
	put_le64(plain + 16, gen);
	put_le64(plain + 24, seq);
	put_le64(plain + 32, (uint64_t)time_ms);
	put_le64(plain + 40, ninodes);
	put_le64(plain + 48, body_len);
	put_le64(plain + 56, rows);
	for (size_t i = 0; i < ninodes; i++)
		put_le64(plain + ITEM_HEADER + 8 * i, inodes[i]);
	if (body_len)
		memcpy(plain + ITEM_HEADER + 8 * ninodes, body, body_len);
	ret = envelope_encode(&o, plain, len, out, outlen);
	free(plain);
	return ret;
}

int item_decode(const struct keyring *keys, const char *name, const void *obj, size_t objlen,
		struct item_body *b)
{
	uint64_t plen, ninodes, body_len;
	uint8_t *p;
	size_t len;
	int ret;

	memset(b, 0, sizeof(*b));
	ret = envelope_plaintext_len(obj, objlen, &plen);
	if (ret)
		return ret;
	if (plen < ITEM_HEADER || plen > ITEM_MAX_PLAIN)
		return -EBADMSG;
	p = malloc(plen);
	if (!p)
		return -ENOMEM;
	ret = envelope_decode(keys_object_key(keys), name, obj, objlen, p, plen, &len);
	if (ret == 0 && (len != plen || memcmp(p, ITEM_MAGIC, 4) != 0 ||
			 get_le32(p + 4) != ITEM_VERSION))
		ret = -EBADMSG;
	if (ret) {
		free(p);
		return ret;
	}
	ninodes = get_le64(p + 40);
	body_len = get_le64(p + 48);
	if (ninodes > (len - ITEM_HEADER) / 8 || body_len != len - ITEM_HEADER - 8 * ninodes) {
		free(p);
		return -EBADMSG;
	}
	b->kind = (enum item_kind)get_le32(p + 8);
	b->gen = get_le64(p + 16);
	b->seq = get_le64(p + 24);
	b->time_ms = (int64_t)get_le64(p + 32);
	b->rows = get_le64(p + 56);
	b->ninodes = ninodes;
	b->inodes = malloc((ninodes ? ninodes : 1) * sizeof(uint64_t));
	if (!b->inodes) {
		free(p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < ninodes; i++)
		b->inodes[i] = get_le64(p + ITEM_HEADER + 8 * i);
	b->body = p + ITEM_HEADER + 8 * ninodes;
	b->body_len = body_len;
	b->buf = p;
	return 0;
}

void item_body_free(struct item_body *b)
{
	free(b->inodes);
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

struct list_ctx {
	struct item *v;
	size_t n, cap;
	int err;
};

static int list_cb(void *arg, const struct objstore_entry *e)
{
	struct list_ctx *c = arg;
	struct item it;

	if (item_parse(e->key, &it) != 0)
		return 0; /* not an item: left alone */
	it.size = e->size;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 256;
		struct item *nv = realloc(c->v, cap * sizeof(*nv));
		if (!nv) {
			c->err = -ENOMEM;
			return 1;
		}
		c->v = nv;
		c->cap = cap;
	}
	c->v[c->n++] = it;
	return 0;
}

int items_list(struct objstore *store, struct item **items, size_t *n)
{
	struct list_ctx c = {0};
	int ret = objstore_list_all(store, JOURNAL_PREFIX, list_cb, &c);

	if (ret == 0 || ret == 1)
		ret = c.err;
	if (ret) {
		free(c.v);
		return ret;
	}
	*items = c.v;
	*n = c.n;
	return 0;
}

int items_at(struct objstore *store, uint64_t seq, size_t *n)
{
	char prefix[JOURNAL_KEY_SIZE];
	struct list_ctx c = {0};
	int ret;

	snprintf(prefix, sizeof(prefix), JOURNAL_PREFIX "%016" PRIx64 "-", seq);
	ret = objstore_list_all(store, prefix, list_cb, &c);
	if (ret == 0 || ret == 1)
		ret = c.err;
	*n = c.n;
	free(c.v);
	return ret;
}

size_t items_chain(const struct item *items, size_t n, bool *keep)
{
	uint32_t gen = 0;
	size_t count = 0;

	for (size_t i = 0; i < n; i++) {
		/* keys sort by seq, then generation: the last of a seq has the highest */
		bool last_of_seq = i + 1 == n || items[i + 1].seq != items[i].seq;
		keep[i] = false;
		if (items[i].gen < gen)
			continue;
		if (!last_of_seq) {
			/* a higher generation at this seq wins; a snapshot beside a log of
			 * the same generation (never written) would too */
			continue;
		}
		gen = items[i].gen;
		keep[i] = true;
		count++;
	}
	return count;
}

int item_fetch(struct objstore *store, const struct keyring *keys, const struct item *it,
	       struct item_body *b)
{
	char *buf = NULL;
	size_t len = 0;
	int ret = objstore_get(store, it->key, 0, UINT64_MAX, &buf, &len);

	if (ret)
		return ret;
	ret = item_decode(keys, it->key, buf, len, b);
	free(buf);
	if (ret == 0 && (b->seq != it->seq || b->gen != it->gen || b->kind != it->kind)) {
		item_body_free(b);
		ret = -EBADMSG;
	}
	return ret;
}
