"""POSIX ACLs (system.posix_acl_access, system.posix_acl_default) compared
with ext4: each scenario runs in the target's directory and in a directory on
ext4 (the ext4dir fixture), and what setfacl/getfacl, stat and the permission
checks show must be the same. Needs setfacl/getfacl (Debian's acl) and rsync.
"""

import errno
import os
import stat
import struct
import subprocess

from sysutil import (EXTRA_GROUP, NOBODY, OTHER, as_user, drop_caches,
                     read_file, user_errno, write_file)

ACCESS = "system.posix_acl_access"
DEFAULT = "system.posix_acl_default"


def run(*cmd, cwd=None, check=True):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}: "
                             f"{p.stderr}{p.stdout}")
    return p


def getfacl(d, *names):
    """getfacl of NAMES relative to D, numeric, as text."""
    return run("getfacl", "-n", "-p", *names, cwd=d).stdout


def acl_xattrs(path):
    return sorted(n for n in os.listxattr(path, follow_symlinks=False)
                  if n.startswith("system."))


def mode_of(path):
    return oct(os.lstat(path).st_mode)


def both(workdir, ext4dir, scenario):
    """Run SCENARIO(dir) in both directories; their results must match."""
    got, want = scenario(workdir), scenario(ext4dir)
    assert got == want
    return got


def test_setfacl_getfacl_round_trip(workdir, ext4dir):
    def scenario(d):
        p = os.path.join(d, "f")
        write_file(p, b"data", 0o640)
        os.chmod(p, 0o640)
        run("setfacl", "-m", f"u:{NOBODY}:rw,g:{EXTRA_GROUP}:r,m::rw", "f",
            cwd=d)
        out = [getfacl(d, "f"), mode_of(p), acl_xattrs(p)]
        drop_caches()
        out.append(getfacl(d, "f"))
        # an ACL that says no more than the mode is not stored: only the
        # mode changes
        run("setfacl", "--set", "u::rwx,g::r,o::-", "f", cwd=d)
        out += [getfacl(d, "f"), mode_of(p), acl_xattrs(p)]
        run("setfacl", "-m", f"u:{OTHER}:x", "f", cwd=d)
        run("setfacl", "-b", "f", cwd=d)
        out += [getfacl(d, "f"), mode_of(p), acl_xattrs(p)]
        return out

    out = both(workdir, ext4dir, scenario)
    assert f"user:{NOBODY}:rw-" in out[0] and out[2] == [ACCESS]
    assert out[5] == oct(0o100740) and out[6] == [] and out[9] == []


def test_chmod_updates_acl_mask(workdir, ext4dir):
    def scenario(d):
        p = os.path.join(d, "f")
        write_file(p, b"", 0o644)
        os.chmod(p, 0o644)
        run("setfacl", "-m", f"u:{NOBODY}:rwx,g::r", "f", cwd=d)
        out = [getfacl(d, "f"), mode_of(p)]
        os.chmod(p, 0o751)
        out += [getfacl(d, "f"), mode_of(p)]
        os.chmod(p, 0o600)
        out += [getfacl(d, "f"), mode_of(p)]
        drop_caches()
        out.append(getfacl(d, "f"))
        return out

    out = both(workdir, ext4dir, scenario)
    assert "mask::r-x" in out[2] and "mask::---" in out[4]


def test_default_acl_inheritance(workdir, ext4dir):
    def scenario(d):
        os.mkdir(os.path.join(d, "d"), 0o755)
        os.mkdir(os.path.join(d, "plain"), 0o755)
        run("setfacl", "-d", "-m", f"u:{NOBODY}:rwx,g::rx,o::-,m::rwx", "d",
            cwd=d)
        out = [getfacl(d, "d")]
        old = os.umask(0o077)
        try:
            for parent in ("d", "plain"):
                pp = os.path.join(d, parent)
                fd = os.open(os.path.join(pp, "file"),
                             os.O_CREAT | os.O_WRONLY, 0o666)
                os.close(fd)
                fd = os.open(os.path.join(pp, "file640"),
                             os.O_CREAT | os.O_WRONLY, 0o640)
                os.close(fd)
                os.mkdir(os.path.join(pp, "sub"), 0o777)
                os.mkdir(os.path.join(pp, "sub", "deeper"), 0o750)
                os.mkfifo(os.path.join(pp, "fifo"), 0o622)
                os.mknod(os.path.join(pp, "node"), 0o644 | stat.S_IFREG)
                os.symlink("file", os.path.join(pp, "link"))
        finally:
            os.umask(old)
        names = []
        for parent in ("d", "plain"):
            for n in ("file", "file640", "sub", "sub/deeper", "fifo", "node"):
                names.append(f"{parent}/{n}")
        out.append(getfacl(d, *names))
        out += [mode_of(os.path.join(d, n)) for n in names]
        out += [acl_xattrs(os.path.join(d, n)) for n in names]
        out.append(acl_xattrs(os.path.join(d, "d", "link")))
        drop_caches()
        out.append(getfacl(d, *names))
        return out

    out = both(workdir, ext4dir, scenario)
    text = out[1]
    assert f"# file: d/sub\n" in text and "default:user:" in text
    # without a default ACL the umask applies as usual
    assert out[2 + 6] == oct(stat.S_IFREG | 0o600)


def test_acl_enforced(workdir, ext4dir):
    def scenario(d):
        p = os.path.join(d, "f")
        write_file(p, b"secret", 0o600)
        os.chmod(p, 0o600)
        run("setfacl", "-m", f"u:{NOBODY}:r,g:{EXTRA_GROUP}:rw", "f", cwd=d)
        out = []

        def outcomes():
            res = []
            for kw in ({"uid": NOBODY}, {"uid": OTHER},
                       {"uid": OTHER, "groups": [EXTRA_GROUP]}):
                res.append((
                    user_errno(lambda: read_file("f"), d, **kw),
                    user_errno(lambda: os.close(os.open("f", os.O_WRONLY)),
                               d, **kw),
                    as_user(lambda: os.access("f", os.R_OK), d, **kw)))
            return res
        out.append(outcomes())
        # the mask limits the named entries and the group class
        run("setfacl", "-m", "m::r", "f", cwd=d)
        out.append(outcomes())
        os.chmod(p, 0o600)  # the mask follows the group bits: ---
        out.append(outcomes())
        # a directory whose ACL lets a named user in
        os.mkdir(os.path.join(d, "dir"), 0o700)
        write_file(os.path.join(d, "dir", "x"), b"in", 0o644)
        out.append(user_errno(lambda: os.listdir("dir"), d))
        run("setfacl", "-m", f"u:{NOBODY}:rx", "dir", cwd=d)
        out.append(user_errno(lambda: os.listdir("dir"), d))
        out.append(user_errno(lambda: read_file("dir/x"), d))
        out.append(user_errno(lambda: write_file("dir/new", b""), d))
        return out

    out = both(workdir, ext4dir, scenario)
    assert out[0][0] == (0, errno.EACCES, True)
    assert out[0][1] == (errno.EACCES, errno.EACCES, False)
    assert out[0][2] == (0, 0, True)
    assert out[3] == errno.EACCES and out[4] == 0


def test_setfacl_by_owner_outside_group_clears_setgid(workdir, ext4dir):
    def scenario(d):
        p = os.path.join(d, "f")
        write_file(p, b"", 0o644)
        os.chown(p, NOBODY, EXTRA_GROUP)
        os.chmod(p, 0o2775)
        before = mode_of(p)
        as_user(lambda: run("setfacl", "-m", f"u:{OTHER}:r", "f", cwd="."), d)
        after = mode_of(p)
        # and by the owner within the group it stays
        os.chmod(p, 0o2775)
        as_user(lambda: run("setfacl", "-m", f"u:{OTHER}:rw", "f", cwd="."),
                d, groups=[EXTRA_GROUP], gid=EXTRA_GROUP)
        # others may not set an ACL at all
        r = as_user(lambda: subprocess.run(
            ["setfacl", "-m", "u::r", "f"], capture_output=True).returncode,
            d, uid=OTHER)
        return [before, after, mode_of(p), r, getfacl(d, "f")]

    out = both(workdir, ext4dir, scenario)
    assert out[0] != out[1] and not int(out[1], 8) & stat.S_ISGID
    assert out[3] != 0


def _xattr_acl(entries, version=2):
    return struct.pack("<I", version) + b"".join(
        struct.pack("<HHI", tag, perm, uid) for tag, perm, uid in entries)


UNDEF = 0xFFFFFFFF
USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER_TAG = 1, 2, 4, 8, 0x10, 0x20


def test_acl_xattr_values_validated(workdir, ext4dir):
    good = _xattr_acl([(USER_OBJ, 6, UNDEF), (USER, 4, NOBODY),
                       (GROUP_OBJ, 4, UNDEF), (MASK, 4, UNDEF),
                       (OTHER_TAG, 0, UNDEF)])
    bad = {
        "short": b"\x02\x00",
        "version": _xattr_acl([(USER_OBJ, 6, UNDEF), (GROUP_OBJ, 4, UNDEF),
                               (OTHER_TAG, 4, UNDEF)], version=1),
        "ragged": good + b"\x01\x00",
        "no mask": _xattr_acl([(USER_OBJ, 6, UNDEF), (USER, 4, NOBODY),
                               (GROUP_OBJ, 4, UNDEF), (OTHER_TAG, 0, UNDEF)]),
        "order": _xattr_acl([(GROUP_OBJ, 4, UNDEF), (USER_OBJ, 6, UNDEF),
                             (OTHER_TAG, 0, UNDEF)]),
        "perm": _xattr_acl([(USER_OBJ, 8, UNDEF), (GROUP_OBJ, 4, UNDEF),
                            (OTHER_TAG, 0, UNDEF)]),
        "tag": _xattr_acl([(USER_OBJ, 6, UNDEF), (0x40, 4, UNDEF),
                           (GROUP_OBJ, 4, UNDEF), (OTHER_TAG, 0, UNDEF)]),
        "no other": _xattr_acl([(USER_OBJ, 6, UNDEF), (GROUP_OBJ, 4, UNDEF)]),
        "two owners": _xattr_acl([(USER_OBJ, 6, UNDEF), (USER_OBJ, 6, UNDEF),
                                  (GROUP_OBJ, 4, UNDEF),
                                  (OTHER_TAG, 0, UNDEF)]),
        "undefined uid": _xattr_acl([(USER_OBJ, 6, UNDEF), (USER, 4, UNDEF),
                                     (GROUP_OBJ, 4, UNDEF), (MASK, 4, UNDEF),
                                     (OTHER_TAG, 0, UNDEF)]),
    }

    def scenario(d):
        p = os.path.join(d, "f")
        write_file(p, b"", 0o644)
        os.mkdir(os.path.join(d, "dir"))
        out = {}
        for name, value in bad.items():
            try:
                os.setxattr(p, ACCESS, value)
                out[name] = 0
            except OSError as e:
                out[name] = errno.errorcode[e.errno]
        for name, path, attr in (("default on a file", p, DEFAULT),
                                 ("other system name", p, "system.zero_x")):
            try:
                os.setxattr(path, attr, good)
                out[name] = 0
            except OSError as e:
                out[name] = errno.errorcode[e.errno]
        out["mode before"] = mode_of(p)
        os.setxattr(p, ACCESS, good)
        out["mode"] = mode_of(p)
        out["value"] = os.getxattr(p, ACCESS)
        os.setxattr(os.path.join(d, "dir"), DEFAULT, good)
        out["default"] = os.getxattr(os.path.join(d, "dir"), DEFAULT)
        for name, path, attr in (("remove", p, ACCESS),
                                 ("remove again", p, ACCESS),
                                 ("remove default", os.path.join(d, "dir"),
                                  DEFAULT),
                                 ("get removed", p, ACCESS)):
            try:
                if name.startswith("get"):
                    os.getxattr(path, attr)
                else:
                    os.removexattr(path, attr)
                out[name] = 0
            except OSError as e:
                out[name] = errno.errorcode[e.errno]
        return out

    out = both(workdir, ext4dir, scenario)
    assert out["order"] == "EINVAL" and out["mode"] == oct(0o100640)
    assert out["value"] == good


def _make_tree(src):
    os.makedirs(os.path.join(src, "a", "b"))
    write_file(os.path.join(src, "a", "f1"), b"one" * 1000, 0o640)
    write_file(os.path.join(src, "a", "b", "f2"), b"two", 0o600)
    os.link(os.path.join(src, "a", "f1"), os.path.join(src, "a", "b", "hard"))
    os.symlink("../f1", os.path.join(src, "a", "b", "sym"))
    os.mkfifo(os.path.join(src, "a", "fifo"))
    os.setxattr(os.path.join(src, "a", "f1"), "user.note", b"hello")
    os.setxattr(os.path.join(src, "a", "b"), "user.dir", b"d")
    os.setxattr(os.path.join(src, "a", "b", "f2"), "trusted.t", b"t")
    run("setfacl", "-m", f"u:{NOBODY}:r,g:{EXTRA_GROUP}:rw",
        os.path.join(src, "a", "f1"))
    run("setfacl", "-m", f"u:{OTHER}:rwx", os.path.join(src, "a", "b"))
    run("setfacl", "-d", "-m", f"u:{NOBODY}:rx",
        os.path.join(src, "a", "b"))
    run("setfacl", "-m", f"g:{EXTRA_GROUP}:r", os.path.join(src, "a", "fifo"))
    os.chown(os.path.join(src, "a", "b", "f2"), NOBODY, EXTRA_GROUP)


def acl_blocks(d):
    """getfacl -R of D, one block per file, in name order (readdir's
    order differs between filesystems)."""
    return sorted(getfacl(d, "-R", ".").strip().split("\n\n"))


def test_rsync_preserves_acls_and_xattrs(workdir, ext4dir):
    src = os.path.join(ext4dir, "src")
    _make_tree(src)
    dst = os.path.join(workdir, "dst")
    p = run("rsync", "-aHAX", src + "/", dst + "/", check=False)
    assert p.returncode == 0, p.stderr
    again = run("rsync", "-aHAXn", "--itemize-changes", src + "/", dst + "/")
    assert again.stdout == "", again.stdout
    assert acl_blocks(src) == acl_blocks(dst)
    assert os.getxattr(os.path.join(dst, "a", "f1"), "user.note") == b"hello"
    assert os.getxattr(os.path.join(dst, "a", "b", "f2"),
                       "trusted.t") == b"t"
    assert os.stat(os.path.join(dst, "a", "f1")).st_ino == \
        os.stat(os.path.join(dst, "a", "b", "hard")).st_ino
    drop_caches()
    again = run("rsync", "-aHAXn", "--itemize-changes", src + "/", dst + "/")
    assert again.stdout == "", again.stdout
