"""chattr/lsattr: the immutable (i) and append-only (a) flags, compared with
ext4. Each scenario runs on the target and in a directory on ext4 (the
ext4dir fixture); the outcome of every operation must be the same."""

import array
import errno
import fcntl
import os
import subprocess

import pytest
from sysutil import (NOBODY, as_user, drop_caches, expect_errno, fallocate,
                     read_file, user_errno, utimensat, write_file)

FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_IMMUTABLE_FL = 0x10
FS_APPEND_FL = 0x20
FS_NODUMP_FL = 0x40


def chattr(*args, cwd=None, check=True):
    p = subprocess.run(["chattr", *args], cwd=cwd, capture_output=True,
                       text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"chattr {args}: {p.stderr}")
    return p


def lsattr_flags(path, directory=False):
    """The flags field of lsattr's line for PATH, only i and a kept."""
    args = ["lsattr", "-d", path] if directory else ["lsattr", path]
    p = subprocess.run(args, capture_output=True, text=True, check=True)
    field = p.stdout.split()[0]
    return "".join(c for c in field if c in "ia")


def getflags(path):
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        buf = array.array("l", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf, True)
        return buf[0] & (FS_IMMUTABLE_FL | FS_APPEND_FL)
    finally:
        os.close(fd)


def outcome(fn):
    try:
        fn()
        return 0
    except OSError as e:
        return errno.errorcode[e.errno]


def both(workdir, ext4dir, scenario):
    got, want = scenario(workdir), scenario(ext4dir)
    assert got == want
    return got


def _open_close(path, flags):
    os.close(os.open(path, flags))


def _write_at(fd, data, off):
    return lambda: os.pwrite(fd, data, off)


def file_ops(d, name):
    """Every operation the flags may forbid, on file NAME in D."""
    p = os.path.join(d, name)
    return {
        "read": outcome(lambda: read_file(p)),
        "open wronly": outcome(lambda: _open_close(p, os.O_WRONLY)),
        "open rdwr": outcome(lambda: _open_close(p, os.O_RDWR)),
        "open append": outcome(lambda: _open_close(p, os.O_WRONLY |
                                                   os.O_APPEND)),
        "open append trunc": outcome(lambda: _open_close(
            p, os.O_WRONLY | os.O_APPEND | os.O_TRUNC)),
        "truncate": outcome(lambda: os.truncate(p, 1)),
        "chmod": outcome(lambda: os.chmod(p, 0o600)),
        "chown": outcome(lambda: os.chown(p, NOBODY, NOBODY)),
        "utime set": outcome(lambda: os.utime(p, (1, 1))),
        "utime now": outcome(lambda: utimensat(p, None, None)),
        "setxattr": outcome(lambda: os.setxattr(p, "user.x", b"1")),
        "removexattr": outcome(lambda: os.removexattr(p, "user.keep")),
        "setfacl": subprocess.run(["setfacl", "-m", f"u:{NOBODY}:r", p],
                                  capture_output=True).returncode,
        "link": outcome(lambda: os.link(p, p + ".link")),
        "rename": outcome(lambda: os.rename(p, p + ".moved")),
        "rename onto": outcome(lambda: os.rename(os.path.join(d, "spare"),
                                                 p)),
        "unlink": outcome(lambda: os.unlink(p)),
        "exists": os.path.exists(p),
        "spare exists": os.path.exists(os.path.join(d, "spare")),
    }


def test_immutable_file(workdir, ext4dir, target):
    # With the writeback cache a descriptor open for writing keeps the flag
    # from being set (test_flags_wait_for_writers_with_the_writeback_cache):
    # then the scenario opens it after, read-only.
    early = not target.writeback

    def scenario(d):
        p = os.path.join(d, "f")
        write_file(p, b"0123456789")
        os.setxattr(p, "user.keep", b"k")
        fd = os.open(p, os.O_RDWR) if early else -1
        try:
            chattr("+i", p)
            if not early:
                fd = os.open(p, os.O_RDONLY)
            out = {"lsattr": lsattr_flags(p), "ioctl": getflags(p)}
            drop_caches()
            out["ioctl after drop"] = getflags(p)
            write_file(os.path.join(d, "spare"), b"spare")
            out.update(file_ops(d, "f"))
            # a descriptor opened for writing before the flag was set
            out["write open fd"] = outcome(_write_at(fd, b"x", 0))
            out["ftruncate open fd"] = outcome(lambda: os.ftruncate(fd, 0))
            out["fallocate open fd"] = outcome(
                lambda: fallocate(fd, 0, 0, 8192))
            out["content"] = read_file(p)
            # chattr itself may still change the flags: clearing works
            chattr("-i", p)
            out["lsattr cleared"] = lsattr_flags(p)
            out["write after clear"] = outcome(_write_at(fd, b"x", 0))
        finally:
            if fd >= 0:
                os.close(fd)
            chattr("-i", p, check=False)
        return out

    out = both(workdir, ext4dir, scenario)
    assert out["lsattr"] == "i" and out["ioctl"] == FS_IMMUTABLE_FL
    assert out["open wronly"] == "EPERM" and out["unlink"] == "EPERM"
    assert out["write open fd"] == ("EPERM" if early else "EBADF") and out["exists"]
    assert out["content"] == b"0123456789"


def test_append_only_file(workdir, ext4dir, target):
    early = not target.writeback  # as in test_immutable_file

    def scenario(d):
        p = os.path.join(d, "f")
        write_file(p, b"0123456789")
        os.setxattr(p, "user.keep", b"k")
        fd = os.open(p, os.O_RDWR) if early else -1
        try:
            chattr("+a", p)
            if not early:
                fd = os.open(p, os.O_RDONLY)
            out = {"lsattr": lsattr_flags(p), "ioctl": getflags(p)}
            write_file(os.path.join(d, "spare"), b"spare")
            out.update(file_ops(d, "f"))
            afd = os.open(p, os.O_WRONLY | os.O_APPEND)
            out["append"] = os.write(afd, b"+tail")
            os.close(afd)
            out["overwrite open fd"] = outcome(_write_at(fd, b"x", 0))
            out["punch open fd"] = outcome(lambda: fallocate(fd, 3, 0, 4096))
            out["content"] = read_file(p)
        finally:
            if fd >= 0:
                os.close(fd)
            chattr("-a", p, check=False)
        return out

    out = both(workdir, ext4dir, scenario)
    assert out["lsattr"] == "a" and out["open wronly"] == "EPERM"
    assert out["open append"] == 0 and out["content"].endswith(b"+tail")


def test_flags_wait_for_writers_with_the_writeback_cache(workdir, target):
    """With the kernel's writeback cache, a write the flag forbids would be
    refused only when written back, its bytes seen until then: so the flag
    is refused (EBUSY) while a descriptor it forbids is open. Bytes written
    before stay; an appender keeps appending to an append-only file."""
    if not target.writeback:
        pytest.skip("the kernel's writeback cache is off: the flags refuse the writes")
    p = os.path.join(workdir, "f")
    write_file(p, b"0123456789")
    fd = os.open(p, os.O_RDWR)
    try:
        os.pwrite(fd, b"AB", 0)  # in the page cache only
        for flag in ("+i", "+a"):
            r = chattr(flag, p, check=False)
            assert r.returncode != 0 and "busy" in r.stderr.lower(), r.stderr
            assert lsattr_flags(p) == ""
        ro = os.open(p, os.O_RDONLY)  # a reader does not stand in the way
        os.close(ro)
    finally:
        os.close(fd)
    chattr("+i", p)
    chattr("-i", p)
    # an appender keeps its descriptor through +a, and its bytes
    afd = os.open(p, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(afd, b"-one")
        chattr("+a", p)
        os.write(afd, b"-two")
        with expect_errno(errno.EPERM):
            os.open(p, os.O_WRONLY)
        with expect_errno(errno.EBUSY):
            fcntl.ioctl(afd, FS_IOC_SETFLAGS, array.array("l", [FS_IMMUTABLE_FL]))
    finally:
        os.close(afd)
    assert read_file(p) == b"AB23456789-one-two"
    drop_caches()
    assert read_file(p) == b"AB23456789-one-two"
    assert lsattr_flags(p) == "a"
    chattr("-a", p)


def test_immutable_and_append_only_directories(workdir, ext4dir):
    def scenario(d):
        out = {}
        for flag in ("i", "a"):
            sub = os.path.join(d, flag)
            os.mkdir(sub)
            write_file(os.path.join(sub, "old"), b"old")
            os.mkdir(os.path.join(sub, "olddir"))
            chattr("+" + flag, sub)
            try:
                res = {
                    "lsattr": lsattr_flags(sub, directory=True),
                    "create": outcome(lambda: write_file(
                        os.path.join(sub, "new"), b"")),
                    "mkdir": outcome(lambda: os.mkdir(
                        os.path.join(sub, "newdir"))),
                    "symlink": outcome(lambda: os.symlink(
                        "x", os.path.join(sub, "sym"))),
                    "write old": outcome(lambda: write_file(
                        os.path.join(sub, "old"), b"changed")),
                    "unlink": outcome(lambda: os.unlink(
                        os.path.join(sub, "old"))),
                    "rmdir inside": outcome(lambda: os.rmdir(
                        os.path.join(sub, "olddir"))),
                    "rename inside": outcome(lambda: os.rename(
                        os.path.join(sub, "old"), os.path.join(sub, "o2"))),
                    "rename out": outcome(lambda: os.rename(
                        os.path.join(sub, "old"), os.path.join(d, "o3"))),
                    "link in": outcome(lambda: os.link(
                        os.path.join(sub, "old"), os.path.join(sub, "l"))),
                    "rmdir": outcome(lambda: os.rmdir(sub)),
                    "chmod": outcome(lambda: os.chmod(sub, 0o700)),
                    "listing": sorted(os.listdir(sub)),
                }
            finally:
                chattr("-" + flag, sub, check=False)
            out[flag] = res
        return out

    out = both(workdir, ext4dir, scenario)
    assert out["i"]["create"] == "EPERM" and out["a"]["create"] == 0
    assert out["a"]["unlink"] == "EPERM"


def test_flags_need_privilege(workdir, ext4dir):
    def scenario(d):
        p = os.path.join(d, "f")
        write_file(p, b"")
        os.chown(p, NOBODY, NOBODY)

        def user_chattr(flag):
            return subprocess.run(["chattr", flag, "f"],
                                  capture_output=True).returncode
        out = {"owner +i": as_user(lambda: user_chattr("+i"), d),
               "owner +a": as_user(lambda: user_chattr("+a"), d),
               "flags": getflags(p)}
        chattr("+a", p)
        out["owner -a"] = as_user(lambda: user_chattr("-a"), d)
        out["owner write"] = user_errno(
            lambda: _open_close("f", os.O_WRONLY), d)
        out["flags after"] = getflags(p)
        chattr("-a", p)
        return out

    out = both(workdir, ext4dir, scenario)
    assert out["owner +i"] != 0 and out["flags"] == 0


def test_other_flags_refused(workdir, target):
    p = os.path.join(workdir, "f")
    write_file(p, b"")
    fd = os.open(p, os.O_RDONLY)
    try:
        buf = array.array("l", [FS_NODUMP_FL])
        try:
            fcntl.ioctl(fd, FS_IOC_SETFLAGS, buf, True)
            res = 0
        except OSError as e:
            res = e.errno
    finally:
        os.close(fd)
    if target.is_zero:
        # Zero keeps only i and a; the rest is refused rather than ignored
        assert res == errno.EOPNOTSUPP
        assert getflags(p) == 0
    else:
        assert res == 0
    chattr("-d", p, check=False)
