"""Tiering, end to end: a mounted Zero with a small cache target (64 MB) on
the file backend and on s3rver (through the signature-verifying proxy),
driven only through the filesystem, `zero mount/umount`, `zero bucket` and
the user.zero.* attributes.

Covered: filling the bucket far past the target (disk usage stays within
target + one chunk, everything reads back byte-exact after dropping the page
cache and after a remount), dedup (identical files and chunks stored once,
kept while referenced), random writes into evicted files, truncate/unlink
(and unlink of an open file) freeing objects after GC, backpressure (writers
blocked and released; ENOSPC after backpressureTimeout), local reads and
writes with the server stopped (also across a remount), EIO in bounded time
for remote-only data with the server stopped or hung (and said in the log),
damaged or deleted objects (EIO, never wrong data), concurrent readers of a
remote chunk sharing one GET, a crash (SIGKILL) losing nothing fsync'ed, and
buckets that are refused (another filesystem, a newer format, a foreign
superblock, objects without a superblock, the wrong bucket for a cache).

Every test fails if the daemon's log shows a sanitizer report.
"""

import ctypes
import errno
import hashlib
import os
import random
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import Zero, free_port, s3_conf, s3rver_server
from tierutil import (CHUNK, TARGET, MiB, FileSpec, Mount, drop_caches, gen, is_mounted,
                      varied_files, wait_for)

def check_files(root, specs):
    bad = [e for e in (s.check(root) for s in specs) if e]
    assert not bad, "%d of %d files differ:\n%s" % (len(bad), len(specs), "\n".join(bad[:20]))


def settle_usage(m, limit, timeout=15):
    """Wait until the cache's disk usage is at most LIMIT; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        used = m.cache_usage()
        if used <= limit:
            return used
        if time.monotonic() > deadline:
            raise AssertionError("cache data uses %d bytes, more than target + one chunk (%d), "
                                 "%d s after uploads finished; status: %s"
                                 % (used, limit, timeout, m.status()))
        time.sleep(0.25)


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


def write_file(path, data, bufsize=MiB):
    with open(path, "wb") as f:
        for i in range(0, len(data), bufsize):
            f.write(data[i:i + bufsize])


def cat(path, timeout):
    """Read PATH in a child process: (seconds, exit code, stderr)."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        return time.monotonic() - t0, None, "still blocked after %d s" % timeout
    return time.monotonic() - t0, p.returncode, p.stderr.decode(errors="replace")


# ---------------------------------------------------------------------------
# 512 MiB through a 64 MB cache

# 512 MiB on the file backend (8x the target). On s3 every body goes through
# the Python proxy, which checksums it (about 9 MB/s for incompressible
# chunks on a 2-core machine): 512 MiB took 50-70 s there, a third of the
# whole file's time, so s3 gets 320 MiB, still 5x the target.
FILL = {"file": 512 * MiB, "s3": 320 * MiB}


def test_fill_far_past_target_then_read_back(backend, make_fs):
    m = make_fs(backend)
    specs = varied_files(FILL[backend])
    total = sum(s.size for s in specs)
    assert total >= 4 * TARGET
    with m.peak_usage(0.2) as peak:
        for s in specs:
            s.write(m.mnt)
        st = m.wait_uploaded(240)
    print("%s: %d MiB in %d files; peak cache usage while writing %d bytes"
          % (backend, total // MiB, len(specs), peak[0]))
    # eviction keeps up while writing (a second or two behind), not only at the end
    assert peak[0] <= 4 * TARGET, (
        "the cache grew to %d bytes while writing %d through a %d-byte target"
        % (peak[0], total, TARGET))
    limit = TARGET + CHUNK
    settle_usage(m, limit)
    st = m.status()
    assert st["remote_chunks"] > 0 and st["evictions"] > 0, st
    assert st["upload_errors"] == 0, st
    assert st["cache_used"] <= limit, st

    def counted_as_listed():
        # (the collector deletes the objects of chunks written over in the background:
        # a listing taken while it runs can be one ahead of or behind the count)
        st, listed = m.status(), m.bucket_chunks()
        return (st, listed) if st["bucket_objects"] == len(listed) else None
    st, listed = wait_for(counted_as_listed, 30, "the bucket's objects to be those counted", 1)
    # every chunk of every file has an object: the bucket holds at least the
    # data's distinct chunks minus what dedup may fold (zeros, nothing else)
    assert len(listed) >= total // CHUNK - 8, (len(listed), total // CHUNK)
    assert sum(listed.values()) == st["bucket_bytes"], (sum(listed.values()), st)

    drop_caches()
    with m.peak_usage(0.2) as peak:
        check_files(m.mnt, specs)
    st = m.status()
    assert st["fetches"] > 0 and st["fetch_errors"] == 0, st
    print("peak cache usage while reading back %d bytes" % peak[0])
    # fetches wake the evictor: it does not wait for its next walk of the cache
    assert peak[0] <= 4 * TARGET, (
        "the cache grew to %d bytes while reading back through a %d-byte target"
        % (peak[0], TARGET))
    settle_usage(m, limit)
    # and once more from a fresh mount
    m.umount()
    m.mount()
    drop_caches()
    check_files(m.mnt, specs)
    settle_usage(m, limit)


@pytest.mark.parametrize("chunk", [CHUNK, None], ids=["4MiB", "default"])
def test_reading_a_file_larger_than_the_target_keeps_the_cache_near_it(make_fs, own_s3rver,
                                                                       chunk):
    # One cold read of 3x the target, from s3rver directly (fetches slow
    # enough that the reader always has some in flight): the chunks behind
    # the reader are evicted while it reads on, only the chunks a read is in
    # are kept. (When any read or fetch of the file kept all of its chunks,
    # the whole file stayed: 512 MiB in the cache after one dd of it.) Also
    # with the default chunk size, where read-ahead is held to a quarter of
    # the target (a single chunk here).
    store = s3_conf(own_s3rver["port"], "x")
    store.pop("prefix")
    m = make_fs(store, chunkSize=chunk and "%dMiB" % (chunk // MiB))
    want, chunk = chunk or 16 * MiB, m.status()["chunk_size"]
    assert chunk == want, (chunk, want)
    data = gen("random", 192 * MiB, 61)
    write_file(m.mnt / "big", data)
    m.wait_uploaded(120)
    m.evict(m.mnt / "big")
    settle_usage(m, chunk)
    drop_caches()
    with m.peak_usage(0.05) as peak:  # a reader in a process of its own: no pauses
        subprocess.run(["dd", "if=%s" % (m.mnt / "big"), "of=/dev/null", "bs=1M",
                        "status=none"], check=True, timeout=300)
    out = subprocess.run(["sha256sum", str(m.mnt / "big")], stdout=subprocess.PIPE,
                         check=True, timeout=300).stdout
    assert out.split()[0].decode() == hashlib.sha256(data).hexdigest()
    print("peak cache usage reading %d bytes through a %d-byte target: %d"
          % (len(data), TARGET, peak[0]))
    assert peak[0] <= 2 * TARGET, peak[0]
    settle_usage(m, TARGET + chunk)


# ---------------------------------------------------------------------------
# dedup

def test_identical_files_are_stored_once(backend, make_fs):
    m = make_fs(backend)
    mnt = m.mnt
    data = gen("random", 3 * CHUNK + 1000, 11)
    write_file(mnt / "a", data)
    m.wait_uploaded(60)
    keys0 = m.bucket_chunks()
    st0 = m.status()
    assert len(keys0) == 4 and st0["bucket_objects"] == 4, (keys0, st0)

    os.mkdir(mnt / "sub")
    write_file(mnt / "b", data)
    write_file(mnt / "sub" / "c", data)
    # a file made of a's first chunk three times: nothing new to store
    write_file(mnt / "e", data[:CHUNK] * 3)
    st = m.wait_uploaded(60)
    assert set(m.bucket_chunks()) == set(keys0)
    assert st["uploads"] == st0["uploads"] and st["uploaded_bytes"] == st0["uploaded_bytes"], (
        "identical chunks were uploaded again: uploads %d -> %d" % (st0["uploads"], st["uploads"]))
    hits = st["dedup_hits"] - st0["dedup_hits"]
    assert hits == 4 + 4 + 3, "dedup_hits grew by %d, expected 11" % hits
    assert st["bucket_objects"] == 4 and st["bucket_bytes"] == st0["bucket_bytes"], st

    # one new chunk four times in one file: one object
    y = gen("random", CHUNK, 12)
    write_file(mnt / "f", y * 4)
    st = m.wait_uploaded(60)
    keys1 = m.bucket_chunks()
    assert len(keys1) == 5 and set(keys0) <= set(keys1), (
        "identical chunks must be stored once: expected 5 objects, the bucket has %d"
        % len(keys1), sorted(keys1))
    assert st["bucket_objects"] == 5, st

    for name in ("a", "b", "sub/c", "e", "f"):
        m.evict(mnt / name)
    drop_caches()
    assert read_all(mnt / "a") == data
    assert read_all(mnt / "b") == data
    assert read_all(mnt / "sub" / "c") == data
    assert read_all(mnt / "e") == data[:CHUNK] * 3
    assert read_all(mnt / "f") == y * 4

    # an object stays while any file references it, and goes with the last
    os.unlink(mnt / "a")
    os.unlink(mnt / "b")
    os.unlink(mnt / "e")
    os.unlink(mnt / "f")
    wait_for(lambda: len(m.bucket_chunks()) == 4, 30,
             "the object of f's chunk to be collected (4 left)")
    time.sleep(2)  # a collector that deletes too much would do it now
    assert set(m.bucket_chunks()) == set(keys0), "objects still referenced by sub/c were deleted"
    m.evict(mnt / "sub" / "c")
    drop_caches()
    assert read_all(mnt / "sub" / "c") == data
    os.unlink(mnt / "sub" / "c")
    wait_for(lambda: not m.bucket_chunks(), 30, "all objects to be collected")
    st = m.status()
    assert st["bucket_objects"] == 0 and st["bucket_bytes"] == 0, st


def test_kernel_write_back_out_of_order_uploads_each_chunk_once(make_fs):
    """The kernel writes its cache back in pieces, from many requests at once and out of
    order: a chunk may get its first half, the next chunk whole, then the rest. A file
    written in order and closed goes up once per chunk whatever the order (here forced with
    sync_file_range), not once half-written and again whole."""
    m = mount_with(make_fs("file", mount=False), "writeback-cache")
    st0 = m.status()
    a, b = gen("random", CHUNK, 61), gen("random", CHUNK, 62)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                                     ctypes.c_uint]

    def write_back(fd, off, n):  # the kernel writes back just these pages, and waits
        if libc.sync_file_range(fd, off, n, 1 | 2 | 4) != 0:  # WAIT_BEFORE|WRITE|WAIT_AFTER
            raise OSError(ctypes.get_errno(), "sync_file_range")

    fd = os.open(m.mnt / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        half = CHUNK // 2
        os.pwrite(fd, a[:half], 0)
        write_back(fd, 0, half)  # chunk 0's first half reaches the daemon
        # then chunk 1 whole, again and again for 2.5 s: the uploader looks every second,
        # and leaves alone what a writer wrote less than a second ago
        until = time.monotonic() + 2.5
        while time.monotonic() < until:
            os.pwrite(fd, b, CHUNK)
            write_back(fd, CHUNK, CHUNK)
            time.sleep(0.2)
        os.pwrite(fd, a[half:], half)
    finally:
        os.close(fd)
    st = m.wait_uploaded(60)
    assert st["uploads"] - st0["uploads"] == 2, (
        "chunks uploaded %d times for 2 chunks: a half-written chunk went up"
        % (st["uploads"] - st0["uploads"]))
    m.evict(m.mnt / "f")
    drop_caches()
    assert read_all(m.mnt / "f") == a + b


def test_identical_chunks_uploading_at_once_are_put_once(backend, make_fs):
    """Objects are never overwritten: chunks of the same content that become
    ready for upload together go up once, the others are dedup hits."""
    m = make_fs(backend)
    y = gen("random", CHUNK, 13)
    st0 = m.status()
    write_file(m.mnt / "f", y * 4)
    st = m.wait_uploaded(60)
    keys = m.bucket_chunks()
    assert len(keys) == 1 and st["bucket_objects"] == 1, (keys, st)
    puts = ""
    if m.proxy:
        (key,) = keys
        puts = "; the proxy saw %d PUTs of %s" % (len(
            [e for e in m.proxy.stats()["log"] if e[0] == "PUT" and e[1].endswith(key)]), key)
    uploads, hits = st["uploads"] - st0["uploads"], st["dedup_hits"] - st0["dedup_hits"]
    assert (uploads, hits) == (1, 3), (
        "4 identical chunks written at once: %d uploads and %d dedup hits, expected 1 and 3%s"
        % (uploads, hits, puts))
    m.evict(m.mnt / "f")
    drop_caches()
    assert read_all(m.mnt / "f") == y * 4


# ---------------------------------------------------------------------------
# random writes into evicted files

def test_random_writes_into_remote_file(backend, make_fs):
    m = make_fs(backend)
    path = m.mnt / "r"
    size = 7 * CHUNK + 5000
    model = bytearray(gen("random", size, 21))
    write_file(path, model)
    m.wait_uploaded(60)
    m.evict(path)
    drop_caches()
    res = m.residency(path)
    assert res["local"] == 0 and res["remote"] == size and res["dirty"] == 0, res
    st0 = m.status()

    rnd = random.Random(22)
    # writes touch chunks 0, 2, 3 (across the 2/3 boundary), 5 and past the end;
    # chunks 1, 4 and 6 stay remote
    writes = [(0, 1), (100, 5000), (2 * CHUNK + 17, 2 * CHUNK // 3),
              (3 * CHUNK - 3000, 6000), (5 * CHUNK + CHUNK // 2, 4096),
              (5 * CHUNK, 1), (size + 100_000, 300_000)]
    with open(path, "r+b", buffering=0) as f:
        for off, n in writes:
            piece = rnd.randbytes(n)
            os.pwrite(f.fileno(), piece, off)
            if off > len(model):
                model.extend(bytes(off - len(model)))
            model[off:off + n] = piece
    new_size = len(model)
    assert os.stat(path).st_size == new_size
    res = m.residency(path)
    assert res["size"] == new_size, res
    # (with the writeback cache the kernel reads each page a write covers in part, and
    # reads that follow one another start the daemon's read-ahead into the next chunks)
    assert m.writeback or res["remote"] == 3 * CHUNK, (
        "chunks 1, 4 and 6 were not written and must still be remote", res)
    assert res["dirty"] > 0, res
    st = m.status()
    # chunks 0, 2, 3, 5 and 7 were partly written: their old bytes came from the bucket
    assert st["fetches"] - st0["fetches"] >= 5, (st0, st)
    assert read_all(path) == model, "read back right after the writes differs"

    m.wait_uploaded(60)
    m.evict(path)
    drop_caches()
    assert m.residency(path)["local"] == 0
    assert read_all(path) == model, "read back after upload and eviction differs"
    m.umount()
    m.mount()
    drop_caches()
    res = m.residency(path)
    assert res["size"] == new_size and res["dirty"] == 0, res
    assert read_all(path) == model, "read back after remount differs"


def test_whole_chunk_overwrite_during_its_fetch_keeps_the_new_bytes(make_fs, proxy):
    # A fetch writes the old bytes into the cache file outside the lock; a
    # write that covers a whole chunk needs no fetch of its own, but must not
    # land before that fetch is done, or the old bytes win. The kernel writes
    # at most 1 MiB at once, so the chunk is a short last one; the fetch is
    # read-ahead's (a setxattr or a read of the chunk would hold the kernel's
    # locks that the write needs, and so keep them apart).
    m = make_fs("s3")
    path = m.mnt / "w"
    old, new = gen("random", CHUNK + 100_000, 31), gen("random", 300_000, 32)
    write_file(path, old)
    m.wait_uploaded(60)
    m.evict(path)
    drop_caches()
    assert len(m.bucket_chunks()) == 2
    proxy.reset()
    # the GET of chunk 0 (for the read) passes, that of chunk 1 (read-ahead's)
    # dribbles its answer for about 1.2 s; a delay before forwarding would
    # not do: the old object may be gone by then, replaced by the new bytes
    chunk_gets = {"method": "GET", "path_contains": "/zero/chunks/", "times": 1}
    proxy.faults([dict(chunk_gets, action="delay", seconds=0),
                  dict(chunk_gets, action="slow", chunk=4096, pause=0.05)])
    rfd = os.open(path, os.O_RDONLY)
    try:
        assert os.pread(rfd, 4096, 0) == old[:4096]
    finally:
        os.close(rfd)
    # read-ahead's GET of chunk 1 is now under way
    wait_for(lambda: proxy.stats()["faults_fired"] == 2, 5, "read-ahead's GET of chunk 1")
    time.sleep(0.3)
    fd = os.open(path, os.O_WRONLY)
    try:
        assert os.pwrite(fd, new, CHUNK) == len(new)
        os.fsync(fd)
    finally:
        os.close(fd)
    # the dribble takes about 1.2 s (the proxy logs a GET before its body
    # goes out, so nothing tells its end): give the fetch time to write
    time.sleep(3)
    drop_caches()
    assert read_all(path) == old[:CHUNK] + new, "the overwritten chunk reads back old bytes"
    m.wait_uploaded(60)
    m.evict(path)
    drop_caches()
    assert read_all(path) == old[:CHUNK] + new, "after upload and eviction"


# ---------------------------------------------------------------------------
# truncate and unlink free objects

def test_truncate_and_unlink_free_objects(backend, make_fs):
    # metadataBackupInterval: a collector that waits for the next metadata
    # snapshot (design invariant) gets one every second
    m = make_fs(backend, metadataBackupInterval=1)
    mnt = m.mnt
    a = gen("random", 6 * CHUNK, 31)
    b = gen("random", 3 * CHUNK, 32)
    c = gen("text", 2 * CHUNK, 33)
    write_file(mnt / "a", a)
    write_file(mnt / "b", b)
    write_file(mnt / "c", c)
    m.wait_uploaded(60)
    keys0 = set(m.bucket_chunks())
    assert len(keys0) == 11, sorted(keys0)
    gc0 = m.status()["gc_deleted"]

    # truncate a to 1.5 chunks: chunks 2-5 go, chunk 1 becomes a new object
    keep = CHUNK + CHUNK // 2
    os.truncate(mnt / "a", keep)
    m.wait_uploaded(60)
    keys1 = set(wait_for(lambda: (lambda k: k if len(k) == 7 else None)(m.bucket_chunks()), 30,
                         "4 + 1 of a's old objects to be collected (7 objects left)"))
    assert len(keys0 & keys1) == 6 and len(keys1 - keys0) == 1, (sorted(keys0), sorted(keys1))
    # growing it again adds a hole, not an object
    os.truncate(mnt / "a", 5 * CHUNK)
    m.wait_uploaded(60)
    time.sleep(1.5)
    assert set(m.bucket_chunks()) == keys1
    m.evict(mnt / "a")
    drop_caches()
    assert read_all(mnt / "a") == a[:keep] + bytes(5 * CHUNK - keep)

    # unlink b: its objects go
    os.unlink(mnt / "b")
    keys2 = set(wait_for(lambda: (lambda k: k if len(k) == 4 else None)(m.bucket_chunks()), 30,
                         "b's 3 objects to be collected (4 left)"))
    assert keys2 < keys1

    # c unlinked while open and evicted: its objects stay until the last close
    m.evict(mnt / "c")
    drop_caches()
    fd = os.open(mnt / "c", os.O_RDONLY)
    try:
        os.unlink(mnt / "c")
        time.sleep(2)
        assert set(m.bucket_chunks()) == keys2, "objects of an open, unlinked file were deleted"
        got = b"".join(os.pread(fd, MiB, off) for off in range(0, len(c), MiB))
        assert got == c, "an open, unlinked, evicted file reads back wrong"
    finally:
        os.close(fd)
    keys3 = set(wait_for(lambda: (lambda k: k if len(k) == 2 else None)(m.bucket_chunks()), 30,
                         "c's 2 objects to be collected after its last close (2 left)"))
    assert keys3 < keys2
    # a: chunks 2-5 and the old chunk 1, b: 3, c: 2; the counter moves just after the
    # bucket deletion, so it may trail the listing for a moment
    st = wait_for(lambda: (lambda st: st if st["gc_deleted"] - gc0 >= 10 else None)(m.status()),
                  10, "gc_deleted to count the 10 collected objects")
    assert st["gc_deleted"] - gc0 == 5 + 3 + 2, "gc_deleted grew by %d, expected 10" % (
        st["gc_deleted"] - gc0)
    assert st["bucket_objects"] == 2, st
    os.unlink(mnt / "a")
    wait_for(lambda: not m.bucket_chunks(), 30, "a's last objects to be collected")


# ---------------------------------------------------------------------------
# backpressure (s3: the proxy makes uploads fail)

CHUNK_PUTS = {"action": "status", "status": 500, "method": "PUT",
              "path_contains": "/zero/chunks/", "times": 1_000_000}


class Writer(threading.Thread):
    """Writes DATA to PATH in 1 MiB pieces; records progress and the error."""

    def __init__(self, path, data, start_at=0):
        super().__init__(daemon=True)
        self.path, self.data, self.done = path, data, start_at
        self.error = None
        self.finished_at = None
        self.last_ok = time.monotonic()  # when the last write returned

    def run(self):
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                while self.done < len(self.data):
                    self.done += os.pwrite(fd, self.data[self.done:self.done + MiB], self.done)
                    self.last_ok = time.monotonic()
            finally:
                os.close(fd)
        except OSError as e:
            self.error = e
        self.finished_at = time.monotonic()


# With the kernel's writeback cache a write() lands in the page cache: the daemon keeps room
# for what the kernel may hold (fs/room.c) and, once short of it, has the kernel ask before
# each write, so that writers still wait, or are refused, at write() and not at close.
WRITE_PATHS = pytest.mark.parametrize("write_path", ["direct", "writeback-cache"])


def mount_with(m, write_path):
    m.mount_args = [a for a in m.mount_args
                    if a not in ("--writeback-cache", "--no-writeback-cache")]
    m.mount_args.append("--writeback-cache" if write_path == "writeback-cache"
                        else "--no-writeback-cache")
    m.mount()
    if write_path == "writeback-cache":
        # kept before the mount is reported: a writer at once must not outrun it
        assert "writeback cache: room for" in m.log_text(), m.log_text()
    return m


@WRITE_PATHS
def test_writers_wait_for_uploads_and_are_released(make_fs, proxy, write_path):
    m = mount_with(make_fs("s3", mount=False, backpressureTimeout=120), write_path)
    local = gen("text", 2 * CHUNK, 41)
    write_file(m.mnt / "local", local)
    m.wait_uploaded(60)
    # pinned: dirty data filling the target evicts every clean chunk that is not
    os.setxattr(m.mnt / "local", "user.zero.pin", b"1")
    proxy.faults([CHUNK_PUTS])
    data = gen("random", 24 * CHUNK, 42)  # 96 MiB: more dirty data than the 64 MB target
    w = Writer(m.mnt / "w", data)
    w.start()
    try:
        wait_for(lambda: m.status()["writers_waiting"], 30, "writers_waiting in the status")
        before = w.done
        time.sleep(2)
        assert w.is_alive() and w.error is None, "the writer should wait, not finish: %r" % (
            w.error,)
        assert w.done == before, "the writer went on while nothing could be uploaded " \
                                 "(%d -> %d)" % (before, w.done)
        st = m.status()
        assert st["dirty_bytes"] <= TARGET + CHUNK, st
        assert w.done <= TARGET + CHUNK, w.done
        # (each failed upload takes its retries through the checksumming proxy: seconds)
        wait_for(lambda: m.status()["upload_errors"] > 0, 30, "upload_errors in the status")
        assert m.status()["last_error"], m.status()
        # the rest of the filesystem still answers, and local data reads
        drop_caches()
        t0 = time.monotonic()
        assert read_all(m.mnt / "local") == local
        assert sorted(os.listdir(m.mnt)) == ["local", "w"]
        took = time.monotonic() - t0
        assert took < 5, "a local read took %.1f s while writers wait" % took
        assert m.residency(m.mnt / "local")["remote"] == 0, m.residency(m.mnt / "local")
        assert w.is_alive() and w.done == before, (w.error, before, w.done)
    finally:
        released = time.monotonic()
        proxy.faults([])
        w.join(120)
    assert not w.is_alive(), "the writer was not released within 120 s of uploads working " \
                             "again (%d of %d bytes written); status %s" % (
                                 w.done, len(data), m.status())
    assert w.error is None, w.error
    m.wait_uploaded(120)
    wait_for(lambda: not m.status()["writers_waiting"], 10, "writers_waiting to clear")
    print("writer released after %.1f s" % (w.finished_at - released))
    m.evict(m.mnt / "w")
    drop_caches()
    assert read_all(m.mnt / "w") == data


def test_many_small_files_neither_wait_nor_force_uploads(make_fs):
    # 400 files of 10000 bytes (4 MB) are far below the 64 MB target, though
    # they are 400 chunks: dirty data is counted in bytes, so nothing waits
    # and, with a long uploadDelay, nothing is uploaded early.
    m = make_fs("file", uploadDelay=600)
    os.mkdir(m.mnt / "d")
    t0 = time.monotonic()
    for i in range(400):
        with open(m.mnt / "d" / ("f%d" % i), "wb") as f:
            f.write(gen("text", 10000, i))
    took = time.monotonic() - t0
    st = m.status()
    assert st["dirty_chunks"] == 400, st
    assert st["dirty_bytes"] == 400 * 10000, st
    assert st["uploads"] == 0 and not st["writers_waiting"], st
    assert took < 30, "400 small files took %.1f s" % took
    # the count stays exact when a file grows inside its dirty chunk, and
    # after the periodic recount
    with open(m.mnt / "d" / "f0", "ab") as f:
        f.write(b"x" * 5000)
    assert m.status()["dirty_bytes"] == 400 * 10000 + 5000
    # the kernel forgets the inodes (as under memory pressure); the delay still
    # holds (it lived only in the daemon's inodes, and forgotten ones went up at once)
    drop_caches()
    time.sleep(6)  # the sizes are in the inode rows now, and recounted from there
    st = m.status()
    assert st["dirty_bytes"] == 400 * 10000 + 5000 and st["uploads"] == 0, st


@WRITE_PATHS
def test_writers_get_enospc_when_uploads_stay_impossible(make_fs, proxy, write_path):
    m = mount_with(make_fs("s3", mount=False, backpressureTimeout=3), write_path)
    proxy.faults([CHUNK_PUTS])
    data = gen("random", 24 * CHUNK, 51)
    w = Writer(m.mnt / "w", data)
    w.start()
    try:
        w.join(60)
        assert not w.is_alive(), "the writer still waits 60 s after uploads stopped working " \
                                 "(backpressureTimeout 3 s); status %s" % m.status()
    finally:
        if w.is_alive():
            proxy.faults([])
            w.join(60)
    assert isinstance(w.error, OSError) and w.error.errno == errno.ENOSPC, (
        "expected ENOSPC, got %r after %d bytes" % (w.error, w.done))
    assert w.done <= TARGET + CHUNK, w.done
    waited = w.finished_at - w.last_ok
    print("ENOSPC after waiting %.2f s" % waited)
    assert 2.9 <= waited <= 3 + 5, (
        "a writer waited %.2f s for room before ENOSPC; backpressureTimeout is 3 s" % waited)
    assert re.search(r"(?i)no space|ENOSPC", m.status()["last_error"] + m.log_text()), (
        "neither the status nor the log says why writes fail:\n" + m.log_tail())
    # what was written before is intact
    written = w.done
    with open(m.mnt / "w", "rb") as f:
        assert f.read(written) == data[:written]
    # uploads work again: once they make progress, writing goes on. A writer
    # may still get ENOSPC when no upload lands within the 3 s timeout (one
    # that arrives before any went through; or, on a loaded machine, while
    # four uploads through the checksumming proxy take longer than that),
    # but each upload that lands gives room, and the whole file gets written.
    proxy.faults([])
    pos, refusals, deadline = written, [], time.monotonic() + 240
    while True:
        uploads = m.status()["uploads"]
        w2 = Writer(m.mnt / "w", data, start_at=pos)
        w2.start()
        w2.join(120)
        assert not w2.is_alive(), "a writer still waits 120 s after the bucket came back"
        if w2.error is None:
            break
        assert isinstance(w2.error, OSError) and w2.error.errno == errno.ENOSPC, w2.error
        refusals.append(w2.done - pos)
        assert time.monotonic() < deadline and len(refusals) < 30, (
            "writing after uploads work again: refused %d times (%s bytes written between); "
            "status %s" % (len(refusals), refusals, m.status()))
        pos = w2.done
        wait_for(lambda: m.status()["uploads"] > uploads, 60,
                 "an upload to go through after the bucket came back")
    if refusals:
        print("writers after the bucket came back were refused %d times, with %s bytes "
              "written between" % (len(refusals), refusals))
    m.wait_uploaded(120)
    m.evict(m.mnt / "w")
    drop_caches()
    assert read_all(m.mnt / "w") == data


# ---------------------------------------------------------------------------
# the server stopped

def test_server_stopped_local_reads_work_remote_reads_fail_in_bounded_time(make_fs, own_s3rver):
    port = own_s3rver["port"]
    store = s3_conf(port, "x")
    store.update(maxRetries=2, retryBaseDelayMs=50, connectTimeout=2, lowSpeedTimeout=2)
    store.pop("prefix")
    m = make_fs(store)
    local = gen("random", 3 * CHUNK, 61)
    remote = gen("text", 3 * CHUNK + 10, 62)
    write_file(m.mnt / "local", local)
    write_file(m.mnt / "remote", remote)
    m.wait_uploaded(60)
    m.evict(m.mnt / "remote")
    drop_caches()
    assert m.residency(m.mnt / "remote")["local"] == 0
    assert m.residency(m.mnt / "local")["remote"] == 0

    own_s3rver["server"].stop()
    # local data reads at local speed
    t0 = time.monotonic()
    assert read_all(m.mnt / "local") == local
    assert time.monotonic() - t0 < 5, "reading local data took %.1f s with the server stopped" % (
        time.monotonic() - t0)
    # new data can be written and read
    new = gen("random", 2 * CHUNK, 63)
    write_file(m.mnt / "new", new)
    assert read_all(m.mnt / "new") == new
    # remote-only data: EIO after a bounded time, and the log says why
    log_before = len(m.log_text())
    took, rc, err = cat(m.mnt / "remote", 90)
    assert rc is not None, "a read of remote data with the server stopped %s" % err
    assert rc != 0 and "Input/output error" in err, (rc, err)
    assert took < 30, "EIO only after %.1f s" % took
    new_log = m.log_text()[log_before:]
    assert re.search(r"(?i)error.*fetch|fetch.*(fail|error)", new_log), (
        "the log does not report the failed fetch:\n" + new_log[-3000:])
    st = m.status()
    assert st["fetch_errors"] > 0 and st["last_error"], st

    # a server that accepts connections and never answers: still bounded
    hung = socket.socket()
    hung.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hung.bind(("127.0.0.1", port))
    hung.listen(64)
    try:
        took, rc, err = cat(m.mnt / "remote", 120)
        assert rc is not None, "a read of remote data from a hung server %s" % err
        assert rc != 0 and "Input/output error" in err, (rc, err)
        assert took < 60, "EIO from a hung server only after %.1f s" % took
    finally:
        hung.close()
    # local data still reads meanwhile
    assert read_all(m.mnt / "local") == local

    # unmount and mount again while the server is away: local data, old and
    # new, stays usable
    t0 = time.monotonic()
    m.umount(timeout=120)
    took = time.monotonic() - t0
    assert took < 30, "zero umount took %.1f s with the server stopped" % took
    m.mount()
    drop_caches()
    assert read_all(m.mnt / "local") == local
    assert read_all(m.mnt / "new") == new
    assert m.residency(m.mnt / "new")["dirty"] == len(new)

    # the server is back: everything works
    own_s3rver["start"]()
    drop_caches()
    assert read_all(m.mnt / "remote") == remote
    m.wait_uploaded(90, "the data written while the server was away to upload")
    m.evict(m.mnt / "new")
    drop_caches()
    assert read_all(m.mnt / "new") == new


# ---------------------------------------------------------------------------
# objects that are damaged or gone, fetches shared, a crash

def test_damaged_or_missing_object_is_eio_never_wrong_data(backend, make_fs):
    m = make_fs(backend)
    good = gen("random", CHUNK, 81)
    write_file(m.mnt / "d", good)
    m.wait_uploaded(60)
    (key,) = m.bucket_chunks()
    write_file(m.mnt / "g", gen("random", CHUNK, 82))
    m.wait_uploaded(60)
    (key_g,) = set(m.bucket_chunks()) - {key}
    original = m.z.run("get", key).stdout
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x10
    m.z.run("put", key, "-", input=bytes(damaged))
    m.z.run("rm", key_g)
    for name in ("d", "g"):
        m.evict(m.mnt / name)
    drop_caches()
    for name, k in (("d", key), ("g", key_g)):
        before = len(m.log_text())
        took, rc, err = cat(m.mnt / name, 60)
        assert rc is not None and rc != 0 and "Input/output error" in err, (
            "reading %s (object %s %s): exit %r, %s" % (
                name, k, "damaged" if name == "d" else "deleted", rc, err))
        object_id = k.rsplit("/", 1)[1]
        assert object_id in m.log_text()[before:], (
            "the log does not name object %s:\n%s" % (object_id, m.log_tail()))
    assert m.status()["fetch_errors"] >= 2, m.status()
    # the object put right again: the file reads
    m.z.run("put", key, "-", input=original)
    drop_caches()
    assert read_all(m.mnt / "d") == good


def test_concurrent_readers_of_a_remote_chunk_share_one_fetch(make_fs, proxy):
    m = make_fs("s3")
    data = gen("random", CHUNK, 91)
    write_file(m.mnt / "one", data)
    m.wait_uploaded(60)
    (key,) = m.bucket_chunks()
    m.evict(m.mnt / "one")
    drop_caches()
    proxy.reset()
    barrier = threading.Barrier(8)
    results = [None] * 8

    def reader(i):
        barrier.wait()
        fd = os.open(m.mnt / "one", os.O_RDONLY)
        try:
            results[i] = b"".join(os.pread(fd, 256 * 1024, off)
                                  for off in range(i * 4096, len(data), 256 * 1024))
        finally:
            os.close(fd)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i, r in enumerate(results):
        assert r == data[i * 4096:], "reader %d got wrong bytes" % i
    gets = [e for e in proxy.stats()["log"] if e[0] == "GET" and e[1].endswith(key)]
    assert len(gets) == 1, "%d GETs of the one chunk for 8 concurrent readers: %s" % (
        len(gets), gets)


def test_crash_keeps_fsynced_data_and_uploads_it_after_remount(backend, make_fs):
    m = make_fs(backend)
    a = gen("random", 3 * CHUNK, 101)
    b = gen("text", 5 * CHUNK + 3, 102)
    write_file(m.mnt / "a", a)
    m.wait_uploaded(60)
    m.evict(m.mnt / "a")
    with open(m.mnt / "b", "wb") as f:
        for i in range(0, len(b), MiB):
            f.write(b[i:i + MiB])
        f.flush()
        os.fsync(f.fileno())
    # and a remote chunk of a rewritten in part, fsync'ed
    with open(m.mnt / "a", "r+b") as f:
        f.seek(CHUNK + 10)
        f.write(b"crash")
        f.flush()
        os.fsync(f.fileno())
    a = a[:CHUNK + 10] + b"crash" + a[CHUNK + 15:]
    m.kill9()
    m.mount()  # detaches the dead mount first
    drop_caches()
    assert read_all(m.mnt / "a") == a
    assert read_all(m.mnt / "b") == b
    m.wait_uploaded(60, "the data of before the crash to upload")
    # a, b: 3 + 6 chunks; the replaced object of a's chunk 1 is collected
    try:
        wait_for(lambda: len(m.bucket_chunks()) == m.status()["bucket_objects"] == 9, 20,
                 "the bucket to hold exactly the 9 referenced objects")
    except AssertionError as e:
        raise AssertionError("%s: the bucket has %d, the status counts %d" % (
            e, len(m.bucket_chunks()), m.status()["bucket_objects"])) from None
    m.evict(m.mnt / "a")
    m.evict(m.mnt / "b")
    drop_caches()
    assert m.residency(m.mnt / "b")["local"] == 0
    assert read_all(m.mnt / "a") == a
    assert read_all(m.mnt / "b") == b


# ---------------------------------------------------------------------------
# buckets that must be refused

def refused(m, *needles):
    p = m.try_mount()
    msg = p.stdout
    assert p.returncode != 0, "mount over this bucket succeeded:\n" + msg
    assert not is_mounted(m.mnt)
    for n in needles:
        assert n.lower() in msg.lower(), "the refusal does not say %r:\n%s" % (n, msg)
    return msg


def test_refuses_foreign_and_incompatible_buckets(backend, make_fs):
    content_f = gen("random", CHUNK + 1, 71)
    one = make_fs(backend, "one")
    write_file(one.mnt / "f", content_f)
    one.wait_uploaded(60)
    one.umount()
    prefix_one = one.z.conf["prefix"]
    sb_one = one.z.run("get", "zero/superblock").stdout
    keys_one = one.bucket_chunks()
    assert len(keys_one) == 2 and sb_one

    two = make_fs(backend, "two")
    write_file(two.mnt / "g", b"two")
    two.umount()
    prefix_two = two.z.conf["prefix"]

    # two's cache against one's bucket: another filesystem
    two.z.write_config(dict(two.z.conf, prefix=prefix_one))
    refused(two, "another filesystem")
    assert one.z.run("get", "zero/superblock").stdout == sb_one
    assert one.bucket_chunks() == keys_one
    # one's cache (bound to a bucket) against an empty prefix: the wrong
    # bucket, where no new filesystem may appear
    one.z.write_config(dict(one.z.conf, prefix=prefix_one.replace("/one/", "/empty/")))
    refused(one, "superblock")
    assert one.z.run("ls").stdout.strip() == b"", "a superblock was created in the wrong bucket"

    # fresh caches against odd buckets
    cases = [
        ("newer", b"zero-superblock\nformat=99\nfs_id=0123456789abcdef0123456789abcdef\n"
                  b"chunk_size=4194304\n", "format"),
        ("garbage", b"\x00\x01 not a superblock\n", "superblock"),
    ]
    for name, content, needle in cases:
        m = make_fs(backend, name, mount=False)
        m.z.run("put", "zero/superblock", "-", input=content)
        msg = refused(m, needle)
        if name == "newer":
            assert "99" in msg, msg
        assert m.z.run("get", "zero/superblock").stdout == content, "the superblock was changed"
    # Zero objects without a superblock
    m = make_fs(backend, "orphans", mount=False)
    m.z.run("put", "zero/chunks/ab/ab" + "0" * 62, "-", input=b"something")
    refused(m, "superblock")
    p = m.z.run("stat", "zero/superblock", expect=None)
    assert p.returncode != 0, "a superblock was created over foreign objects"
    # what another mount's probe of conditional writes leaves for a moment (or a crash
    # for good) is not a filesystem: a new one is made beside it (two probes, so a
    # short listing of the prefix sees nothing else)
    m = make_fs(backend, "probes", mount=False)
    for k in ("zero/probe/cond-0000000000000000", "zero/probe/cond-ffffffffffffffff"):
        m.z.run("put", k, "-", input=b"zero conditional-write probe\n")
    m.mount()
    write_file(m.mnt / "p", b"beside probes")
    m.umount()
    assert m.z.run("stat", "zero/superblock").returncode == 0

    # and both filesystems still mount on their own buckets
    two.z.write_config(dict(two.z.conf, prefix=prefix_two))
    two.mount()
    assert read_all(two.mnt / "g") == b"two"
    two.umount()
    one.z.write_config(dict(one.z.conf, prefix=prefix_one))
    one.mount()
    one.evict(one.mnt / "f")
    drop_caches()
    assert read_all(one.mnt / "f") == content_f


# ---------------------------------------------------------------------------
# st_blocks, SEEK_DATA/SEEK_HOLE and tar -S of evicted files

def data_map(path):
    """[(start, end)] of the data ranges SEEK_DATA/SEEK_HOLE report."""
    out = []
    fd = os.open(path, os.O_RDONLY)
    try:
        size, pos = os.fstat(fd).st_size, 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:
                    break
                raise
            end = os.lseek(fd, start, os.SEEK_HOLE)
            out.append((start, end))
            pos = end
    finally:
        os.close(fd)
    return out


def du_bytes(path):
    """What du says PATH takes on disk, in bytes."""
    p = subprocess.run(["du", "-B1", str(path)], capture_output=True, text=True, check=True)
    return int(p.stdout.split()[0])


def tar_roundtrip(path, work):
    """Archive PATH with GNU tar's sparse mode, extract it under WORK; the extracted path."""
    work.mkdir()
    archive = work / "a.tar"
    subprocess.run(["tar", "-cSf", str(archive), "-C", str(path.parent), path.name],
                   check=True, capture_output=True)
    out = work / "out"
    out.mkdir()
    subprocess.run(["tar", "-xSf", str(archive), "-C", str(out)], check=True,
                   capture_output=True)
    return out / path.name


@pytest.mark.parametrize("shape", ["data-and-hole", "sparse"])
def test_evicted_file_reports_its_blocks_and_archives_whole(make_fs, tmp_path, shape):
    m = make_fs("file")
    path = m.mnt / shape
    if shape == "data-and-hole":
        # chunks 0-1 data, 2-4 a hole (no chunk rows), 5 data, 6 short data at the end
        spec = FileSpec(shape, 6 * CHUNK + 5000,
                        [(0, "random", 2 * CHUNK, 1), (5 * CHUNK, "random", CHUNK + 5000, 2)],
                        sparse=True)
    else:
        # one chunk of data between holes, and a hole at the end
        spec = FileSpec(shape, 9 * CHUNK + 123,
                        [(3 * CHUNK, "text", CHUNK, 3)], sparse=True)
    spec.write(m.mnt)
    data_bytes = sum(length for _off, _kind, length, _seed in spec.pieces)
    want = spec.content()
    m.wait_uploaded(60)
    before = os.stat(path).st_blocks
    map_before = data_map(path)
    assert before * 512 >= data_bytes, (before, data_bytes)
    assert before * 512 < spec.size, "the holes take no room"

    m.evict(path)
    drop_caches()  # the kernel asks again
    res = m.residency(path)
    assert res["local"] == 0 and res["remote"] == data_bytes, res
    for when in ("after eviction", "after a remount"):
        st = os.stat(path)
        assert abs(st.st_blocks - before) <= 8, (
            "%s: st_blocks %d, %d before eviction (data %d bytes)"
            % (when, st.st_blocks, before, data_bytes))
        assert st.st_blocks * 512 >= data_bytes, (when, st.st_blocks, data_bytes)
        assert du_bytes(path) == st.st_blocks * 512, when
        assert data_map(path) == map_before, when
        assert m.residency(path)["local"] == 0, "%s: stat or lseek fetched data" % when
        m.umount()
        m.mount()
        drop_caches()

    # tar -S decides from st_blocks and SEEK_DATA/SEEK_HOLE what to read
    got = tar_roundtrip(path, tmp_path / "tar")
    assert got.stat().st_size == spec.size
    assert got.read_bytes() == want, "tar -S of an evicted file archived the wrong bytes"
    # the holes stay holes on the way
    assert got.stat().st_blocks * 512 < spec.size
    # read back whole, the file takes what it did before eviction
    assert read_all(path) == want
    assert abs(os.stat(path).st_blocks - before) <= 8


def test_dirty_bytes_match_the_dirty_chunks_at_once(make_fs, proxy):
    # Unlinking or truncating files whose chunks are not uploaded gives their
    # bytes back at once: the status never shows dirty bytes without dirty
    # chunks, and writers do not wait for room that is free. (The count was
    # only settled by a recount every 5 s: "dirty 21.2 MiB (0 chunks)".)
    m = make_fs("s3", backpressureTimeout=60)
    proxy.faults([CHUNK_PUTS])  # nothing uploads: every byte stays dirty
    write_file(m.mnt / "a", gen("random", 40 * MiB, 81))
    write_file(m.mnt / "b", gen("random", 3 * CHUNK + 5, 82))
    s = m.status()
    assert s["dirty_chunks"] == 10 + 4 and s["dirty_bytes"] == 40 * MiB + 3 * CHUNK + 5, s
    os.unlink(m.mnt / "a")
    os.truncate(m.mnt / "b", CHUNK + 100)

    def dirty(want):
        # an unlinked file's inode goes when the kernel forgets it, which the kernel
        # sends after the unlink returned: within a moment, not a 5 s recount
        s = m.status()
        return (s["dirty_chunks"], s["dirty_bytes"]) == want or None
    wait_for(lambda: dirty((2, CHUNK + 100)), 2, "a's dirty bytes to go")
    os.unlink(m.mnt / "b")
    wait_for(lambda: dirty((0, 0)), 2, "b's dirty bytes to go")
    # 40 MiB more fits under the 64 MB target without waiting
    write_file(m.mnt / "c", gen("random", 40 * MiB, 83))
    s = m.status()
    assert not s["writers_waiting"] and s["dirty_bytes"] == 40 * MiB, s
    proxy.faults([])


def test_rewrite_during_the_upload_of_the_old_content_keeps_the_new(make_fs, proxy):
    # O_TRUNC drops a file's chunk rows; the rewrite makes them anew. An
    # upload of the old content still under way must not land on the new
    # row: its version started again at 1 like the old one's, the upload
    # landed as CLEAN with the old object, and once evicted the file read
    # back old bytes (found by fsck in the kill -9 loop: a 16 MiB chunk in
    # a file of 236,222 bytes).
    m = make_fs("s3")
    old = gen("random", MiB, 91)
    proxy.faults([{"action": "delay", "seconds": 3, "method": "PUT",
                   "path_contains": "/zero/chunks/", "times": 1}])
    with open(m.mnt / "f", "wb") as f:
        f.write(old)
    wait_for(lambda: m.status()["uploading"], 10, "the upload of the old content", 0.02)
    new = gen("random", 300_000, 92)
    with open(m.mnt / "f", "wb") as f:  # O_TRUNC
        f.write(new)
        f.flush()
        os.fsync(f.fileno())
    m.wait_uploaded(60)
    m.evict(m.mnt / "f")
    assert m.residency(m.mnt / "f")["local"] == 0
    drop_caches()
    assert read_all(m.mnt / "f") == new, "the rewritten file reads back its old bytes"
