/*
 * test_keys.c - the key hierarchy (crypt/keys.c) and the superblock that
 * carries it (journal/superblock.c): wrap and unwrap, what a wrong
 * passphrase or a changed field does, the text round trip, and every way a
 * superblock's text can be refused.
 */
#include "crypt/keys.h"
#include "journal/superblock.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char pass[] = "correct horse battery staple";

static void lock_new(struct keyring *k, struct keys_lock *lock)
{
	TEST_ASSERT_EQ_INT(keys_generate(k), 0);
	keys_kdf_default(&lock->kdf);
	lock->epoch = 1;
	TEST_ASSERT_EQ_INT(keys_lock(k, pass, strlen(pass), lock), 0);
}

static void test_wrap_and_unwrap(void)
{
	struct keyring k, opened, again;
	struct keys_lock lock;

	lock_new(&k, &lock);
	TEST_ASSERT(k.sealed);
	/* the derived keys differ from each other and from the data key */
	TEST_ASSERT(memcmp(k.object_key, k.id_key, KEYS_LEN) != 0);
	TEST_ASSERT(memcmp(k.object_key, k.superblock_key, KEYS_LEN) != 0);
	TEST_ASSERT(memcmp(k.object_key, k.data_key, KEYS_LEN) != 0);
	TEST_ASSERT(memcmp(k.id_key, k.data_key, KEYS_LEN) != 0);
	/* the data key is not in the lock in the clear */
	TEST_ASSERT(memmem(lock.wrapped, sizeof(lock.wrapped), k.data_key, KEYS_LEN) == NULL);

	TEST_ASSERT_EQ_INT(keys_unlock(&lock, pass, strlen(pass), &opened), 0);
	TEST_ASSERT(opened.sealed);
	TEST_ASSERT(memcmp(&opened, &k, sizeof(k)) == 0);
	TEST_ASSERT_EQ_INT(keys_unlock(&lock, pass, strlen(pass), &again), 0);
	TEST_ASSERT(memcmp(&again, &k, sizeof(k)) == 0);
	TEST_ASSERT(keys_object_key(&k) == k.object_key);

	/* two filesystems never share keys */
	struct keyring other;
	struct keys_lock other_lock;
	lock_new(&other, &other_lock);
	TEST_ASSERT(memcmp(other.object_key, k.object_key, KEYS_LEN) != 0);
	TEST_ASSERT(memcmp(other_lock.kdf.salt, lock.kdf.salt, KEYS_SALT_LEN) != 0);
	keys_release(&k);
	keys_release(&opened);
	keys_release(&again);
	keys_release(&other);
}

/* A wrong passphrase, and every field of the lock changed, fail alike; K stays untouched. */
static void test_wrong_passphrase_and_changed_lock(void)
{
	struct keyring k, out;
	struct keys_lock lock, bad;

	lock_new(&k, &lock);
	memset(&out, 0x5a, sizeof(out));
	TEST_ASSERT_EQ_INT(keys_unlock(&lock, "correct horse battery stapl", 27, &out),
			   -EKEYREJECTED);
	TEST_ASSERT_EQ_INT(keys_unlock(&lock, "", 0, &out), -EKEYREJECTED);
	TEST_ASSERT(out.object_key[0] == 0x5a && out.data_key[31] == 0x5a);

	bad = lock;
	bad.epoch = 2; /* an old lock passed off as a newer one */
	TEST_ASSERT_EQ_INT(keys_unlock(&bad, pass, strlen(pass), &out), -EKEYREJECTED);
	bad = lock;
	bad.kdf.salt[3] ^= 1;
	TEST_ASSERT_EQ_INT(keys_unlock(&bad, pass, strlen(pass), &out), -EKEYREJECTED);
	bad = lock;
	bad.kdf.ops = lock.kdf.ops + 1; /* limits changed: another key, and the AD differs */
	TEST_ASSERT_EQ_INT(keys_unlock(&bad, pass, strlen(pass), &out), -EKEYREJECTED);
	for (size_t i = 0; i < KEYS_WRAPPED_LEN; i += 7) {
		bad = lock;
		bad.wrapped[i] ^= 0x80;
		TEST_ASSERT_EQ_INT(keys_unlock(&bad, pass, strlen(pass), &out), -EKEYREJECTED);
	}
	/* limits no machine should be asked for are refused before any work */
	bad = lock;
	bad.kdf.mem = 1ULL << 40;
	TEST_ASSERT_EQ_INT(keys_unlock(&bad, pass, strlen(pass), &out), -EINVAL);
	keys_release(&k);
}

/* A new passphrase wraps the same data key: every derived key stays. */
static void test_rewrap_keeps_the_keys(void)
{
	struct keyring k, opened;
	struct keys_lock lock, next;

	lock_new(&k, &lock);
	keys_kdf_default(&next.kdf);
	next.epoch = lock.epoch + 1;
	TEST_ASSERT_EQ_INT(keys_lock(&k, "another one", 11, &next), 0);
	TEST_ASSERT_EQ_INT(keys_unlock(&next, pass, strlen(pass), &opened), -EKEYREJECTED);
	TEST_ASSERT_EQ_INT(keys_unlock(&next, "another one", 11, &opened), 0);
	TEST_ASSERT(memcmp(&opened, &k, sizeof(k)) == 0);
	/* a plain keyring has nothing to wrap */
	struct keyring plain;
	uint8_t id[KEYS_LEN] = {1, 2, 3};
	keys_plain(&plain, id);
	TEST_ASSERT(!plain.sealed && keys_object_key(&plain) == NULL);
	TEST_ASSERT(keys_object_key(NULL) == NULL);
	TEST_ASSERT_EQ_INT(keys_lock(&plain, pass, strlen(pass), &next), -EINVAL);
	keys_release(&k);
	keys_release(&opened);
}

static void test_mac(void)
{
	struct keyring k, other;
	uint8_t mac[KEYS_MAC_LEN];
	char msg[] = "zero-superblock\nformat=2\n";

	TEST_ASSERT_EQ_INT(keys_generate(&k), 0);
	TEST_ASSERT_EQ_INT(keys_generate(&other), 0);
	keys_mac(&k, msg, strlen(msg), mac);
	TEST_ASSERT(keys_mac_ok(&k, msg, strlen(msg), mac));
	TEST_ASSERT(!keys_mac_ok(&other, msg, strlen(msg), mac));
	msg[5] ^= 1;
	TEST_ASSERT(!keys_mac_ok(&k, msg, strlen(msg), mac));
	keys_release(&k);
	keys_release(&other);
}

/* ---- the superblock ---- */

static struct superblock sealed_sb(struct keyring *k)
{
	struct superblock sb = {.format = SUPERBLOCK_SEALED, .chunk_size = 1u << 22,
				.created = 1700000000};

	snprintf(sb.fs_id, sizeof(sb.fs_id), "0123456789abcdef0123456789abcdef");
	lock_new(k, &sb.lock);
	return sb;
}

static void test_superblock_round_trips(void)
{
	struct keyring k, opened;
	struct superblock sb = sealed_sb(&k), back, plain = {.format = SUPERBLOCK_PLAIN};
	char text[SUPERBLOCK_TEXT_MAX], err[256];
	int n;

	n = superblock_format(&sb, &k, text, sizeof(text));
	TEST_ASSERT(n > 0);
	/* nothing secret in the clear */
	TEST_ASSERT(strstr(text, "id_key") == NULL);
	TEST_ASSERT_EQ_INT(superblock_parse(text, (size_t)n, &back, err, sizeof(err)), 0);
	TEST_ASSERT(superblock_sealed(&back));
	TEST_ASSERT_EQ_STR(back.fs_id, sb.fs_id);
	TEST_ASSERT_EQ_INT(back.chunk_size, sb.chunk_size);
	TEST_ASSERT_EQ_INT(back.created, sb.created);
	TEST_ASSERT(memcmp(&back.lock, &sb.lock, sizeof(sb.lock)) == 0);
	TEST_ASSERT_EQ_INT(superblock_verify(&back, &k), 0);
	TEST_ASSERT_EQ_INT(superblock_unlock(&back, pass, strlen(pass), &opened), 0);
	TEST_ASSERT(memcmp(&opened, &k, sizeof(k)) == 0);
	TEST_ASSERT_EQ_INT(superblock_unlock(&back, "nope", 4, &opened), -EKEYREJECTED);

	snprintf(plain.fs_id, sizeof(plain.fs_id), "f00d");
	plain.chunk_size = 1u << 24;
	memset(plain.id_key, 0xab, sizeof(plain.id_key));
	n = superblock_format(&plain, NULL, text, sizeof(text));
	TEST_ASSERT(n > 0);
	TEST_ASSERT(strstr(text, "format=1\n") != NULL);
	TEST_ASSERT_EQ_INT(superblock_parse(text, (size_t)n, &back, err, sizeof(err)), 0);
	TEST_ASSERT(!superblock_sealed(&back));
	TEST_ASSERT(memcmp(back.id_key, plain.id_key, KEYS_LEN) == 0);
	TEST_ASSERT_EQ_INT(superblock_unlock(&back, NULL, 0, &opened), 0);
	TEST_ASSERT(!opened.sealed && memcmp(opened.id_key, plain.id_key, KEYS_LEN) == 0);
	keys_release(&k);
}

/* Replace the value of KEY= in TEXT with VALUE (TEXT has room). */
static void set_field(char *text, const char *key, const char *value)
{
	char *p = strstr(text, key), *end, rest[SUPERBLOCK_TEXT_MAX];

	TEST_ASSERT(p != NULL);
	if (!p)
		return;
	p += strlen(key);
	end = strchr(p, '\n');
	snprintf(rest, sizeof(rest), "%s", end);
	snprintf(p, SUPERBLOCK_TEXT_MAX - (size_t)(p - text), "%s%s", value, rest);
}

/* A sealed superblock whose fields were changed by hand does not unlock, or is not a superblock. */
static void test_superblock_changes_are_refused(void)
{
	static const struct {
		const char *key, *value;
		int parse, unlock;
	} cases[] = {
	    {"chunk_size=", "8388608", 0, -EBADMSG},
	    {"fs_id=", "0123456789abcdef0123456789abcdee", 0, -EBADMSG},
	    {"created=", "1", 0, -EBADMSG},
	    {"key_epoch=", "7", 0, -EKEYREJECTED},
	    {"kdf_ops=", "3", 0, -EKEYREJECTED},
	    {"mac=", "0000000000000000000000000000000000000000000000000000000000000000", 0,
	     -EBADMSG},
	    {"kdf_mem=", "1099511627776", -EPROTO, 0},
	    {"kdf=", "scrypt", -EPROTO, 0},
	    {"cipher=", "aes", -EPROTO, 0},
	    {"wrapped_key=", "00", -EPROTO, 0},
	    {"kdf_salt=", "zz", -EPROTO, 0},
	    {"chunk_size=", "3000", -EPROTO, 0},
	    {"key_epoch=", "0", -EPROTO, 0},
	    {"format=", "3", -ENOTSUP, 0},
	};
	struct keyring k, opened;
	struct superblock sb = sealed_sb(&k), back;
	char base[SUPERBLOCK_TEXT_MAX], text[SUPERBLOCK_TEXT_MAX], err[256];

	TEST_ASSERT(superblock_format(&sb, &k, base, sizeof(base)) > 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret;

		memcpy(text, base, sizeof(text));
		set_field(text, cases[i].key, cases[i].value);
		ret = superblock_parse(text, strlen(text), &back, err, sizeof(err));
		if (ret != cases[i].parse)
			fprintf(stderr, "case %s%s: parse %d\n", cases[i].key, cases[i].value, ret);
		TEST_ASSERT_EQ_INT(ret, cases[i].parse);
		if (ret)
			continue;
		ret = superblock_unlock(&back, pass, strlen(pass), &opened);
		if (ret != cases[i].unlock)
			fprintf(stderr, "case %s%s: unlock %d\n", cases[i].key, cases[i].value, ret);
		TEST_ASSERT_EQ_INT(ret, cases[i].unlock);
	}
	/* missing lines, and what is no superblock at all */
	static const char *const required[] = {"fs_id=", "chunk_size=", "cipher=", "kdf=",
					       "kdf_ops=", "kdf_mem=", "kdf_salt=", "key_epoch=",
					       "wrapped_key=", "mac="};
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		memcpy(text, base, sizeof(text));
		char *p = strstr(text, required[i]);
		p[0] = 'x'; /* renamed: absent */
		TEST_ASSERT_EQ_INT(superblock_parse(text, strlen(text), &back, err, sizeof(err)),
				   -EPROTO);
		TEST_ASSERT(strstr(err, "no valid") != NULL);
	}
	TEST_ASSERT_EQ_INT(superblock_parse("hello\n", 6, &back, err, sizeof(err)), -EPROTO);
	TEST_ASSERT_EQ_INT(superblock_parse(base, 20, &back, err, sizeof(err)), -EPROTO);
	/* an extra line is ignored, and so is a value spelled otherwise */
	memcpy(text, base, sizeof(text));
	strncat(text, "extra=1\n", sizeof(text) - strlen(text) - 1);
	TEST_ASSERT_EQ_INT(superblock_parse(text, strlen(text), &back, err, sizeof(err)), 0);
	TEST_ASSERT_EQ_INT(superblock_unlock(&back, pass, strlen(pass), &opened), 0);
	keys_release(&k);
	keys_release(&opened);
}

int main(void)
{
	TEST_RUN(test_wrap_and_unwrap);
	TEST_RUN(test_wrong_passphrase_and_changed_lock);
	TEST_RUN(test_rewrap_keeps_the_keys);
	TEST_RUN(test_mac);
	TEST_RUN(test_superblock_round_trips);
	TEST_RUN(test_superblock_changes_are_refused);
	return TEST_MAIN_END();
}
