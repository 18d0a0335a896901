/*
 * chunk_bits.h - a growable set of chunk indices, one bit each: which
 * chunks of a file are DIRTY or REMOTE in memory (struct fs_inode), for
 * fs.c and src/tier/ alike.
 *
 * A zeroed struct chunk_bits is the empty set; it grows on chunk_bits_set
 * and is released with chunk_bits_free. No locking of its own: the owner's
 * lock (fs->lock for an inode's bits) protects it.
 */
#ifndef ZERO_COMMON_CHUNK_BITS_H
#define ZERO_COMMON_CHUNK_BITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable bit per chunk. */
struct chunk_bits {
	uint8_t *bits;
	size_t len; /* bytes */
};

/* Add IDX; -ENOMEM (and the set unchanged) when it cannot grow. */
int chunk_bits_set(struct chunk_bits *b, uint64_t idx);
/* Is IDX in the set? */
bool chunk_bits_test(const struct chunk_bits *b, uint64_t idx);
/* Remove FIRST..LAST (inclusive); the memory stays. */
/* Whether any bit is set. */
bool chunk_bits_any(const struct chunk_bits *b);
void chunk_bits_clear(struct chunk_bits *b, uint64_t first, uint64_t last);
/* Empty the set and free its memory. */
void chunk_bits_free(struct chunk_bits *b);

#endif /* ZERO_COMMON_CHUNK_BITS_H */
