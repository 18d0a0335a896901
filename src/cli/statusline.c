/*
 * statusline.c - a mount's status line, read and picked apart (see
 * statusline.h). The daemon writes it with jansson (tier/status.c).
 */
#include "cli/statusline.h"

#include "fs/fs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/xattr.h>

#define STATUS_MAX 16384

json_t *statusline_parse(const char *text)
{
	json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, NULL);

	if (o && !json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *statusline_read(const char *path, int *err)
{
	char *buf = malloc(STATUS_MAX);
	ssize_t n;
	json_t *o;

	if (!buf) {
		*err = -ENOMEM;
		return NULL;
	}
	n = getxattr(path, "user.zero.status", buf, STATUS_MAX - 1);
	if (n < 0) {
		*err = -errno;
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	o = statusline_parse(buf);
	free(buf);
	if (!o)
		*err = -EPROTO;
	return o;
}

int statusline_fs_text(struct fs *fs, char *buf, size_t size)
{
	size_t len = 0;
	int ret;

	if (size == 0)
		return -ERANGE;
	/* the root (inode 1): user.zero.status is the same on every path */
	ret = fs_getxattr(fs, 1, "user.zero.status", buf, size - 1, &len);
	if (ret)
		return ret;
	buf[len] = '\0';
	return (int)len;
}

uint64_t statusline_u64(const json_t *s, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(s, key));

	return v > 0 ? (uint64_t)v : 0;
}

double statusline_number(const json_t *s, const char *key)
{
	return json_number_value(json_object_get(s, key));
}

bool statusline_true(const json_t *s, const char *key)
{
	return json_is_true(json_object_get(s, key));
}

void statusline_string(const json_t *s, const char *key, char *out, size_t size)
{
	const char *v = json_string_value(json_object_get(s, key));

	if (size == 0)
		return;
	snprintf(out, size, "%s", v ? v : "");
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
}

void statusline_bytes(uint64_t n, char *out, size_t size)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(out, size, "%" PRIu64 " B", n);
		return;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(out, size, v >= 99.95 ? "%.0f %s" : "%.1f %s", v, units[u]);
}
