/*
 * mountinfo.h - the kernel's list of mounts, /proc/self/mountinfo, read one
 * mount at a time.
 *
 * A line is "id parent major:minor root mountpoint options [optional...] -
 * fstype source superoptions"; the mountpoint and the source come with the
 * kernel's octal escapes (\040 for a space, ...) undone. The strings of an
 * entry live in the reader's line buffer: valid until the next call.
 */
#ifndef ZERO_COMMON_MOUNTINFO_H
#define ZERO_COMMON_MOUNTINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct mountinfo {
	unsigned long id, parent;
	unsigned major, minor; /* the mount's device: st_dev of its files */
	const char *mountpoint;
	const char *fstype; /* "" when missing */
	const char *source; /* "" when missing */
};

struct mountinfo_reader {
	FILE *f;
	char *line;
	size_t cap;
};

/* Open the list; -errno on failure. */
int mountinfo_open(struct mountinfo_reader *r);
/* The next mount into E; false at the end (lines that do not parse are skipped). */
bool mountinfo_next(struct mountinfo_reader *r, struct mountinfo *e);
void mountinfo_close(struct mountinfo_reader *r);

/*
 * The mount of type FSTYPE from SOURCE listed last (the newest, should an
 * older one of the same source lie under it): its device into MAJOR and
 * MINOR, its mountpoint into MNT (SIZE bytes; MNT may be NULL). -ENOENT if
 * none is listed, else 0 or -errno.
 */
int mountinfo_find_source(const char *fstype, const char *source, unsigned *major,
			  unsigned *minor, char *mnt, size_t size);

#endif /* ZERO_COMMON_MOUNTINFO_H */
