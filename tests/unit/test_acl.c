/*
 * test_acl.c - unit tests of the ACL value functions (fs/acl.c): checking,
 * the mode an access ACL implies, chmod and inheritance, with the
 * kernel's posix_acl.c rules.
 */
#include "fs/acl.h"
#include "../unit/test.h"

#include <errno.h>
#include <stdint.h>

#define U 0xFFFFFFFFu

struct ent {
	uint16_t tag, perm;
	uint32_t id;
};

/* Build an xattr value from ENTS into BUF; returns its size. */
static size_t build(uint8_t *buf, uint32_t version, const struct ent *ents, size_t n)
{
	buf[0] = (uint8_t)version;
	buf[1] = (uint8_t)(version >> 8);
	buf[2] = (uint8_t)(version >> 16);
	buf[3] = (uint8_t)(version >> 24);
	for (size_t i = 0; i < n; i++) {
		uint8_t *e = buf + 4 + 8 * i;
		e[0] = (uint8_t)ents[i].tag;
		e[1] = (uint8_t)(ents[i].tag >> 8);
		e[2] = (uint8_t)ents[i].perm;
		e[3] = (uint8_t)(ents[i].perm >> 8);
		for (int b = 0; b < 4; b++)
			e[4 + b] = (uint8_t)(ents[i].id >> (8 * b));
	}
	return 4 + 8 * n;
}

static uint16_t perm_of(const uint8_t *buf, size_t i)
{
	return (uint16_t)(buf[4 + 8 * i + 2] | buf[4 + 8 * i + 3] << 8);
}

#define BUILD(buf, ...)                                                                            \
	build(buf, 2, (const struct ent[]){__VA_ARGS__},                                           \
	      sizeof((const struct ent[]){__VA_ARGS__}) / sizeof(struct ent))

static void test_check(void)
{
	uint8_t b[128];
	size_t n, count = 99;

	TEST_ASSERT(acl_is_name("system.posix_acl_access"));
	TEST_ASSERT(acl_is_name("system.posix_acl_default"));
	TEST_ASSERT(!acl_is_name("system.posix_acl"));
	n = BUILD(b, {1, 6, U}, {2, 4, 1000}, {4, 4, U}, {8, 7, 50}, {0x10, 7, U}, {0x20, 0, U});
	TEST_ASSERT_EQ_INT(acl_check(b, n, &count), 0);
	TEST_ASSERT_EQ_INT(count, 6);
	n = BUILD(b, {1, 6, U}, {4, 4, U}, {0x20, 4, U});
	TEST_ASSERT_EQ_INT(acl_check(b, n, &count), 0);
	TEST_ASSERT_EQ_INT(acl_check(b, 4, &count), 0); /* empty: remove */
	TEST_ASSERT_EQ_INT(count, 0);
	TEST_ASSERT_EQ_INT(acl_check(b, 3, &count), -EINVAL);
	TEST_ASSERT_EQ_INT(acl_check(b, n - 1, &count), -EINVAL);
	n = build(b, 1, (const struct ent[]){{1, 6, U}, {4, 4, U}, {0x20, 4, U}}, 3);
	TEST_ASSERT_EQ_INT(acl_check(b, n, &count), -EOPNOTSUPP);
	/* a named entry needs a mask */
	n = BUILD(b, {1, 6, U}, {2, 4, 1000}, {4, 4, U}, {0x20, 0, U});
	TEST_ASSERT_EQ_INT(acl_check(b, n, &count), -EINVAL);
	/* order, duplicates, missing entries, bad perms, tags and ids */
	n = BUILD(b, {4, 4, U}, {1, 6, U}, {0x20, 0, U});
	TEST_ASSERT_EQ_INT(acl_check(b, n, &count), -EINVAL);
	n = BUILD(b, {1, 6, U}, {1, 6, U}, {4, 4, U}, {0x20, 0, U});
	TEST_ASSERT_EQ_INT(acl_check(b, n, &count), -EINVAL);
	n = BUILD(b, {1, 6, U}, {4, 4, U});
	TEST_ASSERT_EQ_INT(acl_check(b, n, &count), -EINVAL);
	n = BUILD(b, {1, 8, U}, {4, 4, U}, {0x20, 0, U});
	TEST_ASSERT_EQ_INT(acl_check(b, n, &count), -EINVAL);
	n = BUILD(b, {1, 6, U}, {0x40, 4, U}, {4, 4, U}, {0x20, 0, U});
	TEST_ASSERT_EQ_INT(acl_check(b, n, &count), -EINVAL);
	n = BUILD(b, {1, 6, U}, {2, 4, U}, {4, 4, U}, {0x10, 4, U}, {0x20, 0, U});
	TEST_ASSERT_EQ_INT(acl_check(b, n, &count), -EINVAL);
	n = BUILD(b, {1, 6, U}, {4, 4, U}, {0x10, 4, U}, {0x10, 4, U}, {0x20, 0, U});
	TEST_ASSERT_EQ_INT(acl_check(b, n, &count), -EINVAL);
}

static void test_equiv_mode_and_chmod(void)
{
	uint8_t b[128];
	uint32_t mode = 0100000 | 02000 | 0777;
	size_t n = BUILD(b, {1, 6, U}, {4, 5, U}, {0x20, 1, U});

	TEST_ASSERT_EQ_INT(acl_equiv_mode(b, n, &mode), 0);
	TEST_ASSERT_EQ_INT(mode, 0100000 | 02000 | 0651);
	/* the mask is the group class */
	n = BUILD(b, {1, 7, U}, {2, 4, 1000}, {4, 7, U}, {0x10, 4, U}, {0x20, 0, U});
	mode = 0100644;
	TEST_ASSERT_EQ_INT(acl_equiv_mode(b, n, &mode), 1);
	TEST_ASSERT_EQ_INT(mode, 0100740);
	/* chmod rewrites owner, mask and other; the group entry keeps its own */
	acl_apply_mode(b, n, 0100510);
	TEST_ASSERT_EQ_INT(perm_of(b, 0), 5);
	TEST_ASSERT_EQ_INT(perm_of(b, 1), 4);
	TEST_ASSERT_EQ_INT(perm_of(b, 2), 7);
	TEST_ASSERT_EQ_INT(perm_of(b, 3), 1);
	TEST_ASSERT_EQ_INT(perm_of(b, 4), 0);
	/* without a mask, the group entry follows */
	n = BUILD(b, {1, 7, U}, {4, 7, U}, {0x20, 7, U});
	acl_apply_mode(b, n, 0640);
	TEST_ASSERT_EQ_INT(perm_of(b, 1), 4);
	TEST_ASSERT_EQ_INT(perm_of(b, 2), 0);
}

static void test_create_masq(void)
{
	uint8_t b[128];
	uint32_t mode = 0100666;
	size_t n = BUILD(b, {1, 7, U}, {2, 7, 1000}, {4, 5, U}, {0x10, 7, U}, {0x20, 0, U});

	/* a file created 0666 under default u::rwx,u:1000:rwx,g::rx,m::rwx,o::- */
	TEST_ASSERT_EQ_INT(acl_create_masq(b, n, &mode), 1);
	TEST_ASSERT_EQ_INT(mode, 0100660);
	TEST_ASSERT_EQ_INT(perm_of(b, 0), 6);
	TEST_ASSERT_EQ_INT(perm_of(b, 1), 7); /* named entries stay; the mask limits them */
	TEST_ASSERT_EQ_INT(perm_of(b, 3), 6);
	TEST_ASSERT_EQ_INT(perm_of(b, 4), 0);
	/* no named entries: the mode says it all, and keeps its other bits */
	n = BUILD(b, {1, 7, U}, {4, 5, U}, {0x20, 5, U});
	mode = 040000 | 02000 | 0750;
	TEST_ASSERT_EQ_INT(acl_create_masq(b, n, &mode), 0);
	TEST_ASSERT_EQ_INT(mode, 040000 | 02000 | 0750);
	n = BUILD(b, {1, 6, U}, {4, 4, U}, {0x20, 0, U});
	mode = 0100777;
	TEST_ASSERT_EQ_INT(acl_create_masq(b, n, &mode), 0);
	TEST_ASSERT_EQ_INT(mode, 0100640);
}

int main(void)
{
	TEST_RUN(test_check);
	TEST_RUN(test_equiv_mode_and_chmod);
	TEST_RUN(test_create_masq);
	return TEST_MAIN_END();
}
