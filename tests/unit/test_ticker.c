/* test_ticker.c - unit tests of the periodic thread (common/ticker.c). */
#include "common/clock.h"
#include "common/ticker.h"
#include "../unit/test.h"

#include <stdatomic.h>
#include <unistd.h>

static atomic_int ticks;

static void count(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ticks, 1);
}

/* Ticks come every interval, the first after one; none after the stop. */
static void test_ticks_until_stopped(void)
{
	struct ticker *t = NULL;
	int64_t start = clock_ms(CLOCK_MONOTONIC), took;
	int seen;

	atomic_store(&ticks, 0);
	TEST_ASSERT_EQ_INT(ticker_start(50, count, NULL, &t), 0);
	usleep(20 * 1000);
	if (clock_ms(CLOCK_MONOTONIC) - start < 45)
		TEST_ASSERT_EQ_INT(atomic_load(&ticks), 0); /* not at once */
	while (atomic_load(&ticks) < 3 && clock_ms(CLOCK_MONOTONIC) - start < 5000)
		usleep(5 * 1000);
	took = clock_ms(CLOCK_MONOTONIC) - start;
	TEST_ASSERT(atomic_load(&ticks) >= 3);
	TEST_ASSERT(took >= 150); /* three intervals at least: no faster */
	ticker_stop(t);
	seen = atomic_load(&ticks);
	usleep(120 * 1000);
	TEST_ASSERT_EQ_INT(atomic_load(&ticks), seen);
}

/* A stop wakes the wait at once, however long the interval. */
static void test_stop_wakes_a_long_wait(void)
{
	struct ticker *t = NULL;
	int64_t start = clock_ms(CLOCK_MONOTONIC);

	atomic_store(&ticks, 0);
	TEST_ASSERT_EQ_INT(ticker_start(3600 * 1000, count, NULL, &t), 0);
	usleep(10 * 1000);
	ticker_stop(t);
	TEST_ASSERT(clock_ms(CLOCK_MONOTONIC) - start < 1000);
	TEST_ASSERT_EQ_INT(atomic_load(&ticks), 0);
	ticker_stop(NULL);
}

int main(void)
{
	TEST_RUN(test_ticks_until_stopped);
	TEST_RUN(test_stop_wakes_a_long_wait);
	return TEST_MAIN_END();
}
