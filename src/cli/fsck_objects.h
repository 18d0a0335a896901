/*
 * fsck_objects.h - `zero fsck --objects / --verify`: the chunk objects of an
 * unmounted cache's filesystem checked against its bucket, and the sweep for
 * objects in the bucket that nothing references (fsck_objects.c).
 */
#ifndef ZERO_FSCK_OBJECTS_H
#define ZERO_FSCK_OBJECTS_H

#include <stdbool.h>
#include <stdint.h>

struct meta;
struct objstore;

struct keyring;

struct fsck_objects_opts {
	bool verify;	       /* GET and verify every referenced object, not only list */
	bool repair;	       /* delete orphans older than safety_age_s */
	unsigned safety_age_s; /* orphans younger than this are kept */
	const struct keyring *keys; /* the fs's keys; needed by verify when it is encrypted */
};

struct fsck_objects_result {
	uint64_t damaged;	  /* referenced objects missing, of the wrong size or corrupt */
	uint64_t orphans_old;	  /* orphans older than the safety age */
	uint64_t orphans_young;	  /* orphans younger: reported, kept */
	uint64_t orphans_deleted; /* of the old ones, deleted (with repair) */
};

/*
 * Check the objects the chunk rows of M reference against the bucket S
 * (which must hold M's filesystem: its superblock is checked first), print
 * each problem on stdout, naming the files it touches, and with
 * O->verify a progress line on stderr when that is a terminal. Only
 * objects under zero/chunks/ that no row knows are ever deleted. 0 with
 * *RES filled, or -errno after a message on stderr.
 */
int fsck_objects(struct meta *m, struct objstore *s, const struct fsck_objects_opts *o,
		 struct fsck_objects_result *res);

#endif /* ZERO_FSCK_OBJECTS_H */
