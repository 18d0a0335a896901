"""The metadata in the bucket (src/journal/): a lost cache comes back from the bucket.

Every drill keeps the bucket outside the cache (make_fs puts the file
backend's bucketDir in the test's tmp_path; s3rver is outside anyway), so
that deleting the cache directory is the loss of the machine's disk:

  - the lost-disk drill: a tree of every kind of object, shipped, the daemon
    killed, the cache deleted, a mount on a new cache shows the same tree;
  - the loss window: crashwriter.py writing and fsync'ing when the daemon is
    killed and the cache deleted: each file comes back as a state it had, or
    is listed as lost;
  - an idle mount ships nothing; a copy of a cache left behind is refused;
  - checkpoints and points in time mount read-only;
  - the S3 server down while changes wait, and faults while shipping and
    while restoring.

ZERO_JOURNAL_CYCLES sets the loss-window cycles (default 3).
"""

import hashlib
import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import crashwriter
from conftest import s3_conf
from tierutil import MiB, is_mounted, wait_for

HERE = Path(__file__).resolve().parent
CYCLES = int(os.environ.get("ZERO_JOURNAL_CYCLES", "3"))
LOST_RE = re.compile(r"^zero: lost: (.*): bytes (\d+)-(\d+)$", re.M)
# ranges that come back as last uploaded: readable, but of another moment than the file
OLDER_RE = re.compile(r"^zero: older: (.*): bytes (\d+)-(\d+)$", re.M)


# -- helpers ------------------------------------------------------------------------

def caught_up(m, timeout=60):
    """Wait until no chunk is dirty or uploading and the journal has shipped every change
    (twice in a row, a second apart: an upload's completion is itself a change)."""
    def done():
        s = m.status()
        return (s["dirty_chunks"] == 0 and s["uploading"] == 0 and s["meta_lag_s"] == 0
                and s["meta_lag_rows"] == 0)
    try:
        wait_for(done, timeout, "everything to reach the bucket", interval=0.2)
        time.sleep(1.2)
        wait_for(done, timeout, "everything to reach the bucket", interval=0.2)
    except AssertionError as e:
        raise AssertionError("%s; status: %s" % (e, m.status())) from None
    return m.status()


def lose_disk(m):
    """kill -9 the daemon, clear the dead mount, delete the cache: an empty new one."""
    m.kill9()
    deadline = time.monotonic() + 20
    while True:  # a writer on the dead mount may still be getting its error
        p = m.zero("umount", m.mnt)
        if not is_mounted(m.mnt) or "busy" not in p.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not is_mounted(m.mnt), "dead mount not cleared: %s" % p.stdout
    shutil.rmtree(m.cache)
    m.cache.mkdir()


def restore(m, *extra):
    """Mount M's (new, empty) cache; returns the mount's output (lost ranges on it)."""
    p = m.zero("mount", *extra, m.mnt, m.cache, "--config", m.z.config)
    assert p.returncode == 0, "zero mount on a new cache failed (%d):\n%s\nlog:\n%s" % (
        p.returncode, p.stdout, m.log_tail())
    wait_for(lambda: is_mounted(m.mnt), 10, "%s to be mounted" % m.mnt)
    return p.stdout


def lost_ranges(output, regex=LOST_RE):
    """{'/path': [(start, end_inclusive)]} from the recovery's 'zero: lost:' lines
    (REGEX=OLDER_RE: its 'zero: older:' lines)."""
    out = {}
    for path, a, b in regex.findall(output):
        out.setdefault(path, []).append((int(a), int(b)))
    return out


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


def manifest(root):
    """Everything a restore must bring back, for every path under ROOT."""
    root = str(root)
    out, inodes = {}, {}
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files) + ([] if dirpath != root else ["."]):
            p = os.path.join(dirpath, name) if name != "." else root
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            e = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode),
                 "uid": st.st_uid, "gid": st.st_gid, "nlink": st.st_nlink,
                 "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                 "xattrs": {x: os.getxattr(p, x, follow_symlinks=False)
                            for x in sorted(os.listxattr(p, follow_symlinks=False))
                            if not x.startswith("user.zero.")}}
            if stat.S_ISLNK(st.st_mode):
                e["target"] = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                e["sha256"] = sha(p)
            if not stat.S_ISDIR(st.st_mode):
                inodes.setdefault(st.st_ino, []).append(rel)
            out[rel] = e
    for names in inodes.values():
        for n in names:
            out[n]["same_inode"] = sorted(names)
    return out


def diff_manifests(want, got):
    lines = []
    for p in sorted(set(want) | set(got)):
        if p not in got:
            lines.append("%s: missing" % p)
        elif p not in want:
            lines.append("%s: not in the original" % p)
        elif want[p] != got[p]:
            keys = sorted(k for k in set(want[p]) | set(got[p]) if want[p].get(k) != got[p].get(k))
            lines.append("%s: %s" % (p, ", ".join("%s %r, expected %r" % (
                k, got[p].get(k), want[p].get(k)) for k in keys)))
    return "\n".join(lines[:40])


def assert_same_tree(want, root, what):
    got = manifest(root)
    assert got == want, "%s differs from the original tree:\n%s" % (what, diff_manifests(want, got))


def rand(seed, n):
    return random.Random(seed).randbytes(n)


def build_tree(root):
    """Directories, hard links, symlinks, xattrs, modes, owners, sparse, small and big files."""
    root = Path(root)
    (root / "d/sub/deep").mkdir(parents=True)
    (root / "sgid").mkdir()
    os.chmod(root / "sgid", 0o2775)
    (root / "sgid/inherits").write_bytes(b"group of the directory\n")
    (root / "empty").write_bytes(b"")
    (root / "small").write_bytes(rand(1, 1000))
    (root / "d/sub/deep/page").write_bytes(rand(2, 4096))
    (root / "secret").write_bytes(b"0600\n")
    os.chmod(root / "secret", 0o600)
    (root / "owned").write_bytes(rand(3, 70_000))
    os.chown(root / "owned", 1234, 1234)
    os.chown(root / "d/sub", 1234, 0)
    (root / "big").write_bytes(rand(4, 3 * 4 * MiB + 12345))  # multi-chunk (4 MiB chunks)
    with open(root / "sparse", "wb") as f:  # a hole, then a write at 20 MiB
        f.truncate(30 * MiB)
        f.seek(20 * MiB)
        f.write(rand(5, 100_000))
    with open(root / "truncated", "wb") as f:  # only a hole
        f.truncate(9 * MiB + 1)
    os.link(root / "small", root / "d/hardlink")
    os.link(root / "small", root / "d/sub/hardlink2")
    os.symlink("small", root / "link")
    os.symlink("/nonexistent/dangling", root / "d/dangling")
    os.symlink("sub/deep", root / "d/dirlink")
    os.setxattr(root / "small", "user.color", b"blue")
    os.setxattr(root / "d", "user.empty", b"")
    os.setxattr(root / "big", "user.bin", bytes(range(256)))
    os.setxattr(root / "link", "trusted.on-link", b"x", follow_symlinks=False)
    os.chmod(root / "d/sub/deep", 0o700)
    os.chmod(root / "small", 0o640)
    os.utime(root / "owned", ns=(1_000_000_123, 1_600_000_000_987_654_321))
    os.utime(root / "d/sub/deep", ns=(5, 1_500_000_000_000_000_001))


def fs_prefix(request, tag=""):
    return "journal/%s%s/" % (re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name), tag)


# -- 1. the lost-disk drill -----------------------------------------------------------

def test_lost_disk_restores_identical_tree(make_fs, backend):
    m = make_fs(backend)
    build_tree(m.mnt)
    want = manifest(m.mnt)
    caught_up(m)
    lose_disk(m)
    out = restore(m)
    assert "zero: lost:" not in out, "data reported lost although everything was shipped:\n" + out
    assert "restored the filesystem" in out, out
    assert_same_tree(want, m.mnt, "the tree restored on a new cache")
    # the restored filesystem lives on: a change, shipped, survives a second loss
    (m.mnt / "after").write_bytes(b"written after the restore\n")
    os.rename(m.mnt / "secret", m.mnt / "d/secret")
    want = manifest(m.mnt)
    caught_up(m)
    lose_disk(m)
    restore(m)
    assert_same_tree(want, m.mnt, "the tree restored a second time")


# -- 2. the loss window -----------------------------------------------------------------

class Writer:
    """crashwriter.py on ROOT; collects its announced ("B") and confirmed ("D") operations."""

    def __init__(self, root, seed, workdir):
        state = Path(workdir) / "writer-state.json"
        state.write_text("{}")
        self.proc = subprocess.Popen([sys.executable, str(HERE / "crashwriter.py"), str(root),
                                      str(state), str(seed)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def finish(self):
        try:
            out, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise AssertionError("the writer hung on the dead mount")
        assert b"Traceback" not in err, "the writer failed:\n" + err.decode(errors="replace")
        done, pending = [], None
        for line in out.decode().splitlines():
            if line.startswith("B "):
                pending = json.loads(line[2:])
            elif line == "D":
                done.append(pending)
                pending = None
        return done, pending


def history_of(done, pending):
    """{name: [(before, after)]}: each operation's states of each name it touched
    (bytes, None: absent), the one under way at the crash included. The restored
    metadata is the state at some moment, which may fall inside an operation."""
    model, hist = {}, {}
    for op in done + ([pending] if pending else []):
        names = crashwriter.touched(op)
        if op["op"] == "rename":  # the inode's earlier states come with it
            hist[op["dst"]] = hist.get(op["dst"], []) + hist.get(op["name"], [])
        before = {n: bytes(model[n]) if n in model else None for n in names}
        crashwriter.apply(model, op)
        for n in names:
            hist.setdefault(n, []).append((before[n], bytes(model[n]) if n in model else None,
                                           op))
    return hist


def had_state(got, ranges, hist):
    """Whether GOT (None: absent) is a state the name had: a state between operations,
    or one inside a write (crashwriter.between). Bytes in RANGES (lost, or said to come
    back as last uploaded) are not compared: they are zeroed on both sides."""
    states = [None] + [s for b, a, _ in hist for s in (b, a)]
    if got is None:
        return None in states

    def masked(b):
        if b is None:
            return None
        b = bytearray(b)
        for a, e in ranges:
            b[a:e + 1] = bytes(len(b[a:e + 1]))
        return bytes(b)
    mgot = masked(got)
    if any(masked(st) == mgot for st in states if st is not None):
        return True
    for before, after, op in hist:
        if op["op"] in ("rename", "unlink") or after is None:
            continue
        if crashwriter.between(mgot, masked(before), masked(after)) or (
                op["op"] in ("create", "rewrite") and crashwriter.between(mgot, b"", masked(after))):
            return True
    return False


def range_had_state(want, a, hist):
    """Whether WANT, the bytes at offset A, are what that range held at some moment:
    in a state, or partway through a write (each byte old, new or not yet written)."""
    def cut(b):
        return (b or b"")[a:a + len(want)].ljust(len(want), b"\0")
    for before, after, op in hist:
        for st in (before, after):
            if st is not None and cut(st) == want:
                return True
        if op["op"] not in ("rename", "unlink") and after is not None:
            if crashwriter.between(want, cut(before), cut(after)) or crashwriter.between(
                    want, b"", cut(after)):
                return True
    return False


def read_around(path, ranges):
    """The file's bytes, with the LOST ranges read separately: (bytes with lost ranges as
    zeros, [errors reading lost ranges])."""
    size = os.path.getsize(path)
    buf = bytearray(size)
    errors = []
    fd = os.open(path, os.O_RDONLY)
    try:
        pos = 0
        for a, b in sorted(ranges) + [(size, size - 1)]:
            if pos < a:
                data = os.pread(fd, a - pos, pos)
                if len(data) != a - pos:
                    errors.append((pos, a - 1, "short read of %d bytes" % len(data)))
                buf[pos:a] = data.ljust(a - pos, b"\0")
            if a < size:
                try:
                    os.pread(fd, min(b, size - 1) - a + 1, a)
                    errors.append((a, b, "read without error"))
                except OSError as e:
                    if e.errno != 5:
                        errors.append((a, b, str(e)))
            pos = max(pos, b + 1)
    finally:
        os.close(fd)
    return bytes(buf), errors


def test_loss_window(make_fs, backend, tmp_path, request):
    rnd = random.Random(int(os.environ.get("ZERO_JOURNAL_SEED", str(random.randrange(1 << 30)))))
    seed0 = rnd.randrange(1, 1000)
    problems, eio_missing = [], []
    for cycle in range(CYCLES):
        m = make_fs(backend, name="c%d" % cycle, uploadDelay=1)
        w = Writer(m.mnt, seed0 + cycle, tmp_path)
        time.sleep(rnd.uniform(1.5, 4.0))
        lose_disk(m)
        done, pending = w.finish()
        out = restore(m)
        lost = lost_ranges(out)
        older = lost_ranges(out, OLDER_RE)
        hist = history_of(done, pending)
        present = set(os.listdir(m.mnt))
        for name in sorted(set(hist) | present):
            path = m.mnt / name
            ranges = lost.get("/" + name, [])
            old = older.get("/" + name, [])
            got = None
            if name in present:
                got, errs = read_around(path, ranges)
                eio_missing += ["%s bytes %d-%d: %s" % (name, a, b, e) for a, b, e in errs]
                # a range said to be older holds what that range held at some moment
                for a, e in old:
                    want = got[a:e + 1]
                    if not range_had_state(want, a, hist.get(name, [])):
                        problems.append("cycle %d: %s bytes %d-%d, said to be as last uploaded, "
                                        "match no state" % (cycle, name, a, e))
            if had_state(got, ranges + old, hist.get(name, [])):
                continue
            problems.append("cycle %d (seed %d): %s: %s, lost %s; its ops: %s" % (
                cycle, seed0 + cycle, name,
                "absent" if got is None else "%d bytes, no state it had" % len(got),
                ranges, [op for _, _, op in hist.get(name, [])][-6:]))
        m.umount()
    assert not problems, "files came back in states they never had:\n" + "\n".join(problems[:20])
    assert not eio_missing, "lost ranges that read without EIO: %s" % eio_missing[:5]


# -- syncUpload: an fsync'ed file survives the loss of the whole machine ------------------

def fsync_files(root, n, seed):
    """N small files, each written and fsync'ed; {name: bytes}."""
    rnd = random.Random(seed)
    files = {}
    for i in range(n):
        data = rand(rnd.randrange(1 << 30), rnd.randrange(1, 70_000))
        fd = os.open(root / ("s%03d" % i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        files["s%03d" % i] = data
    return files


@pytest.mark.parametrize("sync_upload", [True, False], ids=["sync_upload", "local_fsync"])
def test_sync_upload_fsynced_files_survive_a_lost_cache(make_fs, backend, sync_upload):
    # uploads would wait a minute: only an fsync that waits for the bucket gets them there
    conf = {"uploadDelay": 60, "syncUpload": sync_upload}
    m = make_fs(backend, **conf)
    caught_up(m)
    files = fsync_files(m.mnt, 20, 7)
    lose_disk(m)  # at once after the last fsync returned
    out = restore(m)
    lost = lost_ranges(out)
    present = sorted(n for n in os.listdir(m.mnt) if n.startswith("s"))
    if sync_upload:
        assert not lost, "fsync'ed files were lost: %s" % lost
        assert present == sorted(files), present
        for name, data in files.items():
            assert (m.mnt / name).read_bytes() == data, "%s differs" % name
    else:
        # the control: fsync is durable on the local disk only, which is gone
        intact = [n for n in present if "/" + n not in lost and
                  (m.mnt / n).read_bytes() == files[n]]
        assert len(intact) < len(files), (
            "without syncUpload every fsync'ed file reached the bucket within the loss "
            "window: the test cannot tell the two levels apart")


# -- 3. an idle mount ships nothing -------------------------------------------------------

def test_idle_mount_ships_nothing(make_fs, backend):
    m = make_fs(backend)
    (m.mnt / "a").write_bytes(b"a" * 1000)
    caught_up(m)
    m.umount()
    m.mount()
    caught_up(m)
    seq = m.status()["meta_seq"]
    time.sleep(3.5)
    s = m.status()
    assert s["meta_seq"] == seq, "an idle mount shipped items: meta_seq %d -> %d (%s)" % (
        seq, s["meta_seq"], s)
    (m.mnt / "b").write_bytes(b"b")
    wait_for(lambda: m.status()["meta_seq"] > seq, 10, "the change to be shipped")
    caught_up(m)


# -- 4. a copy of a cache left behind ---------------------------------------------------

def test_copied_cache_refused(make_fs, backend):
    a = make_fs(backend, name="A")
    prefix = a.z.conf["prefix"]
    (a.mnt / "one").write_bytes(b"first\n")
    caught_up(a)
    a.umount()
    b = make_fs(backend, name="B", mount=False, prefix=prefix, orphanSafetyAge=1)
    shutil.rmtree(b.cache)
    subprocess.run(["cp", "-a", str(a.cache), str(b.cache)], check=True)
    a.mount()
    (a.mnt / "two").write_bytes(b"second\n")
    (a.mnt / "one").write_bytes(b"first, rewritten\n")
    caught_up(a)
    a.umount()
    p = b.try_mount()
    assert p.returncode != 0 and not is_mounted(b.mnt), (
        "a copy of the cache that is behind the bucket was mounted:\n" + p.stdout)
    assert "holds a newer state" in p.stdout, p.stdout
    # nor does the stale copy's fsck take A's newer objects for leaked ones
    time.sleep(1.5)
    p = b.zero("fsck", b.cache, "--config", b.z.config, "--objects", "--repair")
    assert "behind the bucket" in p.stdout, p.stdout
    c = make_fs(backend, name="C", mount=False, prefix=prefix)
    restore(c)
    assert (c.mnt / "two").read_bytes() == b"second\n"
    assert (c.mnt / "one").read_bytes() == b"first, rewritten\n"


# -- 5. checkpoints and points in time ----------------------------------------------------

def mount_past(make_fs, backend, prefix, name, *how):
    r = make_fs(backend, name=name, mount=False, prefix=prefix, metadataRetention=3600)
    restore(r, *how)
    return r


def assert_read_only(r):
    for attempt in (lambda: (r.mnt / "new").write_bytes(b"x"),
                    lambda: open(r.mnt / "keep", "ab").close(),
                    lambda: os.unlink(r.mnt / "keep"),
                    lambda: os.mkdir(r.mnt / "newdir")):
        with pytest.raises(OSError) as e:
            attempt()
        assert e.value.errno == 30, "a past state took a change: %s" % e.value


def test_checkpoint_and_point_in_time(make_fs, backend):
    m = make_fs(backend, metadataRetention=3600)
    prefix = m.z.conf["prefix"]
    (m.mnt / "keep").write_bytes(b"kept\n")
    (m.mnt / "change").write_bytes(rand(7, 200_000))
    (m.mnt / "gone").write_bytes(b"to be deleted\n")
    os.mkdir(m.mnt / "dir")
    caught_up(m)
    state1 = manifest(m.mnt)
    p = m.zero("checkpoint", "create", "cp1", m.mnt)
    assert p.returncode == 0, p.stdout
    for bad in ("", ".x", "a/b"):
        p = m.zero("checkpoint", "create", bad, m.mnt)
        assert p.returncode != 0, "checkpoint name %r accepted: %s" % (bad, p.stdout)
    p = m.zero("checkpoint", "create", "cp1", m.mnt)
    assert p.returncode != 0 and "exists" in p.stdout, p.stdout
    (m.mnt / "change").write_bytes(rand(8, 300_000))
    os.unlink(m.mnt / "gone")
    (m.mnt / "dir/added").write_bytes(b"added\n")
    caught_up(m)
    state2 = manifest(m.mnt)
    time.sleep(1.1 - time.time() % 1)  # into a new second: T holds state2 alone
    t = int(time.time())
    time.sleep(1.2)
    (m.mnt / "change").write_bytes(rand(9, 100))
    os.rename(m.mnt / "keep", m.mnt / "dir/keep")
    caught_up(m)

    cp = mount_past(make_fs, backend, prefix, "cp", "--checkpoint", "cp1")
    assert_same_tree(state1, cp.mnt, "checkpoint cp1")
    assert_read_only(cp)
    cp.umount()
    at = mount_past(make_fs, backend, prefix, "at", "--at", "@%d" % t)
    assert_same_tree(state2, at.mnt, "the state at @%d" % t)
    assert_read_only(at)
    at.umount()
    at2 = mount_past(make_fs, backend, prefix, "at2", "--at",
                     time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)))
    assert_same_tree(state2, at2.mnt, "the state at %s" % time.ctime(t))
    at2.umount()

    p = m.zero("recover", "--list", "--config", m.z.config)
    assert p.returncode == 0, p.stdout
    assert "history" in p.stdout and re.search(r"checkpoint\s+cp1\b", p.stdout), p.stdout
    p = m.zero("checkpoint", "list", m.mnt)
    assert p.returncode == 0 and "cp1" in p.stdout, p.stdout
    p = m.zero("checkpoint", "delete", "cp1", m.mnt)
    assert p.returncode == 0, p.stdout
    p = m.zero("recover", "--list", "--config", m.z.config)
    assert p.returncode == 0 and "cp1" not in p.stdout, p.stdout
    p = m.zero("checkpoint", "delete", "cp1", m.mnt)
    assert p.returncode != 0 and "no such checkpoint" in p.stdout, p.stdout
    gone = make_fs(backend, name="gone", mount=False, prefix=prefix)
    p = gone.zero("mount", "--checkpoint", "cp1", gone.mnt, gone.cache, "--config", gone.z.config)
    assert p.returncode != 0 and not is_mounted(gone.mnt), p.stdout
    assert not (gone.cache / "meta.db").exists(), "a refused restore left a database"


# -- 6. the S3 server down while changes wait ---------------------------------------------

def test_server_down_while_shipping(make_fs, own_s3rver, request):
    conf = s3_conf(own_s3rver["port"], "x", maxRetries=1, connectTimeout=2)
    m = make_fs(conf)
    build_tree(m.mnt)
    caught_up(m)
    before = m.status()
    own_s3rver["server"].stop()
    (m.mnt / "while-down").write_bytes(rand(10, 50_000))
    os.rename(m.mnt / "small", m.mnt / "d/small-moved")
    os.setxattr(m.mnt / "d", "user.down", b"1")
    os.chmod(m.mnt / "secret", 0o400)

    down = time.monotonic()

    def failing():
        s = m.status()
        return s if s["meta_ship_errors"] > before["meta_ship_errors"] else None
    try:
        wait_for(failing, 30, "shipping to fail while the server is down", interval=0.3)
    except AssertionError as e:
        raise AssertionError("%s; status before %s, now %s; log:\n%s" % (
            e, before, m.status(), m.log_tail(15))) from None
    time.sleep(max(0, down + 5 - time.monotonic()))
    s = m.status()  # the changes have waited 5 s
    assert s["meta_lag_rows"] > 0 and s["meta_seq"] == before["meta_seq"], s
    want = manifest(m.mnt)
    own_s3rver["start"]()
    caught_up(m, timeout=90)
    lose_disk(m)
    restore(m)
    assert_same_tree(want, m.mnt, "the tree restored after the server came back")
    assert s["meta_lag_s"] >= 4, (
        "changes waited 5 s for a server that was down, yet meta_lag_s is %s: %s" % (
            s["meta_lag_s"], s))


# -- 7. faults while shipping and while restoring -----------------------------------------

def test_faults_while_shipping_and_restoring(make_fs):
    m = make_fs("s3")
    proxy = m.proxy
    proxy.faults([{"action": "status", "status": 503, "method": "PUT",
                   "path_contains": "zero/meta/", "times": 3},
                  {"action": "reset", "method": "PUT", "path_contains": "zero/meta/",
                   "times": 2}])
    build_tree(m.mnt)
    want = manifest(m.mnt)
    s = caught_up(m, timeout=90)
    assert proxy.stats()["faults_fired"] >= 5, proxy.stats()
    lose_disk(m)
    # transient faults during the restore: retried
    proxy.reset()
    # (maxRetries 3: each request may fail three times and still succeed)
    proxy.faults([{"action": "status", "status": 503, "method": "GET",
                   "path_contains": "zero/meta/", "times": 1},
                  {"action": "reset", "method": "GET", "path_contains": "zero/meta/",
                   "times": 1},
                  {"action": "status", "status": 500, "method": "GET",
                   "path_contains": "zero/meta", "times": 1}])
    restore(m)
    assert proxy.stats()["faults_fired"] >= 3, proxy.stats()
    assert_same_tree(want, m.mnt, "the tree restored through faults")
    caught_up(m)
    lose_disk(m)
    # a bucket that keeps failing: a clear error and nothing half restored
    proxy.faults([{"action": "status", "status": 503, "method": "GET",
                   "path_contains": "zero/meta/", "times": 1000}])
    p = m.zero("mount", m.mnt, m.cache, "--config", m.z.config)
    proxy.faults([])
    assert p.returncode != 0 and not is_mounted(m.mnt), (
        "mounted a new cache although the metadata could not be read:\n" + p.stdout)
    assert "zero:" in p.stdout and len(p.stdout) < 2000, p.stdout
    assert not (m.cache / "meta.db").exists(), (
        "a failed restore left a database in the cache: %s" % os.listdir(m.cache))
    restore(m)
    assert_same_tree(want, m.mnt, "the tree restored after a failed attempt")
    assert s is not None
