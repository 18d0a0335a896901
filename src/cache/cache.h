/*
 * cache.h - the local cache directory: one sparse file per inode.
 *
 * CACHE/data/<ino> holds the locally present bytes of inode <ino> at their
 * offsets. Invariant: a cache file's apparent size equals the file's size;
 * ranges not present locally are holes. The chunk states that say which
 * ranges are present live in the metadata (meta.h), not here. A removed
 * cache file is kept empty, as a spare for the next new one (cache.c).
 */
#ifndef ZERO_CACHE_H
#define ZERO_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

struct cache;

/* Open the cache rooted at DIR (creating DIR/data). Caller owns *OUT. */
int cache_open(const char *dir, struct cache **out);
void cache_close(struct cache *c);

/*
 * Open the cache file of INO read-write; with CREATE it is created empty if
 * missing (a spare, when one is kept). Returns a file descriptor (caller
 * closes) or -errno.
 */
int cache_file_open(struct cache *c, uint64_t ino, bool create);
/*
 * Remove the cache file of INO (its bytes are gone at return); a missing file
 * is not an error. A descriptor of it must not be used after: the emptied
 * file may be kept as a spare and become another inode's.
 */
int cache_file_remove(struct cache *c, uint64_t ino);
/* stat(2) of the cache file of INO; -ENOENT when it does not exist. */
int cache_file_stat(struct cache *c, uint64_t ino, struct stat *st);
/* Set the apparent size of the cache file of INO (ftruncate(2)). */
int cache_file_truncate(struct cache *c, uint64_t ino, uint64_t size);
/* Call CB for every inode number that has a cache file; nonzero from CB stops. */
int cache_file_list(struct cache *c, int (*cb)(void *arg, uint64_t ino), void *arg);
/* Bytes allocated on the cache's disk by its data files (st_blocks * 512 summed). */
int cache_usage(struct cache *c, uint64_t *bytes);
/* statvfs(2) of the filesystem holding the cache. */
int cache_statvfs(struct cache *c, struct statvfs *out);

#endif /* ZERO_CACHE_H */
