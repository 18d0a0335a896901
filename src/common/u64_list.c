/* u64_list.c - a growable list of 64-bit numbers (see u64_list.h). */
#include "common/u64_list.h"

#include <errno.h>
#include <stdlib.h>

int u64_list_add(struct u64_list *l, uint64_t x)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		uint64_t *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = x;
	return 0;
}

void u64_list_free(struct u64_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}
