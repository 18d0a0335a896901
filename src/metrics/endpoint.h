/*
 * endpoint.h - the Prometheus endpoint (metricsListen): GET /metrics
 * answers the filesystem's gauges and counters (from its status line) and
 * the store's request metrics (metrics.h), in the Prometheus text format.
 * Served by libmicrohttpd from a thread of its own.
 */
#ifndef ZERO_METRICS_ENDPOINT_H
#define ZERO_METRICS_ENDPOINT_H

#include <stddef.h>

struct metrics_endpoint;

/* The status line (user.zero.status's JSON) into BUF: its length, or -errno. */
typedef int (*metrics_status_fn)(void *arg, char *buf, size_t size);

/*
 * Serve on LISTEN ("HOST:PORT", an IPv4 address; "PORT" alone is 127.0.0.1).
 * Call after any fork. NULL with ERR saying why (bad address, port in use).
 */
struct metrics_endpoint *metrics_endpoint_start(const char *listen, metrics_status_fn status,
						void *arg, char *err, size_t errlen);
void metrics_endpoint_stop(struct metrics_endpoint *e);

/* Check LISTEN's form without serving (the configuration's check): 0 or -EINVAL. */
int metrics_listen_parse(const char *listen, char *host, size_t hostsize, unsigned *port);

#endif /* ZERO_METRICS_ENDPOINT_H */
