/*
 * fuse_ops.h - the kernel side: a FUSE low-level session serving a struct fs.
 *
 * The only module that includes fuse_lowlevel.h. Lifecycle:
 * fuseops_mount() (the mount is live when it returns), then, possibly in a
 * forked child, fuseops_run() until unmount or SIGINT/SIGTERM/SIGHUP, then
 * fuseops_free() (unmounts if still mounted).
 */
#ifndef ZERO_FUSE_OPS_H
#define ZERO_FUSE_OPS_H

#include <stdbool.h>
#include <stddef.h>

struct fs;
struct fuseops;

struct fuseops_options {
	const char *fsname;	  /* shown as the mount's source (the cache directory) */
	const char *user_options; /* extra -o options from the command line, or NULL */
	bool debug;		  /* libfuse request tracing */
	bool writeback_cache;	  /* let the kernel cache writes */
	double entry_timeout;	  /* seconds the kernel may cache names */
	double attr_timeout;	  /* seconds the kernel may cache attributes */
};

/* Create a session for FS and mount it at MOUNTPOINT. Caller owns *OUT. */
int fuseops_mount(struct fs *fs, const char *mountpoint, const struct fuseops_options *opt,
		  struct fuseops **out, char *err, size_t errlen);
/* Serve requests until unmounted or signalled. Returns 0 or -errno. */
int fuseops_run(struct fuseops *f);
/* Unmount (if still mounted) and free. */
void fuseops_free(struct fuseops *f);

#endif /* ZERO_FUSE_OPS_H */
