/*
 * cacheperm.h - keeping a cache directory private to the user who mounts it.
 *
 * A cache holds every file name (meta.db), every xattr value and the key of
 * the object ids, so it is for its user alone: directories 0700, files
 * 0600. Zero creates everything so (and `zero mount` runs with umask 077);
 * cacheperm_fix() takes away what others were given since, by hand or by
 * an older Zero.
 */
#ifndef ZERO_CACHEPERM_H
#define ZERO_CACHEPERM_H

#include <sys/types.h>

/*
 * Called for each path that was open to other users: OLD its mode before,
 * NEW after (OLD again when ERR, a -errno, says why it stayed; -EXDEV for
 * the directory of a database outside the cache, which is not changed).
 */
typedef void (*cacheperm_report_cb)(void *arg, const char *path, mode_t old, mode_t new, int err);

/*
 * Take group and other permissions off the cache directory CACHE
 * (absolute), off each directory and file in it, and off the metadata
 * database DB with its -wal and -shm files (wherever DB is). Below a
 * directory that was already private it looks no further, since nobody
 * else can reach what is inside: a mount costs a few stats, not a walk of
 * every cache file. Only directories and regular files are changed (a
 * cache holds nothing else); symbolic links are not followed. The
 * directory of a DB outside the cache is reported when others may list or
 * change it, and left as it is: it is not Zero's.
 * Returns the number of paths reported, or -errno when CACHE cannot be read.
 */
int cacheperm_fix(const char *cache, const char *db, cacheperm_report_cb report, void *arg);

#endif /* ZERO_CACHEPERM_H */
