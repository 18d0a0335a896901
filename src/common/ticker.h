/*
 * ticker.h - a thread that calls a function every so many milliseconds
 * until stopped: the systemd status notifier and the write-back of the
 * kernel's cached writes each run one.
 *
 *	ticker_start(1000, fn, arg, &t);   fn(arg) after each 1000 ms
 *	ticker_stop(t);                    waits for a call in progress
 */
#ifndef ZERO_TICKER_H
#define ZERO_TICKER_H

struct ticker;

/* Start calling TICK(ARG) every INTERVAL_MS, the first after one interval. 0 or -errno. */
int ticker_start(unsigned interval_ms, void (*tick)(void *arg), void *arg, struct ticker **out);
/* Stop (a call in progress ends first) and free. NULL is a no-op. */
void ticker_stop(struct ticker *t);

#endif /* ZERO_TICKER_H */
