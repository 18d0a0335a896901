/*
 * mounts.h - finding Zero mounts and telling live ones from dead ones.
 *
 * A Zero mount's source is its cache directory, and a live daemon holds that
 * directory's lock: a mount whose cache is unlocked was left by a daemon
 * that died (kill -9), even while the kernel still answers cached stats.
 */
#ifndef ZERO_MOUNTS_H
#define ZERO_MOUNTS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * True when the mount on top at MNT (absolute, resolved) is a Zero mount;
 * SOURCE then gets its cache directory. A Zero mount under another one
 * stacked on it is not reported: paths at MNT do not reach it.
 */
bool mounts_find_zero(const char *mnt, char *source, size_t size);
/*
 * True when a Zero mount of cache CACHE (absolute, resolved) exists; MNT then
 * gets its mountpoint (the newest, should a dead one of CACHE be left).
 */
bool mounts_find_cache(const char *cache, char *mnt, size_t size);
/* True when no daemon serves the mount whose cache is CACHE. */
bool mounts_zero_is_dead(const char *cache);

#endif /* ZERO_MOUNTS_H */
