"""Fixtures of the black-box system tests.

Two targets (see README.md):
  * ZERO_TEST_DIR=/dir  -> the tests run in a plain directory (ext4, tmpfs);
                           tests that need the daemon are skipped.
  * otherwise           -> Zero is mounted once per session from $ZERO_BIN
                           (default <repo>/build/zero) on fresh temporary
                           MOUNT and CACHE directories; tests can remount it,
                           kill it, run fsck.

After every test on Zero, the new part of CACHE/zero.log is scanned for
sanitizer reports and error lines, and the mount must still be alive; either
failure fails the test (as an error at teardown). The session fixture does the
same scan at the end, so a report during teardown fails the run too.
"""

import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sysutil import fstype_of, is_mounted, live_threads, log_problems  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

NEEDS_DAEMON = ("needs the Zero daemon: ZERO_TEST_DIR is set, the suite runs "
                "against a plain directory")


class PlainTarget:
    """A plain directory; nothing to mount."""

    is_zero = False
    writeback = False  # writes reach the filesystem as they are made

    def __init__(self, base):
        self.root = tempfile.mkdtemp(prefix="systest-", dir=base)
        os.chmod(self.root, 0o755)

    def finish(self):
        shutil.rmtree(self.root, ignore_errors=True)


class ZeroTarget:
    """A Zero filesystem mounted on a fresh MOUNT with a fresh CACHE."""

    is_zero = True

    def __init__(self, binary):
        self.bin = binary
        self.base = tempfile.mkdtemp(prefix="zero-systest-")
        os.chmod(self.base, 0o755)
        self.mnt = os.path.join(self.base, "mnt")
        self.cache = os.path.join(self.base, "cache")
        self.home = os.path.join(self.base, "home")
        for d in (self.mnt, self.cache, self.home):
            os.mkdir(d)
        self.root = self.mnt
        self.log = os.path.join(self.cache, "zero.log")
        # stdout/stderr of `zero mount` and of the daemon it leaves behind
        self.output = os.path.join(self.base, "daemon-output.txt")
        # Keep the daemon away from the user's configuration and buckets.
        self.env = dict(os.environ, HOME=self.home,
                        XDG_CONFIG_HOME=os.path.join(self.home, ".config"),
                        XDG_DATA_HOME=os.path.join(self.home, ".local/share"),
                        XDG_CACHE_HOME=os.path.join(self.home, ".cache"),
                        # glibc's fatal messages to stderr, not /dev/tty
                        LIBC_FATAL_STDERR_="1")
        self.extra = os.environ.get("ZERO_MOUNT_ARGS", "").split()
        # the kernel's writeback cache (zero mount's default)
        self.writeback = "--no-writeback-cache" not in self.extra
        self.log_pos = {}
        self.problems = []

    # -- commands ---------------------------------------------------------
    def run(self, *args, timeout=120, check=True, output=None):
        """Run `zero ARGS`. Output goes to files, not pipes (a daemon that
        keeps the inherited stdout/stderr open would make a pipe reader wait
        forever): to temporary files, or appended to `output` (used for
        the session's mounts, whose detached daemon may keep writing there).
        Sanitizer reports and error lines in it count as problems."""
        if output is None:
            out = tempfile.TemporaryFile()
            start = 0
        else:
            out = open(output, "ab+")
            start = out.seek(0, os.SEEK_END)
        try:
            p = subprocess.run([self.bin, *args], env=self.env,
                               stdin=subprocess.DEVNULL, stdout=out,
                               stderr=subprocess.STDOUT, timeout=timeout)
            out.seek(start)
            p.stdout = out.read().decode(errors="replace")
            p.stderr = ""
        finally:
            out.close()
        if output is None:
            self.problems += log_problems(p.stdout, error_lines=False)
        if check and p.returncode != 0:
            raise AssertionError(
                f"zero {' '.join(args)} exited {p.returncode}\n"
                f"output: {p.stdout}\nlog tail:\n{self.log_tail()}")
        return p

    def mount(self):
        self.run("mount", self.mnt, self.cache, *self.extra,
                 output=self.output)
        # `zero mount` returns once the mount is ready; allow a short grace
        # for a daemon that detaches slightly early.
        deadline = time.time() + 10
        while not os.path.ismount(self.mnt):
            if time.time() > deadline:
                raise AssertionError(
                    f"zero mount returned but {self.mnt} is not mounted\n"
                    f"log tail:\n{self.log_tail()}")
            time.sleep(0.05)

    def umount(self):
        self.run("umount", self.mnt)
        assert not is_mounted(self.mnt), "still mounted after zero umount"
        pids = self.daemon_pids()
        assert not pids, f"daemon {pids} still running after zero umount"
        self.scan_log()

    def remount(self):
        self.umount()
        self.mount()

    def fsck(self):
        return self.run("fsck", self.cache, check=False, timeout=300)

    def daemon_pids(self):
        """Pids of processes running our binary on our cache directory."""
        pids = []
        cache = os.fsencode(self.cache)
        for ent in os.listdir("/proc"):
            if not ent.isdigit() or int(ent) == os.getpid():
                continue
            try:
                with open(f"/proc/{ent}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            # the cache path is a fresh mkdtemp name: any argument that
            # contains it (CACHE, --cache=CACHE, CACHE/...) identifies ours
            if any(cache in a for a in argv):
                pids.append(int(ent))
        return pids

    def kill9(self):
        pids = self.daemon_pids()
        assert pids, "no daemon process found to kill"
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.time() + 60  # a truncate's discards on this disk: > 15 s seen
        while any(map(live_threads, pids)) and time.time() < deadline:
            time.sleep(0.05)
        assert not any(map(live_threads, pids)), (
            "daemon survived SIGKILL: threads %s" % {p: live_threads(p) for p in pids})
        return pids

    # -- logs -------------------------------------------------------------
    def log_tail(self, n=30):
        text = ""
        for path in (self.log, self.output):
            try:
                with open(path, errors="replace") as f:
                    lines = f.readlines()[-n:]
            except OSError:
                continue
            if lines:
                text += f"--- {os.path.basename(path)}:\n" + "".join(lines)
        return text or "(no log)"

    def scan_log(self):
        """Scan what CACHE/zero.log and the daemon's output gained since
        the last scan; returns and remembers the bad lines."""
        bad = []
        for path in (self.log, self.output):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            ino, pos = self.log_pos.get(path, (None, 0))
            if ino != st.st_ino or st.st_size < pos:
                pos = 0
            with open(path, "rb") as f:
                f.seek(pos)
                text = f.read().decode(errors="replace")
                self.log_pos[path] = (st.st_ino, f.tell())
            bad += log_problems(text, error_lines=(path == self.log))
        self.problems += bad
        return bad

    # -- recovery and cleanup ---------------------------------------------
    def alive(self):
        """Mounted and answering. statfs always reaches the daemon, where
        a stat of the root could be answered from the kernel's cache."""
        if not is_mounted(self.mnt):
            return False
        try:
            os.statvfs(self.mnt)
            return True
        except OSError:
            return False

    def ensure_mounted(self):
        """After a failed test: bring the session mount back."""
        if self.alive():
            return
        self.force_cleanup()
        self.mount()

    def force_cleanup(self):
        if is_mounted(self.mnt):
            try:
                self.run("umount", self.mnt, check=False, timeout=60)
            except subprocess.TimeoutExpired:
                pass
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", self.mnt],
                           capture_output=True)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.daemon_pids()
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.time() + 5
            while self.daemon_pids() and time.time() < deadline:
                time.sleep(0.05)

    def finish(self):
        try:
            self.force_cleanup()
        finally:
            self.scan_log()
            if is_mounted(self.mnt):
                sys.stderr.write(f"\n{self.mnt} is still mounted\n")
            elif self.problems:
                sys.stderr.write(f"\ndaemon log kept: {self.log}\n")
            else:
                shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def target():
    plain = os.environ.get("ZERO_TEST_DIR")
    if plain:
        t = PlainTarget(plain)
    else:
        binary = os.environ.get("ZERO_BIN",
                                os.path.join(REPO, "build", "zero"))
        if not os.access(binary, os.X_OK):
            pytest.fail(f"no Zero binary at {binary} (set ZERO_BIN, or "
                        f"ZERO_TEST_DIR to test a plain directory)")
        t = ZeroTarget(binary)
        try:
            t.mount()
        except BaseException:
            t.finish()
            raise
    yield t
    seen = len(getattr(t, "problems", ()))
    t.finish()
    if t.is_zero and len(t.problems) > seen:
        pytest.fail("daemon log (kept in %s) reports at unmount:\n%s"
                    % (t.base, "\n".join(t.problems[seen:][:50])),
                    pytrace=False)


@pytest.fixture
def zero(target):
    """The Zero target; skips the test on a plain directory."""
    if not target.is_zero:
        pytest.skip(NEEDS_DAEMON)
    return target


_counter = itertools.count()


@pytest.fixture
def workdir(target, request):
    """A fresh directory on the target for one test (mode 0755)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:100]
    path = os.path.join(target.root, f"{next(_counter):03d}-{name}")
    os.mkdir(path)
    os.chmod(path, 0o755)
    yield path


@pytest.fixture(scope="session")
def ext4_root():
    """A directory on ext4, the reference for the tests that compare an
    outcome with ext4's: under the temporary directory when that is ext4,
    else on a small ext4 image mounted through a loop device."""
    tmp = tempfile.gettempdir()
    if fstype_of(tmp) == "ext4":
        root = tempfile.mkdtemp(prefix="ext4-ref-", dir=tmp)
        os.chmod(root, 0o755)
        yield root
        shutil.rmtree(root, ignore_errors=True)
        return
    base = tempfile.mkdtemp(prefix="ext4-ref-")
    image, mnt = os.path.join(base, "ext4.img"), os.path.join(base, "mnt")
    os.mkdir(mnt)
    with open(image, "wb") as f:
        f.truncate(256 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "4096", image], check=True)
    subprocess.run(["mount", "-o", "loop", image, mnt], check=True)
    try:
        os.chmod(mnt, 0o755)
        yield mnt
    finally:
        subprocess.run(["umount", mnt], check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def ext4dir(ext4_root, request):
    """A fresh directory on ext4 for one test (mode 0755)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:100]
    path = os.path.join(ext4_root, f"{next(_counter):03d}-{name}")
    os.mkdir(path)
    os.chmod(path, 0o755)
    yield path
    subprocess.run(["chattr", "-R", "-i", "-a", path], capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _daemon_watch(request):
    """On Zero: fail the test if the daemon logged errors/sanitizer reports
    or died during it; bring the mount back for the next tests."""
    if "target" not in request.fixturenames:
        yield
        return
    t = request.getfixturevalue("target")
    if not t.is_zero:
        yield
        return
    t.scan_log()
    seen = len(t.problems)
    yield
    alive = t.alive()
    t.scan_log()
    bad = t.problems[seen:]
    if not alive:
        t.ensure_mounted()
        pytest.fail(f"the Zero mount died during the test; log tail:\n"
                    f"{t.log_tail()}", pytrace=False)
    if bad:
        pytest.fail("daemon log reports:\n" + "\n".join(bad[:50]),
                    pytrace=False)


def pytest_report_header(config):
    plain = os.environ.get("ZERO_TEST_DIR")
    if plain:
        return f"target: plain directory {plain}"
    return "target: Zero from " + os.environ.get(
        "ZERO_BIN", os.path.join(REPO, "build", "zero"))
