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
#include "common/ticker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#define NOTIFY_INTERVAL_S 5

struct notifier {
	struct ticker *ticker; /* STATUS= every NOTIFY_INTERVAL_S */
};

/* STATUS=: the cache against its target, and what waits to be uploaded. */
static void send_status(void *arg)
{
	struct fs *fs = arg;
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

struct notifier *notify_ready(struct fs *fs, const char *mnt)
{
	struct notifier *n;

	if (!getenv("NOTIFY_SOCKET"))
		return NULL;
	sd_notifyf(0, "READY=1\nSTATUS=mounted at %s", mnt);
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	send_status(fs);
	if (ticker_start(NOTIFY_INTERVAL_S * 1000, send_status, fs, &n->ticker) != 0) {
		log_warn("cannot start the systemd status thread");
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
	ticker_stop(n->ticker);
	free(n);
}
