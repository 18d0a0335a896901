/*
 * sigv4.c - AWS Signature Version 4 (see sigv4.h).
 *
 *   canonical request = METHOD \n PATH \n sorted query \n
 *                       name:value \n ... \n \n signed;names \n payload hash
 *   string to sign    = "AWS4-HMAC-SHA256" \n date \n scope \n hex(sha256(creq))
 *   signing key       = HMAC chain "AWS4"+secret -> date -> region -> service -> "aws4_request"
 *   signature         = hex(HMAC(signing key, string to sign))
 *
 * The path is used exactly as given (S3 does not normalise it), so callers
 * encode keys once with sigv4_uri_encode and send the same bytes.
 */
#include "store/sigv4.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

void sigv4_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	hex_encode(md, sizeof(md), hex);
}

void sigv4_amz_date(time_t t, char out[17])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

char *sigv4_uri_encode(const char *in, bool keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t n = strlen(in);
	char *out = malloc(3 * n + 1), *p = out;

	if (!out)
		return NULL;
	for (const unsigned char *c = (const unsigned char *)in; *c; c++) {
		if (isalnum(*c) || *c == '-' || *c == '_' || *c == '.' || *c == '~' ||
		    (keep_slash && *c == '/')) {
			*p++ = (char)*c;
		} else {
			*p++ = '%';
			*p++ = digits[*c >> 4];
			*p++ = digits[*c & 15];
		}
	}
	*p = '\0';
	return out;
}

static void hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
			unsigned char out[32])
{
	unsigned int outlen = 32;

	HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &outlen);
}

void sigv4_signing_key(const char *secret, const char *date8, const char *region,
		       const char *service, unsigned char key[32])
{
	size_t slen = strlen(secret);
	char *k = malloc(slen + 5);
	unsigned char a[32], b[32];

	if (!k) {
		memset(key, 0, 32);
		return;
	}
	memcpy(k, "AWS4", 4);
	memcpy(k + 4, secret, slen + 1);
	hmac_sha256(k, slen + 4, date8, strlen(date8), a);
	hmac_sha256(a, 32, region, strlen(region), b);
	hmac_sha256(b, 32, service, strlen(service), a);
	hmac_sha256(a, 32, "aws4_request", 12, key);
	explicit_bzero(k, slen + 4);
	free(k);
}

/* A growable string; ok turns false on the first allocation failure. */
struct sbuf {
	char *s;
	size_t len, cap;
	bool ok;
};

static void sbuf_add(struct sbuf *b, const char *s, size_t n)
{
	if (!b->ok)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *bigger;

		while (cap < b->len + n + 1)
			cap *= 2;
		bigger = realloc(b->s, cap);
		if (!bigger) {
			b->ok = false;
			return;
		}
		b->s = bigger;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sbuf_puts(struct sbuf *b, const char *s)
{
	sbuf_add(b, s, strlen(s));
}

struct kv {
	char *text; /* "k=v" as given, NUL-terminated */
	size_t keylen;
};

static int kv_cmp(const void *pa, const void *pb)
{
	const struct kv *a = pa, *b = pb;
	size_t n = a->keylen < b->keylen ? a->keylen : b->keylen;
	int c = memcmp(a->text, b->text, n);

	if (c)
		return c;
	if (a->keylen != b->keylen)
		return a->keylen < b->keylen ? -1 : 1;
	return strcmp(a->text + a->keylen, b->text + b->keylen);
}

/* Append the canonical query string: parameters sorted by name then value, "k=" for bare k. */
static int add_canonical_query(struct sbuf *b, const char *query)
{
	char *copy, *save = NULL, *tok;
	struct kv *kvs = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	if (!query || !*query)
		return 0;
	copy = strdup(query);
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, "&", &save); tok; tok = strtok_r(NULL, "&", &save)) {
		if (n == cap) {
			struct kv *bigger;

			cap = cap ? cap * 2 : 8;
			bigger = realloc(kvs, cap * sizeof(*kvs));
			if (!bigger) {
				r = -ENOMEM;
				goto out_free;
			}
			kvs = bigger;
		}
		kvs[n].text = tok;
		kvs[n].keylen = strcspn(tok, "=");
		n++;
	}
	if (n)
		qsort(kvs, n, sizeof(*kvs), kv_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i)
			sbuf_add(b, "&", 1);
		sbuf_add(b, kvs[i].text, kvs[i].keylen);
		sbuf_add(b, "=", 1);
		if (kvs[i].text[kvs[i].keylen] == '=')
			sbuf_puts(b, kvs[i].text + kvs[i].keylen + 1);
	}
out_free:
	free(kvs);
	free(copy);
	return r;
}

struct lheader {
	char *name; /* lower-case copy */
	const char *value;
};

static int lheader_cmp(const void *a, const void *b)
{
	return strcmp(((const struct lheader *)a)->name, ((const struct lheader *)b)->name);
}

/* Append VALUE trimmed, with inner runs of whitespace collapsed to one space. */
static void add_trimmed(struct sbuf *b, const char *value)
{
	const char *p = value;
	bool space = false;

	while (*p == ' ' || *p == '\t')
		p++;
	for (; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
			space = true;
			continue;
		}
		if (space)
			sbuf_add(b, " ", 1);
		space = false;
		sbuf_add(b, p, 1);
	}
}

/* Sorted, lower-cased copies of the request's headers; caller frees names and array. */
static struct lheader *sorted_headers(const struct sigv4_request *req)
{
	struct lheader *h = calloc(req->nheaders ? req->nheaders : 1, sizeof(*h));

	if (!h)
		return NULL;
	for (size_t i = 0; i < req->nheaders; i++) {
		h[i].name = strdup(req->headers[i].name);
		if (!h[i].name) {
			for (size_t j = 0; j < i; j++)
				free(h[j].name);
			free(h);
			return NULL;
		}
		for (char *c = h[i].name; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		h[i].value = req->headers[i].value;
	}
	qsort(h, req->nheaders, sizeof(*h), lheader_cmp);
	return h;
}

static void free_headers(struct lheader *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(h[i].name);
	free(h);
}

static void add_signed_names(struct sbuf *b, const struct lheader *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i)
			sbuf_add(b, ";", 1);
		sbuf_puts(b, h[i].name);
	}
}

int sigv4_canonical_request(const struct sigv4_request *req, char **out)
{
	struct sbuf b = {.ok = true};
	struct lheader *h;
	int r;

	*out = NULL;
	h = sorted_headers(req);
	if (!h)
		return -ENOMEM;
	sbuf_puts(&b, req->method);
	sbuf_add(&b, "\n", 1);
	sbuf_puts(&b, req->path && *req->path ? req->path : "/");
	sbuf_add(&b, "\n", 1);
	r = add_canonical_query(&b, req->query);
	if (r < 0)
		goto out_free;
	sbuf_add(&b, "\n", 1);
	for (size_t i = 0; i < req->nheaders; i++) {
		sbuf_puts(&b, h[i].name);
		sbuf_add(&b, ":", 1);
		add_trimmed(&b, h[i].value);
		sbuf_add(&b, "\n", 1);
	}
	sbuf_add(&b, "\n", 1);
	add_signed_names(&b, h, req->nheaders);
	sbuf_add(&b, "\n", 1);
	sbuf_puts(&b, req->payload_hash);
	if (!b.ok) {
		r = -ENOMEM;
		goto out_free;
	}
	*out = b.s;
	b.s = NULL;
out_free:
	free(b.s);
	free_headers(h, req->nheaders);
	return r;
}

int sigv4_authorization(const struct sigv4_request *req, const struct sigv4_credentials *cred,
			const char *amz_date, char *out, size_t outlen)
{
	char date8[9], creq_hash[65], sig_hex[65], *creq = NULL;
	unsigned char key[32], sig[32];
	struct sbuf sts = {.ok = true}, names = {.ok = true};
	struct lheader *h = NULL;
	int r, n;

	memcpy(date8, amz_date, 8);
	date8[8] = '\0';
	r = sigv4_canonical_request(req, &creq);
	if (r < 0)
		return r;
	sigv4_sha256_hex(creq, strlen(creq), creq_hash);

	sbuf_puts(&sts, "AWS4-HMAC-SHA256\n");
	sbuf_puts(&sts, amz_date);
	sbuf_add(&sts, "\n", 1);
	sbuf_puts(&sts, date8);
	sbuf_add(&sts, "/", 1);
	sbuf_puts(&sts, cred->region);
	sbuf_add(&sts, "/", 1);
	sbuf_puts(&sts, cred->service);
	sbuf_puts(&sts, "/aws4_request\n");
	sbuf_puts(&sts, creq_hash);
	h = sorted_headers(req);
	if (h)
		add_signed_names(&names, h, req->nheaders);
	if (!sts.ok || !names.ok || !h) {
		r = -ENOMEM;
		goto out_free;
	}
	sigv4_signing_key(cred->secret_access_key, date8, cred->region, cred->service, key);
	hmac_sha256(key, sizeof(key), sts.s, sts.len, sig);
	explicit_bzero(key, sizeof(key));
	hex_encode(sig, sizeof(sig), sig_hex);
	n = snprintf(out, outlen,
		     "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
		     "Signature=%s",
		     cred->access_key_id, date8, cred->region, cred->service, names.s, sig_hex);
	if (n < 0 || (size_t)n >= outlen)
		r = -ENAMETOOLONG;
out_free:
	if (h)
		free_headers(h, req->nheaders);
	free(names.s);
	free(sts.s);
	free(creq);
	return r;
}
