/*
 * clock.h - readings of a clock in the units the code waits in: now in
 * milliseconds, and a deadline some milliseconds from now (normalised, for
 * pthread_cond_timedwait on a condition variable of that clock).
 */
#ifndef ZERO_CLOCK_H
#define ZERO_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_ms(clockid_t clock)
{
	struct timespec t;

	clock_gettime(clock, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Now on CLOCK plus MS (>= 0) milliseconds. */
static inline struct timespec clock_after_ms(clockid_t clock, int64_t ms)
{
	struct timespec t;

	clock_gettime(clock, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	return t;
}

#endif /* ZERO_CLOCK_H */
