/*
 * reftab.h - the kernel's references to inodes that are idle in the
 * daemon: inode number -> lookup count, 16 bytes an entry.
 *
 * The kernel keeps a reference (FUSE's nlookup) to every inode it has a
 * dentry for — after creating a million files, a million of them. An inode
 * nothing else in the daemon is doing anything with (no open handle, read,
 * write, fetch, nothing newer than its row) needs no struct fs_inode (384
 * bytes) for that: its count lives here until the kernel forgets it or an
 * operation needs the whole inode again (fs.c: itable_get moves it back).
 *
 * Open addressing with linear probing and backward-shift deletion; inode
 * number 0 (never an inode) marks a free slot. No locking of its own: fs->lock.
 */
#ifndef ZERO_FS_REFTAB_H
#define ZERO_FS_REFTAB_H

#include <stddef.h>
#include <stdint.h>

struct reftab_slot {
	uint64_t ino; /* 0: free */
	uint64_t count;
};

/* A zeroed struct reftab is empty; reftab_free releases it. */
struct reftab {
	struct reftab_slot *slots;
	size_t cap; /* slots, a power of two (0 before the first add) */
	size_t count;
};

/* Add N (> 0) to INO's count, adding INO; -ENOMEM (unchanged) when it cannot grow. */
int reftab_add(struct reftab *t, uint64_t ino, uint64_t n);
/* INO's count; 0 when absent. */
uint64_t reftab_get(const struct reftab *t, uint64_t ino);
/* Remove INO; its count (0 when absent). */
uint64_t reftab_take(struct reftab *t, uint64_t ino);
void reftab_free(struct reftab *t);

#endif /* ZERO_FS_REFTAB_H */
