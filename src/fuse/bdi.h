/*
 * bdi.h - the kernel's settings for a mount's backing device, its "bdi"
 * (/sys/class/bdi/MAJOR:MINOR/; a FUSE mount has one of its own): how far
 * ahead the kernel reads (read_ahead_kb), how many bytes it may hold
 * unwritten (max_bytes, kernel 6.2 and later). Setting them takes root.
 *
 * The mount is found by its type and source in the mount list, the one
 * listed last should a dead mount of the same source lie under it: right
 * after the mount, before its session serves a request (a stat of the
 * mountpoint would be a request to it).
 */
#ifndef ZERO_FUSE_BDI_H
#define ZERO_FUSE_BDI_H

#include <stdint.h>

struct bdi {
	char dir[64]; /* /sys/class/bdi/MAJOR:MINOR */
};

/* The bdi of the mount of type FSTYPE from SOURCE; -ENOENT if none is listed, -errno. */
int bdi_of_mount(const char *fstype, const char *source, struct bdi *b);
/* The number in setting NAME; 0 if there is no such setting or it cannot be read. */
uint64_t bdi_get(const struct bdi *b, const char *name);
/* Write VALUE to setting NAME: 0, or -errno (the kernel may round what it keeps). */
int bdi_set(const struct bdi *b, const char *name, uint64_t value);

#endif /* ZERO_FUSE_BDI_H */
