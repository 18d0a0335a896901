/*
 * mountinfo.c - see mountinfo.h.
 */
#include "common/mountinfo.h"

#include <errno.h>
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

int mountinfo_open(struct mountinfo_reader *r)
{
	*r = (struct mountinfo_reader){0};
	r->f = fopen("/proc/self/mountinfo", "re");
	return r->f ? 0 : -errno;
}

/* Parse LINE in place into E; false when it is not a mount's line. */
static bool parse(char *line, struct mountinfo *e)
{
	char *fields[5], *save = NULL, *t, *sep = strstr(line, " - ");
	int n = 0;

	if (!sep)
		return false;
	*sep = '\0';
	for (t = strtok_r(line, " ", &save); t && n < 5; t = strtok_r(NULL, " ", &save))
		fields[n++] = t;
	if (n < 5 || sscanf(fields[2], "%u:%u", &e->major, &e->minor) != 2)
		return false;
	e->id = strtoul(fields[0], NULL, 10);
	e->parent = strtoul(fields[1], NULL, 10);
	unescape(fields[4]);
	e->mountpoint = fields[4];
	save = NULL;
	t = strtok_r(sep + 3, " \n", &save);
	e->fstype = t ? t : "";
	t = t ? strtok_r(NULL, " \n", &save) : NULL;
	if (t)
		unescape(t);
	e->source = t ? t : "";
	return true;
}

bool mountinfo_next(struct mountinfo_reader *r, struct mountinfo *e)
{
	while (getline(&r->line, &r->cap, r->f) > 0)
		if (parse(r->line, e))
			return true;
	return false;
}

void mountinfo_close(struct mountinfo_reader *r)
{
	if (r->f)
		fclose(r->f);
	free(r->line);
	*r = (struct mountinfo_reader){0};
}

int mountinfo_find_source(const char *fstype, const char *source, unsigned *major, unsigned *minor,
			  char *mnt, size_t size)
{
	struct mountinfo_reader r;
	struct mountinfo e;
	int ret = mountinfo_open(&r);

	if (ret)
		return ret;
	ret = -ENOENT;
	while (mountinfo_next(&r, &e)) {
		if (strcmp(e.fstype, fstype) != 0 || strcmp(e.source, source) != 0)
			continue;
		*major = e.major;
		*minor = e.minor;
		if (mnt)
			snprintf(mnt, size, "%s", e.mountpoint);
		ret = 0;
	}
	mountinfo_close(&r);
	return ret;
}
