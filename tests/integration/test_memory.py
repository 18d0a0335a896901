"""The daemon's memory stays bounded under parallel load.

Eight writers and eight readers on s3rver for a while, with a cache target
small enough that the readers fetch most of what they read and the writers
keep every uploader busy: the daemon's peak resident memory (VmHWM) must stay
under 200 MiB, and `user.zero.status` (zero status) reports what it uses.
"""

import os
import random
import threading
import time

from conftest import s3_conf
from tierutil import MiB, drop_caches, gen

LIMIT = 200 * MiB
SECONDS = 15


def vm(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no %s for pid %d" % (field, pid))


def sanitized(pid):
    """Whether the daemon PID runs with AddressSanitizer's runtime."""
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def test_peak_memory_under_eight_writers_and_eight_readers(make_fs, own_s3rver):
    store = s3_conf(own_s3rver["port"], "x")
    store.pop("prefix")
    m = make_fs(store, targetDiskUsage="128MiB", uploadDelay=0, chunkSize=None,
                backpressureTimeout=120, maxParallelTransfers=None)
    pid = m.daemon_pid()
    # what the readers read: 8 files of 48 MiB, mostly evicted by the writers' data
    blob = gen("random", 48 * MiB, 1)
    for i in range(8):
        with open(m.mnt / ("r%d" % i), "wb") as f:
            f.write(blob[i * MiB:] + blob[:i * MiB])
    # ... and evicted now, so that the readers fetch whatever pace the writers keep
    m.wait_uploaded(120)
    for i in range(8):
        m.evict(m.mnt / ("r%d" % i))
    drop_caches()
    stop = time.monotonic() + SECONDS
    errors = []

    def writer(n):
        rnd = random.Random(n)
        data = gen("random", 32 * MiB, 100 + n)
        k = 0
        try:
            while time.monotonic() < stop:
                path = m.mnt / ("w%d-%d" % (n, k % 2))
                off = rnd.randrange(len(data))
                with open(path, "wb") as f:
                    for i in range(0, len(data), MiB):
                        f.write(data[(off + i) % len(data):][:MiB])
                k += 1
        except OSError as e:
            errors.append("writer %d: %r" % (n, e))

    def reader(n):
        try:
            while time.monotonic() < stop:
                with open(m.mnt / ("r%d" % n), "rb") as f:
                    while f.read(MiB):
                        pass
        except OSError as e:
            errors.append("reader %d: %r" % (n, e))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    threads += [threading.Thread(target=reader, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    seen = []
    while any(t.is_alive() for t in threads):
        seen.append(m.status())
        time.sleep(1)
    for t in threads:
        t.join()
    assert not errors, errors
    peak = vm(pid, "VmHWM")
    s = m.status()
    print("daemon peak RSS %.1f MiB; status memory fields: rss %s, buffers %s (peak %s)" % (
        peak / MiB, s.get("memory_rss"), s.get("memory_buffers"), s.get("memory_buffers_peak")))
    assert s["fetches"] > 0 and s["uploads"] > 0, s
    assert max(x["memory_buffers"] for x in seen) <= s["memory_buffers_limit"], seen[-1]
    assert s["memory_buffers_peak"] <= s["memory_buffers_limit"] <= 128 * MiB, s
    if sanitized(pid):
        # AddressSanitizer keeps freed memory in quarantine and shadows
        # every byte: its RSS says nothing of the daemon's own
        print("sanitizer build: the RSS bound is checked on the plain build")
        return
    assert peak < LIMIT, "the daemon's peak RSS was %.1f MiB, over %d MiB" % (
        peak / MiB, LIMIT // MiB)
    assert 0 < s["memory_rss"] < LIMIT, s
