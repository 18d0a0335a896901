/*
 * metrics.c - the store's request counters and latency histograms (see
 * metrics.h), rendered in the Prometheus text format (version 0.0.4).
 */
#include "metrics/metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

/* upper bounds of the latency buckets, seconds; +Inf follows */
static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

static const char *const op_names[METRICS_OPS] = {"put", "get", "head", "list", "delete"};

struct op_stats {
	_Atomic uint64_t count, errors;
	_Atomic uint64_t buckets[NBOUNDS]; /* not cumulative: rendered so */
	_Atomic uint64_t sum_us;
};

static struct op_stats stats[METRICS_OPS];
static _Atomic int billing;

void metrics_set_billing(enum metrics_billing b)
{
	atomic_store(&billing, (int)b);
}

void metrics_request(enum metrics_op op, double seconds, int result)
{
	struct op_stats *s;

	if ((unsigned)op >= METRICS_OPS)
		return;
	s = &stats[op];
	atomic_fetch_add(&s->count, 1);
	if (result < 0 && result != -ENOENT)
		atomic_fetch_add(&s->errors, 1);
	for (size_t i = 0; i < NBOUNDS; i++) {
		if (seconds <= bounds[i]) {
			atomic_fetch_add(&s->buckets[i], 1);
			break;
		}
	}
	atomic_fetch_add(&s->sum_us, (uint64_t)(seconds > 0 ? seconds * 1e6 : 0));
}

size_t metrics_printf(char *buf, size_t size, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (len >= size)
		return len;
	va_start(ap, fmt);
	n = vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
	return n < 0 ? len : len + (size_t)n;
}

/* The billing class of OP under the provider's price list, or NULL (none). */
static const char *billing_class(int b, enum metrics_op op)
{
	if (b == METRICS_BILLING_B2)
		/* uploads and deletes are class A (free), downloads B, listings C */
		return op == METRICS_PUT || op == METRICS_DELETE ? "A"
		       : op == METRICS_LIST			 ? "C"
								 : "B";
	if (b == METRICS_BILLING_S3)
		return op == METRICS_PUT || op == METRICS_LIST ? "put_copy_post_list"
		       : op == METRICS_DELETE		       ? "free"
							       : "get_select_other";
	return NULL;
}

size_t metrics_render(char *buf, size_t size, size_t len)
{
	int b = atomic_load(&billing);
	uint64_t classes[4] = {0};
	const char *class_names[4] = {NULL};

	len = metrics_printf(buf, size, len,
		  "# HELP zero_store_requests_total Requests to the bucket, by operation.\n"
		  "# TYPE zero_store_requests_total counter\n");
	for (int op = 0; op < METRICS_OPS; op++)
		len = metrics_printf(buf, size, len, "zero_store_requests_total{op=\"%s\"} %llu\n",
			  op_names[op], (unsigned long long)atomic_load(&stats[op].count));
	len = metrics_printf(buf, size, len,
		  "# HELP zero_store_request_errors_total Requests to the bucket that failed.\n"
		  "# TYPE zero_store_request_errors_total counter\n");
	for (int op = 0; op < METRICS_OPS; op++)
		len = metrics_printf(buf, size, len, "zero_store_request_errors_total{op=\"%s\"} %llu\n",
			  op_names[op], (unsigned long long)atomic_load(&stats[op].errors));
	len = metrics_printf(buf, size, len,
		  "# HELP zero_store_request_duration_seconds Latency of requests to the bucket.\n"
		  "# TYPE zero_store_request_duration_seconds histogram\n");
	for (int op = 0; op < METRICS_OPS; op++) {
		uint64_t cum = 0, count = atomic_load(&stats[op].count);

		for (size_t i = 0; i < NBOUNDS; i++) {
			cum += atomic_load(&stats[op].buckets[i]);
			len = metrics_printf(buf, size, len,
				  "zero_store_request_duration_seconds_bucket{op=\"%s\",le=\"%g\"} "
				  "%llu\n",
				  op_names[op], bounds[i], (unsigned long long)cum);
		}
		len = metrics_printf(buf, size, len,
			  "zero_store_request_duration_seconds_bucket{op=\"%s\",le=\"+Inf\"} %llu\n"
			  "zero_store_request_duration_seconds_sum{op=\"%s\"} %.6f\n"
			  "zero_store_request_duration_seconds_count{op=\"%s\"} %llu\n",
			  op_names[op], (unsigned long long)count, op_names[op],
			  (double)atomic_load(&stats[op].sum_us) / 1e6, op_names[op],
			  (unsigned long long)count);
	}
	if (b == METRICS_BILLING_NONE)
		return len;
	for (int op = 0; op < METRICS_OPS; op++) {
		const char *c = billing_class(b, op);
		for (int i = 0; i < 4; i++) {
			if (!class_names[i] || class_names[i] == c) {
				class_names[i] = c;
				classes[i] += atomic_load(&stats[op].count);
				break;
			}
		}
	}
	len = metrics_printf(buf, size, len,
		  "# HELP zero_store_billed_requests_total Requests by the provider's billing class "
		  "(%s).\n# TYPE zero_store_billed_requests_total counter\n",
		  b == METRICS_BILLING_B2 ? "Backblaze B2: A free, B downloads, C listings"
					  : "S3: PUT/COPY/POST/LIST, GET/SELECT/other, free");
	for (int i = 0; i < 4 && class_names[i]; i++)
		len = metrics_printf(buf, size, len, "zero_store_billed_requests_total{class=\"%s\"} %llu\n",
			  class_names[i], (unsigned long long)classes[i]);
	return len;
}
