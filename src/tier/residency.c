/*
 * residency.c - where a file's bytes are, as users see and steer it:
 * SEEK_DATA / SEEK_HOLE (tier_lseek) and the user.zero.* attributes.
 * Read: user.zero.status (status.c writes it),
 * user.zero.residency (a file's local, remote and dirty bytes) and
 * user.zero.pinned. Written: user.zero.pin, user.zero.evict (evict.c does
 * it), user.zero.fetch (a range of chunks, through fetch.c) and
 * user.zero.sync (any path: upload everything now, `zero sync`).
 *
 * Invariants: a REMOTE chunk is data to SEEK_DATA / SEEK_HOLE, as if it
 * were local. user.zero.evict goes through evict_chunk (evict.c), so it
 * leaves DIRTY chunks, chunks a read is in and chunks being fetched; unlike
 * the evictor it does not skip pinned files.
 */
#include "tier/tier_internal.h"

#include "journal/journal.h"
#include "journal/lease.h"
#include "store/objstore.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- SEEK_DATA / SEEK_HOLE ---- */

int tier_lseek(struct fs *fs, struct fs_inode *ip, off_t off, int whence, off_t *result)
{
	uint64_t cs = fs->chunk_size, size = ip->attr.size, pos;
	off_t r;

	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		r = lseek(ip->fd, off, whence);
		if (r < 0)
			return -errno;
		*result = r;
		return 0;
	}
	if (off < 0)
		return -ENXIO;
	if ((uint64_t)off >= size)
		return -ENXIO;
	pos = (uint64_t)off;
	if (whence == SEEK_DATA) {
		uint64_t next_remote = UINT64_MAX;
		for (uint64_t idx = pos / cs; idx * cs < size; idx++) {
			if (chunk_bits_test(&ip->remote, idx)) {
				next_remote = idx * cs > pos ? idx * cs : pos;
				break;
			}
		}
		r = lseek(ip->fd, (off_t)pos, SEEK_DATA);
		uint64_t data = r < 0 ? UINT64_MAX : (uint64_t)r;
		uint64_t res = data < next_remote ? data : next_remote;
		if (res >= size)
			return -ENXIO;
		*result = (off_t)res;
		return 0;
	}
	for (;;) {
		if (chunk_bits_test(&ip->remote, pos / cs)) {
			pos = (pos / cs + 1) * cs; /* a REMOTE chunk is data */
			if (pos >= size) {
				*result = (off_t)size;
				return 0;
			}
			continue;
		}
		r = lseek(ip->fd, (off_t)pos, SEEK_HOLE);
		if (r < 0)
			return -errno;
		if ((uint64_t)r >= size || !chunk_bits_test(&ip->remote, (uint64_t)r / cs)) {
			*result = r > (off_t)size ? (off_t)size : r;
			return 0;
		}
		pos = (uint64_t)r;
	}
}

/* ---- user.zero.* attributes ---- */

struct residency {
	struct fs *fs;
	uint64_t size;
	uint64_t local, remote, dirty;
};

static int residency_cb(void *arg, uint64_t idx, enum meta_chunk_state state)
{
	struct residency *r = arg;
	uint64_t n = chunk_len(r->fs, r->size, idx);

	if (state == CHUNK_REMOTE) {
		r->remote += n;
	} else {
		r->local += n;
		if (state == CHUNK_DIRTY)
			r->dirty += n;
	}
	return 0;
}

/* Copy TEXT into BUF (SIZE 0: length only). */
static int xattr_reply(const char *text, size_t n, void *buf, size_t size, size_t *len)
{
	*len = n;
	if (size == 0)
		return 0;
	if (n > size)
		return -ERANGE;
	memcpy(buf, text, n);
	return 0;
}

int tier_getxattr(struct fs *fs, uint64_t ino, const char *name, void *buf, size_t size,
		  size_t *len)
{
	char text[4096];
	struct meta_inode in;
	int n, ret;

	ret = inode_load(fs, ino, &in);
	if (ret)
		return ret;
	if (strcmp(name, "user.zero.status") == 0) {
		n = tier_status_json(fs, text, sizeof(text));
		if (n < 0)
			return n;
		return xattr_reply(text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1,
				   buf, size, len);
	}
	if (strcmp(name, "user.zero.residency") == 0 && S_ISREG(in.mode)) {
		struct residency r = {fs, in.size, 0, 0, 0};
		ret = meta_chunk_residency(fs->meta, ino, residency_cb, &r);
		if (ret)
			return ret;
		n = snprintf(text, sizeof(text),
			     "size=%" PRIu64 " local=%" PRIu64 " remote=%" PRIu64 " dirty=%" PRIu64
			     " pinned=%d\n",
			     in.size, r.local, r.remote, r.dirty, !!(in.flags & META_INODE_PINNED));
		return xattr_reply(text, (size_t)n, buf, size, len);
	}
	if (strcmp(name, "user.zero.pinned") == 0) {
		n = snprintf(text, sizeof(text), "%d", !!(in.flags & META_INODE_PINNED));
		return xattr_reply(text, (size_t)n, buf, size, len);
	}
	return -ENODATA;
}

/* Parse "FIRST-LAST" or "FIRST" chunk indices. */
static int parse_range(const char *v, size_t size, uint64_t *first, uint64_t *last)
{
	char tmp[64];
	char *end;

	if (size == 0 || size >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, v, size);
	tmp[size] = '\0';
	*first = strtoull(tmp, &end, 10);
	*last = *first;
	if (*end == '-')
		*last = strtoull(end + 1, &end, 10);
	return (*end == '\0' || *end == '\n') && *first <= *last ? 0 : -EINVAL;
}

int tier_setxattr(struct fs *fs, uint64_t ino, const char *name, const void *value, size_t size)
{
	struct meta_inode in;
	struct fs_inode *ip;
	uint64_t first, last;
	int ret = inode_load(fs, ino, &in);

	if (ret)
		return ret;
	if (strcmp(name, "user.zero.pin") == 0) {
		bool on = size == 1 && ((const char *)value)[0] == '1';
		if (!on && !(size == 1 && ((const char *)value)[0] == '0'))
			return -EINVAL;
		in.flags = on ? in.flags | META_INODE_PINNED : in.flags & ~META_INODE_PINNED;
		return inode_store(fs, &in);
	}
	if (strcmp(name, "user.zero.sync") == 0) {
		/* `zero sync`: everything dirty goes up now, without uploadDelay, for a while */
		fs->tier->sync_until = time(NULL) + SYNC_WINDOW_S;
		pthread_cond_broadcast(&fs->tier->work_cond);
		return 0;
	}
	if (!S_ISREG(in.mode))
		return -EINVAL;
	if (strcmp(name, "user.zero.evict") == 0)
		return evict_file(fs, ino);
	if (strcmp(name, "user.zero.fetch") == 0) {
		ret = parse_range(value, size, &first, &last);
		if (ret)
			return ret;
		ip = itable_get(fs, ino);
		if (!ip)
			return -ENOMEM;
		if (!ip->attr_valid) {
			ip->attr = in;
			ip->attr_valid = true;
		}
		if (last * fs->chunk_size >= in.size)
			last = in.size ? (in.size - 1) / fs->chunk_size : 0;
		ret = first * fs->chunk_size < in.size ? chunks_load(fs, ip) : 0;
		if (ret == 0 && first * fs->chunk_size < in.size) {
			/* the read-ahead threads fetch alongside this one */
			for (uint64_t idx = first + 1; idx <= last; idx++)
				ra_enqueue(fs, ip, idx);
			ret = tier_make_local(fs, ip, first, last);
		}
		inode_maybe_free(fs, ip);
		return ret;
	}
	return -ENOTSUP;
}
