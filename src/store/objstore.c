/*
 * objstore.c - the backend-independent half of the object-store interface:
 * opening the configured backend, key validation, the key prefix, the
 * per-thread last-error record and the sink helpers.
 *
 * Invariant: a backend slot is only ever called with a valid, prefixed key.
 */
#include "store/backend.h"

#include "common/errbuf.h"
#include "cli/config.h"
#include "common/log.h"
#include "metrics/metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Thread_local struct objstore_error last_error;

const struct objstore_error *objstore_last_error(void)
{
	return &last_error;
}

const char *objstore_reason(int err)
{
	return last_error.err && last_error.message[0] ? last_error.message : strerror(-err);
}

void objstore_error_clear(void)
{
	memset(&last_error, 0, sizeof(last_error));
}

void objstore_error_set(int err, long http_status, const char *code, const char *message)
{
	last_error.err = err;
	last_error.http_status = http_status;
	snprintf(last_error.code, sizeof(last_error.code), "%s", code ? code : "");
	snprintf(last_error.message, sizeof(last_error.message), "%s", message ? message : "");
}

bool objstore_key_valid(const char *key)
{
	size_t n = key ? strlen(key) : 0;
	const char *p = key;

	if (n == 0 || n > 1024 || key[0] == '/')
		return false;
	/* Check each '/'-separated component. */
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t clen = slash ? (size_t)(slash - p) : strlen(p);

		if (clen == 0)
			return false;
		if ((clen == 1 && p[0] == '.') || (clen == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!slash)
			break;
		p = slash + 1;
		if (!*p)
			return false; /* trailing '/' */
	}
	return true;
}


static void s3_params_from_config(const struct config *cfg, struct s3_params *p)
{
	memset(p, 0, sizeof(*p));
	p->endpoint = cfg->endpoint;
	p->bucket = cfg->bucket;
	p->region = cfg->region ? cfg->region : "us-east-1";
	p->access_key_id = cfg->access_key_id;
	p->secret_access_key = cfg->secret_access_key;
	p->ca_file = cfg->ca_file;
	p->path_style = cfg->path_style;
	p->max_parallel = cfg->max_parallel_transfers ? cfg->max_parallel_transfers : 8;
	p->multipart_threshold = cfg->multipart_threshold;
	p->multipart_part_size = cfg->multipart_part_size;
	p->connect_timeout_s = cfg->connect_timeout_s;
	p->low_speed_timeout_s = cfg->low_speed_timeout_s;
	p->max_retries = cfg->max_retries;
	p->retry_base_ms = cfg->retry_base_ms;
	p->upload_checksum = cfg->upload_checksum;
	p->sign_payload = cfg->sign_payload;
}

int objstore_open_from_config(const struct config *cfg, struct objstore **out, char *err,
			      size_t errlen)
{
	const char *backend = cfg->backend ? cfg->backend : "file";
	const char *where = cfg->path ? cfg->path : "configuration";
	struct objstore *s = NULL;
	struct s3_params p;
	char *endpoint = NULL, *bucket = NULL, *region = NULL, *aws_endpoint = NULL;
	int r;

	*out = NULL;
	if (strcmp(backend, "file") == 0) {
		if (!cfg->bucket_dir) {
			errbuf_set(err, errlen, "%s: key 'bucketDir': not set", where);
			return -EINVAL;
		}
		r = store_file_open(cfg->bucket_dir, &s, err, errlen);
		if (r < 0)
			return r;
		metrics_set_billing(METRICS_BILLING_NONE);
		goto out_prefix;
	}
	s3_params_from_config(cfg, &p);
	if (strcmp(backend, "b2") == 0) {
		if (!cfg->account_id || !cfg->application_key || !cfg->bucket_id) {
			errbuf_set(err, errlen,
				"%s: the b2 backend needs accountId, applicationKey and bucketId",
				where);
			return -EINVAL;
		}
		r = b2_bootstrap(cfg->b2_api_url, cfg->account_id, cfg->application_key,
				 cfg->bucket_id, &p, &endpoint, &bucket, &region, err, errlen);
		if (r < 0)
			return r;
		p.endpoint = endpoint;
		p.bucket = bucket;
		p.region = region;
		p.access_key_id = cfg->account_id;
		p.secret_access_key = cfg->application_key;
	} else if (strcmp(backend, "s3") == 0) {
		if (!p.bucket) {
			errbuf_set(err, errlen, "%s: key 'bucket': the s3 backend needs a bucket name",
				where);
			return -EINVAL;
		}
		if (!p.access_key_id || !p.secret_access_key) {
			errbuf_set(err, errlen,
				"%s: the s3 backend needs accessKeyId and secretAccessKey "
				"(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
				where);
			return -EINVAL;
		}
		if (!p.endpoint) {
			/* AWS itself: the regional endpoint, virtual-hosted addressing. */
			if (asprintf(&aws_endpoint, "https://s3.%s.amazonaws.com", p.region) < 0)
				return -ENOMEM;
			p.endpoint = aws_endpoint;
			p.path_style = false; /* AWS wants virtual-hosted addressing */
		}
	} else {
		errbuf_set(err, errlen, "%s: key 'backend': unknown backend '%s'", where, backend);
		return -EINVAL;
	}
	/* Backblaze's price list for its own S3 endpoint too */
	metrics_set_billing(strcmp(backend, "b2") == 0 || strstr(p.endpoint, "backblazeb2.com")
				? METRICS_BILLING_B2
				: METRICS_BILLING_S3);
	r = store_s3_open(&p, &s, err, errlen);
	free(endpoint);
	free(bucket);
	free(region);
	free(aws_endpoint);
	if (r < 0)
		return r;
out_prefix:
	atomic_init(&s->refs, 1);
	s->prefix = strdup(cfg->prefix ? cfg->prefix : "");
	if (!s->prefix) {
		objstore_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

void objstore_free(struct objstore *s)
{
	char *prefix, *describe;

	if (!s)
		return;
	if (atomic_fetch_sub(&s->refs, 1) > 1)
		return;
	prefix = s->prefix;
	describe = s->describe;
	s->ops->free(s);
	free(prefix);
	free(describe);
}

struct objstore *objstore_ref(struct objstore *s)
{
	atomic_fetch_add(&s->refs, 1);
	return s;
}

const char *objstore_backend_name(const struct objstore *s)
{
	return s->ops->name;
}

const char *objstore_describe(const struct objstore *s)
{
	return s->describe ? s->describe : s->ops->name;
}

/* PREFIX + KEY into a new string after validating KEY; NULL sets *R. */
static char *full_key(struct objstore *s, const char *key, int *r)
{
	char *full;

	if (!objstore_key_valid(key)) {
		objstore_error_set(-EINVAL, 0, "InvalidKey", "invalid object key");
		*r = -EINVAL;
		return NULL;
	}
	if (asprintf(&full, "%s%s", s->prefix, key) < 0) {
		*r = -ENOMEM;
		return NULL;
	}
	return full;
}

/* A monotonic clock in seconds: the requests' latencies (metrics/metrics.h). */
static double seconds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int put_source(struct objstore *s, const char *key, const struct objstore_source *src)
{
	int r = 0;
	char *full = full_key(s, key, &r);

	if (!full)
		return r;
	objstore_error_clear();
	double t0 = seconds_now();
	r = s->ops->put(s, full, src);
	metrics_request(METRICS_PUT, seconds_now() - t0, r);
	free(full);
	return r;
}

int objstore_put(struct objstore *s, const char *key, const void *buf, size_t len)
{
	struct objstore_source src = {.buf = buf ? buf : "", .fd = -1, .len = len};

	return put_source(s, key, &src);
}

int objstore_put_fd(struct objstore *s, const char *key, int fd, uint64_t off, uint64_t len)
{
	struct objstore_source src = {.buf = NULL, .fd = fd, .offset = off, .len = len};

	return put_source(s, key, &src);
}

int objstore_put_if(struct objstore *s, const char *key, const void *buf, size_t len,
		    const char *if_match, char *etag)
{
	struct objstore_source src = {.buf = buf ? buf : "", .fd = -1, .len = len};
	char *full;
	int r = 0;

	if (etag)
		etag[0] = '\0';
	if (!s->ops->put_if || !objstore_conditional(s))
		return -ENOTSUP;
	if (if_match && (!*if_match || strlen(if_match) >= OBJSTORE_ETAG_MAX))
		return -EINVAL;
	full = full_key(s, key, &r);
	if (!full)
		return r;
	objstore_error_clear();
	double t0 = seconds_now();
	r = s->ops->put_if(s, full, &src, if_match, etag);
	metrics_request(METRICS_PUT, seconds_now() - t0, r);
	free(full);
	return r;
}

bool objstore_conditional(struct objstore *s)
{
	return s->ops->put_if && s->ops->conditional && s->ops->conditional(s) == 1;
}

int objstore_get_tagged(struct objstore *s, const char *key, size_t max, char **buf,
			size_t *buflen, char *etag)
{
	struct objstore_sink sink = {.fd = -1, .max = max, .want_etag = true};
	int r;

	*buf = NULL;
	*buflen = 0;
	etag[0] = '\0';
	r = objstore_get_sink(s, key, 0, UINT64_MAX, &sink);
	if (r == 0 && !sink.buf && !(sink.buf = malloc(1)))
		r = -ENOMEM;
	if (r < 0) {
		free(sink.buf);
		return r;
	}
	*buf = sink.buf;
	*buflen = sink.len;
	snprintf(etag, OBJSTORE_ETAG_MAX, "%s", sink.etag);
	return 0;
}

int objstore_get_sink(struct objstore *s, const char *key, uint64_t off, uint64_t len,
		      struct objstore_sink *sink)
{
	int r = 0;
	char *full = full_key(s, key, &r);

	if (!full)
		return r;
	objstore_error_clear();
	double t0 = seconds_now();
	r = s->ops->get(s, full, off, len, sink);
	metrics_request(METRICS_GET, seconds_now() - t0, r);
	free(full);
	return r;
}

int objstore_get(struct objstore *s, const char *key, uint64_t off, uint64_t len, char **buf,
		 size_t *buflen)
{
	struct objstore_sink sink = {.fd = -1};
	int r;

	*buf = NULL;
	*buflen = 0;
	r = objstore_get_sink(s, key, off, len, &sink);
	if (r < 0) {
		free(sink.buf);
		return r;
	}
	if (!sink.buf) {
		sink.buf = malloc(1);
		if (!sink.buf)
			return -ENOMEM;
	}
	*buf = sink.buf;
	*buflen = sink.len;
	return 0;
}

int objstore_head(struct objstore *s, const char *key, struct objstore_info *info)
{
	int r = 0;
	char *full = full_key(s, key, &r);

	if (!full)
		return r;
	objstore_error_clear();
	memset(info, 0, sizeof(*info));
	double t0 = seconds_now();
	r = s->ops->head(s, full, info);
	metrics_request(METRICS_HEAD, seconds_now() - t0, r);
	free(full);
	return r;
}

int objstore_delete(struct objstore *s, const char *key)
{
	int r = 0;
	char *full = full_key(s, key, &r);

	if (!full)
		return r;
	objstore_error_clear();
	double t0 = seconds_now();
	r = s->ops->del(s, full);
	metrics_request(METRICS_DELETE, seconds_now() - t0, r);
	free(full);
	return r;
}

int objstore_delete_many(struct objstore *s, const char *const *keys, size_t n)
{
	char **full;
	size_t i;
	int r = 0;

	if (n == 0)
		return 0;
	full = calloc(n, sizeof(*full));
	if (!full)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		full[i] = full_key(s, keys[i], &r);
		if (!full[i])
			goto out_free;
	}
	objstore_error_clear();
	double t0 = seconds_now();
	r = s->ops->delete_many(s, (const char *const *)full, n);
	/* one request per thousand keys (S3's DeleteObjects) */
	for (size_t done = 0; done < n; done += 1000)
		metrics_request(METRICS_DELETE, seconds_now() - t0, r);
out_free:
	for (i = 0; i < n; i++)
		free(full[i]);
	free(full);
	return r;
}

void objstore_list_release(struct objstore_list *page)
{
	for (size_t i = 0; i < page->count; i++)
		free(page->entries[i].key);
	free(page->entries);
	free(page->next_token);
	memset(page, 0, sizeof(*page));
}

int objstore_list(struct objstore *s, const char *prefix, const char *token, size_t max,
		  struct objstore_list *page)
{
	size_t plen = strlen(s->prefix);
	char *full;
	int r;

	memset(page, 0, sizeof(*page));
	if (max == 0 || max > 1000)
		max = 1000;
	if (asprintf(&full, "%s%s", s->prefix, prefix ? prefix : "") < 0)
		return -ENOMEM;
	objstore_error_clear();
	double t0 = seconds_now();
	r = s->ops->list(s, full, token, max, page);
	metrics_request(METRICS_LIST, seconds_now() - t0, r);
	free(full);
	if (r < 0)
		return r;
	/* Hand back keys relative to the configured prefix. */
	for (size_t i = 0; i < page->count && plen; i++) {
		char *k = page->entries[i].key;

		memmove(k, k + plen, strlen(k + plen) + 1);
	}
	return 0;
}

int objstore_list_all(struct objstore *s, const char *prefix,
		      int (*fn)(void *ctx, const struct objstore_entry *entry), void *ctx)
{
	char *token = NULL;
	int r = 0;

	do {
		struct objstore_list page;

		r = objstore_list(s, prefix, token, 1000, &page);
		free(token);
		token = NULL;
		if (r < 0)
			return r;
		for (size_t i = 0; i < page.count && r == 0; i++)
			r = fn(ctx, &page.entries[i]);
		token = page.next_token;
		page.next_token = NULL;
		objstore_list_release(&page);
	} while (r == 0 && token);
	free(token);
	return r;
}

void objstore_sink_reset(struct objstore_sink *sink)
{
	sink->len = 0;
	sink->written = 0;
}

int objstore_sink_write(struct objstore_sink *sink, const void *data, size_t len)
{
	if (sink->fd >= 0) {
		const char *p = data;
		size_t left = len;

		while (left) {
			ssize_t n =
			    pwrite(sink->fd, p, left, (off_t)(sink->offset + sink->written));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			p += n;
			left -= (size_t)n;
			sink->written += (uint64_t)n;
		}
		return 0;
	}
	if (sink->max && sink->len + len > sink->max)
		return -EFBIG;
	if (sink->len + len > sink->cap) {
		size_t cap = sink->cap ? sink->cap : 65536;
		char *bigger;

		while (cap < sink->len + len)
			cap *= 2;
		bigger = realloc(sink->buf, cap);
		if (!bigger)
			return -ENOMEM;
		sink->buf = bigger;
		sink->cap = cap;
	}
	memcpy(sink->buf + sink->len, data, len);
	sink->len += len;
	sink->written += len;
	return 0;
}
