/*
 * test_objstore.c - the object-store interface on the file backend (every
 * call, pagination with small pages, prefixes, sinks), key validation, the
 * S3 XML reader, and the one HTTP-failure-to-errno mapping.
 */
#include "cli/config.h"
#include "store/crc32c.h"
#include "store/http.h"
#include "store/objstore.h"
#include "store/s3xml.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/zero-objstore-test-XXXXXX";

static struct objstore *open_file_store(const char *prefix)
{
	struct config cfg;
	struct objstore *s = NULL;
	char err[256], text[512];

	snprintf(text, sizeof(text), "backend: file\nbucketDir: %s/bucket\nprefix: %s\n", dir,
		 prefix);
	TEST_ASSERT_EQ_INT(config_parse("t.yml", text, strlen(text), &cfg, err, sizeof(err)), 0);
	TEST_ASSERT_EQ_INT(objstore_open_from_config(&cfg, &s, err, sizeof(err)), 0);
	config_release(&cfg);
	return s;
}

static void test_put_get_head_delete(void)
{
	struct objstore *s = open_file_store("");
	struct objstore_info info;
	char *buf;
	size_t len;

	TEST_ASSERT_EQ_STR(objstore_backend_name(s), "file");
	TEST_ASSERT_EQ_INT(objstore_put(s, "a/b/c", "hello world", 11), 0);
	TEST_ASSERT_EQ_INT(objstore_get(s, "a/b/c", 0, UINT64_MAX, &buf, &len), 0);
	TEST_ASSERT_EQ_INT(len, 11);
	TEST_ASSERT(memcmp(buf, "hello world", 11) == 0);
	free(buf);
	TEST_ASSERT_EQ_INT(objstore_head(s, "a/b/c", &info), 0);
	TEST_ASSERT_EQ_INT(info.size, 11);
	TEST_ASSERT(info.mtime > 0);
	/* Ranges: inside, running past the end, at and after the end. */
	TEST_ASSERT_EQ_INT(objstore_get(s, "a/b/c", 6, 5, &buf, &len), 0);
	TEST_ASSERT(len == 5 && memcmp(buf, "world", 5) == 0);
	free(buf);
	TEST_ASSERT_EQ_INT(objstore_get(s, "a/b/c", 9, 100, &buf, &len), 0);
	TEST_ASSERT(len == 2 && memcmp(buf, "ld", 2) == 0);
	free(buf);
	TEST_ASSERT_EQ_INT(objstore_get(s, "a/b/c", 11, UINT64_MAX, &buf, &len), 0);
	TEST_ASSERT_EQ_INT(len, 0);
	free(buf);
	TEST_ASSERT_EQ_INT(objstore_get(s, "a/b/c", 50, 1, &buf, &len), 0);
	TEST_ASSERT_EQ_INT(len, 0);
	free(buf);
	/* "a/b" and "a/b/c" are different objects. */
	TEST_ASSERT_EQ_INT(objstore_put(s, "a/b", "x", 1), 0);
	TEST_ASSERT_EQ_INT(objstore_head(s, "a/b", &info), 0);
	TEST_ASSERT_EQ_INT(info.size, 1);
	TEST_ASSERT_EQ_INT(objstore_head(s, "a", &info), -ENOENT);
	TEST_ASSERT_EQ_INT(objstore_delete(s, "a/b/c"), 0);
	TEST_ASSERT_EQ_INT(objstore_get(s, "a/b/c", 0, UINT64_MAX, &buf, &len), -ENOENT);
	TEST_ASSERT(buf == NULL);
	TEST_ASSERT_EQ_INT(objstore_last_error()->err, -ENOENT);
	TEST_ASSERT_EQ_INT(objstore_head(s, "a/b/c", &info), -ENOENT);
	TEST_ASSERT_EQ_INT(objstore_delete(s, "a/b/c"), 0); /* absent: fine */
	TEST_ASSERT_EQ_INT(objstore_delete(s, "a/b"), 0);
	objstore_free(s);
}

/* Rule 6 on the file backend: a compare-and-swap, atomic among conditional puts. */
static void test_conditional_put(void)
{
	struct objstore *s = open_file_store("cond/");
	char t1[OBJSTORE_ETAG_MAX], t2[OBJSTORE_ETAG_MAX], t3[OBJSTORE_ETAG_MAX];
	char *buf;
	size_t len;

	TEST_ASSERT(objstore_conditional(s));
	/* absent: If-None-Match lands once, then refuses */
	TEST_ASSERT_EQ_INT(objstore_put_if(s, "k", "one", 3, NULL, t1), 0);
	TEST_ASSERT(t1[0] != '\0');
	TEST_ASSERT_EQ_INT(objstore_put_if(s, "k", "two", 3, NULL, t2), -EEXIST);
	TEST_ASSERT_EQ_INT(objstore_last_error()->err, -EEXIST);
	/* the tag a read hands back is the tag of the put */
	TEST_ASSERT_EQ_INT(objstore_get_tagged(s, "k", 1024, &buf, &len, t3), 0);
	TEST_ASSERT(len == 3 && memcmp(buf, "one", 3) == 0);
	free(buf);
	TEST_ASSERT_EQ_STR(t3, t1);
	/* If-Match: the current tag lands, the old one then refuses */
	TEST_ASSERT_EQ_INT(objstore_put_if(s, "k", "two", 3, t1, t2), 0);
	TEST_ASSERT(strcmp(t2, t1) != 0);
	TEST_ASSERT_EQ_INT(objstore_put_if(s, "k", "three", 5, t1, t3), -EEXIST);
	/* a plain put in between changes the tag: the holder of t2 is refused */
	TEST_ASSERT_EQ_INT(objstore_put(s, "k", "four", 4), 0);
	TEST_ASSERT_EQ_INT(objstore_put_if(s, "k", "five", 4, t2, t3), -EEXIST);
	TEST_ASSERT_EQ_INT(objstore_get(s, "k", 0, UINT64_MAX, &buf, &len), 0);
	TEST_ASSERT(len == 4 && memcmp(buf, "four", 4) == 0);
	free(buf);
	/* If-Match on a key that is gone refuses; a tag that is not one is refused */
	TEST_ASSERT_EQ_INT(objstore_delete(s, "k"), 0);
	TEST_ASSERT_EQ_INT(objstore_put_if(s, "k", "six", 3, t2, t3), -EEXIST);
	TEST_ASSERT_EQ_INT(objstore_put_if(s, "k", "six", 3, "", t3), -EINVAL);
	/* a tagged read bounded by MAX */
	TEST_ASSERT_EQ_INT(objstore_put(s, "big", "0123456789", 10), 0);
	TEST_ASSERT_EQ_INT(objstore_get_tagged(s, "big", 4, &buf, &len, t3), -EFBIG);
	TEST_ASSERT_EQ_INT(objstore_delete(s, "big"), 0);
	objstore_free(s);
}

static void test_put_fd_and_sink_fd(void)
{
	struct objstore *s = open_file_store("fd/");
	struct objstore_sink sink = {.fd = -1};
	char path[512], data[100000], back[100000];
	int fd;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	snprintf(path, sizeof(path), "%s/src", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	TEST_ASSERT(fd >= 0);
	TEST_ASSERT_EQ_INT(write(fd, data, sizeof(data)), (long long)sizeof(data));
	/* Upload bytes [1000, 51000) of the file. */
	TEST_ASSERT_EQ_INT(objstore_put_fd(s, "obj", fd, 1000, 50000), 0);
	/* Download into the file at offset 0 via an fd sink. */
	sink.fd = fd;
	TEST_ASSERT_EQ_INT(objstore_get_sink(s, "obj", 0, UINT64_MAX, &sink), 0);
	TEST_ASSERT_EQ_INT(sink.written, 50000);
	TEST_ASSERT_EQ_INT(pread(fd, back, 50000, 0), 50000);
	TEST_ASSERT(memcmp(back, data + 1000, 50000) == 0);
	/* A bounded memory sink refuses more than its maximum. */
	memset(&sink, 0, sizeof(sink));
	sink.fd = -1;
	sink.max = 100;
	TEST_ASSERT_EQ_INT(objstore_get_sink(s, "obj", 0, UINT64_MAX, &sink), -EFBIG);
	free(sink.buf);
	/* A source shorter than announced fails and leaves no object. */
	TEST_ASSERT_EQ_INT(objstore_put_fd(s, "short", fd, 0, sizeof(data) + 10), -EIO);
	{
		struct objstore_info info;

		TEST_ASSERT_EQ_INT(objstore_head(s, "short", &info), -ENOENT);
	}
	close(fd);
	unlink(path);
	TEST_ASSERT_EQ_INT(objstore_delete(s, "obj"), 0);
	objstore_free(s);
}

struct collect {
	char keys[64][32];
	size_t n;
};

static int collect_key(void *ctx, const struct objstore_entry *e)
{
	struct collect *c = ctx;

	if (c->n < 64)
		snprintf(c->keys[c->n++], sizeof(c->keys[0]), "%s", e->key);
	return 0;
}

static void test_list_pages_prefix_and_delete_many(void)
{
	struct objstore *s = open_file_store("pfx/");
	struct objstore *root = open_file_store("");
	struct objstore_list page;
	struct collect all = {.n = 0};
	const char *keys[25];
	char names[25][16];
	char *token = NULL;
	size_t seen = 0;

	for (int i = 0; i < 25; i++) {
		snprintf(names[i], sizeof(names[i]), "k/%02d", 24 - i);
		keys[i] = names[i];
		TEST_ASSERT_EQ_INT(objstore_put(s, names[i], "v", 1), 0);
	}
	TEST_ASSERT_EQ_INT(objstore_put(s, "other", "", 0), 0);
	/* Pages of 7: 7 + 7 + 7 + 4, in order, keys relative to the prefix. */
	do {
		TEST_ASSERT_EQ_INT(objstore_list(s, "k/", token, 7, &page), 0);
		free(token);
		token = page.next_token;
		page.next_token = NULL;
		for (size_t i = 0; i < page.count; i++) {
			char want[16];

			snprintf(want, sizeof(want), "k/%02zu", seen + i);
			TEST_ASSERT_EQ_STR(page.entries[i].key, want);
			TEST_ASSERT_EQ_INT(page.entries[i].size, 1);
		}
		seen += page.count;
		objstore_list_release(&page);
	} while (token);
	TEST_ASSERT_EQ_INT(seen, 25);
	/* The prefix store sees only its own keys; the root store sees them prefixed. */
	TEST_ASSERT_EQ_INT(objstore_list_all(s, "", collect_key, &all), 0);
	TEST_ASSERT_EQ_INT(all.n, 26);
	TEST_ASSERT_EQ_STR(all.keys[25], "other");
	all.n = 0;
	TEST_ASSERT_EQ_INT(objstore_list_all(root, "pfx/o", collect_key, &all), 0);
	TEST_ASSERT_EQ_INT(all.n, 1);
	TEST_ASSERT_EQ_STR(all.keys[0], "pfx/other");
	/* A prefix that matches nothing, and one naming a missing directory. */
	TEST_ASSERT_EQ_INT(objstore_list(s, "zzz", NULL, 10, &page), 0);
	TEST_ASSERT_EQ_INT(page.count, 0);
	TEST_ASSERT(page.next_token == NULL);
	objstore_list_release(&page);
	TEST_ASSERT_EQ_INT(objstore_list(s, "no/such/dir/", NULL, 10, &page), 0);
	TEST_ASSERT_EQ_INT(page.count, 0);
	objstore_list_release(&page);

	TEST_ASSERT_EQ_INT(objstore_delete_many(s, keys, 25), 0);
	TEST_ASSERT_EQ_INT(objstore_delete(s, "other"), 0);
	TEST_ASSERT_EQ_INT(objstore_list(root, "", NULL, 1000, &page), 0);
	TEST_ASSERT_EQ_INT(page.count, 0);
	objstore_list_release(&page);
	objstore_free(s);
	objstore_free(root);
}

static void test_key_validation(void)
{
	struct objstore *s = open_file_store("");
	char longkey[1100];

	TEST_ASSERT(objstore_key_valid("a"));
	TEST_ASSERT(objstore_key_valid("zero/chunks/ab/0123"));
	TEST_ASSERT(objstore_key_valid("with space/and+plus"));
	TEST_ASSERT(objstore_key_valid(".hidden/..dots"));
	TEST_ASSERT(!objstore_key_valid(""));
	TEST_ASSERT(!objstore_key_valid(NULL));
	TEST_ASSERT(!objstore_key_valid("/abs"));
	TEST_ASSERT(!objstore_key_valid("a//b"));
	TEST_ASSERT(!objstore_key_valid("a/"));
	TEST_ASSERT(!objstore_key_valid("a/./b"));
	TEST_ASSERT(!objstore_key_valid("a/.."));
	TEST_ASSERT(!objstore_key_valid("."));
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	TEST_ASSERT(!objstore_key_valid(longkey));
	TEST_ASSERT_EQ_INT(objstore_put(s, "a/../b", "x", 1), -EINVAL);
	TEST_ASSERT_EQ_INT(objstore_delete(s, ""), -EINVAL);
	/* The file backend's own limit: components of at most 253 bytes. */
	longkey[300] = '\0';
	TEST_ASSERT_EQ_INT(objstore_put(s, longkey, "x", 1), -ENAMETOOLONG);
	objstore_free(s);
}

static void test_file_bucket_layout_ignores_strays(void)
{
	struct objstore *s = open_file_store("");
	struct objstore_list page;
	char path[512];
	int fd;

	TEST_ASSERT_EQ_INT(objstore_put(s, "d/obj", "x", 1), 0);
	/* A temporary file left by a crash is not an object. */
	snprintf(path, sizeof(path), "%s/bucket/d.d/.zero-tmp.abcdef", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	TEST_ASSERT(fd >= 0);
	close(fd);
	TEST_ASSERT_EQ_INT(objstore_list(s, "", NULL, 1000, &page), 0);
	TEST_ASSERT_EQ_INT(page.count, 1);
	TEST_ASSERT_EQ_STR(page.entries[0].key, "d/obj");
	objstore_list_release(&page);
	/* A fresh one stays (a put may be writing it); a day-old one goes. */
	TEST_ASSERT(access(path, F_OK) == 0);
	{
		struct timespec old[2] = {{.tv_sec = time(NULL) - 2 * 86400},
					  {.tv_sec = time(NULL) - 2 * 86400}};

		TEST_ASSERT_EQ_INT(utimensat(AT_FDCWD, path, old, 0), 0);
	}
	TEST_ASSERT_EQ_INT(objstore_list(s, "", NULL, 1000, &page), 0);
	objstore_list_release(&page);
	TEST_ASSERT(access(path, F_OK) != 0);
	TEST_ASSERT_EQ_INT(objstore_delete(s, "d/obj"), 0);
	/* The emptied directory went with it. */
	snprintf(path, sizeof(path), "%s/bucket/d.d", dir);
	TEST_ASSERT(access(path, F_OK) != 0);
	objstore_free(s);
}

struct xml_seen {
	char keys[4][32];
	int nkeys;
	char token[32];
};

static int xml_cb(void *ctx, const char *path, const char *text)
{
	struct xml_seen *x = ctx;

	if (strcmp(path, "ListBucketResult/Contents/Key") == 0 && x->nkeys < 4)
		snprintf(x->keys[x->nkeys++], sizeof(x->keys[0]), "%s", text);
	if (strcmp(path, "ListBucketResult/NextContinuationToken") == 0)
		snprintf(x->token, sizeof(x->token), "%s", text);
	return 0;
}

static void test_s3xml(void)
{
	static const char doc[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	    "<Name>b</Name><IsTruncated>true</IsTruncated>"
	    "<Contents><Key>a&amp;b</Key><Size>3</Size></Contents>"
	    "<Contents><Key>c &lt;d&gt;</Key><Size>4</Size></Contents>"
	    "<NextContinuationToken>tok/en=</NextContinuationToken>"
	    "</ListBucketResult>";
	struct xml_seen x;
	char code[64], msg[128], esc[64];

	memset(&x, 0, sizeof(x));
	TEST_ASSERT_EQ_INT(s3xml_walk(doc, strlen(doc), xml_cb, &x), 0);
	TEST_ASSERT_EQ_INT(x.nkeys, 2);
	TEST_ASSERT_EQ_STR(x.keys[0], "a&b");
	TEST_ASSERT_EQ_STR(x.keys[1], "c <d>");
	TEST_ASSERT_EQ_STR(x.token, "tok/en=");
	TEST_ASSERT_EQ_INT(s3xml_walk("<a><b></a>", 10, xml_cb, &x), -EPROTO);

	s3xml_error_fields("<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>", 60, code,
			   sizeof(code), msg, sizeof(msg));
	TEST_ASSERT_EQ_STR(code, "NoSuchKey");
	TEST_ASSERT_EQ_STR(msg, "gone");
	{
		/* B2's JSON errors (the length is the whole document: jansson reads no less) */
		const char *j =
		    "{\"status\": 401, \"code\": \"unauthorized\", \"message\": \"bad \\\"key\\\"\"}";
		s3xml_error_fields(j, strlen(j), code, sizeof(code), msg, sizeof(msg));
	}
	TEST_ASSERT_EQ_STR(code, "unauthorized");
	TEST_ASSERT_EQ_STR(msg, "bad \"key\"");
	s3xml_error_fields("", 0, code, sizeof(code), msg, sizeof(msg));
	TEST_ASSERT_EQ_STR(code, "");
	s3xml_error_fields("<html>not xml", 13, code, sizeof(code), msg, sizeof(msg));
	TEST_ASSERT_EQ_STR(code, "");

	TEST_ASSERT_EQ_INT(s3xml_escape("a<b>&\"'", esc, sizeof(esc)), 27);
	TEST_ASSERT_EQ_STR(esc, "a&lt;b&gt;&amp;&quot;&apos;");
	TEST_ASSERT_EQ_INT(s3xml_escape("a&b", esc, 3), 7);
	TEST_ASSERT_EQ_STR(esc, "a");
}

static void test_http_error_mapping(void)
{
	TEST_ASSERT_EQ_INT(http_map_error(200, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(http_map_error(206, NULL, 0), 0);
	TEST_ASSERT_EQ_INT(http_map_error(404, "NoSuchKey", 0), -ENOENT);
	TEST_ASSERT_EQ_INT(http_map_error(404, "NoSuchBucket", 0), -ENXIO);
	TEST_ASSERT_EQ_INT(http_map_error(403, "SignatureDoesNotMatch", 0), -EACCES);
	TEST_ASSERT_EQ_INT(http_map_error(403, "InvalidAccessKeyId", 0), -EACCES);
	TEST_ASSERT_EQ_INT(http_map_error(401, "unauthorized", 0), -EACCES);
	TEST_ASSERT_EQ_INT(http_map_error(400, "InvalidArgument", 0), -EINVAL);
	TEST_ASSERT_EQ_INT(http_map_error(409, "BucketNotEmpty", 0), -EBUSY);
	TEST_ASSERT_EQ_INT(http_map_error(413, "EntityTooLarge", 0), -EFBIG);
	TEST_ASSERT_EQ_INT(http_map_error(416, "InvalidRange", 0), -ERANGE);
	TEST_ASSERT_EQ_INT(http_map_error(429, "", 0), -EAGAIN);
	TEST_ASSERT_EQ_INT(http_map_error(503, "SlowDown", 0), -EAGAIN);
	TEST_ASSERT_EQ_INT(http_map_error(500, "InternalError", 0), -EIO);
	TEST_ASSERT_EQ_INT(http_map_error(301, "PermanentRedirect", 0), -EREMOTE);
	/* Transport failures, by libcurl's numbers (stable ABI). */
	TEST_ASSERT_EQ_INT(http_map_error(0, NULL, 7 /* COULDNT_CONNECT */), -ECONNREFUSED);
	TEST_ASSERT_EQ_INT(http_map_error(0, NULL, 6 /* COULDNT_RESOLVE_HOST */), -EHOSTUNREACH);
	TEST_ASSERT_EQ_INT(http_map_error(0, NULL, 28 /* OPERATION_TIMEDOUT */), -ETIMEDOUT);
	TEST_ASSERT_EQ_INT(http_map_error(0, NULL, 56 /* RECV_ERROR */), -ECONNRESET);
	TEST_ASSERT_EQ_INT(http_map_error(0, NULL, 18 /* PARTIAL_FILE */), -ECONNRESET);
	TEST_ASSERT_EQ_INT(http_map_error(0, NULL, 35 /* SSL_CONNECT_ERROR */), -EPROTO);
	TEST_ASSERT_EQ_INT(http_map_error(0, NULL, 60 /* PEER_FAILED_VERIFICATION */), -EPROTO);
}

static void test_crc32c(void)
{
	unsigned char buf[4099];
	uint32_t seed = 12345;

	/* The check value of CRC-32C, and RFC 3720's (iSCSI) examples. */
	TEST_ASSERT_EQ_INT(crc32c_update(0, "123456789", 9), 0xe3069283);
	TEST_ASSERT_EQ_INT(crc32c_update_table(0, "123456789", 9), 0xe3069283);
	memset(buf, 0, 32);
	TEST_ASSERT_EQ_INT(crc32c_update(0, buf, 32), 0x8a9136aa);
	memset(buf, 0xff, 32);
	TEST_ASSERT_EQ_INT(crc32c_update(0, buf, 32), 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)i;
	TEST_ASSERT_EQ_INT(crc32c_update(0, buf, 32), 0x46dd794e);
	TEST_ASSERT_EQ_INT(crc32c_update(0, "", 0), 0);
	/* Hardware and table agree on every length and alignment, in pieces or whole. */
	for (size_t i = 0; i < sizeof(buf); i++) {
		seed = seed * 1103515245 + 12345;
		buf[i] = (unsigned char)(seed >> 16);
	}
	for (size_t off = 0; off < 9; off++) {
		for (size_t len = 0; len + off <= sizeof(buf); len += 37) {
			uint32_t whole = crc32c_update(0, buf + off, len);
			uint32_t split = crc32c_update(crc32c_update(0, buf + off, len / 3),
						       buf + off + len / 3, len - len / 3);

			TEST_ASSERT_EQ_INT(whole, crc32c_update_table(0, buf + off, len));
			TEST_ASSERT_EQ_INT(whole, split);
		}
	}
}

static void test_open_errors(void)
{
	struct config cfg;
	struct objstore *s = NULL;
	char err[512];
	const char *text = "backend: s3\nbucket: b\n";

	TEST_ASSERT_EQ_INT(config_parse("t.yml", text, strlen(text), &cfg, err, sizeof(err)), 0);
	TEST_ASSERT_EQ_INT(objstore_open_from_config(&cfg, &s, err, sizeof(err)), -EINVAL);
	TEST_ASSERT(strstr(err, "needs accessKeyId and secretAccessKey") != NULL);
	config_release(&cfg);
	text = "backend: s3\naccessKeyId: a\nsecretAccessKey: b\n";
	TEST_ASSERT_EQ_INT(config_parse("t.yml", text, strlen(text), &cfg, err, sizeof(err)), 0);
	TEST_ASSERT_EQ_INT(objstore_open_from_config(&cfg, &s, err, sizeof(err)), -EINVAL);
	TEST_ASSERT(strstr(err, "key 'bucket'") != NULL);
	config_release(&cfg);
	text = "backend: b2\naccountId: a\n";
	TEST_ASSERT_EQ_INT(config_parse("t.yml", text, strlen(text), &cfg, err, sizeof(err)), 0);
	TEST_ASSERT_EQ_INT(objstore_open_from_config(&cfg, &s, err, sizeof(err)), -EINVAL);
	TEST_ASSERT(strstr(err, "needs accountId, applicationKey and bucketId") != NULL);
	config_release(&cfg);
	/* Default AWS endpoint: opens without contacting anyone. */
	text = "backend: s3\nbucket: b\nregion: eu-west-1\naccessKeyId: a\nsecretAccessKey: b\n";
	TEST_ASSERT_EQ_INT(config_parse("t.yml", text, strlen(text), &cfg, err, sizeof(err)), 0);
	TEST_ASSERT_EQ_INT(objstore_open_from_config(&cfg, &s, err, sizeof(err)), 0);
	TEST_ASSERT(strstr(objstore_describe(s), "https://s3.eu-west-1.amazonaws.com") != NULL);
	TEST_ASSERT(strstr(objstore_describe(s), "virtual-hosted") != NULL);
	objstore_free(s);
	config_release(&cfg);
}

int main(void)
{
	char cmd[128];
	int r;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	TEST_RUN(test_put_get_head_delete);
	TEST_RUN(test_conditional_put);
	TEST_RUN(test_put_fd_and_sink_fd);
	TEST_RUN(test_list_pages_prefix_and_delete_many);
	TEST_RUN(test_key_validation);
	TEST_RUN(test_file_bucket_layout_ignores_strays);
	TEST_RUN(test_s3xml);
	TEST_RUN(test_http_error_mapping);
	TEST_RUN(test_crc32c);
	TEST_RUN(test_open_errors);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	r = system(cmd);
	(void)r;
	return TEST_MAIN_END();
}
