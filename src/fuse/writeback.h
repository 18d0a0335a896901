/*
 * writeback.h - the kernel's writeback cache written back every second.
 *
 * With FUSE's writeback cache, write() returns once the bytes are in the
 * kernel's page cache; Zero sees them when the kernel writes them back —
 * at fsync, close, memory pressure, or after 30 s (vm.dirty_expire). A
 * crash of the daemon loses what the kernel still holds. This thread
 * bounds that to about a second: while any file is open for writing (a
 * closed file's bytes were written back at its close), it has the kernel
 * write back the mount's dirty pages (syncfs on the mountpoint).
 */
#ifndef ZERO_FUSE_WRITEBACK_H
#define ZERO_FUSE_WRITEBACK_H

struct fs;
struct wbflush;

/* Start the thread for FS mounted at MOUNTPOINT, every INTERVAL_MS. */
int wbflush_start(struct fs *fs, const char *mountpoint, unsigned interval_ms,
		  struct wbflush **out);
/* Stop it (waits for a round in progress) and free. NULL is a no-op. */
void wbflush_stop(struct wbflush *w);

#endif /* ZERO_FUSE_WRITEBACK_H */
