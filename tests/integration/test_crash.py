"""kill -9 at random moments, in loops: nothing fsync'ed may be lost or come back old.

Each cycle starts crashwriter.py on the mount (random creates, appends,
overwrites, truncates, renames and unlinks, each followed by fsync of the
file and of its directory), kills the daemon with SIGKILL after 0.3-2.5 s,
clears the dead mount with `zero umount`, runs `zero fsck` on the cache
(which must say "consistent"), mounts again and compares every file with a
model of all the operations whose fsyncs returned. The one operation that
was under way may have happened, not happened or, for a write, happened in
part; whatever it left becomes part of the model.

Two settings: s3rver with a 64 MiB target and uploadDelay 1 (uploads,
eviction and fetches all under way when the daemon dies), and the file
backend with the default target (nothing is evicted).

ZERO_CRASH_CYCLES sets the number of cycles (default 50).
"""

import errno
import json
import os
import platform
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import crashwriter
from conftest import s3_conf
from tierutil import CHUNK, MiB, is_mounted, wait_for
from tierutil import drop_caches as tierutil_drop_caches

HERE = Path(__file__).resolve().parent
CYCLES = int(os.environ.get("ZERO_CRASH_CYCLES", "50"))
TIME_LIMIT = 600  # seconds for all the cycles of one setting


class Writer:
    """crashwriter.py on DIR in a process of its own; collects its announcements."""

    def __init__(self, root, sizes, seed, workdir):
        state = Path(workdir) / "crash-state.json"
        state.write_text(json.dumps(sizes))
        self.proc = subprocess.Popen([sys.executable, str(HERE / "crashwriter.py"), str(root),
                                      str(state), str(seed)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.done, self.pending, self.error = [], None, None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.decode().rstrip("\n")
            if line.startswith("B "):
                self.pending = json.loads(line[2:])
            elif line == "D":
                self.done.append(self.pending)
                self.pending = None
            elif line.startswith("E "):
                self.error = line[2:]

    def finish(self):
        """Wait for the writer (its mount is gone); [done ops], the pending op or None."""
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
            raise AssertionError("the writer hung on the dead mount")
        self.reader.join(10)
        err = self.proc.stderr.read().decode(errors="replace")
        assert "Traceback" not in err, "the writer failed:\n" + err
        return self.done, self.pending


def read_or_none(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def describe(name, got, want, history):
    if got is None or want is None:
        what = "missing" if got is None else "present, but it was removed"
    elif len(got) != len(want):
        what = "size %d, expected %d" % (len(got), len(want))
    else:
        first = next(i for i in range(len(got)) if got[i] != want[i])
        what = "first difference at byte %d" % first
    ops = [op for op in history if name in crashwriter.touched(op)][-8:]
    return "%s: %s; its last operations: %s" % (name, what, ops)


def check_tree(root, model, pending, history, recovery):
    """Compare ROOT with MODEL ({name: bytearray}); settle PENDING's outcome into MODEL."""
    if pending:
        names = crashwriter.touched(pending)
        before = {n: bytes(model[n]) if n in model else None for n in names}
        after_model = {n: bytearray(model[n]) for n in names if n in model}
        crashwriter.apply(after_model, pending)
        after = {n: bytes(after_model[n]) if n in after_model else None for n in names}
        got = {n: read_or_none(root / n) for n in names}
        assert crashwriter.accepts(pending, before, after, got), (
            "the operation under way at the crash left an impossible state: %s\n%s\n%s" % (
                pending, "\n".join(describe(n, got[n], after[n], history) for n in names),
                recovery))
        for n in names:
            if got[n] is None:
                model.pop(n, None)
            else:
                model[n] = bytearray(got[n])
    present = set(os.listdir(root))
    bad = [describe(n, None, b"", history) for n in sorted(set(model) - present)]
    bad += [describe(n, b"", None, history) for n in sorted(present - set(model))]
    for n in sorted(set(model) & present):
        got = read_or_none(root / n)
        if got != model[n]:
            bad.append(describe(n, got, bytes(model[n]), history))
    assert not bad, "%d fsync'ed files differ from what was written:\n%s\n%s" % (
        len(bad), "\n".join(bad), recovery)


def crash_cycles(m, seed):
    root = m.mnt / "w"
    root.mkdir()
    model, history = {}, []
    rnd = random.Random(seed)
    deadline = time.monotonic() + TIME_LIMIT
    for cycle in range(CYCLES):
        assert time.monotonic() < deadline, (
            "%d cycles took more than %d s" % (cycle, TIME_LIMIT))
        w = Writer(root, {n: len(b) for n, b in model.items()}, seed * 1000 + cycle, m.base)
        time.sleep(rnd.uniform(0.3, 2.5))
        log_mark = len(m.log_text())
        m.kill9()
        done, pending = w.finish()
        for op in done:
            crashwriter.apply(model, op)
        history += done + ([pending] if pending else [])
        m.zero("umount", m.mnt)  # clears the dead mount
        p = m.zero("fsck", m.cache, "--config", m.z.config)
        assert p.returncode == 0 and "consistent" in p.stdout, (
            "cycle %d: zero fsck after the crash:\n%s" % (cycle, p.stdout))
        m.mount()
        recovery = "cycle %d; the log of the remount:\n%s" % (cycle, "".join(
            l for l in m.log_text()[log_mark:].splitlines(True) if "recovery" in l or
            "fsck" in l or "error" in l.lower())[-4000:])
        check_tree(root, model, pending, history, recovery)
        print("cycle %d: %d operations fsync'ed, %d files, %d bytes" % (
            cycle, len(done), len(model), sum(len(b) for b in model.values())))
    m.umount()


def test_kill9_loop_on_s3_with_a_small_cache(make_fs, own_s3rver):
    store = s3_conf(own_s3rver["port"], "x")
    store.pop("prefix")
    m = make_fs(store, targetDiskUsage="64MiB", uploadDelay=1, chunkSize=None,
                backpressureTimeout=60)
    crash_cycles(m, 9001)


def test_kill9_loop_on_the_file_backend(make_fs):
    m = make_fs("file", targetDiskUsage=None, uploadDelay=None, chunkSize=None,
                backpressureTimeout=None, maxParallelTransfers=None)
    crash_cycles(m, 9002)


SYNCFS = {"x86_64": 306, "aarch64": 267}.get(platform.machine())


def in_syncfs(pid):
    """Whether a thread of process PID or of a child of it is in syncfs now."""
    pids, tasks = [pid], []
    while pids:
        p = pids.pop()
        try:
            ts = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for t in ts:
            tasks.append("/proc/%d/task/%s" % (p, t))
            try:
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    pids += [int(c) for c in f.read().split()]
            except OSError:
                pass
    for t in tasks:
        try:
            with open(t + "/syscall") as f:
                if f.read().split(" ", 1)[0] == str(SYNCFS):
                    return True
        except OSError:
            pass
    return False


@pytest.mark.skipif(SYNCFS is None, reason="syncfs's number on this machine not known")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_signal_during_the_kernels_write_back_ends_the_daemon(make_fs, sig):
    # With the writeback cache the daemon has the kernel write the mount's
    # dirty pages back each second while a file is open for writing
    # (fuse/writeback.c). A kill -9 while that write-back waits for WRITEs
    # must still end the daemon, every thread of it, so that /dev/fuse is
    # closed and the mount answers ENOTCONN. (A thread of the daemon in syncfs
    # on its own mount, waiting for write-back work that waits for WRITEs,
    # cannot die before they are answered, and only the dead threads could
    # answer them: the process
    # stayed a zombie and the mount hung with its writer for good, until the
    # connection was aborted by hand; seen once in the kill -9 loop.) Each
    # round kills the daemon the moment a syncfs of the mount is seen under
    # way, while a writer keeps the kernel's cache full of dirty pages. The
    # same with SIGTERM: the daemon stops serving and exits, it must not wait
    # for a write-back that only its stopped threads could serve.
    m = make_fs("file", mount=False, targetDiskUsage=None, uploadDelay=None)
    m.mount_args = ["--writeback-cache"]
    piece = crashwriter.data(3, 4 * MiB)
    for rnd in range(5):
        m.mount()
        stop, errors = threading.Event(), []

        def write():
            try:
                fd = os.open(m.mnt / "w", os.O_WRONLY | os.O_CREAT, 0o644)
                try:
                    off = 0
                    while not stop.is_set():
                        os.pwrite(fd, piece, off)
                        off = (off + len(piece)) % (256 * MiB)
                finally:
                    os.close(fd)
            except OSError as e:
                errors.append(e)

        w = threading.Thread(target=write, daemon=True)
        w.start()
        pid = m.daemon_pid()
        wait_for(lambda: in_syncfs(pid), 30, "a syncfs of the mount under way", interval=0)
        m.stop_daemon(sig)  # fails if a thread of the daemon stays
        stop.set()
        w.join(30)
        assert not w.is_alive(), "round %d: the writer still hangs on the dead mount" % rnd
        assert errors and errors[0].errno in (errno.ENOTCONN, errno.ECONNABORTED, errno.EIO), (
            rnd, errors)
        if is_mounted(m.mnt):
            m.zero("umount", m.mnt)  # clears the dead mount


def test_write_during_an_upload_begun_before_the_inode_was_loaded(make_fs, proxy):
    # After a remount the uploader starts on a dirty chunk before the kernel
    # has looked its file up. When the file is then opened and written while
    # that upload is under way, the write must commit a new DIRTY mark: the
    # upload read the old bytes. (The in-memory dirty bits were loaded from
    # the table, DIRTY, the write trusted them, the upload landed as CLEAN
    # over the new bytes, and once the chunk was evicted the file read back
    # its old bytes: fsync'ed data lost.)
    m = make_fs("s3")
    old = crashwriter.data(1, 1_000_000)
    proxy.faults([{"action": "status", "status": 500, "method": "PUT",
                   "path_contains": "/zero/chunks/", "times": 1_000_000}])
    with open(m.mnt / "f", "wb") as f:
        f.write(old)
        f.flush()
        os.fsync(f.fileno())
    m.kill9()
    proxy.faults([{"action": "delay", "seconds": 3, "method": "PUT",
                   "path_contains": "/zero/chunks/", "times": 1}])
    m.mount()
    wait_for(lambda: m.status()["uploading"], 10, "an upload to begin after the remount",
             interval=0.02)
    new = crashwriter.data(2, 4096)
    with open(m.mnt / "f", "r+b") as f:
        f.seek(5000)
        f.write(new)
        f.flush()
        os.fsync(f.fileno())
    want = old[:5000] + new + old[5000 + len(new):]
    m.wait_uploaded(60)
    m.evict(m.mnt / "f")
    assert m.residency(m.mnt / "f")["local"] == 0
    tierutil_drop_caches()
    assert read_or_none(m.mnt / "f") == want, "the fsync'ed write is lost after eviction"


def test_recovery_keeps_the_committed_times_of_every_file(backend, make_fs):
    # Files whose times were set into the past (touch -d, cp -a, rsync -a,
    # tar -x, git checkout), some of them evicted and read back (a fetch and
    # a punched hole both change the cache file's mtime), one still open and
    # being written: after kill -9 and a remount, every file that was not
    # written after its last commit has exactly the times it had, and the
    # one being written has its new size. (Recovery took the cache file's
    # mtime wherever it was newer: every such file got a new mtime and
    # ctime, and rsync resent them all.)
    m = make_fs(backend)
    past = 1_000_000_000  # 2001-09-09
    files = {}
    for i in range(30):
        data = crashwriter.data(100 + i, [0, 10, 5000, 70_000, CHUNK + 3][i % 5])
        path = m.mnt / ("f%02d" % i)
        path.write_bytes(data)
        os.utime(path, ns=(past * 10**9 + i, (past + i) * 10**9 + 123))
        files[path.name] = data
    m.wait_uploaded(60)
    for i in range(0, 30, 3):
        m.evict(m.mnt / ("f%02d" % i))
    tierutil_drop_caches()
    for i in range(0, 30, 6):
        assert read_or_none(m.mnt / ("f%02d" % i)) == files["f%02d" % i]
    before = {n: os.stat(m.mnt / n) for n in files}
    busy = open(m.mnt / "busy", "wb")
    busy.write(b"x" * 10000)
    busy.flush()
    # written bytes are the daemon's at once with --no-writeback-cache; with
    # the writeback cache within a second while the file is open for writing
    # (fuse/writeback.h)
    time.sleep(2.0)
    m.kill9()
    m.mount()
    changed = []
    for n, st in before.items():
        now = os.stat(m.mnt / n)
        # (access times of reads are committed in batches: those may be older)
        for field in ("st_size", "st_mtime_ns", "st_ctime_ns", "st_mode", "st_nlink"):
            if getattr(now, field) != getattr(st, field):
                changed.append("%s: %s %d -> %d" % (n, field, getattr(st, field),
                                                    getattr(now, field)))
    assert not changed, "recovery changed what it could not know:\n" + "\n".join(changed)
    assert os.stat(m.mnt / "busy").st_size == 10000
    for n, data in files.items():
        assert read_or_none(m.mnt / n) == data, n


def test_writeback_cache_hands_written_bytes_over_within_a_second(make_fs):
    # With the writeback cache, write() leaves its bytes in the kernel's page
    # cache, which the kernel itself writes back after 30 s. While a file is
    # open for writing the daemon has it write them back each second
    # (fuse/writeback.c): a crash of the daemon 2.5 s after the last write,
    # the file still open and never fsync'ed, loses none of them.
    m = make_fs("file", mount=False)
    m.mount_args = ["--writeback-cache"]
    m.mount()
    data = crashwriter.data(7, 300_000)
    fd = os.open(m.mnt / "w", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for off in range(0, len(data), 4096):
            os.pwrite(fd, data[off:off + 4096], off)
        time.sleep(2.5)
        m.kill9()
    finally:
        try:
            os.close(fd)
        except OSError:
            pass  # the connection is gone
    m.mount()
    assert read_or_none(m.mnt / "w") == data


def test_rsync_and_git_see_nothing_changed_after_a_crash(make_fs, tmp_path):
    # What real programs left on the mount is there after kill -9 exactly as
    # they left it: a second rsync -aHAX lists nothing to send, git status is
    # clean (its index compares sizes, mtimes and ctimes).
    m = make_fs("file")
    src = tmp_path / "src"
    rnd = random.Random(7)
    for i in range(120):
        d = src / ("d%d" % (i % 7))
        d.mkdir(parents=True, exist_ok=True)
        p = d / ("f%03d" % i)
        p.write_bytes(rnd.randbytes(rnd.choice([0, 1, 300, 4096, 70_000, 1_100_000])))
        os.utime(p, (1_200_000_000 + i, 1_300_000_000 + i * 7))
        if i % 10 == 0:
            os.setxattr(p, "user.tag", b"v%d" % i)
    os.symlink("d0/f000", src / "link")
    os.link(src / "d1" / "f001", src / "hard")
    dst = m.mnt / "t"
    rsync = ["rsync", "-aHAX", "%s/" % src, "%s/" % dst]
    p = subprocess.run(rsync, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    repo = m.mnt / "repo"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=60)
    for i in range(40):
        (repo / ("file%02d.txt" % i)).write_text("line %d\n" % i * (i + 1))
    subprocess.run(git + ["add", "."], check=True, timeout=60)
    subprocess.run(git + ["commit", "-qm", "one"], check=True, timeout=60)

    def unchanged(what):
        p = subprocess.run(rsync[:2] + ["-n", "--itemize-changes"] + rsync[2:],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0 and p.stdout == "", "%s, rsync would send:\n%s%s" % (
            what, p.stdout[:3000], p.stderr)
        p = subprocess.run(git + ["status", "--porcelain"], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0 and p.stdout == "", "%s, git status:\n%s%s" % (
            what, p.stdout[:3000], p.stderr)

    unchanged("before the crash")
    m.kill9()
    m.mount()
    unchanged("after kill -9 and a remount")
    p = subprocess.run(git + ["fsck", "--no-progress"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
