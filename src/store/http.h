/*
 * http.h - Zero's HTTP transport (libcurl underneath; the only module that
 * includes curl/curl.h).
 *
 * One synchronous call per request on the calling thread. A client holds a
 * fixed pool of connections-with-state (curl easy handles): its size is the
 * bound on transfers in flight, and reusing handles reuses connections.
 * Retries with exponential backoff and jitter happen inside http_perform;
 * every final failure is mapped to -errno in one function (http.c) and
 * logged there once, with the server's error code and message.
 *
 * Transfers never raise signals (CURLOPT_NOSIGNAL, as threaded programs
 * need), so a program using this must ignore SIGPIPE: OpenSSL writes to a
 * connection the peer closed would otherwise kill it.
 */
#ifndef ZERO_HTTP_H
#define ZERO_HTTP_H

#include "store/objstore.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct http_client;

struct http_client_options {
	unsigned max_parallel;	    /* transfers in flight (pool size), >= 1 */
	unsigned connect_timeout_s; /* 0: 10 s */
	unsigned
	    low_speed_timeout_s; /* abort a transfer slower than 1 KiB/s for this long; 0: 30 s */
	unsigned max_retries;	 /* retries after the first attempt */
	unsigned retry_base_ms;	 /* first backoff; doubles per retry, capped at 20 s */
	const char *ca_file;	 /* extra CA bundle, added to the system's; NULL for none */
};

/* Caller owns the result (http_client_free). NULL on allocation failure. */
struct http_client *http_client_new(const struct http_client_options *opt);
void http_client_free(struct http_client *c);

#define HTTP_MAX_HEADERS 24

/* Request headers as "Name: value" lines; owned by the struct (http_headers_release). */
struct http_headers {
	char *lines[HTTP_MAX_HEADERS];
	size_t n;
};

int http_headers_add(struct http_headers *h, const char *name, const char *value);
void http_headers_release(struct http_headers *h);

/* What an attempt is: passed to http_request.prepare. */
struct http_attempt {
	unsigned number;    /* 0 for the first */
	uint64_t resume_at; /* bytes of the window already in the sink; ask for the rest */
	const char *etag;   /* with resume_at: the entity tag the first bytes came from */
};

struct http_request {
	const char *method; /* "GET", "PUT", "POST", "DELETE", "HEAD" */
	const char *url;
	/*
	 * Called before every attempt to build the headers, so that a retry
	 * is signed afresh (and, for a resumed download, asks for the rest:
	 * Range from window start + resume_at, If-Match etag). Returns 0 or
	 * -errno (which ends the request).
	 */
	int (*prepare)(void *ctx, struct http_headers *h, const struct http_attempt *attempt);
	void *ctx;
	const struct objstore_source *body; /* NULL: no request body */
	struct objstore_sink *sink;	    /* a 2xx body goes here; NULL: into response.body */
	const char *what;		    /* for messages: "GET key", "list prefix" */
	bool quiet_404;			    /* a 404 is an expected answer: log it at debug */
	bool quiet_precondition; /* a 412 or 409 is an expected answer (conditional put) */
	/*
	 * The request asked for bytes [range_off, range_off + range_len) with
	 * a Range header. A server may ignore Range and answer 200 with the
	 * whole object; then only that window reaches the sink.
	 */
	bool ranged;
	uint64_t range_off, range_len;
	/*
	 * A download into SINK that broke off after some bytes of a 2xx answer
	 * continues where it stopped instead of starting over.
	 */
	bool resumable;
};

struct http_response {
	long status;
	char *body; /* non-2xx body, or the 2xx body when the request had no sink; owned */
	size_t body_len;
	char etag[80]; /* without quotes */
	uint64_t content_length;
	bool has_content_length;
	time_t last_modified;
	char code[64]; /* server's error code of a failure, "" if none */
};

/*
 * Perform REQ with retries. Returns 0 on a 2xx answer, otherwise the mapped
 * -errno (the response still holds status, body and code). Caller releases
 * RESP (http_response_release) in both cases.
 */
int http_perform(struct http_client *c, const struct http_request *req, struct http_response *resp);
void http_response_release(struct http_response *resp);

/* The one mapping of HTTP status / server code / transport error to -errno. */
int http_map_error(long status, const char *code, int transport_error);

#endif /* ZERO_HTTP_H */
