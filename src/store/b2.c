/*
 * b2.c - Backblaze bootstrap: turns the keys B2 users already have
 * (accountId = application key id, applicationKey, bucketId) into what the
 * s3 backend needs (S3 endpoint, region, bucket name).
 *
 *   GET  {apiUrl}/b2api/v2/b2_authorize_account   Basic auth  -> apiUrl, s3ApiUrl, token, accountId
 *   POST {apiUrl}/b2api/v2/b2_list_buckets        {"accountId", "bucketId"} -> bucketName
 *
 * From then on every request goes through the S3-compatible API with the
 * same key pair. Requests and answers are JSON (jansson).
 */
#include "store/backend.h"

#include "common/log.h"
#include "store/http.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B2_DEFAULT_API_URL "https://api.backblazeb2.com"

/* ---- their answers (JSON, read with jansson) ---- */

/* String member NAME of the object DOC into OUT; false when absent, not a string or too long. */
static bool answer_string(const json_t *doc, const char *name, char *out, size_t size)
{
	const char *v = json_string_value(json_object_get(doc, name));

	return v && snprintf(out, size, "%s", v) < (int)size;
}

/* The name of bucket BUCKET_ID in b2_list_buckets' answer DOC ({"buckets":[...]}). */
static bool answer_bucket_name(const json_t *doc, const char *bucket_id, char *out, size_t size)
{
	json_t *bucket;
	size_t i;

	json_array_foreach(json_object_get(doc, "buckets"), i, bucket)
	{
		const char *id = json_string_value(json_object_get(bucket, "bucketId"));

		if (id && strcmp(id, bucket_id) == 0)
			return answer_string(bucket, "bucketName", out, size);
	}
	return false;
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
	json_t *doc = NULL, *request = NULL;
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
	doc = resp.body ? json_loadb(resp.body, resp.body_len, 0, NULL) : NULL;
	if (!answer_string(doc, "authorizationToken", token, sizeof(token)) ||
	    !answer_string(doc, "apiUrl", api, sizeof(api)) ||
	    !answer_string(doc, "s3ApiUrl", s3url, sizeof(s3url)) ||
	    !answer_string(doc, "accountId", account, sizeof(account))) {
		r = -EPROTO;
		snprintf(err, errlen,
			 "b2_authorize_account: answer lacks authorizationToken, "
			 "apiUrl, s3ApiUrl or accountId");
		goto out_free;
	}
	http_response_release(&resp);
	json_decref(doc);
	doc = NULL;

	free(url);
	if (asprintf(&url, "%s/b2api/v2/b2_list_buckets", api) < 0) {
		url = NULL;
		r = -ENOMEM;
		goto out_free;
	}
	request = json_pack("{s:s, s:s}", "accountId", account, "bucketId", bucket_id);
	body = request ? json_dumps(request, JSON_COMPACT) : NULL;
	if (!body) {
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
	doc = resp.body ? json_loadb(resp.body, resp.body_len, 0, NULL) : NULL;
	if (!answer_bucket_name(doc, bucket_id, name, sizeof(name))) {
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
	json_decref(doc);
	json_decref(request);
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
