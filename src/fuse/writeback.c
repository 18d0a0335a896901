/*
 * writeback.c - see writeback.h.
 *
 * The mountpoint is opened for each round and closed at once: a descriptor
 * kept open would make every unmount fail as busy. A round runs only while
 * some file is open for writing, when an unmount would be busy anyway.
 */
#include "fuse/writeback.h"

#include "common/clock.h"
#include "common/log.h"
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct wbflush {
	struct fs *fs;
	char *mountpoint;
	unsigned interval_ms;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	bool stop;	     /* protected by lock */
};

static void write_back(struct wbflush *w)
{
	int fd = open(w->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || syncfs(fd) < 0)
		log_debug("writeback: %s: %s", w->mountpoint, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void *flush_main(void *arg)
{
	struct wbflush *w = arg;

	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		struct timespec until = clock_after_ms(CLOCK_MONOTONIC, w->interval_ms);

		pthread_cond_timedwait(&w->cond, &w->lock, &until);
		if (w->stop || fs_writers(w->fs) == 0)
			continue;
		pthread_mutex_unlock(&w->lock);
		write_back(w);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int wbflush_start(struct fs *fs, const char *mountpoint, unsigned interval_ms,
		  struct wbflush **out)
{
	struct wbflush *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;
	int ret;

	if (!w)
		return -ENOMEM;
	w->fs = fs;
	w->interval_ms = interval_ms;
	w->mountpoint = strdup(mountpoint);
	if (!w->mountpoint) {
		free(w);
		return -ENOMEM;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	ret = -pthread_create(&w->thread, NULL, flush_main, w);
	if (ret) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
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
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w->mountpoint);
	free(w);
}
