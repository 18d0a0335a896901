/*
 * endpoint.c - GET /metrics in the Prometheus text format (see endpoint.h),
 * served by libmicrohttpd's own thread. Each scrape reads the status line
 * once (the fs lock for a moment) and renders it with the store's request
 * metrics; nothing is kept between scrapes.
 */
#include "metrics/endpoint.h"

#include "metrics/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <microhttpd.h>

#define PAGE_MAX (64u << 10)
#define STATUS_MAX 8192

struct metrics_endpoint {
	struct MHD_Daemon *daemon;
	metrics_status_fn status;
	void *arg;
};

/* The status line's members as metrics: key, name, type, help. */
static const struct gauge {
	const char *key, *name, *type, *help;
} gauges[] = {
    {"cache_used", "zero_cache_used_bytes", "gauge", "Bytes the cache uses on the local disk."},
    {"cache_target", "zero_cache_target_bytes", "gauge", "The cache's target (targetDiskUsage)."},
    {"dirty_bytes", "zero_dirty_bytes", "gauge", "Bytes written and not yet in the bucket."},
    {"dirty_chunks", "zero_dirty_chunks", "gauge", "Chunks waiting to be uploaded (the queue)."},
    {"uploading", "zero_uploads_in_flight", "gauge", "Chunks being uploaded now."},
    {"uploads", "zero_uploads_total", "counter", "Chunks uploaded."},
    {"uploaded_bytes", "zero_uploaded_bytes_total", "counter", "Bytes uploaded (objects)."},
    {"upload_errors", "zero_upload_errors_total", "counter", "Uploads that failed."},
    {"dedup_hits", "zero_dedup_hits_total", "counter", "Chunks whose content was stored already."},
    {"fetches", "zero_fetches_total", "counter", "Chunks fetched from the bucket."},
    {"fetched_bytes", "zero_fetched_bytes_total", "counter", "Bytes fetched from the bucket."},
    {"fetch_errors", "zero_fetch_errors_total", "counter", "Fetches that failed."},
    {"reads", "zero_reads_total", "counter", "Reads served."},
    {"reads_fetched", "zero_reads_fetched_total", "counter", "Reads that waited for a fetch."},
    {"evictions", "zero_evictions_total", "counter", "Chunks evicted from the cache."},
    {"evicted_bytes", "zero_evicted_bytes_total", "counter", "Bytes evicted from the cache."},
    {"gc_deleted", "zero_gc_deleted_objects_total", "counter", "Objects the collector deleted."},
    {"bucket_objects", "zero_bucket_objects", "gauge", "Chunk objects the filesystem has in the bucket."},
    {"bucket_bytes", "zero_bucket_bytes", "gauge", "Bytes of those objects."},
    {"memory_rss", "zero_memory_rss_bytes", "gauge", "The daemon's resident memory."},
    {"meta_lag_s", "zero_metadata_lag_seconds", "gauge", "Age of the oldest metadata change not in the bucket."},
    {"meta_lag_rows", "zero_metadata_lag_changes", "gauge", "Metadata changes not yet in the bucket."},
    {"meta_ship_errors", "zero_metadata_ship_errors_total", "counter", "Failed shipments of metadata."},
};

/* The page: the filesystem's metrics (when its status reads), then the store's. */
static size_t render(struct metrics_endpoint *e, char *buf, size_t size)
{
	char status[STATUS_MAX];
	size_t len = 0;
	json_t *s = NULL;
	int n = e->status(e->arg, status, sizeof(status) - 1);

	if (n > 0) {
		status[n] = '\0';
		s = json_loads(status, 0, NULL);
	}
	len = metrics_printf(buf, size, len,
		  "# HELP zero_up Whether the filesystem's status could be read.\n"
		  "# TYPE zero_up gauge\nzero_up %d\n",
		  json_is_object(s) ? 1 : 0);
	if (json_is_object(s)) {
		for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++) {
			json_t *v = json_object_get(s, gauges[i].key);

			if (!json_is_number(v))
				continue;
			len = metrics_printf(buf, size, len, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n",
				  gauges[i].name, gauges[i].help, gauges[i].name, gauges[i].type,
				  gauges[i].name, json_number_value(v));
		}
		const char *enc = json_string_value(json_object_get(s, "encryption"));
		len = metrics_printf(buf, size, len,
			  "# HELP zero_encrypted Whether the bucket's objects are encrypted.\n"
			  "# TYPE zero_encrypted gauge\nzero_encrypted %d\n"
			  "# HELP zero_lease_fenced Whether another mount took the lease (read-only).\n"
			  "# TYPE zero_lease_fenced gauge\nzero_lease_fenced %d\n",
			  enc && strcmp(enc, "none") != 0,
			  json_is_true(json_object_get(s, "lease_fenced")));
	}
	json_decref(s);
	return metrics_render(buf, size, len);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct metrics_endpoint *e = cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned code = MHD_HTTP_OK;
	char *page;
	size_t len;

	(void)version, (void)upload_data, (void)upload_data_size, (void)con_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		page = strdup("only GET\n");
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else if (strcmp(url, "/metrics") != 0) {
		page = strdup("Zero's metrics are at /metrics\n");
		code = MHD_HTTP_NOT_FOUND;
	} else {
		page = malloc(PAGE_MAX);
		if (page)
			render(e, page, PAGE_MAX);
	}
	if (!page)
		return MHD_NO;
	len = strlen(page);
	resp = MHD_create_response_from_buffer(len, page, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(page);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	return ret;
}

int metrics_listen_parse(const char *listen, char *host, size_t hostsize, unsigned *port)
{
	const char *colon = strrchr(listen, ':');
	const char *p = colon ? colon + 1 : listen;
	char *end;
	unsigned long v;
	struct in_addr a;

	errno = 0;
	v = strtoul(p, &end, 10);
	if (!*p || *end || errno || v == 0 || v > 65535)
		return -EINVAL;
	if (colon) {
		size_t n = (size_t)(colon - listen);
		if (n == 0 || n >= hostsize)
			return -EINVAL;
		memcpy(host, listen, n);
		host[n] = '\0';
	} else {
		snprintf(host, hostsize, "127.0.0.1");
	}
	if (inet_pton(AF_INET, host, &a) != 1)
		return -EINVAL;
	*port = (unsigned)v;
	return 0;
}

struct metrics_endpoint *metrics_endpoint_start(const char *listen, metrics_status_fn status,
						void *arg, char *err, size_t errlen)
{
	struct metrics_endpoint *e;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char host[64];
	unsigned port;

	if (metrics_listen_parse(listen, host, sizeof(host), &port) != 0) {
		snprintf(err, errlen, "metricsListen %s: expected HOST:PORT (an IPv4 address)",
			 listen);
		return NULL;
	}
	inet_pton(AF_INET, host, &sa.sin_addr);
	sa.sin_port = htons((uint16_t)port);
	e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->status = status;
	e->arg = arg;
	e->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL,
				     answer, e, MHD_OPTION_SOCK_ADDR, &sa,
				     MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!e->daemon) {
		snprintf(err, errlen, "metricsListen %s: cannot listen there (in use?)", listen);
		free(e);
		return NULL;
	}
	return e;
}

void metrics_endpoint_stop(struct metrics_endpoint *e)
{
	if (!e)
		return;
	MHD_stop_daemon(e->daemon);
	free(e);
}
