/*
 * b2.c - Backblaze bootstrap: turns the keys B2 users already have
 * (accountId = application key id, applicationKey, bucketId) into what the
 * s3 backend needs (S3 endpoint, region, bucket name).
 *
 *   GET  {apiUrl}/b2api/v2/b2_authorize_account   Basic auth  -> apiUrl, s3ApiUrl, token, accountId
 *   POST {apiUrl}/b2api/v2/b2_list_buckets        {"accountId", "bucketId"} -> bucketName
 *
 * From then on every request goes through the S3-compatible API with the
 * same key pair. The JSON reader below understands exactly what those two
 * answers need: objects, arrays, strings (with escapes), and skips the rest.
 */
#include "store/backend.h"

#include "common/log.h"
#include "store/http.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B2_DEFAULT_API_URL "https://api.backblazeb2.com"

/* ---- a minimal JSON reader ---- */

struct json {
	const char *p, *end;
};

static void json_ws(struct json *j)
{
	while (j->p < j->end && isspace((unsigned char)*j->p))
		j->p++;
}

/* Read a string at P into OUT (may be NULL to skip). Returns false on malformed input. */
static bool json_string(struct json *j, char *out, size_t outlen)
{
	size_t n = 0;

	json_ws(j);
	if (j->p >= j->end || *j->p != '"')
		return false;
	for (j->p++; j->p < j->end && *j->p != '"'; j->p++) {
		char c = *j->p;

		if (c == '\\') {
			if (++j->p >= j->end)
				return false;
			switch (*j->p) {
			case 'n':
				c = '\n';
				break;
			case 't':
				c = '\t';
				break;
			case 'r':
				c = '\r';
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'u':
				/* Not needed for the fields we read: keep a placeholder. */
				if (j->end - j->p < 5)
					return false;
				j->p += 4;
				c = '?';
				break;
			default:
				c = *j->p;
				break;
			}
		}
		if (out && n + 1 < outlen)
			out[n++] = c;
	}
	if (j->p >= j->end)
		return false;
	j->p++;
	if (out && outlen)
		out[n] = '\0';
	return true;
}

static bool json_skip(struct json *j, int depth)
{
	json_ws(j);
	if (j->p >= j->end || depth > 32)
		return false;
	if (*j->p == '"')
		return json_string(j, NULL, 0);
	if (*j->p == '{' || *j->p == '[') {
		char close = *j->p == '{' ? '}' : ']';
		bool object = *j->p == '{';

		j->p++;
		json_ws(j);
		if (j->p < j->end && *j->p == close) {
			j->p++;
			return true;
		}
		for (;;) {
			if (object) {
				if (!json_string(j, NULL, 0))
					return false;
				json_ws(j);
				if (j->p >= j->end || *j->p != ':')
					return false;
				j->p++;
			}
			if (!json_skip(j, depth + 1))
				return false;
			json_ws(j);
			if (j->p < j->end && *j->p == ',') {
				j->p++;
				continue;
			}
			if (j->p < j->end && *j->p == close) {
				j->p++;
				return true;
			}
			return false;
		}
	}
	while (j->p < j->end && (isalnum((unsigned char)*j->p) || strchr("+-.", *j->p)))
		j->p++;
	return true;
}

/*
 * In the object at J, find member NAME and leave J at its value. Returns
 * false if absent or malformed.
 */
static bool json_member(struct json *j, const char *name)
{
	char key[128];

	json_ws(j);
	if (j->p >= j->end || *j->p != '{')
		return false;
	j->p++;
	for (;;) {
		json_ws(j);
		if (j->p < j->end && *j->p == '}')
			return false;
		if (!json_string(j, key, sizeof(key)))
			return false;
		json_ws(j);
		if (j->p >= j->end || *j->p != ':')
			return false;
		j->p++;
		if (strcmp(key, name) == 0) {
			json_ws(j);
			return true;
		}
		if (!json_skip(j, 0))
			return false;
		json_ws(j);
		if (j->p < j->end && *j->p == ',')
			j->p++;
	}
}

static bool json_get_string(const char *doc, size_t len, const char *name, char *out, size_t outlen)
{
	struct json j = {doc, doc + len};

	return json_member(&j, name) && json_string(&j, out, outlen);
}

/* In {"buckets": [ {...}, ... ]} find the bucket with BUCKET_ID and copy its name. */
static bool json_bucket_name(const char *doc, size_t len, const char *bucket_id, char *out,
			     size_t outlen)
{
	struct json j = {doc, doc + len};

	if (!json_member(&j, "buckets") || j.p >= j.end || *j.p != '[')
		return false;
	j.p++;
	for (;;) {
		const char *start;
		char id[256] = "", name[256] = "";
		struct json e;

		json_ws(&j);
		if (j.p >= j.end || *j.p == ']')
			return false;
		start = j.p;
		if (!json_skip(&j, 0))
			return false;
		e = (struct json){start, j.p};
		if (json_member(&e, "bucketId"))
			json_string(&e, id, sizeof(id));
		e = (struct json){start, j.p};
		if (json_member(&e, "bucketName"))
			json_string(&e, name, sizeof(name));
		if (strcmp(id, bucket_id) == 0 && name[0]) {
			snprintf(out, outlen, "%s", name);
			return true;
		}
		json_ws(&j);
		if (j.p < j.end && *j.p == ',')
			j.p++;
	}
}

/* ---- the two calls ---- */

struct b2_call {
	const char *authorization;
	bool json_body;
};

static int b2_prepare(void *ctx, struct http_headers *h, const struct http_attempt *attempt)
{
	struct b2_call *call = ctx;
	int r = http_headers_add(h, "Authorization", call->authorization);

	(void)attempt;
	if (r == 0 && call->json_body)
		r = http_headers_add(h, "Content-Type", "application/json");
	return r;
}

static void set_err(char *err, size_t errlen, const char *what, int r)
{
	const struct objstore_error *e = objstore_last_error();

	if (e->http_status)
		snprintf(err, errlen, "%s: HTTP %ld %s%s%s", what, e->http_status, e->code,
			 e->message[0] ? ": " : "", e->message);
	else
		snprintf(err, errlen, "%s: %s", what, e->message[0] ? e->message : strerror(-r));
}

int b2_bootstrap(const char *api_url, const char *account_id, const char *application_key,
		 const char *bucket_id, const struct s3_params *tuning, char **endpoint,
		 char **bucket_name, char **region, char *err, size_t errlen)
{
	struct http_client_options opt = {
	    .max_parallel = 1,
	    .connect_timeout_s = tuning->connect_timeout_s,
	    .low_speed_timeout_s = tuning->low_speed_timeout_s,
	    .max_retries = tuning->max_retries,
	    .retry_base_ms = tuning->retry_base_ms,
	    .ca_file = tuning->ca_file,
	};
	struct http_client *http;
	struct http_response resp = {0};
	struct b2_call call = {0};
	char *creds = NULL, *basic = NULL, *url = NULL, *body = NULL, *auth = NULL;
	char token[512], api[512], s3url[512], account[256], name[256];
	struct objstore_source src;
	size_t clen;
	int r;

	*endpoint = *bucket_name = *region = NULL;
	http = http_client_new(&opt);
	if (!http)
		return -ENOMEM;
	if (asprintf(&creds, "%s:%s", account_id, application_key) < 0) {
		creds = NULL;
		r = -ENOMEM;
		goto out_free;
	}
	clen = strlen(creds);
	basic = malloc(6 + 4 * ((clen + 2) / 3) + 1);
	if (!basic) {
		r = -ENOMEM;
		goto out_free;
	}
	memcpy(basic, "Basic ", 6);
	EVP_EncodeBlock((unsigned char *)basic + 6, (const unsigned char *)creds, (int)clen);
	if (asprintf(&url, "%s/b2api/v2/b2_authorize_account",
		     api_url ? api_url : B2_DEFAULT_API_URL) < 0) {
		url = NULL;
		r = -ENOMEM;
		goto out_free;
	}
	call.authorization = basic;
	{
		struct http_request req = {.method = "GET",
					   .url = url,
					   .prepare = b2_prepare,
					   .ctx = &call,
					   .what = "b2_authorize_account"};

		r = http_perform(http, &req, &resp);
	}
	if (r < 0) {
		set_err(err, errlen, "b2_authorize_account", r);
		goto out_free;
	}
	if (!resp.body ||
	    !json_get_string(resp.body, resp.body_len, "authorizationToken", token,
			     sizeof(token)) ||
	    !json_get_string(resp.body, resp.body_len, "apiUrl", api, sizeof(api)) ||
	    !json_get_string(resp.body, resp.body_len, "s3ApiUrl", s3url, sizeof(s3url)) ||
	    !json_get_string(resp.body, resp.body_len, "accountId", account, sizeof(account))) {
		r = -EPROTO;
		snprintf(err, errlen,
			 "b2_authorize_account: answer lacks authorizationToken, "
			 "apiUrl, s3ApiUrl or accountId");
		goto out_free;
	}
	http_response_release(&resp);

	free(url);
	if (asprintf(&url, "%s/b2api/v2/b2_list_buckets", api) < 0 ||
	    asprintf(&body, "{\"accountId\":\"%s\",\"bucketId\":\"%s\"}", account, bucket_id) < 0) {
		url = body = NULL;
		r = -ENOMEM;
		goto out_free;
	}
	auth = strdup(token);
	if (!auth) {
		r = -ENOMEM;
		goto out_free;
	}
	call.authorization = auth;
	call.json_body = true;
	src = (struct objstore_source){.buf = body, .fd = -1, .len = strlen(body)};
	{
		struct http_request req = {.method = "POST",
					   .url = url,
					   .prepare = b2_prepare,
					   .ctx = &call,
					   .body = &src,
					   .what = "b2_list_buckets"};

		r = http_perform(http, &req, &resp);
	}
	if (r < 0) {
		set_err(err, errlen, "b2_list_buckets", r);
		goto out_free;
	}
	if (!resp.body ||
	    !json_bucket_name(resp.body, resp.body_len, bucket_id, name, sizeof(name))) {
		r = -ENXIO;
		snprintf(err, errlen, "b2_list_buckets: no bucket with id %s for this key",
			 bucket_id);
		goto out_free;
	}
	/* "https://s3.<region>.backblazeb2.com" -> region; anything else: us-east-1. */
	{
		const char *host = strstr(s3url, "://");
		const char *dot;

		host = host ? host + 3 : s3url;
		dot = strncmp(host, "s3.", 3) == 0 ? strchr(host + 3, '.') : NULL;
		if (dot)
			*region = strndup(host + 3, (size_t)(dot - host - 3));
		else
			*region = strdup("us-east-1");
	}
	*endpoint = strdup(s3url);
	*bucket_name = strdup(name);
	if (!*region || !*endpoint || !*bucket_name) {
		free(*region);
		free(*endpoint);
		free(*bucket_name);
		*endpoint = *bucket_name = *region = NULL;
		r = -ENOMEM;
		goto out_free;
	}
	{
		size_t n = strlen(*endpoint);

		while (n > 8 && (*endpoint)[n - 1] == '/')
			(*endpoint)[--n] = '\0';
	}
	log_debug("b2: bucket %s is %s at %s (region %s)", bucket_id, name, *endpoint, *region);
	r = 0;
out_free:
	http_response_release(&resp);
	if (creds)
		explicit_bzero(creds, strlen(creds));
	free(creds);
	free(basic);
	free(url);
	free(body);
	if (auth)
		explicit_bzero(auth, strlen(auth));
	free(auth);
	explicit_bzero(token, sizeof(token));
	http_client_free(http);
	return r;
}
