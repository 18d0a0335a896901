/*
 * u64_list.h - a growable list of 64-bit numbers (inode numbers): the
 * inodes a changeset touched (meta/changes.c), the inodes whose cache files
 * wait for their deletion's commit (fs.c).
 *
 * A zeroed struct u64_list is empty; u64_list_free releases it. No locking
 * of its own.
 */
#ifndef ZERO_COMMON_U64_LIST_H
#define ZERO_COMMON_U64_LIST_H

#include <stddef.h>
#include <stdint.h>

struct u64_list {
	uint64_t *v;
	size_t n, cap;
};

/* Append X; -ENOMEM (and the list unchanged) when it cannot grow. */
int u64_list_add(struct u64_list *l, uint64_t x);
void u64_list_free(struct u64_list *l);

#endif /* ZERO_COMMON_U64_LIST_H */
