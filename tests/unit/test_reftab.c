/* test_reftab.c - unit tests of the idle inodes' reference counts (fs/reftab.c). */
#include "fs/reftab.h"
#include "../unit/test.h"

#include <stdlib.h>

static void test_empty_table(void)
{
	struct reftab t = {0};

	TEST_ASSERT_EQ_INT(reftab_get(&t, 5), 0);
	TEST_ASSERT_EQ_INT(reftab_take(&t, 5), 0);
	reftab_free(&t);
}

static void test_add_get_take(void)
{
	struct reftab t = {0};

	TEST_ASSERT_EQ_INT(reftab_add(&t, 7, 1), 0);
	TEST_ASSERT_EQ_INT(reftab_add(&t, 7, 2), 0);
	TEST_ASSERT_EQ_INT(reftab_add(&t, 8, 1), 0);
	TEST_ASSERT_EQ_INT(reftab_get(&t, 7), 3);
	TEST_ASSERT_EQ_INT(reftab_get(&t, 9), 0);
	TEST_ASSERT_EQ_INT(t.count, 2);
	TEST_ASSERT_EQ_INT(reftab_take(&t, 7), 3);
	TEST_ASSERT_EQ_INT(reftab_get(&t, 7), 0);
	TEST_ASSERT_EQ_INT(reftab_take(&t, 7), 0);
	TEST_ASSERT_EQ_INT(reftab_get(&t, 8), 1);
	TEST_ASSERT_EQ_INT(t.count, 1);
	reftab_free(&t);
	TEST_ASSERT(t.slots == NULL && t.count == 0);
}

/*
 * Random adds and takes against a plain array: every count stays right
 * through growth and through deletions in the middle of probe runs (inode
 * numbers from a small range collide; some are multiples of the capacity).
 */
static void test_against_a_model(void)
{
	enum { RANGE = 5000, OPS = 400000 };
	static uint64_t model[RANGE];
	struct reftab t = {0};
	size_t live = 0;
	uint64_t seed = 12345;

	for (int op = 0; op < OPS; op++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t r = seed >> 33;
		uint64_t ino = 1 + r % RANGE;
		if (r % 1024 < 4)
			ino = (r % 7 + 1) << 16; /* same low bits */
		if (ino >= RANGE) {
			/* outside the model: add and take at once */
			TEST_ASSERT_EQ_INT(reftab_add(&t, ino, 2), 0);
			TEST_ASSERT_EQ_INT(reftab_take(&t, ino), 2);
			continue;
		}
		if ((r >> 20) % 3) {
			uint64_t n = 1 + (r >> 24) % 3;
			TEST_ASSERT_EQ_INT(reftab_add(&t, ino, n), 0);
			live += model[ino] == 0;
			model[ino] += n;
		} else {
			TEST_ASSERT_EQ_INT(reftab_take(&t, ino), model[ino]);
			live -= model[ino] != 0;
			model[ino] = 0;
		}
		if (op % 50000 == 0) {
			for (uint64_t i = 1; i < RANGE; i++)
				if (reftab_get(&t, i) != model[i]) {
					TEST_ASSERT(!"a count differs from the model");
					break;
				}
			TEST_ASSERT_EQ_INT(t.count, live);
		}
	}
	for (uint64_t i = 1; i < RANGE; i++)
		TEST_ASSERT_EQ_INT(reftab_take(&t, i), model[i]);
	TEST_ASSERT_EQ_INT(t.count, 0);
	reftab_free(&t);
}

/* A million entries take 16 bytes each in slots at most three quarters full. */
static void test_a_million_entries(void)
{
	struct reftab t = {0};

	for (uint64_t ino = 2; ino < 1000002; ino++)
		TEST_ASSERT_EQ_INT(reftab_add(&t, ino, 1), 0);
	TEST_ASSERT_EQ_INT(t.count, 1000000);
	TEST_ASSERT(t.cap * sizeof(struct reftab_slot) <= 32u << 20);
	TEST_ASSERT_EQ_INT(reftab_get(&t, 500000), 1);
	for (uint64_t ino = 2; ino < 1000002; ino += 2)
		TEST_ASSERT_EQ_INT(reftab_take(&t, ino), 1);
	TEST_ASSERT_EQ_INT(reftab_get(&t, 500001), 1);
	TEST_ASSERT_EQ_INT(reftab_get(&t, 500000), 0);
	reftab_free(&t);
}

int main(void)
{
	TEST_RUN(test_empty_table);
	TEST_RUN(test_add_get_take);
	TEST_RUN(test_against_a_model);
	TEST_RUN(test_a_million_entries);
	return TEST_MAIN_END();
}
