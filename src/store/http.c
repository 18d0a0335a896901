/*
 * http.c - HTTP transport on libcurl (see http.h).
 *
 * Rules:
 *  1. A request holds one pooled easy handle for its whole life, retries
 *     included; a thread that finds the pool empty waits. The pool's size
 *     is therefore the bound on parallel transfers, and each handle's
 *     connection cache gives connection reuse.
 *  2. Retried: transport failures (connect refused, reset, timeout, partial
 *     answer), HTTP 5xx, 429, and S3's 400 RequestTimeout. Never retried:
 *     other 4xx, TLS verification failures, local source/sink errors.
 *     Backoff: base * 2^attempt, capped at 20 s, times a random factor in
 *     [0.5, 1.5); a Retry-After header (seconds, capped at 120) replaces it.
 *     A resumable download that broke off mid-answer asks for the rest
 *     (Range, If-Match) instead of starting over.
 *  3. http_map_error is the only place that turns a failure into -errno;
 *     http_fail is the only place that logs it, once per request.
 *
 * Lock order: pool_lock only; never held across a transfer.
 */
#include "store/http.h"

#include "common/log.h"
#include "store/s3xml.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define ERROR_BODY_MAX (1 << 20)
#define BACKOFF_CAP_MS 20000
#define RETRY_AFTER_CAP_S 120

struct http_client {
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	CURL **handles; /* protected by pool_lock */
	bool *in_use;	/* protected by pool_lock */
	unsigned nhandles;
	struct http_client_options opt;
	char *ca_file;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_result;

static void global_init(void)
{
	global_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct http_client *http_client_new(const struct http_client_options *opt)
{
	struct http_client *c;

	pthread_once(&global_once, global_init);
	if (global_result != CURLE_OK)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->opt = *opt;
	c->nhandles = opt->max_parallel ? opt->max_parallel : 1;
	if (!c->opt.connect_timeout_s)
		c->opt.connect_timeout_s = 10;
	if (!c->opt.low_speed_timeout_s)
		c->opt.low_speed_timeout_s = 30;
	if (!c->opt.retry_base_ms)
		c->opt.retry_base_ms = 200;
	c->handles = calloc(c->nhandles, sizeof(*c->handles));
	c->in_use = calloc(c->nhandles, sizeof(*c->in_use));
	if (opt->ca_file)
		c->ca_file = strdup(opt->ca_file);
	if (!c->handles || !c->in_use || (opt->ca_file && !c->ca_file))
		goto out_free;
	c->opt.ca_file = c->ca_file;
	pthread_mutex_init(&c->pool_lock, NULL);
	pthread_cond_init(&c->pool_cond, NULL);
	return c;
out_free:
	free(c->handles);
	free(c->in_use);
	free(c->ca_file);
	free(c);
	return NULL;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->nhandles; i++)
		if (c->handles[i])
			curl_easy_cleanup(c->handles[i]);
	pthread_mutex_destroy(&c->pool_lock);
	pthread_cond_destroy(&c->pool_cond);
	free(c->handles);
	free(c->in_use);
	free(c->ca_file);
	free(c);
}

/* Take a free slot of the pool, waiting while all are busy (rule 1). */
static unsigned pool_acquire(struct http_client *c)
{
	unsigned i;

	pthread_mutex_lock(&c->pool_lock);
	for (;;) {
		for (i = 0; i < c->nhandles; i++)
			if (!c->in_use[i])
				break;
		if (i < c->nhandles)
			break;
		pthread_cond_wait(&c->pool_cond, &c->pool_lock);
	}
	c->in_use[i] = true;
	pthread_mutex_unlock(&c->pool_lock);
	return i;
}

static void pool_release(struct http_client *c, unsigned i)
{
	pthread_mutex_lock(&c->pool_lock);
	c->in_use[i] = false;
	pthread_cond_signal(&c->pool_cond);
	pthread_mutex_unlock(&c->pool_lock);
}

int http_headers_add(struct http_headers *h, const char *name, const char *value)
{
	char *line;

	if (h->n == HTTP_MAX_HEADERS)
		return -E2BIG;
	if (asprintf(&line, "%s: %s", name, value) < 0)
		return -ENOMEM;
	h->lines[h->n++] = line;
	return 0;
}

void http_headers_release(struct http_headers *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->lines[i]);
	h->n = 0;
}

void http_response_release(struct http_response *resp)
{
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
}

int http_map_error(long status, const char *code, int transport_error)
{
	if (transport_error) {
		switch ((CURLcode)transport_error) {
		case CURLE_COULDNT_CONNECT:
			return -ECONNREFUSED;
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
			return -EHOSTUNREACH;
		case CURLE_OPERATION_TIMEDOUT:
			return -ETIMEDOUT;
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			return -ECONNRESET;
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_WEIRD_SERVER_REPLY:
			return -EPROTO;
		case CURLE_URL_MALFORMAT:
		case CURLE_UNSUPPORTED_PROTOCOL:
			return -EINVAL;
		case CURLE_OUT_OF_MEMORY:
			return -ENOMEM;
		default:
			return -EIO;
		}
	}
	if (status >= 200 && status < 300)
		return 0;
	if (code && strcmp(code, "NoSuchBucket") == 0)
		return -ENXIO;
	if (code && (strcmp(code, "SlowDown") == 0 || strcmp(code, "ServiceUnavailable") == 0))
		return -EAGAIN;
	switch (status) {
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 409:
		return -EBUSY;
	case 413:
		return -EFBIG;
	case 416:
		return -ERANGE;
	case 429:
		return -EAGAIN;
	default:
		break;
	}
	if (status >= 500)
		return status == 503 ? -EAGAIN : -EIO;
	if (status >= 300 && status < 400)
		return -EREMOTE; /* a redirect: wrong region or endpoint */
	return -EINVAL;
}

/* Per-attempt state shared with curl's callbacks. */
struct transfer {
	CURL *curl;
	const struct http_request *req;
	struct http_response *resp;
	uint64_t body_pos;	/* next byte of the request body to send */
	uint64_t resp_pos;	/* bytes of the answer body seen so far */
	uint64_t resp_base;	/* first byte of a 206 answer (Content-Range) */
	uint64_t resume_at;	/* window bytes already in the sink before this attempt */
	char first_etag[80];	/* entity tag of the first 2xx answer */
	int local_error;	/* source or sink failure (-errno), not retried */
	unsigned retry_after_s; /* from the last answer's Retry-After, 0 if none */
};

static size_t on_read(char *buf, size_t size, size_t nitems, void *data)
{
	struct transfer *t = data;
	const struct objstore_source *src = t->req->body;
	uint64_t left = src->len - t->body_pos;
	size_t want = size * nitems;

	if (want > left)
		want = (size_t)left;
	if (!want)
		return 0;
	if (src->buf) {
		memcpy(buf, (const char *)src->buf + t->body_pos, want);
	} else {
		ssize_t n;

		do
			n = pread(src->fd, buf, want, (off_t)(src->offset + t->body_pos));
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			t->local_error = n < 0 ? -errno : -EIO;
			return CURL_READFUNC_ABORT;
		}
		want = (size_t)n;
	}
	t->body_pos += want;
	return want;
}

static int on_seek(void *data, curl_off_t offset, int origin)
{
	struct transfer *t = data;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > t->req->body->len)
		return CURL_SEEKFUNC_CANTSEEK;
	t->body_pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static int body_append(struct http_response *resp, const char *data, size_t len)
{
	char *bigger;

	if (resp->body_len + len > ERROR_BODY_MAX * 64)
		return -EFBIG;
	bigger = realloc(resp->body, resp->body_len + len + 1);
	if (!bigger)
		return -ENOMEM;
	resp->body = bigger;
	memcpy(resp->body + resp->body_len, data, len);
	resp->body_len += len;
	resp->body[resp->body_len] = '\0';
	return 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *ptr)
{
	struct transfer *t = ptr;
	size_t len = size * nmemb;
	long status = 0;
	int r;

	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
	if ((status == 200 || status == 206) && t->req->sink && (t->req->ranged || t->resume_at)) {
		/*
		 * Keep only the part of the window still missing, wherever the
		 * answer starts: a server may ignore Range (200, from byte 0)
		 * or send more than asked (206, from its Content-Range start).
		 */
		uint64_t base = status == 206 ? t->resp_base : 0;
		uint64_t start = base + t->resp_pos, end = start + len;
		uint64_t lo = (t->req->ranged ? t->req->range_off : 0) + t->resume_at;
		uint64_t hi = t->req->ranged ? t->req->range_off + t->req->range_len : UINT64_MAX;

		if (hi < t->req->range_off)
			hi = UINT64_MAX;
		t->resp_pos += len;
		if (end <= lo || start >= hi)
			return len;
		if (start < lo) {
			data += lo - start;
			start = lo;
		}
		if (end > hi)
			end = hi;
		r = objstore_sink_write(t->req->sink, data, (size_t)(end - start));
	} else if (status >= 200 && status < 300 && t->req->sink)
		r = objstore_sink_write(t->req->sink, data, len);
	else if (!(status >= 200 && status < 300) && t->resp->body_len >= ERROR_BODY_MAX)
		r = 0; /* keep the start of an error page, drop the rest */
	else
		r = body_append(t->resp, data, len);
	if (r < 0) {
		t->local_error = r;
		return 0; /* makes curl fail with CURLE_WRITE_ERROR */
	}
	return len;
}

static void copy_header_value(const char *v, size_t n, char *out, size_t outlen)
{
	while (n && (*v == ' ' || *v == '"')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '"'))
		n--;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, v, n);
	out[n] = '\0';
}

static size_t on_header(char *line, size_t size, size_t nitems, void *data)
{
	struct transfer *t = data;
	size_t len = size * nitems;
	char value[128];
	const char *colon = memchr(line, ':', len);

	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new answer (after a 100 Continue, say) starts afresh. */
		t->resp->etag[0] = '\0';
		t->resp->has_content_length = false;
		t->retry_after_s = 0;
		t->resp_base = 0;
		return len;
	}
	if (!colon)
		return len;
	copy_header_value(colon + 1, len - (size_t)(colon + 1 - line), value, sizeof(value));
#define IS_HEADER(name)                                                                            \
	((size_t)(colon - line) == strlen(name) && strncasecmp(line, name, strlen(name)) == 0)
	if (IS_HEADER("etag")) {
		copy_header_value(colon + 1, len - (size_t)(colon + 1 - line), t->resp->etag,
				  sizeof(t->resp->etag));
	} else if (IS_HEADER("content-length")) {
		t->resp->content_length = strtoull(value, NULL, 10);
		t->resp->has_content_length = true;
	} else if (IS_HEADER("last-modified")) {
		t->resp->last_modified = (time_t)curl_getdate(value, NULL);
		if (t->resp->last_modified < 0)
			t->resp->last_modified = 0;
	} else if (IS_HEADER("content-range")) {
		unsigned long long first;

		if (sscanf(value, "bytes %llu-", &first) == 1)
			t->resp_base = first;
	} else if (IS_HEADER("retry-after")) {
		char *end;
		unsigned long s = strtoul(value, &end, 10);

		if (end != value && !*end) {
			t->retry_after_s =
			    (unsigned)(s > RETRY_AFTER_CAP_S ? RETRY_AFTER_CAP_S : s);
		} else {
			time_t when = (time_t)curl_getdate(value, NULL);
			time_t now = time(NULL);

			if (when > now)
				t->retry_after_s =
				    (unsigned)(when - now > RETRY_AFTER_CAP_S ? RETRY_AFTER_CAP_S
									      : when - now);
		}
	}
#undef IS_HEADER
	return len;
}

static void setup_handle(struct http_client *c, CURL *curl)
{
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)c->opt.connect_timeout_s);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (long)c->opt.low_speed_timeout_s);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 512L * 1024);
	curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, 256L * 1024);
	if (c->ca_file) {
		/* The custom bundle plus the system's hashed CA directory. */
		curl_easy_setopt(curl, CURLOPT_CAINFO, c->ca_file);
		curl_easy_setopt(curl, CURLOPT_CAPATH, "/etc/ssl/certs");
	}
}

static bool transport_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static bool status_retryable(long status, const char *code)
{
	return status >= 500 || status == 429 ||
	       (status == 400 && strcmp(code, "RequestTimeout") == 0);
}

/* A per-thread xorshift generator, seeded differently in every process and thread. */
static unsigned jitter_permille(void)
{
	static _Thread_local uint64_t state;

	if (!state) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
			((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)&state;
		state |= 1;
	}
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return (unsigned)(state % 1000);
}

static unsigned backoff_ms(const struct http_client *c, unsigned attempt)
{
	uint64_t ms = c->opt.retry_base_ms;
	unsigned jitter;

	for (unsigned i = 0; i < attempt && ms < BACKOFF_CAP_MS; i++)
		ms *= 2;
	if (ms > BACKOFF_CAP_MS)
		ms = BACKOFF_CAP_MS;
	/* Random factor in [0.5, 1.5) so that many clients don't retry in step. */
	jitter = jitter_permille();
	return (unsigned)(ms / 2 + ms * jitter / 1000);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Map, log once and record a final failure (rule 3). */
static int http_fail(const struct http_request *req, struct http_response *resp, CURLcode rc,
		     const char *curl_msg, int local_error, unsigned attempts)
{
	char msg[512] = "", what[600];
	int err;

	snprintf(what, sizeof(what), "%s", req->what ? req->what : req->url);
	if (local_error) {
		err = local_error;
		objstore_error_set(err, resp->status, "LocalError", strerror(-err));
		log_error("%s: %s", what, strerror(-err));
		return err;
	}
	if (rc != CURLE_OK) {
		err = http_map_error(0, NULL, (int)rc);
		snprintf(resp->code, sizeof(resp->code), "%s", curl_easy_strerror(rc));
		objstore_error_set(err, 0, resp->code,
				   curl_msg && *curl_msg ? curl_msg : resp->code);
		log_error("%s: %s (%s) after %u attempt%s", what,
			  curl_msg && *curl_msg ? curl_msg : curl_easy_strerror(rc), strerror(-err),
			  attempts, attempts == 1 ? "" : "s");
		return err;
	}
	s3xml_error_fields(resp->body, resp->body_len, resp->code, sizeof(resp->code), msg,
			   sizeof(msg));
	err = http_map_error(resp->status, resp->code, 0);
	objstore_error_set(err, resp->status, resp->code, msg);
	if ((resp->status == 404 && req->quiet_404) || resp->status == 416 ||
	    ((resp->status == 412 || resp->status == 409) && req->quiet_precondition))
		log_debug("%s: HTTP %ld %s", what, resp->status, resp->code);
	else
		log_error("%s: HTTP %ld %s%s%s%s", what, resp->status,
			  resp->code[0] ? resp->code : "(no error code)", msg[0] ? ": " : "", msg,
			  attempts > 1 ? " (after retries)" : "");
	return err;
}

int http_perform(struct http_client *c, const struct http_request *req, struct http_response *resp)
{
	unsigned slot = pool_acquire(c);
	CURL *curl = c->handles[slot];
	struct transfer t = {.req = req, .resp = resp};
	char curl_msg[CURL_ERROR_SIZE];
	unsigned attempt;
	CURLcode rc = CURLE_OK;
	bool resume = false;
	int r = 0;

	memset(resp, 0, sizeof(*resp));
	if (!curl) {
		curl = curl_easy_init();
		if (!curl) {
			pool_release(c, slot);
			return -ENOMEM;
		}
		c->handles[slot] = curl;
	}
	t.curl = curl;
	for (attempt = 0;; attempt++) {
		struct http_headers h = {.n = 0};
		struct curl_slist *list = NULL;
		struct http_attempt a = {.number = attempt};

		curl_easy_reset(curl);
		setup_handle(c, curl);
		t.body_pos = 0;
		t.resp_pos = 0;
		t.resp_base = 0;
		t.local_error = 0;
		t.retry_after_s = 0;
		if (resume) {
			/* Continue after the bytes the sink already holds. */
			t.resume_at = req->sink->written;
			a.resume_at = t.resume_at;
			a.etag = t.first_etag[0] ? t.first_etag : NULL;
		} else {
			t.resume_at = 0;
			if (req->sink)
				objstore_sink_reset(req->sink);
		}
		http_response_release(resp);
		if (req->prepare) {
			r = req->prepare(req->ctx, &h, &a);
			if (r < 0) {
				http_headers_release(&h);
				goto out_release;
			}
		}
		for (size_t i = 0; i < h.n; i++) {
			struct curl_slist *more = curl_slist_append(list, h.lines[i]);

			if (!more) {
				curl_slist_free_all(list);
				http_headers_release(&h);
				r = -ENOMEM;
				goto out_release;
			}
			list = more;
		}
		/* No 100-continue round trip: the body goes right after the headers. */
		{
			struct curl_slist *more = curl_slist_append(list, "Expect:");

			if (more)
				list = more;
		}
		curl_msg[0] = '\0';
		curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_msg);
		curl_easy_setopt(curl, CURLOPT_URL, req->url);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
		curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
		curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
		if (strcmp(req->method, "HEAD") == 0) {
			curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
		} else if (strcmp(req->method, "GET") != 0) {
			curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
		}
		if (req->body) {
			curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
			curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
					 (curl_off_t)req->body->len);
			curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(curl, CURLOPT_READDATA, &t);
			curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, on_seek);
			curl_easy_setopt(curl, CURLOPT_SEEKDATA, &t);
			/* CURLOPT_UPLOAD means PUT; keep the method asked for. */
			curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
		} else if (strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0) {
			curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
			curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
		}
		rc = curl_easy_perform(curl);
		curl_slist_free_all(list);
		http_headers_release(&h);
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
		if (resp->status >= 200 && resp->status < 300 && !t.first_etag[0])
			snprintf(t.first_etag, sizeof(t.first_etag), "%s", resp->etag);
		/*
		 * The sink only ever receives bytes of 2xx answers for this
		 * object (If-Match on resumed attempts), so whatever it holds
		 * stays good: the next attempt asks for the rest.
		 */
		resume = req->resumable && req->sink && !t.local_error && req->sink->written > 0;
		if (rc == CURLE_OK && resp->status >= 200 && resp->status < 300) {
			r = 0;
			goto out_release;
		}
		if (t.local_error) {
			r = http_fail(req, resp, CURLE_OK, NULL, t.local_error, attempt + 1);
			goto out_release;
		}
		if (rc == CURLE_OK) {
			s3xml_error_fields(resp->body, resp->body_len, resp->code,
					   sizeof(resp->code), curl_msg, sizeof(curl_msg));
			if (!status_retryable(resp->status, resp->code) ||
			    attempt >= c->opt.max_retries) {
				r = http_fail(req, resp, CURLE_OK, NULL, 0, attempt + 1);
				goto out_release;
			}
			log_warn("%s: HTTP %ld %s, retrying (%u of %u)",
				 req->what ? req->what : req->url, resp->status, resp->code,
				 attempt + 1, c->opt.max_retries);
		} else {
			if (!transport_retryable(rc) || attempt >= c->opt.max_retries) {
				r = http_fail(req, resp, rc, curl_msg, 0, attempt + 1);
				goto out_release;
			}
			log_warn("%s: %s, retrying (%u of %u)", req->what ? req->what : req->url,
				 curl_msg[0] ? curl_msg : curl_easy_strerror(rc), attempt + 1,
				 c->opt.max_retries);
		}
		sleep_ms(t.retry_after_s ? t.retry_after_s * 1000 : backoff_ms(c, attempt));
	}
out_release:
	/* Don't leave pointers to this stack frame in the pooled handle. */
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	pool_release(c, slot);
	return r;
}
