"""opendir/readdir/readdirplus/releasedir/fsyncdir and statfs; directory
offsets stay valid while entries change."""

import errno
import os
import stat

from sysutil import Dir, drop_caches, expect_errno, write_file

DT_DIR, DT_REG, DT_LNK, DT_FIFO = 4, 8, 10, 1


def test_readdir_contents(workdir):
    os.mkdir(os.path.join(workdir, "d"))
    write_file(os.path.join(workdir, "f"), b"x")
    os.symlink("f", os.path.join(workdir, "s"))
    os.mkfifo(os.path.join(workdir, "p"))
    with Dir(workdir) as d:
        ents = {}
        while (e := d.read()) is not None:
            ents[e[0]] = e
    assert set(ents) == {b".", b"..", b"d", b"f", b"s", b"p"}
    assert ents[b"."][1] == os.stat(workdir).st_ino
    for name, dt in ((b"d", DT_DIR), (b"f", DT_REG), (b"s", DT_LNK),
                     (b"p", DT_FIFO)):
        assert ents[name][1] == os.lstat(os.path.join(
            os.fsencode(workdir), name)).st_ino
        assert ents[name][2] == dt          # as ext4: no DT_UNKNOWN
    # readdirplus-style consumer: scandir types and inode numbers
    with os.scandir(workdir) as it:
        got = {e.name: e for e in it}
    assert set(got) == {"d", "f", "s", "p"}
    assert got["d"].is_dir(follow_symlinks=False)
    assert got["f"].is_file(follow_symlinks=False)
    assert got["s"].is_symlink()
    for name, e in got.items():
        st = e.stat(follow_symlinks=False)
        assert e.inode() == st.st_ino
        assert st.st_ino == os.lstat(os.path.join(workdir, name)).st_ino
        assert st.st_mode == os.lstat(os.path.join(workdir, name)).st_mode
    assert os.listdir(os.path.join(workdir, "d")) == []


def test_readdir_large(workdir):
    names = {f"entry-{i:05d}-" + "x" * (i % 200) for i in range(3000)}
    for n in names:
        write_file(os.path.join(workdir, n), b"")
    assert sorted(os.listdir(workdir)) == sorted(names)
    drop_caches()
    listed = os.listdir(workdir)
    assert len(listed) == len(set(listed)) == 3000
    assert set(listed) == names
    assert os.stat(workdir).st_nlink == 2


def test_readdir_on_non_directory(workdir):
    write_file(os.path.join(workdir, "f"), b"")
    with expect_errno(errno.ENOTDIR):
        os.listdir(os.path.join(workdir, "f"))
    with expect_errno(errno.ENOENT):
        os.listdir(os.path.join(workdir, "missing"))


def _names(n, width=150):
    return [f"{i:05d}".ljust(width, "n") for i in range(n)]


def test_readdir_while_changing(workdir):
    """Deleting and creating entries during a listing never makes a
    surviving entry disappear or appear twice."""
    names = _names(1500)
    for n in names:
        write_file(os.path.join(workdir, n), b"")
    keep = set(names[::3])
    seen = []
    created = 0
    with os.scandir(workdir) as it:
        for i, e in enumerate(it):
            seen.append(e.name)
            if i % 10 == 0:
                # remove some entries not yet (or already) seen, never a
                # kept one, and add new ones
                for victim in names[(i * 7) % 1500:(i * 7) % 1500 + 6]:
                    if victim not in keep:
                        try:
                            os.unlink(os.path.join(workdir, victim))
                        except FileNotFoundError:
                            pass
                for _ in range(3):
                    write_file(os.path.join(workdir, f"new-{created}"), b"")
                    created += 1
    counts = {}
    for n in seen:
        counts[n] = counts.get(n, 0) + 1
    dups = [n for n, c in counts.items() if c > 1]
    assert not dups, f"entries listed twice: {dups[:10]}"
    missing = keep - set(seen)
    assert not missing, f"surviving entries skipped: {sorted(missing)[:10]}"
    assert set(seen) <= set(names) | {f"new-{k}" for k in range(created)}


def test_rm_rf_pattern(workdir):
    """Unlinking each entry right after reading it (rm -r) removes all."""
    for n in _names(1200, 100):
        write_file(os.path.join(workdir, n), b"")
    for _ in range(3):
        with os.scandir(workdir) as it:
            for e in it:
                os.unlink(e.path)
        if not os.listdir(workdir):
            break
    # rm -r needs one pass; a second one would mean skipped entries
    assert os.listdir(workdir) == []
    assert _ == 0, "a single readdir pass did not see every entry"


def test_telldir_seekdir(workdir):
    names = _names(600, 120)
    for n in names:
        write_file(os.path.join(workdir, n), b"")
    with Dir(workdir) as d:
        first = []
        for _ in range(250):
            first.append(d.read()[0])
        pos = d.tell()
        nxt = d.read()[0]
        rest = [nxt]
        while (e := d.read()) is not None:
            rest.append(e[0])
        all1 = first + rest
        assert len(all1) == len(set(all1)) == 602
        # seekdir back to a telldir position resumes at the same entry
        d.seek(pos)
        assert d.read()[0] == nxt
        # ... also after other entries were removed and added
        seen_before = set(first)
        for n in names[::2]:
            b = os.fsencode(n)
            if b in seen_before and b != nxt:
                os.unlink(os.path.join(workdir, n))
        for i in range(50):
            write_file(os.path.join(workdir, f"later-{i}"), b"")
        d.seek(pos)
        after = []
        while (e := d.read()) is not None:
            after.append(e[0])
        assert len(after) == len(set(after))
        survivors = set(rest)
        missing = survivors - set(after)
        assert not missing, sorted(missing)[:5]
        # rewinddir sees the current contents
        d.rewind()
        now = []
        while (e := d.read()) is not None:
            now.append(e[0])
        assert set(now) == {b".", b".."} | {os.fsencode(x)
                                             for x in os.listdir(workdir)}
        assert len(now) == len(set(now))


def test_listing_a_directory_being_emptied_and_refilled(workdir):
    fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for n in _names(200, 50):
            write_file(os.path.join(workdir, n), b"")
        assert len(os.listdir(fd)) == 200
        for n in _names(200, 50):
            os.unlink(os.path.join(workdir, n))
        assert os.listdir(fd) == []
        write_file(os.path.join(workdir, "again"), b"")
        assert os.listdir(fd) == ["again"]
        os.fsync(fd)
    finally:
        os.close(fd)


def test_statfs(workdir):
    st = os.statvfs(workdir)
    assert st.f_bsize > 0 and st.f_frsize > 0
    assert st.f_blocks > 0
    assert st.f_blocks >= st.f_bfree >= st.f_bavail
    assert st.f_files >= st.f_ffree
    assert st.f_namemax == 255
    fd = os.open(workdir, os.O_RDONLY)
    try:
        fst = os.fstatvfs(fd)
        assert fst.f_bsize == st.f_bsize and fst.f_namemax == 255
    finally:
        os.close(fd)
    p = os.path.join(workdir, "f")
    write_file(p, b"x")
    assert os.statvfs(p).f_bsize == st.f_bsize
    assert stat.S_ISREG(os.stat(p).st_mode)


def test_listing_follows_every_change(workdir):
    """A directory listed once (the kernel may keep the listing) shows each
    later change at once: create, mkdir, link, symlink, rename within, in
    and out, unlink, rmdir, a change made by another process, and the
    kernel's caches dropped in between."""
    import subprocess
    d = os.path.join(workdir, "d")
    other = os.path.join(workdir, "other")
    os.mkdir(d)
    os.mkdir(other)
    expect = set()

    def check():
        for _ in range(2):  # the second listing may come from a kept listing
            assert set(os.listdir(d)) == expect
            with os.scandir(d) as it:
                assert {e.name for e in it} == expect

    check()
    for i in range(50):
        write_file(os.path.join(d, f"f{i}"), b"x")
        expect.add(f"f{i}")
    check()
    os.mkdir(os.path.join(d, "sub"))
    expect.add("sub")
    check()
    os.link(os.path.join(d, "f0"), os.path.join(d, "hard"))
    expect.add("hard")
    check()
    os.symlink("f1", os.path.join(d, "sym"))
    expect.add("sym")
    check()
    os.rename(os.path.join(d, "f2"), os.path.join(d, "renamed"))
    expect ^= {"f2", "renamed"}
    check()
    os.rename(os.path.join(d, "f3"), os.path.join(other, "moved-out"))
    expect.discard("f3")
    check()
    write_file(os.path.join(other, "in"), b"y")
    os.rename(os.path.join(other, "in"), os.path.join(d, "moved-in"))
    expect.add("moved-in")
    check()
    os.rename(os.path.join(d, "f4"), os.path.join(d, "f5"))  # over an entry
    expect.discard("f4")
    check()
    os.unlink(os.path.join(d, "f6"))
    expect.discard("f6")
    check()
    os.rmdir(os.path.join(d, "sub"))
    expect.discard("sub")
    check()
    subprocess.run(["mv", os.path.join(d, "f7"), os.path.join(d, "by-mv")], check=True)
    subprocess.run(["touch", os.path.join(d, "by-touch")], check=True)
    expect ^= {"f7", "by-mv", "by-touch"}
    check()
    drop_caches()
    check()
    for n in list(expect):
        p = os.path.join(d, n)
        if os.path.isdir(p) and not os.path.islink(p):
            os.rmdir(p)
        else:
            os.unlink(p)
    expect.clear()
    check()
