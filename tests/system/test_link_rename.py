"""link (exact nlink through unlink and rename) and rename (replace,
RENAME_NOREPLACE, RENAME_EXCHANGE, EINVAL into its own subtree, ...)."""

import errno
import os
import stat
import time

from sysutil import (EXTRA_GROUP, Dir, RENAME_EXCHANGE, RENAME_NOREPLACE,
                     drop_caches, expect_errno, read_file, renameat2,
                     user_errno, write_file)


def j(*a):
    return os.path.join(*a)


def test_hard_links(workdir):
    a = j(workdir, "a")
    write_file(a, b"shared")
    ino = os.stat(a).st_ino
    os.mkdir(j(workdir, "d"))
    names = [a, j(workdir, "b"), j(workdir, "d", "c"), j(workdir, "d", "e")]
    for n in names[1:]:
        os.link(a, n)
    for n in names:
        st = os.stat(n)
        assert st.st_ino == ino and st.st_nlink == 4
    # writes through one name are seen through the others
    fd = os.open(j(workdir, "d", "c"), os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"+more")
    os.close(fd)
    assert read_file(j(workdir, "b")) == b"shared+more"
    os.chmod(j(workdir, "b"), 0o600)
    assert stat.S_IMODE(os.stat(a).st_mode) == 0o600
    # unlink counts down exactly
    os.unlink(j(workdir, "d", "e"))
    assert os.stat(a).st_nlink == 3
    # rename of a link within/between directories keeps the count
    os.rename(j(workdir, "b"), j(workdir, "d", "b2"))
    assert os.stat(a).st_nlink == 3
    # rename of one link onto another link of the same inode: no-op
    os.rename(j(workdir, "d", "b2"), a)
    assert os.path.exists(j(workdir, "d", "b2")) and os.path.exists(a)
    assert os.stat(a).st_nlink == 3
    # rename over a link of the same inode from another inode's name
    write_file(j(workdir, "other"), b"other")
    os.rename(j(workdir, "other"), j(workdir, "d", "c"))
    assert os.stat(a).st_nlink == 2
    assert read_file(j(workdir, "d", "c")) == b"other"
    drop_caches()
    assert os.stat(a).st_nlink == 2
    os.unlink(a)
    st = os.stat(j(workdir, "d", "b2"))
    assert st.st_nlink == 1 and st.st_ino == ino
    assert read_file(j(workdir, "d", "b2")) == b"shared+more"


def test_link_errors(workdir):
    a = j(workdir, "a")
    write_file(a, b"x")
    os.mkdir(j(workdir, "d"))
    with expect_errno(errno.EEXIST):
        os.link(a, a)
    with expect_errno(errno.EPERM):
        os.link(j(workdir, "d"), j(workdir, "dlink"))
    with expect_errno(errno.ENOENT):
        os.link(j(workdir, "missing"), j(workdir, "l"))
    with expect_errno(errno.ENOENT):
        os.link(a, j(workdir, "nodir", "l"))
    with expect_errno(errno.ENOTDIR):
        os.link(a, j(a, "l"))
    assert os.stat(a).st_nlink == 1
    # link to a symlink links the symlink itself
    os.symlink("a", j(workdir, "s"))
    os.link(j(workdir, "s"), j(workdir, "s2"), follow_symlinks=False)
    assert os.lstat(j(workdir, "s2")).st_nlink == 2
    assert stat.S_ISLNK(os.lstat(j(workdir, "s2")).st_mode)
    assert os.stat(a).st_nlink == 1


def test_rename_file(workdir):
    a, b = j(workdir, "a"), j(workdir, "b")
    write_file(a, b"A")
    ino = os.stat(a).st_ino
    os.rename(a, b)
    assert not os.path.exists(a)
    assert os.stat(b).st_ino == ino and read_file(b) == b"A"
    # over an existing file: the old target goes away
    write_file(a, b"new")
    victim_ino = os.stat(b).st_ino
    os.link(b, j(workdir, "keep"))
    victim_ctime = os.stat(b).st_ctime_ns
    time.sleep(0.02)
    os.rename(a, b)
    assert read_file(b) == b"new"
    st = os.stat(j(workdir, "keep"))
    assert st.st_ino == victim_ino and st.st_nlink == 1
    assert st.st_ctime_ns > victim_ctime    # it lost a link
    # to itself
    os.rename(b, b)
    assert read_file(b) == b"new"
    assert sorted(os.listdir(workdir)) == ["b", "keep"]
    with expect_errno(errno.ENOENT):
        os.rename(j(workdir, "missing"), j(workdir, "x"))
    with expect_errno(errno.ENOENT):
        os.rename(b, j(workdir, "nodir", "x"))


def test_rename_directories(workdir):
    d1, d2 = j(workdir, "d1"), j(workdir, "d2")
    os.mkdir(d1)
    os.mkdir(d2)
    write_file(j(d1, "f"), b"in d1")
    os.mkdir(j(d1, "sub"))
    base_nlink = os.stat(workdir).st_nlink
    # a whole tree moves; nlink of both parents follows
    os.rename(j(d1, "sub"), j(d2, "sub"))
    assert os.stat(d1).st_nlink == 2 and os.stat(d2).st_nlink == 3
    assert os.stat(j(d2, "sub", "..")).st_ino == os.stat(d2).st_ino
    os.rename(d1, j(d2, "sub", "d1"))
    assert os.stat(workdir).st_nlink == base_nlink - 1
    assert read_file(j(d2, "sub", "d1", "f")) == b"in d1"
    assert os.stat(j(d2, "sub", "d1", "..")).st_ino == \
        os.stat(j(d2, "sub")).st_ino
    # over an empty directory
    empty = j(workdir, "empty")
    os.mkdir(empty)
    n = os.stat(workdir).st_nlink
    os.rename(j(d2, "sub"), empty)
    assert os.stat(workdir).st_nlink == n
    assert os.stat(d2).st_nlink == 2
    assert os.listdir(empty) == ["d1"]
    assert read_file(j(empty, "d1", "f")) == b"in d1"
    # over a non-empty directory
    os.mkdir(j(workdir, "x"))
    with expect_errno(errno.ENOTEMPTY):
        os.rename(j(workdir, "x"), empty)
    # file over directory and directory over file
    write_file(j(workdir, "file"), b"")
    with expect_errno(errno.EISDIR):
        os.rename(j(workdir, "file"), j(workdir, "x"))
    with expect_errno(errno.ENOTDIR):
        os.rename(j(workdir, "x"), j(workdir, "file"))
    # into its own subtree
    with expect_errno(errno.EINVAL):
        os.rename(empty, j(empty, "d1", "inside"))
    with expect_errno(errno.EINVAL):
        os.rename(empty, j(empty, "inside"))
    with expect_errno(errno.EBUSY):
        os.rename(j(empty, "."), j(workdir, "dot"))
    with expect_errno(errno.EBUSY):
        os.rename(j(workdir, "x"), j(empty, ".."))
    # the tree is unchanged by the failures
    assert sorted(os.listdir(workdir)) == ["d2", "empty", "file", "x"]
    drop_caches()
    assert read_file(j(empty, "d1", "f")) == b"in d1"


def test_rename_noreplace(workdir):
    a, b = j(workdir, "a"), j(workdir, "b")
    write_file(a, b"A")
    write_file(b, b"B")
    with expect_errno(errno.EEXIST):
        renameat2(a, b, RENAME_NOREPLACE)
    assert read_file(a) == b"A" and read_file(b) == b"B"
    renameat2(a, j(workdir, "c"), RENAME_NOREPLACE)
    assert sorted(os.listdir(workdir)) == ["b", "c"]
    os.mkdir(j(workdir, "d"))
    with expect_errno(errno.EEXIST):
        renameat2(b, j(workdir, "d"), RENAME_NOREPLACE)
    with expect_errno(errno.EINVAL):
        renameat2(b, j(workdir, "c"), RENAME_NOREPLACE | RENAME_EXCHANGE)


def test_rename_exchange(workdir):
    a, b = j(workdir, "a"), j(workdir, "b")
    write_file(a, b"A")
    os.mkdir(b)
    write_file(j(b, "inner"), b"I")
    ia, ib = os.stat(a).st_ino, os.stat(b).st_ino
    renameat2(a, b, RENAME_EXCHANGE)
    assert os.stat(a).st_ino == ib and os.stat(b).st_ino == ia
    assert read_file(b) == b"A" and read_file(j(a, "inner")) == b"I"
    # exchange across directories: '..' and nlink follow the directory
    os.mkdir(j(workdir, "p"))
    write_file(j(workdir, "p", "f"), b"F")
    n_work, n_p = os.stat(workdir).st_nlink, os.stat(j(workdir, "p")).st_nlink
    renameat2(a, j(workdir, "p", "f"), RENAME_EXCHANGE)
    assert read_file(a) == b"F"
    assert read_file(j(workdir, "p", "f", "inner")) == b"I"
    assert os.stat(j(workdir, "p", "f", "..")).st_ino == \
        os.stat(j(workdir, "p")).st_ino
    assert os.stat(workdir).st_nlink == n_work - 1
    assert os.stat(j(workdir, "p")).st_nlink == n_p + 1
    with expect_errno(errno.ENOENT):
        renameat2(a, j(workdir, "missing"), RENAME_EXCHANGE)
    with expect_errno(errno.EINVAL):
        renameat2(j(workdir, "p"), j(workdir, "p", "f", "inner"),
                  RENAME_EXCHANGE)
    drop_caches()
    assert read_file(a) == b"F" and read_file(b) == b"A"


def test_rename_open_file(workdir):
    """An open descriptor follows its inode across renames; a file that is
    renamed over stays readable through its open descriptor."""
    a, b = j(workdir, "a"), j(workdir, "b")
    write_file(a, b"first")
    write_file(b, b"second")
    fa = os.open(a, os.O_RDWR)
    fb = os.open(b, os.O_RDONLY)
    try:
        os.rename(a, b)
        assert os.pread(fb, 100, 0) == b"second"
        assert os.fstat(fb).st_nlink == 0
        os.pwrite(fa, b"FIRST", 0)
        assert read_file(b) == b"FIRST"
    finally:
        os.close(fa)
        os.close(fb)
    assert os.listdir(workdir) == ["b"]


def test_rename_exchange_directories_across_parents(workdir):
    p1, p2 = j(workdir, "p1"), j(workdir, "p2")
    os.mkdir(p1)
    os.mkdir(p2)
    os.mkdir(j(p1, "a"))
    os.mkdir(j(p1, "a", "sub"))
    os.mkdir(j(p2, "b"))
    write_file(j(p2, "b", "f"), b"f")
    n1, n2 = os.stat(p1).st_nlink, os.stat(p2).st_nlink
    ia, ib = os.stat(j(p1, "a")).st_ino, os.stat(j(p2, "b")).st_ino
    ca, cb = os.stat(j(p1, "a")).st_ctime_ns, os.stat(j(p2, "b")).st_ctime_ns
    time.sleep(0.02)
    renameat2(j(p1, "a"), j(p2, "b"), RENAME_EXCHANGE)
    assert os.stat(j(p1, "a")).st_ino == ib
    assert os.stat(j(p2, "b")).st_ino == ia
    assert os.stat(j(p1, "a", "..")).st_ino == os.stat(p1).st_ino
    assert os.stat(j(p2, "b", "..")).st_ino == os.stat(p2).st_ino
    assert (os.stat(p1).st_nlink, os.stat(p2).st_nlink) == (n1, n2)
    assert os.stat(j(p2, "b")).st_nlink == 3      # it holds "sub"
    assert os.stat(j(p1, "a")).st_ctime_ns > cb
    assert os.stat(j(p2, "b")).st_ctime_ns > ca
    drop_caches()
    assert os.listdir(j(p1, "a")) == ["f"]
    assert os.listdir(j(p2, "b")) == ["sub"]
    assert os.stat(j(p2, "b", "sub", "..", "..")).st_ino == os.stat(p2).st_ino


def test_many_links(workdir):
    a = j(workdir, "a")
    write_file(a, b"many")
    os.mkdir(j(workdir, "d"))
    for i in range(1000):
        os.link(a, j(workdir, "d", f"l{i}"))
    assert os.stat(a).st_nlink == 1001
    for i in range(0, 1000, 2):
        os.unlink(j(workdir, "d", f"l{i}"))
    for i in range(1, 1000, 4):
        os.rename(j(workdir, "d", f"l{i}"), j(workdir, f"m{i}"))
    drop_caches()
    assert os.stat(a).st_nlink == 501
    os.unlink(a)
    assert os.stat(j(workdir, "m1")).st_nlink == 500
    assert read_file(j(workdir, "d", "l3")) == b"many"


RENAME_WHITEOUT = 4


def _whiteout_scenario(d):
    def st(name):
        s = os.lstat(j(d, name))
        return (stat.S_IFMT(s.st_mode), oct(stat.S_IMODE(s.st_mode)),
                s.st_rdev, s.st_uid, s.st_gid, s.st_nlink)

    def outcome(fn):
        try:
            fn()
            return 0
        except OSError as e:
            return errno.errorcode[e.errno]

    write_file(j(d, "a"), b"content a")
    write_file(j(d, "b"), b"content b")
    os.mkdir(j(d, "dir"))
    write_file(j(d, "dir", "inner"), b"in")
    out = {}
    out["plain"] = outcome(lambda: renameat2(j(d, "a"), j(d, "moved"),
                                             RENAME_WHITEOUT))
    out["whiteout"] = st("a")
    out["moved"] = read_file(j(d, "moved"))
    out["replace"] = outcome(lambda: renameat2(j(d, "moved"), j(d, "b"),
                                               RENAME_WHITEOUT))
    out["b"] = read_file(j(d, "b"))
    out["whiteout 2"] = st("moved")
    out["noreplace exists"] = outcome(lambda: renameat2(
        j(d, "b"), j(d, "a"), RENAME_WHITEOUT | RENAME_NOREPLACE))
    out["noreplace"] = outcome(lambda: renameat2(
        j(d, "b"), j(d, "c"), RENAME_WHITEOUT | RENAME_NOREPLACE))
    out["exchange"] = outcome(lambda: renameat2(
        j(d, "c"), j(d, "a"), RENAME_WHITEOUT | RENAME_EXCHANGE))
    # a directory, into another directory
    os.mkdir(j(d, "sub"))
    out["dir"] = outcome(lambda: renameat2(j(d, "dir"), j(d, "sub", "dir"),
                                           RENAME_WHITEOUT))
    out["dir whiteout"] = st("dir")
    out["dir moved"] = read_file(j(d, "sub", "dir", "inner"))
    out["nlink"] = (os.lstat(d).st_nlink, os.lstat(j(d, "sub")).st_nlink)
    # the whiteout takes the setgid directory's group
    os.chmod(j(d, "sub"), 0o2777)
    os.chown(j(d, "sub"), 0, EXTRA_GROUP)
    write_file(j(d, "sub", "g"), b"")
    out["setgid"] = outcome(lambda: renameat2(j(d, "sub", "g"), j(d, "g2"),
                                              RENAME_WHITEOUT))
    out["setgid whiteout"] = st("sub/g")
    # since Linux 5.8 it needs no CAP_MKNOD; the whiteout is the caller's
    write_file(j(d, "u"), b"")
    os.chmod(d, 0o777)
    out["unprivileged"] = user_errno(
        lambda: renameat2("u", "u2", RENAME_WHITEOUT), d)
    out["unprivileged whiteout"] = st("u")
    os.chmod(d, 0o755)
    out["missing"] = outcome(lambda: renameat2(j(d, "nope"), j(d, "x"),
                                               RENAME_WHITEOUT))
    drop_caches()
    out["after drop"] = (st("a"), st("dir"), sorted(os.listdir(d)))
    with Dir(d) as dp:
        types = []
        while True:
            ent = dp.read()
            if ent is None:
                break
            types.append((ent[0], ent[2]))
        out["types"] = sorted(types)  # d_type: DT_CHR (2) for whiteouts
    os.unlink(j(d, "a"))
    out["unlinked"] = sorted(os.listdir(d))
    return out


def test_rename_whiteout(workdir, ext4dir):
    got, want = _whiteout_scenario(workdir), _whiteout_scenario(ext4dir)
    assert got == want
    assert got["whiteout"][:3] == (stat.S_IFCHR, "0o0", 0)
    assert got["exchange"] == "EINVAL" and got["unprivileged"] == 0
