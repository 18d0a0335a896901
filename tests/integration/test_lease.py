"""One read-write mount per filesystem: the lease in the bucket (zero/lease).

A second mount of the same filesystem is refused with the holder named:
from a second cache on the same bucket, and from a copy (cp -a) of a live
mount's cache, which has the same cache id. An expired lease is taken over;
this cache's own killed daemon is taken over at once. `--force` takes a
live lease, and the mount that had it turns read-only (EROFS), says so in
its log and `zero status`, and writes nothing more to the bucket.

Run on the file backend (two caches on one bucket directory, conditional
puts under a lock), on s3rver, which has no conditional writes (the
read-back protocol), and on s3rver behind a proxy that adds S3's
If-None-Match / If-Match (the compare-and-swap protocol).
"""

import errno
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import s3_conf
from tierutil import CHUNK, is_mounted, wait_for

HOST = socket.gethostname()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def copy_cache(src, dst):
    """cp -a of cache SRC onto DST (replacing the empty directory Mount made)."""
    shutil.rmtree(dst)
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)


def refused(m, *needles, args=()):
    p = m.zero("mount", m.mnt, m.cache, "--config", m.z.config, *args)
    assert p.returncode != 0, "the second mount succeeded:\n" + p.stdout
    assert not is_mounted(m.mnt)
    for n in needles:
        assert n.lower() in p.stdout.lower(), "the refusal does not say %r:\n%s" % (n, p.stdout)
    return p.stdout


def test_second_cache_on_one_bucket_is_refused(backend, make_fs):
    one = make_fs(backend, "one", leaseTimeout=30)
    write(one.mnt / "f", b"one's")
    two = make_fs(backend, "two", mount=False, prefix=one.z.conf["prefix"], leaseTimeout=30)
    msg = refused(two, "host " + HOST, "pid %d" % one.daemon_pid(), "expires", "--force")
    # refused before anything touched the second cache's filesystem
    assert not (two.cache / "meta.db").exists(), msg
    assert not (two.cache / "data").exists(), msg
    # the first mount goes on as if nothing happened
    write(one.mnt / "g", b"still writable")
    assert (one.mnt / "f").read_bytes() == b"one's"
    assert one.status()["lease"] == "held"
    assert one.status()["lease_pid"] == one.daemon_pid()


def test_copied_cache_of_a_live_mount_is_refused(backend, make_fs):
    one = make_fs(backend, "one", leaseTimeout=30)
    write(one.mnt / "f", b"x" * 1000)
    copy = make_fs(backend, "copy", mount=False, prefix=one.z.conf["prefix"], leaseTimeout=30)
    copy_cache(one.cache, copy.cache)
    assert (copy.cache / "cache.id").read_text() == (one.cache / "cache.id").read_text()
    refused(copy, "host " + HOST, "pid %d" % one.daemon_pid(), "expires")
    write(one.mnt / "g", b"still writable")


def test_expired_lease_is_taken_over_and_a_killed_daemon_at_once(backend, make_fs):
    ttl = 6
    # unencrypted: the test rewrites the lease's text by hand (sealed, it would not open)
    one = make_fs(backend, "one", leaseTimeout=ttl, encryption="false")
    write(one.mnt / "f", b"before the crash")
    # this cache's own daemon, killed: its lease is taken over at once
    one.kill9()
    t0 = time.monotonic()
    one.mount()
    assert time.monotonic() - t0 < ttl - 1, "the remount waited for the lease to expire"
    assert "daemon of this machine that is gone" in one.output.read_text()
    assert (one.mnt / "f").read_bytes() == b"before the crash"

    # another cache of the same filesystem (a restored copy, a new cache id)
    # whose holder ran on ANOTHER machine (the lease rewritten to say so, as a
    # dead laptop's would): refused while that lease lasts, taken once it expired
    write(one.mnt / "g", b"second")
    one.kill9()
    killed = time.monotonic()
    lease = one.z.run("get", "zero/lease").stdout
    assert b"host=" in lease, lease
    lease = b"\n".join(b"host=another-machine" if l.startswith(b"host=") else l
                       for l in lease.split(b"\n"))
    one.z.run("put", "zero/lease", "-", input=lease)
    other = make_fs(backend, "other", mount=False, prefix=one.z.conf["prefix"], leaseTimeout=ttl,
                    encryption="false")
    copy_cache(one.cache, other.cache)
    (other.cache / "cache.id").unlink()
    subprocess.run(["fusermount3", "-u", "-z", str(one.mnt)], capture_output=True)
    refused(other, "another-machine", "pid", "expires")
    assert time.monotonic() - killed < ttl, "too slow to see the live lease"

    def mounted():
        p = other.try_mount()
        return p if p.returncode == 0 else None
    p = wait_for(mounted, ttl + 15, "the expired lease to be taken over", interval=0.5)
    assert time.monotonic() - killed >= ttl - 2 - 1, "taken before the lease could expire"
    assert "expired" in p.stdout, p.stdout
    wait_for(lambda: is_mounted(other.mnt), 10, "the mount")
    assert (other.mnt / "g").read_bytes() == b"second"
    assert other.status()["lease_generation"] == 3


def test_force_fences_the_first_mount_to_read_only(make_fs, proxy, s3rver):
    one = make_fs("s3", "one", leaseTimeout=3)
    write(one.mnt / "f", os.urandom(CHUNK + 100))
    write(one.mnt / "g", os.urandom(1000))
    one.wait_uploaded(60)
    # the collector's deletes fail from now on: g's object stays garbage
    proxy.faults([{"action": "status", "status": 503, "method": "POST",
                   "path_contains": "delete", "times": 100000}])
    (one.mnt / "g").unlink()
    wait_for(lambda: any(e[0] == "POST" and "delete" in e[1] and e[3] == "injected"
                         for e in proxy.stats()["log"]), 20, "the collector to try a delete")
    os.sync()
    gen = one.status()["lease_generation"]

    # a copy of its cache mounts with --force, straight on s3rver
    two = make_fs(s3_conf(s3rver.port, "unused"), "two", mount=False,
                  prefix=one.z.conf["prefix"], leaseTimeout=3)
    copy_cache(one.cache, two.cache)
    refused(two, "pid %d" % one.daemon_pid())
    p = two.zero("mount", two.mnt, two.cache, "--config", two.z.config, "--force")
    assert p.returncode == 0, p.stdout + two.log_tail()
    assert "warning" in p.stdout and "--force" in p.stdout, p.stdout
    wait_for(lambda: is_mounted(two.mnt), 10, "the forced mount")
    assert two.status()["lease_generation"] == gen + 1

    # the first mount turns read-only within about the renewal interval
    t0 = time.monotonic()
    wait_for(lambda: one.status()["lease_fenced"], 6, "the first mount to be fenced")
    assert time.monotonic() - t0 < 5
    proxy.reset()
    for op in (lambda: write(one.mnt / "new", b"x"),
               lambda: open(one.mnt / "f", "r+b"),
               lambda: os.mkdir(one.mnt / "d"),
               lambda: os.rename(one.mnt / "f", one.mnt / "f2"),
               lambda: os.truncate(one.mnt / "f", 0),
               lambda: os.setxattr(one.mnt / "f", "user.x", b"1")):
        with pytest.raises(OSError) as e:
            op()
        assert e.value.errno == errno.EROFS, e.value
    assert len((one.mnt / "f").read_bytes()) == CHUNK + 100  # reads still work
    log = one.log_text()
    assert "read-only" in log and "lease" in log, one.log_tail()
    st = one.zero("status", one.mnt)
    assert st.returncode == 0 and "fenced: read-only" in st.stdout, st.stdout
    st = one.status()
    assert st["lease"] == "fenced" and st["lease_generation"] == gen + 1, st

    # and it writes nothing more to the bucket: no deletes, no uploads, no lease
    proxy.faults([])
    time.sleep(4)
    writes = [e for e in proxy.stats()["log"] if e[0] in ("PUT", "POST", "DELETE")]
    assert writes == [], writes
    # the new holder works
    write(two.mnt / "h", b"two's")
    assert len((two.mnt / "f").read_bytes()) == CHUNK + 100


def test_conditional_writes_where_the_store_has_them(make_fs, cond_proxy):
    # s3rver alone ignores If-None-Match: the read-back protocol
    plain = make_fs("s3", "plain", leaseTimeout=30)
    assert plain.status()["lease_conditional"] is False
    assert "does not honour conditional writes" in plain.log_text(), plain.log_tail()

    # three caches race for one free filesystem on a store that honours them:
    # exactly one mount wins, every other is refused with the winner named
    conf = s3_conf(cond_proxy.port, "unused")
    # unencrypted: three new encrypted filesystems made at once would each have a key of
    # their own, and a loser could not read the winner's lease to name it
    racers = [make_fs(conf, "race%d" % i, mount=False, prefix="tier/cond-race/",
                      leaseTimeout=3, encryption="false") for i in range(3)]
    results = [None] * len(racers)
    start = threading.Barrier(len(racers))

    def race(i):
        start.wait()
        results[i] = racers[i].try_mount()
    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(racers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    winners = [i for i, p in enumerate(results) if p.returncode == 0]
    assert len(winners) == 1, [p.stdout for p in results]
    one = racers[winners[0]]
    wait_for(lambda: is_mounted(one.mnt), 10, "the winner's mount")
    for i, p in enumerate(results):
        if i != winners[0]:
            # named by its cache (its pid may still be the one before it daemonized)
            assert (one.cache / "cache.id").read_text().strip() in p.stdout, p.stdout
            assert not is_mounted(racers[i].mnt)
    st = one.status()
    assert st["lease_conditional"] is True, st
    assert "honours conditional writes" in one.log_text(), one.log_tail()
    write(one.mnt / "f", b"one's")

    # --force from another cache: the first mount's next renewal is a
    # conditional put the store refuses (412), which fences it
    two = racers[(winners[0] + 1) % len(racers)]
    cond_proxy.reset()
    p = two.zero("mount", two.mnt, two.cache, "--config", two.z.config, "--force")
    assert p.returncode == 0, p.stdout + two.log_tail()
    wait_for(lambda: one.status()["lease_fenced"], 6, "the first mount to be fenced")
    refusals = [e for e in cond_proxy.stats()["log"]
                if e[0] == "PUT" and e[1].endswith("/zero/lease") and e[3] == "precondition"]
    assert refusals, cond_proxy.stats()["log"]
    with pytest.raises(OSError) as e:
        write(one.mnt / "g", b"x")
    assert e.value.errno == errno.EROFS
    write(two.mnt / "h", b"two's")
    assert two.status()["lease_conditional"] is True
