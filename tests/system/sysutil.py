"""Helpers for the system tests: syscalls Python's os module lacks (through
ctypes), errno assertions, file helpers and the unprivileged-actor fork.

Everything here works the same on a plain directory and on a Zero mount.
"""

import contextlib
import ctypes
import ctypes.util
import errno
import os
import pickle
import re
import stat

libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2

FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2

# Sentinels for utimensat(); mapped to the kernel's values in _ts().
UTIME_NOW = "UTIME_NOW"
UTIME_OMIT = "UTIME_OMIT"
_UTIME_SPECIAL = {UTIME_NOW: (1 << 30) - 1, UTIME_OMIT: (1 << 30) - 2}

XATTR_CREATE = 1
XATTR_REPLACE = 2

# Unprivileged actors used by the permission tests.
NOBODY = 65534      # uid and gid of the first actor
OTHER = 65533       # uid and gid of the second actor
EXTRA_GROUP = 65532  # a group only some actors are members of


def _fsenc(path):
    return os.fsencode(path)


def _check(ret, what, path=None):
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return ret


libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                           ctypes.c_char_p, ctypes.c_uint]
libc.renameat2.restype = ctypes.c_int


def renameat2(old, new, flags):
    return _check(libc.renameat2(AT_FDCWD, _fsenc(old), AT_FDCWD,
                                 _fsenc(new), flags), "renameat2", old)


libc.fallocate64.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                             ctypes.c_int64]
libc.fallocate64.restype = ctypes.c_int


def fallocate(fd, mode, offset, length):
    return _check(libc.fallocate64(fd, mode, offset, length), "fallocate")


def punch_hole(fd, offset, length):
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                     offset, length)


class timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p,
                           ctypes.POINTER(timespec), ctypes.c_int]
libc.utimensat.restype = ctypes.c_int


def _ts(value):
    if isinstance(value, str):
        return timespec(0, _UTIME_SPECIAL[value])
    sec, nsec = divmod(value, 10**9)
    return timespec(sec, nsec)


def utimensat(path, atime_ns, mtime_ns, follow=True):
    """utimensat(2); each time is nanoseconds or UTIME_NOW / UTIME_OMIT.
    Pass None for both to set both to the current time (times == NULL)."""
    flags = 0 if follow else AT_SYMLINK_NOFOLLOW
    if atime_ns is None and mtime_ns is None:
        times = None
    else:
        times = (timespec * 2)(_ts(atime_ns), _ts(mtime_ns))
    return _check(libc.utimensat(AT_FDCWD, _fsenc(path), times, flags),
                  "utimensat", path)


for _name in ("getxattr", "lgetxattr"):
    getattr(libc, _name).argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                     ctypes.c_void_p, ctypes.c_size_t]
    getattr(libc, _name).restype = ctypes.c_ssize_t
libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
libc.listxattr.restype = ctypes.c_ssize_t


def getxattr_raw(path, name, size):
    """getxattr(2) with an explicit buffer size; returns (ret, bytes)."""
    buf = ctypes.create_string_buffer(max(size, 1))
    ret = _check(libc.getxattr(_fsenc(path), _fsenc(name),
                               buf if size else None, size), "getxattr", path)
    return ret, buf.raw[:ret] if size else b""


def listxattr_raw(path, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    ret = _check(libc.listxattr(_fsenc(path), buf if size else None, size),
                 "listxattr", path)
    return ret, buf.raw[:ret] if size else b""


# opendir/readdir/telldir/seekdir (x86_64 / aarch64 glibc: dirent == dirent64)
class dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


libc.opendir.argtypes = [ctypes.c_char_p]
libc.opendir.restype = ctypes.c_void_p
libc.readdir64.argtypes = [ctypes.c_void_p]
libc.readdir64.restype = ctypes.POINTER(dirent)
libc.telldir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
libc.seekdir.restype = None
libc.rewinddir.argtypes = [ctypes.c_void_p]
libc.rewinddir.restype = None
libc.closedir.argtypes = [ctypes.c_void_p]
libc.closedir.restype = ctypes.c_int


class Dir:
    """A libc DIR stream, for telldir/seekdir tests."""

    def __init__(self, path):
        ctypes.set_errno(0)
        self.dirp = libc.opendir(_fsenc(path))
        if not self.dirp:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)

    def read(self):
        """Next (name, d_ino, d_type) or None at the end."""
        ctypes.set_errno(0)
        ent = libc.readdir64(self.dirp)
        if not ent:
            err = ctypes.get_errno()
            if err:
                raise OSError(err, os.strerror(err))
            return None
        e = ent.contents
        return (e.d_name, e.d_ino, e.d_type)

    def tell(self):
        return libc.telldir(self.dirp)

    def seek(self, pos):
        libc.seekdir(self.dirp, pos)

    def rewind(self):
        libc.rewinddir(self.dirp)

    def close(self):
        if self.dirp:
            libc.closedir(self.dirp)
            self.dirp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@contextlib.contextmanager
def expect_errno(*codes):
    """Assert the block raises OSError with one of the errno values."""
    try:
        yield
    except OSError as e:
        assert e.errno in codes, (
            f"expected {[errno.errorcode[c] for c in codes]}, got "
            f"{errno.errorcode.get(e.errno, e.errno)}: {e}")
    else:
        raise AssertionError(
            f"expected {[errno.errorcode[c] for c in codes]}, no error")


def write_file(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)


def read_file(path, flags=0):
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def pread_all(fd, size, offset=0):
    out = bytearray()
    while len(out) < size:
        b = os.pread(fd, size - len(out), offset + len(out))
        if not b:
            break
        out += b
    return bytes(out)


def pwrite_all(fd, data, offset):
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def drop_caches():
    """Evict the kernel's page, dentry and inode caches so the next access
    goes to the filesystem (on FUSE: to the daemon, which also receives
    FORGETs). Best effort: needs root and a writable /proc/sys."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def as_user(fn, cwd, uid=NOBODY, gid=None, groups=()):
    """Run fn() in a forked child with the given credentials, working
    directory cwd (entered before dropping privileges, so fn should use
    relative paths). Returns fn's (picklable) result; an OSError in the child
    is re-raised here with the same errno."""
    if gid is None:
        gid = uid
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            try:
                os.chdir(cwd)
                os.setgroups(list(groups))
                os.setgid(gid)
                os.setuid(uid)
                try:
                    res = ("ok", fn())
                except OSError as e:
                    res = ("errno", e.errno, str(e))
                data = pickle.dumps(res)
            except BaseException as e:  # noqa: B902 - report everything
                data = pickle.dumps(("exc", repr(e)))
            view = memoryview(data)
            while view:
                view = view[os.write(wfd, view):]
        finally:
            os._exit(0)
    os.close(wfd)
    chunks = []
    while True:
        b = os.read(rfd, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(rfd)
    os.waitpid(pid, 0)
    res = pickle.loads(b"".join(chunks))
    if res[0] == "ok":
        return res[1]
    if res[0] == "errno":
        raise OSError(res[1], res[2])
    raise AssertionError(f"child as uid {uid} failed: {res[1]}")


def user_errno(fn, cwd, **kw):
    """0 if fn succeeds as the unprivileged actor, else its errno."""
    try:
        as_user(fn, cwd, **kw)
        return 0
    except OSError as e:
        return e.errno


def ftype(mode):
    return stat.S_IFMT(mode)


def _unescape_mountinfo(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def is_mounted(path):
    """True if path is a mount point, even a dead FUSE one (where stat
    fails with ENOTCONN and os.path.ismount says False)."""
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if _unescape_mountinfo(line.split()[4]) == path:
                return True
    return False


def mount_options(path):
    """The per-mount options (mountinfo field 6) of the mount holding
    path, e.g. {'rw', 'relatime', 'nosuid'}."""
    path = os.path.realpath(path)
    best, opts = "", set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mnt = _unescape_mountinfo(fields[4])
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) \
                    and len(mnt) >= len(best):
                best, opts = mnt, set(fields[5].split(","))
    return opts


def fstype_of(path):
    """The filesystem type (mountinfo) of the mount holding path."""
    path = os.path.realpath(path)
    best, kind = "", None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mnt = _unescape_mountinfo(fields[4])
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) \
                    and len(mnt) >= len(best):
                best = mnt
                kind = fields[fields.index("-") + 1]
    return kind


LOG_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")


def log_problems(text, error_lines=True):
    """Lines that must fail the run: sanitizer reports, and (for the
    daemon's log, where an expected refusal never lands) lines with
    " error: "."""
    bad = []
    for line in text.splitlines():
        if any(m in line for m in LOG_MARKERS) or \
                (error_lines and " error: " in line):
            bad.append(line)
    return bad


def live_threads(pid):
    """The threads of process PID that are not zombies ([] once it is gone).

    A process killed while a thread of it waits in the kernel is a zombie
    (its command line empty) until that thread returns: not gone yet."""
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return []
    live = []
    for t in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        # the state follows the command's closing parenthesis
        if stat[stat.rfind(")") + 2:][:1] not in ("Z", "X"):
            live.append(t)
    return live
