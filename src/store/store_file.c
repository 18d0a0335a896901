/*
 * store_file.c - the "file" backend: a local directory acting as a bucket.
 *
 * Object "a/b/c" lives in the file DIR/a.d/b.d/c.o: the '/'s of keys become
 * directories (suffix ".d"), made on demand and removed again when a delete
 * empties them, and objects are files with the suffix ".o". The suffixes
 * keep "a/b" and "a/b/c" apart, as S3 does, and any other name in the tree
 * (temporary files, strays) is simply not an object. A key component may
 * therefore be at most 253 bytes (-ENAMETOOLONG beyond).
 *
 * Invariants:
 *  1. A put writes DIR/.../.zero-tmp.XXXXXX, fsyncs it, renames it over the
 *     key and fsyncs the directory: after a crash the key holds the old
 *     object, no object, or the whole new one (rule 2 of objstore.h).
 *  2. Temporary files don't end in ".o", so they are never listed or read;
 *     a leftover one (crash during a put) is garbage that no reader sees,
 *     and listings remove those older than a day.
 *  3. Nothing is cached in memory, so handles are trivially thread-safe.
 *  4. Conditional puts (file_put_if) hold an exclusive flock on
 *     DIR/.zero-cond.lock from reading the key's current tag to the rename;
 *     plain puts and deletes hold it shared around their rename or unlink.
 *     So a conditional put is atomic against every other change, across
 *     processes and machines sharing DIR, as S3's is. The tag is a
 *     digest of the content (truncated SHA-256): inode numbers and
 *     timestamps are reused, so a tag made of them could match a newer
 *     object (A-B-A), where equal tags here mean equal bytes.
 *
 * Listing walks the subtree under the prefix's directory and sorts it, so a
 * page costs O(objects under the prefix); fine for a local default store,
 * and the one place to optimise if a file bucket ever gets huge.
 */
#include "store/backend.h"

#include "common/log.h"

#include <openssl/evp.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_PREFIX ".zero-tmp." /* temporary files: never end in ".o" */
#define TMP_MAX_AGE_S 86400	/* listings remove temporary files older than this */
#define COND_LOCK ".zero-cond.lock" /* rule 4; not an object (no ".o") */
#define TAG_BYTES 16		    /* of the SHA-256 of the content */

struct store_file {
	struct objstore base;
	char *dir; /* owned; no trailing '/' */
};

static struct store_file *to_file(struct objstore *s)
{
	return (struct store_file *)s;
}

/* Record and log a failure of OP on KEY; returns ERR. ENOENT is not logged. */
static int file_fail(int err, const char *op, const char *key)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "%s %s: %s", op, key, strerror(-err));
	objstore_error_set(err, 0, err == -ENOENT ? "NoSuchKey" : "LocalIOError", msg);
	if (err != -ENOENT)
		log_error("file store: %s", msg);
	return err;
}

/* DIR/a.d/b.d/c.o for key "a/b/c"; NULL with *R set on failure. */
static char *file_path(struct store_file *f, const char *key, int *r)
{
	size_t dlen = strlen(f->dir), n = dlen;
	char *path = malloc(dlen + 2 * strlen(key) + 4), *p;
	const char *c = key;

	if (!path) {
		*r = -ENOMEM;
		return NULL;
	}
	memcpy(path, f->dir, dlen);
	p = path + n;
	for (;;) {
		const char *slash = strchr(c, '/');
		size_t clen = slash ? (size_t)(slash - c) : strlen(c);

		if (clen > 253) {
			free(path);
			*r = -ENAMETOOLONG;
			return NULL;
		}
		*p++ = '/';
		memcpy(p, c, clen);
		p += clen;
		memcpy(p, slash ? ".d" : ".o", 2);
		p += 2;
		if (!slash)
			break;
		c = slash + 1;
	}
	*p = '\0';
	return path;
}

/* mkdir -p of PATH's parent directories (PATH itself is a file). */
static int make_parents(char *path)
{
	for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			int r = -errno;

			*p = '/';
			return r;
		}
		*p = '/';
	}
	return 0;
}

static int fsync_parent(const char *path)
{
	char *dir = strdup(path);
	char *slash;
	int fd, r = 0;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash && slash != dir)
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out_free;
	}
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
out_free:
	free(dir);
	return r;
}

static int copy_source(int fd, const struct objstore_source *src)
{
	char *buf = NULL;
	uint64_t done = 0;
	int r = 0;

	if (src->buf) {
		const char *p = src->buf;

		while (done < src->len) {
			ssize_t n = write(fd, p + done, src->len - done);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			done += (uint64_t)n;
		}
		return 0;
	}
	buf = malloc(1 << 20);
	if (!buf)
		return -ENOMEM;
	while (done < src->len) {
		size_t want = src->len - done > (1 << 20) ? (1 << 20) : (size_t)(src->len - done);
		ssize_t n = pread(src->fd, buf, want, (off_t)(src->offset + done));
		ssize_t w;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out_free;
		}
		if (n == 0) {
			r = -EIO; /* source shorter than announced */
			goto out_free;
		}
		for (ssize_t off = 0; off < n; off += w) {
			w = write(fd, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR) {
				w = 0;
				continue;
			}
			if (w < 0) {
				r = -errno;
				goto out_free;
			}
		}
		done += (uint64_t)n;
	}
out_free:
	free(buf);
	return r;
}

/*
 * Rule 4: take the lock on DIR/COND_LOCK with OP (LOCK_SH, LOCK_EX). The
 * descriptor to close to drop it, or -errno.
 */
static int cond_lock(struct store_file *f, int op)
{
	char *lockpath;
	int fd, r;

	if (asprintf(&lockpath, "%s/" COND_LOCK, f->dir) < 0)
		return -ENOMEM;
	fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	r = fd < 0 ? -errno : 0;
	free(lockpath);
	while (r == 0 && flock(fd, op) < 0) {
		if (errno == EINTR)
			continue;
		r = -errno;
		close(fd);
	}
	return r < 0 ? r : fd;
}

/* A put; LOCKED: the caller holds the lock of rule 4 exclusively. */
static int put_object(struct store_file *f, const char *key, const struct objstore_source *src,
		      bool locked)
{
	char *path = NULL, *tmp = NULL;
	int fd = -1, r, attempt, lfd = -1;

	path = file_path(f, key, &r);
	if (!path)
		return file_fail(r, "access", key);
	if (asprintf(&tmp, "%.*s/" TMP_PREFIX "XXXXXX", (int)(strrchr(path, '/') - path), path) <
	    0) {
		tmp = NULL;
		r = -ENOMEM;
		goto out_free;
	}
	/* A concurrent delete may remove an emptied parent between mkdir and mkstemp. */
	for (attempt = 0; attempt < 5; attempt++) {
		r = make_parents(path);
		if (r < 0)
			goto out_fail;
		memcpy(tmp + strlen(tmp) - 6, "XXXXXX", 6);
		fd = mkostemp(tmp, O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT)
			break;
	}
	if (fd < 0) {
		r = -errno;
		goto out_fail;
	}
	r = copy_source(fd, src);
	if (r == 0 && fchmod(fd, 0600) < 0)
		r = -errno;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		goto out_unlink;
	if (!locked) {
		lfd = cond_lock(f, LOCK_SH);
		if (lfd < 0) {
			r = lfd;
			goto out_unlink;
		}
	}
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto out_unlink;
	}
	if (lfd >= 0)
		close(lfd); /* drops the lock */
	lfd = -1;
	r = fsync_parent(path);
	if (r < 0)
		goto out_fail;
	goto out_free;
out_unlink:
	if (lfd >= 0)
		close(lfd);
	unlink(tmp);
out_fail:
	file_fail(r, "put", key);
out_free:
	free(tmp);
	free(path);
	return r;
}

static int file_put(struct objstore *s, const char *key, const struct objstore_source *src)
{
	return put_object(to_file(s), key, src, false);
}

/* Rule 4: the tag of digest MD into TAG (OBJSTORE_ETAG_MAX bytes). */
static void tag_final(EVP_MD_CTX *md, char *tag)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_DigestFinal_ex(md, d, &n);
	for (unsigned i = 0; i < TAG_BYTES && i < n; i++)
		snprintf(tag + 2 * i, 3, "%02x", d[i]);
}

static EVP_MD_CTX *tag_begin(void)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (md && !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(md);
		md = NULL;
	}
	return md;
}

static int file_get(struct objstore *s, const char *key, uint64_t off, uint64_t len,
		    struct objstore_sink *sink)
{
	struct store_file *f = to_file(s);
	char *path, *buf = NULL;
	EVP_MD_CTX *md = NULL;
	struct stat st;
	uint64_t end, pos;
	int fd, r = 0;

	path = file_path(f, key, &r);
	if (!path)
		return file_fail(r, "access", key);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = file_fail(errno == ENOTDIR || errno == EISDIR ? -ENOENT : -errno, "get", key);
		goto out_free_path;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = file_fail(S_ISDIR(st.st_mode) ? -ENOENT : -EIO, "get", key);
		goto out_close;
	}
	end = (uint64_t)st.st_size;
	if (len != UINT64_MAX && off + len < end && off + len >= off)
		end = off + len;
	/* A tag is of the whole object: only a read of all of it gets one. */
	if (sink->want_etag && off == 0 && end == (uint64_t)st.st_size && !(md = tag_begin())) {
		r = -ENOMEM;
		goto out_close;
	}
	buf = malloc(1 << 20);
	if (!buf) {
		r = -ENOMEM;
		goto out_close;
	}
	for (pos = off; pos < end;) {
		size_t want = end - pos > (1 << 20) ? (1 << 20) : (size_t)(end - pos);
		ssize_t n = pread(fd, buf, want, (off_t)pos);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = file_fail(-errno, "get", key);
			goto out_close;
		}
		if (n == 0)
			break;
		r = objstore_sink_write(sink, buf, (size_t)n);
		if (r < 0) {
			file_fail(r, "get (writing the destination)", key);
			goto out_close;
		}
		if (md)
			EVP_DigestUpdate(md, buf, (size_t)n);
		pos += (uint64_t)n;
	}
	if (md)
		tag_final(md, sink->etag);
out_close:
	EVP_MD_CTX_free(md);
	free(buf);
	close(fd);
out_free_path:
	free(path);
	return r;
}

/*
 * Rule 4: the tag of the object at PATH into TAG, or "" when there is none.
 * 0 or -errno.
 */
static int current_tag(const char *path, char *tag)
{
	EVP_MD_CTX *md;
	char buf[8192];
	ssize_t n;
	int fd, r = 0;

	tag[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	md = tag_begin();
	if (!md) {
		r = -ENOMEM;
		goto out_close;
	}
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out_close;
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
	}
	tag_final(md, tag);
out_close:
	EVP_MD_CTX_free(md);
	close(fd);
	return r;
}

static int file_put_if(struct objstore *s, const char *key, const struct objstore_source *src,
		       const char *if_match, char *etag)
{
	struct store_file *f = to_file(s);
	char *path = NULL, cur[OBJSTORE_ETAG_MAX];
	EVP_MD_CTX *md = NULL;
	int lfd = -1, r;

	if (!src->buf)
		return -EINVAL; /* objstore_put_if passes bytes, never a descriptor */
	path = file_path(f, key, &r);
	if (!path)
		return file_fail(r, "access", key);
	lfd = cond_lock(f, LOCK_EX);
	if (lfd < 0) {
		r = file_fail(lfd, "lock for a conditional put of", key);
		goto out_free;
	}
	r = current_tag(path, cur);
	if (r < 0) {
		file_fail(r, "conditional put (reading the current object)", key);
		goto out_free;
	}
	if (if_match ? strcmp(cur, if_match) != 0 : cur[0] != '\0') {
		char msg[160];

		snprintf(msg, sizeof(msg), "%s: %s", key,
			 if_match ? (cur[0] ? "the object changed" : "the object is gone")
				  : "the object exists");
		objstore_error_set(-EEXIST, 412, "PreconditionFailed", msg);
		r = -EEXIST;
		goto out_free;
	}
	r = put_object(f, key, src, true);
	if (r < 0)
		goto out_free;
	md = tag_begin();
	if (!md) {
		r = -ENOMEM;
		goto out_free;
	}
	EVP_DigestUpdate(md, src->buf, (size_t)src->len);
	tag_final(md, etag);
out_free:
	EVP_MD_CTX_free(md);
	if (lfd >= 0)
		close(lfd); /* drops the lock */
	free(path);
	return r;
}

static int file_conditional(struct objstore *s)
{
	(void)s;
	return 1;
}

static int file_head(struct objstore *s, const char *key, struct objstore_info *info)
{
	struct store_file *f = to_file(s);
	struct stat st;
	char *path;
	int r = 0;

	path = file_path(f, key, &r);
	if (!path)
		return file_fail(r, "access", key);
	if (stat(path, &st) < 0)
		r = file_fail(errno == ENOTDIR ? -ENOENT : -errno, "head", key);
	else if (!S_ISREG(st.st_mode))
		r = file_fail(-ENOENT, "head", key);
	else {
		info->size = (uint64_t)st.st_size;
		info->mtime = st.st_mtime;
		snprintf(info->etag, sizeof(info->etag), "%llx-%llx", (unsigned long long)st.st_ino,
			 (unsigned long long)st.st_mtim.tv_nsec);
	}
	free(path);
	return r;
}

static int file_del(struct objstore *s, const char *key)
{
	struct store_file *f = to_file(s);
	char *path, *slash;
	size_t rootlen = strlen(f->dir);
	int r = 0, lfd, e = 0;

	path = file_path(f, key, &r);
	if (!path)
		return r == -ENAMETOOLONG ? 0 : file_fail(r, "delete", key); /* can't exist */
	lfd = cond_lock(f, LOCK_SH);
	if (lfd < 0) {
		r = file_fail(lfd, "lock for a delete of", key);
		goto out_free;
	}
	if (unlink(path) < 0)
		e = errno;
	close(lfd);
	if (e && e != ENOENT && e != ENOTDIR) {
		r = file_fail(e == EISDIR ? -ENOENT : -e, "delete", key);
		if (r == -ENOENT)
			r = 0;
		goto out_free;
	}
	/* Remove directories the delete emptied (stops at the first non-empty one). */
	while ((slash = strrchr(path, '/')) && (size_t)(slash - path) > rootlen) {
		*slash = '\0';
		if (rmdir(path) < 0)
			break;
	}
out_free:
	free(path);
	return r;
}

static int file_delete_many(struct objstore *s, const char *const *keys, size_t n)
{
	int first = 0;

	for (size_t i = 0; i < n; i++) {
		int r = file_del(s, keys[i]);

		if (r < 0 && !first)
			first = r;
	}
	return first;
}

struct key_vec {
	struct objstore_entry *v;
	size_t n, cap;
};

static int key_vec_push(struct key_vec *kv, const char *key, const struct stat *st)
{
	if (kv->n == kv->cap) {
		size_t cap = kv->cap ? kv->cap * 2 : 256;
		struct objstore_entry *bigger = realloc(kv->v, cap * sizeof(*bigger));

		if (!bigger)
			return -ENOMEM;
		kv->v = bigger;
		kv->cap = cap;
	}
	kv->v[kv->n].key = strdup(key);
	if (!kv->v[kv->n].key)
		return -ENOMEM;
	kv->v[kv->n].size = (uint64_t)st->st_size;
	kv->v[kv->n].mtime = st->st_mtime;
	kv->n++;
	return 0;
}

/*
 * Collect the objects in directory DIRPATH, whose keys start with REL
 * ("" or ending in '/'), that have PREFIX and sort after TOKEN.
 */
static int walk(const char *dirpath, const char *rel, const char *prefix, const char *token,
		struct key_vec *kv)
{
	size_t plen = strlen(prefix);
	struct dirent *de;
	DIR *d;
	int r = 0;

	d = opendir(dirpath);
	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	while ((de = readdir(d))) {
		size_t nlen = strlen(de->d_name), klen;
		bool is_dir;
		char *key;
		struct stat st;

		if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
			/*
			 * Left by a put that crashed. A day old, no put can still
			 * be writing it: remove it while we pass by.
			 */
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(st.st_mode) && st.st_mtime < time(NULL) - TMP_MAX_AGE_S)
				unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (nlen < 3 || de->d_name[nlen - 2] != '.' ||
		    (de->d_name[nlen - 1] != 'd' && de->d_name[nlen - 1] != 'o'))
			continue; /* not ours: a stray */
		is_dir = de->d_name[nlen - 1] == 'd';
		if (asprintf(&key, "%s%.*s%s", rel, (int)(nlen - 2), de->d_name,
			     is_dir ? "/" : "") < 0) {
			r = -ENOMEM;
			break;
		}
		/* Prune subtrees that can't hold a key with PREFIX. */
		klen = strlen(key);
		if (strncmp(key, prefix, klen < plen ? klen : plen) != 0 ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			free(key);
			continue; /* elsewhere, or raced with a delete */
		}
		if (is_dir && S_ISDIR(st.st_mode)) {
			char *sub;

			if (asprintf(&sub, "%s/%s", dirpath, de->d_name) < 0)
				r = -ENOMEM;
			else
				r = walk(sub, key, prefix, token, kv);
			free(sub);
		} else if (!is_dir && S_ISREG(st.st_mode) && klen >= plen &&
			   (!token || strcmp(key, token) > 0)) {
			r = key_vec_push(kv, key, &st);
		}
		free(key);
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct objstore_entry *)a)->key,
		      ((const struct objstore_entry *)b)->key);
}

static int file_list(struct objstore *s, const char *prefix, const char *token, size_t max,
		     struct objstore_list *page)
{
	struct store_file *f = to_file(s);
	struct key_vec kv = {0};
	const char *slash = strrchr(prefix, '/');
	char *rel = NULL, *dirpath = NULL;
	int r = 0;

	/* Start at the deepest directory the prefix names: "a/b/x" -> DIR/a.d/b.d */
	if (slash) {
		rel = strndup(prefix, (size_t)(slash - prefix + 1));
		if (rel) {
			/* file_path of "a/b/_" is DIR/a.d/b.d/_.o; cut the last component. */
			char *probe;

			if (asprintf(&probe, "%s_", rel) >= 0) {
				dirpath = file_path(f, probe, &r);
				free(probe);
				if (dirpath)
					*strrchr(dirpath, '/') = '\0';
			}
		}
	} else {
		rel = strdup("");
		dirpath = strdup(f->dir);
	}
	if (!rel || !dirpath) {
		free(rel);
		free(dirpath);
		if (r == -ENAMETOOLONG)
			return 0; /* no key can have this prefix */
		return -ENOMEM;
	}
	r = walk(dirpath, rel, prefix, token, &kv);
	free(rel);
	free(dirpath);
	if (r < 0)
		goto out_fail;
	if (kv.n)
		qsort(kv.v, kv.n, sizeof(*kv.v), entry_cmp);
	if (kv.n > max) {
		page->next_token = strdup(kv.v[max - 1].key);
		if (!page->next_token) {
			r = -ENOMEM;
			goto out_fail;
		}
		for (size_t i = max; i < kv.n; i++)
			free(kv.v[i].key);
		kv.n = max;
	}
	page->entries = kv.v;
	page->count = kv.n;
	return 0;
out_fail:
	for (size_t i = 0; i < kv.n; i++)
		free(kv.v[i].key);
	free(kv.v);
	return file_fail(r, "list", prefix);
}

static void file_free(struct objstore *s)
{
	struct store_file *f = to_file(s);

	free(f->dir);
	free(f);
}

static const struct objstore_ops file_ops = {
    .name = "file",
    .put = file_put,
    .put_if = file_put_if,
    .conditional = file_conditional,
    .get = file_get,
    .head = file_head,
    .del = file_del,
    .delete_many = file_delete_many,
    .list = file_list,
    .free = file_free,
};

int store_file_open(const char *dir, struct objstore **out, char *err, size_t errlen)
{
	struct store_file *f;
	char *path;
	size_t n;
	int r;

	path = strdup(dir);
	if (!path)
		return -ENOMEM;
	n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		path[--n] = '\0';
	/* Create the directory (and parents) on first use: the embedded default. */
	{
		char *probe;

		if (asprintf(&probe, "%s/x", path) < 0) {
			free(path);
			return -ENOMEM;
		}
		r = make_parents(probe);
		free(probe);
	}
	if (r < 0 || access(path, R_OK | W_OK | X_OK) < 0) {
		r = r < 0 ? r : -errno;
		snprintf(err, errlen, "bucket directory %s: %s", path, strerror(-r));
		free(path);
		return r;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		free(path);
		return -ENOMEM;
	}
	f->base.ops = &file_ops;
	f->dir = path;
	if (asprintf(&f->base.describe, "file %s", path) < 0) {
		f->base.describe = NULL;
		file_free(&f->base);
		return -ENOMEM;
	}
	*out = &f->base;
	return 0;
}
