/*
 * metrics.h - counters of the requests Zero makes to its bucket, for the
 * Prometheus endpoint (endpoint.c): per operation a count, the errors and a
 * histogram of latencies, and the billing class each request falls in with
 * the store's provider. A leaf: the store layer counts into it; nothing
 * here calls anything of Zero's. Lock-free (atomics); thread-safe.
 */
#ifndef ZERO_METRICS_H
#define ZERO_METRICS_H

#include <stddef.h>

enum metrics_op {
	METRICS_PUT,
	METRICS_GET,
	METRICS_HEAD,
	METRICS_LIST,
	METRICS_DELETE,
	METRICS_OPS
};

/* Which provider's price list the billing classes follow. */
enum metrics_billing {
	METRICS_BILLING_NONE, /* a directory: nothing is billed */
	METRICS_BILLING_S3,   /* PUT/COPY/POST/LIST, GET/SELECT/other, DELETE free */
	METRICS_BILLING_B2,   /* Backblaze's classes A (free), B and C */
};

void metrics_set_billing(enum metrics_billing b);
/* One request OP to the store took SECONDS; RESULT is 0 or -errno (-ENOENT is no error). */
void metrics_request(enum metrics_op op, double seconds, int result);

/*
 * Append FMT's text to BUF (SIZE bytes) at LEN: the new length. Past SIZE
 * the text is cut and the length stays at SIZE or beyond (nothing more is
 * written), so a page is built with one call after another and checked once.
 */
size_t metrics_printf(char *buf, size_t size, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Append the request metrics in Prometheus text format to BUF (SIZE bytes, at LEN): the new length. */
size_t metrics_render(char *buf, size_t size, size_t len);

#endif /* ZERO_METRICS_H */
