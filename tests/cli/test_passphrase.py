"""The passphrase of an encrypted filesystem, from the command line: asked
on a terminal (no echo, twice for a new filesystem), from a private
passphraseFile, or refused with a clear message; `zero passwd`'s help and
refusals; the configuration keys. On the embedded default bucket (a local
directory) with `encryption: true`, so no server is needed; the bucket
side of encryption is tests/integration/test_encryption.py."""

import os
import pty
import select
import subprocess
import time

import pytest

from cliutil import ZERO, mounted, zero


@pytest.fixture
def fs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    conf = tmp_path / "config.yml"
    conf.write_text("encryption: true\nbucketDir: %s\n" % (tmp_path / "bucket"))
    os.chmod(conf, 0o600)
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local/share"))
    for var in ("ZERO_PASSPHRASE", "ZERO_NEW_PASSPHRASE"):
        env.pop(var, None)
    yield {"mnt": mnt, "cache": tmp_path / "cache", "conf": conf, "env": env,
           "bucket": tmp_path / "bucket", "tmp": tmp_path}
    if mounted(mnt):
        subprocess.run([ZERO, "umount", "--lazy", str(mnt)], capture_output=True)


def on_terminal(args, env, answers, timeout=60):
    """Run zero ARGS with a terminal on stdin and stderr; type each of ANSWERS when asked.
    Returns (exit status, everything the terminal showed)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([ZERO, *map(str, args)], env=env, stdin=slave, stdout=subprocess.PIPE,
                         stderr=slave, start_new_session=True)
    os.close(slave)
    shown, pending, answered = b"", list(answers), 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            shown += data
            # a new prompt (not the one just answered) ends in ':'
            if pending and shown[answered:].strip().endswith(b":"):
                os.write(master, pending.pop(0).encode() + b"\n")
                answered = len(shown)
        elif p.poll() is not None:
            break
    out, _ = p.communicate(timeout=timeout)
    os.close(master)
    return p.returncode, shown.decode(errors="replace") + out.decode(errors="replace")


def mount_args(fs):
    return ["mount", fs["mnt"], fs["cache"], "--config", fs["conf"]]


def test_new_filesystem_asks_twice_without_echo_then_once(fs):
    rc, shown = on_terminal(mount_args(fs), fs["env"], ["terminal secret", "terminal secret"])
    assert rc == 0, shown
    assert "choose its passphrase" in shown and "again" in shown, shown
    assert "terminal secret" not in shown, "the passphrase was echoed:\n" + shown
    (fs["mnt"] / "f").write_text("hello\n")
    zero("umount", fs["mnt"], check=0)
    sb = (fs["bucket"] / "zero.d" / "superblock.o").read_text()
    assert "format=2" in sb, sb
    rc, shown = on_terminal(mount_args(fs), fs["env"], ["wrong one"])
    assert rc == 1 and "wrong passphrase" in shown, shown
    assert not mounted(fs["mnt"])
    rc, shown = on_terminal(mount_args(fs), fs["env"], ["terminal secret"])
    assert rc == 0, shown
    assert shown.count("passphrase") == 1, shown  # asked once for an existing filesystem
    assert (fs["mnt"] / "f").read_text() == "hello\n"
    zero("umount", fs["mnt"], check=0)


def test_new_filesystem_two_different_entries_refused(fs):
    rc, shown = on_terminal(mount_args(fs), fs["env"], ["one secret", "another secret"])
    assert rc == 1 and "differ" in shown, shown
    assert not mounted(fs["mnt"])
    assert not (fs["bucket"] / "zero.d" / "superblock.o").exists()


def test_no_passphrase_without_a_terminal(fs):
    p = zero(*mount_args(fs), check=1, env=fs["env"])
    assert "encrypted" in p.stderr and "ZERO_PASSPHRASE" in p.stderr, p.stderr
    assert "encryption: false" in p.stderr, p.stderr
    assert not mounted(fs["mnt"])
    env = dict(fs["env"], ZERO_PASSPHRASE="")
    p = zero(*mount_args(fs), check=1, env=env)
    assert "encrypted" in p.stderr


@pytest.mark.parametrize("content,mode,message", [
    ("secret\n", 0o640, "open to other users"),
    ("secret\n", 0o604, "open to other users"),
    ("\n", 0o600, "empty"),
    ("", 0o600, "empty"),
    ("x" * 2000, 0o600, "longer than"),
])
def test_bad_passphrase_files_refused(fs, content, mode, message):
    pf = fs["tmp"] / "pass"
    pf.write_text(content)
    os.chmod(pf, mode)
    with open(fs["conf"], "a") as f:
        f.write("passphraseFile: %s\n" % pf)
    p = zero(*mount_args(fs), check=1, env=fs["env"])
    assert message in p.stderr and str(pf) in p.stderr, p.stderr
    assert not mounted(fs["mnt"])


def test_passphrase_file_missing_or_a_directory(fs):
    with open(fs["conf"], "a") as f:
        f.write("passphraseFile: %s\n" % (fs["tmp"] / "nope"))
    p = zero(*mount_args(fs), check=1, env=fs["env"])
    assert "No such file" in p.stderr, p.stderr
    fs["conf"].write_text("encryption: true\nbucketDir: %s\npassphraseFile: %s\n"
                          % (fs["bucket"], fs["tmp"]))
    p = zero(*mount_args(fs), check=1, env=fs["env"])
    assert "not a regular file" in p.stderr, p.stderr


def test_passphrase_file_and_passwd(fs):
    pf = fs["tmp"] / "pass"
    pf.write_text("from a file\n")
    os.chmod(pf, 0o600)
    with open(fs["conf"], "a") as f:
        f.write("passphraseFile: %s\n" % pf)
    zero(*mount_args(fs), check=0, env=fs["env"])
    (fs["mnt"] / "f").write_text("kept\n")
    zero("umount", fs["mnt"], check=0)
    # the trailing newline was not part of it
    env = dict(fs["env"], ZERO_PASSPHRASE="from a file")
    new = fs["tmp"] / "new"
    new.write_text("the new one\n")
    os.chmod(new, 0o600)
    p = zero("passwd", fs["cache"], "--config", fs["conf"], "--new-passphrase-file", new,
             check=0, env=env)
    assert "key epoch 2" in p.stdout
    p = zero(*mount_args(fs), check=1, env=fs["env"])  # passphraseFile: the old one
    assert "wrong passphrase" in p.stderr
    pf.write_text("the new one")
    zero(*mount_args(fs), check=0, env=fs["env"])
    assert (fs["mnt"] / "f").read_text() == "kept\n"
    p = zero("status", fs["mnt"], check=0)
    assert "key epoch 2" in p.stdout, p.stdout
    zero("umount", fs["mnt"], check=0)


def test_passwd_help_and_refusals(fs, tmp_path):
    p = zero("passwd", "--help", check=0)
    assert p.stdout.startswith("usage: zero passwd") and "ZERO_NEW_PASSPHRASE" in p.stdout
    assert "passwd" in zero("--help", check=0).stdout
    zero("passwd", "--bogus", check=2)
    zero("passwd", "a", "b", check=2)
    # no filesystem in the bucket yet
    p = zero("passwd", fs["cache"], "--config", fs["conf"], check=1, env=fs["env"])
    assert "no Zero filesystem" in p.stderr, p.stderr
    # an unencrypted one has no passphrase
    plain = tmp_path / "plain.yml"
    plain.write_text("bucketDir: %s\n" % (tmp_path / "plainbucket"))
    os.chmod(plain, 0o600)
    zero("mount", fs["mnt"], tmp_path / "plaincache", "--config", plain, check=0, env=fs["env"])
    p = zero("status", fs["mnt"], check=0)
    assert "encryption none" in " ".join(p.stdout.split()), p.stdout
    zero("umount", fs["mnt"], check=0)
    p = zero("passwd", "--config", plain, check=1, env=fs["env"])
    assert "not encrypted" in p.stderr, p.stderr
    # the right old passphrase, but no new one: nothing changes
    env = dict(fs["env"], ZERO_PASSPHRASE="old")
    zero(*mount_args(fs), check=0, env=env)
    zero("umount", fs["mnt"], check=0)
    before = (fs["bucket"] / "zero.d" / "superblock.o").read_bytes()
    p = zero("passwd", fs["cache"], "--config", fs["conf"], check=1, env=env)
    assert "new passphrase" in p.stderr, p.stderr
    p = zero("passwd", fs["cache"], "--config", fs["conf"], check=1,
             env=dict(env, ZERO_PASSPHRASE="wrong", ZERO_NEW_PASSPHRASE="new"))
    assert "wrong passphrase" in p.stderr, p.stderr
    assert (fs["bucket"] / "zero.d" / "superblock.o").read_bytes() == before


def test_encryption_key_must_be_a_boolean(fs):
    fs["conf"].write_text("encryption: maybe\n")
    p = zero(*mount_args(fs), check=1, env=fs["env"])
    assert "encryption" in p.stderr and "true or false" in p.stderr, p.stderr
