/*
 * test.h - a tiny unit-test helper: assertions that count instead of abort,
 * and a closing line "N passed, N failed" that CI reads.
 *
 *	static void test_thing(void) { TEST_ASSERT(1 + 1 == 2); }
 *	int main(void) { TEST_RUN(test_thing); return TEST_MAIN_END(); }
 *
 * A test function passes when none of its assertions failed.
 */
#ifndef ZERO_TEST_H
#define ZERO_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int test_failed_asserts;
static int test_passed_count;
static int test_failed_count;

#define TEST_ASSERT(cond)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__,        \
				#cond);                                                            \
			test_failed_asserts++;                                                     \
		}                                                                                  \
	} while (0)

#define TEST_ASSERT_EQ_INT(a, b)                                                                   \
	do {                                                                                       \
		long long test_a_ = (long long)(a), test_b_ = (long long)(b);                      \
		if (test_a_ != test_b_) {                                                          \
			fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,          \
				__LINE__, #a, #b, test_a_, test_b_);                               \
			test_failed_asserts++;                                                     \
		}                                                                                  \
	} while (0)

#define TEST_ASSERT_EQ_STR(a, b)                                                                   \
	do {                                                                                       \
		const char *test_a_ = (a), *test_b_ = (b);                                         \
		if (!test_a_ || !test_b_ || strcmp(test_a_, test_b_) != 0) {                       \
			fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__,     \
				__LINE__, #a, #b, test_a_ ? test_a_ : "(null)",                    \
				test_b_ ? test_b_ : "(null)");                                     \
			test_failed_asserts++;                                                     \
		}                                                                                  \
	} while (0)

#define TEST_RUN(fn)                                                                               \
	do {                                                                                       \
		int test_before_ = test_failed_asserts;                                            \
		fn();                                                                              \
		if (test_failed_asserts == test_before_) {                                         \
			test_passed_count++;                                                       \
		} else {                                                                           \
			test_failed_count++;                                                       \
			fprintf(stderr, "FAIL %s\n", #fn);                                         \
		}                                                                                  \
	} while (0)

#define TEST_MAIN_END()                                                                            \
	(printf("%d passed, %d failed\n", test_passed_count, test_failed_count),                   \
	 test_failed_count ? 1 : 0)

#endif /* ZERO_TEST_H */
