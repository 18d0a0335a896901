"""The Backblaze bootstrap against fake_b2.py, a FAKE of B2's
b2_authorize_account and b2_list_buckets written from B2's published API:
the keys B2 users already have (accountId, applicationKey, bucketId) find
the S3 endpoint and the bucket's name, then the s3 backend does the work
(here against s3rver behind the signature-checking proxy).
"""

import pytest

from conftest import BUCKET, KEY_ID, PYTHON, HERE, SECRET, Server, Zero

BUCKET_ID = "4a48fe8875c6214145260818"


@pytest.fixture(scope="module")
def fake_b2(proxy, tmp_path_factory):
    log = tmp_path_factory.mktemp("fake_b2") / "fake_b2.log"
    srv = Server([PYTHON, str(HERE / "fake_b2.py"), "--port", "0",
                  "--key", "%s:%s" % (KEY_ID, SECRET),
                  "--bucket", "%s:%s" % (BUCKET_ID, BUCKET),
                  "--bucket", "0000000000000000000000ff:someone-elses",
                  "--s3-url", "http://127.0.0.1:%d" % proxy.port], log=log).start()
    yield srv
    srv.stop()


def b2_conf(fake_b2, **extra):
    conf = {"accountId": KEY_ID, "applicationKey": SECRET, "bucketId": BUCKET_ID,
            "b2ApiUrl": "http://127.0.0.1:%d" % fake_b2.port, "prefix": "b2/",
            "maxRetries": 1, "retryBaseDelayMs": 20}
    conf.update(extra)
    return conf


def test_b2_keys_work_without_naming_a_backend(fake_b2, proxy, tmp_path, zero_bin):
    z = Zero(zero_bin, tmp_path, b2_conf(fake_b2))  # backend inferred from the keys
    p = z.run("check")
    assert b"bucket check passed" in p.stdout
    assert ("s3 http://127.0.0.1:%d bucket %s" % (proxy.port, BUCKET)).encode() in p.stdout
    z.run("put", "obj", "-", input=b"via b2")
    assert z.run("get", "obj").stdout == b"via b2"


def test_b2_keys_from_the_environment(fake_b2, tmp_path, zero_bin):
    conf = b2_conf(fake_b2, backend="b2")
    del conf["accountId"], conf["applicationKey"]
    z = Zero(zero_bin, tmp_path, conf,
             env={"B2_APPLICATION_KEY_ID": KEY_ID, "B2_APPLICATION_KEY": SECRET})
    z.run("ls")


def test_b2_wrong_application_key(fake_b2, tmp_path, zero_bin):
    z = Zero(zero_bin, tmp_path, b2_conf(fake_b2, applicationKey="wrong"))
    p = z.run("ls", expect=1)
    assert b"b2_authorize_account: HTTP 401 unauthorized" in p.stderr


def test_b2_unknown_bucket_id(fake_b2, tmp_path, zero_bin):
    z = Zero(zero_bin, tmp_path, b2_conf(fake_b2, bucketId="ffffffffffffffffffffffff"))
    p = z.run("ls", expect=1)
    assert b"no bucket with id ffffffffffffffffffffffff" in p.stderr


def test_b2_missing_keys(tmp_path, zero_bin):
    z = Zero(zero_bin, tmp_path, {"backend": "b2", "bucketId": BUCKET_ID})
    p = z.run("ls", expect=1)
    assert b"needs accountId, applicationKey and bucketId" in p.stderr
