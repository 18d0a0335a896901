"""What `meson install` puts in place (into a staging directory, DESTDIR),
and that the documentation it installs covers the program: every command
of `zero --help` in zero(1) and the bash completion, every configuration
key of src/cli/config.c in zero.yml(5), both man pages free of groff
warnings."""

import os
import re
import subprocess

from cliutil import REPO, ZERO, zero

BUILD = os.path.dirname(os.path.abspath(ZERO))


def commands():
    out = zero("--help", check=0).stdout
    return re.findall(r"^  ([a-z]+) ", out, re.M)


def config_keys():
    text = open(os.path.join(REPO, "src/cli/config.c")).read()
    return re.findall(r'KEY_[A-Z0-9]+\("([A-Za-z0-9]+)"', text)


def test_meson_install_puts_everything_in_place(tmp_path):
    dest = tmp_path / "dest"
    p = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", str(dest),
                        "--quiet"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    prefix = subprocess.run(["meson", "introspect", BUILD, "--buildoptions"],
                            capture_output=True, text=True, check=True).stdout
    prefix = re.search(r'"name": "prefix", "value": "([^"]+)"', prefix).group(1)
    root = dest / prefix.lstrip("/")
    zero_bin = root / "bin/zero"
    assert os.access(zero_bin, os.X_OK)
    for name in ("zero-fuse", "zero-worker"):
        assert os.readlink(root / "bin" / name) == "zero"
    for name in ("mount.fuse.zero", "umount.fuse.zero"):
        assert os.readlink(root / "sbin" / name) == os.path.join(prefix, "bin/zero")
    assert (root / "share/man/man1/zero.1").is_file()
    assert (root / "share/man/man5/zero.yml.5").is_file()
    assert (root / "share/bash-completion/completions/zero").is_file()
    unit = (root / "lib/systemd/system/zero@.service").read_text()
    assert "ExecStart=%s/bin/zero mount --foreground" % prefix in unit, unit
    # the installed binary runs, by each of its names
    assert subprocess.run([str(zero_bin), "--version"], capture_output=True, text=True,
                          check=True).stdout.startswith("zero ")
    assert "zero-worker CACHE" in subprocess.run([str(root / "bin/zero-worker"), "--help"],
                                                 capture_output=True, text=True).stdout


def test_man_pages_render_without_warnings():
    for page in ("doc/zero.1", "doc/zero.yml.5"):
        p = subprocess.run(["groff", "-man", "-ww", "-z", os.path.join(REPO, page)],
                           capture_output=True, text=True)
        assert p.returncode == 0 and p.stderr == "", (page, p.stderr)


def test_man_pages_and_completion_cover_every_command_and_key():
    man1 = open(os.path.join(REPO, "doc/zero.1")).read()
    man5 = open(os.path.join(REPO, "doc/zero.yml.5")).read()
    completion = open(os.path.join(REPO, "completion/zero")).read()
    cmds = commands()
    assert len(cmds) >= 13, cmds
    for c in cmds:
        assert re.search(r"\\fB%s\b" % c, man1), "zero(1) lacks the command %s" % c
        assert re.search(r"\b%s\b" % c, completion), "the completion lacks %s" % c
    keys = config_keys()
    assert len(keys) >= 35, keys
    for k in keys:
        assert "\\fB%s\\fR" % k in man5, "zero.yml(5) lacks the key %s" % k
