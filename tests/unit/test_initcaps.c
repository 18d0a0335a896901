/* test_initcaps.c - unit tests of the INIT capabilities added on the wire (fuse/initcaps.c). */
#include "fuse/initcaps.h"
#include "../unit/test.h"

#include <errno.h>
#include <linux/fuse.h>

/* The kernel's INIT request offering FLAGS, as read from the device. */
static size_t init_request(char *buf, uint64_t unique, uint32_t opcode, uint32_t flags)
{
	struct fuse_in_header h = {0};
	struct fuse_init_in in = {0};

	h.len = sizeof(h) + sizeof(in);
	h.opcode = opcode;
	h.unique = unique;
	in.major = FUSE_KERNEL_VERSION;
	in.minor = FUSE_KERNEL_MINOR_VERSION;
	in.flags = flags;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &in, sizeof(in));
	return h.len;
}

/* libfuse's reply to UNIQUE, header and body in two iovecs; returns the flags written. */
static uint32_t reply(struct initcaps *c, uint64_t unique, int32_t error, uint32_t flags)
{
	struct fuse_out_header h = {.len = sizeof(h) + sizeof(struct fuse_init_out),
				    .error = error,
				    .unique = unique};
	struct fuse_init_out out = {.major = 7, .minor = 31, .flags = flags, .max_write = 4096};
	struct iovec iov[2] = {{&h, sizeof(h)}, {&out, sizeof(out)}};

	initcaps_write(c, iov, 2);
	TEST_ASSERT_EQ_INT(h.unique, unique); /* nothing else changes */
	TEST_ASSERT_EQ_INT(out.max_write, 4096);
	return out.flags;
}

static void test_adds_an_offered_flag_to_the_init_reply(void)
{
	struct initcaps c = {.want = INITCAPS_KILLPRIV_V2};
	char buf[256];
	size_t n = init_request(buf, 2, FUSE_INIT, FUSE_ASYNC_READ | FUSE_HANDLE_KILLPRIV_V2);

	initcaps_read(&c, buf, n);
	TEST_ASSERT(!c.granted); /* not yet given */
	TEST_ASSERT_EQ_INT(reply(&c, 1, 0, FUSE_ASYNC_READ), FUSE_ASYNC_READ); /* another request */
	TEST_ASSERT_EQ_INT(reply(&c, 2, 0, FUSE_ASYNC_READ),
			   FUSE_ASYNC_READ | FUSE_HANDLE_KILLPRIV_V2);
	TEST_ASSERT(c.granted && c.given == INITCAPS_KILLPRIV_V2);
	/* later replies and requests are left alone */
	TEST_ASSERT_EQ_INT(reply(&c, 2, 0, 0), 0);
	n = init_request(buf, 9, FUSE_INIT, 0);
	initcaps_read(&c, buf, n);
	TEST_ASSERT(c.granted && c.given == INITCAPS_KILLPRIV_V2);
}

static void test_never_adds_what_the_kernel_did_not_offer(void)
{
	struct initcaps c = {.want = INITCAPS_KILLPRIV_V2};
	char buf[256];
	size_t n = init_request(buf, 2, FUSE_INIT, FUSE_ASYNC_READ);

	initcaps_read(&c, buf, n);
	TEST_ASSERT_EQ_INT(reply(&c, 2, 0, FUSE_ASYNC_READ), FUSE_ASYNC_READ);
	TEST_ASSERT(c.given == 0);
}

static void test_leaves_other_requests_and_failed_replies(void)
{
	struct initcaps c = {.want = INITCAPS_KILLPRIV_V2};
	char buf[256];
	size_t n = init_request(buf, 2, FUSE_LOOKUP, FUSE_HANDLE_KILLPRIV_V2);

	initcaps_read(&c, buf, n); /* not an INIT */
	TEST_ASSERT_EQ_INT(reply(&c, 2, 0, 0), 0);
	initcaps_read(&c, buf, 10); /* too short to be anything */
	TEST_ASSERT_EQ_INT(reply(&c, 2, 0, 0), 0);
	n = init_request(buf, 3, FUSE_INIT, FUSE_HANDLE_KILLPRIV_V2);
	initcaps_read(&c, buf, n);
	TEST_ASSERT_EQ_INT(reply(&c, 3, -EPROTO, 0), 0); /* INIT refused: no flags */
	TEST_ASSERT(c.given == 0);
}

int main(void)
{
	TEST_RUN(test_adds_an_offered_flag_to_the_init_reply);
	TEST_RUN(test_never_adds_what_the_kernel_did_not_offer);
	TEST_RUN(test_leaves_other_requests_and_failed_replies);
	return TEST_MAIN_END();
}
