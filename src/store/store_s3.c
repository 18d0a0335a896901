/*
 * store_s3.c - the "s3" backend: any S3-compatible service (AWS S3,
 * Backblaze B2's S3 endpoint, MinIO, Ceph RGW, Cloudflare R2, s3rver).
 *
 * Only the common core of the S3 REST API is used, so that every one of
 * those services behaves the same: PutObject, GetObject with Range,
 * HeadObject, DeleteObject, DeleteObjects, ListObjectsV2 with continuation
 * tokens, and the multipart upload calls.
 *
 * Rules:
 *  1. Every request is signed with SigV4, afresh on each retry (http.c
 *     calls s3_prepare per attempt). Every upload carries an integrity
 *     checksum of its body in a signed header, so the server rejects a body
 *     damaged in transit: x-amz-checksum-crc32c (default), -sha256, or
 *     Content-MD5 (the default for Backblaze, and always for the small XML
 *     bodies). The body itself is signed (x-amz-content-sha256) only with
 *     signPayload; otherwise it is UNSIGNED-PAYLOAD, which keeps a checksum
 *     pass and the server's own SHA-256 pass off the critical path. Zero's
 *     object envelope authenticates every object's content end to end anyway
 *     (DESIGN.md), so transport signing of bodies adds cost, not safety.
 *  2. Keys are URI-encoded once (sigv4_uri_encode); the same bytes go into
 *     the URL and the canonical request, and the Host header is set by us,
 *     so what is signed is exactly what is sent.
 *  3. An object larger than multipart_threshold is uploaded in parts of
 *     multipart_part_size by up to max_parallel threads. A failed part
 *     stops the others and the upload is aborted, so no parts linger; the
 *     object appears only at CompleteMultipartUpload (atomic, rule 2 of
 *     objstore.h).
 */
#include "store/backend.h"

#include "common/log.h"
#include "store/crc32c.h"
#include "store/http.h"
#include "store/s3xml.h"
#include "store/sigv4.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MAX_PARTS 10000

struct store_s3 {
	struct objstore base;
	struct http_client *http;
	char *scheme; /* "http" or "https" */
	char *host;   /* host[:port] as given in the endpoint */
	char *bucket;
	char *region;
	char *access_key_id;
	char *secret_access_key;
	bool path_style;
	bool sign_payload;
	enum { CHECKSUM_CRC32C, CHECKSUM_SHA256, CHECKSUM_MD5 } checksum;
	unsigned max_parallel;
	uint64_t multipart_threshold;
	uint64_t multipart_part_size;
	pthread_mutex_t cond_lock; /* held through the probe (s3_conditional) */
	int cond;		   /* 1: honours conditional puts, 0: not, -1: not asked yet */
};

static struct store_s3 *to_s3(struct objstore *s)
{
	return (struct store_s3 *)s;
}

/* What s3_prepare needs to sign one request. */
struct s3_call {
	struct store_s3 *s3;
	const char *method;
	char *path;  /* canonical (encoded) path; owned */
	char *query; /* encoded query or NULL; owned */
	char *url;   /* owned */
	char hostname[300];
	const char *payload_hash;
	struct sigv4_header extra[3]; /* more headers to send and sign */
	size_t nextra;
	const char *content_type;
	bool ranged;		       /* a GET of the window below */
	uint64_t range_off, range_len; /* range_len UINT64_MAX: to the end */
	bool conditional;	       /* a conditional put: 412/409 are expected answers */
};

static void s3_call_release(struct s3_call *call)
{
	free(call->path);
	free(call->query);
	free(call->url);
}

/* Fill PATH, URL and host for KEY (NULL: the bucket itself) and QUERY (encoded). */
static int s3_call_init(struct s3_call *call, struct store_s3 *s3, const char *method,
			const char *key, const char *query)
{
	char *enc = NULL;
	int n;

	memset(call, 0, sizeof(*call));
	call->s3 = s3;
	call->method = method;
	call->payload_hash = EMPTY_SHA256;
	if (key) {
		enc = sigv4_uri_encode(key, true);
		if (!enc)
			return -ENOMEM;
	}
	if (s3->path_style) {
		n = asprintf(&call->path, "/%s%s%s", s3->bucket, key ? "/" : "", key ? enc : "");
		snprintf(call->hostname, sizeof(call->hostname), "%s", s3->host);
	} else {
		n = asprintf(&call->path, "/%s", key ? enc : "");
		snprintf(call->hostname, sizeof(call->hostname), "%s.%s", s3->bucket, s3->host);
	}
	free(enc);
	if (n < 0) {
		call->path = NULL;
		return -ENOMEM;
	}
	if (query) {
		call->query = strdup(query);
		if (!call->query)
			goto out_nomem;
	}
	if (asprintf(&call->url, "%s://%s%s%s%s", s3->scheme, call->hostname, call->path,
		     query ? "?" : "", query ? query : "") < 0) {
		call->url = NULL;
		goto out_nomem;
	}
	return 0;
out_nomem:
	s3_call_release(call);
	return -ENOMEM;
}

/* http.c calls this before each attempt: fresh date, fresh signature (rule 1). */
static int s3_prepare(void *ctx, struct http_headers *h, const struct http_attempt *attempt)
{
	struct s3_call *call = ctx;
	struct store_s3 *s3 = call->s3;
	struct sigv4_header sh[10];
	size_t n = 0;
	char date[17], auth[1024], range[80], if_match[96];
	struct sigv4_credentials cred = {
	    .access_key_id = s3->access_key_id,
	    .secret_access_key = s3->secret_access_key,
	    .region = s3->region,
	    .service = "s3",
	};
	struct sigv4_request req = {
	    .method = call->method,
	    .path = call->path,
	    .query = call->query,
	    .headers = sh,
	    .payload_hash = call->payload_hash,
	};
	int r;

	sigv4_amz_date(time(NULL), date);
	sh[n++] = (struct sigv4_header){"host", call->hostname};
	sh[n++] = (struct sigv4_header){"x-amz-date", date};
	sh[n++] = (struct sigv4_header){"x-amz-content-sha256", call->payload_hash};
	for (size_t i = 0; i < call->nextra; i++)
		sh[n++] = call->extra[i];
	if (call->content_type)
		sh[n++] = (struct sigv4_header){"content-type", call->content_type};
	if (call->ranged || attempt->resume_at) {
		uint64_t start = call->range_off + attempt->resume_at;

		if (call->range_len != UINT64_MAX)
			snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)start,
				 (unsigned long long)(call->range_off + call->range_len - 1));
		else
			snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)start);
		sh[n++] = (struct sigv4_header){"range", range};
	}
	if (attempt->resume_at && attempt->etag) {
		/* The rest must come from the same object as the first bytes. */
		snprintf(if_match, sizeof(if_match), "\"%s\"", attempt->etag);
		sh[n++] = (struct sigv4_header){"if-match", if_match};
	}
	req.nheaders = n;
	r = sigv4_authorization(&req, &cred, date, auth, sizeof(auth));
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++)
		r = http_headers_add(h, sh[i].name, sh[i].value);
	if (r == 0)
		r = http_headers_add(h, "Authorization", auth);
	return r;
}

static int s3_perform(struct s3_call *call, const struct objstore_source *body,
		      struct objstore_sink *sink, const char *what, bool quiet_404,
		      struct http_response *resp)
{
	struct http_request req = {
	    .ranged = call->ranged,
	    .range_off = call->range_off,
	    .range_len = call->range_len,
	    .resumable = sink != NULL,
	    .method = call->method,
	    .url = call->url,
	    .prepare = s3_prepare,
	    .ctx = call,
	    .body = body,
	    .sink = sink,
	    .what = what,
	    .quiet_404 = quiet_404,
	    .quiet_precondition = call->conditional,
	};

	return http_perform(call->s3->http, &req, resp);
}

/* Digests of an upload body, as its headers want them. */
struct body_sums {
	char sha256_hex[65];
	char sha256_b64[48];
	char md5_b64[32];
	char crc32c_b64[12];
};

enum { SUM_SHA256 = 1, SUM_MD5 = 2, SUM_CRC32C = 4 };

static void feed(EVP_MD_CTX *sha, EVP_MD_CTX *md5, uint32_t *crc, const void *p, size_t n)
{
	if (sha)
		EVP_DigestUpdate(sha, p, n);
	if (md5)
		EVP_DigestUpdate(md5, p, n);
	if (crc)
		*crc = crc32c_update(*crc, p, n);
}

/* The digests WHAT asks for of SRC's bytes, read once. */
static int hash_source(const struct objstore_source *src, unsigned what, struct body_sums *out)
{
	EVP_MD_CTX *sha = NULL, *md5 = NULL;
	unsigned char d[32], crc_be[4];
	uint32_t crc = 0;
	char *buf = NULL;
	uint64_t done = 0;
	int r = 0;

	memset(out, 0, sizeof(*out));
	if (what & SUM_SHA256) {
		sha = EVP_MD_CTX_new();
		if (!sha || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL)) {
			r = -ENOMEM;
			goto out_free;
		}
	}
	if (what & SUM_MD5) {
		md5 = EVP_MD_CTX_new();
		if (!md5 || !EVP_DigestInit_ex(md5, EVP_md5(), NULL)) {
			r = -ENOMEM;
			goto out_free;
		}
	}
	if (src->buf) {
		feed(sha, md5, what & SUM_CRC32C ? &crc : NULL, src->buf, src->len);
	} else if (src->len && src->len < SIZE_MAX / 2) {
		/*
		 * Map the file rather than copy it through a buffer: the copy
		 * costs more than the checksum itself. Pages come from the
		 * page cache and are read again by the upload right after.
		 */
		off_t start = (off_t)(src->offset & ~(uint64_t)(sysconf(_SC_PAGESIZE) - 1));
		size_t skip = (size_t)((off_t)src->offset - start);
		size_t maplen = skip + (size_t)src->len;
		char *map = mmap(NULL, maplen, PROT_READ, MAP_SHARED, src->fd, start);
		struct stat st;

		if (map == MAP_FAILED || fstat(src->fd, &st) < 0 ||
		    (uint64_t)st.st_size < src->offset + src->len) {
			/* Short file (or unmappable): the read loop below reports it. */
			if (map != MAP_FAILED)
				munmap(map, maplen);
			goto read_loop;
		}
		madvise(map, maplen, MADV_SEQUENTIAL);
		feed(sha, md5, what & SUM_CRC32C ? &crc : NULL, map + skip, (size_t)src->len);
		munmap(map, maplen);
	} else {
	read_loop:
		buf = malloc(1 << 20);
		if (!buf) {
			r = -ENOMEM;
			goto out_free;
		}
		while (done < src->len) {
			size_t want =
			    src->len - done > (1 << 20) ? 1 << 20 : (size_t)(src->len - done);
			ssize_t n = pread(src->fd, buf, want, (off_t)(src->offset + done));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				r = n < 0 ? -errno : -EIO;
				goto out_free;
			}
			feed(sha, md5, what & SUM_CRC32C ? &crc : NULL, buf, (size_t)n);
			done += (uint64_t)n;
		}
	}
	if (sha) {
		EVP_DigestFinal_ex(sha, d, NULL);
		for (int i = 0; i < 32; i++)
			snprintf(out->sha256_hex + 2 * i, 3, "%02x", d[i]);
		EVP_EncodeBlock((unsigned char *)out->sha256_b64, d, 32);
	}
	if (md5) {
		EVP_DigestFinal_ex(md5, d, NULL);
		EVP_EncodeBlock((unsigned char *)out->md5_b64, d, 16);
	}
	if (what & SUM_CRC32C) {
		crc_be[0] = (unsigned char)(crc >> 24);
		crc_be[1] = (unsigned char)(crc >> 16);
		crc_be[2] = (unsigned char)(crc >> 8);
		crc_be[3] = (unsigned char)crc;
		EVP_EncodeBlock((unsigned char *)out->crc32c_b64, crc_be, 4);
	}
out_free:
	free(buf);
	EVP_MD_CTX_free(sha);
	EVP_MD_CTX_free(md5);
	return r;
}

static void call_add_header(struct s3_call *call, const char *name, const char *value)
{
	if (call->nextra < sizeof(call->extra) / sizeof(call->extra[0]))
		call->extra[call->nextra++] = (struct sigv4_header){name, value};
}

/*
 * One PUT of SRC at KEY (with QUERY for a part) carrying the configured
 * checksum (rule 1); the answer's ETag into ETAG, the checksum sent into
 * CHECKSUM (for CompleteMultipartUpload).
 */
static int s3_put_single(struct store_s3 *s3, const char *key, const char *query,
			 const struct objstore_source *src, char *etag, size_t etaglen,
			 char *checksum, size_t checksumlen, const char *if_none_match,
			 const char *if_match)
{
	char quoted[OBJSTORE_ETAG_MAX + 2];
	struct s3_call call;
	struct http_response resp;
	struct body_sums sums;
	char what[300];
	unsigned need = s3->checksum == CHECKSUM_CRC32C	  ? SUM_CRC32C
			: s3->checksum == CHECKSUM_SHA256 ? SUM_SHA256
							  : SUM_MD5;
	int r;

	if (s3->sign_payload)
		need |= SUM_SHA256;
	r = hash_source(src, need, &sums);
	if (r < 0) {
		objstore_error_set(r, 0, "LocalError", "cannot read the data to upload");
		log_error("PUT %s: reading the source: %s", key, strerror(-r));
		return r;
	}
	r = s3_call_init(&call, s3, "PUT", key, query);
	if (r < 0)
		return r;
	call.payload_hash = s3->sign_payload ? sums.sha256_hex : "UNSIGNED-PAYLOAD";
	switch (s3->checksum) {
	case CHECKSUM_CRC32C:
		call_add_header(&call, "x-amz-checksum-crc32c", sums.crc32c_b64);
		break;
	case CHECKSUM_SHA256:
		call_add_header(&call, "x-amz-checksum-sha256", sums.sha256_b64);
		break;
	case CHECKSUM_MD5:
		call_add_header(&call, "content-md5", sums.md5_b64);
		break;
	}
	if (checksum)
		snprintf(checksum, checksumlen, "%s", call.extra[0].value);
	if (if_none_match)
		call_add_header(&call, "if-none-match", if_none_match);
	if (if_match) {
		snprintf(quoted, sizeof(quoted), "\"%s\"", if_match);
		call_add_header(&call, "if-match", quoted);
	}
	call.conditional = if_none_match || if_match;
	snprintf(what, sizeof(what), "PUT %s%s%.40s", key, query ? "?" : "", query ? query : "");
	r = s3_perform(&call, src, NULL, what, false, &resp);
	if (r < 0 && call.conditional &&
	    (resp.status == 412 || resp.status == 409 || (if_match && resp.status == 404))) {
		/*
		 * 412: the condition does not hold; 409 (ConditionalRequestConflict):
		 * another conditional write to the key was in flight; 404 with
		 * If-Match: the object is gone. To the caller all three say "not
		 * what you read": read again.
		 */
		r = -EEXIST;
		objstore_error_set(r, resp.status, resp.code[0] ? resp.code : "PreconditionFailed",
				   "the object is not in the state the conditional put expects");
	}
	if (r == 0 && etag)
		snprintf(etag, etaglen, "%s", resp.etag);
	http_response_release(&resp);
	s3_call_release(&call);
	return r;
}

/* A request with a small XML body (multipart complete, multi-delete); answer body in RESP. */
static int s3_post_xml(struct store_s3 *s3, const char *key, const char *query, const char *xml,
		       size_t len, const char *what, struct http_response *resp)
{
	struct objstore_source src = {.buf = xml, .fd = -1, .len = len};
	struct body_sums sums;
	struct s3_call call;
	int r;

	/* Small bodies: signed, and Content-MD5, which DeleteObjects requires everywhere. */
	r = hash_source(&src, SUM_SHA256 | SUM_MD5, &sums);
	if (r == 0)
		r = s3_call_init(&call, s3, "POST", key, query);
	if (r < 0) {
		memset(resp, 0, sizeof(*resp));
		return r;
	}
	call.payload_hash = sums.sha256_hex;
	call.content_type = "application/xml";
	call_add_header(&call, "content-md5", sums.md5_b64);
	r = s3_perform(&call, &src, NULL, what, false, resp);
	s3_call_release(&call);
	return r;
}

/* ---- multipart upload ---- */

struct part {
	char etag[80];
	char checksum[48]; /* base64 CRC32C or SHA-256 of the part, as sent */
	bool done;
};

struct multipart {
	struct store_s3 *s3;
	const char *key;
	const char *upload_id_enc; /* URI-encoded upload id */
	const struct objstore_source *src;
	uint64_t part_size;
	unsigned nparts;
	struct part *parts;
	pthread_mutex_t lock;
	unsigned next;		      /* protected by lock: next part to start */
	int error;		      /* protected by lock: first failure, stops everyone */
	struct objstore_error detail; /* protected by lock: that failure's detail */
};

static void *multipart_worker(void *arg)
{
	struct multipart *m = arg;

	for (;;) {
		struct objstore_source part;
		char query[600];
		unsigned i;
		int r;

		pthread_mutex_lock(&m->lock);
		if (m->error || m->next == m->nparts) {
			pthread_mutex_unlock(&m->lock);
			return NULL;
		}
		i = m->next++;
		pthread_mutex_unlock(&m->lock);

		part = *m->src;
		part.len = m->part_size;
		if ((uint64_t)i * m->part_size + part.len > m->src->len)
			part.len = m->src->len - (uint64_t)i * m->part_size;
		if (part.buf)
			part.buf = (const char *)m->src->buf + (uint64_t)i * m->part_size;
		else
			part.offset = m->src->offset + (uint64_t)i * m->part_size;
		snprintf(query, sizeof(query), "partNumber=%u&uploadId=%s", i + 1,
			 m->upload_id_enc);
		r = s3_put_single(m->s3, m->key, query, &part, m->parts[i].etag,
				  sizeof(m->parts[i].etag), m->parts[i].checksum,
				  sizeof(m->parts[i].checksum), NULL, NULL);
		pthread_mutex_lock(&m->lock);
		if (r < 0 && !m->error) {
			m->error = r;
			/* The detail is thread-local: carry it back to the caller's thread. */
			m->detail = *objstore_last_error();
		} else if (r == 0) {
			m->parts[i].done = true;
		}
		pthread_mutex_unlock(&m->lock);
	}
}

struct initiate_result {
	char upload_id[512];
};

static int initiate_field(void *ctx, const char *path, const char *text)
{
	struct initiate_result *res = ctx;

	if (strcmp(path, "InitiateMultipartUploadResult/UploadId") == 0)
		snprintf(res->upload_id, sizeof(res->upload_id), "%s", text);
	return 0;
}

static int complete_field(void *ctx, const char *path, const char *text)
{
	char *code = ctx;

	/* Some services answer 200 and put the failure in the body. */
	if (strcmp(path, "Error/Code") == 0)
		snprintf(code, 64, "%s", text);
	return 0;
}

static void s3_abort_multipart(struct store_s3 *s3, const char *key, const char *id_enc)
{
	struct s3_call call;
	struct http_response resp;
	char query[600], what[300];

	snprintf(query, sizeof(query), "uploadId=%s", id_enc);
	if (s3_call_init(&call, s3, "DELETE", key, query) < 0)
		return;
	snprintf(what, sizeof(what), "abort multipart upload of %s", key);
	s3_perform(&call, NULL, NULL, what, true, &resp);
	http_response_release(&resp);
	s3_call_release(&call);
}

static int s3_put_multipart(struct store_s3 *s3, const char *key, const struct objstore_source *src)
{
	struct multipart m = {.s3 = s3, .key = key, .src = src};
	struct initiate_result init = {.upload_id = ""};
	struct http_response resp;
	struct s3_call call;
	pthread_t threads[64];
	unsigned nthreads, started = 0;
	char *id_enc = NULL, *xml = NULL, what[300], query[600], code[64] = "";
	size_t xml_len = 0;
	FILE *f;
	int r, saved;

	m.part_size = s3->multipart_part_size;
	while ((src->len + m.part_size - 1) / m.part_size > MAX_PARTS)
		m.part_size *= 2;
	m.nparts = (unsigned)((src->len + m.part_size - 1) / m.part_size);

	r = s3_call_init(&call, s3, "POST", key, "uploads");
	if (r < 0)
		return r;
	/* With a flexible checksum, S3 wants the algorithm named up front. */
	if (s3->checksum == CHECKSUM_CRC32C)
		call_add_header(&call, "x-amz-checksum-algorithm", "CRC32C");
	else if (s3->checksum == CHECKSUM_SHA256)
		call_add_header(&call, "x-amz-checksum-algorithm", "SHA256");
	snprintf(what, sizeof(what), "start multipart upload of %s", key);
	r = s3_perform(&call, NULL, NULL, what, false, &resp);
	s3_call_release(&call);
	if (r == 0)
		r = s3xml_walk(resp.body ? resp.body : "", resp.body_len, initiate_field, &init);
	http_response_release(&resp);
	if (r == 0 && !init.upload_id[0])
		r = -EPROTO;
	if (r < 0) {
		if (r == -EPROTO) {
			objstore_error_set(r, 0, "MalformedAnswer", "no UploadId in the answer");
			log_error("%s: no UploadId in the answer", what);
		}
		return r;
	}
	id_enc = sigv4_uri_encode(init.upload_id, false);
	m.parts = calloc(m.nparts, sizeof(*m.parts));
	if (!id_enc || !m.parts) {
		r = -ENOMEM;
		goto out_abort;
	}
	m.upload_id_enc = id_enc;
	pthread_mutex_init(&m.lock, NULL);
	nthreads = s3->max_parallel < m.nparts ? s3->max_parallel : m.nparts;
	if (nthreads > sizeof(threads) / sizeof(threads[0]))
		nthreads = sizeof(threads) / sizeof(threads[0]);
	for (started = 0; started < nthreads; started++)
		if (pthread_create(&threads[started], NULL, multipart_worker, &m) != 0)
			break;
	if (started == 0)
		multipart_worker(&m); /* no threads to be had: do it ourselves */
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_destroy(&m.lock);
	if (m.error) {
		r = m.error;
		objstore_error_set(m.detail.err, m.detail.http_status, m.detail.code,
				   m.detail.message);
		goto out_abort;
	}

	f = open_memstream(&xml, &xml_len);
	if (!f) {
		r = -ENOMEM;
		goto out_abort;
	}
	fputs("<CompleteMultipartUpload>", f);
	for (unsigned i = 0; i < m.nparts; i++) {
		const char *tag = s3->checksum == CHECKSUM_CRC32C   ? "ChecksumCRC32C"
				  : s3->checksum == CHECKSUM_SHA256 ? "ChecksumSHA256"
								    : NULL;

		fprintf(f, "<Part><PartNumber>%u</PartNumber><ETag>\"%s\"</ETag>", i + 1,
			m.parts[i].etag);
		if (tag)
			fprintf(f, "<%s>%s</%s>", tag, m.parts[i].checksum, tag);
		fputs("</Part>", f);
	}
	fputs("</CompleteMultipartUpload>", f);
	if (fclose(f) != 0) {
		r = -ENOMEM;
		goto out_abort;
	}
	snprintf(query, sizeof(query), "uploadId=%s", id_enc);
	snprintf(what, sizeof(what), "complete multipart upload of %s", key);
	r = s3_post_xml(s3, key, query, xml, xml_len, what, &resp);
	if (r == 0) {
		s3xml_walk(resp.body ? resp.body : "", resp.body_len, complete_field, code);
		if (code[0]) {
			r = http_map_error(500, code, 0);
			objstore_error_set(r, resp.status, code, "multipart completion failed");
			log_error("%s: %s", what, code);
		}
	}
	http_response_release(&resp);
	if (r < 0)
		goto out_abort;
	goto out_free;
out_abort:
	/* Keep the first error (and its detail) while the abort runs. */
	saved = r;
	{
		struct objstore_error detail = *objstore_last_error();

		if (init.upload_id[0] && id_enc)
			s3_abort_multipart(s3, key, id_enc);
		objstore_error_set(detail.err, detail.http_status, detail.code, detail.message);
	}
	r = saved;
out_free:
	free(xml);
	free(m.parts);
	free(id_enc);
	return r;
}

static int s3_put(struct objstore *s, const char *key, const struct objstore_source *src)
{
	struct store_s3 *s3 = to_s3(s);

	if (s3->multipart_threshold && src->len > s3->multipart_threshold)
		return s3_put_multipart(s3, key, src);
	return s3_put_single(s3, key, NULL, src, NULL, 0, NULL, 0, NULL, NULL);
}

static int s3_put_if(struct objstore *s, const char *key, const struct objstore_source *src,
		     const char *if_match, char *etag)
{
	return s3_put_single(to_s3(s), key, NULL, src, etag, OBJSTORE_ETAG_MAX, NULL, 0,
			     if_match ? NULL : "*", if_match);
}

static int s3_head(struct objstore *s, const char *key, struct objstore_info *info)
{
	struct store_s3 *s3 = to_s3(s);
	struct s3_call call;
	struct http_response resp;
	char what[300];
	int r;

	r = s3_call_init(&call, s3, "HEAD", key, NULL);
	if (r < 0)
		return r;
	snprintf(what, sizeof(what), "HEAD %s", key);
	r = s3_perform(&call, NULL, NULL, what, true, &resp);
	if (r == 0) {
		info->size = resp.content_length;
		info->mtime = resp.last_modified;
		snprintf(info->etag, sizeof(info->etag), "%s", resp.etag);
	}
	http_response_release(&resp);
	s3_call_release(&call);
	return r;
}

static int s3_get(struct objstore *s, const char *key, uint64_t off, uint64_t len,
		  struct objstore_sink *sink)
{
	struct store_s3 *s3 = to_s3(s);
	struct s3_call call;
	struct http_response resp;
	char what[300];
	int r;

	if (len == 0) {
		struct objstore_info info;

		return s3_head(s, key, &info);
	}
	r = s3_call_init(&call, s3, "GET", key, NULL);
	if (r < 0)
		return r;
	call.range_off = off;
	call.range_len = len != UINT64_MAX && off + len > off ? len : UINT64_MAX;
	call.ranged = off != 0 || call.range_len != UINT64_MAX;
	snprintf(what, sizeof(what), "GET %s", key);
	r = s3_perform(&call, NULL, sink, what, true, &resp);
	if (r == 0 && !call.ranged)
		snprintf(sink->etag, sizeof(sink->etag), "%s", resp.etag);
	if (r == -ERANGE && resp.status == 416) {
		/*
		 * OFF at or past the end: no bytes, like pread. Or a resumed
		 * download asked for the rest when nothing was left: done.
		 */
		objstore_error_clear();
		if (!sink->written)
			objstore_sink_reset(sink);
		r = 0;
	}
	http_response_release(&resp);
	s3_call_release(&call);
	return r;
}

static int s3_del(struct objstore *s, const char *key)
{
	struct store_s3 *s3 = to_s3(s);
	struct s3_call call;
	struct http_response resp;
	char what[300];
	int r;

	r = s3_call_init(&call, s3, "DELETE", key, NULL);
	if (r < 0)
		return r;
	snprintf(what, sizeof(what), "DELETE %s", key);
	r = s3_perform(&call, NULL, NULL, what, true, &resp);
	if (r == -ENOENT) {
		objstore_error_clear();
		r = 0;
	}
	http_response_release(&resp);
	s3_call_release(&call);
	return r;
}

/*
 * Ask the server once whether it honours If-None-Match on PUT: put a probe
 * key twice with "If-None-Match: *". A server that honours it refuses the
 * second (412); one that ignores the header (s3rver, older S3
 * implementations) takes both; one that rejects the header (400, 501) has
 * no conditional writes either. 1, 0, or -errno when the server could not
 * be asked (tried again on the next call).
 */
static int s3_probe_conditional(struct store_s3 *s3)
{
	struct objstore_source src = {.buf = "zero conditional-write probe\n", .fd = -1, .len = 29};
	unsigned char raw[8];
	char key[1200], tag[OBJSTORE_ETAG_MAX];
	int r, r2;

	if (getentropy(raw, sizeof(raw)) < 0)
		return -errno;
	snprintf(key, sizeof(key), "%s" OBJSTORE_PROBE_PREFIX "cond-%02x%02x%02x%02x%02x%02x%02x%02x",
		 s3->base.prefix ? s3->base.prefix : "", raw[0], raw[1], raw[2], raw[3], raw[4],
		 raw[5], raw[6], raw[7]);
	r = s3_put_single(s3, key, NULL, &src, tag, sizeof(tag), NULL, 0, "*", NULL);
	if (r == -EINVAL || r == -EEXIST || r == -EBUSY)
		r = 0; /* the header refused, or a probe key that exists: no */
	else if (r == 0) {
		r2 = s3_put_single(s3, key, NULL, &src, tag, sizeof(tag), NULL, 0, "*", NULL);
		r = r2 == -EEXIST ? 1 : r2 == 0 || r2 == -EINVAL ? 0 : r2;
	}
	s3_del(&s3->base, key);
	objstore_error_clear();
	if (r >= 0)
		log_info("%s: %s conditional writes (If-None-Match / If-Match)", s3->base.describe,
			 r ? "honours" : "does not honour");
	return r;
}

static int s3_conditional(struct objstore *s)
{
	struct store_s3 *s3 = to_s3(s);
	int r;

	pthread_mutex_lock(&s3->cond_lock);
	if (s3->cond < 0) {
		r = s3_probe_conditional(s3);
		if (r >= 0)
			s3->cond = r;
	}
	r = s3->cond < 0 ? -EAGAIN : s3->cond;
	pthread_mutex_unlock(&s3->cond_lock);
	return r;
}

struct delete_result {
	char code[64];
	char key[256];
	char first_code[64];
	char first_key[256];
	unsigned failed;
};

static int delete_field(void *ctx, const char *path, const char *text)
{
	struct delete_result *d = ctx;

	if (strcmp(path, "DeleteResult/Error/Key") == 0)
		snprintf(d->key, sizeof(d->key), "%s", text);
	else if (strcmp(path, "DeleteResult/Error/Code") == 0)
		snprintf(d->code, sizeof(d->code), "%s", text);
	else if (strcmp(path, "DeleteResult/Error") == 0) {
		if (strcmp(d->code, "NoSuchKey") != 0) {
			if (!d->failed++) {
				snprintf(d->first_code, sizeof(d->first_code), "%s", d->code);
				snprintf(d->first_key, sizeof(d->first_key), "%s", d->key);
			}
		}
		d->code[0] = d->key[0] = '\0';
	}
	return 0;
}

static int s3_delete_batch(struct store_s3 *s3, const char *const *keys, size_t n)
{
	struct delete_result d;
	struct http_response resp;
	char *xml = NULL, *esc = NULL, what[100];
	size_t xml_len = 0;
	FILE *f;
	int r;

	memset(&d, 0, sizeof(d));
	f = open_memstream(&xml, &xml_len);
	if (!f)
		return -ENOMEM;
	fputs("<Delete><Quiet>true</Quiet>", f);
	for (size_t i = 0; i < n; i++) {
		size_t need = s3xml_escape(keys[i], NULL, 0) + 1;

		esc = malloc(need);
		if (!esc)
			break;
		s3xml_escape(keys[i], esc, need);
		fprintf(f, "<Object><Key>%s</Key></Object>", esc);
		free(esc);
		esc = NULL;
	}
	fputs("</Delete>", f);
	if (fclose(f) != 0 || !xml) {
		free(xml);
		return -ENOMEM;
	}
	snprintf(what, sizeof(what), "delete %zu objects", n);
	r = s3_post_xml(s3, NULL, "delete", xml, xml_len, what, &resp);
	if (r == 0) {
		r = s3xml_walk(resp.body ? resp.body : "", resp.body_len, delete_field, &d);
		if (r == 0 && d.failed) {
			char msg[400];

			r = http_map_error(403, d.first_code, 0);
			if (strcmp(d.first_code, "AccessDenied") != 0)
				r = -EIO;
			snprintf(msg, sizeof(msg), "%u keys not deleted, first %s: %s", d.failed,
				 d.first_key, d.first_code);
			objstore_error_set(r, resp.status, d.first_code, msg);
			log_error("%s: %s", what, msg);
		} else if (r < 0) {
			objstore_error_set(r, resp.status, "MalformedAnswer", "bad DeleteResult");
			log_error("%s: malformed answer", what);
		}
	}
	http_response_release(&resp);
	free(xml);
	return r;
}

static int s3_delete_many(struct objstore *s, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < n; i += 1000) {
		int r = s3_delete_batch(to_s3(s), keys + i, n - i > 1000 ? 1000 : n - i);

		if (r < 0)
			return r;
	}
	return 0;
}

/* "2009-10-12T17:50:30.000Z" -> seconds since the epoch (0 if unparsable). */
static time_t parse_iso8601(const char *text)
{
	struct tm tm = {0};

	if (sscanf(text, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

struct list_result {
	struct objstore_list *page;
	size_t cap;
	struct objstore_entry cur;
	bool truncated;
	char *next;
};

static int list_field(void *ctx, const char *path, const char *text)
{
	struct list_result *l = ctx;

	if (strncmp(path, "ListBucketResult/", 17) != 0)
		return 0;
	path += 17;
	if (strcmp(path, "Contents/Key") == 0) {
		free(l->cur.key);
		l->cur.key = strdup(text);
		if (!l->cur.key)
			return -ENOMEM;
	} else if (strcmp(path, "Contents/Size") == 0) {
		l->cur.size = strtoull(text, NULL, 10);
	} else if (strcmp(path, "Contents/LastModified") == 0) {
		l->cur.mtime = parse_iso8601(text);
	} else if (strcmp(path, "Contents") == 0) {
		struct objstore_list *p = l->page;

		if (!l->cur.key)
			return -EPROTO;
		if (p->count == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 64;
			struct objstore_entry *bigger = realloc(p->entries, cap * sizeof(*bigger));

			if (!bigger)
				return -ENOMEM;
			p->entries = bigger;
			l->cap = cap;
		}
		p->entries[p->count++] = l->cur;
		memset(&l->cur, 0, sizeof(l->cur));
	} else if (strcmp(path, "IsTruncated") == 0) {
		l->truncated = strcmp(text, "true") == 0;
	} else if (strcmp(path, "NextContinuationToken") == 0) {
		free(l->next);
		l->next = strdup(text);
		if (!l->next)
			return -ENOMEM;
	}
	return 0;
}

static int s3_list(struct objstore *s, const char *prefix, const char *token, size_t max,
		   struct objstore_list *page)
{
	struct store_s3 *s3 = to_s3(s);
	struct list_result l = {.page = page};
	struct s3_call call;
	struct http_response resp;
	char *query = NULL, *prefix_enc, *token_enc = NULL, what[300];
	int r;

	prefix_enc = sigv4_uri_encode(prefix, false);
	if (token)
		token_enc = sigv4_uri_encode(token, false);
	if (!prefix_enc || (token && !token_enc) ||
	    asprintf(&query, "list-type=2&max-keys=%zu&prefix=%s%s%s", max, prefix_enc,
		     token ? "&continuation-token=" : "", token ? token_enc : "") < 0) {
		free(prefix_enc);
		free(token_enc);
		return -ENOMEM;
	}
	free(prefix_enc);
	free(token_enc);
	r = s3_call_init(&call, s3, "GET", NULL, query);
	free(query);
	if (r < 0)
		return r;
	snprintf(what, sizeof(what), "list '%s'", prefix);
	r = s3_perform(&call, NULL, NULL, what, false, &resp);
	if (r == 0) {
		r = s3xml_walk(resp.body ? resp.body : "", resp.body_len, list_field, &l);
		if (r == -EPROTO) {
			objstore_error_set(r, resp.status, "MalformedAnswer",
					   "bad ListBucketResult");
			log_error("%s: malformed answer", what);
		}
	}
	free(l.cur.key);
	if (r == 0 && l.truncated) {
		if (!l.next) {
			r = -EPROTO;
			objstore_error_set(r, resp.status, "MalformedAnswer",
					   "truncated listing without NextContinuationToken");
			log_error("%s: truncated listing without a continuation token", what);
		} else {
			page->next_token = l.next;
			l.next = NULL;
		}
	}
	free(l.next);
	http_response_release(&resp);
	s3_call_release(&call);
	if (r < 0)
		objstore_list_release(page);
	return r;
}

static void s3_free(struct objstore *s)
{
	struct store_s3 *s3 = to_s3(s);

	http_client_free(s3->http);
	free(s3->scheme);
	free(s3->host);
	free(s3->bucket);
	free(s3->region);
	free(s3->access_key_id);
	if (s3->secret_access_key)
		explicit_bzero(s3->secret_access_key, strlen(s3->secret_access_key));
	free(s3->secret_access_key);
	pthread_mutex_destroy(&s3->cond_lock);
	free(s3);
}

static const struct objstore_ops s3_ops = {
    .name = "s3",
    .put = s3_put,
    .put_if = s3_put_if,
    .conditional = s3_conditional,
    .get = s3_get,
    .head = s3_head,
    .del = s3_del,
    .delete_many = s3_delete_many,
    .list = s3_list,
    .free = s3_free,
};

int store_s3_open(const struct s3_params *p, struct objstore **out, char *err, size_t errlen)
{
	struct http_client_options opt = {
	    .max_parallel = p->max_parallel ? p->max_parallel : 8,
	    .connect_timeout_s = p->connect_timeout_s,
	    .low_speed_timeout_s = p->low_speed_timeout_s,
	    .max_retries = p->max_retries,
	    .retry_base_ms = p->retry_base_ms,
	    .ca_file = p->ca_file,
	};
	const char *rest, *slash;
	struct store_s3 *s3;

	if (strncmp(p->endpoint, "http://", 7) == 0)
		rest = p->endpoint + 7;
	else if (strncmp(p->endpoint, "https://", 8) == 0)
		rest = p->endpoint + 8;
	else {
		snprintf(err, errlen, "endpoint '%s' must start with http:// or https://",
			 p->endpoint);
		return -EINVAL;
	}
	slash = strchr(rest, '/');
	if (slash && slash[1]) {
		snprintf(err, errlen, "endpoint '%s' must not have a path", p->endpoint);
		return -EINVAL;
	}
	if (!*rest || rest == slash) {
		snprintf(err, errlen, "endpoint '%s' has no host", p->endpoint);
		return -EINVAL;
	}
	s3 = calloc(1, sizeof(*s3));
	if (!s3)
		return -ENOMEM;
	s3->base.ops = &s3_ops;
	pthread_mutex_init(&s3->cond_lock, NULL);
	s3->cond = -1;
	s3->scheme = strndup(p->endpoint, (size_t)(rest - 3 - p->endpoint));
	s3->host = strndup(rest, slash ? (size_t)(slash - rest) : strlen(rest));
	s3->bucket = strdup(p->bucket);
	s3->region = strdup(p->region ? p->region : "us-east-1");
	s3->access_key_id = strdup(p->access_key_id);
	s3->secret_access_key = strdup(p->secret_access_key);
	s3->path_style = p->path_style;
	s3->sign_payload = p->sign_payload;
	if (p->upload_checksum)
		s3->checksum = strcmp(p->upload_checksum, "md5") == 0	   ? CHECKSUM_MD5
			       : strcmp(p->upload_checksum, "sha256") == 0 ? CHECKSUM_SHA256
									   : CHECKSUM_CRC32C;
	else if (strstr(p->endpoint, "backblazeb2.com"))
		s3->checksum = CHECKSUM_MD5; /* B2's S3 API documents Content-MD5 */
	else
		s3->checksum = CHECKSUM_CRC32C;
	s3->max_parallel = opt.max_parallel;
	s3->multipart_part_size = p->multipart_part_size ? p->multipart_part_size : 16 << 20;
	s3->multipart_threshold = p->multipart_threshold;
	s3->http = http_client_new(&opt);
	if (!s3->scheme || !s3->host || !s3->bucket || !s3->region || !s3->access_key_id ||
	    !s3->secret_access_key || !s3->http ||
	    asprintf(&s3->base.describe, "s3 %s bucket %s (region %s, %s, %s checksums%s)",
		     p->endpoint, p->bucket, s3->region,
		     p->path_style ? "path-style" : "virtual-hosted",
		     s3->checksum == CHECKSUM_MD5      ? "md5"
		     : s3->checksum == CHECKSUM_SHA256 ? "sha256"
						       : "crc32c",
		     p->sign_payload ? ", signed payloads" : "") < 0) {
		s3->base.describe = NULL;
		s3_free(&s3->base);
		return -ENOMEM;
	}
	*out = &s3->base;
	return 0;
}
