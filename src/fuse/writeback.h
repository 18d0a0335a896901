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
 *
 * A second thread keeps writers' room (fs/room.c), every 200 ms, apart
 * from the first, whose syncfs may wait long for uploads: at its first round
 * it learns how much the kernel may hold unwritten for the mount (the FUSE
 * mount's max_bytes under /sys/class/bdi/MAJOR:MINOR/, else DEFAULT_MARGIN)
 * and gives it to fs as the margin; at each round, while room is short, it
 * has the kernel forget the attributes of the inodes open for writing, so
 * that their next cached write asks first.
 */
#ifndef ZERO_FUSE_WRITEBACK_H
#define ZERO_FUSE_WRITEBACK_H

struct fs;
struct fuse_session;
struct wbflush;

/* Start the threads for FS mounted at MOUNTPOINT by session SE; syncfs every INTERVAL_MS. */
int wbflush_start(struct fs *fs, struct fuse_session *se, const char *mountpoint,
		  unsigned interval_ms, struct wbflush **out);
/*
 * Whether room is short now; if so, have the kernel forget the attributes of
 * the inodes open for writing. The round of the room's thread, and what a
 * write-back that may have taken room away calls (a fast writer fills the
 * kernel's bound in less than a round). NULL is a no-op.
 */
void wbflush_room(struct wbflush *w);
/* Stop them (each round in progress ends first) and free. NULL is a no-op. */
void wbflush_stop(struct wbflush *w);

#endif /* ZERO_FUSE_WRITEBACK_H */
