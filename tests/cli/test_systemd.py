"""Zero under systemd: the unit file (systemd/zero@.service) is one
systemd-analyze accepts, and its notify protocol (Type=notify) is tested
against a socket of the test's own, as systemd would listen: READY=1 only
once the mount answers, STATUS= with the cache and the upload queue while
it runs, STOPPING=1 when it goes down. (This machine runs no systemd as
PID 1, so the unit is not started here.)"""

import os
import shutil
import socket
import subprocess
import time

import pytest

from cliutil import REPO, ZERO, mounted, zero

UNIT = os.path.join(REPO, "systemd", "zero@.service.in")


def test_unit_file_verifies(tmp_path):
    text = open(UNIT).read()
    assert "Type=notify" in text and "ExecStop=@bindir@/zero umount %f" in text
    # the instance is the mountpoint; verify a copy that runs the zero under test
    unit = tmp_path / "zero@mnt-zero.service"
    bindir = os.path.dirname(os.path.abspath(ZERO))
    unit.write_text("\n".join(l for l in text.replace("@bindir@", bindir).splitlines()
                              if not l.startswith("Documentation=")) + "\n")
    p = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def receive(sock, want, timeout):
    """Datagrams from SOCK until one contains WANT; all of them."""
    got, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            break
        got.append(msg)
        if want in msg:
            return got
    raise AssertionError("no %r from the daemon in %.0f s; got %r" % (want, timeout, got))


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    yield sock, path
    sock.close()


def test_notify_protocol(tmp_path, notify_socket):
    sock, path = notify_socket
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    conf = tmp_path / "config.yml"
    conf.write_text("bucketDir: %s\nuploadDelay: 3600\n" % (tmp_path / "bucket"))
    os.chmod(conf, 0o600)
    env = dict(os.environ, HOME=str(tmp_path), NOTIFY_SOCKET=path)
    p = subprocess.Popen([ZERO, "mount", "--foreground", str(mnt), str(tmp_path / "cache"),
                          "--config", str(conf)], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        got = receive(sock, "READY=1", 30)
        assert mounted(mnt), "READY before the mount answers"
        os.listdir(mnt)
        (mnt / "f").write_bytes(b"x" * 100000)
        got = receive(sock, "to upload", 15)
        status = [m for m in got if m.startswith("STATUS=cache")][-1]
        assert " of " in status and "chunks to upload" in status, status
        got = receive(sock, "1 chunks to upload", 15)  # the write shows in the next one
        zero("umount", mnt, check=0)
        got = receive(sock, "STOPPING=1", 30)
        assert p.wait(60) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if mounted(mnt):
            subprocess.run([ZERO, "umount", "--lazy", str(mnt)], capture_output=True)


def test_no_notify_socket_no_messages(tmp_path):
    """Without NOTIFY_SOCKET (not under systemd) the mount sends nothing and works as always."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop("NOTIFY_SOCKET", None)
    zero("mount", mnt, tmp_path / "cache", check=0, env=env)
    assert mounted(mnt)
    zero("umount", mnt, check=0)
