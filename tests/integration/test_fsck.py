"""`zero fsck --objects / --verify` against the bucket, and the sweep for
leaked objects (by fsck --repair and by the collector), on the file backend
and on s3rver (through the signature-checking proxy).

Objects are deleted, damaged and planted by hand with `zero bucket`, as a
user or a failing disk would; fsck must name the file whose data is lost
(its path, chunk and bytes), and fail; an orphan (a chunk key nobody
references) is reported, kept while younger than orphanSafetyAge, and
deleted only with --repair or by the collector's periodic sweep; nothing
else in the bucket is ever touched.
"""

import os
import pty
import subprocess
import time

from tierutil import CHUNK, drop_caches, gen, wait_for

ORPHAN = "zero/chunks/ab/ab" + "0" * 62
# keys that are not chunk objects (the lease and the journal have keys of their own)
FOREIGN = ("zero/chunks/README", "zero/meta/0000000001", "zero/other")


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


def fsck(m, *args):
    return m.zero("fsck", m.cache, "--config", m.z.config, *args)


def keys(m):
    """Every key in the bucket under zero/ (chunks and the rest)."""
    p = m.z.run("ls", "zero/")
    out = set()
    for line in p.stdout.decode().splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[3].startswith("zero/"):
            out.add(fields[3])
    return out


def new_chunks(m, before, what):
    m.wait_uploaded(60, what)
    return set(m.bucket_chunks()) - before


def test_fsck_objects_and_verify_pass_on_a_clean_filesystem(backend, make_fs):
    m = make_fs(backend)
    os.makedirs(m.mnt / "d")
    write_file(m.mnt / "d" / "big", gen("random", 2 * CHUNK + 5, 1))
    write_file(m.mnt / "small", gen("text", 1000, 2))
    write_file(m.mnt / "same", gen("text", 1000, 2))  # dedup: one object, two files
    m.wait_uploaded(60)
    n = len(m.bucket_chunks())
    assert n == 4, m.bucket_chunks()
    m.umount()
    for opt in ("--objects", "--verify"):
        p = fsck(m, opt)
        assert p.returncode == 0, p.stdout
        assert "all 4 referenced objects (5 chunks) present" in p.stdout, p.stdout
        assert "orphans: none" in p.stdout, p.stdout
    assert "verified 4 objects" in p.stdout, p.stdout
    assert "intact" in p.stdout, p.stdout
    # on a terminal, a progress line redrawn with \r: bar, counts, bytes, rate, ETA
    master, slave = pty.openpty()
    p = subprocess.run([m.z.binary, "fsck", str(m.cache), "--config", str(m.z.config),
                        "--verify"], env=m.z.env, stdout=subprocess.PIPE, stderr=slave,
                       timeout=120)
    os.close(slave)
    tty = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        tty += chunk
    os.close(master)
    assert p.returncode == 0, p.stdout
    text = tty.decode(errors="replace")
    assert "\r" in text and "verify [" in text and "4/4 objects" in text, repr(text)
    assert "/s" in text and "ETA" in text, repr(text)
    assert "verify [" not in p.stdout.decode(), "progress on a pipe"
    # without --objects the bucket is not looked at
    p = fsck(m)
    assert p.returncode == 0 and "listing" not in p.stdout, p.stdout


def test_fsck_names_the_files_of_a_deleted_and_a_corrupted_object(backend, make_fs):
    m = make_fs(backend)
    os.makedirs(m.mnt / "dir" / "sub")
    write_file(m.mnt / "dir" / "sub" / "a", gen("random", CHUNK + 1000, 11))
    (ka0, ka1) = new_chunks(m, set(), "a to upload")
    os.link(m.mnt / "dir" / "sub" / "a", m.mnt / "a-link")
    write_file(m.mnt / "c", gen("random", 5000, 12))
    (kc,) = new_chunks(m, {ka0, ka1}, "c to upload")
    write_file(m.mnt / "fine", gen("random", 7000, 13))
    m.wait_uploaded(60)
    m.umount()

    m.z.run("rm", ka0)
    original = m.z.run("get", kc).stdout
    obj = bytearray(original)
    obj[len(obj) // 2] ^= 0x01  # the same size: only --verify can tell
    m.z.run("put", kc, "-", input=bytes(obj))

    p = fsck(m, "--objects")
    assert p.returncode == 1, p.stdout
    lines = [l for l in p.stdout.splitlines() if ka0 in l]
    assert len(lines) == 1, p.stdout
    assert "missing object" in lines[0] and "/dir/sub/a (+1 more link) chunk " in lines[0], \
        lines[0]
    assert kc not in p.stdout and "/fine" not in p.stdout, p.stdout
    assert "1 of 4 referenced objects missing or damaged" in p.stdout, p.stdout

    p = fsck(m, "--verify")
    assert p.returncode == 1, p.stdout
    (line,) = [l for l in p.stdout.splitlines() if kc in l]
    assert ("fails its authentication" if backend == "s3" else "fails its checksum") in line, line
    assert ": /c chunk 0 (bytes 0-4999)" in line, line
    assert any(ka0 in l and "/dir/sub/a" in l for l in p.stdout.splitlines()), p.stdout
    assert "verified 3 objects" in p.stdout, p.stdout
    assert "2 of 4 referenced objects missing or damaged" in p.stdout, p.stdout
    assert "/fine" not in p.stdout, p.stdout
    # --repair cannot bring data back: still a failure, and nothing was deleted
    before = keys(m)
    p = fsck(m, "--verify", "--repair")
    assert p.returncode == 1, p.stdout
    assert keys(m) == before

    # the object put right again: clean
    m.z.run("put", kc, "-", input=original)
    p = fsck(m, "--verify")
    assert kc not in p.stdout and "1 of 4 referenced" in p.stdout, p.stdout


def test_fsck_reports_orphans_and_deletes_them_only_with_repair_past_the_safety_age(
        backend, make_fs):
    m = make_fs(backend, orphanSafetyAge=3600)
    write_file(m.mnt / "f", gen("random", CHUNK + 10, 21))
    m.wait_uploaded(60)
    referenced = set(m.bucket_chunks())
    m.umount()
    m.z.run("put", ORPHAN, "-", input=b"a leaked upload")
    for k in FOREIGN:
        m.z.run("put", k, "-", input=b"not a chunk")

    # young: reported, kept, and no failure (it may be an upload on its way)
    p = fsck(m, "--objects", "--repair")
    assert p.returncode == 0, p.stdout
    (line,) = [l for l in p.stdout.splitlines() if ORPHAN in l]
    assert "younger than the safety age: kept" in line, line
    assert "1 other keys under zero/chunks/" in p.stdout, p.stdout
    assert ORPHAN in keys(m)

    m.z.write_config(dict(m.z.conf, orphanSafetyAge=2))
    time.sleep(3.5)
    # old, without --repair: reported, kept, a failure
    p = fsck(m, "--objects")
    assert p.returncode == 1, p.stdout
    assert "1 older than 2 s" in p.stdout and "run with --repair" in p.stdout, p.stdout
    assert ORPHAN in keys(m)
    # with --repair: deleted, and nothing else
    p = fsck(m, "--objects", "--repair")
    assert p.returncode == 0, p.stdout
    assert "deleted" in p.stdout, p.stdout
    left = keys(m)
    assert ORPHAN not in left
    assert referenced <= left and set(FOREIGN) <= left, left
    p = fsck(m, "--verify")
    assert p.returncode == 0 and "orphans: none" in p.stdout, p.stdout
    # the file still reads
    m.mount()
    m.evict(m.mnt / "f")
    drop_caches()
    with open(m.mnt / "f", "rb") as f:
        assert f.read() == gen("random", CHUNK + 10, 21)


def test_the_collector_sweeps_old_orphans_and_keeps_every_referenced_object(backend, make_fs):
    m = make_fs(backend, orphanSafetyAge=3, orphanSweepInterval=1)
    write_file(m.mnt / "first", gen("random", CHUNK + 10, 31))
    m.wait_uploaded(60)
    t_put = time.time()
    m.z.run("put", ORPHAN, "-", input=b"a leaked upload")
    for k in FOREIGN:
        m.z.run("put", k, "-", input=b"not a chunk")
    # uploads go on while the sweeps run every second with a short safety age
    specs = []
    for i in range(12):
        data = gen("random" if i % 2 else "text", (i % 3) * CHUNK + 1000 * (i + 1), 100 + i)
        write_file(m.mnt / ("f%d" % i), data)
        specs.append(("f%d" % i, data))
        time.sleep(0.3)
    s = wait_for(lambda: (lambda s: s if s["orphans_deleted"] >= 1 else None)(m.status()),
                 30, "the sweep to delete the orphan")
    # the bucket's clock counts whole seconds: at least the safety age less one
    assert time.time() - t_put >= 2, "deleted %.1f s after it was put" % (time.time() - t_put)
    assert s["orphan_sweeps"] >= 1 and s["orphan_sweep_last"] > 0, s
    left = keys(m)
    assert ORPHAN not in left
    assert set(FOREIGN) <= left, left
    m.wait_uploaded(60)
    time.sleep(2.5)  # more sweeps over the finished uploads
    m.umount()
    p = fsck(m, "--verify")
    assert p.returncode == 0, p.stdout
    assert "orphans: none" in p.stdout, p.stdout
    m.mount()
    for name, data in specs:
        m.evict(m.mnt / name)
    drop_caches()
    for name, data in specs:
        with open(m.mnt / name, "rb") as f:
            assert f.read() == data, name


def test_orphan_options_are_checked(make_fs):
    m = make_fs("file", mount=False, orphanSafetyAge=0)
    p = m.try_mount()
    assert p.returncode != 0 and "orphanSafetyAge': 0 is out of range" in p.stdout, p.stdout
