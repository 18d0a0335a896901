"""lookup, forget, getattr, mkdir, rmdir, unlink, symlink, readlink, names."""

import errno
import os
import stat

from sysutil import drop_caches, expect_errno, read_file, write_file


def test_lookup_and_getattr(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"hello")
    st = os.stat(p)
    assert stat.S_ISREG(st.st_mode)
    assert st.st_size == 5
    assert st.st_nlink == 1
    assert st.st_uid == 0 and st.st_gid == 0
    assert st.st_blksize > 0
    assert st.st_dev == os.stat(workdir).st_dev
    # same inode through different lookups and fstat
    fd = os.open(p, os.O_RDONLY)
    try:
        assert os.fstat(fd).st_ino == st.st_ino
    finally:
        os.close(fd)
    assert os.stat(os.path.join(workdir, ".", "f")).st_ino == st.st_ino
    assert os.stat(os.path.join(workdir, "..", os.path.basename(workdir),
                                "f")).st_ino == st.st_ino
    # names are case sensitive
    with expect_errno(errno.ENOENT):
        os.stat(os.path.join(workdir, "F"))
    with expect_errno(errno.ENOENT):
        os.stat(os.path.join(workdir, "missing"))
    with expect_errno(errno.ENOTDIR):
        os.stat(os.path.join(p, "x"))
    with expect_errno(errno.ENOTDIR):
        os.stat(p + "/")
    # distinct files have distinct inode numbers
    q = os.path.join(workdir, "g")
    write_file(q, b"")
    assert os.stat(q).st_ino != st.st_ino


def test_root_and_dotdot(workdir):
    st = os.stat(workdir)
    assert stat.S_ISDIR(st.st_mode)
    sub = os.path.join(workdir, "sub")
    os.mkdir(sub)
    assert os.stat(os.path.join(sub, "..")).st_ino == st.st_ino
    assert os.stat(os.path.join(sub, ".")).st_ino == os.stat(sub).st_ino


def test_forget_and_lookup_again(workdir):
    """Inodes evicted from the kernel (FORGET on FUSE) come back intact."""
    inos = {}
    for i in range(200):
        p = os.path.join(workdir, f"f{i}")
        write_file(p, str(i).encode() * 10)
        inos[p] = os.stat(p).st_ino
    os.link(os.path.join(workdir, "f0"), os.path.join(workdir, "hard"))
    os.mkdir(os.path.join(workdir, "d"))
    os.symlink("f1", os.path.join(workdir, "sl"))
    for _ in range(2):
        drop_caches()
        for p, ino in inos.items():
            st = os.stat(p)
            assert st.st_ino == ino
            assert read_file(p) == os.path.basename(p)[1:].encode() * 10
        assert os.stat(os.path.join(workdir, "hard")).st_ino == \
            inos[os.path.join(workdir, "f0")]
        assert os.stat(os.path.join(workdir, "f0")).st_nlink == 2
        assert os.readlink(os.path.join(workdir, "sl")) == "f1"
    # unlink many after the kernel forgot them
    for p in inos:
        os.unlink(p)
    drop_caches()
    assert sorted(os.listdir(workdir)) == ["d", "hard", "sl"]
    assert os.stat(os.path.join(workdir, "hard")).st_nlink == 1


def test_mkdir(workdir):
    d = os.path.join(workdir, "d")
    parent_nlink = os.stat(workdir).st_nlink
    os.mkdir(d, 0o750)
    st = os.stat(d)
    assert stat.S_ISDIR(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o750 & ~_umask()
    assert st.st_nlink == 2
    assert os.stat(workdir).st_nlink == parent_nlink + 1
    assert os.listdir(d) == []
    with expect_errno(errno.EEXIST):
        os.mkdir(d)
    write_file(os.path.join(workdir, "f"), b"")
    with expect_errno(errno.EEXIST):
        os.mkdir(os.path.join(workdir, "f"))
    with expect_errno(errno.ENOENT):
        os.mkdir(os.path.join(workdir, "nope", "d"))
    with expect_errno(errno.ENOTDIR):
        os.mkdir(os.path.join(workdir, "f", "d"))
    os.mkdir(os.path.join(d, "e"))
    assert os.stat(d).st_nlink == 3
    # mode bits beyond the permission bits: sticky survives, as on ext4
    os.mkdir(os.path.join(workdir, "s"), 0o1777)
    assert stat.S_IMODE(os.stat(os.path.join(workdir, "s")).st_mode) == \
        0o1777 & ~_umask()


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def test_rmdir(workdir):
    d = os.path.join(workdir, "d")
    os.mkdir(d)
    nlink = os.stat(workdir).st_nlink
    write_file(os.path.join(d, "f"), b"x")
    with expect_errno(errno.ENOTEMPTY):
        os.rmdir(d)
    os.mkdir(os.path.join(d, "sub"))
    os.unlink(os.path.join(d, "f"))
    with expect_errno(errno.ENOTEMPTY):
        os.rmdir(d)
    os.rmdir(os.path.join(d, "sub"))
    assert os.stat(d).st_nlink == 2
    os.rmdir(d)
    assert os.stat(workdir).st_nlink == nlink - 1
    with expect_errno(errno.ENOENT):
        os.stat(d)
    with expect_errno(errno.ENOENT):
        os.rmdir(d)
    write_file(os.path.join(workdir, "f"), b"")
    with expect_errno(errno.ENOTDIR):
        os.rmdir(os.path.join(workdir, "f"))
    os.mkdir(d)
    with expect_errno(errno.EINVAL):
        os.rmdir(os.path.join(d, "."))
    with expect_errno(errno.ENOTEMPTY):
        os.rmdir(os.path.join(d, ".."))
    # a directory removed while it is the cwd of an open descriptor
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.rmdir(d)
        assert os.fstat(fd).st_nlink == 0
        with expect_errno(errno.ENOENT):
            os.open(f"/proc/self/fd/{fd}/new", os.O_CREAT | os.O_WRONLY)
        assert os.listdir(fd) == []
    finally:
        os.close(fd)


def test_unlink(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"data")
    os.unlink(p)
    with expect_errno(errno.ENOENT):
        os.stat(p)
    with expect_errno(errno.ENOENT):
        os.unlink(p)
    assert os.listdir(workdir) == []
    d = os.path.join(workdir, "d")
    os.mkdir(d)
    with expect_errno(errno.EISDIR):
        os.unlink(d)
    # recreating the name gives a fresh empty file
    write_file(p, b"")
    assert os.stat(p).st_size == 0
    # unlink updates the parent's mtime and ctime
    os.utime(workdir, ns=(10**9, 10**9))
    os.unlink(p)
    st = os.stat(workdir)
    assert st.st_mtime_ns > 10**9 and st.st_ctime_ns > 10**9


def test_symlink_readlink(workdir):
    s = os.path.join(workdir, "s")
    os.symlink("target/of/link", s)
    st = os.lstat(s)
    assert stat.S_ISLNK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o777
    assert st.st_size == len("target/of/link")
    assert os.readlink(s) == "target/of/link"
    with expect_errno(errno.ENOENT):
        os.stat(s)  # dangling
    with expect_errno(errno.EEXIST):
        os.symlink("x", s)
    # following
    write_file(os.path.join(workdir, "f"), b"content")
    os.symlink("f", os.path.join(workdir, "tof"))
    assert read_file(os.path.join(workdir, "tof")) == b"content"
    os.mkdir(os.path.join(workdir, "d"))
    write_file(os.path.join(workdir, "d", "in"), b"1")
    os.symlink("d", os.path.join(workdir, "tod"))
    assert os.listdir(os.path.join(workdir, "tod")) == ["in"]
    os.symlink(os.path.join(workdir, "f"), os.path.join(workdir, "abs"))
    assert read_file(os.path.join(workdir, "abs")) == b"content"
    # readlink on something else
    with expect_errno(errno.EINVAL):
        os.readlink(os.path.join(workdir, "f"))
    with expect_errno(errno.ENOENT):
        os.readlink(os.path.join(workdir, "missing"))
    # loops
    os.symlink("loop2", os.path.join(workdir, "loop1"))
    os.symlink("loop1", os.path.join(workdir, "loop2"))
    with expect_errno(errno.ELOOP):
        os.stat(os.path.join(workdir, "loop1"))
    with expect_errno(errno.ELOOP):
        os.open(os.path.join(workdir, "tof"), os.O_RDONLY | os.O_NOFOLLOW)
    # targets of odd bytes and maximal length
    odd = bytes(range(1, 256))
    os.symlink(odd, os.path.join(os.fsencode(workdir), b"odd"))
    assert os.readlink(os.path.join(os.fsencode(workdir), b"odd")) == odd
    long_target = ("a" * 200 + "/") * 21
    long_target = long_target[:4095]
    os.symlink(long_target, os.path.join(workdir, "long"))
    assert os.readlink(os.path.join(workdir, "long")) == long_target
    assert os.lstat(os.path.join(workdir, "long")).st_size == 4095
    with expect_errno(errno.ENAMETOOLONG):
        os.symlink("b" * 4096, os.path.join(workdir, "toolong"))
    with expect_errno(errno.ENOENT):
        os.symlink("", os.path.join(workdir, "empty"))
    # unlinking a symlink leaves its target alone
    os.unlink(os.path.join(workdir, "tof"))
    assert read_file(os.path.join(workdir, "f")) == b"content"


NAME_255 = bytes(b for b in range(1, 256) if b != ord("/")) + b"Z"


def test_names_any_bytes(workdir):
    w = os.fsencode(workdir)
    assert len(NAME_255) == 255
    names = [NAME_255, b"\xff\xfe", b" lead and trail ", b"-dash", b"new\nline",
             b"back\\slash", b"\xe2\x98\x83", b"..." , b"a" * 255]
    for n in names:
        write_file(os.path.join(w, n), n)
    assert sorted(os.listdir(w)) == sorted(names)
    for n in names:
        assert read_file(os.path.join(w, n)) == n
    d = os.path.join(w, b"d" * 255)
    os.mkdir(d)
    os.symlink(b"t", os.path.join(d, b"s" * 255))
    os.link(os.path.join(w, NAME_255), os.path.join(d, b"l" * 255))
    os.rename(os.path.join(w, b"a" * 255), os.path.join(d, b"r" * 255))
    assert sorted(os.listdir(d)) == [b"l" * 255, b"r" * 255, b"s" * 255]
    for n in names:
        if n != b"a" * 255:
            os.unlink(os.path.join(w, n))


def test_name_too_long(workdir):
    w = os.fsencode(workdir)
    long = os.path.join(w, b"n" * 256)
    write_file(os.path.join(w, b"f"), b"")
    os.mkdir(os.path.join(w, b"d"))
    with expect_errno(errno.ENAMETOOLONG):
        os.open(long, os.O_CREAT | os.O_WRONLY, 0o644)
    with expect_errno(errno.ENAMETOOLONG):
        os.stat(long)
    with expect_errno(errno.ENAMETOOLONG):
        os.mkdir(long)
    with expect_errno(errno.ENAMETOOLONG):
        os.symlink(b"x", long)
    with expect_errno(errno.ENAMETOOLONG):
        os.link(os.path.join(w, b"f"), long)
    with expect_errno(errno.ENAMETOOLONG):
        os.rename(os.path.join(w, b"f"), long)
    with expect_errno(errno.ENAMETOOLONG):
        os.mkfifo(long)
    with expect_errno(errno.ENAMETOOLONG):
        os.unlink(long)
    with expect_errno(errno.ENAMETOOLONG):
        os.rmdir(long)
    assert sorted(os.listdir(w)) == [b"d", b"f"]
    assert os.statvfs(workdir).f_namemax == 255
