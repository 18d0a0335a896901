"""The Prometheus endpoint (metricsListen): scraped over HTTP after real
work against s3rver, parsed with the Prometheus text parser
(prometheus_client), and checked against what was done: uploads, fetches,
evictions, the cache, the queue, request counts and latency histograms per
operation, and the requests per billing class of the store."""

import os
import socket
import subprocess
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port
from test_journal import caught_up
from tierutil import MiB, drop_caches, gen


def scrape(port, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def samples(text):
    """{(name, frozenset(labels)): value} of every sample; the parser refuses bad text."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_metrics_endpoint(make_fs):
    port = free_port()
    m = make_fs("s3", metricsListen="127.0.0.1:%d" % port)
    before = samples(scrape(port))
    assert before[("zero_up", frozenset())] == 1
    assert before[("zero_encrypted", frozenset())] == 1
    for i in range(3):
        (m.mnt / ("f%d" % i)).write_bytes(gen("random", 2 * MiB + i, i))
    caught_up(m)
    for i in range(3):
        m.evict(m.mnt / ("f%d" % i))
    drop_caches()
    for i in range(3):
        assert (m.mnt / ("f%d" % i)).read_bytes() == gen("random", 2 * MiB + i, i)
    st = m.status()
    got = samples(scrape(port))

    def v(name, **labels):
        return got[(name, frozenset(labels.items()))]
    assert v("zero_uploads_total") == st["uploads"] == 3
    assert v("zero_fetches_total") == st["fetches"] >= 3
    assert v("zero_evictions_total") == st["evictions"] >= 3
    assert v("zero_cache_target_bytes") == st["cache_target"]
    assert v("zero_dirty_chunks") == 0 and v("zero_uploads_in_flight") == 0
    assert v("zero_metadata_lag_changes") >= 0 and v("zero_metadata_lag_seconds") >= 0
    # requests: at least one PUT per upload, one GET per fetch; histograms add up
    assert v("zero_store_requests_total", op="put") >= 3
    assert v("zero_store_requests_total", op="get") >= 3
    for op in ("put", "get", "head", "list", "delete"):
        count = v("zero_store_requests_total", op=op)
        assert v("zero_store_request_duration_seconds_count", op=op) == count
        assert v("zero_store_request_duration_seconds_bucket", op=op, le="+Inf") == count
        buckets = sorted((float(dict(k[1])["le"]), val) for k, val in got.items()
                         if k[0] == "zero_store_request_duration_seconds_bucket"
                         and dict(k[1])["op"] == op)
        assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets
    # billing: s3rver is an S3 endpoint, so S3's price list
    puts_lists = v("zero_store_requests_total", op="put") + v("zero_store_requests_total", op="list")
    gets = v("zero_store_requests_total", op="get") + v("zero_store_requests_total", op="head")
    assert v("zero_store_billed_requests_total", **{"class": "put_copy_post_list"}) == puts_lists
    assert v("zero_store_billed_requests_total", **{"class": "get_select_other"}) == gets
    # anything else is not found
    try:
        scrape(port, "/other")
        raise AssertionError("/other answered")
    except urllib.error.HTTPError as e:
        assert e.code == 404


def test_metrics_listen_refused_or_busy(make_fs):
    m = make_fs("file", mount=False, metricsListen="localhost:http")
    p = m.try_mount()
    assert p.returncode == 1 and "metricsListen" in p.stdout, p.stdout
    # a port already taken: the mount works, the metrics are said to be missing
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        m.z.write_config(dict(m.z.conf, metricsListen="127.0.0.1:%d" % taken.getsockname()[1]))
        p = m.try_mount()
        assert p.returncode == 0 and "cannot listen" in p.stdout, p.stdout
        (m.mnt / "f").write_bytes(b"works\n")
        m.umount()
    finally:
        taken.close()
