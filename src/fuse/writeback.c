/*
 * writeback.c - see writeback.h.
 *
 * The mountpoint is opened for each round and closed at once: a descriptor
 * kept open would make every unmount fail as busy. A round runs only while
 * some file is open for writing, when an unmount would be busy anyway.
 */
#include "fuse/writeback.h"

#include "common/log.h"
#include "common/ticker.h"
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct wbflush {
	struct fs *fs;
	char *mountpoint;
	struct ticker *ticker;
};

static void write_back(void *arg)
{
	struct wbflush *w = arg;
	int fd;

	if (fs_writers(w->fs) == 0)
		return;
	fd = open(w->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd) < 0)
		log_debug("writeback: %s: %s", w->mountpoint, strerror(errno));
	if (fd >= 0)
		close(fd);
}

int wbflush_start(struct fs *fs, const char *mountpoint, unsigned interval_ms,
		  struct wbflush **out)
{
	struct wbflush *w = calloc(1, sizeof(*w));
	int ret;

	if (!w)
		return -ENOMEM;
	w->fs = fs;
	w->mountpoint = strdup(mountpoint);
	ret = w->mountpoint ? ticker_start(interval_ms, write_back, w, &w->ticker) : -ENOMEM;
	if (ret) {
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
	ticker_stop(w->ticker);
	free(w->mountpoint);
	free(w);
}
