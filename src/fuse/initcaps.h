/*
 * initcaps.h - FUSE capabilities the kernel offers that libfuse 3.14 cannot
 * ask for.
 *
 * libfuse negotiates the connection at INIT from a fixed list; flags it does
 * not know are dropped from the reply. This module sits on the session's
 * device I/O: it notes the kernel's INIT request as it is read and adds the
 * wanted flags the kernel offered to libfuse's INIT reply as it is written.
 * Nothing else on the wire is touched. Today: FUSE_HANDLE_KILLPRIV_V2 (the
 * filesystem clears setuid/setgid itself on write, truncate and chown, so the
 * kernel stops asking for security.capability before every write).
 */
#ifndef ZERO_FUSE_INITCAPS_H
#define ZERO_FUSE_INITCAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* FUSE_HANDLE_KILLPRIV_V2 of linux/fuse.h (checked there) */
#define INITCAPS_KILLPRIV_V2 (UINT32_C(1) << 28)

struct initcaps {
	uint32_t want;	   /* flags to add to the reply, when offered */
	uint64_t unique;   /* the INIT request's id, once read */
	uint32_t offered;  /* its flags */
	uint32_t given;	   /* the flags added to the reply */
	bool seen;	   /* an INIT request was read */
	bool granted;	   /* its reply was written */
};

/* A request of LEN bytes was read from the device into BUF. */
void initcaps_read(struct initcaps *c, const void *buf, size_t len);
/* A reply is about to be written: IOV[0] is its header, the rest its body. */
void initcaps_write(struct initcaps *c, struct iovec *iov, int count);

#endif /* ZERO_FUSE_INITCAPS_H */
