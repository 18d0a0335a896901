"""df on a Zero mount tells the truth about the filesystem, not about the
cache's disk: its size is the `capacity` key (default 1 PiB), its use the
bytes of all files (local or only in the bucket), free the difference."""

import os
import subprocess

import pytest

from cliutil import ZERO, mounted, zero

MiB = 1 << 20


@pytest.fixture
def mount(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, HOME=str(tmp_path))
    made = []

    def make(conf_text):
        conf = tmp_path / "config.yml"
        conf.write_text(conf_text)
        os.chmod(conf, 0o600)
        zero("mount", mnt, tmp_path / ("cache%d" % len(made)), "--config", conf, check=0, env=env)
        made.append(mnt)
        return mnt

    yield make
    if mounted(mnt):
        subprocess.run([ZERO, "umount", "--lazy", str(mnt)], capture_output=True)


def used(st):
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def test_df_shows_capacity_and_the_files_bytes(mount, tmp_path):
    mnt = mount("bucketDir: %s\ncapacity: 10GiB\n" % (tmp_path / "bucket"))
    st = os.statvfs(mnt)
    assert st.f_blocks * st.f_frsize == 10 << 30
    assert used(st) == 0 and st.f_bavail == st.f_bfree
    (mnt / "a").write_bytes(os.urandom(3 * MiB + 1))
    with open(mnt / "sparse", "wb") as f:  # a file's bytes, whether stored or not
        f.truncate(1 << 30)
    st = os.statvfs(mnt)
    assert used(st) == 3 * MiB + 4096 + (1 << 30), used(st)
    assert st.f_bfree * st.f_frsize == (10 << 30) - used(st)
    files_before = st.f_files - st.f_ffree
    os.mkdir(mnt / "d")
    st = os.statvfs(mnt)
    assert st.f_files - st.f_ffree == files_before + 1
    os.unlink(mnt / "sparse")
    assert used(os.statvfs(mnt)) == 3 * MiB + 4096
    out = subprocess.run(["df", "-B1", "--output=size,used", str(mnt)], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[-2:] == [str(10 << 30), str(3 * MiB + 4096)], out
    zero("umount", mnt, check=0)


def test_df_default_capacity_and_bad_values(mount, tmp_path):
    mnt = mount("bucketDir: %s\n" % (tmp_path / "bucket"))
    st = os.statvfs(mnt)
    assert st.f_blocks * st.f_frsize == 1 << 50
    zero("umount", mnt, check=0)
    conf = tmp_path / "bad.yml"
    for value, words in (("1KiB", "capacity"), ("lots", "capacity")):
        conf.write_text("capacity: %s\n" % value)
        p = zero("mount", mnt, tmp_path / "c9", "--config", conf, check=1,
                 env=dict(os.environ, HOME=str(tmp_path)))
        assert words in p.stderr, p.stderr
