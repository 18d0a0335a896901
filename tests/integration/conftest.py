"""Fixtures for the object-store integration tests.

The test run starts its own servers on free 127.0.0.1 ports and stops them:

  s3rver     the npm package (tests/integration/node_modules, see run.sh),
             one bucket "zero-test", key pair S3RVER/S3RVER
  sigproxy   in front of s3rver: recomputes every request's SigV4 signature
             with botocore and injects faults on request
  fake_b2    a fake of B2's b2_authorize_account and b2_list_buckets

Tests drive the real `zero bucket` command (ZERO_BIN, default
build-store/zero or build/zero). A test fails if the command's stderr shows
a sanitizer report, or if the proxy saw a bad signature the test did not
expect.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tierutil import TIER_CONF, Mount

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PYTHON = "/usr/bin/python3"
BUCKET = "zero-test"
KEY_ID = SECRET = "S3RVER"


def find_zero():
    env = os.environ.get("ZERO_BIN")
    if env:
        return env
    for cand in ("build-store/zero", "build/zero"):
        if (ROOT / cand).exists():
            return str(ROOT / cand)
    pytest.exit("no zero binary: build it (meson setup build && ninja -C build) "
                "or set ZERO_BIN", returncode=2)
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d not listening after %.0f s" % (port, timeout))


class Server:
    """A child process listening on 127.0.0.1:port."""

    def __init__(self, cmd, port=None, log=None):
        self.cmd = cmd
        self.log = log
        self.port = port
        self.proc = None

    def start(self):
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        if self.port is None:
            # The child picks its port and prints "listening on PORT".
            self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=out,
                                         start_new_session=True)
            line = self.proc.stdout.readline().decode()
            if not line.startswith("listening on "):
                raise RuntimeError("%s did not start: %r" % (self.cmd[1], line))
            self.port = int(line.split()[-1])
        else:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=out,
                                         start_new_session=True)
            wait_port(self.port, self.proc)
        return self

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()


def s3rver_server(data_dir, log, port=None, extra=()):
    script = HERE / "s3rver_main.js"  # s3rver's command line, surviving its own races
    if not (HERE / "node_modules" / "s3rver" / "bin" / "s3rver.js").exists():
        pytest.exit("s3rver is not installed: run tests/integration/run.sh "
                    "(or npm ci in tests/integration)", returncode=2)
    os.makedirs(data_dir, exist_ok=True)
    last = None
    for _ in range(5):
        p = port or free_port()
        # Node 17+ needs the legacy provider for s3rver's truncated listings.
        cmd = ["node", "--openssl-legacy-provider", str(script), "-d", str(data_dir),
               "-a", "127.0.0.1", "-p", str(p), "--silent",
               "--service-endpoint", "localhost", *map(str, extra),
               "--configure-bucket", BUCKET]
        try:
            return Server(cmd, port=p, log=log).start()
        except RuntimeError as e:  # port taken meanwhile: try another
            last = e
            if port:
                time.sleep(0.3)
    raise last


class Proxy(Server):
    def __init__(self, upstream_port, log, port=0, conditional=False):
        super().__init__([PYTHON, str(HERE / "sigproxy.py"), "--port", str(port),
                          "--upstream", "127.0.0.1:%d" % upstream_port,
                          "--key", "%s:%s" % (KEY_ID, SECRET), "--region", "us-east-1"]
                         + (["--conditional"] if conditional else []),
                         log=log)

    def _call(self, path, data=None):
        req = urllib.request.Request("http://127.0.0.1:%d/__proxy__/%s" % (self.port, path),
                                     data=data, method="POST" if data is not None else "GET")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def faults(self, faults):
        self._call("faults", json.dumps(faults).encode())

    def reset(self):
        self._call("reset", b"")

    def stats(self):
        return self._call("stats")


# the passphrase of the filesystems the tests create (ZERO_PASSPHRASE)
PASSPHRASE = "test passphrase, not a secret"


class Zero:
    """`zero bucket` with a configuration file of its own."""

    def __init__(self, binary, workdir, conf, env=None):
        self.binary = binary
        self.workdir = Path(workdir)
        self.config = self.workdir / "config.yml"
        self.env = dict(os.environ)
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
                    "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "B2_APPLICATION_KEY_ID",
                    "B2_APPLICATION_KEY"):
            self.env.pop(var, None)
        self.env["HOME"] = str(self.workdir)
        # a new filesystem on a bucket is encrypted: every s3 and b2 test runs so
        self.env["ZERO_PASSPHRASE"] = PASSPHRASE
        self.env.pop("ZERO_NEW_PASSPHRASE", None)
        self.env.pop("XDG_CONFIG_HOME", None)
        self.env.pop("XDG_DATA_HOME", None)
        self.env.update(env or {})
        self.write_config(conf)

    def write_config(self, conf, mode=0o600):
        text = "".join("%s: %s\n" % (k, v) for k, v in conf.items())
        self.config.write_text(text)
        os.chmod(self.config, mode)
        self.conf = dict(conf)

    def popen(self, *args, **kw):
        return subprocess.Popen([self.binary, "bucket", "--config", str(self.config)]
                                + [str(a) for a in args], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)

    def run(self, *args, input=None, expect=0, timeout=300):
        p = subprocess.run([self.binary, "bucket", "--config", str(self.config)]
                           + [str(a) for a in args], input=input, env=self.env,
                           capture_output=True, timeout=timeout)
        check_sanitizers(p.stderr)
        if expect is not None:
            assert p.returncode == expect, (
                "zero bucket %s: exit %d, expected %d\nstdout: %s\nstderr: %s"
                % (" ".join(map(str, args)), p.returncode, expect,
                   p.stdout[-2000:].decode(errors="replace"),
                   p.stderr[-4000:].decode(errors="replace")))
        return p


def check_sanitizers(stderr):
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in text, "sanitizer report:\n" + text


@pytest.fixture(scope="session")
def zero_bin():
    return find_zero()


@pytest.fixture(scope="session")
def s3rver(tmp_path_factory):
    d = tmp_path_factory.mktemp("s3rver")
    srv = s3rver_server(d / "data", d / "s3rver.log")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def proxy(s3rver, tmp_path_factory):
    d = tmp_path_factory.mktemp("proxy")
    p = Proxy(s3rver.port, d / "proxy.log").start()
    yield p
    p.stop()


@pytest.fixture
def cond_proxy(s3rver, tmp_path):
    """A proxy of this test's own that honours S3's conditional writes (sigproxy.py)."""
    p = Proxy(s3rver.port, tmp_path / "cond-proxy.log", conditional=True).start()
    yield p
    stats = p.stats()
    p.stop()
    assert stats["sig_failures"] == 0, "proxy rejected signatures: %s" % stats["log"]


def check_proxy_after(request, p):
    stats = p.stats()
    p.faults([])
    if not request.node.get_closest_marker("bad_signatures"):
        assert stats["sig_failures"] == 0, "proxy rejected signatures: %s" % [
            e for e in stats["log"] if e[3] not in ("", "injected", "reset")]


@pytest.fixture(autouse=True)
def proxy_clean(request):
    """Clear faults before each test; fail it on bad signatures it didn't expect."""
    if "proxy" not in request.fixturenames:
        yield
        return
    p = request.getfixturevalue("proxy")
    p.reset()
    yield
    check_proxy_after(request, p)


def s3_conf(port, prefix, **extra):
    conf = {"backend": "s3", "endpoint": "http://127.0.0.1:%d" % port, "bucket": BUCKET,
            "accessKeyId": KEY_ID, "secretAccessKey": SECRET, "prefix": prefix,
            "maxRetries": 3, "retryBaseDelayMs": 50, "connectTimeout": 5,
            "lowSpeedTimeout": 10}
    conf.update(extra)
    return conf


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path, zero_bin):
    """A `zero bucket` on each backend, with a prefix of its own (s3 through the proxy)."""
    prefix = "t/%s/" % request.node.name.replace("[", "-").replace("]", "")
    p = None
    if request.param == "file":
        conf = {"backend": "file", "bucketDir": str(tmp_path / "bucket"), "prefix": prefix}
    else:
        p = request.getfixturevalue("proxy")
        p.reset()
        conf = s3_conf(p.port, prefix)
    z = Zero(zero_bin, tmp_path, conf)
    z.backend = request.param
    z.proxy = p
    yield z
    if p:
        check_proxy_after(request, p)


# -- mounted filesystems on a bucket (test_tiering.py, test_crash.py) --------------

@pytest.fixture(params=["file", "s3"])
def backend(request):
    return request.param


@pytest.fixture
def make_fs(request, tmp_path, zero_bin):
    """make_fs(backend, name="fs", mount=True, prefix=None, base=None, **conf) -> tierutil.Mount.

    The mountpoint and the cache are made in BASE (default: the test's tmp_path).

    CONF adds to and overrides TIER_CONF; a key given as None is left out.

    BACKEND is "file", "s3" (the session's s3rver through the proxy) or a
    dict of store settings. At teardown every mount is unmounted, and the
    test fails if that needed force, if a log shows a sanitizer report, or if
    the proxy saw a bad signature."""
    made, proxies = [], []
    test = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)

    def make(backend, name="fs", mount=True, prefix=None, base=None, **conf):
        prefix = prefix or "tier/%s/%s/" % (test, name)
        p = None
        if backend == "file":
            c = {"backend": "file", "bucketDir": str(tmp_path / "bucket"), "prefix": prefix}
        elif backend == "s3":
            p = request.getfixturevalue("proxy")
            if p not in proxies:
                p.reset()
                proxies.append(p)
            c = s3_conf(p.port, prefix)
        else:
            c = dict(backend, prefix=prefix)
        c.update(TIER_CONF)
        c.update(conf)
        c = {k: v for k, v in c.items() if v is not None}
        work = tmp_path / ("z-" + name)
        work.mkdir(exist_ok=True)
        m = Mount(Zero(zero_bin, work, c), base or tmp_path, name)
        m.proxy = p
        made.append(m)
        if mount:
            m.mount()
        return m

    yield make
    for p in proxies:
        p.faults([])
    problems = []
    for m in made:
        if m.cleanup():
            problems.append("%s: zero umount did not finish; log tail:\n%s" % (m.mnt, m.log_tail()))
        reports = m.sanitizer_reports()
        if reports:
            problems.append("%s: sanitizer report (%s) in %s:\n%s" % (
                m.mnt, ", ".join(reports), m.log, m.log_tail(80)))
    for p in proxies:
        check_proxy_after(request, p)
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def own_s3rver(tmp_path):
    """An s3rver of this test's own, on a fixed port, that the test may stop and restart."""
    port = free_port()
    srv = {"data": tmp_path / "s3data", "log": tmp_path / "s3rver.log", "port": port}

    def start():
        srv["server"] = s3rver_server(srv["data"], srv["log"], port=port)
    start()
    srv["start"] = start
    yield srv
    srv["server"].stop()


def pytest_configure(config):
    config.addinivalue_line("markers", "bad_signatures: the test expects rejected signatures")
    if shutil.which("node") is None:
        pytest.exit("node is not installed", returncode=2)
