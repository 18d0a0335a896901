"""Zero only: what survives an unmount/mount cycle and a kill -9 of the
daemon, and that `zero fsck` finds the metadata consistent afterwards.
Skipped against a plain directory (there is no daemon to restart)."""

import errno
import hashlib
import os
import random
import signal
import stat
import subprocess
import time

import pytest

from sysutil import (NOBODY, OTHER, drop_caches, expect_errno, is_mounted,
                     log_problems, pwrite_all, utimensat, write_file)

MiB = 1 << 20


def _build_tree(root):
    """A tree with every kind of object and attribute; returns nothing."""
    r = os.fsencode(root)
    rnd = random.Random(7)

    def p(*parts):
        return os.path.join(r, *parts)

    os.mkdir(p(b"dir"))
    os.mkdir(p(b"dir", b"nested"))
    os.mkdir(p(b"dir", b"nested", b"deep"))
    os.mkdir(p(b"sticky"))
    os.chmod(p(b"sticky"), 0o1777)
    os.mkdir(p(b"sgid"))
    os.chmod(p(b"sgid"), 0o2775)
    write_file(p(b"empty"), b"")
    write_file(p(b"small"), b"small file\n")
    write_file(p(b"big"), rnd.randbytes(9 * MiB + 4321))
    write_file(p(b"dir", b"nested", b"deep", b"leaf"), rnd.randbytes(70000))
    fd = os.open(p(b"sparse"), os.O_CREAT | os.O_WRONLY, 0o644)
    os.pwrite(fd, b"begin", 0)
    os.pwrite(fd, b"middle", 5 * MiB + 3)
    os.pwrite(fd, b"end", (1 << 30) + 17)
    os.ftruncate(fd, (1 << 30) + 4096)
    os.close(fd)
    name255 = bytes(b for b in range(1, 256) if b != ord("/")) + b"Z"
    write_file(p(b"dir", name255), b"odd name")
    write_file(p(b"dir", b"\xff\xfe latin"), b"non-utf8 name")
    # modes and owners
    write_file(p(b"suid"), b"#!/bin/sh\n")
    os.chmod(p(b"suid"), 0o4755)
    write_file(p(b"sgidfile"), b"")
    os.chmod(p(b"sgidfile"), 0o2750)
    write_file(p(b"nomode"), b"nobody can read")
    os.chmod(p(b"nomode"), 0)
    write_file(p(b"owned"), b"owned")
    os.chown(p(b"owned"), NOBODY, OTHER)
    os.chown(p(b"sticky"), OTHER, NOBODY)
    write_file(p(b"bigid"), b"")
    os.chown(p(b"bigid"), 3_000_000_000, 2_000_000_000)
    # hard links
    write_file(p(b"linked"), b"three names")
    os.link(p(b"linked"), p(b"dir", b"link2"))
    os.link(p(b"linked"), p(b"dir", b"nested", b"link3"))
    # symlinks
    os.symlink(b"small", p(b"sym_rel"))
    os.symlink(p(b"big"), p(b"sym_abs"))
    os.symlink(b"does/not/exist", p(b"sym_dangling"))
    os.symlink(bytes(range(1, 256)), p(b"sym_odd"))
    os.symlink(b"x" * 4000, p(b"sym_long"))
    os.lchown(p(b"sym_rel"), NOBODY, NOBODY)
    # special files
    os.mkfifo(p(b"fifo"), 0o640)
    os.mknod(p(b"sock"), stat.S_IFSOCK | 0o600)
    os.mknod(p(b"chr"), stat.S_IFCHR | 0o644, os.makedev(1, 3))
    os.mknod(p(b"blk"), stat.S_IFBLK | 0o600, os.makedev(8, 300))
    # xattrs
    os.setxattr(p(b"small"), b"user.plain", b"value")
    os.setxattr(p(b"small"), b"user.empty", b"")
    os.setxattr(p(b"small"), b"user.binary", bytes(range(256)))
    os.setxattr(p(b"dir"), b"user.on_dir", b"dir value")
    os.setxattr(p(b"linked"), b"user.shared", b"by all links")
    os.setxattr(p(b"sym_rel"), b"trusted.on_symlink", b"t",
                follow_symlinks=False)
    os.setxattr(p(b"big"), b"user." + b"n" * 250, b"v" * 1000)
    # explicit nanosecond times, directories last (children changed them)
    k = 0
    for dirpath, dirnames, filenames in os.walk(r, topdown=False):
        for n in filenames + dirnames:
            k += 1
            utimensat(os.path.join(dirpath, n),
                      1_500_000_000_000_000_000 + k * 1_000_000_007,
                      1_400_000_000_000_000_000 + k * 999_999_937,
                      follow=False)
    # times set implicitly by writes through the page cache, truncate and
    # a shared mapping must persist exactly too
    import mmap
    write_file(p(b"implicit_write"), rnd.randbytes(300000))
    fd = os.open(p(b"implicit_write"), os.O_WRONLY)
    os.pwrite(fd, b"again", 5 * MiB)
    os.close(fd)
    write_file(p(b"implicit_trunc"), b"x" * 10000)
    os.truncate(p(b"implicit_trunc"), 10)
    write_file(p(b"implicit_mmap"), bytes(3 * 4096))
    fd = os.open(p(b"implicit_mmap"), os.O_RDWR)
    with mmap.mmap(fd, 3 * 4096) as m:
        m[5000:5004] = b"mmap"
    os.close(fd)
    os.mkdir(p(b"implicit_dir"))
    write_file(p(b"implicit_dir", b"child"), b"c")


def _walk(root):
    """Relative paths (bytes) of everything under root, root excluded."""
    out = []
    r = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(r):
        for n in dirnames + filenames:
            out.append(os.path.relpath(os.path.join(dirpath, n), r))
    return sorted(out)


def _stats(root, paths):
    r = os.fsencode(root)
    res = {}
    for rel in paths:
        st = os.lstat(os.path.join(r, rel))
        res[rel] = dict(mode=st.st_mode, uid=st.st_uid, gid=st.st_gid,
                        size=st.st_size, nlink=st.st_nlink, rdev=st.st_rdev,
                        atime=st.st_atime_ns, mtime=st.st_mtime_ns,
                        ctime=st.st_ctime_ns, ino=st.st_ino)
    return res


def _link_groups(stats):
    groups = {}
    for rel, s in stats.items():
        groups.setdefault(s["ino"], []).append(rel)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def _contents(root, paths, stats):
    r = os.fsencode(root)
    res = {}
    for rel in paths:
        full = os.path.join(r, rel)
        mode = stats[rel]["mode"]
        entry = {"xattrs": {n: os.getxattr(full, n, follow_symlinks=False)
                            for n in os.listxattr(full,
                                                  follow_symlinks=False)}}
        if stat.S_ISREG(mode):
            entry["blocks"] = _content_digest(full)
        elif stat.S_ISLNK(mode):
            entry["target"] = os.readlink(full)
        res[rel] = entry
    return res


BLOCK = 1 << 20


def _content_digest(path):
    """{block index: sha256} of the non-zero 1 MiB blocks of a file, read
    with O_NOATIME; holes are skipped with SEEK_DATA/SEEK_HOLE, so the
    result does not depend on how the filesystem reports holes."""
    out = {}
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
    try:
        size = os.fstat(fd).st_size
        off = 0
        while off < size:
            try:
                data_off = os.lseek(fd, off, os.SEEK_DATA)
            except OSError as e:
                if e.errno != errno.ENXIO:
                    raise
                break
            hole = os.lseek(fd, data_off, os.SEEK_HOLE)
            for b in range(data_off // BLOCK, (hole - 1) // BLOCK + 1):
                if b in out:
                    continue
                data = os.pread(fd, BLOCK, b * BLOCK)
                if data.strip(b"\0"):
                    out[b] = hashlib.sha256(data).hexdigest()
                else:
                    out[b] = None
            off = max(hole, data_off + 1)
    finally:
        os.close(fd)
    return {b: h for b, h in out.items() if h is not None}


def _snapshot(root):
    paths = _walk(root)
    stats0 = _stats(root, paths)
    contents = _contents(root, paths, stats0)
    stats = _stats(root, paths)     # after reads: what must persist
    return paths, stats, contents


def _compare(root, before):
    paths, stats, contents = before
    r = os.fsencode(root)
    gone = [rel for rel in paths if not os.path.lexists(os.path.join(r, rel))]
    assert not gone, f"lost across remount: {gone}"
    after_stats = _stats(root, paths)       # first, before any access
    for rel in paths:
        a, b = stats[rel], after_stats[rel]
        diff = {k: (a[k], b[k]) for k in a if k != "ino" and a[k] != b[k]}
        assert not diff, f"{rel!r} changed across remount: {diff}"
    assert _link_groups(after_stats) == _link_groups(stats)
    assert _walk(root) == paths
    after = _contents(root, paths, after_stats)
    for rel in paths:
        assert after[rel] == contents[rel], f"{rel!r}: content/xattr differ"


def test_remount_persistence(workdir, zero):
    _build_tree(workdir)
    before = _snapshot(workdir)
    assert len(before[0]) >= 33
    zero.umount()
    p = zero.fsck()
    zero.mount()
    _compare(workdir, before)
    assert p.returncode == 0, f"zero fsck after a clean unmount exited " \
        f"{p.returncode}:\n{p.stdout}{p.stderr}"
    # holes are still holes
    sparse = os.path.join(workdir, "sparse")
    assert os.stat(sparse).st_blocks * 512 < 64 * MiB
    fd = os.open(sparse, os.O_RDONLY)
    try:
        assert os.lseek(fd, 6 * MiB, os.SEEK_DATA) >= (1 << 30) - 64 * MiB
    finally:
        os.close(fd)
    # and once more, after the kernel forgot everything
    drop_caches()
    zero.remount()
    _compare(workdir, before)


def test_second_mount_of_same_cache_refused(zero, tmp_path):
    other = tmp_path / "mnt2"
    other.mkdir()
    p = zero.run("mount", str(other), zero.cache, check=False, timeout=30)
    try:
        assert p.returncode != 0, "a second daemon mounted the same cache"
        assert (p.stdout + p.stderr).strip(), "refused without a message"
        assert not is_mounted(str(other))
    finally:
        if is_mounted(str(other)):
            subprocess.run(["fusermount3", "-u", "-z", str(other)])
    assert os.path.ismount(zero.mnt)
    # the refused attempt must not disturb the running mount
    os.listdir(zero.mnt)


def _write_synced(path, data):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o640)
    try:
        pwrite_all(fd, data, 0)
        os.fsync(fd)
    finally:
        os.close(fd)


def _prepare_crash(workdir):
    """Files that must survive a kill -9, and some that need not."""
    rnd = random.Random(11)
    w = workdir
    synced = {}

    def sync_dir(d):
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(fd)
        os.close(fd)

    for name, data in (("small", b"fsynced small file"),
                       ("empty", b""),
                       ("big", rnd.randbytes(9 * MiB + 77)),
                       ("page", rnd.randbytes(4096))):
        _write_synced(os.path.join(w, name), data)
        synced[name] = data
    os.mkdir(os.path.join(w, "sub"))
    _write_synced(os.path.join(w, "sub", "inner"), b"in a new directory")
    sync_dir(os.path.join(w, "sub"))
    sync_dir(w)
    synced["sub/inner"] = b"in a new directory"
    # overwritten in place, then fsynced
    data = bytearray(rnd.randbytes(5 * MiB))
    _write_synced(os.path.join(w, "overwritten"), data)
    fd = os.open(os.path.join(w, "overwritten"), os.O_WRONLY)
    new = rnd.randbytes(100000)
    os.pwrite(fd, new, 4 * MiB - 50000)
    data[4 * MiB - 50000:4 * MiB + 50000] = new
    os.ftruncate(fd, 4 * MiB + 123)
    del data[4 * MiB + 123:]
    os.fsync(fd)
    os.close(fd)
    synced["overwritten"] = bytes(data)
    # sparse, fsynced
    fd = os.open(os.path.join(w, "sparse"), os.O_CREAT | os.O_WRONLY, 0o644)
    os.pwrite(fd, b"far away", 3 << 30)
    os.fsync(fd)
    os.close(fd)
    # renamed, then fsynced (file and directory)
    _write_synced(os.path.join(w, "tmpname"), b"renamed into place")
    os.rename(os.path.join(w, "tmpname"), os.path.join(w, "final"))
    sync_dir(w)
    synced["final"] = b"renamed into place"
    # metadata made durable by fsync: mode, owner, xattr, a hard link and a
    # symlink (the directory fsynced)
    meta = os.path.join(w, "meta")
    _write_synced(meta, b"meta")
    os.chown(meta, NOBODY, OTHER)
    os.chmod(meta, 0o4710)
    os.setxattr(meta, "user.durable", b"yes")
    os.link(meta, os.path.join(w, "meta_link"))
    os.symlink("meta", os.path.join(w, "meta_sym"))
    fd = os.open(meta, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    sync_dir(w)
    synced["meta"] = b"meta"
    # an unlink made durable by fsyncing the directory
    _write_synced(os.path.join(w, "deleted"), b"gone")
    sync_dir(w)
    os.unlink(os.path.join(w, "deleted"))
    sync_dir(w)
    # written and closed but never fsynced: may be lost, must not be corrupt
    write_file(os.path.join(w, "unsynced"), rnd.randbytes(3 * MiB))
    # open for writing at the time of the kill
    fd = os.open(os.path.join(w, "open_at_kill"), os.O_CREAT | os.O_WRONLY,
                 0o644)
    os.write(fd, b"x" * 200000)
    return synced, fd


def _check_after_crash(workdir, synced):
    for name, data in synced.items():
        p = os.path.join(workdir, name)
        with open(p, "rb") as f:
            got = f.read()
        assert len(got) == len(data), f"{name}: size {len(got)} != " \
            f"{len(data)} after kill -9"
        assert got == data, f"{name}: content differs after kill -9"
    fd = os.open(os.path.join(workdir, "sparse"), os.O_RDONLY)
    try:
        assert os.fstat(fd).st_size == (3 << 30) + 8
        assert os.pread(fd, 8, 3 << 30) == b"far away"
        assert os.pread(fd, 4096, 1 << 30) == bytes(4096)
    finally:
        os.close(fd)
    assert not os.path.exists(os.path.join(workdir, "tmpname"))
    assert not os.path.exists(os.path.join(workdir, "deleted"))
    st = os.stat(os.path.join(workdir, "meta"))
    assert stat.S_IMODE(st.st_mode) == 0o4710
    assert (st.st_uid, st.st_gid, st.st_nlink) == (NOBODY, OTHER, 2)
    assert os.getxattr(os.path.join(workdir, "meta"), "user.durable") == b"yes"
    assert os.stat(os.path.join(workdir, "meta_link")).st_ino == st.st_ino
    assert os.readlink(os.path.join(workdir, "meta_sym")) == "meta"
    # unsynced files: any state, but readable without errors
    for name in ("unsynced", "open_at_kill"):
        p = os.path.join(workdir, name)
        if os.path.exists(p):
            with open(p, "rb") as f:
                f.read()


def _kill_and_check_dead(zero, fd):
    pids = zero.kill9()
    assert pids
    with expect_errno(errno.ENOTCONN, errno.ECONNABORTED):
        os.statvfs(zero.mnt)
    try:
        os.close(fd)  # flush fails with ENOTCONN; the descriptor is gone
    except OSError:
        pass


@pytest.mark.parametrize("cleanup", ["umount", "mount"])
def test_kill9_recovery(workdir, zero, cleanup):
    synced, fd = _prepare_crash(workdir)
    try:
        _kill_and_check_dead(zero, fd)
        if cleanup == "umount":
            # `zero umount` cleans up the dead mount
            zero.run("umount", zero.mnt, timeout=60)
            assert not is_mounted(zero.mnt)
            p = zero.fsck()
            assert p.returncode == 0, \
                f"zero fsck right after kill -9 exited {p.returncode}:\n" \
                f"{p.stdout}{p.stderr}"
        # (or) a new `zero mount` cleans it up itself
        zero.mount()
        time.sleep(0.1)
        _check_after_crash(workdir, synced)
        zero.umount()
        p = zero.fsck()
        assert p.returncode == 0, \
            f"zero fsck after recovery exited {p.returncode}:\n" \
            f"{p.stdout}{p.stderr}"
        zero.mount()
        _check_after_crash(workdir, synced)
    finally:
        zero.ensure_mounted()


def test_kill9_during_writes(workdir, zero):
    """Kill the daemon while another process is writing; after recovery
    fsck is clean and every file that was fsynced is intact."""
    done = {}
    rnd = random.Random(12)
    for i in range(20):
        data = rnd.randbytes(rnd.randint(0, 300000))
        _write_synced(os.path.join(workdir, f"s{i}"), data)
        done[f"s{i}"] = data
    pid = os.fork()
    if pid == 0:
        try:
            k = 0
            while True:
                # data and metadata changes of every kind, without fsync
                n = os.path.join(workdir, f"busy{k % 10}")
                write_file(n, os.urandom(100000 + k % 7 * 70000))
                os.setxattr(n, "user.k", str(k).encode())
                d = os.path.join(workdir, f"dir{k % 5}")
                if os.path.isdir(d):
                    for e in os.listdir(d):
                        os.unlink(os.path.join(d, e))
                    os.rmdir(d)
                else:
                    os.mkdir(d)
                    os.link(n, os.path.join(d, "link"))
                    os.symlink("../x", os.path.join(d, "sym"))
                    os.rename(os.path.join(d, "link"),
                              os.path.join(d, "moved"))
                os.truncate(n, k % 3 * 4096)
                k += 1
        except BaseException:
            pass
        finally:
            os._exit(0)
    try:
        time.sleep(0.5)
        zero.kill9()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    try:
        zero.run("umount", zero.mnt, timeout=60)
        zero.mount()
        for name, data in done.items():
            with open(os.path.join(workdir, name), "rb") as f:
                assert f.read() == data, name
        # everything else is in some state, but consistent and readable
        for root, dirs, files in os.walk(workdir):
            for name in files:
                full = os.path.join(root, name)
                if os.path.islink(full):
                    assert os.readlink(full) == "../x"
                    continue
                with open(full, "rb") as f:
                    f.read()
                os.listxattr(full)
            for name in dirs:
                assert os.stat(os.path.join(root, name)).st_nlink == 2
        # link counts agree with the names found
        names = {}
        for root, _dirs, files in os.walk(workdir):
            for name in files:
                st = os.lstat(os.path.join(root, name))
                if stat.S_ISREG(st.st_mode):
                    names.setdefault(st.st_ino, []).append(st.st_nlink)
        for ino, counts in names.items():
            assert counts[0] == len(counts), (ino, counts)
        zero.umount()
        p = zero.fsck()
        assert p.returncode == 0, f"zero fsck exited {p.returncode}:\n" \
            f"{p.stdout}{p.stderr}"
        zero.mount()
    finally:
        zero.ensure_mounted()


def test_shared_content_after_remount(workdir, zero):
    """Identical contents (one object in a content-addressed store) stay
    correct when one copy is deleted or changed across remounts."""
    data = random.Random(13).randbytes(9 * MiB)
    names = [os.path.join(workdir, f"dup{i}") for i in range(3)]
    for n in names:
        write_file(n, data)
    zero.remount()
    os.unlink(names[0])
    fd = os.open(names[1], os.O_WRONLY)
    os.pwrite(fd, b"changed", 4 * MiB + 10)
    os.close(fd)
    zero.remount()
    with open(names[2], "rb") as f:
        assert f.read() == data
    changed = bytearray(data)
    changed[4 * MiB + 10:4 * MiB + 17] = b"changed"
    with open(names[1], "rb") as f:
        assert f.read() == bytes(changed)
    write_file(names[0], data)
    zero.remount()
    with open(names[0], "rb") as f:
        assert f.read() == data


def _cache_usage(zero):
    total = 0
    for root, _dirs, files in os.walk(os.path.join(zero.cache, "data")):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def test_kill9_with_open_unlinked_file(workdir, zero):
    """A file unlinked while open when the daemon is killed is gone after
    recovery and its data is freed."""
    size = 64 * MiB
    p = os.path.join(workdir, "orphan")
    block = random.Random(14).randbytes(MiB)
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    for i in range(size // MiB):
        pwrite_all(fd, block, i * MiB)
    os.fsync(fd)
    before = _cache_usage(zero)
    os.unlink(p)
    os.fsync(fd)
    dfd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)
    try:
        _kill_and_check_dead(zero, fd)
        zero.run("umount", zero.mnt, timeout=60)
        zero.mount()
        assert os.listdir(workdir) == []
        deadline = time.time() + 15
        while before - _cache_usage(zero) < size // 2 and \
                time.time() < deadline:
            time.sleep(0.1)
        assert before - _cache_usage(zero) >= size // 2, \
            "the orphan's data was not freed after recovery"
        zero.umount()
        p = zero.fsck()
        assert p.returncode == 0, f"zero fsck exited {p.returncode}:\n" \
            f"{p.stdout}{p.stderr}"
        zero.mount()
    finally:
        zero.ensure_mounted()


def test_foreground_mount(zero, tmp_path):
    """`zero mount MNT CACHE -f` serves in the foreground until
    `zero umount MNT`, then exits 0; its cache is consistent."""
    mnt, cache = tmp_path / "mnt", tmp_path / "cache"
    mnt.mkdir()
    cache.mkdir()
    out = open(tmp_path / "stderr", "w+")
    proc = subprocess.Popen([zero.bin, "mount", str(mnt), str(cache), "-f"],
                            env=zero.env, stdin=subprocess.DEVNULL,
                            stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 20
        while not os.path.ismount(mnt):
            assert proc.poll() is None, f"exited {proc.returncode}"
            assert time.time() < deadline, "no mount after 20 s"
            time.sleep(0.05)
        write_file(os.path.join(mnt, "f"), b"foreground")
        time.sleep(0.2)
        assert proc.poll() is None, "the foreground daemon went away"
        zero.run("umount", str(mnt), timeout=60)
        assert proc.wait(timeout=30) == 0
        assert not is_mounted(str(mnt))
    finally:
        if proc.poll() is None:
            if is_mounted(str(mnt)):
                subprocess.run(["fusermount3", "-u", "-z", str(mnt)])
            proc.kill()
            proc.wait()
    out.seek(0)
    text = out.read()
    try:
        with open(cache / "zero.log", errors="replace") as f:
            text += f.read()
    except FileNotFoundError:
        pass
    assert not log_problems(text), log_problems(text)
    p = zero.run("fsck", str(cache), check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    # the data is there for the next (background) mount
    zero.run("mount", str(mnt), str(cache))
    try:
        with open(os.path.join(mnt, "f"), "rb") as f:
            assert f.read() == b"foreground"
    finally:
        zero.run("umount", str(mnt), timeout=60)


def test_many_entries_and_changes_across_remounts(workdir, zero):
    """Thousands of entries survive; changes made after a remount (unlink,
    rename, link, rmdir) survive the next one with exact link counts."""
    for d in range(20):
        os.mkdir(os.path.join(workdir, f"d{d}"))
        for i in range(100):
            n = os.path.join(workdir, f"d{d}", f"f{i}")
            write_file(n, n.encode())
    os.link(os.path.join(workdir, "d0", "f0"), os.path.join(workdir, "hl"))
    zero.remount()
    for d in range(20):
        assert len(os.listdir(os.path.join(workdir, f"d{d}"))) == 100
    assert os.stat(os.path.join(workdir, "hl")).st_nlink == 2
    for i in range(100):
        os.unlink(os.path.join(workdir, "d1", f"f{i}"))
    os.rmdir(os.path.join(workdir, "d1"))
    os.rename(os.path.join(workdir, "d2"), os.path.join(workdir, "d3", "d2"))
    os.unlink(os.path.join(workdir, "d0", "f0"))
    os.link(os.path.join(workdir, "d4", "f4"), os.path.join(workdir, "hl2"))
    zero.remount()
    names = sorted(os.listdir(workdir))
    assert names == sorted([f"d{d}" for d in range(20) if d not in (1, 2)] +
                           ["hl", "hl2"])
    assert os.stat(workdir).st_nlink == 2 + 18
    assert os.stat(os.path.join(workdir, "d3")).st_nlink == 3
    assert os.stat(os.path.join(workdir, "hl")).st_nlink == 1
    assert os.stat(os.path.join(workdir, "hl2")).st_nlink == 2
    with open(os.path.join(workdir, "hl"), "rb") as f:
        assert f.read() == os.path.join(workdir, "d0", "f0").encode()
    for i in range(100):
        n = os.path.join(workdir, "d3", "d2", f"f{i}")
        with open(n, "rb") as f:
            assert f.read() == os.path.join(workdir, "d2", f"f{i}").encode()
    zero.umount()
    p = zero.fsck()
    zero.mount()
    assert p.returncode == 0, p.stdout + p.stderr


def _version(i, v):
    r = random.Random(i * 100003 + v)
    return r.randbytes(r.randint(0, 2 * MiB))


def test_kill9_atomic_replace(workdir, zero):
    """The write-temp, fsync, rename, fsync-directory pattern is atomic
    and durable across a kill -9: each file is afterwards exactly the last
    version whose replacement completed, or the one being installed."""
    nfiles = 5
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            dfd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
            v = 0
            while True:
                for i in range(nfiles):
                    tmp = os.path.join(workdir, f"tmp{i}")
                    _write_synced(tmp, _version(i, v))
                    os.rename(tmp, os.path.join(workdir, f"file{i}"))
                    os.fsync(dfd)
                    os.write(wfd, f"{i} {v}\n".encode())
                v += 1
        except BaseException:
            pass
        finally:
            os._exit(0)
    os.close(wfd)
    done = {}
    try:
        time.sleep(1.5)
        zero.kill9()
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        with os.fdopen(rfd) as f:
            for line in f:
                i, v = map(int, line.split())
                done[i] = v
    try:
        zero.run("umount", zero.mnt, timeout=60)
        zero.mount()
        assert done, "no replacement completed before the kill"
        for i in range(nfiles):
            p = os.path.join(workdir, f"file{i}")
            if i not in done:
                if os.path.exists(p):
                    with open(p, "rb") as f:
                        assert f.read() == _version(i, 0)
                continue
            with open(p, "rb") as f:
                got = f.read()
            v = done[i]
            assert got in (_version(i, v), _version(i, v + 1)), \
                f"file{i}: neither version {v} (completed) nor {v + 1}"
        zero.umount()
        p = zero.fsck()
        assert p.returncode == 0, p.stdout + p.stderr
        zero.mount()
    finally:
        zero.ensure_mounted()
