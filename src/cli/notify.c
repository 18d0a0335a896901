/*
 * notify.c - systemd's notify protocol (sd_notify) for a mount run as a
 * service with Type=notify: READY=1 once the mount answers, STATUS= with
 * the cache and the upload queue every few seconds while it runs, and
 * STOPPING=1 when it goes down. Without NOTIFY_SOCKET (not under systemd)
 * nothing is sent and no thread runs.
 *
 * The thread starts after the daemon forked (or in the foreground, where
 * systemd runs it); it reads the status as `zero status` does
 * (user.zero.status of the root), so it takes the fs lock for a moment
 * every NOTIFY_INTERVAL_S.
 */
#include "cli/notify.h"

#include "cli/statusline.h"

#include "common/log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#define NOTIFY_INTERVAL_S 5

struct notifier {
	struct fs *fs;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	bool stopping;	     /* protected by lock */
};

/* STATUS=: the cache against its target, and what waits to be uploaded. */
static void send_status(struct fs *fs)
{
	char buf[8192], used[32], target[32], dirty[32];
	json_t *s;

	if (statusline_fs_text(fs, buf, sizeof(buf)) < 0)
		return;
	s = statusline_parse(buf);
	if (!s)
		return;
	statusline_bytes(statusline_u64(s, "cache_used"), used, sizeof(used));
	statusline_bytes(statusline_u64(s, "cache_target"), target, sizeof(target));
	statusline_bytes(statusline_u64(s, "dirty_bytes"), dirty, sizeof(dirty));
	sd_notifyf(0,
		   "STATUS=cache %s of %s; %s in %" PRIu64 " chunks to upload, %" PRIu64
		   " uploading%s",
		   used, target, dirty, statusline_u64(s, "dirty_chunks"), statusline_u64(s, "uploading"),
		   statusline_true(s, "lease_fenced") ? "; read-only: lease lost"
								     : "");
	json_decref(s);
}

static void *notify_main(void *arg)
{
	struct notifier *n = arg;

	pthread_mutex_lock(&n->lock);
	while (!n->stopping) {
		struct timespec until;

		pthread_mutex_unlock(&n->lock);
		send_status(n->fs);
		pthread_mutex_lock(&n->lock);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += NOTIFY_INTERVAL_S;
		while (!n->stopping &&
		       pthread_cond_timedwait(&n->cond, &n->lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

struct notifier *notify_ready(struct fs *fs, const char *mnt)
{
	struct notifier *n;
	pthread_condattr_t ca;

	if (!getenv("NOTIFY_SOCKET"))
		return NULL;
	sd_notifyf(0, "READY=1\nSTATUS=mounted at %s", mnt);
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->fs = fs;
	pthread_mutex_init(&n->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&n->thread, NULL, notify_main, n) != 0) {
		log_warn("cannot start the systemd status thread");
		pthread_cond_destroy(&n->cond);
		pthread_mutex_destroy(&n->lock);
		free(n);
		return NULL;
	}
	return n;
}

void notify_stopping(struct notifier *n)
{
	if (!getenv("NOTIFY_SOCKET"))
		return;
	sd_notify(0, "STOPPING=1\nSTATUS=unmounting: writing everything down");
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	n->stopping = true;
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->lock);
	pthread_join(n->thread, NULL);
	pthread_cond_destroy(&n->cond);
	pthread_mutex_destroy(&n->lock);
	free(n);
}
