"""The cache directory is private to the user who mounts it: every directory
in it 0700, every file 0600 (meta.db and its -wal/-shm, the cache files, the
log, the lock, the embedded bucket and its objects), whatever the umask; a
cache whose modes were loosened is made private again at the next mount,
with a warning that says what was changed; another user can read nothing."""

import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from cliutil import ZERO, mounted, zero
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def not_private(root):
    """(path, mode) of ROOT and everything under it that is not a 0700
    directory or a 0600 file."""
    bad = []
    paths = [root]
    for dirpath, dirs, files in os.walk(root):
        paths += [os.path.join(dirpath, n) for n in dirs + files]
    for path in paths:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue  # -wal/-shm of a database being closed
        mode = stat.S_IMODE(st.st_mode)
        want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600 if stat.S_ISREG(st.st_mode) else None
        if mode != want:
            bad.append((path, oct(mode)))
    return bad


@pytest.fixture
def fs(tmp_path):
    """(mnt, cache, config): a mount point, a cache path, no upload delay."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cfg = tmp_path / "config.yml"
    cfg.write_text("uploadDelay: 0\n")
    yield mnt, tmp_path / "cache", cfg
    if mounted(mnt):
        subprocess.run([ZERO, "umount", "--lazy", str(mnt)], capture_output=True)


def use(mnt, cache):
    """Write files, a private directory and an extended attribute; wait for uploads."""
    (mnt / "d").mkdir(mode=0o700)
    (mnt / "d" / "secret name").write_bytes(os.urandom(300_000))
    (mnt / "f").write_text("hello")
    os.setxattr(mnt / "f", "user.note", b"private value")
    deadline = time.monotonic() + 30
    while not any(files for d, _s, files in os.walk(cache / "bucket") if "chunks" in d):
        assert time.monotonic() < deadline, "nothing was uploaded to the embedded bucket"
        time.sleep(0.1)


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask022", "umask000"])
def test_cache_is_private_whatever_the_umask(fs, umask):
    mnt, cache, cfg = fs
    zero("mount", mnt, cache, "--config", cfg, check=0, umask=umask)
    try:
        use(mnt, cache)
        assert (cache / "meta.db-wal").exists() and (cache / "data").is_dir()
        assert not_private(cache) == []
    finally:
        zero("umount", mnt, check=0)
    assert not_private(cache) == []
    # an empty directory made by hand becomes private when it becomes a cache
    other = cache.parent / "made-by-hand"
    old = os.umask(umask)
    try:
        other.mkdir()
    finally:
        os.umask(old)
    zero("mount", mnt, other, "--config", cfg, check=0, umask=umask)
    try:
        (mnt / "f").write_text("x")
        assert not_private(other) == []
    finally:
        zero("umount", mnt, check=0)


def test_loosened_cache_is_made_private_at_mount_with_a_warning(fs):
    mnt, cache, cfg = fs
    zero("mount", mnt, cache, "--config", cfg, check=0)
    try:
        use(mnt, cache)
    finally:
        zero("umount", mnt, check=0)
    # what chmod -R go+rX would do
    for dirpath, dirs, files in os.walk(cache):
        os.chmod(dirpath, 0o755)
        for n in files:
            os.chmod(os.path.join(dirpath, n), 0o644)
    assert len(not_private(cache)) > 10
    p = zero("mount", mnt, cache, "--config", cfg, check=0)
    try:
        assert not_private(cache) == []
        warning = [line for line in p.stderr.splitlines() if "warning" in line]
        assert any(str(cache) in line and "0755" in line and "0700" in line
                   for line in warning), p.stderr
        assert any(str(cache / "meta.db") in line and "0644" in line and "0600" in line
                   for line in warning), p.stderr
        assert "other users" in p.stderr, p.stderr
        assert "made private" in (cache / "zero.log").read_text()
        assert (mnt / "f").read_text() == "hello"
        assert (mnt / "d" / "secret name").stat().st_size == 300_000
    finally:
        zero("umount", mnt, check=0)
    p = zero("mount", mnt, cache, "--config", cfg, check=0)
    try:
        assert "warning" not in p.stderr, p.stderr
    finally:
        zero("umount", mnt, check=0)


@pytest.fixture
def shared_dir():
    """A directory every user may enter (pytest's own are 0700)."""
    base = tempfile.mkdtemp(prefix="zero-privacy-", dir="/tmp")
    os.chmod(base, 0o755)
    yield base
    mnt = os.path.join(base, "mnt")
    if mounted(mnt):
        subprocess.run([ZERO, "umount", "--lazy", mnt], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def as_nobody(*cmd):
    return subprocess.run(NOBODY + list(cmd), capture_output=True, text=True, timeout=30)


def test_another_user_reads_nothing_of_the_cache(shared_dir):
    base = Path(shared_dir)
    mnt, cache, cfg = base / "mnt", base / "cache", base / "config.yml"
    mnt.mkdir()
    cache.mkdir()  # made by hand, 0755: as a user would, before the first mount
    cfg.write_text("uploadDelay: 0\n")
    cfg.chmod(0o644)
    # the control: nobody can read what is open to it
    assert as_nobody("cat", str(cfg)).returncode == 0
    zero("mount", mnt, cache, "--config", cfg, check=0, umask=0o022)
    try:
        use(mnt, cache)
        for target in ("meta.db", "meta.db-wal", "zero.log", "lock", "data"):
            p = as_nobody("cat", str(cache / target))
            assert p.returncode != 0 and "Permission denied" in p.stderr, (target, p)
        p = as_nobody("ls", str(cache))
        assert p.returncode != 0 and "Permission denied" in p.stderr, p
    finally:
        zero("umount", mnt, check=0)
    p = as_nobody("cat", str(cache / "meta.db"))
    assert p.returncode != 0 and "Permission denied" in p.stderr, p


def test_database_elsewhere_is_private_and_its_open_directory_is_named(fs):
    mnt, cache, cfg = fs
    dbdir = cache.parent / "db"
    old = os.umask(0o022)
    try:
        dbdir.mkdir()  # 0755
    finally:
        os.umask(old)
    db = dbdir / "meta.db"
    cfg.write_text("uploadDelay: 0\nsqliteFileLocation: %s\n" % db)
    p = zero("mount", mnt, cache, "--config", cfg, check=0, umask=0o022)
    try:
        use(mnt, cache)
        assert not_private(cache) == []
        for f in ("meta.db", "meta.db-wal", "meta.db-shm"):
            assert stat.S_IMODE(os.stat(dbdir / f).st_mode) == 0o600, f
        assert "%s, which holds the metadata (sqliteFileLocation), is open to other users " \
            "(mode 0755)" % dbdir in p.stderr, p.stderr
    finally:
        zero("umount", mnt, check=0)
    os.chmod(db, 0o644)
    dbdir.chmod(0o700)
    p = zero("mount", mnt, cache, "--config", cfg, check=0)
    try:
        assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
        assert "%s was open to other users (mode 0644); made private (0600)" % db in p.stderr
        assert "sqliteFileLocation" not in p.stderr, p.stderr
    finally:
        zero("umount", mnt, check=0)
