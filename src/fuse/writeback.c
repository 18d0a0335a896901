/*
 * writeback.c - see writeback.h.
 *
 * The mountpoint is opened for each round and closed at once: a descriptor
 * kept open would make every unmount fail as busy. A round runs only while
 * some file is open for writing, when an unmount would be busy anyway.
 *
 * The syncfs runs in a child process that has closed every descriptor it
 * inherited, /dev/fuse's among them. It waits, uninterruptibly, for the
 * kernel's write-back work, which itself may wait for earlier WRITEs to be
 * answered; a thread of the daemon waiting there could not die on SIGKILL
 * before they were, and only the threads the signal ended could answer
 * them: the process would never finish exiting, never close /dev/fuse, and
 * the mount would hang with its writers for good. The child holds no
 * reference to the connection: once the daemon is gone the connection is
 * aborted, the WRITEs fail and the child returns.
 */
#include "fuse/writeback.h"

#include "common/log.h"
#include "common/ticker.h"
#include "fs/fs.h"
#include "fuse/bdi.h"

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* the kernel's bound on a FUSE mount's unwritten pages where sysfs does not say it */
#define DEFAULT_MARGIN (64ull << 20)
#define ROOM_INTERVAL_MS 200
#define WRITERS_MAX 4096 /* inodes open for writing told to forget their attributes per round */

struct wbflush {
	struct fs *fs;
	struct fuse_session *se;
	char *mountpoint;
	struct ticker *ticker; /* the write-back: syncfs, which may wait long for room */
	struct ticker *room;   /* writers' room: never waits on the write-back */
	pthread_mutex_t inos_lock; /* one round of telling writers at a time uses inos */
	uint64_t inos[WRITERS_MAX];
};

/*
 * The room to keep: what the kernel may hold unwritten for the mount,
 * lowered (as root) to what a small dirty limit can spare.
 */
static uint64_t choose_margin(struct fs *fs, const struct bdi *b)
{
	uint64_t kernel = b ? bdi_get(b, "max_bytes") : 0, want;

	if (!kernel)
		return DEFAULT_MARGIN; /* a guess: kernels before 6.2 do not say, nor let it be set */
	want = fs_room_margin_for(fs, kernel);
	if (want < kernel &&
	    (bdi_set(b, "max_bytes", want) != 0 || bdi_get(b, "max_bytes") > want)) {
		log_info("writeback cache: cannot lower the kernel's %llu MiB of unwritten pages "
			 "to %llu MiB (%s)",
			 (unsigned long long)(kernel >> 20), (unsigned long long)(want >> 20), b->dir);
		want = kernel;
	}
	return want;
}

void wbflush_keep_room(struct fs *fs, const struct bdi *b)
{
	uint64_t margin = choose_margin(fs, b);

	fs_room_set_margin(fs, margin);
	log_info("writeback cache: room for %llu MiB of the kernel's unwritten pages kept",
		 (unsigned long long)(margin >> 20));
}

void wbflush_room(struct wbflush *w)
{
	size_t n;

	if (!w || fs_writers(w->fs) == 0 || !fs_room_check(w->fs))
		return;
	/* a round under way (another thread's) tells the same writers: none needed */
	if (pthread_mutex_trylock(&w->inos_lock) != 0)
		return;
	n = fs_room_writers(w->fs, w->inos, WRITERS_MAX);
	/* a negative offset: the attributes only, the pages stay */
	for (size_t i = 0; i < n; i++)
		fuse_lowlevel_notify_inval_inode(w->se, w->inos[i], -1, 0);
	pthread_mutex_unlock(&w->inos_lock);
}

static void keep_room(void *arg)
{
	wbflush_room(arg);
}

/*
 * Have the kernel write back the mount's dirty pages (syncfs; it sends the
 * WRITEs, it does not wait for their answers), from a child process that
 * holds no descriptor of /dev/fuse. 0 or -errno.
 */
static int syncfs_apart(const char *mountpoint)
{
	pid_t pid = fork();
	int status, fd;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* only async-signal-safe calls here: the parent has other threads */
		close_range(3, ~0u, 0);
		fd = open(mountpoint, O_RDONLY | O_DIRECTORY);
		_exit(fd >= 0 && syncfs(fd) == 0 ? 0 : errno);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(status))
		return -EIO;
	return -WEXITSTATUS(status);
}

static void write_back(void *arg)
{
	struct wbflush *w = arg;
	int ret;

	if (fs_writers(w->fs) == 0)
		return;
	ret = syncfs_apart(w->mountpoint);
	if (ret)
		log_debug("writeback: %s: %s", w->mountpoint, strerror(-ret));
}

int wbflush_start(struct fs *fs, struct fuse_session *se, const char *mountpoint,
		  unsigned interval_ms, struct wbflush **out)
{
	struct wbflush *w = calloc(1, sizeof(*w));
	int ret;

	if (!w)
		return -ENOMEM;
	w->fs = fs;
	w->se = se;
	pthread_mutex_init(&w->inos_lock, NULL);
	w->mountpoint = strdup(mountpoint);
	ret = w->mountpoint ? ticker_start(interval_ms, write_back, w, &w->ticker) : -ENOMEM;
	if (ret == 0) {
		ret = ticker_start(ROOM_INTERVAL_MS, keep_room, w, &w->room);
		if (ret)
			ticker_stop(w->ticker);
	}
	if (ret) {
		pthread_mutex_destroy(&w->inos_lock);
		free(w->mountpoint);
		free(w);
		return ret;
	}
	*out = w;
	return 0;
}

void wbflush_stop(struct wbflush *w)
{
	if (!w)
		return;
	ticker_stop(w->room);
	ticker_stop(w->ticker);
	pthread_mutex_destroy(&w->inos_lock);
	free(w->mountpoint);
	free(w);
}
