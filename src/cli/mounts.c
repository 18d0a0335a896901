/*
 * mounts.c - Zero mounts as the kernel lists them in /proc/self/mountinfo.
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

bool mounts_find_zero(const char *mnt, char *source, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	bool found = false;

	if (!f)
		return false;
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *fields[16], *sep;
		int n = 0;

		/* id parent dev root mountpoint opts [optional...] - fstype source superopts */
		sep = strstr(line, " - ");
		if (!sep)
			continue;
		*sep = '\0';
		for (char *t = strtok_r(line, " ", &save); t && n < 16;
		     t = strtok_r(NULL, " ", &save))
			fields[n++] = t;
		if (n < 5)
			continue;
		unescape(fields[4]);
		if (strcmp(fields[4], mnt) != 0)
			continue;
		char *fstype = strtok_r(sep + 3, " ", &save);
		char *src = strtok_r(NULL, " ", &save);
		if (!fstype || !src || strcmp(fstype, "fuse.zero") != 0)
			continue;
		unescape(src);
		snprintf(source, size, "%s", src);
		found = true; /* the last one listed is the one on top */
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
