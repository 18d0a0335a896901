/*
 * memory.c - the memory of transfers: chunk-sized buffers for fetches and
 * uploads, from a pool, within a budget.
 *
 * Each fetch or upload needs one chunk-sized buffer (the object as it
 * travels) and, for a compressed object, a second one (the plaintext of a
 * fetch, the encoded object of an upload). Unbounded, eight readers, four
 * read-ahead threads and four uploaders held 32 MiB each: over 500 MiB.
 * So every such buffer is a unit of a budget of TRANSFER_MEMORY bytes
 * (at least MIN_UNITS units), and a transfer waits for a unit when none
 * is free.
 *
 * Invariants:
 *  - units_used + nbufs <= units_max: buffers in use and idle in the pool
 *    together stay within the budget (what is freed beyond it goes back to
 *    the system).
 *  - A transfer takes its first unit while at least one more stays free,
 *    and its second (second = true) while any is free. So some transfer can
 *    always take its second unit and finish: no transfer waits forever for
 *    memory held by transfers that wait for theirs.
 *  - Reused buffers are already faulted in: a fresh chunk-sized malloc
 *    costs a page fault per page, more than the bytes' copy into the cache
 *    file. The pool is emptied after BUF_IDLE_S without a buf_get.
 *
 * Locking: everything here is protected by fs->lock; mem_cond waits on it.
 */
#include "tier/tier_internal.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define TRANSFER_MEMORY (128ull << 20)
#define MIN_UNITS 3

size_t mem_unit_size(struct fs *fs)
{
	return (size_t)fs->chunk_size + ENVELOPE_HEADER_MAX;
}

void mem_init(struct fs *fs)
{
	struct tier *t = fs->tier;
	uint64_t units = TRANSFER_MEMORY / mem_unit_size(fs);

	t->units_max = units < MIN_UNITS ? MIN_UNITS : (unsigned)units;
	pthread_cond_init(&t->mem_cond, NULL);
	/*
	 * Chunk-sized buffers from mmap, given back to the system when freed;
	 * glibc's sliding threshold would otherwise move them onto heaps
	 * (one per thread) that keep what was freed.
	 */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
}

void mem_release(struct tier *t)
{
	bufs_drop(t);
	pthread_cond_destroy(&t->mem_cond);
}

void mem_take(struct fs *fs, bool second)
{
	struct tier *t = fs->tier;

	while (t->units_used + (second ? 0 : 1) >= t->units_max)
		pthread_cond_wait(&t->mem_cond, &fs->lock);
	t->units_used++;
	if (t->units_used > t->units_peak)
		t->units_peak = t->units_used;
	while (t->nbufs && t->units_used + t->nbufs > t->units_max)
		free(t->bufs[--t->nbufs]);
}

void mem_give(struct tier *t)
{
	t->units_used--;
	pthread_cond_broadcast(&t->mem_cond);
}

void *buf_get(struct fs *fs, bool second)
{
	struct tier *t = fs->tier;
	void *buf;

	mem_take(fs, second);
	t->bufs_used = time(NULL);
	if (t->nbufs)
		return t->bufs[--t->nbufs];
	buf = malloc(mem_unit_size(fs));
	if (!buf)
		mem_give(t);
	return buf;
}

void buf_put(struct tier *t, void *buf)
{
	if (!buf)
		return;
	mem_give(t);
	if (t->nbufs < BUF_POOL && t->units_used + t->nbufs < t->units_max)
		t->bufs[t->nbufs++] = buf;
	else
		free(buf);
}

void bufs_drop(struct tier *t)
{
	while (t->nbufs)
		free(t->bufs[--t->nbufs]);
}

uint64_t mem_rss(void)
{
	unsigned long size, resident;
	FILE *f = fopen("/proc/self/statm", "r");
	int n;

	if (!f)
		return 0;
	n = fscanf(f, "%lu %lu", &size, &resident);
	fclose(f);
	return n == 2 ? (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}
