"""open/create (O_TRUNC, O_APPEND, O_EXCL), read, write, flush, release,
fsync, open-unlinked files, sparse files, fallocate, SEEK_DATA/SEEK_HOLE,
copy_file_range."""

import errno
import os
import random
import stat
import time

import pytest

from sysutil import (FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, drop_caches,
                     expect_errno, fallocate, pread_all, punch_hole,
                     pwrite_all, read_file, write_file)

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40


def j(*a):
    return os.path.join(*a)


def test_create_flags(workdir):
    p = j(workdir, "f")
    old = os.umask(0o022)
    try:
        fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o777)
    finally:
        os.umask(old)
    os.write(fd, b"0123456789")
    os.close(fd)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o755
    # O_CREAT on an existing file neither truncates nor changes the mode
    os.close(os.open(p, os.O_CREAT | os.O_RDWR, 0o600))
    assert read_file(p) == b"0123456789"
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o755
    # O_EXCL
    with expect_errno(errno.EEXIST):
        os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.symlink("dangling", j(workdir, "s"))
    with expect_errno(errno.EEXIST):
        os.open(j(workdir, "s"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    assert not os.path.exists(j(workdir, "dangling"))
    # O_CREAT through a dangling symlink creates the target
    os.close(os.open(j(workdir, "s"), os.O_CREAT | os.O_WRONLY, 0o644))
    assert os.path.isfile(j(workdir, "dangling"))
    fd = os.open(j(workdir, "new"), os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    os.close(fd)
    assert os.stat(j(workdir, "new")).st_size == 0
    # O_TRUNC
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    assert os.fstat(fd).st_size == 0
    os.write(fd, b"ab")
    os.close(fd)
    assert read_file(p) == b"ab"
    # errors
    with expect_errno(errno.ENOENT):
        os.open(j(workdir, "missing"), os.O_RDONLY)
    with expect_errno(errno.EISDIR):
        os.open(workdir, os.O_WRONLY)
    with expect_errno(errno.EISDIR):
        os.open(workdir, os.O_RDWR)
    with expect_errno(errno.ENOTDIR):
        os.open(p, os.O_RDONLY | os.O_DIRECTORY)
    with expect_errno(errno.ENOTDIR):
        os.open(j(p, "x"), os.O_CREAT | os.O_WRONLY)
    with expect_errno(errno.EISDIR):
        os.open(workdir, os.O_CREAT | os.O_WRONLY)


def test_append(workdir):
    p = j(workdir, "f")
    write_file(p, b"start")
    fd = os.open(p, os.O_WRONLY | os.O_APPEND)
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"-one")
        assert os.lseek(fd, 0, os.SEEK_CUR) == 9
        # another writer extends the file; append still goes to the end
        write2 = os.open(p, os.O_WRONLY)
        os.pwrite(write2, b"XXXXXXXXXXXX", 9)
        os.close(write2)
        os.write(fd, b"-two")
    finally:
        os.close(fd)
    assert read_file(p) == b"start-oneXXXXXXXXXXXX-two"
    fd = os.open(p, os.O_RDWR | os.O_APPEND)
    try:
        os.write(fd, b"!")
        assert os.pread(fd, 5, 0) == b"start"
    finally:
        os.close(fd)
    assert read_file(p).endswith(b"-two!")


def test_read_write_patterns(workdir):
    p = j(workdir, "f")
    rnd = random.Random(1)
    data = rnd.randbytes(3 * MiB + 12345)
    write_file(p, data)
    assert os.stat(p).st_size == len(data)
    assert read_file(p) == data
    fd = os.open(p, os.O_RDWR)
    try:
        # reads at and across EOF
        assert os.pread(fd, 100, len(data)) == b""
        assert os.pread(fd, 100, len(data) + 10 * MiB) == b""
        assert os.pread(fd, 100, len(data) - 10) == data[-10:]
        # unaligned overwrites across page and MiB boundaries
        buf = bytearray(data)
        for off, n in ((0, 1), (4095, 2), (MiB - 3, 7), (2 * MiB + 1, 70000),
                       (len(data) - 1, 1), (len(data) + 5, 3)):
            chunk = rnd.randbytes(n)
            os.pwrite(fd, chunk, off)
            if off > len(buf):
                buf += bytes(off - len(buf))
            buf[off:off + n] = chunk
        assert os.fstat(fd).st_size == len(buf)
        assert pread_all(fd, len(buf) + 10) == bytes(buf)
        # sequential read/write with the file offset
        os.lseek(fd, 10, os.SEEK_SET)
        os.write(fd, b"seq")
        assert os.lseek(fd, 0, os.SEEK_CUR) == 13
        assert os.read(fd, 4) == bytes(buf[13:17])
        assert os.lseek(fd, -1, os.SEEK_END) == len(buf) - 1
        with expect_errno(errno.EINVAL):
            os.lseek(fd, -1, os.SEEK_SET)
    finally:
        os.close(fd)
    drop_caches()
    buf[10:13] = b"seq"
    assert read_file(p) == bytes(buf)


def test_read_write_errors(workdir):
    p = j(workdir, "f")
    write_file(p, b"abc")
    fd = os.open(p, os.O_RDONLY)
    try:
        with expect_errno(errno.EBADF):
            os.write(fd, b"x")
    finally:
        os.close(fd)
    fd = os.open(p, os.O_WRONLY)
    try:
        with expect_errno(errno.EBADF):
            os.read(fd, 1)
    finally:
        os.close(fd)
    fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with expect_errno(errno.EISDIR):
            os.read(fd, 1)
    finally:
        os.close(fd)


def test_flush_release_multiple_descriptors(workdir):
    p = j(workdir, "f")
    fd1 = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    fd2 = os.dup(fd1)
    fd3 = os.open(p, os.O_RDWR)
    os.write(fd1, b"one")
    os.close(fd1)                      # flush, no release (dup open)
    os.write(fd2, b"two")              # shares the offset
    os.pwrite(fd3, b"3", 6)
    os.close(fd2)                      # flush + release of that file
    assert os.pread(fd3, 100, 0) == b"onetwo3"
    os.close(fd3)
    assert read_file(p) == b"onetwo3"
    # after release the file is no longer busy: it can be removed and
    # its name reused at once
    os.unlink(p)
    write_file(p, b"again")
    assert read_file(p) == b"again"


def test_fsync_fdatasync(workdir):
    p = j(workdir, "f")
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"x" * 100000)
        os.fsync(fd)
        os.fdatasync(fd)
        os.ftruncate(fd, 10)
        os.fsync(fd)
    finally:
        os.close(fd)
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)           # fsync of a read-only descriptor is fine
    finally:
        os.close(fd)
    dfd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)          # fsyncdir
        os.fdatasync(dfd)
    finally:
        os.close(dfd)
    assert read_file(p) == b"x" * 10


def _usage_probe(target, workdir):
    """A function returning bytes in use where the target keeps file data:
    on Zero the cache's data directory (CACHE/data, or CACHE), else the
    filesystem of the test directory."""
    if target.is_zero:
        data_dir = os.path.join(target.cache, "data")
        if not os.path.isdir(data_dir):
            data_dir = target.cache

        def used():
            total = 0
            for root, _dirs, files in os.walk(data_dir):
                for f in files:
                    try:
                        total += os.lstat(os.path.join(root, f)).st_blocks
                    except FileNotFoundError:
                        pass
            return total * 512
        return used

    def used():
        st = os.statvfs(workdir)
        return (st.f_blocks - st.f_bfree) * st.f_frsize
    return used


def test_unlinked_open_file(workdir, target):
    p = j(workdir, "f")
    size = 128 * MiB
    used = _usage_probe(target, workdir)
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        block = random.Random(2).randbytes(MiB)
        for i in range(size // MiB):
            pwrite_all(fd, block, i * MiB)
        os.fsync(fd)
        before = used()     # the file's data is stored somewhere now
        fd2 = os.open(p, os.O_RDONLY)
        os.unlink(p)
        assert os.listdir(workdir) == []
        with expect_errno(errno.ENOENT):
            os.stat(p)
        st = os.fstat(fd)
        assert st.st_nlink == 0 and st.st_size == size
        # still fully usable: read, write, truncate, chmod, xattrs
        assert os.pread(fd2, MiB, 5 * MiB) == block
        os.pwrite(fd, b"late write", 3)
        assert os.pread(fd2, 10, 3) == b"late write"
        os.fchmod(fd, 0o600)
        assert stat.S_IMODE(os.fstat(fd2).st_mode) == 0o600
        os.setxattr(fd, "user.x", b"1")
        assert os.getxattr(fd2, "user.x") == b"1"
        os.ftruncate(fd, size + 100)
        assert os.fstat(fd2).st_size == size + 100
        os.fsync(fd)
        drop_caches()
        assert os.pread(fd2, MiB, 7 * MiB) == block
        assert os.pread(fd2, 10, 3) == b"late write"
        # a new file under the same name is a different inode
        write_file(p, b"new")
        assert os.stat(p).st_ino != st.st_ino
        assert os.pread(fd2, 10, 3) == b"late write"
        os.unlink(p)
        os.close(fd2)
        assert os.pread(fd, 10, 3) == b"late write"   # one descriptor left
    finally:
        os.close(fd)
    # after the last close the data is freed (possibly asynchronously)
    deadline = time.time() + 15
    while True:
        freed = before - used()
        if freed >= size // 2 or time.time() > deadline:
            break
        time.sleep(0.1)
    assert freed >= size // 2, f"only {freed} bytes freed after last close"


def test_sparse_1tib(workdir):
    p = j(workdir, "sparse")
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.pwrite(fd, b"head", 0)
        os.pwrite(fd, b"tail of a big file", TiB + 12345)
        size = TiB + 12345 + 18
        st = os.fstat(fd)
        assert st.st_size == size
        # holes take no space
        assert st.st_blocks * 512 < 64 * MiB
        assert os.pread(fd, 18, TiB + 12345) == b"tail of a big file"
        assert os.pread(fd, 4, 0) == b"head"
        assert os.pread(fd, 4096, TiB // 2) == bytes(4096)
        assert os.pread(fd, 100, TiB + 12345 - 50) == \
            bytes(50) + b"tail of a big file"
        assert os.pread(fd, 100, size) == b""
        # data is found by SEEK_DATA across the terabyte of hole
        assert os.lseek(fd, 4096 * 1024, os.SEEK_DATA) <= TiB + 12345
        assert os.lseek(fd, 4096 * 1024, os.SEEK_DATA) >= TiB - 64 * MiB
        os.ftruncate(fd, 4 * TiB)
        assert os.fstat(fd).st_size == 4 * TiB
        assert os.pread(fd, 10, 4 * TiB - 10) == bytes(10)
        os.pwrite(fd, b"!", 4 * TiB - 1)
        os.fsync(fd)
    finally:
        os.close(fd)
    drop_caches()
    fd = os.open(p, os.O_RDONLY)
    try:
        assert os.pread(fd, 18, TiB + 12345) == b"tail of a big file"
        assert os.pread(fd, 2, 4 * TiB - 2) == b"\0!"
        assert os.fstat(fd).st_blocks * 512 < 64 * MiB
    finally:
        os.close(fd)
    os.truncate(p, 3)
    assert read_file(p) == b"hea"


def test_fallocate_default(workdir):
    p = j(workdir, "f")
    write_file(p, b"abc")
    fd = os.open(p, os.O_RDWR)
    try:
        fallocate(fd, 0, 1000, 4 * MiB)
        st = os.fstat(fd)
        assert st.st_size == 1000 + 4 * MiB
        # the space is reserved: it shows in st_blocks as on ext4/tmpfs
        assert st.st_blocks * 512 >= 4 * MiB
        assert pread_all(fd, st.st_size) == b"abc" + bytes(st.st_size - 3)
        # inside the file: size unchanged, data untouched
        os.pwrite(fd, b"keep", 2000)
        fallocate(fd, 0, 0, 10000)
        assert os.fstat(fd).st_size == 1000 + 4 * MiB
        assert os.pread(fd, 4, 2000) == b"keep"
        os.posix_fallocate(fd, 8 * MiB, 100)
        assert os.fstat(fd).st_size == 8 * MiB + 100
        with expect_errno(errno.EINVAL):
            fallocate(fd, 0, 0, 0)
        with expect_errno(errno.EINVAL):
            fallocate(fd, 0, -1, 10)
    finally:
        os.close(fd)
    fd = os.open(p, os.O_RDONLY)
    try:
        with expect_errno(errno.EBADF):
            fallocate(fd, 0, 0, 10)
    finally:
        os.close(fd)


def test_fallocate_keep_size(workdir):
    p = j(workdir, "f")
    write_file(p, b"abc")
    fd = os.open(p, os.O_RDWR)
    try:
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 8 * MiB)
        assert os.fstat(fd).st_size == 3
        assert os.fstat(fd).st_blocks * 512 >= 8 * MiB
        assert os.pread(fd, 100, 0) == b"abc"
        assert os.pread(fd, 100, MiB) == b""
        # the preallocated range reads as zeros once the file grows
        os.pwrite(fd, b"end", 6 * MiB)
        assert os.fstat(fd).st_size == 6 * MiB + 3
        assert pread_all(fd, 6 * MiB + 3) == b"abc" + bytes(6 * MiB - 3) + \
            b"end"
        os.ftruncate(fd, 10 * MiB)
        assert os.pread(fd, 4, 8 * MiB - 2) == bytes(4)
    finally:
        os.close(fd)
    drop_caches()
    assert os.stat(p).st_size == 10 * MiB


def test_fallocate_punch_hole(workdir):
    p = j(workdir, "f")
    rnd = random.Random(3)
    data = bytearray(rnd.randbytes(32 * MiB))
    write_file(p, data)
    fd = os.open(p, os.O_RDWR)
    try:
        os.fsync(fd)
        blocks = os.fstat(fd).st_blocks
        punch_hole(fd, 8 * MiB, 16 * MiB)
        data[8 * MiB:24 * MiB] = bytes(16 * MiB)
        # unaligned punches zero exactly the range
        for off, n in ((5, 10), (4095, 4098), (MiB + 17, 3 * 4096 + 5),
                       (32 * MiB - 7, 7)):
            punch_hole(fd, off, n)
            data[off:off + n] = bytes(n)
        # a punch past EOF changes nothing
        punch_hole(fd, 40 * MiB, MiB)
        st = os.fstat(fd)
        assert st.st_size == 32 * MiB
        assert pread_all(fd, 33 * MiB) == bytes(data)
        os.fsync(fd)
        assert os.fstat(fd).st_blocks < blocks - (8 * MiB) // 512, \
            (blocks, os.fstat(fd).st_blocks)
        # PUNCH_HOLE requires KEEP_SIZE
        with expect_errno(errno.EOPNOTSUPP):
            fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096)
        # writing into the hole again
        os.pwrite(fd, b"refill", 10 * MiB)
        data[10 * MiB:10 * MiB + 6] = b"refill"
    finally:
        os.close(fd)
    drop_caches()
    assert read_file(p) == bytes(data)


def test_seek_data_hole(workdir):
    p = j(workdir, "f")
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        # empty file: no data, SEEK_HOLE at 0 fails too (offset == size)
        with expect_errno(errno.ENXIO):
            os.lseek(fd, 0, os.SEEK_DATA)
        with expect_errno(errno.ENXIO):
            os.lseek(fd, 0, os.SEEK_HOLE)
        # data [0,64K) hole [64K,16M) data [16M,16M+64K) hole up to 40M
        os.pwrite(fd, b"\1" * 64 * KiB, 0)
        os.pwrite(fd, b"\2" * 64 * KiB, 16 * MiB)
        os.ftruncate(fd, 40 * MiB)
        os.fsync(fd)
        size = 40 * MiB
        assert os.lseek(fd, 0, os.SEEK_DATA) == 0
        h = os.lseek(fd, 0, os.SEEK_HOLE)
        assert 64 * KiB <= h <= 16 * MiB
        d = os.lseek(fd, h, os.SEEK_DATA)
        assert h < d <= 16 * MiB
        assert os.lseek(fd, 16 * MiB, os.SEEK_DATA) == 16 * MiB
        assert os.lseek(fd, 16 * MiB + 100, os.SEEK_DATA) == 16 * MiB + 100
        h2 = os.lseek(fd, 16 * MiB, os.SEEK_HOLE)
        assert 16 * MiB + 64 * KiB <= h2 <= size
        # nothing after the second data range: the tail is one hole
        with expect_errno(errno.ENXIO):
            os.lseek(fd, 24 * MiB, os.SEEK_DATA)
        assert os.lseek(fd, 24 * MiB, os.SEEK_HOLE) == 24 * MiB
        assert os.lseek(fd, size - 1, os.SEEK_HOLE) == size - 1
        # at and beyond EOF
        for off in (size, size + 1, 2 * size):
            with expect_errno(errno.ENXIO):
                os.lseek(fd, off, os.SEEK_DATA)
            with expect_errno(errno.ENXIO):
                os.lseek(fd, off, os.SEEK_HOLE)
        # data to the very end: the first hole is EOF
        os.pwrite(fd, b"\3" * 64 * KiB, size - 64 * KiB)
        assert os.lseek(fd, size - 10, os.SEEK_HOLE) == size
        assert 24 * MiB <= os.lseek(fd, 24 * MiB, os.SEEK_DATA) <= \
            size - 64 * KiB
        # punching makes a hole findable again
        punch_hole(fd, 0, 8 * MiB)
        assert 0 < os.lseek(fd, 0, os.SEEK_DATA) <= 16 * MiB
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 0
    finally:
        os.close(fd)


def test_copy_file_range(workdir):
    rnd = random.Random(4)
    src = j(workdir, "src")
    dst = j(workdir, "dst")
    data = rnd.randbytes(9 * MiB + 333)
    write_file(src, data)
    write_file(dst, b"")
    fs = os.open(src, os.O_RDONLY)
    fd = os.open(dst, os.O_RDWR)
    model = bytearray()

    def put(off, b):
        if off > len(model):
            model.extend(bytes(off - len(model)))
        model[off:off + len(b)] = b

    try:
        # whole file, in a loop as callers must
        off = 0
        while off < len(data):
            n = os.copy_file_range(fs, fd, len(data) - off, off, off)
            assert n > 0
            off += n
        put(0, data)
        assert os.fstat(fd).st_size == len(data)
        assert pread_all(fd, len(data)) == data
        # unaligned ranges, with a gap past the destination's EOF
        n = os.copy_file_range(fs, fd, 1000, 4097, len(data) + 5000)
        assert n == 1000
        put(len(data) + 5000, data[4097:5097])
        assert os.fstat(fd).st_size == len(data) + 6000
        assert os.pread(fd, 6000, len(data)) == bytes(5000) + \
            data[4097:5097]
        # past the source's EOF: short copy, then 0
        n = os.copy_file_range(fs, fd, 1000, len(data) - 10, 0)
        assert n == 10
        put(0, data[-10:])
        assert os.pread(fd, 10, 0) == data[-10:]
        assert os.copy_file_range(fs, fd, 1000, len(data) + 1, 0) == 0
        # using and advancing the file offsets
        os.lseek(fs, 100, os.SEEK_SET)
        os.lseek(fd, 200, os.SEEK_SET)
        assert os.copy_file_range(fs, fd, 50) == 50
        put(200, data[100:150])
        assert os.lseek(fs, 0, os.SEEK_CUR) == 150
        assert os.lseek(fd, 0, os.SEEK_CUR) == 250
        assert os.pread(fd, 50, 200) == data[100:150]
        # within one file, non-overlapping
        assert os.copy_file_range(fd, fd, 4096, 0, 8 * MiB) == 4096
        put(8 * MiB, model[0:4096])
        assert os.pread(fd, 4096, 8 * MiB) == model[0:4096]
        # within one file, overlapping: EINVAL
        with expect_errno(errno.EINVAL):
            os.copy_file_range(fd, fd, 4096, 0, 100)
    finally:
        os.close(fs)
        os.close(fd)
    # descriptor checks
    fs = os.open(src, os.O_WRONLY)
    fd = os.open(dst, os.O_WRONLY)
    try:
        with expect_errno(errno.EBADF):
            os.copy_file_range(fs, fd, 10, 0, 0)
    finally:
        os.close(fs)
        os.close(fd)
    fs = os.open(src, os.O_RDONLY)
    fd = os.open(dst, os.O_WRONLY | os.O_APPEND)
    try:
        with expect_errno(errno.EBADF):
            os.copy_file_range(fs, fd, 10, 0, 0)
    finally:
        os.close(fs)
        os.close(fd)
    fs = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
    fd = os.open(dst, os.O_WRONLY)
    try:
        with expect_errno(errno.EISDIR):
            os.copy_file_range(fs, fd, 10, 0, 0)
    finally:
        os.close(fs)
        os.close(fd)
    drop_caches()
    assert read_file(dst) == bytes(model)


def test_copy_file_range_between_directories(workdir):
    os.mkdir(j(workdir, "a"))
    os.mkdir(j(workdir, "b"))
    data = random.Random(5).randbytes(5 * MiB)
    write_file(j(workdir, "a", "src"), data)
    fs = os.open(j(workdir, "a", "src"), os.O_RDONLY)
    fd = os.open(j(workdir, "b", "dst"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        done = 0
        while done < len(data):
            n = os.copy_file_range(fs, fd, len(data) - done)
            assert n > 0
            done += n
    finally:
        os.close(fs)
        os.close(fd)
    drop_caches()
    assert read_file(j(workdir, "b", "dst")) == data
    # the copy and the source are independent afterwards, whichever of
    # them changes (a filesystem that shares blocks must copy on write)
    src, dst = j(workdir, "a", "src"), j(workdir, "b", "dst")
    fd = os.open(src, os.O_WRONLY)
    os.pwrite(fd, b"S" * 5000, 4 * MiB - 2500)
    os.close(fd)
    fd = os.open(dst, os.O_WRONLY)
    os.pwrite(fd, b"D" * 5000, 100)
    os.close(fd)
    want_src = bytearray(data)
    want_src[4 * MiB - 2500:4 * MiB + 2500] = b"S" * 5000
    want_dst = bytearray(data)
    want_dst[100:5100] = b"D" * 5000
    drop_caches()
    assert read_file(src) == bytes(want_src)
    assert read_file(dst) == bytes(want_dst)
    os.unlink(src)
    drop_caches()
    assert read_file(dst) == bytes(want_dst)


def test_identical_contents_stay_independent(workdir):
    """Files with equal contents (which a content-addressed store may keep
    once) change and disappear independently."""
    data = random.Random(8).randbytes(9 * MiB)
    names = [j(workdir, f"same{i}") for i in range(3)]
    for n in names:
        write_file(n, data)
        fd = os.open(n, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    fd = os.open(names[0], os.O_WRONLY)
    os.pwrite(fd, b"X", 5 * MiB)
    os.close(fd)
    os.truncate(names[1], MiB)
    os.unlink(names[2])
    drop_caches()
    changed = bytearray(data)
    changed[5 * MiB] = ord("X")
    assert read_file(names[0]) == bytes(changed)
    assert read_file(names[1]) == data[:MiB]
    write_file(names[2], data)
    assert read_file(names[2]) == data


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, MiB + 1,
                                  4 * MiB, 4 * MiB + 1])
def test_sizes_roundtrip(workdir, size):
    p = j(workdir, "f")
    data = random.Random(size).randbytes(size)
    write_file(p, data)
    fd = os.open(p, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    st = os.stat(p)
    assert st.st_size == size
    # a dense file occupies at least its size (du is meaningful)
    assert st.st_blocks * 512 >= size
    assert st.st_blocks * 512 < size + 8 * MiB
    drop_caches()
    assert os.stat(p).st_size == size
    assert read_file(p) == data


def test_mmap_shared(workdir):
    import mmap
    p = j(workdir, "f")
    data = bytearray(random.Random(6).randbytes(3 * MiB + 100))
    write_file(p, data)
    os.utime(p, ns=(10**9, 10**9))
    ctime = os.stat(p).st_ctime_ns
    time.sleep(0.02)
    fd = os.open(p, os.O_RDWR)
    try:
        with mmap.mmap(fd, len(data)) as m:
            # the mapping shows what write() wrote
            assert m[:] == bytes(data)
            m[MiB - 5:MiB + 5] = b"0123456789"
            m[len(data) - 3:] = b"end"
            m.flush()
            # and write() sees what the mapping wrote
            assert os.pread(fd, 10, MiB - 5) == b"0123456789"
            os.pwrite(fd, b"via write", 4096)
            assert m[4096:4105] == b"via write"
        data[MiB - 5:MiB + 5] = b"0123456789"
        data[len(data) - 3:] = b"end"
        data[4096:4105] = b"via write"
        os.fsync(fd)
    finally:
        os.close(fd)
    st = os.stat(p)
    assert st.st_mtime_ns > 10**9 and st.st_ctime_ns > ctime
    assert st.st_size == len(data)
    drop_caches()
    assert read_file(p) == bytes(data)
    # a private mapping never reaches the file
    fd = os.open(p, os.O_RDWR)
    try:
        with mmap.mmap(fd, 4096, mmap.MAP_PRIVATE) as m:
            m[0:4] = b"priv"
            assert m[0:4] == b"priv"
    finally:
        os.close(fd)
    drop_caches()
    assert read_file(p)[:4] == bytes(data[:4])


FALLOC_FL_COLLAPSE_RANGE = 0x08
FALLOC_FL_INSERT_RANGE = 0x20


def test_collapse_and_insert_range(target, workdir):
    """ext4 shifts the bytes; the kernel's FUSE module refuses both modes
    with EOPNOTSUPP before asking the filesystem (docs/design.md, POSIX
    notes), and then the file must be untouched."""
    p = os.path.join(workdir, "f")
    data = bytes(random.Random(7).getrandbits(8) for _ in range(64 << 10))
    write_file(p, data)
    fd = os.open(p, os.O_RDWR)
    try:
        for mode, want in (
                (FALLOC_FL_COLLAPSE_RANGE, data[:8192] + data[16384:]),
                (FALLOC_FL_INSERT_RANGE, None)):
            before = read_file(p)
            try:
                fallocate(fd, mode, 8192, 8192)
            except OSError as e:
                assert target.is_zero and e.errno == errno.EOPNOTSUPP
                assert read_file(p) == before
                continue
            assert not target.is_zero
            if want is None:
                want = before[:8192] + bytes(8192) + before[8192:]
            assert read_file(p) == want
    finally:
        os.close(fd)
