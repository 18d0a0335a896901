/*
 * writeback.h - the kernel's writeback cache written back every second.
 *
 * With FUSE's writeback cache, write() returns once the bytes are in the
 * kernel's page cache; Zero sees them when the kernel writes them back —
 * at fsync, close, memory pressure, or after 30 s (vm.dirty_expire). A
 * crash of the daemon loses what the kernel still holds. This thread
 * bounds that to about a second: while any file is open for writing (a
 * closed file's bytes were written back at its close), it has the kernel
 * write back the mount's dirty pages (syncfs on the mountpoint, from a
 * child process: see writeback.c).
 *
 * Writers' room (fs/room.c): at the mount, before any request is served,
 * wbflush_keep_room learns how much the kernel may hold unwritten for the
 * mount (its bdi's max_bytes, fuse/bdi.h, else DEFAULT_MARGIN), lowers it
 * for a small cache, and gives it to fs as the margin. A second thread,
 * apart from the first, whose syncfs may wait long for uploads, checks every
 * 200 ms: while room is short, it has the kernel forget the attributes of
 * the inodes open for writing, so that their next cached write asks first.
 */
#ifndef ZERO_FUSE_WRITEBACK_H
#define ZERO_FUSE_WRITEBACK_H

struct bdi;
struct fs;
struct fuse_session;
struct wbflush;

/*
 * Keep room for what the kernel may hold unwritten for the mount whose bdi
 * is B (NULL if not found): once it is mounted, before its session runs.
 */
void wbflush_keep_room(struct fs *fs, const struct bdi *b);
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
