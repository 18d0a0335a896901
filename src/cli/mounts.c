/*
 * mounts.c - Zero mounts as the kernel lists them in /proc/self/mountinfo.
 *
 * Several mounts may be stacked on one mountpoint; only the one on top is
 * what a path there reaches and what umount(2) removes. It is the mount at
 * that mountpoint that no other mount there sits on (whose id is no other's
 * parent id).
 */
#include "cli/mounts.h"

#include "cli/cachedir.h"
#include "common/mountinfo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One mount at the mountpoint asked about. */
struct mount_entry {
	unsigned long id, parent;
	bool zero;
	char *source; /* owned; NULL unless zero */
};

bool mounts_find_zero(const char *mnt, char *source, size_t size)
{
	struct mountinfo_reader r;
	struct mountinfo e;
	struct mount_entry *at = NULL, *top = NULL;
	size_t n_at = 0, cap_at = 0;
	bool found = false;

	if (mountinfo_open(&r) != 0)
		return false;
	while (mountinfo_next(&r, &e)) {
		if (strcmp(e.mountpoint, mnt) != 0)
			continue;
		if (n_at == cap_at) {
			size_t ncap = cap_at ? 2 * cap_at : 4;
			struct mount_entry *g = realloc(at, ncap * sizeof(*at));
			if (!g)
				goto out_free;
			at = g;
			cap_at = ncap;
		}
		at[n_at] = (struct mount_entry){.id = e.id, .parent = e.parent};
		if (strcmp(e.fstype, "fuse.zero") == 0 && *e.source) {
			at[n_at].zero = true;
			at[n_at].source = strdup(e.source);
			if (!at[n_at].source)
				goto out_free;
		}
		n_at++;
	}
	for (size_t i = 0; i < n_at; i++) {
		bool covered = false;

		for (size_t j = 0; j < n_at && !covered; j++)
			covered = j != i && at[j].parent == at[i].id;
		if (!covered)
			top = &at[i]; /* of several (never seen), the one listed last */
	}
	if (top && top->zero) {
		snprintf(source, size, "%s", top->source);
		found = true;
	}
out_free:
	for (size_t i = 0; i < n_at; i++)
		free(at[i].source);
	free(at);
	mountinfo_close(&r);
	return found;
}

bool mounts_find_cache(const char *cache, char *mnt, size_t size)
{
	unsigned major, minor;

	return mountinfo_find_source("fuse.zero", cache, &major, &minor, mnt, size) == 0;
}

bool mounts_zero_is_dead(const char *cache)
{
	/* a live daemon holds its cache's lock for as long as it serves */
	return cachedir_wait_unlocked(cache, 0);
}
