"""Helpers for the tiering tests (test_tiering.py): a mounted Zero on a
bucket, its status and residency attributes, the cache's disk usage, the
bucket's chunk objects, and reproducible data sets to write and check.

The mount is driven as a black box: `zero mount` / `zero umount` with a
configuration file written by conftest.Zero (which also runs `zero bucket`
with the same file, so listings see what the daemon sees).
"""

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "system"))
from sysutil import live_threads  # noqa: E402  (one reading of /proc for both suites)

MiB = 1 << 20
CHUNK = 4 * MiB
TARGET = 64_000_000  # targetDiskUsage 0.064 (GB)
# The tests lay files out around 4 MiB chunk boundaries; the default chunk
# size (16 MiB) is taken by the tests that pass chunkSize=None.
TIER_CONF = {"targetDiskUsage": 0.064, "uploadDelay": 0, "backpressureTimeout": 10,
             "maxParallelTransfers": 4, "chunkSize": "4MiB",
             # no point-in-time history: replaced objects are collected at once
             "metadataRetention": 0}
SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        return "(%s)" % e


def abort_connection(conn):
    """Abort FUSE connection CONN: its requests fail and its mount answers ENOTCONN."""
    ctl = Path("/sys/fs/fuse/connections")
    if not any(ctl.iterdir()):
        subprocess.run(["mount", "-t", "fusectl", "fusectl", str(ctl)], capture_output=True)
    try:
        (ctl / str(conn) / "abort").write_text("1")
    except OSError:
        pass  # gone already


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 2 and fields[1].replace("\\040", " ") == path:
                return True
    return False


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")


def wait_for(pred, timeout, what, interval=0.1):
    """Poll PRED until it returns something true; fail with WHAT after TIMEOUT s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


class Mount:
    """A Zero filesystem: MOUNT and CACHE under BASE, configured by Z (a conftest.Zero)."""

    def __init__(self, z, base, name="fs"):
        self.z = z
        self.base = Path(base)
        self.mnt = self.base / (name + "-mnt")
        self.cache = self.base / (name + "-cache")
        self.mnt.mkdir(parents=True, exist_ok=True)
        self.cache.mkdir(parents=True, exist_ok=True)
        self.log = self.cache / "zero.log"
        self.output = self.base / (name + "-output.txt")
        # more options of zero mount; ZERO_MOUNT_ARGS adds to every mount
        self.mount_args = os.environ.get("ZERO_MOUNT_ARGS", "").split()

    @property
    def writeback(self):
        """Whether the kernel caches writes (zero mount's default)."""
        return "--no-writeback-cache" not in self.mount_args

    # -- commands -----------------------------------------------------------
    def zero(self, *args, timeout=120):
        """Run `zero ARGS`, output through a file (a daemon may inherit it)."""
        with tempfile.TemporaryFile() as out:
            p = subprocess.run([self.z.binary, *map(str, args)], env=self.z.env,
                               stdin=subprocess.DEVNULL, stdout=out,
                               stderr=subprocess.STDOUT, timeout=timeout)
            out.seek(0)
            p.stdout = out.read().decode(errors="replace")
        with open(self.output, "a") as f:
            f.write("$ zero %s\n%s" % (" ".join(map(str, args)), p.stdout))
        return p

    def try_mount(self):
        return self.zero("mount", self.mnt, self.cache, "--config", self.z.config,
                         *self.mount_args)

    def mount(self):
        p = self.try_mount()
        assert p.returncode == 0, "zero mount failed (%d):\n%s\nlog:\n%s" % (
            p.returncode, p.stdout, self.log_tail())
        wait_for(lambda: is_mounted(self.mnt), 10, "%s to be mounted" % self.mnt)
        # its FUSE connection (/sys/fs/fuse/connections/N): a stat later may hang
        self.conn = os.minor(os.stat(self.mnt).st_dev)
        return self

    def umount(self, timeout=120):
        p = self.zero("umount", self.mnt, timeout=timeout)
        assert p.returncode == 0, "zero umount failed (%d):\n%s\nlog:\n%s" % (
            p.returncode, p.stdout, self.log_tail())
        assert not is_mounted(self.mnt), "still mounted after zero umount"

    def daemon_pid(self):
        try:
            pid = int((self.cache / "lock").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            return None
        # only the daemon this Mount started: its argv names our cache
        return pid if any(os.fsencode(str(self.cache)) in a for a in argv) else None

    def cleanup(self):
        """Unmount whatever state it is in; True if it had to force anything."""
        forced = False
        deadline = time.monotonic() + 20
        while is_mounted(self.mnt):
            try:
                p = self.zero("umount", self.mnt, timeout=90)
            except subprocess.TimeoutExpired:
                forced = True
                break
            if p.returncode == 0:
                break
            if "busy" not in p.stdout or time.monotonic() > deadline:
                forced = True
                break
            time.sleep(0.5)  # a thread of the test may still be finishing a call
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(self.mnt)], capture_output=True)
            forced = True
        pid = self.daemon_pid()
        if pid:
            forced = True
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + 5
                while self.daemon_pid() and time.monotonic() < deadline:
                    time.sleep(0.05)
        return forced

    def kill9(self):
        """SIGKILL the daemon (a crash); returns once every thread of it is gone."""
        self.stop_daemon(signal.SIGKILL)

    def stop_daemon(self, sig):
        """Send the daemon SIG; return once every thread of it is gone.

        A thread that stays (a zombie process whose thread waits in the kernel
        for its own mount) keeps /dev/fuse open and the mount hangs for good:
        that fails the test, after the connection is aborted so that nothing
        else hangs on it. (60 s: a thread may be in a truncate of a cache file,
        whose discards on this machine's disk have taken more than 15 s.)"""
        pid = self.daemon_pid()
        assert pid, "no daemon to signal"
        os.kill(pid, sig)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and live_threads(pid):
            time.sleep(0.05)
        stuck = live_threads(pid)
        if stuck:
            stacks = "\n".join("thread %s:\n%s" % (t, read_text("/proc/%d/task/%s/stack" % (
                pid, t))) for t in stuck)
            abort_connection(self.conn)
            raise AssertionError("the daemon (pid %d) did not exit within 60 s of %s: "
                                 "threads %s stayed:\n%s" % (
                                     pid, signal.Signals(sig).name, stuck, stacks))

    # -- observation ----------------------------------------------------------
    def status(self):
        return json.loads(os.getxattr(self.mnt, "user.zero.status"))

    def residency(self, path):
        text = os.getxattr(path, "user.zero.residency").decode()
        out = {}
        for field in text.split():
            k, v = field.split("=", 1)
            out[k] = int(v)
        return out

    def evict(self, path):
        os.setxattr(path, "user.zero.evict", b"")

    def cache_usage(self):
        """Bytes the cache's data files take on disk (st_blocks, like du)."""
        total = 0
        data = self.cache / "data"
        if not data.exists():
            return 0
        for dirpath, _dirs, files in os.walk(data):
            for name in files:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
                except FileNotFoundError:
                    pass
        return total

    @contextmanager
    def peak_usage(self, interval):
        """Sample cache_usage() every INTERVAL seconds while the block runs;
        yields a one-item list that holds the highest value seen."""
        peak, stop = [0], threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], self.cache_usage())
                time.sleep(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield peak
        finally:
            stop.set()
            sampler.join()

    def wait_uploaded(self, timeout, what="uploads to finish"):
        """Wait until no chunk is dirty or being uploaded; returns the status."""
        def done():
            s = self.status()
            return s if s["dirty_chunks"] == 0 and s["uploading"] == 0 else None
        try:
            return wait_for(done, timeout, what, interval=0.2)
        except AssertionError as e:
            raise AssertionError("%s; status: %s" % (e, self.status())) from None

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        return "".join(self.log_text().splitlines(True)[-n:]) or "(no log)"

    def sanitizer_reports(self):
        text = self.log_text()
        try:
            text += self.output.read_text(errors="replace")
        except FileNotFoundError:
            pass
        return [m for m in SANITIZER_MARKERS if m in text]

    def bucket_chunks(self):
        """{key: size} of the chunk objects in the bucket, listed by `zero bucket ls`."""
        p = self.z.run("ls", "zero/chunks/")
        out = {}
        for line in p.stdout.decode().splitlines():
            fields = line.split()
            if len(fields) == 4 and fields[3].startswith("zero/chunks/"):
                out[fields[3]] = int(fields[0])
        return out


# -- data sets ------------------------------------------------------------------

def gen(kind, size, seed):
    """SIZE reproducible bytes of KIND from SEED."""
    rnd = random.Random(seed)
    if kind == "random":  # incompressible
        return rnd.randbytes(size)
    if kind == "text":  # 16 symbols: compresses to about half
        table = (b"etaoinshrdlucmw\n" * 16)
        return rnd.randbytes(size).translate(table)
    if kind == "blocks":  # highly compressible, yet no two 64 KiB blocks alike
        block = rnd.randbytes(64 * 1024)
        parts = []
        for i in range(0, size, len(block)):
            parts.append(("%d:%d:" % (seed, i)).encode() + block)
        return b"".join(parts)[:size]
    if kind == "zeros":  # written zeros, not holes
        return bytes(size)
    raise ValueError(kind)


class FileSpec:
    """A file to write: PATH (relative), SIZE, and its content recipe.

    PIECES is a list of (offset, kind, length, seed); bytes outside them are
    zeros (holes when the file is sparse)."""

    def __init__(self, path, size, pieces, sparse=False):
        self.path = path
        self.size = size
        self.pieces = pieces
        self.sparse = sparse

    def content(self):
        buf = bytearray(self.size)
        for off, kind, length, seed in self.pieces:
            buf[off:off + length] = gen(kind, length, seed)
        return bytes(buf)

    def write(self, root, bufsize=MiB):
        path = os.path.join(root, self.path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if self.sparse:
                os.ftruncate(fd, self.size)
                for off, kind, length, seed in self.pieces:
                    data = gen(kind, length, seed)
                    for i in range(0, length, bufsize):
                        os.pwrite(fd, data[i:i + bufsize], off + i)
            else:
                data = self.content()
                for i in range(0, self.size, bufsize):
                    os.write(fd, data[i:i + bufsize])
        finally:
            os.close(fd)

    def check(self, root):
        """None if the file reads back byte-exact, else what differs."""
        path = os.path.join(root, self.path)
        try:
            with open(path, "rb") as f:
                got = f.read()
        except OSError as e:
            return "%s: %s" % (self.path, e)
        want = self.content()
        if got == want:
            return None
        if len(got) != len(want):
            return "%s: size %d, expected %d" % (self.path, len(got), len(want))
        first = next(i for i in range(0, len(got), 4096) if got[i:i + 4096] != want[i:i + 4096])
        first += next(i for i in range(4096) if got[first + i] != want[first + i])
        bad_chunks = sorted({i // CHUNK for i in range(0, len(got), 4096)
                             if got[i:i + 4096] != want[i:i + 4096]})
        return "%s: first difference at byte %d (chunk %d); differing chunks %s" % (
            self.path, first, first // CHUNK, bad_chunks[:20])


def varied_files(total, seed=1):
    """About TOTAL bytes in files of every kind and shape:

    large incompressible files, compressible text, highly compressible
    blocks, sizes one byte off a chunk boundary, a sparse file with holes,
    written zeros, and a tree of small files."""
    rnd = random.Random(seed)
    specs = []
    n = [0]

    def name(prefix):
        n[0] += 1
        return "%s-%03d" % (prefix, n[0])

    used = 0
    # a tree of small files: 0 bytes to 200 KiB, every kind
    small = 0
    for d in range(4):
        for _ in range(30):
            size = rnd.choice([0, 1, 100, 4095, 4096, 4097, rnd.randrange(1, 200 * 1024)])
            kind = rnd.choice(["random", "text", "blocks"])
            specs.append(FileSpec("small/d%d/%s" % (d, name("s")), size,
                                  [(0, kind, size, rnd.randrange(1 << 30))] if size else []))
            small += size
    used += small
    # sizes at chunk boundaries
    for size in (CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK - 1):
        specs.append(FileSpec(name("edge"), size, [(0, "random", size, rnd.randrange(1 << 30))]))
        used += size
    # a sparse file: 10 chunks of holes with data at both ends and in the middle
    size = 10 * CHUNK + 12345
    specs.append(FileSpec(name("sparse"), size,
                          [(0, "random", 100000, rnd.randrange(1 << 30)),
                           (4 * CHUNK + 777, "text", CHUNK, rnd.randrange(1 << 30)),
                           (size - 5000, "random", 5000, rnd.randrange(1 << 30))], sparse=True))
    used += size
    specs.append(FileSpec(name("zeros"), 2 * CHUNK + 99, [(0, "zeros", 2 * CHUNK + 99, 0)]))
    used += 2 * CHUNK + 99
    # the bulk: large files, a third of each kind
    kinds = ["random", "text", "blocks"]
    i = 0
    while used < total:
        size = min(total - used, rnd.choice([24, 32, 40, 48]) * MiB + rnd.randrange(CHUNK))
        size = max(size, 1)
        kind = kinds[i % 3]
        i += 1
        specs.append(FileSpec(name("big-" + kind), size, [(0, kind, size, rnd.randrange(1 << 30))]))
        used += size
    return specs
