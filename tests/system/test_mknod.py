"""mknod: regular files, fifos, sockets, character and block devices."""

import errno
import os
import socket
import stat
import threading

from sysutil import expect_errno, read_file, write_file


def test_mknod_regular(workdir):
    p = os.path.join(workdir, "r")
    os.mknod(p, stat.S_IFREG | 0o640)
    st = os.stat(p)
    assert stat.S_ISREG(st.st_mode) and st.st_size == 0 and st.st_nlink == 1
    assert stat.S_IMODE(st.st_mode) == 0o640 & ~_umask()
    write_file(p, b"data")
    assert read_file(p) == b"data"
    with expect_errno(errno.EEXIST):
        os.mknod(p, stat.S_IFREG | 0o600)


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def test_fifo(workdir):
    p = os.path.join(workdir, "fifo")
    os.mkfifo(p, 0o600)
    st = os.stat(p)
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_size == 0
    with expect_errno(errno.EEXIST):
        os.mkfifo(p)
    # it is a working pipe
    r = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    w = os.open(p, os.O_WRONLY)
    try:
        os.write(w, b"through the fifo")
        assert os.read(r, 100) == b"through the fifo"
    finally:
        os.close(w)
        os.close(r)
    os.mknod(os.path.join(workdir, "fifo2"), stat.S_IFIFO | 0o644)
    assert stat.S_ISFIFO(os.stat(os.path.join(workdir, "fifo2")).st_mode)
    os.unlink(p)
    assert os.listdir(workdir) == ["fifo2"]


def test_socket(workdir):
    # bind with a relative name: the full path may exceed sun_path
    old = os.getcwd()
    os.chdir(workdir)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        srv.bind("sock")
        srv.listen(1)
        st = os.stat("sock")
        assert stat.S_ISSOCK(st.st_mode)
        got = []

        def accept():
            c, _ = srv.accept()
            got.append(c.recv(100))
            c.close()

        t = threading.Thread(target=accept)
        t.start()
        cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        cli.connect("sock")
        cli.sendall(b"hello")
        cli.close()
        t.join(10)
        assert got == [b"hello"]
        with expect_errno(errno.EADDRINUSE):
            s2 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s2.bind("sock")
            finally:
                s2.close()
    finally:
        srv.close()
        os.chdir(old)
    os.mknod(os.path.join(workdir, "sock2"), stat.S_IFSOCK | 0o600)
    assert stat.S_ISSOCK(os.stat(os.path.join(workdir, "sock2")).st_mode)
    os.unlink(os.path.join(workdir, "sock"))


def test_device_nodes(workdir):
    c = os.path.join(workdir, "chr")
    b = os.path.join(workdir, "blk")
    os.mknod(c, stat.S_IFCHR | 0o620, os.makedev(1, 3))
    os.mknod(b, stat.S_IFBLK | 0o600, os.makedev(259, 70000))
    st = os.stat(c)
    assert stat.S_ISCHR(st.st_mode)
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
    assert stat.S_IMODE(st.st_mode) == 0o620 & ~_umask()
    st = os.stat(b)
    assert stat.S_ISBLK(st.st_mode)
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (259, 70000)
    assert st.st_size == 0
    # renaming and linking keep the type and device number
    os.rename(c, c + "2")
    os.link(c + "2", c + "3")
    st = os.stat(c + "3")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert st.st_nlink == 2
    with expect_errno(errno.EEXIST):
        os.mknod(b, stat.S_IFCHR | 0o600, os.makedev(1, 5))


def test_mknod_errors(workdir):
    with expect_errno(errno.ENOENT):
        os.mknod(os.path.join(workdir, "no", "x"), stat.S_IFIFO | 0o600)
    with expect_errno(errno.EPERM):
        os.mknod(os.path.join(workdir, "dir"), stat.S_IFDIR | 0o700)
    assert os.listdir(workdir) == []
