"""mount(8), umount(8) and /etc/fstab with Zero: `mount -t fuse.zero CACHE
MOUNTPOINT -o config=FILE,...`, an fstab line of type fuse.zero (read from a
file of the test's own with `mount -T`), and `umount MOUNTPOINT`, which waits
for the daemon as `zero umount` does. mount(8) finds its helpers in /sbin:
the test links /sbin/mount.fuse.zero and /sbin/umount.fuse.zero to the zero
under test for its duration (as the package installs them) and puts back
whatever was there.

umount(8) finds a FUSE mount's type by statfs ("fuse"), so it runs
/sbin/umount.fuse.zero only when /run/mount/utab names a helper for the
mountpoint: every Zero mount notes helper=fuse.zero there (libmount), so a
plain `umount MOUNTPOINT` waits for the daemon, whichever way it was
mounted, and the note goes with the mount."""

import os
import subprocess

import pytest

from cliutil import ZERO, mounted, zero

HELPERS = ("/sbin/mount.fuse.zero", "/sbin/umount.fuse.zero")


@pytest.fixture
def helpers():
    saved = {}
    for h in HELPERS:
        saved[h] = os.readlink(h) if os.path.islink(h) else None
        assert saved[h] is not None or not os.path.exists(h), "%s is not a link" % h
        if saved[h] is not None:
            os.unlink(h)
        os.symlink(os.path.abspath(ZERO), h)
    yield
    for h in HELPERS:
        os.unlink(h)
        if saved[h] is not None:
            os.symlink(saved[h], h)


@pytest.fixture
def fs(tmp_path, helpers):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    conf = tmp_path / "config.yml"
    conf.write_text("bucketDir: %s\n" % (tmp_path / "bucket"))
    os.chmod(conf, 0o600)
    yield {"mnt": mnt, "cache": tmp_path / "cache", "conf": conf, "tmp": tmp_path}
    if mounted(mnt):
        subprocess.run([ZERO, "umount", "--lazy", str(mnt)], capture_output=True)


def run(*args, check=0):
    p = subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=120)
    assert p.returncode == check, "%s: exit %d\n%s%s" % (args, p.returncode, p.stdout, p.stderr)
    return p


def daemon_running(cache):
    """The daemon of CACHE still runs (a zombie no longer does: its cmdline is empty)."""
    try:
        pid = int((cache / "lock").read_text().split()[0])
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return os.fsencode(str(cache)) in f.read()
    except (OSError, ValueError, IndexError):
        return False


def wait_daemon_gone(cache, timeout=30):
    import time
    deadline = time.monotonic() + timeout
    while daemon_running(cache):
        assert time.monotonic() < deadline, "the daemon did not exit after umount"
        time.sleep(0.05)


def test_mount_t_and_umount(fs):
    opts = ("config=%s,helper=fuse.zero,_netdev,nofail,x-systemd.automount,"
            "x-systemd.requires=a.service" % fs["conf"])
    run("mount", "-t", "fuse.zero", fs["cache"], fs["mnt"], "-o", opts)
    assert mounted(fs["mnt"])
    line = [l for l in open("/proc/self/mounts") if " %s " % fs["mnt"] in l][0]
    assert line.split()[2] == "fuse.zero" and line.split()[0] == str(fs["cache"]), line
    (fs["mnt"] / "f").write_text("through mount(8)\n")
    run("umount", fs["mnt"])
    assert not mounted(fs["mnt"])
    assert not daemon_running(fs["cache"]), "umount returned before the daemon was gone"
    assert "unmounted %s cleanly" % fs["mnt"] in (fs["cache"] / "zero.log").read_text()
    # FUSE options pass through: a read-only mount; umount waits without helper= too
    run("mount", "-t", "fuse.zero", fs["cache"], fs["mnt"], "-o", "ro,config=%s" % fs["conf"])
    assert (fs["mnt"] / "f").read_text() == "through mount(8)\n"
    with pytest.raises(OSError):
        (fs["mnt"] / "g").write_text("x")
    run("umount", fs["mnt"])
    assert not mounted(fs["mnt"])
    assert not daemon_running(fs["cache"]), "umount returned before the daemon was gone"
    assert not utab_names(fs["mnt"]), "the mount's note stayed in utab"


def utab_names(mnt):
    try:
        return " TARGET=%s " % mnt in open("/run/mount/utab").read().replace("\n", " \n ")
    except FileNotFoundError:
        return False


def test_plain_umount_of_a_zero_mount_waits(fs):
    """Mounted by zero mount itself: umount(8) still runs the helper and waits."""
    zero("mount", fs["mnt"], fs["cache"], "--config", fs["conf"], check=0)
    assert utab_names(fs["mnt"])
    (fs["mnt"] / "f").write_bytes(b"x" * 100000)
    run("umount", fs["mnt"])
    assert not mounted(fs["mnt"])
    assert not daemon_running(fs["cache"]), "umount returned before the daemon was gone"
    assert not utab_names(fs["mnt"])
    # zero umount takes the note away too
    zero("mount", fs["mnt"], fs["cache"], "--config", fs["conf"], check=0)
    zero("umount", fs["mnt"], check=0)
    assert not utab_names(fs["mnt"])


def test_fstab_line(fs):
    fstab = fs["tmp"] / "fstab"
    fstab.write_text("# a comment\n%s %s fuse.zero config=%s,helper=fuse.zero,_netdev,noauto,"
                     "nofail,x-systemd.mount-timeout=30 0 0\n"
                     % (fs["cache"], fs["mnt"], fs["conf"]))
    run("mount", "-T", fstab, fs["mnt"])
    assert mounted(fs["mnt"])
    (fs["mnt"] / "f").write_text("fstab\n")
    run("umount", fs["mnt"])
    assert not mounted(fs["mnt"]) and not daemon_running(fs["cache"])
    run("mount", "-T", fstab, fs["cache"])  # by its source, as mount(8) allows
    assert (fs["mnt"] / "f").read_text() == "fstab\n"
    run("umount", "-l", fs["mnt"])
    assert not mounted(fs["mnt"])
    wait_daemon_gone(fs["cache"])


def test_helper_refusals(fs):
    # what zero mount refuses, mount(8) reports with zero's message
    p = run("mount", "-t", "fuse.zero", fs["cache"], fs["tmp"] / "nope", "-o",
            "config=%s" % fs["conf"], check=1)
    assert "nope" in p.stderr, p.stderr
    p = run("mount", "-t", "fuse.zero", fs["cache"], fs["mnt"], "-o", "config=/nonexistent",
            check=1)
    assert "/nonexistent" in p.stderr, p.stderr
    assert not mounted(fs["mnt"])
    # -f (fake) does nothing; usage errors are 2
    run("/sbin/mount.fuse.zero", fs["cache"], fs["mnt"], "-f", "-o", "config=%s" % fs["conf"])
    assert not mounted(fs["mnt"])
    run("/sbin/mount.fuse.zero", fs["cache"], check=2)
    run("/sbin/umount.fuse.zero", check=2)
    assert "fstab" in run("/sbin/mount.fuse.zero", "--help").stdout
