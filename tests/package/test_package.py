"""The Debian package, as a new user gets it: `dpkg-buildpackage -us -uc -b`
from the repository's files builds a .deb that lintian finds no error in,
`apt install ./zero_*.deb` installs it with its dependencies, and what it
installs works: the binary, the man pages, the completion, the systemd
unit, and mount(8)'s helper mounting an fstab line of type fuse.zero. The
package is removed again at the end (left alone if it was there before)."""

import glob
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sh(*args, cwd=None, check=True, timeout=900):
    p = subprocess.run(list(map(str, args)), cwd=cwd, capture_output=True, text=True,
                       timeout=timeout, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if check:
        assert p.returncode == 0, "%s: exit %d\n%s\n%s" % (
            " ".join(map(str, args)), p.returncode, p.stdout[-3000:], p.stderr[-3000:])
    return p


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    work = tmp_path_factory.mktemp("pkg")
    src = work / "zero"
    src.mkdir()
    # the repository's files, as a clone has them (no build directories)
    files = sh("git", "ls-files", "-z", cwd=REPO).stdout
    tar = subprocess.run(["tar", "--null", "-T", "-", "-cf", "-"], input=files.encode(),
                         cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "xf", "-"], input=tar, cwd=src, check=True)
    sh("dpkg-buildpackage", "-us", "-uc", "-b", cwd=src)
    debs = glob.glob(str(work / "zero_*_*.deb"))
    assert len(debs) == 1, os.listdir(work)
    return work, debs[0]


def test_lintian_finds_no_error(deb):
    work, _ = deb
    changes = glob.glob(str(work / "zero_*.changes"))[0]
    p = sh("lintian", "--fail-on", "error", changes, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "\nE: " not in "\n" + p.stdout, p.stdout


def test_install_use_and_remove(deb, tmp_path):
    _, path = deb
    was_there = sh("dpkg-query", "-W", "-f=${Status}", "zero", check=False).stdout
    was_there = "install ok installed" in was_there
    sh("apt-get", "install", "-y", "-qq", path)
    try:
        assert sh("/usr/bin/zero", "--version").stdout.startswith("zero ")
        for page in ("zero", "zero.yml", "zero-worker", "mount.fuse.zero"):
            assert sh("man", "-w", page).stdout.strip()
        assert os.path.isfile("/usr/share/bash-completion/completions/zero")
        unit = open("/usr/lib/systemd/system/zero@.service").read()
        assert "ExecStart=/usr/bin/zero mount --foreground" in unit
        assert os.path.realpath("/sbin/mount.fuse.zero") == "/usr/bin/zero"
        assert "zero-worker CACHE" in sh("/usr/bin/zero-worker", "--help").stdout
        # an fstab line of type fuse.zero, through the installed helper
        mnt, cache, conf = tmp_path / "mnt", tmp_path / "cache", tmp_path / "config.yml"
        mnt.mkdir()
        conf.write_text("bucketDir: %s\n" % (tmp_path / "bucket"))
        os.chmod(conf, 0o600)
        fstab = tmp_path / "fstab"
        fstab.write_text("%s %s fuse.zero config=%s,helper=fuse.zero,_netdev,nofail 0 0\n"
                         % (cache, mnt, conf))
        sh("mount", "-T", fstab, mnt)
        try:
            (mnt / "f").write_text("installed\n")
            assert (mnt / "f").read_text() == "installed\n"
        finally:
            sh("umount", mnt)
        assert not os.path.ismount(mnt)
    finally:
        if not was_there:
            sh("apt-get", "remove", "-y", "-qq", "zero")
    if not was_there:
        assert not os.path.exists("/usr/bin/zero")
