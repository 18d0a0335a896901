"""A full cache disk is ENOSPC, never a wedged filesystem.

The cache lives on a small ext4 filesystem of its own (a loop-mounted image
of 200 MB) while targetDiskUsage is far larger, so the disk fills before the
target is reached. Writers must get ENOSPC (not EIO), the operations that
free space (unlink, truncate, rmdir) must go through on the full disk, the
evictor must keep the disk's real free space in mind, and afterwards
everything works again without a remount.
"""

import errno
import os
import shutil
import subprocess
import time

import pytest

from conftest import s3_conf
from tierutil import MiB, drop_caches, gen, wait_for

DISK_MB = 200


@pytest.fixture
def small_disk(tmp_path):
    """A DISK_MB ext4 filesystem mounted at tmp_path/small."""
    if not shutil.which("mkfs.ext4"):
        pytest.fail("mkfs.ext4 is missing (Debian package e2fsprogs)")
    image, mnt = tmp_path / "disk.img", tmp_path / "small"
    mnt.mkdir()
    with open(image, "wb") as f:
        f.truncate(DISK_MB * MiB)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def daemon_cpu_seconds(m, seconds):
    """The CPU seconds m's daemon spends in the next SECONDS seconds."""
    def cpu():
        with open("/proc/%d/stat" % m.daemon_pid()) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    before = cpu()
    time.sleep(seconds)
    return cpu() - before


def write_until_error(path, total, seed):
    """Write TOTAL bytes to PATH in 1 MiB writes; the OSError that stopped it, or None."""
    data = gen("random", 8 * MiB, seed)
    try:
        with open(path, "wb") as f:
            done = 0
            while done < total:
                f.write(data[done % len(data):][:MiB])
                done += MiB
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        return e
    return None


def test_full_cache_disk_is_enospc_and_recovers(make_fs, own_s3rver, small_disk):
    store = s3_conf(own_s3rver["port"], "x")
    store.pop("prefix")
    m = make_fs(store, base=small_disk, targetDiskUsage="10GiB", uploadDelay=0,
                chunkSize="4MiB", backpressureTimeout=5)
    keep = gen("text", 3 * MiB, 5)
    (m.mnt / "keep").write_bytes(keep)
    os.mkdir(m.mnt / "dir")
    # more than the disk holds, faster than it uploads: the disk fills
    # more than the disk holds: the writer waits for uploads and eviction
    # (free space is a limit like the target), it does not fill the disk
    err = write_until_error(m.mnt / "big", 2 * DISK_MB * MiB, 7)
    assert err is None, "writing %d MiB through a %d MB cache disk: %r; status %s" % (
        2 * DISK_MB, DISK_MB, err, m.status())
    # then another program takes the last bytes of the disk
    filler = small_disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(bytes(MiB))
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC
        while True:  # down to the last block
            try:
                f.write(bytes(4096))
                f.flush()
            except OSError:
                break
    # what needs room gets ENOSPC, never EIO
    news = [m.mnt / ("new%d" % attempt) for attempt in range(3)]
    for attempt, new in enumerate(news):
        try:
            new.write_bytes(gen("random", MiB, attempt))
        except OSError as e:
            assert e.errno == errno.ENOSPC, "create and write on a full disk: %r" % e
    # and the daemon waits for room, it does not spin: the failed writes left
    # empty files with a chunk marked, whose row cannot go on a full disk (the
    # uploader picked it again at once, 100 % of a CPU for as long as the disk
    # stayed full)
    assert daemon_cpu_seconds(m, 3) < 1.0, m.log_text()[-2000:]
    # those files (a create may still find room where its write does not, as
    # on ext4) go: an unlink frees, it needs no room
    for new in news:
        if os.path.lexists(new):
            os.unlink(new)
    # metadata that needs room gets ENOSPC too (the database cannot grow)
    for i in range(2000):
        try:
            os.setxattr(m.mnt / "keep", "user.big%d" % i, gen("random", 60_000, i))
        except OSError as e:
            assert e.errno == errno.ENOSPC, "setxattr on a full disk: %r" % e
            break
    else:
        pytest.fail("120 MB of attributes fit on a full disk")
    # what frees room goes through on the full disk (a truncate into the
    # middle of a chunk that is only in the bucket needs room to fetch it)
    try:
        os.truncate(m.mnt / "big", 10 * MiB)
    except OSError as e:
        assert e.errno == errno.ENOSPC, "truncate into a remote chunk on a full disk: %r" % e
    os.truncate(m.mnt / "big", 8 * MiB)
    os.unlink(m.mnt / "big")
    os.rmdir(m.mnt / "dir")
    os.unlink(filler)
    # and then the metadata works again, without a remount
    (m.mnt / "small").write_bytes(b"still works")
    assert (m.mnt / "small").read_bytes() == b"still works"
    os.mkdir(m.mnt / "dir2")
    m.wait_uploaded(120)
    # the evictor keeps free space on the cache's disk, whatever the target
    wait_for(lambda: free_bytes(small_disk) > 20 * MiB, 30, "free space on the cache's disk")
    # and new data goes in and comes back, the old is intact
    data = gen("random", 60 * MiB, 9)
    with open(m.mnt / "after", "wb") as f:
        for i in range(0, len(data), MiB):
            f.write(data[i:i + MiB])
    drop_caches()
    assert (m.mnt / "after").read_bytes() == data
    assert (m.mnt / "keep").read_bytes() == keep
    log = m.log_text()
    assert "cannot start a transaction within a transaction" not in log, log[-3000:]
    m.umount()
    m.mount()
    assert (m.mnt / "after").read_bytes() == data
    assert sorted(os.listdir(m.mnt)) == ["after", "dir2", "keep", "small"]
