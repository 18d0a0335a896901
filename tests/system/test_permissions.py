"""access(2), permission checks, sticky directories and setgid directories,
as on ext4. The unprivileged actors are forked children (sysutil.as_user)."""

import errno
import os
import stat

from sysutil import (EXTRA_GROUP, NOBODY, OTHER, as_user, expect_errno,
                     read_file, user_errno, write_file)


def test_access_root(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"")
    os.chmod(p, 0o000)
    assert os.access(p, os.F_OK)
    assert os.access(p, os.R_OK | os.W_OK)
    # root needs at least one x bit to execute
    assert not os.access(p, os.X_OK)
    os.chmod(p, 0o001)
    assert os.access(p, os.X_OK)
    assert os.access(workdir, os.X_OK)
    assert not os.access(os.path.join(workdir, "missing"), os.F_OK)


def test_access_user(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"")

    def acc(mode, **kw):
        return as_user(lambda: os.access("f", mode), workdir, **kw)

    os.chown(p, NOBODY, EXTRA_GROUP)
    for mode, owner, group, other in (
            (0o400, os.R_OK, 0, 0), (0o200, os.W_OK, 0, 0),
            (0o100, os.X_OK, 0, 0), (0o040, 0, os.R_OK, 0),
            (0o020, 0, os.W_OK, 0), (0o010, 0, os.X_OK, 0),
            (0o004, 0, 0, os.R_OK), (0o002, 0, 0, os.W_OK),
            (0o001, 0, 0, os.X_OK), (0o070, 0, 7, 0), (0o007, 0, 0, 7)):
        os.chmod(p, mode)
        for bit in (os.R_OK, os.W_OK, os.X_OK):
            # the owner class applies to the owner even when the group
            # class would allow more
            assert acc(bit, uid=NOBODY, groups=[EXTRA_GROUP]) == \
                bool(owner & bit), (oct(mode), bit)
            assert acc(bit, uid=OTHER, groups=[EXTRA_GROUP]) == \
                bool(group & bit), (oct(mode), bit)
            assert acc(bit, uid=OTHER) == bool(other & bit), (oct(mode), bit)
    assert acc(os.F_OK, uid=OTHER)


def test_file_permissions_enforced(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"secret")
    os.chmod(p, 0o600)
    assert user_errno(lambda: os.open("f", os.O_RDONLY), workdir) == \
        errno.EACCES
    assert user_errno(lambda: os.open("f", os.O_WRONLY), workdir) == \
        errno.EACCES
    os.chmod(p, 0o644)
    assert as_user(lambda: read_file("f"), workdir) == b"secret"
    assert user_errno(lambda: os.open("f", os.O_WRONLY | os.O_TRUNC),
                      workdir) == errno.EACCES
    assert read_file(p) == b"secret"
    os.chmod(p, 0o622)

    def append():
        fd = os.open("f", os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"+")
        os.close(fd)
    as_user(append, workdir)
    assert read_file(p) == b"secret+"


def test_directory_permissions(workdir):
    d = os.path.join(workdir, "d")
    os.mkdir(d)
    write_file(os.path.join(d, "f"), b"x")
    os.chmod(d, 0o755)
    # no write permission: cannot create, remove or rename inside
    assert user_errno(lambda: write_file("d/new", b""), workdir) == \
        errno.EACCES
    assert user_errno(lambda: os.unlink("d/f"), workdir) == errno.EACCES
    assert user_errno(lambda: os.mkdir("d/sub"), workdir) == errno.EACCES
    assert user_errno(lambda: os.rename("d/f", "d/g"), workdir) == \
        errno.EACCES
    assert user_errno(lambda: os.symlink("x", "d/s"), workdir) == \
        errno.EACCES
    # read but no search: names listable, entries not reachable
    os.chmod(d, 0o744)
    assert as_user(lambda: os.listdir("d"), workdir) == ["f"]
    assert user_errno(lambda: os.stat("d/f"), workdir) == errno.EACCES
    # search but no read: reachable, not listable
    os.chmod(d, 0o711)
    assert user_errno(lambda: os.listdir("d"), workdir) == errno.EACCES
    assert as_user(lambda: read_file("d/f"), workdir) == b"x"
    # write+search: everything
    os.chmod(d, 0o733)
    as_user(lambda: write_file("d/new", b"n"), workdir)
    st = os.stat(os.path.join(d, "new"))
    assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY)
    as_user(lambda: os.rename("d/new", "d/renamed"), workdir)
    as_user(lambda: os.unlink("d/f"), workdir)  # not sticky: allowed
    assert sorted(os.listdir(d)) == ["renamed"]
    # moving a directory to another parent needs write permission on the
    # directory itself (to update '..')
    os.mkdir(os.path.join(d, "sub"))
    os.chmod(os.path.join(d, "sub"), 0o755)
    os.mkdir(os.path.join(workdir, "other"))
    os.chmod(os.path.join(workdir, "other"), 0o777)
    assert user_errno(lambda: os.rename("d/sub", "other/sub"), workdir) == \
        errno.EACCES


def test_new_file_ownership(workdir):
    os.chmod(workdir, 0o777)
    as_user(lambda: write_file("mine", b""), workdir, uid=NOBODY,
            gid=OTHER)
    as_user(lambda: os.mkdir("mydir"), workdir, uid=NOBODY, gid=OTHER)
    as_user(lambda: os.symlink("x", "mylink"), workdir, uid=NOBODY,
            gid=OTHER)
    as_user(lambda: os.mkfifo("myfifo"), workdir, uid=NOBODY, gid=OTHER)
    for n in ("mine", "mydir", "mylink", "myfifo"):
        st = os.lstat(os.path.join(workdir, n))
        assert (st.st_uid, st.st_gid) == (NOBODY, OTHER), n
    # an unprivileged user cannot make device nodes
    assert user_errno(lambda: os.mknod("dev", stat.S_IFCHR | 0o600,
                                       os.makedev(1, 3)),
                      workdir) == errno.EPERM


def test_sticky_directory(workdir):
    t = os.path.join(workdir, "tmp")
    os.mkdir(t)
    os.chmod(t, 0o1777)
    as_user(lambda: write_file("tmp/a", b"a"), workdir, uid=NOBODY)
    as_user(lambda: write_file("tmp/b", b"b"), workdir, uid=OTHER)
    as_user(lambda: os.mkdir("tmp/adir"), workdir, uid=NOBODY)
    # others may not remove or rename what they do not own
    assert user_errno(lambda: os.unlink("tmp/a"), workdir, uid=OTHER) == \
        errno.EPERM
    assert user_errno(lambda: os.rename("tmp/a", "tmp/c"), workdir,
                      uid=OTHER) == errno.EPERM
    assert user_errno(lambda: os.rmdir("tmp/adir"), workdir, uid=OTHER) == \
        errno.EPERM
    # nor replace it by renaming over it
    assert user_errno(lambda: os.rename("tmp/b", "tmp/a"), workdir,
                      uid=OTHER) == errno.EPERM
    assert read_file(os.path.join(t, "a")) == b"a"
    # the owner of the file may
    as_user(lambda: os.rename("tmp/a", "tmp/a2"), workdir, uid=NOBODY)
    as_user(lambda: os.unlink("tmp/a2"), workdir, uid=NOBODY)
    # the owner of the directory may remove anything in it
    os.chown(t, OTHER, OTHER)
    as_user(lambda: os.rmdir("tmp/adir"), workdir, uid=OTHER)
    # root may as well
    as_user(lambda: write_file("tmp/c", b"c"), workdir, uid=NOBODY)
    os.unlink(os.path.join(t, "c"))
    assert os.listdir(t) == ["b"]
    assert stat.S_IMODE(os.stat(t).st_mode) == 0o1777


def test_setgid_directory(workdir):
    d = os.path.join(workdir, "sg")
    os.mkdir(d)
    os.chown(d, 0, EXTRA_GROUP)
    os.chmod(d, 0o2777)
    # new entries take the directory's group, subdirectories the bit too
    as_user(lambda: write_file("sg/f", b""), workdir, uid=NOBODY)
    as_user(lambda: os.mkdir("sg/sub"), workdir, uid=NOBODY)
    as_user(lambda: os.mkfifo("sg/p"), workdir, uid=NOBODY)
    st = os.stat(os.path.join(d, "f"))
    assert (st.st_uid, st.st_gid) == (NOBODY, EXTRA_GROUP)
    assert not st.st_mode & stat.S_ISGID
    st = os.stat(os.path.join(d, "sub"))
    assert (st.st_uid, st.st_gid) == (NOBODY, EXTRA_GROUP)
    assert st.st_mode & stat.S_ISGID
    assert os.stat(os.path.join(d, "p")).st_gid == EXTRA_GROUP
    as_user(lambda: os.symlink("f", "sg/sym"), workdir, uid=NOBODY)
    assert os.lstat(os.path.join(d, "sym")).st_gid == EXTRA_GROUP
    # and inherited further down
    as_user(lambda: os.mkdir("sg/sub/deeper"), workdir, uid=NOBODY)
    st = os.stat(os.path.join(d, "sub", "deeper"))
    assert st.st_gid == EXTRA_GROUP and st.st_mode & stat.S_ISGID
    # a non-member creating a setgid file there gets the bit stripped
    def create_sgid():
        fd = os.open("sg/x", os.O_CREAT | os.O_WRONLY, 0o2755)
        os.close(fd)
    old = os.umask(0)
    try:
        as_user(create_sgid, workdir, uid=NOBODY)
    finally:
        os.umask(old)
    st = os.stat(os.path.join(d, "x"))
    assert st.st_gid == EXTRA_GROUP
    assert stat.S_IMODE(st.st_mode) == 0o755
    # moving a file in does not change its group
    write_file(os.path.join(workdir, "outside"), b"")
    os.rename(os.path.join(workdir, "outside"), os.path.join(d, "moved"))
    assert os.stat(os.path.join(d, "moved")).st_gid == 0
    # root creating there also gets the directory's group
    write_file(os.path.join(d, "byroot"), b"")
    assert os.stat(os.path.join(d, "byroot")).st_gid == EXTRA_GROUP


def test_open_fd_survives_chmod(workdir):
    p = os.path.join(workdir, "f")
    write_file(p, b"")
    os.chmod(p, 0o666)
    rfd, wfd = os.pipe()

    def writer():
        fd = os.open("f", os.O_WRONLY)
        os.write(wfd, b"1")          # tell the parent the file is open
        os.read(rfd2, 1)             # wait until it has chmod'ed
        os.write(fd, b"still writable")
        os.close(fd)
        return True

    rfd2, wfd2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(workdir)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            writer()
        finally:
            os._exit(0)
    try:
        assert os.read(rfd, 1) == b"1"
        os.chmod(p, 0o000)
        os.write(wfd2, b"g")
    finally:
        os.waitpid(pid, 0)
        for fd in (rfd, wfd, rfd2, wfd2):
            os.close(fd)
    assert read_file(p) == b"still writable"
    with expect_errno(errno.EACCES):
        as_user(lambda: os.open("f", os.O_WRONLY), workdir)
