/*
 * cachedir.h - a Zero cache directory: where it is, whether it is one, and
 * who owns it.
 *
 * CACHE/zero.cache marks a directory as a Zero cache. CACHE/lock is held
 * with flock(LOCK_EX) by the one process that uses the cache (a mount
 * daemon or an offline command); it contains that process's pid.
 * CACHE/cache.id holds a random id of this cache directory, made once; the
 * lease in the bucket names it (it is not in meta.db, which travels to the
 * bucket and into new caches).
 */
#ifndef ZERO_CACHEDIR_H
#define ZERO_CACHEDIR_H

#include <stdbool.h>
#include <stddef.h>

/* The default cache: $XDG_DATA_HOME/zero, else ~/.local/share/zero. */
int cachedir_default(char *buf, size_t size);

/*
 * Make DIR usable as a cache: create it if missing (with parents); accept
 * an empty directory (made private: 0700) or one already marked; refuse
 * anything else. ABS gets its absolute path. ERR gets the reason on failure.
 */
int cachedir_prepare(const char *dir, char *abs, size_t abssize, char *err, size_t errlen);

/*
 * Take the cache's lock without waiting. Returns the lock's descriptor
 * (keep it open while using the cache) or -errno; -EWOULDBLOCK means
 * another process holds it, and ERR then names its pid.
 */
int cachedir_lock(const char *dir, char *err, size_t errlen);
/*
 * The cache's id (32 hex digits) into BUF, made and kept in CACHE/cache.id
 * on first use. The caller holds the cache's lock. ERR gets the reason on
 * failure.
 */
int cachedir_id(const char *dir, char *buf, size_t size, char *err, size_t errlen);
/* Record PID in the lock file held through LOCKFD. */
void cachedir_lock_set_pid(int lockfd, long pid);
/* Wait up to TIMEOUT_S seconds for nobody to hold the lock of DIR. True when free. */
bool cachedir_wait_unlocked(const char *dir, int timeout_s);

#endif /* ZERO_CACHEDIR_H */
