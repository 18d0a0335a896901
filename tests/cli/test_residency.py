"""Black-box tests of `zero status`, `prefetch`, `pin`, `unpin` and `evict` on a
real mount: a file backend bucket, a 64 MB cache target and no upload delay.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/cli/test_residency.py
(ZERO_BIN picks the binary, default build/zero)."""

import fcntl
import hashlib
import json
import os
import random
import time

import pytest

from cliutil import mounted, zero
MB = 1000 * 1000
TARGET = 64 * MB  # targetDiskUsage: 0.064 (GB)
STATUS_KEYS = (
    "bucket chunk_size cache_used cache_target dirty_chunks dirty_bytes uploading "
    "upload_rate upload_eta_s uploads uploaded_bytes dedup_hits clean_chunks remote_chunks "
    "bucket_objects bucket_bytes reads reads_fetched hit_ratio fetches fetched_bytes "
    "fetch_errors upload_errors evictions evicted_bytes gc_deleted writers_waiting "
    "last_error").split()


def live(cache):
    """Whether a daemon holds CACHE's lock (a dead mount's is free)."""
    try:
        fd = os.open(os.path.join(cache, "lock"), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def zero_mounts():
    """The live Zero mounts, as `zero status` counts them (a dead one is left out)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if " - fuse.zero " in line:
                source = line.split(" - fuse.zero ")[1].split()[0].replace("\\040", " ")
                if live(source):
                    out.append(line.split()[4])
    return out


def residency(path):
    text = os.getxattr(path, "user.zero.residency").decode()
    assert text.endswith("\n")
    r = dict(kv.split("=") for kv in text.split())
    return {k: int(v) for k, v in r.items()}


def status(mnt):
    return json.loads(zero("status", str(mnt), "--json", check=0).stdout)


def wait_for(pred, what, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def wait_uploaded(mnt):
    return wait_for(lambda: (lambda s: s if s["dirty_bytes"] == 0 else None)(status(mnt)),
                    "uploads to finish")


def write_file(path, size, seed):
    data = random.Random(seed).randbytes(size)  # incompressible, no chunk alike
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def mnt(tmp_path_factory):
    top = tmp_path_factory.mktemp("residency")
    mnt, cache = top / "mnt", top / "cache"
    mnt.mkdir()
    cfg = top / "config.yml"
    cfg.write_text(f"bucketDir: {top / 'bucket'}\ntargetDiskUsage: 0.064\nuploadDelay: 0\n")
    zero("mount", str(mnt), str(cache), "--config", str(cfg), check=0)
    yield mnt
    zero("umount", str(mnt), check=0)
    assert not mounted(mnt)
    log = (cache / "zero.log").read_text(errors="replace")
    assert "Sanitizer" not in log and "runtime error" not in log, log


@pytest.mark.parametrize("cmd", ["status", "prefetch", "pin", "unpin", "evict"])
def test_help(cmd):
    p = zero(cmd, "--help", check=0)
    assert p.stdout.startswith(f"usage: zero {cmd}")
    assert cmd in zero("--help", check=0).stdout


def test_usage_errors():
    for args in (["prefetch"], ["pin"], ["unpin"], ["evict"], ["evict", "--bogus", "x"],
                 ["status", "a", "b"], ["status", "--bogus"]):
        assert zero(*args, check=2).stderr.startswith("usage: zero")


def test_status(mnt):
    write_file(mnt / "status.bin", 6 * MB, "status")
    st = wait_uploaded(mnt)
    for key in STATUS_KEYS:
        assert key in st, key
    assert st["cache_target"] == TARGET
    assert st["chunk_size"] >= 4096 and st["chunk_size"] & (st["chunk_size"] - 1) == 0
    assert st["dirty_chunks"] == 0 and st["upload_errors"] == 0 and st["fetch_errors"] == 0
    assert st["uploads"] >= 1 and st["uploaded_bytes"] >= 6 * MB
    assert st["bucket_objects"] >= 1 and st["bucket_bytes"] >= 6 * MB
    assert 0.0 <= st["hit_ratio"] <= 1.0
    assert st["writers_waiting"] in (True, False) and isinstance(st["last_error"], str)

    out = zero("status", str(mnt), check=0).stdout
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert str(mnt) in lines["mount"]
    assert "of 61.0 MiB target" in lines["cache"]
    assert lines["dirty"].startswith("dirty      0 B")
    assert "objects," in lines["bucket"]
    assert "% served locally" in lines["reads"] and "fetches" in lines["reads"]
    # any path inside the mount names it
    sub = zero("status", str(mnt / "status.bin"), check=0).stdout
    assert sub.startswith(f"mount      {mnt} (")
    # no MOUNTPOINT: ours when it is the only one, else a request to name one
    # (judged only when no other Zero mount came or went meanwhile)
    for _ in range(20):
        before = len(zero_mounts())
        p = zero("status")
        if len(zero_mounts()) == before:
            break
    if before == 1:
        assert p.returncode == 0 and str(mnt) in p.stdout
    else:
        assert p.returncode == 1 and "name one" in p.stderr and str(mnt) in p.stderr


def test_residency_evict_prefetch(mnt):
    path = mnt / "cycle.bin"
    size = 10 * MB + 12345
    # right after the write, with the file still open, its data is dirty (the
    # upload scanner may win the race: try a few times)
    for attempt in range(5):
        with open(path, "wb") as f:
            f.write(os.urandom(size))
            f.flush()
            r = residency(path)
        if r["dirty"] > 0:
            break
    assert r["size"] == size and r["local"] == size and r["remote"] == 0
    assert r["dirty"] > 0 and r["pinned"] == 0
    want = digest(path)

    wait_uploaded(mnt)
    assert residency(path) == dict(size=size, local=size, remote=0, dirty=0, pinned=0)

    before = status(mnt)
    p = zero("evict", str(path), check=0)
    assert "local 0 B" in p.stdout and "dirty 0 B" in p.stdout
    assert residency(path) == dict(size=size, local=0, remote=size, dirty=0, pinned=0)
    # drop the kernel's page cache so the reads reach the daemon
    with open(path, "rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    assert digest(path) == want
    after = status(mnt)
    assert after["fetches"] > before["fetches"] and after["fetched_bytes"] > 0
    assert after["evictions"] > before["evictions"]

    zero("evict", str(path), check=0)
    p = zero("prefetch", str(path), check=0)
    assert "prefetched 1 file:" in p.stdout and "fetched" in p.stdout
    assert "still remote" not in p.stdout
    assert residency(path) == dict(size=size, local=size, remote=0, dirty=0, pinned=0)
    assert digest(path) == want
    # nothing left to do
    assert "already local" in zero("prefetch", str(path), check=0).stdout


def test_recursive(mnt):
    d = mnt / "tree"
    (d / "sub").mkdir(parents=True)
    files = [d / "a", d / "sub" / "b", d / "sub" / "empty"]
    sizes = [3 * MB, 5 * MB + 1, 0]
    for f, n in zip(files, sizes):
        write_file(f, n, f.name)
    wait_uploaded(mnt)
    p = zero("evict", str(d), check=1)
    assert "is a directory (use -r" in p.stderr
    p = zero("evict", "-r", str(d), check=0)
    assert len(p.stdout.splitlines()) == 3
    for f, n in zip(files, sizes):
        assert residency(f)["remote"] == n
    p = zero("prefetch", str(d), "-r", check=0)
    assert "prefetched 3 files:" in p.stdout
    for f, n in zip(files, sizes):
        assert residency(f)["local"] == n


def test_pin_survives_pressure(mnt):
    pinned = mnt / "pinned.bin"
    size = 8 * MB
    want = write_file(pinned, size, "pinned")
    wait_uploaded(mnt)
    zero("evict", str(pinned), check=0)
    p = zero("pin", str(pinned), check=0)
    assert "pinned 1 file:" in p.stdout
    assert residency(pinned) == dict(size=size, local=size, remote=0, dirty=0, pinned=1)

    before = status(mnt)
    other = mnt / "pressure"
    other.mkdir()
    for i in range(3 * TARGET // (16 * MB)):
        write_file(other / str(i), 16 * MB, f"other{i}")
        assert residency(pinned)["local"] == size
    st = wait_uploaded(mnt)
    assert st["evictions"] > before["evictions"], "no pressure: the test proves nothing"
    r = residency(pinned)
    assert r["local"] == size and r["remote"] == 0 and r["pinned"] == 1
    assert digest(pinned) == want

    zero("unpin", str(pinned), check=0)
    assert residency(pinned)["pinned"] == 0
    zero("evict", str(pinned), check=0)
    assert residency(pinned)["remote"] == size
    # pin on files already local fetches nothing
    zero("prefetch", str(pinned), check=0)
    assert "already local" in zero("pin", str(pinned), check=0).stdout
    zero("unpin", str(pinned), check=0)
    for f in other.iterdir():
        f.unlink()


def test_errors(mnt, tmp_path):
    outside = tmp_path / "plain"
    outside.write_text("x")
    for cmd in ("prefetch", "pin", "unpin", "evict"):
        p = zero(cmd, str(outside), check=1)
        assert f"{outside} is not on a Zero mount" in p.stderr
        p = zero(cmd, str(mnt / "missing"), check=1)
        assert "missing: No such file or directory" in p.stderr
        assert p.stdout == ""
    p = zero("status", str(tmp_path), check=1)
    assert "is not on a Zero mount" in p.stderr
    p = zero("status", str(mnt / "missing"), check=1)
    assert "No such file or directory" in p.stderr
    # one bad path does not stop the others, but fails the command
    good = mnt / "good.bin"
    write_file(good, MB, "good")
    p = zero("prefetch", str(mnt / "missing"), str(good), check=1)
    assert "prefetched 1 file:" in p.stdout
    # a special file is not fetched
    p = zero("evict", str(mnt), check=1)
    assert "is a directory" in p.stderr
