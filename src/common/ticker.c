/*
 * ticker.c - see ticker.h. The wait is on a CLOCK_MONOTONIC condition
 * variable, so ticker_stop() wakes it at once and a change of the wall
 * clock does not move the ticks; a spurious wake-up waits on to the
 * same deadline.
 */
#include "common/ticker.h"

#include "common/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct ticker {
	unsigned interval_ms;
	void (*tick)(void *arg);
	void *arg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	bool stop;	     /* protected by lock */
};

static void *ticker_main(void *arg)
{
	struct ticker *t = arg;

	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		struct timespec until = clock_after_ms(CLOCK_MONOTONIC, t->interval_ms);

		while (!t->stop && pthread_cond_timedwait(&t->cond, &t->lock, &until) != ETIMEDOUT)
			;
		if (t->stop)
			break;
		pthread_mutex_unlock(&t->lock);
		t->tick(t->arg);
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int ticker_start(unsigned interval_ms, void (*tick)(void *arg), void *arg, struct ticker **out)
{
	struct ticker *t = calloc(1, sizeof(*t));
	pthread_condattr_t ca;
	int ret;

	if (!t)
		return -ENOMEM;
	t->interval_ms = interval_ms;
	t->tick = tick;
	t->arg = arg;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	ret = -pthread_create(&t->thread, NULL, ticker_main, t);
	if (ret) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return ret;
	}
	*out = t;
	return 0;
}

void ticker_stop(struct ticker *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
