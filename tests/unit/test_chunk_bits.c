/* test_chunk_bits.c - unit tests of the growable chunk bitmap (common/chunk_bits.c). */
#include "common/chunk_bits.h"
#include "../unit/test.h"

static void test_empty_set_holds_nothing(void)
{
	struct chunk_bits b = {0};

	TEST_ASSERT(!chunk_bits_test(&b, 0));
	TEST_ASSERT(!chunk_bits_test(&b, UINT64_MAX / 16));
	chunk_bits_clear(&b, 0, 1000); /* clearing an empty set neither grows nor crashes */
	TEST_ASSERT_EQ_INT(b.len, 0);
	TEST_ASSERT(b.bits == NULL);
	chunk_bits_free(&b);
}

static void test_set_grows_and_keeps_earlier_bits(void)
{
	struct chunk_bits b = {0};

	TEST_ASSERT_EQ_INT(chunk_bits_set(&b, 3), 0);
	TEST_ASSERT(b.len > 0);
	/* far past the first allocation: the set grows, bit 3 stays, the gap is empty */
	TEST_ASSERT_EQ_INT(chunk_bits_set(&b, 100000), 0);
	TEST_ASSERT(b.len * 8 > 100000);
	TEST_ASSERT(chunk_bits_test(&b, 3));
	TEST_ASSERT(chunk_bits_test(&b, 100000));
	for (uint64_t idx = 0; idx < b.len * 8; idx++)
		if (idx != 3 && idx != 100000 && chunk_bits_test(&b, idx)) {
			TEST_ASSERT(!"a bit nobody set is set");
			break;
		}
	TEST_ASSERT(!chunk_bits_test(&b, b.len * 8)); /* just past the end */
	chunk_bits_free(&b);
	TEST_ASSERT(b.bits == NULL && b.len == 0);
	TEST_ASSERT(!chunk_bits_test(&b, 3));
}

static void test_clear_removes_exactly_the_range(void)
{
	struct chunk_bits b = {0};

	for (uint64_t idx = 0; idx < 64; idx++)
		TEST_ASSERT_EQ_INT(chunk_bits_set(&b, idx), 0);
	chunk_bits_clear(&b, 7, 9);
	for (uint64_t idx = 0; idx < 64; idx++)
		TEST_ASSERT(chunk_bits_test(&b, idx) == (idx < 7 || idx > 9));
	/* a range running past the end clears up to it and does not grow the set */
	size_t len = b.len;
	chunk_bits_clear(&b, 60, 1u << 20);
	TEST_ASSERT_EQ_INT(b.len, len);
	TEST_ASSERT(chunk_bits_test(&b, 59));
	TEST_ASSERT(!chunk_bits_test(&b, 60) && !chunk_bits_test(&b, 63));
	chunk_bits_clear(&b, 0, 0);
	TEST_ASSERT(!chunk_bits_test(&b, 0) && chunk_bits_test(&b, 1));
	chunk_bits_free(&b);
}

int main(void)
{
	TEST_RUN(test_empty_set_holds_nothing);
	TEST_RUN(test_set_grows_and_keeps_earlier_bits);
	TEST_RUN(test_clear_removes_exactly_the_range);
	return TEST_MAIN_END();
}
