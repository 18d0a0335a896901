"""Encryption, attacked from the bucket's side (docs/format.md, *Keys* and
*Threat model*), against the real s3rver through the verifying proxy.

A filesystem on an S3 bucket is encrypted by default (conftest sets
ZERO_PASSPHRASE). These tests copy a tree with known markers in its data,
names, extended attributes and symlink targets onto the mount and search
every object of the bucket for them; refuse a wrong, a missing and a
world-readable passphrase without writing anything; change the passphrase;
and tamper with objects by hand (a flipped byte, a truncation, one object
copied over another, an old object put back under a newer name), and damage
answers on the way (the proxy flips a byte or halves the body): each read
must be EIO, never other bytes, and `fsck --verify` must name the files.
The unencrypted control (encryption: false) shows the marker search finds
what is there.
"""

import errno
import os
import shutil
import subprocess

import pytest

from conftest import PASSPHRASE
from test_fsck import fsck, new_chunks, write_file
from test_journal import caught_up, lose_disk, restore
from tierutil import CHUNK, drop_caches, gen, is_mounted

MARK = b"ZMARK7q"  # in no object by chance: 7 bytes, searched for in every object


def marked_tree(root):
    """Files whose data, names, xattrs and link targets all carry MARK."""
    m = MARK.decode()
    os.makedirs(root / ("dir-" + m) / "sub")
    # compressible data (zstd first, then sealed) and a multi-chunk file
    write_file(root / ("dir-" + m) / "sub" / "text", (MARK + b" plain text line\n") * 5000)
    write_file(root / "big", (b"%s %08d\n" % (MARK, 0)) * (CHUNK // 16 + 1000))
    write_file(root / ("name-" + m), b"x")
    os.symlink("/target/" + m, root / "link")
    os.setxattr(root / "big", "user.value", MARK + b" in a value")
    os.setxattr(root / "big", "user.name-" + m, b"v")
    os.mkdir(root / "empty-dir")


def bucket_objects(m):
    """{key: bytes} of every object of this filesystem (its prefix) in the bucket."""
    p = m.z.run("ls", "zero/")
    out = {}
    for line in p.stdout.decode().splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[3].startswith("zero/"):
            out[fields[3]] = m.z.run("get", fields[3]).stdout
    return out


def objects_with(objs, needle):
    return sorted(k for k, v in objs.items() if needle in v)


def test_nothing_readable_in_the_bucket(make_fs):
    m = make_fs("s3", metadataRetention=3600)
    marked_tree(m.mnt)
    # (a checkpoint's name is its object's key: visible, as docs/format.md says)
    assert m.zero("checkpoint", "create", "cp1", m.mnt).returncode == 0
    caught_up(m)
    objs = bucket_objects(m)  # while mounted: the lease too
    kinds = {k.split("/")[1] for k in objs}
    assert {"chunks", "meta", "superblock", "lease"} <= kinds, sorted(objs)
    assert any(k.startswith("zero/meta/checkpoint/") for k in objs), sorted(objs)
    cache_id = (m.cache / "cache.id").read_text().strip().encode()
    for needle in (MARK, cache_id, str(m.cache).encode(), b"host=", b"zero-lease", b"ZJNL",
                   b"SQLite format", b"user.value"):
        assert objects_with(objs, needle) == [], "%r readable in the bucket" % needle
    sb = objs["zero/superblock"].decode()
    assert "format=2\n" in sb and "cipher=xchacha20poly1305\n" in sb, sb
    assert "id_key" not in sb and "wrapped_key=" in sb and "\nmac=" in sb, sb
    # every other object is a sealed envelope (flags bit 0)
    for k, v in objs.items():
        if k != "zero/superblock":
            assert v[:4] == b"ZOBJ" and v[6] & 1 == 1, "%s is not sealed" % k
    st = m.status()
    assert st["encryption"] == "xchacha20poly1305" and st["key_epoch"] == 1, st
    assert "XChaCha20-Poly1305" in m.zero("status", m.mnt).stdout


def test_unencrypted_is_a_choice_and_the_search_finds_plaintext(make_fs):
    m = make_fs("s3", encryption="false")
    marked_tree(m.mnt)
    caught_up(m)
    objs = bucket_objects(m)
    assert objects_with(objs, MARK), "the control found no marker: the search proves nothing"
    assert "format=1\n" in objs["zero/superblock"].decode()
    assert m.status()["encryption"] == "none"
    assert "none" in m.zero("status", m.mnt).stdout
    m.umount()
    # the superblock decides for an existing filesystem; encryption: true is refused
    m.z.write_config(dict(m.z.conf, encryption="true"))
    p = m.try_mount()
    assert p.returncode == 1 and "not encrypted" in p.stdout, p.stdout


def listing(m):
    return sorted(m.z.run("ls", "zero/").stdout.decode().splitlines())


def test_wrong_or_missing_passphrase_refused_and_nothing_written(make_fs, tmp_path):
    m = make_fs("s3")
    write_file(m.mnt / "f", b"data\n")
    caught_up(m)
    m.umount()
    before = listing(m)
    env = m.z.env
    try:
        env["ZERO_PASSPHRASE"] = "not the passphrase"
        p = m.try_mount()
        assert p.returncode == 1 and "wrong passphrase" in p.stdout, p.stdout
        assert not is_mounted(m.mnt)
        del env["ZERO_PASSPHRASE"]
        p = m.try_mount()
        assert p.returncode == 1 and "ZERO_PASSPHRASE" in p.stdout, p.stdout
        assert "encrypted" in p.stdout, p.stdout
        # a passphrase file others may read is refused; a private one works
        pf = tmp_path / "passphrase"
        pf.write_text(PASSPHRASE + "\n")
        os.chmod(pf, 0o644)
        m.z.write_config(dict(m.z.conf, passphraseFile=str(pf)))
        p = m.try_mount()
        assert p.returncode == 1 and "open to other users" in p.stdout, p.stdout
        assert listing(m) == before, "a refused mount wrote to the bucket"
        os.chmod(pf, 0o600)
        m.mount()
        assert (m.mnt / "f").read_bytes() == b"data\n"
    finally:
        env["ZERO_PASSPHRASE"] = PASSPHRASE


def test_passphrase_change(make_fs, tmp_path):
    m = make_fs("s3")
    write_file(m.mnt / "f", gen("random", 100_000, 1))
    caught_up(m)
    m.umount()
    chunks_before = m.bucket_chunks()
    old_sb = m.z.run("get", "zero/superblock").stdout
    env = dict(m.z.env, ZERO_NEW_PASSPHRASE="the new one")
    p = subprocess.run([m.z.binary, "passwd", "--config", str(m.z.config)], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "key epoch 2" in p.stdout, p.stdout
    assert m.bucket_chunks() == chunks_before, "a passphrase change rewrote data"
    p = m.try_mount()
    assert p.returncode == 1 and "wrong passphrase" in p.stdout, p.stdout
    m.z.env["ZERO_PASSPHRASE"] = "the new one"
    try:
        m.mount()
        assert (m.mnt / "f").read_bytes() == gen("random", 100_000, 1)
        assert m.status()["key_epoch"] == 2
        m.evict(m.mnt / "f")
        drop_caches()
        assert (m.mnt / "f").read_bytes() == gen("random", 100_000, 1)
        caught_up(m)
        m.umount()
        # the old superblock put back: its passphrase opens it, but this cache refuses it
        new_sb = m.z.run("get", "zero/superblock").stdout
        m.z.run("put", "zero/superblock", "-", input=old_sb)
        m.z.env["ZERO_PASSPHRASE"] = PASSPHRASE
        p = m.try_mount()
        assert p.returncode == 1 and "older than this cache" in p.stdout, p.stdout
        m.z.run("put", "zero/superblock", "-", input=new_sb)
        # a new cache recovers the filesystem with the new passphrase
        m.z.env["ZERO_PASSPHRASE"] = "the new one"
        shutil.rmtree(m.cache)
        m.cache.mkdir()
        out = restore(m)
        assert "restored the filesystem" in out, out
        assert (m.mnt / "f").read_bytes() == gen("random", 100_000, 1)
    finally:
        m.z.env["ZERO_PASSPHRASE"] = PASSPHRASE


def read_error(path):
    try:
        with open(path, "rb") as f:
            f.read()
    except OSError as e:
        return e.errno
    return None


@pytest.mark.parametrize("damage", ["garble", "short"])
def test_a_damaged_answer_is_fetched_again_and_never_read(make_fs, proxy, damage):
    """A GET answered 200 with bytes that do not verify (one flipped on the
    way, or half an object with a length to match, as s3rver served one it
    was still writing). The fetch fails, and the kernel, its read-ahead
    failed, reads the page once more: one such answer costs the reader
    nothing (a second GET); two in a row are EIO, never the bytes; and the
    chunk is not spoiled by them: the next read, the server answering well,
    returns the file."""
    m = make_fs("s3")
    data = gen("random", 50_000, 1)
    write_file(m.mnt / "f", data)
    (key,) = new_chunks(m, set(), "f to upload")
    caught_up(m)

    def cold_read(times):
        m.evict(m.mnt / "f")
        drop_caches()
        proxy.reset()
        proxy.faults([{"action": damage, "method": "GET", "path_contains": key,
                       "times": times}])
        try:
            with open(m.mnt / "f", "rb") as f:
                return f.read()
        except OSError as e:
            return e.errno
        finally:
            gets = [e for e in proxy.stats()["log"] if e[0] == "GET" and key in e[1]]
            assert len(gets) == (2 if times else 1), gets

    assert cold_read(1) == data
    assert cold_read(2) == errno.EIO
    assert cold_read(0) == data
    assert "is corrupt" in m.log_text(), "the damaged answers were not logged"


def test_tampered_objects_give_eio(make_fs):
    m = make_fs("s3")
    known = set()
    names = ("flipped", "truncated", "swapped", "replayed", "other", "fine")
    key = {}
    for i, name in enumerate(names):
        write_file(m.mnt / name, gen("random", 50_000 + i, i))
        (key[name],) = new_chunks(m, known, name + " to upload")
        known.add(key[name])
    old_replayed = m.z.run("get", key["replayed"]).stdout
    # replayed: rewritten, so that its old object lives on only as a copy
    write_file(m.mnt / "replayed", gen("random", 50_003, 99))
    new = new_chunks(m, known, "the rewrite to upload") - {key["replayed"]}
    (key["replayed"],) = new
    caught_up(m)
    for name in names:
        m.evict(m.mnt / name)
    drop_caches()

    get = lambda k: bytearray(m.z.run("get", k).stdout)
    obj = get(key["flipped"])
    obj[len(obj) // 2] ^= 0x01
    m.z.run("put", key["flipped"], "-", input=bytes(obj))
    m.z.run("put", key["truncated"], "-", input=bytes(get(key["truncated"])[:-100]))
    m.z.run("put", key["swapped"], "-", input=bytes(get(key["other"])))
    m.z.run("put", key["replayed"], "-", input=old_replayed)

    for name in ("flipped", "truncated", "swapped", "replayed"):
        assert read_error(m.mnt / name) == errno.EIO, "%s: read without EIO" % name
    assert (m.mnt / "fine").read_bytes() == gen("random", 50_005, 5)
    assert (m.mnt / "other").read_bytes() == gen("random", 50_004, 4)
    m.umount()
    p = fsck(m, "--verify")
    assert p.returncode == 1, p.stdout
    for name in ("flipped", "truncated", "swapped", "replayed"):
        lines = [l for l in p.stdout.splitlines() if key[name] in l]
        assert lines and "/" + name in lines[0], (name, p.stdout)
    assert "/fine" not in p.stdout and "/other" not in p.stdout, p.stdout
    # without the passphrase --verify cannot read them, and says so
    env = dict(m.z.env)
    del env["ZERO_PASSPHRASE"]
    q = subprocess.run([m.z.binary, "fsck", str(m.cache), "--config", str(m.z.config),
                        "--verify"], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True)
    assert q.returncode == 1 and "encrypted" in q.stderr, q.stderr


def test_tampered_metadata_refused_on_recovery(make_fs):
    m = make_fs("s3")
    write_file(m.mnt / "a", b"first\n")
    caught_up(m)
    write_file(m.mnt / "b", b"second\n")
    caught_up(m)
    items = sorted(k for k in m.z.run("ls", "zero/meta/j/").stdout.decode().split()
                   if k.startswith("zero/meta/j/"))
    logs = [k for k in items if k.endswith("-L")]
    assert len(logs) >= 2, items
    newest, older = logs[-1], logs[-2]
    saved = m.z.run("get", newest).stdout
    # an older item's bytes under the newest item's name: not accepted
    m.z.run("put", newest, "-", input=m.z.run("get", older).stdout)
    lose_disk(m)
    p = m.try_mount()
    assert p.returncode == 1 and newest.split("/")[-1] in p.stdout, p.stdout
    assert "corrupt" in p.stdout, p.stdout
    # put right again, the filesystem comes back whole
    m.z.run("put", newest, "-", input=saved)
    shutil.rmtree(m.cache)
    m.cache.mkdir()
    restore(m)
    assert (m.mnt / "a").read_bytes() == b"first\n"
    assert (m.mnt / "b").read_bytes() == b"second\n"


def test_encrypted_filesystems_made_at_once_one_wins(make_fs, cond_proxy):
    """Three caches create an encrypted filesystem in one empty prefix at the same moment,
    each with a key of its own: exactly one mounts; the others are refused with a message
    (they cannot read the winner's sealed lease) and write no superblock of their own."""
    import threading
    from conftest import s3_conf
    conf = s3_conf(cond_proxy.port, "unused")
    racers = [make_fs(conf, "race%d" % i, mount=False, prefix="enc/race/", leaseTimeout=5)
              for i in range(3)]
    results = [None] * 3
    start = threading.Barrier(3)

    def race(i):
        start.wait()
        results[i] = racers[i].try_mount()
    threads = [threading.Thread(target=race, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    winners = [i for i, p in enumerate(results) if p.returncode == 0]
    assert len(winners) == 1, "\n".join("racer %d: exit %d\n%s\nlog:\n%s" % (
        i, p.returncode, p.stdout, racers[i].log_tail()) for i, p in enumerate(results))
    one = racers[winners[0]]
    for i, p in enumerate(results):
        if i != winners[0]:
            assert "lease" in p.stdout and len(p.stdout.strip()) > 20, p.stdout
            assert not is_mounted(racers[i].mnt)
    write_file(one.mnt / "f", b"the winner's\n")
    caught_up(one)
    assert one.status()["encryption"] == "xchacha20poly1305"
    one.umount()
    one.mount()
    assert (one.mnt / "f").read_bytes() == b"the winner's\n"
