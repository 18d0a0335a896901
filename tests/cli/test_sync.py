"""`zero sync`: waits until the bucket holds everything written so far,
without waiting for uploadDelay, with a progress bar on a terminal. On the
embedded default bucket; the bucket failing is tests/integration/test_sync.py."""

import json
import os
import subprocess
import time

import pytest

from cliutil import ZERO, mounted, zero
from test_passphrase import on_terminal

MiB = 1 << 20


@pytest.fixture
def mnt(tmp_path):
    m = tmp_path / "mnt"
    m.mkdir()
    conf = tmp_path / "config.yml"
    conf.write_text("bucketDir: %s\nuploadDelay: 3600\nchunkSize: 1MiB\n" % (tmp_path / "bucket"))
    os.chmod(conf, 0o600)
    zero("mount", m, tmp_path / "cache", "--config", conf, check=0,
         env=dict(os.environ, HOME=str(tmp_path)))
    yield m
    if mounted(m):
        subprocess.run([ZERO, "umount", "--lazy", str(m)], capture_output=True)


def status(m):
    return json.loads(os.getxattr(m, "user.zero.status"))


def test_sync_uploads_now_and_waits(mnt):
    (mnt / "a").write_bytes(os.urandom(20 * MiB))
    (mnt / "b").write_bytes(os.urandom(3 * MiB + 5))
    time.sleep(1.5)
    assert status(mnt)["dirty_chunks"] == 24, "uploadDelay 3600 did not hold them back"
    t0 = time.monotonic()
    p = zero("sync", mnt, "--timeout", "120", check=0)
    assert time.monotonic() - t0 < 60
    assert "everything is in the bucket" in p.stdout
    s = status(mnt)
    assert s["dirty_chunks"] == 0 and s["uploading"] == 0 and s["uploads"] == 24, s
    assert s.get("meta_lag_rows", 0) == 0, s
    # nothing to do: at once
    assert zero("sync", mnt, "--quiet", check=0).stdout == ""
    zero("umount", mnt, check=0)


def test_sync_progress_on_a_terminal(mnt):
    (mnt / "a").write_bytes(os.urandom(30 * MiB))
    rc, shown = on_terminal(["sync", mnt], os.environ, [])
    assert rc == 0, shown
    assert "[" in shown and "#" in shown and " of " in shown and "/s" in shown, shown
    assert status(mnt)["dirty_chunks"] == 0
    zero("umount", mnt, check=0)


def test_sync_usage(tmp_path):
    assert zero("sync", "--help", check=0).stdout.startswith("usage: zero sync")
    zero("sync", "--timeout", "x", str(tmp_path), check=2)
    zero("sync", "--bogus", check=2)
    p = zero("sync", tmp_path, check=1)
    assert "not" in p.stderr and "Zero" in p.stderr, p.stderr


def test_status_watch_refreshes_until_interrupted(mnt):
    import signal
    p = subprocess.Popen([ZERO, "status", str(mnt), "--watch", "--interval", "0.2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.6)
    (mnt / "w").write_bytes(os.urandom(2 * MiB))
    time.sleep(1.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    views = [l for l in out.splitlines() if l.startswith("dirty ")]
    assert len(views) >= 5, out
    assert views[0].split()[1] == "0" and views[-1].split()[1] != "0", views  # the write shows
    p = subprocess.Popen([ZERO, "status", str(mnt), "-w", "--json", "--interval", "0.2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=20)
    lines = out.splitlines()
    assert len(lines) >= 3 and all(json.loads(l)["dirty_chunks"] >= 0 for l in lines), out
    zero("status", mnt, "--interval", "0", check=2)
    zero("umount", mnt, check=0)
