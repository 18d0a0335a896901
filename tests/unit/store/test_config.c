/*
 * test_config.c - the configuration parser: every key type, defaults,
 * backend inference, environment fallbacks, and an error naming file, line
 * and key for each kind of mistake.
 */
#include "cli/config.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char err[1024];

static int parse(const char *text, struct config *cfg)
{
	err[0] = '\0';
	return config_parse("c.yml", text, strlen(text), cfg, err, sizeof(err));
}

/* TEXT must fail with an error message containing WANT. */
static void expect_error(const char *text, const char *want)
{
	struct config cfg;
	int r = parse(text, &cfg);

	TEST_ASSERT_EQ_INT(r, -EINVAL);
	if (!strstr(err, want)) {
		fprintf(stderr, "for %s\n  error: %s\n  wanted: %s\n", text, err, want);
		TEST_ASSERT(0);
	}
	if (r == 0)
		config_release(&cfg);
}

static void test_empty_file_gives_defaults(void)
{
	struct config cfg;

	TEST_ASSERT_EQ_INT(parse("", &cfg), 0);
	TEST_ASSERT_EQ_STR(cfg.backend, "file");
	TEST_ASSERT_EQ_STR(cfg.prefix, "");
	TEST_ASSERT(cfg.path_style);
	TEST_ASSERT_EQ_INT(cfg.max_parallel_transfers, 8);
	TEST_ASSERT_EQ_INT(cfg.multipart_threshold, 512 << 20);
	TEST_ASSERT_EQ_INT(cfg.multipart_part_size, 64 << 20);
	TEST_ASSERT_EQ_INT(cfg.max_retries, 5);
	TEST_ASSERT(cfg.target_disk_usage == 0);
	TEST_ASSERT(cfg.access_key_id == NULL);
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("# only a comment\n", &cfg), 0);
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("~\n", &cfg), 0);
	config_release(&cfg);
}

static void test_existing_zero_keys(void)
{
	struct config cfg;

	TEST_ASSERT_EQ_INT(parse("accountId: 0012345abcde\n"
				 "applicationKey: K001secret\n"
				 "bucketId: 4a48fe8875c6214145260818\n"
				 "sqliteFileLocation: /var/lib/zero/meta.db\n"
				 "targetDiskUsage: 2.5\n",
				 &cfg),
			   0);
	TEST_ASSERT_EQ_STR(cfg.backend, "b2"); /* inferred from the Backblaze keys */
	TEST_ASSERT_EQ_STR(cfg.account_id, "0012345abcde");
	TEST_ASSERT_EQ_STR(cfg.application_key, "K001secret");
	TEST_ASSERT_EQ_STR(cfg.bucket_id, "4a48fe8875c6214145260818");
	TEST_ASSERT_EQ_STR(cfg.sqlite_file_location, "/var/lib/zero/meta.db");
	TEST_ASSERT(cfg.target_disk_usage == 2500000000ULL);
	config_release(&cfg);

	/* Numeric-looking ids stay strings; whole GB numbers are fine. */
	TEST_ASSERT_EQ_INT(parse("bucketId: 12345\ntargetDiskUsage: 100\n", &cfg), 0);
	TEST_ASSERT_EQ_STR(cfg.bucket_id, "12345");
	TEST_ASSERT(cfg.target_disk_usage == 100000000000ULL);
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("targetDiskUsage: 0.25\n", &cfg), 0);
	TEST_ASSERT(cfg.target_disk_usage == 250000000ULL);
	config_release(&cfg);
	/* or a size with its unit */
	TEST_ASSERT_EQ_INT(parse("targetDiskUsage: 64MiB\n", &cfg), 0);
	TEST_ASSERT(cfg.target_disk_usage == 64ULL << 20);
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("targetDiskUsage: 2 GB\n", &cfg), 0);
	TEST_ASSERT(cfg.target_disk_usage == 2000000000ULL);
	config_release(&cfg);
}

static void test_s3_keys(void)
{
	struct config cfg;

	TEST_ASSERT_EQ_INT(parse("endpoint: https://s3.example.com:9000/\n"
				 "bucket: my-bucket\n"
				 "region: eu-west-3\n"
				 "prefix: /fs/one//\n"
				 "accessKeyId: AKID\n"
				 "secretAccessKey: \"se cret\"\n"
				 "caFile: /etc/zero/ca.pem\n"
				 "pathStyle: false\n",
				 &cfg),
			   0);
	TEST_ASSERT_EQ_STR(cfg.backend, "s3"); /* inferred from bucket/endpoint */
	TEST_ASSERT_EQ_STR(cfg.endpoint, "https://s3.example.com:9000");
	TEST_ASSERT_EQ_STR(cfg.bucket, "my-bucket");
	TEST_ASSERT_EQ_STR(cfg.region, "eu-west-3");
	TEST_ASSERT_EQ_STR(cfg.prefix, "fs/one/");
	TEST_ASSERT_EQ_STR(cfg.access_key_id, "AKID");
	TEST_ASSERT_EQ_STR(cfg.secret_access_key, "se cret");
	TEST_ASSERT_EQ_STR(cfg.ca_file, "/etc/zero/ca.pem");
	TEST_ASSERT(!cfg.path_style);
	config_release(&cfg);
}

static void test_backend_named_explicitly(void)
{
	struct config cfg;

	TEST_ASSERT_EQ_INT(parse("backend: file\nbucket: ignored\nbucketDir: /srv/b\n", &cfg), 0);
	TEST_ASSERT_EQ_STR(cfg.backend, "file");
	TEST_ASSERT_EQ_STR(cfg.bucket_dir, "/srv/b");
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("backend: s3\n", &cfg), 0);
	TEST_ASSERT_EQ_STR(cfg.backend, "s3");
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("backend: b2\n", &cfg), 0);
	config_release(&cfg);
	expect_error("backend: gcs\n", "c.yml:1: key 'backend': unknown backend 'gcs'");
}

static void test_tuning_keys_and_units(void)
{
	struct config cfg;

	TEST_ASSERT_EQ_INT(parse("uploadDelay: 2m\n"
				 "metadataBackupInterval: 1h\n"
				 "maxParallelTransfers: 16\n"
				 "multipartThreshold: 100MiB\n"
				 "multipartPartSize: 8 MiB\n"
				 "connectTimeout: 3s\n"
				 "lowSpeedTimeout: 45\n"
				 "maxRetries: 0\n"
				 "retryBaseDelayMs: 10\n",
				 &cfg),
			   0);
	TEST_ASSERT_EQ_INT(cfg.upload_delay_s, 120);
	TEST_ASSERT_EQ_INT(cfg.metadata_backup_interval_s, 3600);
	TEST_ASSERT_EQ_INT(cfg.max_parallel_transfers, 16);
	TEST_ASSERT_EQ_INT(cfg.multipart_threshold, 100 << 20);
	TEST_ASSERT_EQ_INT(cfg.multipart_part_size, 8 << 20);
	TEST_ASSERT_EQ_INT(cfg.connect_timeout_s, 3);
	TEST_ASSERT_EQ_INT(cfg.low_speed_timeout_s, 45);
	TEST_ASSERT_EQ_INT(cfg.max_retries, 0);
	TEST_ASSERT_EQ_INT(cfg.retry_base_ms, 10);
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("multipartThreshold: 1G\nmultipartPartSize: 6MB\n", &cfg), 0);
	TEST_ASSERT_EQ_INT(cfg.multipart_threshold, 1000000000LL);
	TEST_ASSERT_EQ_INT(cfg.multipart_part_size, 6000000);
	config_release(&cfg);
	/* the orphan sweep: a day and an hour by default; the sweep may be turned off, the age not */
	TEST_ASSERT_EQ_INT(parse("", &cfg), 0);
	TEST_ASSERT_EQ_INT(cfg.orphan_safety_age_s, 86400);
	TEST_ASSERT_EQ_INT(cfg.orphan_sweep_interval_s, 3600);
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("orphanSafetyAge: 2h\norphanSweepInterval: 0\n", &cfg), 0);
	TEST_ASSERT_EQ_INT(cfg.orphan_safety_age_s, 7200);
	TEST_ASSERT_EQ_INT(cfg.orphan_sweep_interval_s, 0);
	config_release(&cfg);
	expect_error("orphanSafetyAge: 0\n",
		     "c.yml:1: key 'orphanSafetyAge': 0 is out of range (1 to 31536000)");
}

static void test_chunk_size_is_a_power_of_two_from_1_to_64_mib(void)
{
	struct config cfg;

	TEST_ASSERT_EQ_INT(parse("", &cfg), 0);
	TEST_ASSERT(cfg.chunk_size == 0); /* the filesystem's default */
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("chunkSize: 4MiB\n", &cfg), 0);
	TEST_ASSERT_EQ_INT(cfg.chunk_size, 4 << 20);
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("chunkSize: 1MiB\n", &cfg), 0);
	TEST_ASSERT_EQ_INT(cfg.chunk_size, 1 << 20);
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("chunkSize: 67108864\n", &cfg), 0);
	TEST_ASSERT_EQ_INT(cfg.chunk_size, 64 << 20);
	config_release(&cfg);
	expect_error("chunkSize: 12MiB\n",
		     "c.yml:1: key 'chunkSize': 12MiB is not a power of two (e.g. 4MiB, 16MiB)");
	expect_error("chunkSize: 16MB\n", "key 'chunkSize': 16MB is not a power of two");
	expect_error("chunkSize: 512KiB\n", "key 'chunkSize': 512KiB is out of range");
	expect_error("chunkSize: 128MiB\n", "key 'chunkSize': 128MiB is out of range");
	expect_error("chunkSize: 0\n", "key 'chunkSize': 0 is out of range");
	expect_error("chunkSize: big\n", "c.yml:1: key 'chunkSize': expected a size in bytes");
}

static void test_lease_timeout(void)
{
	struct config cfg;

	TEST_ASSERT_EQ_INT(parse("", &cfg), 0);
	TEST_ASSERT_EQ_INT(cfg.lease_timeout_s, 60);
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("leaseTimeout: 3\n", &cfg), 0);
	TEST_ASSERT_EQ_INT(cfg.lease_timeout_s, 3);
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("leaseTimeout: 5m\n", &cfg), 0);
	TEST_ASSERT_EQ_INT(cfg.lease_timeout_s, 300);
	config_release(&cfg);
	expect_error("leaseTimeout: 1\n", "key 'leaseTimeout': 1 is out of range");
	expect_error("leaseTimeout: 2h\n", "key 'leaseTimeout': 2h is out of range");
}

static void test_upload_integrity_keys(void)
{
	struct config cfg;

	TEST_ASSERT_EQ_INT(parse("", &cfg), 0);
	TEST_ASSERT(cfg.upload_checksum == NULL); /* chosen by endpoint */
	TEST_ASSERT(!cfg.sign_payload);
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("uploadChecksum: sha256\nsignPayload: yes\n", &cfg), 0);
	TEST_ASSERT_EQ_STR(cfg.upload_checksum, "sha256");
	TEST_ASSERT(cfg.sign_payload);
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("uploadChecksum: md5\n", &cfg), 0);
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("uploadChecksum: crc32c\n", &cfg), 0);
	config_release(&cfg);
	expect_error("bucket: b\nuploadChecksum: crc64\n",
		     "c.yml:2: key 'uploadChecksum': unknown checksum 'crc64'");
}

static void test_booleans(void)
{
	static const char *const yes[] = {"true", "yes", "on", "True", "YES"};
	static const char *const no[] = {"false", "no", "off", "False", "OFF"};
	struct config cfg;
	char text[64];

	for (size_t i = 0; i < 5; i++) {
		snprintf(text, sizeof(text), "pathStyle: %s\n", no[i]);
		TEST_ASSERT_EQ_INT(parse(text, &cfg), 0);
		TEST_ASSERT(!cfg.path_style);
		config_release(&cfg);
		snprintf(text, sizeof(text), "pathStyle: %s\n", yes[i]);
		TEST_ASSERT_EQ_INT(parse(text, &cfg), 0);
		TEST_ASSERT(cfg.path_style);
		config_release(&cfg);
	}
	expect_error("pathStyle: maybe\n", "c.yml:1: key 'pathStyle': expected true or false");
	expect_error("pathStyle: \"true\"\n", "key 'pathStyle': expected true or false");
}

static void test_null_values_keep_defaults(void)
{
	struct config cfg;

	TEST_ASSERT_EQ_INT(parse("region:\nmaxRetries: ~\nbucket: null\n", &cfg), 0);
	TEST_ASSERT(cfg.region == NULL);
	TEST_ASSERT_EQ_INT(cfg.max_retries, 5);
	TEST_ASSERT(cfg.bucket == NULL);
	config_release(&cfg);
}

static void test_home_expansion(void)
{
	struct config cfg;
	const char *home = getenv("HOME");
	char want[512];

	setenv("HOME", "/home/tester", 1);
	TEST_ASSERT_EQ_INT(parse("bucketDir: ~/bucket\ncaFile: ~/ca.pem\n", &cfg), 0);
	TEST_ASSERT_EQ_STR(cfg.bucket_dir, "/home/tester/bucket");
	TEST_ASSERT_EQ_STR(cfg.ca_file, "/home/tester/ca.pem");
	config_release(&cfg);
	if (home)
		setenv("HOME", home, 1);
	snprintf(want, sizeof(want), "%s", "c.yml:1: key 'bucketDir': empty path");
	expect_error("bucketDir: \"\"\n", want);
}

static void test_errors_name_file_line_and_key(void)
{
	expect_error("bucket: b\nfoo: 1\n", "c.yml:2: key 'foo': unknown key");
	expect_error("Bucket: b\n", "c.yml:1: key 'Bucket': unknown key");
	expect_error("bucket: a\nbucket: b\n", "c.yml:2: key 'bucket': given more than once");
	expect_error("bucket: [a, b]\n",
		     "c.yml:1: key 'bucket': expected a single value, got a list");
	expect_error("region:\n  name: x\n",
		     "c.yml:2: key 'region': expected a single value, got a mapping");
	expect_error("targetDiskUsage: lots\n",
		     "c.yml:1: key 'targetDiskUsage': expected a number of GB or a size such as "
		     "64MiB, got 'lots'");
	expect_error("targetDiskUsage: 64 parsecs\n", "key 'targetDiskUsage': expected a number");
	expect_error("targetDiskUsage: 0MiB\n",
		     "c.yml:1: key 'targetDiskUsage': 0MiB is impossible (must be above 0)");
	expect_error("targetDiskUsage: 1e-12\n", "key 'targetDiskUsage': 1e-12 is impossible");
	expect_error("targetDiskUsage: -1\n", "key 'targetDiskUsage'");
	expect_error("targetDiskUsage: 0\n", "c.yml:1: key 'targetDiskUsage': 0 GB is impossible");
	expect_error("targetDiskUsage: nan\n", "key 'targetDiskUsage'");
	expect_error("targetDiskUsage: 1e400\n", "key 'targetDiskUsage'");
	expect_error("targetDiskUsage: \"10\"\n", "key 'targetDiskUsage': expected a number");
	expect_error("maxRetries: many\n", "c.yml:1: key 'maxRetries': expected a whole number");
	expect_error("maxRetries: 1000\n", "key 'maxRetries': 1000 is out of range (0 to 100)");
	expect_error("maxRetries: 1.5\n", "key 'maxRetries': expected a whole number");
	expect_error("maxParallelTransfers: 0\n", "key 'maxParallelTransfers': 0 is out of range");
	expect_error("multipartPartSize: 1MiB\n", "key 'multipartPartSize': 1MiB is out of range");
	expect_error("multipartThreshold: 10 parsecs\n",
		     "key 'multipartThreshold': expected a size in bytes");
	expect_error("multipartThreshold: 99999999999999999999999\n", "key 'multipartThreshold'");
	expect_error("multipartThreshold: 8MiB\nmultipartPartSize: 16MiB\n",
		     "key 'multipartPartSize'");
	expect_error("connectTimeout: 5 fortnights\n",
		     "key 'connectTimeout': expected a duration in seconds");
	expect_error("connectTimeout: 0\n", "key 'connectTimeout': 0 is out of range");
	expect_error("endpoint: s3.example.com\n",
		     "c.yml:1: key 'endpoint': 's3.example.com' is not an http:// or https:// URL");
	expect_error("b2ApiUrl: ftp://x\n", "key 'b2ApiUrl'");
	expect_error("- a\n- b\n", "c.yml:1: the configuration must be a mapping");
	expect_error("just a string\n", "must be a mapping");
	expect_error("bucket: b\n  bad: indent\n", "c.yml:2: not valid YAML");
	expect_error("? [a]\n: b\n", "keys must be plain names");
	expect_error("bucket: \"unterminated\n", "not valid YAML");
}

static void test_environment_fills_what_the_file_leaves(void)
{
	struct config cfg;

	setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET", 1);
	setenv("AWS_REGION", "ap-south-1", 1);
	setenv("AWS_ENDPOINT_URL", "http://env.example:9000/", 1);
	setenv("B2_APPLICATION_KEY_ID", "B2KEYID", 1);
	setenv("B2_APPLICATION_KEY", "B2KEY", 1);

	TEST_ASSERT_EQ_INT(parse("backend: s3\nbucket: b\naccessKeyId: FILEKEY\n", &cfg), 0);
	config_apply_env(&cfg);
	TEST_ASSERT_EQ_STR(cfg.access_key_id, "FILEKEY"); /* the file wins */
	TEST_ASSERT_EQ_STR(cfg.secret_access_key, "ENVSECRET");
	TEST_ASSERT_EQ_STR(cfg.region, "ap-south-1");
	TEST_ASSERT_EQ_STR(cfg.endpoint, "http://env.example:9000");
	TEST_ASSERT(cfg.account_id == NULL); /* B2 variables are for the b2 backend */
	config_release(&cfg);

	TEST_ASSERT_EQ_INT(parse("backend: b2\nbucketId: x\n", &cfg), 0);
	config_apply_env(&cfg);
	TEST_ASSERT_EQ_STR(cfg.account_id, "B2KEYID");
	TEST_ASSERT_EQ_STR(cfg.application_key, "B2KEY");
	TEST_ASSERT(cfg.access_key_id == NULL);
	config_release(&cfg);

	unsetenv("AWS_REGION");
	setenv("AWS_DEFAULT_REGION", "sa-east-1", 1);
	TEST_ASSERT_EQ_INT(parse("backend: s3\n", &cfg), 0);
	config_apply_env(&cfg);
	TEST_ASSERT_EQ_STR(cfg.region, "sa-east-1");
	config_release(&cfg);

	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_DEFAULT_REGION");
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("B2_APPLICATION_KEY_ID");
	unsetenv("B2_APPLICATION_KEY");
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	TEST_ASSERT(fd >= 0);
	TEST_ASSERT_EQ_INT(write(fd, text, strlen(text)), (long long)strlen(text));
	fchmod(fd, mode);
	close(fd);
}

static void test_load_files(void)
{
	char dir[] = "/tmp/zero-config-test-XXXXXX";
	char path[512], xdg[128], cfgdir[256];
	struct config cfg;

	TEST_ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/explicit.yml", dir);
	write_file(path, "bucket: b\nregion: r\n", 0600);
	TEST_ASSERT_EQ_INT(config_load(path, &cfg, err, sizeof(err)), 0);
	TEST_ASSERT_EQ_STR(cfg.path, path);
	TEST_ASSERT_EQ_STR(cfg.bucket, "b");
	TEST_ASSERT(cfg.bucket_dir != NULL);
	config_release(&cfg);

	/* An explicit file must exist. */
	snprintf(path, sizeof(path), "%s/missing.yml", dir);
	TEST_ASSERT_EQ_INT(config_load(path, &cfg, err, sizeof(err)), -ENOENT);
	TEST_ASSERT(strstr(err, "missing.yml: cannot open") != NULL);

	/* The default location may be absent: defaults, with XDG directories. */
	snprintf(xdg, sizeof(xdg), "%s/xdg", dir);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	setenv("XDG_DATA_HOME", xdg, 1);
	TEST_ASSERT_EQ_INT(config_load(NULL, &cfg, err, sizeof(err)), 0);
	TEST_ASSERT(cfg.path == NULL);
	TEST_ASSERT_EQ_STR(cfg.backend, "file");
	snprintf(path, sizeof(path), "%s/zero/bucket", xdg);
	TEST_ASSERT_EQ_STR(cfg.bucket_dir, path);
	TEST_ASSERT_EQ_STR(cfg.region, "us-east-1");
	config_release(&cfg);

	/* ... and is read when present. */
	snprintf(cfgdir, sizeof(cfgdir), "%s/zero", xdg);
	mkdir(xdg, 0700);
	mkdir(cfgdir, 0700);
	snprintf(path, sizeof(path), "%s/config.yml", cfgdir);
	write_file(path, "targetDiskUsage: 7\n", 0600);
	TEST_ASSERT_EQ_INT(config_load(NULL, &cfg, err, sizeof(err)), 0);
	TEST_ASSERT_EQ_STR(cfg.path, path);
	TEST_ASSERT(cfg.target_disk_usage == 7000000000ULL);
	config_release(&cfg);

	/* Bad content names the real file. */
	write_file(path, "targetDiskUsage: 7\nnope: 1\n", 0600);
	TEST_ASSERT_EQ_INT(config_load(NULL, &cfg, err, sizeof(err)), -EINVAL);
	TEST_ASSERT(strstr(err, "config.yml:2: key 'nope': unknown key") != NULL);

	/* A directory is not a configuration. */
	TEST_ASSERT_EQ_INT(config_load(cfgdir, &cfg, err, sizeof(err)), -EINVAL);

	unsetenv("XDG_CONFIG_HOME");
	unsetenv("XDG_DATA_HOME");
	unlink(path);
	rmdir(cfgdir);
	rmdir(xdg);
	snprintf(path, sizeof(path), "%s/explicit.yml", dir);
	unlink(path);
	rmdir(dir);
}

/* The keys of encryption, df and metrics: values, defaults, and errors naming file, line and key. */
static void test_encryption_capacity_and_metrics_keys(void)
{
	struct config cfg;

	TEST_ASSERT_EQ_INT(parse("backend: s3\nbucket: b\n", &cfg), 0);
	TEST_ASSERT_EQ_INT(cfg.encryption, -1);
	TEST_ASSERT(config_encrypts(&cfg)); /* a bucket: on unless said otherwise */
	TEST_ASSERT(cfg.capacity == 0 && !cfg.metrics_listen && !cfg.passphrase_file);
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("bucketDir: /b\n", &cfg), 0);
	TEST_ASSERT(!config_encrypts(&cfg)); /* the file backend: off */
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("bucketDir: /b\nencryption: yes\ncapacity: 2TiB\n"
				 "metricsListen: 127.0.0.1:9100\npassphraseFile: /etc/zero/p\n",
				 &cfg),
			   0);
	TEST_ASSERT(config_encrypts(&cfg));
	TEST_ASSERT(cfg.capacity == 2ULL << 40);
	TEST_ASSERT_EQ_STR(cfg.metrics_listen, "127.0.0.1:9100");
	TEST_ASSERT_EQ_STR(cfg.passphrase_file, "/etc/zero/p");
	config_release(&cfg);
	TEST_ASSERT_EQ_INT(parse("backend: b2\nencryption: off\nmetricsListen: 9100\n", &cfg), 0);
	TEST_ASSERT(!config_encrypts(&cfg));
	config_release(&cfg);
	expect_error("encryption: maybe\n", "c.yml:1: key 'encryption': expected true or false");
	expect_error("bucketDir: /b\ncapacity: 1KiB\n", "c.yml:2: key 'capacity'");
	expect_error("passphraseFile: \"\"\n", "c.yml:1: key 'passphraseFile': empty path");
	expect_error("\nmetricsListen: localhost:http\n", "c.yml:2: key 'metricsListen'");
	expect_error("metricsListen: 127.0.0.1:0\n", "c.yml:1: key 'metricsListen'");
	expect_error("metricsListen: 127.0.0.1:65536\n", "c.yml:1: key 'metricsListen'");
	expect_error("metricsListen: 999.0.0.1:80\n", "c.yml:1: key 'metricsListen'");
}

static void test_release_twice_is_safe(void)
{
	struct config cfg;

	TEST_ASSERT_EQ_INT(parse("bucket: b\n", &cfg), 0);
	config_release(&cfg);
	config_release(&cfg);
	TEST_ASSERT(cfg.bucket == NULL);
}

int main(void)
{
	TEST_RUN(test_empty_file_gives_defaults);
	TEST_RUN(test_existing_zero_keys);
	TEST_RUN(test_s3_keys);
	TEST_RUN(test_backend_named_explicitly);
	TEST_RUN(test_tuning_keys_and_units);
	TEST_RUN(test_chunk_size_is_a_power_of_two_from_1_to_64_mib);
	TEST_RUN(test_lease_timeout);
	TEST_RUN(test_upload_integrity_keys);
	TEST_RUN(test_booleans);
	TEST_RUN(test_null_values_keep_defaults);
	TEST_RUN(test_home_expansion);
	TEST_RUN(test_errors_name_file_line_and_key);
	TEST_RUN(test_environment_fills_what_the_file_leaves);
	TEST_RUN(test_load_files);
	TEST_RUN(test_encryption_capacity_and_metrics_keys);
	TEST_RUN(test_release_twice_is_safe);
	return TEST_MAIN_END();
}
