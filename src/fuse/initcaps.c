/*
 * initcaps.c - adds capabilities libfuse 3.14 does not know to the INIT reply.
 *
 * The wire format is the kernel's (linux/fuse.h): a request is a
 * fuse_in_header then its body (fuse_init_in for FUSE_INIT); a reply is a
 * fuse_out_header then its body (fuse_init_out). libfuse writes a reply as
 * one iovec for the header and one for the body. Only the INIT reply is
 * changed, and only by flags the kernel's request offered: the kernel
 * ignores a flag it did not offer, and libfuse never looks at the reply
 * again. Runs before any other request exists (the kernel sends nothing
 * else until INIT is answered), so nothing here needs a lock.
 */
#include "fuse/initcaps.h"

#include <linux/fuse.h>
#include <string.h>

_Static_assert(INITCAPS_KILLPRIV_V2 == FUSE_HANDLE_KILLPRIV_V2, "the kernel's flag");

void initcaps_read(struct initcaps *c, const void *buf, size_t len)
{
	struct fuse_in_header h;
	struct fuse_init_in in;

	if (c->seen || len < sizeof(h) + offsetof(struct fuse_init_in, flags) + sizeof(in.flags))
		return;
	memcpy(&h, buf, sizeof(h));
	if (h.opcode != FUSE_INIT)
		return;
	memset(&in, 0, sizeof(in));
	memcpy(&in, (const char *)buf + sizeof(h),
	       len - sizeof(h) < sizeof(in) ? len - sizeof(h) : sizeof(in));
	c->unique = h.unique;
	c->offered = in.flags;
	c->seen = true;
}

void initcaps_write(struct initcaps *c, struct iovec *iov, int count)
{
	struct fuse_out_header h;
	struct fuse_init_out out;
	uint32_t add;

	if (!c->seen || c->granted || count < 2 || iov[0].iov_len < sizeof(h))
		return;
	memcpy(&h, iov[0].iov_base, sizeof(h));
	if (h.unique != c->unique || h.error != 0 ||
	    iov[1].iov_len < offsetof(struct fuse_init_out, flags) + sizeof(out.flags))
		return;
	add = c->want & c->offered;
	memcpy(&out.flags, (char *)iov[1].iov_base + offsetof(struct fuse_init_out, flags),
	       sizeof(out.flags));
	out.flags |= add;
	memcpy((char *)iov[1].iov_base + offsetof(struct fuse_init_out, flags), &out.flags,
	       sizeof(out.flags));
	c->given = add;
	c->granted = true;
}
