/*
 * test_lease.c - the lease (journal/lease.c): its text, and the protocol on
 * the file backend: a live lease of another mount refused with its holder
 * named, an expired one taken over, --force, fencing seen by lease_check,
 * generations that only grow, release; mounts racing for a free bucket with
 * conditional puts.
 */
#include "cli/config.h"
#include "crypt/keys.h"
#include "journal/lease.h"
#include "store/objstore.h"
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/zero-lease-test-XXXXXX";

static struct objstore *open_store(void)
{
	struct config cfg;
	struct objstore *s = NULL;
	char err[256], text[512];

	snprintf(text, sizeof(text), "backend: file\nbucketDir: %s/bucket\n", dir);
	TEST_ASSERT_EQ_INT(config_parse("t.yml", text, strlen(text), &cfg, err, sizeof(err)), 0);
	TEST_ASSERT_EQ_INT(objstore_open_from_config(&cfg, &s, err, sizeof(err)), 0);
	config_release(&cfg);
	return s;
}

static int get_record(struct objstore *s, struct lease_record *rec)
{
	char *text = NULL;
	size_t len = 0;
	int ret = objstore_get(s, LEASE_KEY, 0, UINT64_MAX, &text, &len);

	if (ret == 0)
		ret = lease_record_parse(text, len, rec);
	free(text);
	return ret;
}

static void put_record(struct objstore *s, const struct lease_record *rec)
{
	char text[2048];
	int n = lease_record_format(rec, text, sizeof(text));

	TEST_ASSERT(n > 0);
	TEST_ASSERT_EQ_INT(objstore_put(s, LEASE_KEY, text, (size_t)n), 0);
}

static void test_text_round_trip(void)
{
	struct lease_record a = {.host = "box", .cache_id = "c0ffee", .nonce = "n1",
				 .boot_id = "b-1", .pid = 4242, .generation = 7,
				 .expires = 1700000060, .taken = 1700000000};
	struct lease_record b;
	char text[2048];
	int n = lease_record_format(&a, text, sizeof(text));

	TEST_ASSERT(n > 0);
	TEST_ASSERT(strncmp(text, "zero-lease\n", 11) == 0);
	TEST_ASSERT(strstr(text, "\ngeneration=7\n") && strstr(text, "\nstate=held\n"));
	TEST_ASSERT_EQ_INT(lease_record_parse(text, (size_t)n, &b), 0);
	TEST_ASSERT_EQ_STR(b.host, "box");
	TEST_ASSERT_EQ_STR(b.cache_id, "c0ffee");
	TEST_ASSERT_EQ_STR(b.nonce, "n1");
	TEST_ASSERT_EQ_STR(b.boot_id, "b-1");
	TEST_ASSERT_EQ_INT(b.pid, 4242);
	TEST_ASSERT_EQ_INT(b.generation, 7);
	TEST_ASSERT_EQ_INT(b.expires, 1700000060);
	TEST_ASSERT_EQ_INT(b.taken, 1700000000);
	TEST_ASSERT(!b.released);
	a.released = true;
	n = lease_record_format(&a, text, sizeof(text));
	TEST_ASSERT_EQ_INT(lease_record_parse(text, (size_t)n, &b), 0);
	TEST_ASSERT(b.released);
	/* no newline may get into a field; too small a buffer */
	snprintf(a.host, sizeof(a.host), "two\nlines");
	TEST_ASSERT_EQ_INT(lease_record_format(&a, text, sizeof(text)), -EINVAL);
	snprintf(a.host, sizeof(a.host), "box");
	TEST_ASSERT_EQ_INT(lease_record_format(&a, text, 20), -ENAMETOOLONG);
}

static void test_text_rejects(void)
{
	static const char *const bad[] = {
	    "",
	    "zero-superblock\nformat=1\n",
	    "zero-lease\nnonce=a\nexpires=1\nstate=held\n",		 /* no generation */
	    "zero-lease\nnonce=a\ngeneration=1\nstate=held\n",		 /* no expiry */
	    "zero-lease\ngeneration=1\nexpires=1\nstate=held\n",	 /* no nonce */
	    "zero-lease\nnonce=a\ngeneration=x\nexpires=1\nstate=held\n", /* not a number */
	    "zero-lease\nnonce=a\ngeneration=0\nexpires=1\nstate=held\n", /* generations start at 1 */
	    "zero-lease\nnonce=a\ngeneration=1\nexpires=1\nstate=maybe\n",
	    "zero-lease\nnonce=a\ngeneration=1\nexpires=1\n",		  /* no state */
	    "zero-lease\nnonce=a\ngeneration=1\nexpires=1\nstate=held\ngarbage\n",
	    "zero-lease\nnonce=a\ngeneration=1\nexpires=1\nstate=held\npid=-3\n",
	};
	static const char good[] = "zero-lease\nnonce=a\ngeneration=1\nexpires=1\nstate=held\n"
				   "future_key=whatever\n\nhost=h"; /* no final newline */
	struct lease_record r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int ret = lease_record_parse(bad[i], strlen(bad[i]), &r);
		if (ret != -EPROTO)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		TEST_ASSERT_EQ_INT(ret, -EPROTO);
	}
	TEST_ASSERT_EQ_INT(lease_record_parse(good, strlen(good), &r), 0);
	TEST_ASSERT_EQ_STR(r.host, "h");
}

static int fenced_calls;
static void on_fenced(void *arg)
{
	(void)arg;
	fenced_calls++;
}

static void test_protocol(void)
{
	struct objstore *s = open_store();
	struct lease *a = NULL, *b = NULL, *c = NULL;
	struct lease_record rec, other;
	struct lease_status st;
	char err[1024], pid[32];

	/* a free bucket: generation 1 */
	TEST_ASSERT_EQ_INT(lease_acquire(s, NULL, "cacheA", false, 30, &a, err, sizeof(err)), 0);
	TEST_ASSERT_EQ_STR(err, "");
	TEST_ASSERT_EQ_INT(lease_generation(a), 1);
	TEST_ASSERT(!lease_fenced(a));
	TEST_ASSERT_EQ_INT(lease_check(a), 0);
	TEST_ASSERT_EQ_INT(get_record(s, &rec), 0);
	TEST_ASSERT_EQ_STR(rec.cache_id, "cacheA");
	TEST_ASSERT_EQ_INT(rec.pid, getpid());
	TEST_ASSERT(rec.expires >= time(NULL) + 28);
	lease_on_fenced(a, on_fenced, NULL);

	/* another cache: refused, naming the holder */
	TEST_ASSERT_EQ_INT(lease_acquire(s, NULL, "cacheB", false, 30, &b, err, sizeof(err)), -EBUSY);
	snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
	TEST_ASSERT(strstr(err, "cache cacheA") && strstr(err, pid) && strstr(err, "expires"));
	/* the same cache id with a live pid (a copied cache): refused too */
	TEST_ASSERT_EQ_INT(lease_acquire(s, NULL, "cacheA", false, 30, &b, err, sizeof(err)), -EBUSY);

	/* --force takes it, with a warning; the first holder is fenced at its next check */
	TEST_ASSERT_EQ_INT(lease_acquire(s, NULL, "cacheB", true, 30, &b, err, sizeof(err)), 0);
	TEST_ASSERT(strstr(err, "--force") != NULL);
	TEST_ASSERT_EQ_INT(lease_generation(b), 2);
	TEST_ASSERT_EQ_INT(fenced_calls, 0);
	TEST_ASSERT_EQ_INT(lease_check(a), -ESTALE);
	TEST_ASSERT(lease_fenced(a));
	TEST_ASSERT_EQ_INT(fenced_calls, 1);
	TEST_ASSERT_EQ_INT(lease_check(a), -ESTALE);
	TEST_ASSERT_EQ_INT(fenced_calls, 1); /* once */
	lease_get_status(a, &st);
	TEST_ASSERT_EQ_INT(st.state, LEASE_FENCED);
	TEST_ASSERT_EQ_STR(st.holder.cache_id, "cacheB");
	TEST_ASSERT_EQ_INT(st.holder.generation, 2);
	/* the fenced one leaves the object alone at release */
	lease_release(a);
	TEST_ASSERT_EQ_INT(get_record(s, &rec), 0);
	TEST_ASSERT_EQ_STR(rec.cache_id, "cacheB");
	TEST_ASSERT(!rec.released);

	/* an expired lease of another cache is taken over */
	other = rec;
	snprintf(other.nonce, sizeof(other.nonce), "someone-else");
	snprintf(other.cache_id, sizeof(other.cache_id), "cacheZ");
	other.generation = 9;
	other.expires = time(NULL) - 1;
	put_record(s, &other);
	TEST_ASSERT_EQ_INT(lease_check(b), -ESTALE); /* and b lost it */
	TEST_ASSERT_EQ_INT(lease_acquire(s, NULL, "cacheC", false, 30, &c, err, sizeof(err)), 0);
	TEST_ASSERT(strstr(err, "expired") != NULL);
	TEST_ASSERT_EQ_INT(lease_generation(c), 10);
	lease_release(b);
	/* released after a takeover: kept, marked free, generation kept */
	lease_release(c);
	TEST_ASSERT_EQ_INT(get_record(s, &rec), 0);
	TEST_ASSERT(rec.released);
	TEST_ASSERT_EQ_INT(rec.generation, 10);
	TEST_ASSERT_EQ_INT(lease_acquire(s, NULL, "cacheB", false, 30, &b, err, sizeof(err)), 0);
	TEST_ASSERT_EQ_STR(err, "");
	TEST_ASSERT_EQ_INT(lease_generation(b), 11);
	lease_release(b);

	/* something that is not a lease: refused unless forced */
	TEST_ASSERT_EQ_INT(objstore_put(s, LEASE_KEY, "junk", 4), 0);
	TEST_ASSERT_EQ_INT(lease_acquire(s, NULL, "cacheB", false, 30, &b, err, sizeof(err)), -EPROTO);
	TEST_ASSERT(strstr(err, "not a Zero lease") != NULL);
	TEST_ASSERT_EQ_INT(lease_acquire(s, NULL, "cacheB", true, 30, &b, err, sizeof(err)), 0);
	/* a lease never taken over is deleted at release */
	TEST_ASSERT_EQ_INT(lease_generation(b), 1);
	lease_release(b);
	TEST_ASSERT_EQ_INT(get_record(s, &rec), -ENOENT);
	lease_release(NULL);
	objstore_free(s);
}

/* The renewal thread moves the expiry on, and notices a takeover by itself. */
static void test_renewal_and_fencing(void)
{
	struct objstore *s = open_store();
	struct lease *a = NULL;
	struct lease_record rec, first;
	char err[1024];

	fenced_calls = 0;
	TEST_ASSERT_EQ_INT(lease_acquire(s, NULL, "cacheA", false, 3, &a, err, sizeof(err)), 0);
	lease_on_fenced(a, on_fenced, NULL);
	TEST_ASSERT_EQ_INT(lease_start(a), 0);
	TEST_ASSERT_EQ_INT(get_record(s, &first), 0);
	sleep(3);
	TEST_ASSERT_EQ_INT(get_record(s, &rec), 0);
	TEST_ASSERT(rec.expires > first.expires);
	TEST_ASSERT_EQ_INT(rec.generation, first.generation);
	TEST_ASSERT(!lease_fenced(a));
	/* another mount writes generation + 1 */
	rec.generation++;
	snprintf(rec.nonce, sizeof(rec.nonce), "intruder");
	put_record(s, &rec);
	for (int i = 0; i < 40 && !lease_fenced(a); i++)
		usleep(100000);
	TEST_ASSERT(lease_fenced(a));
	TEST_ASSERT_EQ_INT(fenced_calls, 1);
	lease_release(a);
	TEST_ASSERT_EQ_INT(get_record(s, &rec), 0);
	TEST_ASSERT_EQ_STR(rec.nonce, "intruder"); /* not ours: left alone */
	objstore_free(s);
}

/* Mounts racing for a free bucket: with conditional puts exactly one wins. */
struct racer {
	struct objstore *s;
	pthread_barrier_t *start;
	char cache[16];
	struct lease *l;
	int ret;
};

static void *race_main(void *arg)
{
	struct racer *r = arg;
	char err[1024];

	pthread_barrier_wait(r->start);
	r->ret = lease_acquire(r->s, NULL, r->cache, false, 30, &r->l, err, sizeof(err));
	return NULL;
}

static void test_race_with_conditional_puts(void)
{
	enum { N = 8 };
	struct objstore *s = open_store();
	struct racer r[N];
	pthread_t th[N];
	pthread_barrier_t start;
	struct lease_status st;
	struct lease_record rec;

	TEST_ASSERT_EQ_INT(objstore_delete(s, LEASE_KEY), 0); /* a free bucket */
	for (int round = 0; round < 5; round++) {
		int winners = 0, winner = -1;

		pthread_barrier_init(&start, NULL, N);
		for (int i = 0; i < N; i++) {
			r[i] = (struct racer){.s = s, .start = &start};
			snprintf(r[i].cache, sizeof(r[i].cache), "cache%d", i);
			TEST_ASSERT_EQ_INT(pthread_create(&th[i], NULL, race_main, &r[i]), 0);
		}
		for (int i = 0; i < N; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&start);
		for (int i = 0; i < N; i++) {
			if (r[i].ret == 0) {
				winners++;
				winner = i;
			} else {
				TEST_ASSERT_EQ_INT(r[i].ret, -EBUSY);
			}
		}
		TEST_ASSERT_EQ_INT(winners, 1);
		if (winner < 0)
			break;
		TEST_ASSERT_EQ_INT(get_record(s, &rec), 0);
		TEST_ASSERT_EQ_STR(rec.cache_id, r[winner].cache);
		lease_get_status(r[winner].l, &st);
		TEST_ASSERT(st.conditional);
		TEST_ASSERT_EQ_INT(st.state, LEASE_HELD);
		lease_release(r[winner].l);
	}
	objstore_free(s);
}

/*
 * An encrypted filesystem's lease is sealed: the bucket holds none of its
 * fields (host, cache id, pid); a mount with another key reads it as no
 * lease of its own, and the same key takes and gives it back.
 */
static void test_sealed_lease(void)
{
	struct objstore *s = open_store();
	struct keyring k, other;
	struct lease *a = NULL, *b = NULL;
	struct lease_status st;
	char err[1024], host[256] = "";
	char *obj = NULL;
	size_t len = 0;

	objstore_delete(s, LEASE_KEY); /* what the tests before left */
	TEST_ASSERT_EQ_INT(keys_generate(&k), 0);
	TEST_ASSERT_EQ_INT(keys_generate(&other), 0);
	gethostname(host, sizeof(host) - 1);
	TEST_ASSERT_EQ_INT(lease_acquire(s, &k, "secret-cache-id", false, 30, &a, err, sizeof(err)),
			   0);
	TEST_ASSERT_EQ_INT(objstore_get(s, LEASE_KEY, 0, UINT64_MAX, &obj, &len), 0);
	TEST_ASSERT(obj && len > 72);
	TEST_ASSERT(obj && !memmem(obj, len, "secret-cache-id", 15));
	TEST_ASSERT(obj && !memmem(obj, len, host, strlen(host)));
	TEST_ASSERT(obj && !memmem(obj, len, "zero-lease", 10));
	free(obj);
	lease_get_status(a, &st);
	TEST_ASSERT_EQ_INT(st.state, LEASE_HELD);
	/* another filesystem's key (or none) cannot read it: not a lease of its own */
	TEST_ASSERT_EQ_INT(lease_acquire(s, &other, "cacheB", false, 30, &b, err, sizeof(err)),
			   -EPROTO);
	TEST_ASSERT_EQ_INT(lease_acquire(s, NULL, "cacheB", false, 30, &b, err, sizeof(err)),
			   -EPROTO);
	/* the same key sees a live lease of another mount */
	TEST_ASSERT_EQ_INT(lease_acquire(s, &k, "cacheB", false, 30, &b, err, sizeof(err)), -EBUSY);
	TEST_ASSERT(strstr(err, "secret-cache-id") != NULL);
	lease_release(a);
	TEST_ASSERT_EQ_INT(objstore_get(s, LEASE_KEY, 0, UINT64_MAX, &obj, &len), -ENOENT);
	keys_release(&k);
	keys_release(&other);
	objstore_free(s);
}

int main(void)
{
	char cmd[128];

	if (!mkdtemp(dir))
		return 1;
	TEST_RUN(test_text_round_trip);
	TEST_RUN(test_text_rejects);
	TEST_RUN(test_protocol);
	TEST_RUN(test_sealed_lease);
	TEST_RUN(test_renewal_and_fencing);
	TEST_RUN(test_race_with_conditional_puts);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	return TEST_MAIN_END();
}
