"""Black-box tests of the `zero` command line: help, version, and every
refusal of `zero mount` (a clear message, exit status 1, and no mount)."""

import os
import signal
import subprocess
import time

import pytest

from cliutil import ZERO, mounted, zero


@pytest.fixture
def dirs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cache = tmp_path / "cache"
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local/share"))
    yield mnt, cache, env
    for m in (mnt,):
        if mounted(m):
            subprocess.run([ZERO, "umount", "--lazy", str(m)], capture_output=True)


@pytest.mark.parametrize("cmd", [[], ["mount"], ["umount"], ["fsck"], ["bucket"]])
def test_help(cmd):
    p = zero(*cmd, "--help", check=0)
    assert "usage: zero" in p.stdout


def test_version_and_unknown_command():
    assert zero("--version", check=0).stdout.startswith("zero ")
    p = zero("frobnicate", check=2)
    assert "unknown command" in p.stderr


def test_mount_usage_errors():
    assert zero("mount", check=2).stderr.startswith("usage")
    assert zero("mount", "a", "b", "c", check=2).stderr.startswith("usage")
    assert zero("mount", "--bogus", "x", check=2).returncode == 2


def test_missing_mountpoint(dirs):
    mnt, cache, env = dirs
    p = zero("mount", str(mnt / "nope"), str(cache), check=1, env=env)
    assert "nope" in p.stderr and "No such file" in p.stderr


def test_mountpoint_not_a_directory(dirs):
    mnt, cache, env = dirs
    f = mnt.parent / "file"
    f.write_text("x")
    p = zero("mount", str(f), str(cache), check=1, env=env)
    assert "not a directory" in p.stderr
    assert not mounted(f)


def test_cache_not_a_zero_cache(dirs):
    mnt, cache, env = dirs
    cache.mkdir()
    (cache / "precious").write_text("user data")
    p = zero("mount", str(mnt), str(cache), check=1, env=env)
    assert "not a Zero cache" in p.stderr
    assert not mounted(mnt)
    assert (cache / "precious").read_text() == "user data"


def test_cache_is_a_file(dirs):
    mnt, cache, env = dirs
    cache.write_text("x")
    p = zero("mount", str(mnt), str(cache), check=1, env=env)
    assert "not a directory" in p.stderr


def test_unreadable_config(dirs):
    mnt, cache, env = dirs
    cfg = mnt.parent / "config.yml"
    p = zero("mount", str(mnt), str(cache), "--config", str(cfg), check=1, env=env)
    assert str(cfg) in p.stderr
    cfg.write_text("targetDiskUsage: [unclosed\n")
    p = zero("mount", str(mnt), str(cache), "--config", str(cfg), check=1, env=env)
    assert str(cfg) in p.stderr
    cfg.write_text("noSuchKey: 1\n")
    p = zero("mount", str(mnt), str(cache), "--config", str(cfg), check=1, env=env)
    assert "noSuchKey" in p.stderr and ":1" in p.stderr
    assert not mounted(mnt)


def test_chunk_size_is_fixed_when_the_filesystem_is_created(dirs):
    mnt, cache, env = dirs
    cfg = mnt.parent / "config.yml"
    cfg.write_text("chunkSize: 1MiB\n")
    zero("mount", str(mnt), str(cache), "--config", str(cfg), check=0, env=env)
    try:
        (mnt / "f").write_bytes(b"y" * 3_000_000)
        status = zero("status", str(mnt), "--json", check=0, env=env).stdout
        assert '"chunk_size":1048576' in status.replace(" ", ""), status
    finally:
        zero("umount", str(mnt), check=0)
    # another size for the same filesystem: refused, naming both
    cfg.write_text("chunkSize: 4MiB\n")
    p = zero("mount", str(mnt), str(cache), "--config", str(cfg), check=1, env=env)
    assert "chunkSize is 4MiB" in p.stderr and "created with 1MiB chunks" in p.stderr, p.stderr
    assert not mounted(mnt)
    # without the key, the filesystem keeps its own
    cfg.write_text("uploadDelay: 1\n")
    zero("mount", str(mnt), str(cache), "--config", str(cfg), check=0, env=env)
    try:
        assert (mnt / "f").read_bytes() == b"y" * 3_000_000
    finally:
        zero("umount", str(mnt), check=0)
    cfg.write_text("chunkSize: 3MiB\n")
    p = zero("mount", str(mnt), str(cache), "--config", str(cfg), check=1, env=env)
    assert "config.yml:1: key 'chunkSize': 3MiB is not a power of two" in p.stderr, p.stderr


def test_default_chunk_size_is_16_mib(dirs):
    mnt, cache, env = dirs
    zero("mount", str(mnt), str(cache), check=0, env=env)
    try:
        status = zero("status", str(mnt), "--json", check=0, env=env).stdout
        assert '"chunk_size":16777216' in status.replace(" ", ""), status
    finally:
        zero("umount", str(mnt), check=0)


def test_second_mount_of_one_cache_is_refused(dirs):
    mnt, cache, env = dirs
    zero("mount", str(mnt), str(cache), check=0, env=env)
    try:
        other = mnt.parent / "mnt2"
        other.mkdir()
        p = zero("mount", str(other), str(cache), check=1, env=env)
        assert "in use" in p.stderr
        assert not mounted(other)
        p = zero("fsck", str(cache), check=1, env=env)
        assert "in use" in p.stderr
    finally:
        zero("umount", str(mnt), check=0)
    assert not mounted(mnt)


def mounts_at(path):
    """How many mounts /proc/mounts lists at PATH."""
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        return sum(1 for line in f if line.split()[1].replace("\\040", " ") == path)


def test_second_mount_on_a_live_mountpoint_is_refused(dirs):
    mnt, cache, env = dirs
    zero("mount", str(mnt), str(cache), check=0, env=env)
    try:
        (mnt / "a-file").write_text("from A")
        other = mnt.parent / "cache2"
        p = zero("mount", str(mnt), str(other), check=1, env=env)
        assert "%s is already a Zero mount (cache %s)" % (mnt, cache) in p.stderr, p.stderr
        assert "unmount it first" in p.stderr, p.stderr
        assert mounts_at(mnt) == 1
        assert (mnt / "a-file").read_text() == "from A"
        # the same cache again, or through another spelling of the mountpoint
        p = zero("mount", str(mnt) + "/", str(cache), check=1, env=env)
        assert "already a Zero mount" in p.stderr, p.stderr
        assert mounts_at(mnt) == 1
        assert not os.path.exists(other / "meta.db"), "the refused mount opened its cache"
        # a dead Zero mount there (daemon killed) is detached and replaced
        pid = int((cache / "lock").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 10
        while os.path.exists("/proc/%d" % pid):
            assert time.time() < deadline, "the killed daemon did not go"
            time.sleep(0.05)
        p = zero("mount", str(mnt), str(other), check=0, env=env)
        assert "dead mount" in p.stderr, p.stderr
        assert mounts_at(mnt) == 1
        assert not (mnt / "a-file").exists(), "B's mount shows A's files"
    finally:
        zero("umount", str(mnt), check=0)
    assert mounts_at(mnt) == 0


def test_default_cache_location(dirs):
    mnt, _, env = dirs
    zero("mount", str(mnt), check=0, env=env)
    try:
        (mnt / "f").write_text("hello")
    finally:
        zero("umount", str(mnt), check=0)
    default = os.path.join(env["XDG_DATA_HOME"], "zero")
    assert os.path.exists(os.path.join(default, "zero.cache"))
    assert os.path.exists(os.path.join(default, "meta.db"))


def test_umount_of_something_else(dirs):
    mnt, _, _ = dirs
    p = zero("umount", str(mnt), check=1)
    assert "not a Zero mount" in p.stderr


def test_umount_busy(dirs):
    mnt, cache, env = dirs
    zero("mount", str(mnt), str(cache), check=0, env=env)
    f = open(mnt / "held", "w")
    try:
        p = zero("umount", str(mnt), check=1)
        assert "busy" in p.stderr
        assert mounted(mnt)
    finally:
        f.close()
        zero("umount", str(mnt), check=0)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_unmounts_cleanly(dirs, sig):
    mnt, cache, env = dirs
    # as from a terminal: a suite started in the background (as CI may start it) runs with
    # SIGINT ignored, which its children inherit, and a program keeps an ignored SIGINT
    # ignored (libfuse installs its handlers only over the default disposition)
    proc = subprocess.Popen([ZERO, "mount", "-f", str(mnt), str(cache)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 10
        while not mounted(mnt):
            assert time.time() < deadline and proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        (mnt / "f").write_bytes(b"x" * 100000)
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not mounted(mnt)
    assert "unmounted" in proc.stderr.read()
    zero("mount", str(mnt), str(cache), check=0, env=env)
    try:
        assert (mnt / "f").read_bytes() == b"x" * 100000
    finally:
        zero("umount", str(mnt), check=0)
    assert zero("fsck", str(cache), check=0).stdout.strip().endswith("consistent")
