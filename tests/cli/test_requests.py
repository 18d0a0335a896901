"""What the kernel asks of the daemon: the FUSE requests behind everyday
operations, counted in the log of a daemon run with `zero mount -d` (libfuse
prints every request it reads). Each request is a round trip between the
kernel and the daemon; these tests keep the ones Zero has removed from
coming back, and check that the listings the kernel then keeps for itself
stay right."""

import collections
import contextlib
import os
import re
import subprocess
import time

import pytest

from cliutil import ZERO, mounted, zero

OPCODE = re.compile(r"^unique: \d+, opcode: ([A-Z_]+) ", re.M)


class DebugMount:
    """A Zero mount in the foreground with every request logged to a file."""

    def __init__(self, tmp_path, *args):
        self.mnt = tmp_path / "mnt"
        self.mnt.mkdir()
        home = tmp_path / "home"
        home.mkdir()
        self.env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                        XDG_DATA_HOME=str(home / ".local/share"))
        self.log = tmp_path / "requests.log"
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen([ZERO, "mount", "-d", *args, str(self.mnt),
                                      str(tmp_path / "cache")],
                                     env=self.env, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not mounted(self.mnt):
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "not mounted after 15 s"
            time.sleep(0.05)

    def mark(self):
        """A point in the log: requests() counts those after it."""
        time.sleep(0.3)  # RELEASE and FORGET are sent in the background
        return self.log.stat().st_size

    def text(self, since):
        """The log after SINCE, once the background requests are in."""
        time.sleep(0.3)
        with open(self.log, errors="replace") as f:
            f.seek(since)
            return f.read()

    def requests(self, since):
        return collections.Counter(OPCODE.findall(self.text(since)))

    def close(self):
        try:
            if mounted(self.mnt):
                zero("umount", self.mnt, env=self.env, check=0)
            assert self.proc.wait(timeout=60) == 0
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.logf.close()
        text = self.log.read_text(errors="replace")
        assert "Sanitizer" not in text and "runtime error" not in text, text[-3000:]


@contextlib.contextmanager
def debug_mount(tmp_path, *args):
    m = DebugMount(tmp_path, *args)
    try:
        yield m
    finally:
        if mounted(m.mnt) and m.proc.poll() is not None:
            subprocess.run([ZERO, "umount", "--lazy", str(m.mnt)], capture_output=True)
        m.close()


@pytest.fixture
def dm(tmp_path):
    with debug_mount(tmp_path) as m:
        yield m


@pytest.fixture
def dm_direct(tmp_path):
    """Without the kernel's writeback cache: each write() is a request."""
    with debug_mount(tmp_path, "--no-writeback-cache") as m:
        yield m


@pytest.fixture
def dm_writeback(tmp_path):
    """With the kernel's writeback cache (the default)."""
    with debug_mount(tmp_path, "--writeback-cache") as m:
        yield m


def test_directories_open_and_close_without_requests(dm):
    """find, ls and Python open directories without OPENDIR or RELEASEDIR
    (one OPENDIR at most: the kernel learns from its ENOSYS), and a listing
    read once is kept by the kernel: listing it again asks nothing."""
    dirs = [dm.mnt / "t" / ("d%d" % i) for i in range(5)]
    for d in dirs:
        d.mkdir(parents=True)
        for j in range(20):
            (d / ("f%02d" % j)).write_bytes(b"x")
    names = sorted("f%02d" % j for j in range(20))
    start = dm.mark()
    for _ in range(3):
        subprocess.run(["find", str(dm.mnt / "t")], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["ls", "-lR", str(dm.mnt / "t")], check=True, stdout=subprocess.DEVNULL)
        for d in dirs:
            assert sorted(os.listdir(d)) == names
            with os.scandir(d) as it:
                assert sorted(e.name for e in it) == names
    seen = dm.requests(start)
    assert seen["OPENDIR"] <= 1, seen
    assert seen["RELEASEDIR"] == 0, seen
    # the first listing of each of the 6 directories: a block of entries, then the empty one
    assert seen["READDIR"] + seen["READDIRPLUS"] <= 2 * (len(dirs) + 1), seen


def test_kept_listings_follow_every_change(dm):
    """A listing the kernel keeps is dropped when the directory changes
    through any of the calls that change it."""
    d = dm.mnt / "d"
    d.mkdir()
    (d / "a").write_bytes(b"a")
    (d / "sub").mkdir()
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert sorted(os.listdir(d)) == ["a", "sub"]
        steps = [
            (lambda: (d / "b").write_bytes(b"b"), ["a", "b", "sub"]),
            (lambda: os.rename(d / "b", d / "c"), ["a", "c", "sub"]),
            (lambda: os.link(d / "a", d / "l"), ["a", "c", "l", "sub"]),
            (lambda: os.symlink("a", d / "s"), ["a", "c", "l", "s", "sub"]),
            (lambda: os.unlink(d / "l"), ["a", "c", "s", "sub"]),
            (lambda: os.rmdir(d / "sub"), ["a", "c", "s"]),
            (lambda: os.mkfifo(d / "p"), ["a", "c", "p", "s"]),
            (lambda: os.rename(d / "c", dm.mnt / "c"), ["a", "p", "s"]),
            (lambda: os.rename(dm.mnt / "c", d / "z"), ["a", "p", "s", "z"]),
        ]
        for change, want in steps:
            change()
            assert sorted(os.listdir(d)) == want
            # the descriptor opened before the changes reads the new listing after a rewind
            os.lseek(fd, 0, os.SEEK_SET)
            with os.scandir(fd) as it:
                assert sorted(e.name for e in it) == want
    finally:
        os.close(fd)


def ten_small_files(m):
    """Create, write 4 KiB and close ten files in a new directory: the requests they cost
    (the kernel's FORGETs, sent whenever it likes, left out)."""
    (m.mnt / "d").mkdir()
    start = m.mark()
    for i in range(10):
        fd = os.open(m.mnt / "d" / ("f%d" % i), os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, b"y" * 4096)
        os.close(fd)
    seen = m.requests(start)
    for forget in ("FORGET", "BATCH_FORGET"):
        seen.pop(forget, None)
    return seen


def test_a_new_small_file_costs_six_requests(dm_direct):
    """Without the writeback cache. Create, write 4 KiB, close: a GETATTR of
    the directory (the kernel drops its attributes after each entry it adds,
    and needs them to walk the path), LOOKUP (the name is new), CREATE, one
    GETXATTR (the kernel asks for security.capability before the first write
    to an inode), WRITE, RELEASE. No OPEN, no FLUSH (Zero sets noflush), no
    SETATTR, no OPENDIR."""
    seen = ten_small_files(dm_direct)
    # the first GETATTR is of the root, whose attributes the mkdir dropped
    assert seen == {"GETATTR": 10, "LOOKUP": 10, "CREATE": 10, "GETXATTR": 10, "WRITE": 10,
                    "RELEASE": 10}, seen


def test_a_new_small_file_with_the_writeback_cache(dm_writeback):
    """With the writeback cache: the same, the WRITE made by
    the kernel's write-back at close, and one SETATTR (the kernel keeps the
    times of cached writes and sends them). The kernel would send a FLUSH at
    every close whatever noflush says; Zero has none, so after the first
    it stops (ten before)."""
    seen = ten_small_files(dm_writeback)
    assert seen.pop("FLUSH", 0) <= 1, seen
    assert seen.pop("GETATTR", 0) <= 10, seen
    assert seen == {"LOOKUP": 10, "CREATE": 10, "GETXATTR": 10, "WRITE": 10, "SETATTR": 10,
                    "RELEASE": 10}, seen


REPLY = re.compile(r"^\s+unique: (\d+), success, outsize: (\d+)", re.M)
READ_REQ = re.compile(r"^unique: (\d+), opcode: READ ", re.M)


def read_reply_sizes(dm, since):
    """The bytes of data in each successful READ reply after SINCE."""
    text = dm.text(since)
    reads = set(READ_REQ.findall(text))
    return [int(size) - 16 for unique, size in REPLY.findall(text) if unique in reads]


def read_cold(dm, name, size):
    """Read NAME from the mount in 1 MiB read()s with the page cache dropped;
    the READ replies' sizes."""
    path = dm.mnt / name
    with open(path, "wb") as f:
        f.write(os.urandom(size))
        os.fsync(f.fileno())
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    since = dm.mark()
    got = b""
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(1 << 20):
            got += chunk
    assert len(got) == size
    return read_reply_sizes(dm, since)


def bdi_setting(mnt, name):
    dev = os.stat(mnt).st_dev
    with open("/sys/class/bdi/%d:%d/%s" % (os.major(dev), os.minor(dev), name)) as f:
        return int(f.read())


def test_sequential_reads_come_in_spliced_requests(dm):
    """A READ of 128 KiB and its header fits the pipe libfuse splices a reply
    through (a pipe's limit is 1 MiB by default), so the cache file's pages
    go to the kernel without a copy. The kernel keeps several in flight: the
    mount's read-ahead window is 1 MiB (the kernel's default is 128 KiB).
    With such a window, READs were of 1 MiB and copied through a buffer, one
    at a time: 220-400 MB/s against 1.6-2.5 GB/s."""
    assert bdi_setting(dm.mnt, "read_ahead_kb") == 1024
    sizes = read_cold(dm, "f", 8 << 20)
    assert sum(sizes) == 8 << 20, sizes
    assert max(sizes) == 128 << 10, sizes


def test_a_max_read_option_is_kept(tmp_path):
    """-o max_read=N sets the READ size (the mount used to end at INIT: libfuse
    refused a max_read the daemon did not repeat)."""
    with debug_mount(tmp_path, "-o", "max_read=65536") as dm:
        sizes = read_cold(dm, "f", 1 << 20)
        assert sum(sizes) == 1 << 20, sizes
        assert max(sizes) == 64 << 10, sizes
