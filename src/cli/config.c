/*
 * config.c - reads Zero's YAML configuration into a struct config.
 *
 * The file is one flat mapping of scalar keys to scalar values. Every key
 * has a type (string, path, bool, positive number, size, duration); a value
 * of the wrong type, an unknown or duplicated key, or an impossible value is
 * an error reported as "FILE:LINE: key 'KEY': what is wrong" and nothing is
 * half-applied: on error the struct is released again.
 *
 * Precedence: a key set in the file wins; the environment (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_REGION / AWS_DEFAULT_REGION, AWS_ENDPOINT_URL,
 * B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY) fills what the file leaves
 * unset; built-in defaults fill the rest.
 *
 * The backend, when not named, is inferred: Backblaze keys (accountId /
 * bucketId) mean "b2", an S3 bucket or endpoint means "s3", otherwise the
 * embedded "file" backend with its directory under $XDG_DATA_HOME.
 */
#include "cli/config.h"

#include "common/errbuf.h"
#include "journal/lease.h"
#include "metrics/endpoint.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

enum config_type {
	CONFIG_STRING,	/* any scalar, taken verbatim */
	CONFIG_PATH,	/* a string; a leading "~/" is expanded */
	CONFIG_URL,	/* http:// or https:// URL; trailing '/' removed */
	CONFIG_BOOL,	/* true/false, yes/no, on/off */
	CONFIG_CHOICE,	/* a CONFIG_BOOL into an int, which stays -1 while unset */
	CONFIG_GB,	/* positive decimal number of GB (fractions allowed), or a CONFIG_SIZE */
	CONFIG_SIZE,	/* byte count, optional suffix K/M/G (1000) or KiB/MiB/GiB (1024) */
	CONFIG_SECONDS, /* whole seconds, optional suffix s/m/h */
	CONFIG_COUNT,	/* non-negative integer */
};

struct config_key {
	const char *name;
	enum config_type type;
	size_t offset;
	uint64_t min, max; /* for SIZE, SECONDS, COUNT */
	bool secret;	   /* triggers the permissions warning */
	bool power_of_two; /* SIZE: only powers of two */
};

/* clang-format off */
#define KEY_STR(n, f, t) {n, t, offsetof(struct config, f), 0, 0, false, false}
#define KEY_SECRET(n, f) {n, CONFIG_STRING, offsetof(struct config, f), 0, 0, true, false}
#define KEY_NUM(n, f, t, lo, hi) {n, t, offsetof(struct config, f), lo, hi, false, false}
#define KEY_POW2(n, f, lo, hi) {n, CONFIG_SIZE, offsetof(struct config, f), lo, hi, false, true}

static const struct config_key config_keys[] = {
	KEY_STR("backend", backend, CONFIG_STRING),
	KEY_STR("bucketDir", bucket_dir, CONFIG_PATH),
	KEY_STR("endpoint", endpoint, CONFIG_URL),
	KEY_STR("bucket", bucket, CONFIG_STRING),
	KEY_STR("region", region, CONFIG_STRING),
	KEY_STR("prefix", prefix, CONFIG_STRING),
	KEY_STR("accessKeyId", access_key_id, CONFIG_STRING),
	KEY_SECRET("secretAccessKey", secret_access_key),
	KEY_STR("caFile", ca_file, CONFIG_PATH),
	KEY_STR("pathStyle", path_style, CONFIG_BOOL),
	KEY_STR("accountId", account_id, CONFIG_STRING),
	KEY_SECRET("applicationKey", application_key),
	KEY_STR("bucketId", bucket_id, CONFIG_STRING),
	KEY_STR("b2ApiUrl", b2_api_url, CONFIG_URL),
	KEY_STR("uploadChecksum", upload_checksum, CONFIG_STRING),
	KEY_STR("signPayload", sign_payload, CONFIG_BOOL),
	KEY_STR("sqliteFileLocation", sqlite_file_location, CONFIG_PATH),
	KEY_STR("targetDiskUsage", target_disk_usage, CONFIG_GB),
	KEY_POW2("chunkSize", chunk_size, 1ULL << 20, 64ULL << 20),
	KEY_NUM("uploadDelay", upload_delay_s, CONFIG_SECONDS, 0, 86400),
	KEY_NUM("metadataBackupInterval", metadata_backup_interval_s, CONFIG_SECONDS, 1, 604800),
	KEY_NUM("metadataSyncInterval", metadata_sync_interval_s, CONFIG_SECONDS, 1, 3600),
	KEY_NUM("metadataRetention", metadata_retention_s, CONFIG_SECONDS, 0, 3650 * 86400ULL),
	KEY_STR("syncUpload", sync_upload, CONFIG_BOOL),
	KEY_STR("writebackCache", writeback_cache, CONFIG_BOOL),
	KEY_NUM("maxParallelTransfers", max_parallel_transfers, CONFIG_COUNT, 1, 256),
	KEY_NUM("multipartThreshold", multipart_threshold, CONFIG_SIZE, 5ULL << 20, 5ULL << 40),
	KEY_NUM("multipartPartSize", multipart_part_size, CONFIG_SIZE, 5ULL << 20, 5ULL << 30),
	KEY_NUM("connectTimeout", connect_timeout_s, CONFIG_SECONDS, 1, 3600),
	KEY_NUM("lowSpeedTimeout", low_speed_timeout_s, CONFIG_SECONDS, 1, 3600),
	KEY_NUM("maxRetries", max_retries, CONFIG_COUNT, 0, 100),
	KEY_NUM("retryBaseDelayMs", retry_base_ms, CONFIG_COUNT, 1, 600000),
	KEY_NUM("backpressureTimeout", backpressure_timeout_s, CONFIG_SECONDS, 1, 86400),
	KEY_NUM("orphanSafetyAge", orphan_safety_age_s, CONFIG_SECONDS, 1, 365 * 86400),
	KEY_NUM("orphanSweepInterval", orphan_sweep_interval_s, CONFIG_SECONDS, 0, 30 * 86400),
	KEY_NUM("leaseTimeout", lease_timeout_s, CONFIG_SECONDS, LEASE_MIN_TTL_S, LEASE_MAX_TTL_S),
	KEY_STR("encryption", encryption, CONFIG_CHOICE),
	KEY_NUM("capacity", capacity, CONFIG_SIZE, 1ULL << 20, 1ULL << 62),
	KEY_STR("passphraseFile", passphrase_file, CONFIG_PATH),
	KEY_STR("metricsListen", metrics_listen, CONFIG_STRING),
};
/* clang-format on */


static void config_set_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->path_style = true;
	cfg->upload_delay_s = 5;
	cfg->metadata_backup_interval_s = 3600;
	cfg->metadata_sync_interval_s = 1;
	cfg->metadata_retention_s = 7 * 86400;
	cfg->max_parallel_transfers = 8;
	cfg->multipart_threshold = 512ULL << 20;
	cfg->multipart_part_size = 64ULL << 20;
	cfg->connect_timeout_s = 10;
	cfg->low_speed_timeout_s = 30;
	cfg->max_retries = 5;
	cfg->retry_base_ms = 200;
	cfg->backpressure_timeout_s = 300;
	cfg->orphan_safety_age_s = 86400;
	cfg->orphan_sweep_interval_s = 3600;
	cfg->lease_timeout_s = LEASE_DEFAULT_TTL_S;
	cfg->encryption = -1;
	cfg->writeback_cache = true;
}

void config_release(struct config *cfg)
{
	char **strings[] = {
	    &cfg->path,
	    &cfg->backend,
	    &cfg->bucket_dir,
	    &cfg->endpoint,
	    &cfg->bucket,
	    &cfg->region,
	    &cfg->prefix,
	    &cfg->access_key_id,
	    &cfg->secret_access_key,
	    &cfg->ca_file,
	    &cfg->account_id,
	    &cfg->application_key,
	    &cfg->bucket_id,
	    &cfg->b2_api_url,
	    &cfg->sqlite_file_location,
	    &cfg->upload_checksum,
	    &cfg->passphrase_file,
	    &cfg->metrics_listen,
	};

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		if (*strings[i] && strings[i] == &cfg->secret_access_key)
			explicit_bzero(*strings[i], strlen(*strings[i]));
		if (*strings[i] && strings[i] == &cfg->application_key)
			explicit_bzero(*strings[i], strlen(*strings[i]));
		free(*strings[i]);
		*strings[i] = NULL;
	}
}

/* "~/x" -> "$HOME/x"; caller owns the result. */
static char *expand_home(const char *value)
{
	const char *home = getenv("HOME");
	char *out = NULL;

	if (value[0] != '~' || (value[1] != '/' && value[1] != '\0') || !home || !*home)
		return strdup(value);
	if (asprintf(&out, "%s%s", home, value + 1) < 0)
		return NULL;
	return out;
}

char *config_default_bucket_dir(void)
{
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	char *out = NULL;
	int r;

	if (xdg && xdg[0] == '/')
		r = asprintf(&out, "%s/zero/bucket", xdg);
	else
		r = asprintf(&out, "%s/.local/share/zero/bucket", home && *home ? home : ".");
	return r < 0 ? NULL : out;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
					  "YES",  "on",	  "On",	  "ON"};
	static const char *const no[] = {"false", "False", "FALSE", "no", "No",
					 "NO",	  "off",   "Off",   "OFF"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* Parse a non-negative integer with an optional suffix from UNITS. */
struct unit {
	const char *suffix;
	uint64_t factor;
};

static const struct unit size_units[] = {
    {"", 1},
    {"B", 1},
    {"K", 1000},
    {"KB", 1000},
    {"M", 1000000},
    {"MB", 1000000},
    {"G", 1000000000ULL},
    {"GB", 1000000000ULL},
    {"KiB", 1024},
    {"MiB", 1024 * 1024},
    {"GiB", 1ULL << 30},
    {"TiB", 1ULL << 40},
    {NULL, 0},
};

static const struct unit second_units[] = {
    {"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {NULL, 0},
};

static const struct unit count_units[] = {{"", 1}, {NULL, 0}};

static int parse_uint_unit(const char *s, const struct unit *units, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	while (*end == ' ')
		end++;
	for (const struct unit *u = units; u->suffix; u++) {
		if (strcmp(end, u->suffix) == 0) {
			if (v > UINT64_MAX / u->factor)
				return -ERANGE;
			*out = v * u->factor;
			return 0;
		}
	}
	return -EINVAL;
}

/* Store VALUE (a scalar from line LINE) into the field KEY describes. */
static int config_set(struct config *cfg, const struct config_key *key, const char *value,
		      bool plain, const char *name, unsigned long line, char *err, size_t errlen)
{
	char *field = (char *)cfg + key->offset;
	uint64_t v = 0;
	const struct unit *units = NULL;
	int r;

	switch (key->type) {
	case CONFIG_STRING:
	case CONFIG_PATH:
	case CONFIG_URL: {
		char *copy;

		if (key->type == CONFIG_URL) {
			if (strncmp(value, "http://", 7) != 0 &&
			    strncmp(value, "https://", 8) != 0) {
				errbuf_set(err, errlen,
					"%s:%lu: key '%s': '%s' is not an http:// or https:// URL",
					name, line, key->name, value);
				return -EINVAL;
			}
			copy = strdup(value);
			if (copy) {
				size_t n = strlen(copy);

				while (n > 8 && copy[n - 1] == '/')
					copy[--n] = '\0';
			}
		} else if (key->type == CONFIG_PATH) {
			if (!*value) {
				errbuf_set(err, errlen, "%s:%lu: key '%s': empty path", name, line,
					key->name);
				return -EINVAL;
			}
			copy = expand_home(value);
		} else {
			copy = strdup(value);
		}
		if (!copy)
			return -ENOMEM;
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
	case CONFIG_BOOL:
		if (!plain || !parse_bool(value, (bool *)field)) {
			errbuf_set(err, errlen, "%s:%lu: key '%s': expected true or false, got '%s'",
				name, line, key->name, value);
			return -EINVAL;
		}
		return 0;
	case CONFIG_CHOICE: {
		bool b;

		if (!plain || !parse_bool(value, &b)) {
			errbuf_set(err, errlen, "%s:%lu: key '%s': expected true or false, got '%s'",
				name, line, key->name, value);
			return -EINVAL;
		}
		*(int *)field = b;
		return 0;
	}
	case CONFIG_GB: {
		/* a bare number is GB (fractions allowed); a size with a unit is that size */
		char *end;
		double d;

		errno = 0;
		d = plain && *value ? strtod(value, &end) : 0;
		if (plain && *value && !*end && !errno && isdigit((unsigned char)value[0]) &&
		    isfinite(d)) {
			if (d <= 0 || d > 1e9) {
				errbuf_set(err, errlen,
					"%s:%lu: key '%s': %s GB is impossible (must be above 0)",
					name, line, key->name, value);
				return -EINVAL;
			}
			v = (uint64_t)(d * 1e9 + 0.5); /* at most 10^18: fits */
		} else if (!plain || parse_uint_unit(value, size_units, &v) != 0) {
			errbuf_set(err, errlen,
				"%s:%lu: key '%s': expected a number of GB or a size such as 64MiB, "
				"got '%s'",
				name, line, key->name, value);
			return -EINVAL;
		}
		if (v == 0) {
			errbuf_set(err, errlen, "%s:%lu: key '%s': %s is impossible (must be above 0)",
				name, line, key->name, value);
			return -EINVAL;
		}
		*(uint64_t *)field = v;
		return 0;
	}
	case CONFIG_SIZE:
		units = size_units;
		break;
	case CONFIG_SECONDS:
		units = second_units;
		break;
	case CONFIG_COUNT:
		units = count_units;
		break;
	}
	r = plain ? parse_uint_unit(value, units, &v) : -EINVAL;
	if (r == -EINVAL) {
		const char *what = key->type == CONFIG_SIZE	 ? "a size in bytes (e.g. 16MiB)"
				   : key->type == CONFIG_SECONDS ? "a duration in seconds"
								 : "a whole number";

		errbuf_set(err, errlen, "%s:%lu: key '%s': expected %s, got '%s'", name, line,
			key->name, what, value);
		return -EINVAL;
	}
	if (r < 0 || v < key->min || v > key->max) {
		errbuf_set(err, errlen, "%s:%lu: key '%s': %s is out of range (%llu to %llu)", name,
			line, key->name, value, (unsigned long long)key->min,
			(unsigned long long)key->max);
		return -EINVAL;
	}
	if (key->power_of_two && (v & (v - 1))) {
		errbuf_set(err, errlen, "%s:%lu: key '%s': %s is not a power of two (e.g. 4MiB, 16MiB)",
			name, line, key->name, value);
		return -EINVAL;
	}
	if (key->type == CONFIG_SIZE)
		*(uint64_t *)field = v;
	else
		*(unsigned *)field = (unsigned)v;
	return 0;
}

static const struct config_key *config_key_find(const char *name)
{
	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

static bool is_null_scalar(const yaml_node_t *node)
{
	const char *v = (const char *)node->data.scalar.value;

	if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
	       strcmp(v, "NULL") == 0;
}

/* Checks that need the whole file: backend name and inference, prefix form. */
static int config_finish(struct config *cfg, const char *name, unsigned long backend_line,
			 unsigned long checksum_line, char *err, size_t errlen)
{
	if (cfg->backend) {
		if (strcmp(cfg->backend, "file") != 0 && strcmp(cfg->backend, "s3") != 0 &&
		    strcmp(cfg->backend, "b2") != 0) {
			errbuf_set(err, errlen,
				"%s:%lu: key 'backend': unknown backend '%s' (file, s3 or b2)",
				name, backend_line, cfg->backend);
			return -EINVAL;
		}
	} else {
		const char *b = "file";

		if (cfg->account_id || cfg->bucket_id)
			b = "b2";
		else if (cfg->bucket || cfg->endpoint)
			b = "s3";
		cfg->backend = strdup(b);
		if (!cfg->backend)
			return -ENOMEM;
	}
	if (cfg->upload_checksum && strcmp(cfg->upload_checksum, "crc32c") != 0 &&
	    strcmp(cfg->upload_checksum, "sha256") != 0 &&
	    strcmp(cfg->upload_checksum, "md5") != 0) {
		errbuf_set(
		    err, errlen,
		    "%s:%lu: key 'uploadChecksum': unknown checksum '%s' (crc32c, sha256 or md5)",
		    name, checksum_line, cfg->upload_checksum);
		return -EINVAL;
	}
	if (cfg->prefix) {
		/* Normalise to "" or "a/b/": no leading '/', exactly one trailing '/'. */
		const char *p = cfg->prefix;
		char *norm;
		size_t n;

		while (*p == '/')
			p++;
		n = strlen(p);
		while (n && p[n - 1] == '/')
			n--;
		if (asprintf(&norm, "%.*s%s", (int)n, p, n ? "/" : "") < 0)
			return -ENOMEM;
		free(cfg->prefix);
		cfg->prefix = norm;
	} else {
		cfg->prefix = strdup("");
		if (!cfg->prefix)
			return -ENOMEM;
	}
	if (cfg->multipart_part_size > cfg->multipart_threshold && cfg->multipart_threshold != 0) {
		errbuf_set(err, errlen,
			"%s: key 'multipartPartSize': %llu is larger than multipartThreshold %llu",
			name, (unsigned long long)cfg->multipart_part_size,
			(unsigned long long)cfg->multipart_threshold);
		return -EINVAL;
	}
	return 0;
}

int config_parse(const char *name, const char *buf, size_t len, struct config *cfg, char *err,
		 size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	bool seen[sizeof(config_keys) / sizeof(config_keys[0])] = {false};
	unsigned long backend_line = 0, checksum_line = 0;
	int r = 0;

	config_set_defaults(cfg);
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &doc)) {
		errbuf_set(err, errlen, "%s:%lu: not valid YAML: %s", name,
			(unsigned long)parser.problem_mark.line + 1,
			parser.problem ? parser.problem : "syntax error");
		r = -EINVAL;
		goto out_parser;
	}
	root = yaml_document_get_root_node(&doc);
	if (!root)
		goto out_doc; /* empty file: all defaults */
	if (root->type == YAML_SCALAR_NODE && is_null_scalar(root))
		goto out_doc;
	if (root->type != YAML_MAPPING_NODE) {
		errbuf_set(err, errlen, "%s:%lu: the configuration must be a mapping of key: value",
			name, (unsigned long)root->start_mark.line + 1);
		r = -EINVAL;
		goto out_doc;
	}
	for (yaml_node_pair_t *pair = root->data.mapping.pairs.start;
	     pair < root->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(&doc, pair->key);
		yaml_node_t *v = yaml_document_get_node(&doc, pair->value);
		unsigned long line = (unsigned long)k->start_mark.line + 1;
		const struct config_key *key;
		const char *kname;

		if (k->type != YAML_SCALAR_NODE) {
			errbuf_set(err, errlen, "%s:%lu: keys must be plain names", name, line);
			r = -EINVAL;
			goto out_doc;
		}
		kname = (const char *)k->data.scalar.value;
		key = config_key_find(kname);
		if (!key) {
			errbuf_set(err, errlen, "%s:%lu: key '%s': unknown key", name, line, kname);
			r = -EINVAL;
			goto out_doc;
		}
		if (seen[key - config_keys]) {
			errbuf_set(err, errlen, "%s:%lu: key '%s': given more than once", name, line,
				kname);
			r = -EINVAL;
			goto out_doc;
		}
		seen[key - config_keys] = true;
		line = (unsigned long)v->start_mark.line + 1;
		if (v->type != YAML_SCALAR_NODE) {
			errbuf_set(err, errlen, "%s:%lu: key '%s': expected a single value, got a %s",
				name, line, kname,
				v->type == YAML_MAPPING_NODE ? "mapping" : "list");
			r = -EINVAL;
			goto out_doc;
		}
		if (is_null_scalar(v))
			continue; /* "key:" alone leaves the default */
		if (strcmp(kname, "backend") == 0)
			backend_line = line;
		if (strcmp(kname, "uploadChecksum") == 0)
			checksum_line = line;
		r = config_set(cfg, key, (const char *)v->data.scalar.value,
			       v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE, name, line, err,
			       errlen);
		if (r == 0 && strcmp(kname, "metricsListen") == 0) {
			char host[64];
			unsigned port;
			if (metrics_listen_parse(cfg->metrics_listen, host, sizeof(host), &port)) {
				errbuf_set(err, errlen,
					   "%s:%lu: key 'metricsListen': '%s' is not HOST:PORT (an "
					   "IPv4 address and a port, e.g. 127.0.0.1:9100)",
					   name, line, cfg->metrics_listen);
				r = -EINVAL;
			}
		}
		if (r < 0)
			goto out_doc;
	}
out_doc:
	yaml_document_delete(&doc);
out_parser:
	yaml_parser_delete(&parser);
	if (r == 0)
		r = config_finish(cfg, name, backend_line, checksum_line, err, errlen);
	if (r < 0)
		config_release(cfg);
	return r;
}

static int env_fill(char **field, const char *var)
{
	const char *v = getenv(var);

	if (*field || !v || !*v)
		return 0;
	*field = strdup(v);
	return *field ? 0 : -ENOMEM;
}

bool config_encrypts(const struct config *cfg)
{
	if (cfg->encryption >= 0)
		return cfg->encryption == 1;
	return cfg->backend && strcmp(cfg->backend, "file") != 0;
}

void config_apply_env(struct config *cfg)
{
	bool s3 = cfg->backend && strcmp(cfg->backend, "s3") == 0;
	bool b2 = cfg->backend && strcmp(cfg->backend, "b2") == 0;

	if (s3 || !cfg->backend) {
		env_fill(&cfg->access_key_id, "AWS_ACCESS_KEY_ID");
		env_fill(&cfg->secret_access_key, "AWS_SECRET_ACCESS_KEY");
		env_fill(&cfg->endpoint, "AWS_ENDPOINT_URL");
		if (cfg->endpoint) {
			size_t n = strlen(cfg->endpoint);

			while (n > 8 && cfg->endpoint[n - 1] == '/')
				cfg->endpoint[--n] = '\0';
		}
	}
	env_fill(&cfg->region, "AWS_REGION");
	env_fill(&cfg->region, "AWS_DEFAULT_REGION");
	if (b2 || !cfg->backend) {
		env_fill(&cfg->account_id, "B2_APPLICATION_KEY_ID");
		env_fill(&cfg->application_key, "B2_APPLICATION_KEY");
	}
}

static char *config_default_path(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	char *out = NULL;
	int r;

	if (xdg && xdg[0] == '/')
		r = asprintf(&out, "%s/zero/config.yml", xdg);
	else
		r = asprintf(&out, "%s/.config/zero/config.yml", home && *home ? home : ".");
	return r < 0 ? NULL : out;
}

static int read_all(int fd, char **out, size_t *outlen)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *bigger;

			if (cap >= (1u << 24)) {
				free(buf);
				return -EFBIG;
			}
			bigger = realloc(buf, cap * 2);
			if (!bigger) {
				free(buf);
				return -ENOMEM;
			}
			buf = bigger;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			free(buf);
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

int config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	char *default_path = NULL;
	const char *name = path;
	char *buf = NULL;
	size_t len = 0;
	struct stat st;
	int fd = -1;
	int r;

	if (!name) {
		default_path = config_default_path();
		if (!default_path)
			return -ENOMEM;
		name = default_path;
	}
	fd = open(name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT && !path) {
			/* No configuration at all: the embedded defaults. */
			r = config_parse(name, "", 0, cfg, err, errlen);
			if (r < 0)
				goto out_free_path;
			goto out_env;
		}
		errbuf_set(err, errlen, "%s: cannot open: %s", name, strerror(-r));
		goto out_free_path;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		errbuf_set(err, errlen, "%s: cannot stat: %s", name, strerror(-r));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		errbuf_set(err, errlen, "%s: not a regular file", name);
		goto out_close;
	}
	r = read_all(fd, &buf, &len);
	if (r < 0) {
		errbuf_set(err, errlen, "%s: cannot read: %s", name, strerror(-r));
		goto out_close;
	}
	r = config_parse(name, buf, len, cfg, err, errlen);
	if (r < 0)
		goto out_free_buf;
	cfg->path = strdup(name);
	if (!cfg->path) {
		r = -ENOMEM;
		config_release(cfg);
		goto out_free_buf;
	}
	if ((st.st_mode & 077) && (cfg->secret_access_key || cfg->application_key))
		fprintf(stderr,
			"zero: warning: %s holds secrets but is readable by others "
			"(mode %03o); run: chmod 600 %s\n",
			name, (unsigned)(st.st_mode & 0777), name);
out_env:
	config_apply_env(cfg);
	if (!cfg->bucket_dir) {
		cfg->bucket_dir = config_default_bucket_dir();
		cfg->bucket_dir_default = true;
	}
	if (!cfg->region)
		cfg->region = strdup("us-east-1");
	if (!cfg->bucket_dir || !cfg->region) {
		r = -ENOMEM;
		config_release(cfg);
	}
out_free_buf:
	free(buf);
out_close:
	if (fd >= 0)
		close(fd);
out_free_path:
	free(default_path);
	return r;
}
