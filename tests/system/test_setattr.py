"""setattr: mode, uid/gid (with setuid/setgid clearing), size, atime/mtime
(UTIME_NOW, UTIME_OMIT, nanoseconds), and when ctime/mtime change."""

import errno
import os
import stat
import time

import pytest

from sysutil import (EXTRA_GROUP, NOBODY, OTHER, UTIME_NOW, UTIME_OMIT,
                     as_user, expect_errno, read_file, user_errno, utimensat,
                     write_file)

OLD = 1_000_000_000_123_456_789   # an ns timestamp far in the past


def _age(path):
    """Set atime/mtime far into the past, and let the clock move on so that
    a later ctime is strictly greater than the current one."""
    os.utime(path, ns=(OLD, OLD), follow_symlinks=False)
    time.sleep(0.02)
    return os.lstat(path)


def test_chmod(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"x")
    for mode in (0o000, 0o644, 0o755, 0o7777, 0o4755, 0o2755, 0o1700, 0o600):
        os.chmod(p, mode)
        assert stat.S_IMODE(os.stat(p).st_mode) == mode
        assert stat.S_ISREG(os.stat(p).st_mode)
    d = os.path.join(workdir, "d")
    os.mkdir(d)
    os.chmod(d, 0o3777)
    st = os.stat(d)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o3777
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fchmod(fd, 0o640)
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o640
    finally:
        os.close(fd)


def test_chmod_ctime(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"x")
    before = _age(p)
    os.chmod(p, 0o600)
    st = os.stat(p)
    assert st.st_ctime_ns > before.st_ctime_ns
    assert st.st_mtime_ns == OLD and st.st_atime_ns == OLD


def test_chmod_permissions(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"x")
    os.chown(p, NOBODY, NOBODY)
    os.chmod(workdir, 0o777)
    # the owner may chmod; somebody else may not
    as_user(lambda: os.chmod("f", 0o600), workdir, uid=NOBODY)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert user_errno(lambda: os.chmod("f", 0o644), workdir,
                      uid=OTHER) == errno.EPERM
    # an owner outside the file's group cannot set S_ISGID: it is cleared
    os.chown(p, NOBODY, EXTRA_GROUP)
    as_user(lambda: os.chmod("f", 0o2755), workdir, uid=NOBODY)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o755
    # ... but can when a member of that group
    as_user(lambda: os.chmod("f", 0o2755), workdir, uid=NOBODY,
            groups=[EXTRA_GROUP])
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o2755
    # owner may set S_ISUID on own file
    as_user(lambda: os.chmod("f", 0o4700), workdir, uid=NOBODY)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o4700


def test_chown(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"x")
    before = _age(p)
    os.chown(p, NOBODY, OTHER)
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (NOBODY, OTHER)
    assert st.st_ctime_ns > before.st_ctime_ns
    assert st.st_mtime_ns == OLD
    os.chown(p, -1, 1234)
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (NOBODY, 1234)
    os.chown(p, 4321, -1)
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (4321, 1234)
    # large ids survive
    os.chown(p, 2**32 - 2, 2**31 + 5)
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (2**32 - 2, 2**31 + 5)
    # symlinks themselves (lchown) and directories
    os.symlink("f", os.path.join(workdir, "s"))
    os.lchown(os.path.join(workdir, "s"), OTHER, OTHER)
    assert os.lstat(os.path.join(workdir, "s")).st_uid == OTHER
    assert os.stat(p).st_uid == 2**32 - 2
    d = os.path.join(workdir, "d")
    os.mkdir(d)
    os.chown(d, NOBODY, NOBODY)
    assert os.stat(d).st_uid == NOBODY


def test_chown_permissions(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"x")
    os.chown(p, NOBODY, NOBODY)
    # not even the owner may give a file away
    assert user_errno(lambda: os.chown("f", OTHER, -1), workdir,
                      uid=NOBODY) == errno.EPERM
    # the owner may change the group to one it is a member of ...
    as_user(lambda: os.chown("f", -1, EXTRA_GROUP), workdir, uid=NOBODY,
            groups=[EXTRA_GROUP])
    assert os.stat(p).st_gid == EXTRA_GROUP
    # ... but not to another group
    assert user_errno(lambda: os.chown("f", -1, OTHER), workdir,
                      uid=NOBODY) == errno.EPERM
    # a stranger may do neither
    assert user_errno(lambda: os.chown("f", -1, OTHER), workdir,
                      uid=OTHER) == errno.EPERM
    # chown to the current owner and group is allowed for the owner
    as_user(lambda: os.chown("f", NOBODY, EXTRA_GROUP), workdir, uid=NOBODY,
            groups=[EXTRA_GROUP])


def test_chown_clears_setuid_setgid(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"x")
    # root chown of a regular file: S_ISUID cleared; S_ISGID cleared when
    # group-executable (otherwise it is not a setgid-execute file)
    os.chmod(p, 0o6755)
    os.chown(p, NOBODY, NOBODY)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o755
    os.chmod(p, 0o6745)
    os.chown(p, OTHER, -1)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o2745
    os.chmod(p, 0o4700)
    os.chown(p, -1, OTHER)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o700
    # even chown(-1, -1), which changes nothing, and fchown
    os.chmod(p, 0o6755)
    os.chown(p, -1, -1)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o755
    os.chmod(p, 0o6745)
    fd = os.open(p, os.O_RDONLY)
    os.fchown(fd, -1, -1)
    os.close(fd)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o2745
    # other changes of attributes leave them
    os.chmod(p, 0o6755)
    from sysutil import UTIME_OMIT, utimensat
    utimensat(p, UTIME_OMIT, UTIME_OMIT)
    utimensat(p, 10**9, UTIME_OMIT)
    utimensat(p, None, None)
    os.truncate(p, 1)
    with open(p, "r+b") as f:
        f.write(b"r")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o6755
    # on a directory the bits stay
    d = os.path.join(workdir, "d")
    os.mkdir(d)
    os.chmod(d, 0o6775)
    os.chown(d, NOBODY, NOBODY)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o6775
    # owner chgrp to own group clears them too
    os.chown(p, NOBODY, NOBODY)
    os.chmod(p, 0o6775)
    as_user(lambda: os.chown("f", -1, EXTRA_GROUP), workdir, uid=NOBODY,
            groups=[EXTRA_GROUP])
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o775


def test_write_clears_setuid_setgid(workdir):
    os.chmod(workdir, 0o777)
    p = os.path.join(workdir, "f")
    write_file(p, b"x")
    # an unprivileged write clears S_ISUID and S_ISGID (group-exec)
    os.chmod(p, 0o6777)
    def w():
        fd = os.open("f", os.O_WRONLY)
        os.write(fd, b"y")
        os.close(fd)
    as_user(w, workdir, uid=NOBODY)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o777
    assert read_file(p) == b"y"
    # truncate by an unprivileged user clears them as well
    os.chmod(p, 0o6777)
    as_user(lambda: os.truncate("f", 0), workdir, uid=NOBODY)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o777
    assert os.stat(p).st_size == 0
    os.chmod(p, 0o6666)
    as_user(lambda: os.truncate("f", 1), workdir, uid=NOBODY)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o666
    # root writing or truncating does not clear them (CAP_FSETID)
    os.chmod(p, 0o6777)
    write_file(p, b"root")
    os.truncate(p, 2)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o6777
    # S_ISUID always goes; S_ISGID without group-execute goes only when
    # the writer is not a member of the file's group (Linux
    # setattr_should_drop_sgid), with group-execute always
    for mode, groups, after in ((0o2666, [], 0o666), (0o2666, [0], 0o2666),
                                (0o4666, [0], 0o666), (0o6666, [], 0o666),
                                (0o6666, [0], 0o2666), (0o2676, [0], 0o676)):
        os.chmod(p, mode)
        as_user(w, workdir, uid=NOBODY, groups=groups)
        assert stat.S_IMODE(os.stat(p).st_mode) == after, \
            (oct(mode), groups)
    # so do fallocate, hole punching and copy_file_range into the file
    from sysutil import fallocate, punch_hole

    def falloc():
        fd = os.open("f", os.O_WRONLY)
        fallocate(fd, 0, 0, 20000)
        os.close(fd)

    def punch():
        fd = os.open("f", os.O_WRONLY)
        punch_hole(fd, 0, 4096)
        os.close(fd)

    def copy():
        fs = os.open("src", os.O_RDONLY)
        fd = os.open("f", os.O_WRONLY)
        os.copy_file_range(fs, fd, 100, 0, 0)
        os.close(fs)
        os.close(fd)

    write_file(os.path.join(workdir, "src"), b"y" * 100)
    for fn in (falloc, punch, copy):
        os.chmod(p, 0o6777)
        as_user(fn, workdir, uid=NOBODY)
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o777, fn.__name__
    # the owner writing clears them as well
    os.chown(p, NOBODY, NOBODY)
    os.chmod(p, 0o6770)
    as_user(w, workdir, uid=NOBODY)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o770


def test_truncate(workdir, target):
    p = os.path.join(workdir, "f")
    data = bytes(range(256)) * 64
    write_file(p, data)
    before = _age(p)
    os.truncate(p, 100)
    st = os.stat(p)
    assert st.st_size == 100
    assert st.st_mtime_ns > OLD and st.st_ctime_ns > before.st_ctime_ns
    assert read_file(p) == data[:100]
    # grow: zeros, old bytes never come back
    os.truncate(p, 20000)
    assert read_file(p) == data[:100] + bytes(19900)
    os.truncate(p, 0)
    assert read_file(p) == b""
    os.truncate(p, 5000)
    assert read_file(p) == bytes(5000)
    # ftruncate on a descriptor, unaligned sizes around pages
    fd = os.open(p, os.O_RDWR)
    try:
        os.pwrite(fd, b"\xaa" * 8192, 0)
        os.ftruncate(fd, 4097)
        assert os.fstat(fd).st_size == 4097
        os.ftruncate(fd, 8192)
        assert os.pread(fd, 8192, 0) == b"\xaa" * 4097 + bytes(4095)
    finally:
        os.close(fd)
    with expect_errno(errno.EINVAL):
        os.truncate(p, -1)
    fd = os.open(p, os.O_RDONLY)
    try:
        with expect_errno(errno.EINVAL):
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)
    with expect_errno(errno.EISDIR):
        os.truncate(workdir, 0)
    # truncate to the same size by name still updates mtime (ext4 does);
    # with the writeback cache the kernel keeps a file's times and changes
    # them only when the size changes (as tmpfs: POSIX asks only then)
    _age(p)
    os.truncate(p, os.stat(p).st_size)
    if target.writeback:
        assert os.stat(p).st_mtime_ns == OLD
    else:
        assert os.stat(p).st_mtime_ns > OLD
    # through a descriptor it does on both
    _age(p)
    fd = os.open(p, os.O_RDWR)
    try:
        os.ftruncate(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    assert os.stat(p).st_mtime_ns > OLD


def test_truncate_permissions(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"0123456789")
    os.chmod(p, 0o644)
    assert user_errno(lambda: os.truncate("f", 1), workdir) == errno.EACCES
    os.chmod(p, 0o646)
    as_user(lambda: os.truncate("f", 3), workdir)
    assert read_file(p) == b"012"


def test_utimens_ns(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"x")
    for a, m in ((1, 2), (1_600_000_000_123_456_789, 1_700_000_000_999_999_999),
                 (0, 0), (OLD, OLD + 1), (4_000_000_000_000_000_001, 5),
                 (-1, -123_456_789_012)):
        os.utime(p, ns=(a, m))
        st = os.stat(p)
        assert (st.st_atime_ns, st.st_mtime_ns) == (a, m)
    # directories and symlinks (without following)
    os.utime(workdir, ns=(123_456_789_012, 987_654_321_098))
    st = os.stat(workdir)
    assert (st.st_atime_ns, st.st_mtime_ns) == (123_456_789_012,
                                                987_654_321_098)
    s = os.path.join(workdir, "s")
    os.symlink("f", s)
    utimensat(s, 111, 222, follow=False)
    st = os.lstat(s)
    assert (st.st_atime_ns, st.st_mtime_ns) == (111, 222)
    assert os.stat(p).st_mtime_ns != 222


def test_utimens_now_omit(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"x")
    before = _age(p)
    t0 = time.time_ns()
    utimensat(p, UTIME_OMIT, UTIME_NOW)
    st = os.stat(p)
    assert st.st_atime_ns == OLD
    assert abs(st.st_mtime_ns - t0) < 5 * 10**9
    assert st.st_ctime_ns > before.st_ctime_ns
    before = _age(p)
    utimensat(p, UTIME_NOW, UTIME_OMIT)
    st = os.stat(p)
    assert st.st_mtime_ns == OLD
    assert abs(st.st_atime_ns - t0) < 5 * 10**9
    assert st.st_ctime_ns > before.st_ctime_ns
    before = _age(p)
    utimensat(p, UTIME_OMIT, UTIME_OMIT)
    st = os.stat(p)
    assert (st.st_atime_ns, st.st_mtime_ns) == (OLD, OLD)
    utimensat(p, None, None)  # times == NULL: both now
    st = os.stat(p)
    assert st.st_atime_ns > OLD and st.st_mtime_ns > OLD
    utimensat(p, 5 * 10**9 + 7, UTIME_OMIT)
    st = os.stat(p)
    assert st.st_atime_ns == 5 * 10**9 + 7 and st.st_mtime_ns > OLD


def test_utimens_permissions(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"x")
    os.chmod(p, 0o644)
    # a stranger without write permission: neither now nor explicit times
    assert user_errno(lambda: utimensat("f", None, None),
                      workdir) == errno.EACCES
    assert user_errno(lambda: utimensat("f", 1, 1), workdir) == errno.EPERM
    # with write permission: "now" is allowed, explicit times are not
    os.chmod(p, 0o646)
    as_user(lambda: utimensat("f", None, None), workdir)
    as_user(lambda: utimensat("f", UTIME_NOW, UTIME_NOW), workdir)
    assert user_errno(lambda: utimensat("f", 1, 1), workdir) == errno.EPERM
    assert user_errno(lambda: utimensat("f", UTIME_NOW, 1),
                      workdir) == errno.EPERM
    # the owner may set anything
    os.chown(p, NOBODY, NOBODY)
    os.chmod(p, 0o444)
    as_user(lambda: utimensat("f", 7, 8), workdir)
    st = os.stat(p)
    assert (st.st_atime_ns, st.st_mtime_ns) == (7, 8)


def test_ctime_mtime_rules(workdir):
    """Which operations change mtime/ctime of the file and its directory."""
    p = os.path.join(workdir, "f")
    write_file(p, b"abc")

    # write: file mtime+ctime
    before = _age(p)
    fd = os.open(p, os.O_WRONLY)
    os.write(fd, b"z")
    os.close(fd)
    st = os.stat(p)
    assert st.st_mtime_ns > OLD and st.st_ctime_ns > before.st_ctime_ns

    # read: neither mtime nor ctime
    before = _age(p)
    read_file(p)
    st = os.stat(p)
    assert st.st_mtime_ns == OLD and st.st_ctime_ns == before.st_ctime_ns

    # open without O_TRUNC and close without writing: nothing
    fd = os.open(p, os.O_RDWR)
    os.close(fd)
    st = os.stat(p)
    assert st.st_mtime_ns == OLD and st.st_ctime_ns == before.st_ctime_ns

    # O_TRUNC: mtime+ctime, also when the file is already empty (POSIX:
    # "if O_TRUNC is set and the file did previously exist")
    for _ in range(2):
        before = _age(p)
        os.close(os.open(p, os.O_WRONLY | os.O_TRUNC))
        st = os.stat(p)
        assert st.st_size == 0
        assert st.st_mtime_ns > OLD and st.st_ctime_ns > before.st_ctime_ns

    # link and unlink: file ctime; directory mtime+ctime
    before, dbefore = _age(p), _age(workdir)
    os.link(p, os.path.join(workdir, "l"))
    st, dst = os.stat(p), os.stat(workdir)
    assert st.st_ctime_ns > before.st_ctime_ns and st.st_mtime_ns == OLD
    assert dst.st_mtime_ns > OLD and dst.st_ctime_ns > dbefore.st_ctime_ns
    before, dbefore = _age(p), _age(workdir)
    os.unlink(os.path.join(workdir, "l"))
    st, dst = os.stat(p), os.stat(workdir)
    assert st.st_ctime_ns > before.st_ctime_ns and st.st_mtime_ns == OLD
    assert dst.st_mtime_ns > OLD and dst.st_ctime_ns > dbefore.st_ctime_ns

    # rename: the moved inode's ctime, both directories' mtime+ctime
    d2 = os.path.join(workdir, "d2")
    os.mkdir(d2)
    before, dbefore, d2before = _age(p), _age(workdir), _age(d2)
    os.rename(p, os.path.join(d2, "f"))
    p = os.path.join(d2, "f")
    st, dst, d2st = os.stat(p), os.stat(workdir), os.stat(d2)
    assert st.st_ctime_ns > before.st_ctime_ns and st.st_mtime_ns == OLD
    assert dst.st_mtime_ns > OLD and dst.st_ctime_ns > dbefore.st_ctime_ns
    assert d2st.st_mtime_ns > OLD and d2st.st_ctime_ns > d2before.st_ctime_ns

    # create, mkdir, symlink, rmdir in a directory: its mtime+ctime
    for op in (lambda: write_file(os.path.join(d2, "new"), b""),
               lambda: os.mkdir(os.path.join(d2, "sub")),
               lambda: os.symlink("x", os.path.join(d2, "sym")),
               lambda: os.rmdir(os.path.join(d2, "sub")),
               lambda: os.mkfifo(os.path.join(d2, "fifo"))):
        dbefore = _age(d2)
        op()
        dst = os.stat(d2)
        assert dst.st_mtime_ns > OLD and dst.st_ctime_ns > dbefore.st_ctime_ns

    # setxattr: ctime only
    before = _age(p)
    os.setxattr(p, "user.k", b"v")
    st = os.stat(p)
    assert st.st_ctime_ns > before.st_ctime_ns and st.st_mtime_ns == OLD

    # ctime can never be set explicitly: utime moves it to "now"
    t0 = time.time_ns()
    os.utime(p, ns=(OLD, OLD))
    assert os.stat(p).st_ctime_ns >= t0 - 10**9


def test_timestamps_of_new_files(workdir):
    t0 = time.time_ns()
    p = os.path.join(workdir, "f")
    write_file(p, b"")
    st = os.stat(p)
    for t in (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns):
        assert abs(t - t0) < 5 * 10**9
    # nanosecond resolution: not all of several new files' times are
    # whole seconds or microseconds
    stamps = []
    for i in range(5):
        q = os.path.join(workdir, f"g{i}")
        write_file(q, b"")
        stamps.append(os.stat(q).st_mtime_ns)
        time.sleep(0.003)
    assert any(s % 1000 for s in stamps), stamps


def test_attributes_stable_when_cache_dropped(workdir):
    """What stat reports right after an operation is what the filesystem
    stored: dropping the kernel's caches (which makes FUSE ask the daemon
    again) changes no size or timestamp."""
    import mmap

    from sysutil import FALLOC_FL_KEEP_SIZE, drop_caches, fallocate, \
        punch_hole

    p = os.path.join(workdir, "f")

    def key(path):
        st = os.stat(path)
        return (st.st_size, st.st_mode, st.st_nlink, st.st_atime_ns,
                st.st_mtime_ns, st.st_ctime_ns)

    def write():
        fd = os.open(p, os.O_WRONLY)
        os.pwrite(fd, b"w" * 100000, 12345)
        os.close(fd)

    def append_big():
        fd = os.open(p, os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"a" * (5 << 20))
        os.close(fd)

    def mmap_write():
        fd = os.open(p, os.O_RDWR)
        with mmap.mmap(fd, 8192) as m:
            m[10:20] = b"0123456789"
        os.close(fd)

    def copy():
        write_file(p + ".src", b"s" * 70000)
        fs = os.open(p + ".src", os.O_RDONLY)
        fd = os.open(p, os.O_WRONLY)
        os.copy_file_range(fs, fd, 70000, 0, 3 << 20)
        os.close(fs)
        os.close(fd)

    def falloc():
        fd = os.open(p, os.O_WRONLY)
        fallocate(fd, 0, 0, 9 << 20)
        os.close(fd)

    def falloc_keep():
        fd = os.open(p, os.O_WRONLY)
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 20 << 20)
        os.close(fd)

    def punch():
        fd = os.open(p, os.O_WRONLY)
        punch_hole(fd, 4096, 1 << 20)
        os.close(fd)

    def rewrite():
        # O_TRUNC and the write in one clock tick of a file left alone for a
        # while: with the writeback cache the kernel keeps the truncate's time
        # and sends no other, so the write-back must not set one of its own
        time.sleep(1.1)
        write_file(p, b"r" * 300000)

    ops = [("create", lambda: write_file(p, b"x" * 5000)),
           ("write", write), ("rewrite", rewrite), ("append", append_big),
           ("mmap write", mmap_write), ("copy_file_range", copy),
           ("fallocate", falloc), ("fallocate keep", falloc_keep),
           ("punch", punch), ("truncate", lambda: os.truncate(p, 7777)),
           ("chmod", lambda: os.chmod(p, 0o751)),
           ("utime", lambda: os.utime(p, ns=(OLD, OLD + 5))),
           ("link", lambda: os.link(p, p + ".l")),
           ("setxattr", lambda: os.setxattr(p, "user.a", b"1"))]
    for name, op in ops:
        time.sleep(0.01)
        op()
        a = key(p)
        drop_caches()
        b = key(p)
        assert a == b, f"after {name}: {a} became {b}"
    assert key(workdir) == key(workdir)
    a = key(workdir)
    drop_caches()
    assert key(workdir) == a


def test_atime_on_access(workdir):
    """Reads and directory listings update atime as the mount's atime
    mode promises (relatime, the default, or strictatime)."""
    from sysutil import mount_options
    opts = mount_options(workdir)
    if "noatime" in opts:
        pytest.skip("mounted noatime")
    p = os.path.join(workdir, "f")
    write_file(p, b"data")
    d = os.path.join(workdir, "d")
    os.mkdir(d)
    # atime older than mtime: relatime updates it on the next access
    for path in (p, d):
        os.utime(path, ns=(OLD, OLD + 10**9))
    t0 = time.time_ns()
    read_file(p)
    os.listdir(d)
    for path in (p, d):
        st = os.stat(path)
        assert st.st_atime_ns >= t0 - 10**9, path
        assert st.st_mtime_ns == OLD + 10**9
    # relatime: atime newer than mtime/ctime and recent: no update needed,
    # but never may a read move mtime or ctime
    c = os.stat(p).st_ctime_ns
    read_file(p)
    assert os.stat(p).st_ctime_ns == c
    # an atime more than a day old is refreshed even if newer than mtime
    os.utime(p, ns=(OLD + 2 * 10**9, OLD + 10**9))
    read_file(p)
    assert os.stat(p).st_atime_ns >= t0 - 10**9
