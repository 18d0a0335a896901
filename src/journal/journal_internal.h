/*
 * journal_internal.h - what the files of src/journal/ share: the items of
 * the journal in the bucket (items.c) and the walk of their chain.
 *
 * An item is one object under zero/meta/j/, named
 *
 *	zero/meta/j/<seq: 16 hex>-<generation: 8 hex>-<time: 13 decimal ms>-<L|S>
 *
 * L is a log segment (the changeset of the commits since the item before),
 * S a snapshot (the whole database). seq numbers the items of the chain,
 * one after the other; the generation is the lease's (the writer's fencing
 * token). Keys sort by seq. Its content (docs/format.md, "Journal items")
 * is an envelope around a header, the inodes the item changed, and the body.
 *
 * The chain: walking the items in seq order, an item counts only if its
 * generation is at least the highest one seen so far, and of several at
 * one seq the highest generation wins. A writer fenced by a newer one may
 * still write items after the newer one began: they are left out.
 */
#ifndef ZERO_JOURNAL_INTERNAL_H
#define ZERO_JOURNAL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct objstore;

#define JOURNAL_PREFIX "zero/meta/j/"
#define JOURNAL_KEY_SIZE 64
#define CHECKPOINT_PREFIX "zero/meta/checkpoint/"

enum item_kind { ITEM_LOG = 1, ITEM_SNAPSHOT = 2 };

struct item {
	uint64_t seq;
	uint32_t gen;
	int64_t time_ms;
	enum item_kind kind;
	uint64_t size; /* bytes in the bucket */
	char key[JOURNAL_KEY_SIZE];
};

/* The decoded content of an item. */
struct item_body {
	enum item_kind kind;
	uint64_t seq, gen, rows; /* rows: operations (commits) */
	int64_t time_ms;
	uint64_t *inodes; /* points into the decoded buffer */
	size_t ninodes;
	const void *body; /* changeset or database image, points into the buffer */
	size_t body_len;
	void *buf; /* owned: the plaintext */
};

/* journal.c: what checkpoint.c works with (a copy of the journal's fields). */
struct journal;
struct journal_access {
	struct objstore *store;
	const struct keyring *keys; /* NULL: not encrypted */
	struct meta *meta;
	pthread_mutex_t *lock;
	uint64_t seq; /* the newest item taken */
	uint32_t gen;
	bool fenced;
};
void journal_access(struct journal *j, struct journal_access *a);

/* KEY of an item; returns 0 or -EINVAL. */
int item_key(char key[JOURNAL_KEY_SIZE], uint64_t seq, uint32_t gen, int64_t time_ms,
	     enum item_kind kind);
/* Parse a key relative to the prefix (zero/meta/j/...); -EINVAL when it is not an item's. */
int item_parse(const char *key, struct item *it);
/*
 * Encode an item: the header, INODES and BODY, compressed, in the object
 * envelope, sealed for NAME (its key) when KEYS are an encrypted
 * filesystem's (NULL: plain). *OUT is malloc'd (caller frees).
 */
int item_encode(const struct keyring *keys, const char *name, enum item_kind kind, uint64_t seq, uint32_t gen, int64_t time_ms, uint64_t rows,
		const uint64_t *inodes, size_t ninodes, const void *body, size_t body_len,
		uint8_t **out, size_t *outlen);
/*
 * Verify and decode object OBJ, stored as NAME, with KEYS (NULL: plain);
 * B owns the plaintext afterwards (item_body_free).
 */
int item_decode(const struct keyring *keys, const char *name, const void *obj, size_t objlen,
		struct item_body *b);
void item_body_free(struct item_body *b);

/* Every item in the bucket, in key order; *ITEMS malloc'd. */
int items_list(struct objstore *store, struct item **items, size_t *n);
/* Of the items at seq SEQ only (one prefix listing): how many there are. */
int items_at(struct objstore *store, uint64_t seq, size_t *n);
/*
 * Mark the chain: KEEP[i] true for the items that count (see above), in a
 * list sorted by key. Returns the number that count.
 */
size_t items_chain(const struct item *items, size_t n, bool *keep);
/* Fetch and decode item IT. */
int item_fetch(struct objstore *store, const struct keyring *keys, const struct item *it,
	       struct item_body *b);

#endif /* ZERO_JOURNAL_INTERNAL_H */
