/*
 * test_sigv4.c - SigV4 against AWS's published examples: the Signature
 * Version 4 test suite (get-vanilla, post-vanilla, ...; credentials
 * AKIDEXAMPLE at 20150830T123600Z, service "service"), the documented
 * signing-key example, and the S3 "GET object with a range" example.
 */
#include "store/sigv4.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>

#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static const struct sigv4_credentials suite_cred = {
    .access_key_id = "AKIDEXAMPLE",
    .secret_access_key = SUITE_SECRET,
    .region = "us-east-1",
    .service = "service",
};

static const struct sigv4_header suite_headers[] = {
    {"Host", "example.amazonaws.com"},
    {"X-Amz-Date", SUITE_DATE},
};

static void check_suite(const char *method, const char *path, const char *query,
			const char *want_sig)
{
	struct sigv4_request req = {
	    .method = method,
	    .path = path,
	    .query = query,
	    .headers = suite_headers,
	    .nheaders = 2,
	    .payload_hash = EMPTY_SHA256,
	};
	char auth[512], want[512];

	TEST_ASSERT_EQ_INT(sigv4_authorization(&req, &suite_cred, SUITE_DATE, auth, sizeof(auth)),
			   0);
	snprintf(want, sizeof(want),
		 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
		 "aws4_request, SignedHeaders=host;x-amz-date, Signature=%s",
		 want_sig);
	TEST_ASSERT_EQ_STR(auth, want);
}

static void test_get_vanilla(void)
{
	check_suite("GET", "/", "",
		    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

static void test_post_vanilla(void)
{
	check_suite("POST", "/", NULL,
		    "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

static void test_get_vanilla_empty_query_key(void)
{
	check_suite("GET", "/", "Param1=value1",
		    "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb");
}

static void test_get_vanilla_canonical_request(void)
{
	struct sigv4_request req = {
	    .method = "GET",
	    .path = "/",
	    .headers = suite_headers,
	    .nheaders = 2,
	    .payload_hash = EMPTY_SHA256,
	};
	char *creq;

	TEST_ASSERT_EQ_INT(sigv4_canonical_request(&req, &creq), 0);
	TEST_ASSERT_EQ_STR(creq, "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:" SUITE_DATE
				 "\n\nhost;x-amz-date\n" EMPTY_SHA256);
	free(creq);
}

static void test_get_utf8_canonical_path(void)
{
	char *path = sigv4_uri_encode("/\xe1\x88\xb4", true);

	TEST_ASSERT_EQ_STR(path, "/%E1%88%B4");
	free(path);
}

static void test_query_sorting_and_header_trimming(void)
{
	static const struct sigv4_header h[] = {
	    {"My-Header1", "  value1   with  spaces  "},
	    {"host", "example.amazonaws.com"},
	};
	struct sigv4_request req = {
	    .method = "GET",
	    .path = "/",
	    .query = "b=2&a=2&a=1&c",
	    .headers = h,
	    .nheaders = 2,
	    .payload_hash = "UNSIGNED-PAYLOAD",
	};
	char *creq;

	TEST_ASSERT_EQ_INT(sigv4_canonical_request(&req, &creq), 0);
	TEST_ASSERT_EQ_STR(creq,
			   "GET\n/\na=1&a=2&b=2&c=\nhost:example.amazonaws.com\n"
			   "my-header1:value1 with spaces\n\nhost;my-header1\nUNSIGNED-PAYLOAD");
	free(creq);
}

static void hex(const unsigned char *k, char *out)
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", k[i]);
}

static void test_signing_key_examples(void)
{
	unsigned char key[32];
	char h[65];

	/* The documented derivation example (iam, 20150830). */
	sigv4_signing_key(SUITE_SECRET, "20150830", "us-east-1", "iam", key);
	hex(key, h);
	TEST_ASSERT_EQ_STR(h, "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
	/* The older documented example (iam, 20120215). */
	sigv4_signing_key(SUITE_SECRET, "20120215", "us-east-1", "iam", key);
	hex(key, h);
	TEST_ASSERT_EQ_STR(h, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

static void test_s3_get_object_range_example(void)
{
	static const struct sigv4_header h[] = {
	    {"Host", "examplebucket.s3.amazonaws.com"},
	    {"Range", "bytes=0-9"},
	    {"x-amz-content-sha256", EMPTY_SHA256},
	    {"x-amz-date", "20130524T000000Z"},
	};
	static const struct sigv4_credentials cred = {
	    .access_key_id = "AKIAIOSFODNN7EXAMPLE",
	    .secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	    .region = "us-east-1",
	    .service = "s3",
	};
	struct sigv4_request req = {
	    .method = "GET",
	    .path = "/test.txt",
	    .headers = h,
	    .nheaders = 4,
	    .payload_hash = EMPTY_SHA256,
	};
	char auth[512];

	TEST_ASSERT_EQ_INT(sigv4_authorization(&req, &cred, "20130524T000000Z", auth, sizeof(auth)),
			   0);
	TEST_ASSERT_EQ_STR(
	    auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
		  "us-east-1/s3/aws4_request, "
		  "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
		  "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void test_uri_encode(void)
{
	char *a = sigv4_uri_encode("a b/c+d~e_f.g-h", true);
	char *b = sigv4_uri_encode("a b/c=&", false);

	TEST_ASSERT_EQ_STR(a, "a%20b/c%2Bd~e_f.g-h");
	TEST_ASSERT_EQ_STR(b, "a%20b%2Fc%3D%26");
	free(a);
	free(b);
}

static void test_amz_date(void)
{
	char d[17];

	sigv4_amz_date(1440938160, d);
	TEST_ASSERT_EQ_STR(d, SUITE_DATE);
}

static void test_too_small_buffer(void)
{
	struct sigv4_request req = {
	    .method = "GET",
	    .path = "/",
	    .headers = suite_headers,
	    .nheaders = 2,
	    .payload_hash = EMPTY_SHA256,
	};
	char auth[20];

	TEST_ASSERT_EQ_INT(sigv4_authorization(&req, &suite_cred, SUITE_DATE, auth, sizeof(auth)),
			   -ENAMETOOLONG);
}

int main(void)
{
	TEST_RUN(test_get_vanilla);
	TEST_RUN(test_post_vanilla);
	TEST_RUN(test_get_vanilla_empty_query_key);
	TEST_RUN(test_get_vanilla_canonical_request);
	TEST_RUN(test_get_utf8_canonical_path);
	TEST_RUN(test_query_sorting_and_header_trimming);
	TEST_RUN(test_signing_key_examples);
	TEST_RUN(test_s3_get_object_range_example);
	TEST_RUN(test_uri_encode);
	TEST_RUN(test_amz_date);
	TEST_RUN(test_too_small_buffer);
	return TEST_MAIN_END();
}
