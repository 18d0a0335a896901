/* reftab.c - inode number -> kernel reference count of idle inodes (see reftab.h). */
#include "fs/reftab.h"

#include <errno.h>
#include <stdlib.h>

static size_t slot_of(uint64_t ino, size_t cap)
{
	/* Fibonacci hashing: inode numbers are dense, sequential runs */
	return (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

/* The slot holding INO, or the free slot where it would go. */
static struct reftab_slot *probe(const struct reftab *t, uint64_t ino)
{
	size_t i = slot_of(ino, t->cap);

	while (t->slots[i].ino != 0 && t->slots[i].ino != ino)
		i = (i + 1) & (t->cap - 1);
	return &t->slots[i];
}

static int grow(struct reftab *t)
{
	size_t cap = t->cap ? 2 * t->cap : 256;
	struct reftab new = {calloc(cap, sizeof(*new.slots)), cap, 0};

	if (!new.slots)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i].ino)
			*probe(&new, t->slots[i].ino) = t->slots[i];
	new.count = t->count;
	free(t->slots);
	*t = new;
	return 0;
}

int reftab_add(struct reftab *t, uint64_t ino, uint64_t n)
{
	struct reftab_slot *s;

	/* at most three quarters full: probes stay short */
	if ((t->count + 1) * 4 > t->cap * 3) {
		int ret = grow(t);
		if (ret)
			return ret;
	}
	s = probe(t, ino);
	if (s->ino == 0) {
		s->ino = ino;
		s->count = 0;
		t->count++;
	}
	s->count += n;
	return 0;
}

uint64_t reftab_get(const struct reftab *t, uint64_t ino)
{
	return t->count ? probe(t, ino)->count : 0;
}

uint64_t reftab_take(struct reftab *t, uint64_t ino)
{
	struct reftab_slot *s;
	uint64_t count;
	size_t hole, i;

	if (t->count == 0)
		return 0;
	s = probe(t, ino);
	if (s->ino == 0)
		return 0;
	count = s->count;
	t->count--;
	/* backward shift: move up every later entry of the run that may fill the hole */
	hole = (size_t)(s - t->slots);
	for (i = (hole + 1) & (t->cap - 1); t->slots[i].ino; i = (i + 1) & (t->cap - 1)) {
		size_t home = slot_of(t->slots[i].ino, t->cap);
		/* the entry may move to HOLE if HOME is not cyclically in (HOLE, I] */
		if (((i - home) & (t->cap - 1)) >= ((i - hole) & (t->cap - 1))) {
			t->slots[hole] = t->slots[i];
			hole = i;
		}
	}
	t->slots[hole].ino = 0;
	t->slots[hole].count = 0;
	return count;
}

void reftab_free(struct reftab *t)
{
	free(t->slots);
	t->slots = NULL;
	t->cap = t->count = 0;
}
