"""`zero sync` against a bucket that stops answering: it waits, says what is
left when its timeout passes (exit 1), and succeeds once the server is back
and everything, data and metadata, is in the bucket (a lost cache then
restores all of it)."""

import os
import subprocess
import time

from conftest import s3_conf
from test_journal import lose_disk, restore
from tierutil import MiB, gen


def sync(m, *args):
    return subprocess.run([m.z.binary, "sync", str(m.mnt), *args], env=m.z.env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)


def test_sync_waits_for_the_bucket(make_fs, own_s3rver):
    m = make_fs(s3_conf(own_s3rver["port"], "sync/", maxRetries=1, connectTimeout=2),
                uploadDelay=3600)
    own_s3rver["server"].stop()
    (m.mnt / "f").write_bytes(gen("random", 9 * MiB, 1))
    os.mkdir(m.mnt / "d")
    t0 = time.monotonic()
    p = sync(m, "--timeout", "4")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert time.monotonic() - t0 < 60
    assert "still not in the bucket" in p.stderr and "3 chunks" in p.stderr, p.stderr
    own_s3rver["start"]()
    p = sync(m, "--timeout", "240")
    assert p.returncode == 0, (p.stdout, p.stderr, m.log_tail())
    s = m.status()
    assert s["dirty_chunks"] == 0 and s["meta_lag_rows"] == 0, s
    # what sync said is in the bucket, is: a lost cache gets it all back
    lose_disk(m)
    restore(m)
    assert (m.mnt / "f").read_bytes() == gen("random", 9 * MiB, 1)
    assert (m.mnt / "d").is_dir()
