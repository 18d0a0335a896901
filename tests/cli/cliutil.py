"""What the command-line tests share: the `zero` binary under test (ZERO_BIN,
default build/zero), running it, and whether a path is a mountpoint."""

import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZERO = os.environ.get("ZERO_BIN", os.path.join(REPO, "build", "zero"))


def zero(*args, check=None, timeout=60, env=None, umask=None):
    """Run `zero ARGS` (with UMASK if given); fail on a sanitizer report, and
    on an exit status other than CHECK when CHECK is given."""
    p = subprocess.run([ZERO, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, env=env,
                       preexec_fn=None if umask is None else (lambda: os.umask(umask)))
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    if check is not None:
        assert p.returncode == check, f"zero {args}: exit {p.returncode}\n{p.stdout}{p.stderr}"
    return p


def mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)
