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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Undo the octal escapes (\040 for space, ...) of /proc/self/mountinfo in place. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
			*o++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* One mount at the mountpoint asked about. */
struct mount_entry {
	unsigned long id, parent;
	bool zero;
	char *source; /* owned; NULL unless zero */
};

/*
 * Split LINE of /proc/self/mountinfo in place: "id parent dev root
 * mountpoint opts [optional...] - fstype source superopts". FIELDS gets the
 * fields before " - " (*N of them, at most 16), *FSTYPE and *SOURCE those
 * after (NULL when missing; still escaped). False for a line without " - ".
 */
static bool split_line(char *line, char *fields[16], int *n, char **fstype, char **source)
{
	char *save = NULL, *sep = strstr(line, " - ");

	*n = 0;
	if (!sep)
		return false;
	*sep = '\0';
	for (char *t = strtok_r(line, " ", &save); t && *n < 16; t = strtok_r(NULL, " ", &save))
		fields[(*n)++] = t;
	*fstype = strtok_r(sep + 3, " ", &save);
	*source = strtok_r(NULL, " ", &save);
	return true;
}

bool mounts_find_zero(const char *mnt, char *source, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	struct mount_entry *at = NULL, *top = NULL;
	size_t n_at = 0, cap_at = 0, cap = 0;
	char *line = NULL;
	bool found = false;

	if (!f)
		return false;
	while (getline(&line, &cap, f) > 0) {
		char *fields[16], *fstype, *src;
		int n;

		if (!split_line(line, fields, &n, &fstype, &src) || n < 5)
			continue;
		unescape(fields[4]);
		if (strcmp(fields[4], mnt) != 0)
			continue;
		if (n_at == cap_at) {
			size_t ncap = cap_at ? 2 * cap_at : 4;
			struct mount_entry *g = realloc(at, ncap * sizeof(*at));
			if (!g)
				goto out_free;
			at = g;
			cap_at = ncap;
		}
		at[n_at] = (struct mount_entry){.id = strtoul(fields[0], NULL, 10),
						.parent = strtoul(fields[1], NULL, 10)};
		if (fstype && src && strcmp(fstype, "fuse.zero") == 0) {
			unescape(src);
			at[n_at].zero = true;
			at[n_at].source = strdup(src);
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
	free(line);
	fclose(f);
	return found;
}

bool mounts_find_cache(const char *cache, char *mnt, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	bool found = false;

	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) > 0) {
		char *fields[16], *fstype, *src;
		int n;

		if (!split_line(line, fields, &n, &fstype, &src) || n < 5 || !fstype || !src ||
		    strcmp(fstype, "fuse.zero") != 0)
			continue;
		unescape(src);
		if (strcmp(src, cache) == 0) {
			unescape(fields[4]);
			snprintf(mnt, size, "%s", fields[4]);
			found = true;
		}
	}
	free(line);
	fclose(f);
	return found;
}

bool mounts_zero_is_dead(const char *cache)
{
	/* a live daemon holds its cache's lock for as long as it serves */
	return cachedir_wait_unlocked(cache, 0);
}
