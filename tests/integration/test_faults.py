"""Retries, timeouts and failures of the s3 backend, with faults injected by
the proxy or by killing the server, and the usual operator mistakes
(wrong keys, no such bucket, connection refused, TLS) with their messages.
"""

import os
import shutil
import subprocess
import time

import pytest

from conftest import (BUCKET, PYTHON, Proxy, Server, Zero, free_port, s3_conf,
                      s3rver_server)


@pytest.fixture
def zs3(proxy, tmp_path, zero_bin, request):
    prefix = "f/%s/" % request.node.name
    z = Zero(zero_bin, tmp_path, s3_conf(proxy.port, prefix))
    z.proxy = proxy
    return z


def attempts(proxy, method, needle):
    return [e for e in proxy.stats()["log"] if e[0] == method and needle in e[1]]


def test_503_with_retry_after_is_retried_and_honoured(zs3, proxy):
    proxy.faults([{"action": "status", "status": 503, "retry_after": "1", "method": "PUT",
                   "times": 2}])
    t0 = time.monotonic()
    zs3.run("put", "k", "-", input=b"data")
    assert time.monotonic() - t0 >= 1.9, "Retry-After: 1 was not honoured"
    assert [e[2] for e in attempts(proxy, "PUT", "/k")] == [503, 503, 200]
    assert zs3.run("get", "k").stdout == b"data"


@pytest.mark.parametrize("status", [500, 502, 429])
def test_5xx_and_429_are_retried(zs3, proxy, status):
    zs3.run("put", "k", "-", input=b"data")
    proxy.faults([{"action": "status", "status": status, "method": "GET", "times": 2}])
    assert zs3.run("get", "k").stdout == b"data"
    assert [e[2] for e in attempts(proxy, "GET", "/k")] == [status, status, 200]


@pytest.mark.parametrize("status", [400, 403])
def test_other_4xx_are_not_retried(zs3, proxy, status):
    proxy.faults([{"action": "status", "status": status, "method": "PUT", "times": 5}])
    p = zs3.run("put", "k", "-", input=b"data", expect=1)
    assert len(attempts(proxy, "PUT", "/k")) == 1
    assert b"HTTP %d" % status in p.stderr


def test_retries_exhausted_gives_a_clear_error(zs3, proxy):
    proxy.faults([{"action": "status", "status": 500, "times": 100}])
    p = zs3.run("stat", "k", expect=1)
    assert len(attempts(proxy, "HEAD", "/k")) == 1 + int(zs3.conf["maxRetries"])
    err = p.stderr.decode()
    assert "retrying (1 of 3)" in err
    assert "HTTP 500" in err
    assert err.count(" error: ") == 1, "the failure must be logged once:\n" + err


def test_connection_reset_is_retried(zs3, proxy):
    zs3.run("put", "k", "-", input=b"x" * 100000)
    proxy.faults([{"action": "reset", "method": "GET", "times": 2}])
    assert zs3.run("get", "k").stdout == b"x" * 100000
    assert len(attempts(proxy, "GET", "/k")) == 3


def test_truncated_answer_is_resumed(zs3, proxy, tmp_path):
    data = os.urandom(3 << 20)
    zs3.run("put", "k", "-", input=data)
    proxy.faults([{"action": "truncate", "method": "GET", "times": 1}])
    out = tmp_path / "out"
    zs3.run("get", "k", out)
    assert out.read_bytes() == data
    gets = attempts(proxy, "GET", "/k")
    assert len(gets) == 2
    assert gets[0][4] == ""  # the whole object
    start = int(gets[1][4].split("=")[1].split("-")[0])
    assert start > 0, "the retry started over instead of resuming: %s" % gets[1][4]


def test_truncated_range_is_resumed_within_the_window(zs3, proxy):
    data = os.urandom(3 << 20)
    zs3.run("put", "k", "-", input=data)
    proxy.faults([{"action": "truncate", "method": "GET", "times": 1}])
    lo, hi = 1000, (2 << 20) + 999
    got = zs3.run("get", "--range", "%d-%d" % (lo, hi), "k").stdout
    assert got == data[lo:hi + 1]
    gets = attempts(proxy, "GET", "/k")
    assert gets[0][4] == "bytes=%d-%d" % (lo, hi)
    start, end = gets[1][4].split("=")[1].split("-")
    assert lo < int(start) <= hi and int(end) == hi


def test_stalled_server_hits_the_low_speed_timeout_and_retries(zs3, proxy):
    zs3.write_config(dict(zs3.conf, lowSpeedTimeout=1))
    zs3.run("put", "k", "-", input=b"data")
    proxy.faults([{"action": "delay", "seconds": 4, "method": "GET", "times": 1}])
    t0 = time.monotonic()
    assert zs3.run("get", "k").stdout == b"data"
    assert time.monotonic() - t0 < 4, "the stalled attempt was not cut short"


def test_failed_multipart_upload_is_aborted(zs3, proxy, tmp_path):
    zs3.write_config(dict(zs3.conf, multipartThreshold="8MiB", multipartPartSize="5MiB"))
    src = tmp_path / "big"
    src.write_bytes(os.urandom(20 << 20))
    proxy.faults([{"action": "status", "status": 400, "method": "PUT",
                   "path_contains": "partNumber=3", "times": 1}])
    p = zs3.run("put", "big", src, expect=1)
    assert b"HTTP 400 InvalidRequest" in p.stderr  # the part's failure, from its thread
    log = proxy.stats()["log"]
    assert any(e[0] == "DELETE" and "uploadId=" in e[1] for e in log), "upload not aborted"
    zs3.run("stat", "big", expect=1)  # no object appeared
    # And it works when the server behaves.
    zs3.run("put", "big", src)
    out = tmp_path / "out"
    zs3.run("get", "big", out)
    assert out.read_bytes() == src.read_bytes()


@pytest.mark.parametrize("checksum,signed", [("crc32c", "false"), ("sha256", "false"),
                                             ("md5", "false"), ("crc32c", "true"),
                                             ("md5", "true")])
def test_upload_checksums_and_payload_signing(zs3, tmp_path, checksum, signed):
    """Every mode, single and multipart; the proxy checks each checksum against the body."""
    zs3.write_config(dict(zs3.conf, uploadChecksum=checksum, signPayload=signed,
                          multipartThreshold="6MiB", multipartPartSize="5MiB"))
    small = os.urandom(1000)
    zs3.run("put", "small", "-", input=small)
    assert zs3.run("get", "small").stdout == small
    big = tmp_path / "big"
    big.write_bytes(os.urandom(11 << 20))  # 3 parts
    zs3.run("put", "big", big)
    out = tmp_path / "out"
    zs3.run("get", "big", out)
    assert out.read_bytes() == big.read_bytes()
    parts = [e for e in zs3.proxy.stats()["log"] if e[0] == "PUT" and "partNumber=" in e[1]]
    assert len(parts) == 3


def test_parts_go_in_parallel_bounded_and_on_reused_connections(zs3, proxy, tmp_path):
    zs3.write_config(dict(zs3.conf, maxParallelTransfers=3, multipartThreshold="8MiB",
                          multipartPartSize="5MiB"))
    src = tmp_path / "big"
    src.write_bytes(os.urandom(40 << 20))  # 8 parts
    proxy.reset()
    # Each part waits a little at the proxy, so that uploads overlap if they can.
    proxy.faults([{"action": "delay", "seconds": 0.3, "method": "PUT", "times": 100}])
    zs3.run("put", "big", src)
    st = proxy.stats()
    assert st["max_inflight"] == 3, st["max_inflight"]  # parallel, and never more than 3
    assert st["requests"] == 10  # create + 8 parts + complete
    assert st["connections"] <= 3, st["connections"]  # one per pooled handle, reused


@pytest.mark.bad_signatures
@pytest.mark.parametrize("checksum", ["crc32c", "sha256", "md5"])
def test_body_damaged_in_transit_is_rejected(zs3, proxy, checksum):
    zs3.write_config(dict(zs3.conf, uploadChecksum=checksum))
    proxy.faults([{"action": "corrupt", "method": "PUT", "times": 1}])
    p = zs3.run("put", "k", "-", input=b"precious bytes", expect=1)
    assert b"BadDigest" in p.stderr
    zs3.run("stat", "k", expect=1)


@pytest.mark.bad_signatures
def test_wrong_secret_is_caught_by_the_verifying_proxy(zs3, proxy):
    zs3.write_config(dict(zs3.conf, secretAccessKey="not-the-secret"))
    p = zs3.run("ls", expect=1)
    assert b"SignatureDoesNotMatch" in p.stderr
    assert b"secret key is wrong" in p.stderr
    assert proxy.stats()["sig_failures"] == 1  # 403: not retried


@pytest.mark.bad_signatures
def test_unknown_access_key_id(zs3):
    zs3.write_config(dict(zs3.conf, accessKeyId="NOSUCHKEY"))
    p = zs3.run("check", expect=1)
    assert b"InvalidAccessKeyId" in p.stderr
    assert b"does not know this access key id" in p.stderr


@pytest.mark.bad_signatures
def test_wrong_region(zs3):
    zs3.write_config(dict(zs3.conf, region="eu-west-1"))
    p = zs3.run("check", expect=1)
    assert b"wrong region or endpoint for this bucket" in p.stderr
    assert b"AuthorizationHeaderMalformed" in p.stderr


def test_no_such_bucket(zs3):
    zs3.write_config(dict(zs3.conf, bucket="no-such-bucket"))
    p = zs3.run("check", expect=1)
    assert b"no such bucket 'no-such-bucket'" in p.stderr
    assert b"NoSuchBucket" in p.stderr


def test_endpoint_that_is_not_s3(tmp_path, zero_bin):
    # A plain web server: 404s and 501s without S3 error documents.
    (tmp_path / "www").mkdir()
    web = Server([PYTHON, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                  str(tmp_path / "www"), str(free_port())])
    web.port = int(web.cmd[-1])
    web.start()
    try:
        z = Zero(zero_bin, tmp_path, s3_conf(web.port, "x/"))
        p = z.run("check", expect=1)
        assert b"without an S3 error document; is endpoint an S3-compatible service?" in p.stderr
    finally:
        web.stop()


def test_connection_refused(tmp_path, zero_bin):
    port = free_port()  # nobody listens there
    z = Zero(zero_bin, tmp_path, s3_conf(port, "x/", maxRetries=2, retryBaseDelayMs=20))
    t0 = time.monotonic()
    p = z.run("check", expect=1)
    assert time.monotonic() - t0 < 10
    err = p.stderr.decode()
    assert "connection refused by http://127.0.0.1:%d" % port in err
    assert "retrying (2 of 2)" in err


def test_tls_failure(s3rver, tmp_path, zero_bin):
    # https to a server that speaks plain http: the handshake fails.
    conf = s3_conf(s3rver.port, "x/", maxRetries=1, retryBaseDelayMs=20)
    conf["endpoint"] = "https://127.0.0.1:%d" % s3rver.port
    p = Zero(zero_bin, tmp_path, conf).run("ls", expect=1)
    assert b"TLS or protocol failure" in p.stderr


@pytest.fixture(scope="module")
def tls_s3rver(tmp_path_factory):
    """s3rver over https with a self-signed certificate for 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    srv = s3rver_server(d / "data", d / "s3rver.log", extra=["--key", key, "--cert", cert])
    srv.cert = cert
    yield srv
    srv.stop()


def tls_conf(srv, **extra):
    conf = s3_conf(srv.port, "tls/", maxRetries=1, retryBaseDelayMs=20, **extra)
    conf["endpoint"] = "https://127.0.0.1:%d" % srv.port
    return conf


def test_https_with_a_custom_ca_file(tls_s3rver, tmp_path, zero_bin):
    z = Zero(zero_bin, tmp_path, tls_conf(tls_s3rver, caFile=tls_s3rver.cert))
    assert b"bucket check passed" in z.run("check").stdout


def test_https_untrusted_certificate(tls_s3rver, tmp_path, zero_bin):
    p = Zero(zero_bin, tmp_path, tls_conf(tls_s3rver)).run("ls", expect=1)
    assert b"TLS or protocol failure" in p.stderr
    assert b"set caFile" in p.stderr
    assert b"certificate" in p.stderr  # the library's own reason


def test_missing_ca_file(tls_s3rver, tmp_path, zero_bin):
    conf = tls_conf(tls_s3rver, caFile=tmp_path / "missing-ca.pem")
    p = Zero(zero_bin, tmp_path, conf).run("ls", expect=1)
    assert b"TLS or protocol failure" in p.stderr


def test_virtual_hosted_addressing(proxy, tmp_path, zero_bin):
    # s3rver runs with --service-endpoint localhost: BUCKET.s3.localhost is the bucket.
    conf = s3_conf(proxy.port, "vhost/", pathStyle="false")
    conf["endpoint"] = "http://s3.localhost:%d" % proxy.port
    z = Zero(zero_bin, tmp_path, conf)
    z.run("put", "k", "-", input=b"virtual")
    assert z.run("get", "k").stdout == b"virtual"
    hosts = [e for e in proxy.stats()["log"] if e[0] == "PUT"]
    assert hosts and hosts[0][1] == "/vhost/k"  # no bucket in the path
    assert z.run("ls").stdout.endswith(b"  k\n")  # listed relative to the prefix


def test_credentials_from_the_environment(proxy, tmp_path, zero_bin):
    conf = s3_conf(proxy.port, "env/")
    del conf["accessKeyId"], conf["secretAccessKey"]
    z = Zero(zero_bin, tmp_path, conf,
             env={"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER"})
    z.run("put", "k", "-", input=b"env")
    assert z.run("get", "k").stdout == b"env"
    del z.env["AWS_SECRET_ACCESS_KEY"]
    p = z.run("ls", expect=1)
    assert b"needs accessKeyId and secretAccessKey" in p.stderr


def test_config_errors_name_file_line_and_key(tmp_path, zero_bin):
    z = Zero(zero_bin, tmp_path, {"backend": "file"})
    z.config.write_text("backend: file\nbucketDir: /tmp/x\nbogusKey: 1\n")
    p = z.run("ls", expect=1)
    assert ("%s:3: key 'bogusKey': unknown key" % z.config).encode() in p.stderr
    z.config.write_text("backend: s3\ntargetDiskUsage: lots\n")
    p = z.run("ls", expect=1)
    assert ("%s:2: key 'targetDiskUsage'" % z.config).encode() in p.stderr


def test_readable_secrets_warn(proxy, tmp_path, zero_bin):
    z = Zero(zero_bin, tmp_path, s3_conf(proxy.port, "perm/"))
    os.chmod(z.config, 0o644)
    p = z.run("ls")
    assert b"holds secrets but is readable by others" in p.stderr
    os.chmod(z.config, 0o600)
    assert b"readable by others" not in z.run("ls").stderr


def test_help_and_usage(tmp_path, zero_bin):
    z = Zero(zero_bin, tmp_path, {"backend": "file", "bucketDir": str(tmp_path / "b")})
    assert b"usage: zero bucket" in z.run("--help").stdout
    for sub in ("check", "ls", "put", "get", "rm", "stat"):
        assert b"usage: zero bucket " + sub.encode() in z.run(sub, "--help").stdout
    z.run("frobnicate", expect=2)
    z.run("put", expect=2)
    z.run("stat", "a", "b", expect=2)


class ServerPair:
    """A private s3rver + proxy, so that a test may kill them."""

    def __init__(self, base):
        self.base = base
        self.s3 = s3rver_server(base / "data", base / "s3rver.log")
        self.proxy = Proxy(self.s3.port, base / "proxy.log").start()

    def kill(self):
        self.proxy.kill()
        self.s3.kill()

    def restart(self):
        self.s3 = s3rver_server(self.base / "data", self.base / "s3rver.log", port=self.s3.port)
        self.proxy = Proxy(self.s3.port, self.base / "proxy.log", port=self.proxy.port).start()


@pytest.fixture
def pair(tmp_path):
    p = ServerPair(tmp_path)
    yield p
    p.kill()


def test_server_killed_mid_transfer_gives_a_clear_error(pair, tmp_path, zero_bin):
    z = Zero(zero_bin, tmp_path, s3_conf(pair.proxy.port, "kill/", maxRetries=3,
                                         retryBaseDelayMs=100))
    data = os.urandom(8 << 20)
    z.run("put", "k", "-", input=data)
    pair.proxy.faults([{"action": "slow", "chunk": 65536, "pause": 0.05, "method": "GET"}])
    out = tmp_path / "out"
    proc = z.popen("get", "k", out)
    time.sleep(1.0)
    pair.kill()
    stdout, stderr = proc.communicate(timeout=60)
    err = stderr.decode()
    assert proc.returncode == 1, err
    assert "retrying" in err
    assert "connection refused" in err
    assert not out.exists()


def test_server_restarted_mid_transfer_is_retried(pair, tmp_path, zero_bin):
    z = Zero(zero_bin, tmp_path, s3_conf(pair.proxy.port, "restart/", maxRetries=8,
                                         retryBaseDelayMs=300))
    data = os.urandom(8 << 20)
    z.run("put", "k", "-", input=data)
    pair.proxy.faults([{"action": "slow", "chunk": 65536, "pause": 0.05, "method": "GET"}])
    out = tmp_path / "out"
    proc = z.popen("get", "k", out)
    time.sleep(1.0)
    pair.kill()
    pair.restart()
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()
    assert b"retrying" in stderr
    assert out.read_bytes() == data
