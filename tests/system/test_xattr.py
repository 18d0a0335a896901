"""setxattr/getxattr/listxattr/removexattr."""

import errno
import os

from sysutil import (XATTR_CREATE, XATTR_REPLACE, as_user, drop_caches,
                     expect_errno, getxattr_raw, listxattr_raw, user_errno,
                     write_file)


def test_xattr_basic(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"")
    assert os.listxattr(p) == [] or all(
        not n.startswith("user.") for n in os.listxattr(p))
    os.setxattr(p, "user.a", b"value-a")
    os.setxattr(p, "user.empty", b"")
    binary = bytes(range(256)) * 3
    os.setxattr(p, "user.bin", binary)
    assert os.getxattr(p, "user.a") == b"value-a"
    assert os.getxattr(p, "user.empty") == b""
    assert os.getxattr(p, "user.bin") == binary
    assert sorted(n for n in os.listxattr(p) if n.startswith("user.")) == \
        ["user.a", "user.bin", "user.empty"]
    # replace keeps one entry
    os.setxattr(p, "user.a", b"v2")
    assert os.getxattr(p, "user.a") == b"v2"
    os.setxattr(p, "user.a", b"a much longer value " * 20)
    assert os.getxattr(p, "user.a") == b"a much longer value " * 20
    os.removexattr(p, "user.a")
    with expect_errno(errno.ENODATA):
        os.getxattr(p, "user.a")
    assert "user.a" not in os.listxattr(p)
    drop_caches()
    assert os.getxattr(p, "user.bin") == binary
    # trusted and security namespaces work for root
    os.setxattr(p, "trusted.t", b"root only")
    assert os.getxattr(p, "trusted.t") == b"root only"
    os.setxattr(p, "security.zero_test", b"sec")
    assert os.getxattr(p, "security.zero_test") == b"sec"
    os.removexattr(p, "security.zero_test")


def test_xattr_flags_and_errors(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"")
    with expect_errno(errno.ENODATA):
        os.setxattr(p, "user.k", b"v", XATTR_REPLACE)
    os.setxattr(p, "user.k", b"v", XATTR_CREATE)
    with expect_errno(errno.EEXIST):
        os.setxattr(p, "user.k", b"w", XATTR_CREATE)
    assert os.getxattr(p, "user.k") == b"v"
    os.setxattr(p, "user.k", b"w", XATTR_REPLACE)
    assert os.getxattr(p, "user.k") == b"w"
    with expect_errno(errno.ENODATA):
        os.getxattr(p, "user.missing")
    with expect_errno(errno.ENODATA):
        os.removexattr(p, "user.missing")
    with expect_errno(errno.ENOENT):
        os.getxattr(os.path.join(workdir, "nofile"), "user.k")
    # names: up to 255 bytes, then ERANGE
    long_name = "user." + "n" * 250
    os.setxattr(p, long_name, b"long")
    assert os.getxattr(p, long_name) == b"long"
    with expect_errno(errno.ERANGE):
        os.setxattr(p, long_name + "x", b"x")
    # values above 64 KiB are refused
    with expect_errno(errno.E2BIG):
        os.setxattr(p, "user.huge", bytes(65537))
    # unknown namespace
    with expect_errno(errno.EOPNOTSUPP):
        os.setxattr(p, "bogus.k", b"v")


def test_xattr_size_queries(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"")
    os.setxattr(p, "user.k", b"0123456789")
    os.setxattr(p, "user.other", b"")
    assert getxattr_raw(p, "user.k", 0)[0] == 10
    assert getxattr_raw(p, "user.k", 10) == (10, b"0123456789")
    assert getxattr_raw(p, "user.k", 100) == (10, b"0123456789")
    with expect_errno(errno.ERANGE):
        getxattr_raw(p, "user.k", 9)
    assert getxattr_raw(p, "user.other", 0)[0] == 0
    n, _ = listxattr_raw(p, 0)
    size, raw = listxattr_raw(p, n)
    assert size == n
    names = raw.split(b"\0")
    assert names[-1] == b"" and b"user.k" in names and b"user.other" in names
    if n > 1:
        with expect_errno(errno.ERANGE):
            listxattr_raw(p, n - 1)


def test_xattr_on_dirs_and_special_files(workdir):
    d = os.path.join(workdir, "d")
    os.mkdir(d)
    os.setxattr(d, "user.dir", b"on a dir")
    assert os.getxattr(d, "user.dir") == b"on a dir"
    s = os.path.join(workdir, "s")
    os.symlink("d", s)
    # user.* is not allowed on symlinks (they are not regular files/dirs)
    with expect_errno(errno.EPERM):
        os.setxattr(s, "user.x", b"1", follow_symlinks=False)
    # but trusted.* is, and following reaches the directory
    os.setxattr(s, "trusted.x", b"link", follow_symlinks=False)
    assert os.getxattr(s, "trusted.x", follow_symlinks=False) == b"link"
    assert os.getxattr(s, "user.dir") == b"on a dir"
    # xattrs through a file descriptor
    p = os.path.join(workdir, "f")
    write_file(p, b"")
    fd = os.open(p, os.O_RDONLY)
    try:
        os.setxattr(fd, "user.fd", b"via fd")
        assert os.getxattr(fd, "user.fd") == b"via fd"
        assert "user.fd" in os.listxattr(fd)
        os.removexattr(fd, "user.fd")
        assert "user.fd" not in os.listxattr(fd)
    finally:
        os.close(fd)
    # many attributes
    for i in range(50):
        os.setxattr(p, f"user.many{i}", str(i).encode())
    assert len([n for n in os.listxattr(p) if n.startswith("user.many")]) == 50
    for i in range(50):
        assert os.getxattr(p, f"user.many{i}") == str(i).encode()
    # hard links share them; removing the file removes them
    os.link(p, os.path.join(workdir, "l"))
    assert os.getxattr(os.path.join(workdir, "l"), "user.many7") == b"7"
    os.unlink(p)
    os.unlink(os.path.join(workdir, "l"))
    write_file(p, b"")
    assert not [n for n in os.listxattr(p) if n.startswith("user.")]


def test_xattr_permissions(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"")
    os.setxattr(p, "user.k", b"v")
    os.chmod(p, 0o644)
    # readable by others with read permission, not writable
    assert as_user(lambda: os.getxattr("f", "user.k"), workdir) == b"v"
    assert user_errno(lambda: os.setxattr("f", "user.k", b"x"),
                      workdir) == errno.EACCES
    assert user_errno(lambda: os.removexattr("f", "user.k"),
                      workdir) == errno.EACCES
    os.chmod(p, 0o600)
    assert user_errno(lambda: os.getxattr("f", "user.k"),
                      workdir) == errno.EACCES
    os.chmod(p, 0o666)
    as_user(lambda: os.setxattr("f", "user.k", b"by nobody"), workdir)
    assert os.getxattr(p, "user.k") == b"by nobody"
    # trusted.* is for CAP_SYS_ADMIN only: invisible and unwritable
    os.setxattr(p, "trusted.t", b"secret")
    assert "trusted.t" not in as_user(lambda: os.listxattr("f"), workdir)
    assert user_errno(lambda: os.setxattr("f", "trusted.u", b"x"),
                      workdir) == errno.EPERM


def test_security_labels_and_capabilities(workdir):
    """security.selinux and security.capability, which ls -l and every
    write ask of every file: a missing one is ENODATA (a filesystem that
    holds no SELinux label may say EOPNOTSUPP, as one without labels);
    once stored they read back, a write drops the capability as on ext4,
    and another file's missing one is ENODATA."""
    a, b = os.path.join(workdir, "a"), os.path.join(workdir, "b")
    write_file(a, b"a")
    write_file(b, b"b")
    for name, absent in (("security.selinux", (errno.ENODATA, errno.EOPNOTSUPP)),
                         ("security.capability", (errno.ENODATA,))):
        try:
            os.getxattr(b, name)
            raise AssertionError(f"{name} of a new file")
        except OSError as e:
            assert e.errno in absent, (name, e)
    os.setxattr(a, "security.selinux", b"system_u:object_r:zero_test_t:s0\0")
    assert os.getxattr(a, "security.selinux") == b"system_u:object_r:zero_test_t:s0\0"
    with expect_errno(errno.ENODATA):
        os.getxattr(b, "security.selinux")
    # cap_net_bind_service permitted, revision 2 (linux/capability.h)
    cap = (0x02000000).to_bytes(4, "little") + (1 << 10).to_bytes(4, "little") + bytes(12)
    os.setxattr(a, "security.capability", cap)
    assert os.getxattr(a, "security.capability") == cap
    with expect_errno(errno.ENODATA):
        os.getxattr(b, "security.capability")
    drop_caches()
    assert os.getxattr(a, "security.capability") == cap
    with open(a, "r+b") as f:
        f.write(b"changed")
    with expect_errno(errno.ENODATA):
        os.getxattr(a, "security.capability")
    assert os.getxattr(a, "security.selinux") == b"system_u:object_r:zero_test_t:s0\0"
