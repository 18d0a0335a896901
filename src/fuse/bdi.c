/*
 * bdi.c - see bdi.h.
 */
#include "fuse/bdi.h"

#include "common/mountinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int bdi_of_mount(const char *fstype, const char *source, struct bdi *b)
{
	unsigned major, minor;
	int ret = mountinfo_find_source(fstype, source, &major, &minor, NULL, 0);

	if (ret == 0)
		snprintf(b->dir, sizeof(b->dir), "/sys/class/bdi/%u:%u", major, minor);
	return ret;
}

static void setting_path(const struct bdi *b, const char *name, char *path, size_t size)
{
	snprintf(path, size, "%s/%s", b->dir, name);
}

uint64_t bdi_get(const struct bdi *b, const char *name)
{
	char path[128], buf[32];
	ssize_t n;
	int fd;

	setting_path(b, name, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtoull(buf, NULL, 10);
}

int bdi_set(const struct bdi *b, const char *name, uint64_t value)
{
	char path[128], buf[32];
	int len = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)value);
	ssize_t n;
	int fd;

	setting_path(b, name, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, buf, (size_t)len);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n < 0)
		return (int)n;
	return n == len ? 0 : -EIO;
}
