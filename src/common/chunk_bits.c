/*
 * chunk_bits.c - a growable set of chunk indices, one bit each (see
 * chunk_bits.h). Invariant: bits[0..len) are valid, and every index at or
 * past len * 8 is not in the set, so testing and clearing never grow it.
 */
#include "common/chunk_bits.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int chunk_bits_set(struct chunk_bits *b, uint64_t idx)
{
	size_t byte = (size_t)(idx / 8);

	if (byte >= b->len) {
		size_t nlen = b->len ? b->len : 16;
		while (nlen <= byte)
			nlen *= 2;
		uint8_t *p = realloc(b->bits, nlen);
		if (!p)
			return -ENOMEM;
		memset(p + b->len, 0, nlen - b->len);
		b->bits = p;
		b->len = nlen;
	}
	b->bits[byte] |= (uint8_t)(1u << (idx % 8));
	return 0;
}

bool chunk_bits_test(const struct chunk_bits *b, uint64_t idx)
{
	size_t byte = (size_t)(idx / 8);

	return byte < b->len && (b->bits[byte] & (1u << (idx % 8)));
}

void chunk_bits_clear(struct chunk_bits *b, uint64_t first, uint64_t last)
{
	for (uint64_t idx = first; idx <= last && idx / 8 < b->len; idx++)
		b->bits[idx / 8] &= (uint8_t) ~(1u << (idx % 8));
}

void chunk_bits_free(struct chunk_bits *b)
{
	free(b->bits);
	b->bits = NULL;
	b->len = 0;
}

bool chunk_bits_any(const struct chunk_bits *b)
{
	for (size_t i = 0; i < b->len; i++)
		if (b->bits[i])
			return true;
	return false;
}
