"""The seed's two commands, as its README describes them: `zero-fuse
MOUNTPOINT CACHE` mounts, and `zero-worker CACHE` "moves files between disk
and cloud": attached to a mounted cache it shows the worker's progress live;
with the cache not mounted it uploads everything dirty, evicts down to
targetDiskUsage, collects garbage and exits with a summary. Both are links
to zero (as installed); the test makes them in its own directory."""

import json
import os
import signal
import subprocess
import time

import pytest

from cliutil import ZERO, mounted, zero

MiB = 1 << 20


@pytest.fixture
def seed(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("zero-fuse", "zero-worker"):
        os.symlink(os.path.abspath(ZERO), bindir / name)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    conf = tmp_path / "config.yml"
    conf.write_text("bucketDir: %s\nuploadDelay: 3600\nchunkSize: 1MiB\n"
                    "targetDiskUsage: 64MiB\n" % (tmp_path / "bucket"))
    os.chmod(conf, 0o600)
    # the worker's: a smaller cache, so that it has something to evict
    small = tmp_path / "small.yml"
    small.write_text(conf.read_text().replace("64MiB", "12MiB"))
    os.chmod(small, 0o600)
    env = dict(os.environ, HOME=str(tmp_path))
    yield {"bin": bindir, "mnt": mnt, "cache": tmp_path / "cache", "conf": conf, "small": small,
           "env": env}
    if mounted(mnt):
        subprocess.run([ZERO, "umount", "--lazy", str(mnt)], capture_output=True)


def run(seed, name, *args, check=0, timeout=120):
    p = subprocess.run([str(seed["bin"] / name), *map(str, args)], capture_output=True,
                       text=True, env=seed["env"], timeout=timeout)
    assert p.returncode == check, (name, args, p.returncode, p.stdout, p.stderr)
    return p


def status(mnt):
    return json.loads(os.getxattr(mnt, "user.zero.status"))


def test_zero_fuse_and_the_worker_offline(seed):
    run(seed, "zero-fuse", seed["mnt"], seed["cache"], "--config", seed["conf"])
    assert mounted(seed["mnt"])
    data = os.urandom(30 * MiB)
    (seed["mnt"] / "f").write_bytes(data)
    time.sleep(1.2)
    assert status(seed["mnt"])["dirty_chunks"] == 30  # uploadDelay holds them
    zero("umount", seed["mnt"], check=0)
    p = run(seed, "zero-worker", seed["cache"], "--config", seed["small"])
    assert "30 chunks uploaded" in p.stdout and "0 chunks dirty" in p.stdout, p.stdout
    summary = p.stdout.strip().splitlines()[-1]
    evicted = int(summary.split(" evicted")[0].split()[-1])
    assert evicted >= 18, summary  # down to the 12 MiB target
    assert not mounted(seed["mnt"])
    # what the worker did holds: everything in the bucket, the cache under its target
    run(seed, "zero-fuse", seed["mnt"], seed["cache"], "--config", seed["conf"])
    s = status(seed["mnt"])
    assert s["dirty_chunks"] == 0 and s["remote_chunks"] >= 18, s
    assert (seed["mnt"] / "f").read_bytes() == data
    zero("umount", seed["mnt"], check=0)


def test_worker_attached_shows_progress_until_interrupted(seed):
    run(seed, "zero-fuse", seed["mnt"], seed["cache"], "--config", seed["conf"])
    p = subprocess.Popen([str(seed["bin"] / "zero-worker"), str(seed["cache"])],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=seed["env"])
    time.sleep(1.5)
    (seed["mnt"] / "g").write_bytes(os.urandom(4 * MiB))
    zero("sync", seed["mnt"], check=0)
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, (out, err)
    assert "attached to the mount at %s" % seed["mnt"] in out, out
    lines = [l for l in out.splitlines() if l[:2].isdigit()]
    assert len(lines) >= 3, out
    assert any("+4" in l.split()[2] for l in lines), out  # the 4 uploads, as they happened
    assert out.strip().endswith("detached")
    zero("umount", seed["mnt"], check=0)


def test_seed_commands_refuse_and_help(seed, tmp_path):
    assert "zero-worker CACHE" in run(seed, "zero-worker", "--help").stdout
    assert "zero-fuse MOUNTPOINT CACHE" in run(seed, "zero-fuse", "--help").stdout
    run(seed, "zero-worker", check=2)
    run(seed, "zero-fuse", seed["mnt"], check=2)
    p = run(seed, "zero-worker", tmp_path, check=1)
    assert "not a Zero cache" in p.stderr
    p = run(seed, "zero-worker", tmp_path / "nope", check=1)
    assert "No such file" in p.stderr
