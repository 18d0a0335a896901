#!/usr/bin/python3
"""sigproxy.py - a signature-verifying, fault-injecting HTTP proxy for S3 tests.

s3rver 3.7 accepts any signature from a known key id, so on its own it
proves nothing about signing. This proxy stands in front of it and, for
every request:

  1. recomputes the SigV4 signature with an independent implementation
     (botocore's S3SigV4Auth) from the request as it arrived, and answers
     403 SignatureDoesNotMatch on any difference (InvalidAccessKeyId for an
     unknown key id, AccessDenied for a missing or malformed Authorization);
  2. checks that x-amz-content-sha256, Content-MD5, x-amz-checksum-crc32c
     and x-amz-checksum-sha256 match the body it received, that every PUT
     carries one of them, and that host, x-amz-date and
     x-amz-content-sha256 are signed;
  3. applies the first matching injected fault, if any, else forwards the
     request unchanged to the upstream server and relays its answer.

Faults (POST /__proxy__/faults with a JSON list; each has "times", and may
restrict itself with "method" and "path_contains"):
  {"action": "status", "status": 503, "retry_after": "1"}  answer that status
  {"action": "reset"}        close the connection without an answer
  {"action": "truncate"}     forward, then send half the body and close
  {"action": "delay", "seconds": 2}   wait, then forward
  {"action": "slow", "chunk": 65536, "pause": 0.05}  dribble the answer body
  {"action": "corrupt"}      flip a bit of the request body before checking it
  {"action": "garble"}       forward, then answer with a bit of the body flipped
                             (status, headers and length as the server's)
  {"action": "short"}        forward, then answer with the first half of the body
                             and a Content-Length to match (a whole-looking answer)
With --conditional the proxy also does what s3rver does not: S3's conditional
writes (If-None-Match: * and If-Match: "ETAG" on PUT, answered 412
PreconditionFailed when the key is not in that state), made atomic by
holding one lock over the check and every PUT and DELETE it forwards.
Without it those headers reach s3rver, which ignores them, as older S3
implementations do.

GET /__proxy__/stats returns counters and the request log ([method, path,
status, note, Range header] per request); POST
/__proxy__/reset clears faults and counters. The control paths are the
only unsigned requests accepted.

Run: /usr/bin/python3 sigproxy.py --port 0 --upstream 127.0.0.1:4568 \
         --key S3RVER:S3RVER [--region us-east-1] [--conditional]
(prints "listening on PORT" once ready; with --region, a request signed for
another region gets AWS's 400 AuthorizationHeaderMalformed)
"""

import argparse
import base64
import calendar
import hashlib
import http.client
import http.server
import json
import re
import socket
import struct
import sys
import threading
import time
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
    r"SignedHeaders=([a-z0-9;\-]+),\s*Signature=([0-9a-f]{64})$")
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


def s3_error(code, message):
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
            "<Message>%s</Message></Error>" % (escape(code), escape(message))).encode()


class State:
    def __init__(self, upstream, keys, region=None, conditional=False):
        self.upstream = upstream
        self.keys = keys
        self.region = region
        self.conditional = conditional
        self.cond_lock = threading.Lock()  # over a conditional check and every write
        self.lock = threading.Lock()
        self.faults = []
        self.reset_stats()

    def reset_stats(self):
        self.connections = 0
        self.inflight = 0
        self.max_inflight = 0
        self.requests = 0
        self.sig_failures = 0
        self.faults_fired = 0
        self.log = []

    def take_fault(self, method, path, corrupt=False):
        """The first matching fault; CORRUPT picks body-corrupting ones (applied first)."""
        with self.lock:
            for f in self.faults:
                if f.get("times", 1) <= 0 or (f.get("action") == "corrupt") != corrupt:
                    continue
                if f.get("method") and f["method"] != method:
                    continue
                if f.get("path_contains") and f["path_contains"] not in path:
                    continue
                f["times"] = f.get("times", 1) - 1
                self.faults_fired += 1
                return dict(f)
        return None


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), written out here so the check is independent of the client's."""
    c = 0xFFFFFFFF
    t = CRC32C_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def verify(state, method, path, headers, body):
    """Return None if the request is correctly signed, else (status, code, message)."""
    auth = headers.get("Authorization")
    if not auth:
        return 403, "AccessDenied", "missing Authorization"
    m = AUTH_RE.match(auth.strip())
    if not m:
        return 403, "AccessDenied", "malformed Authorization: %s" % auth
    key_id, date8, region, service, signed, signature = m.groups()
    if key_id not in state.keys:
        return 403, "InvalidAccessKeyId", "unknown access key id %s" % key_id
    if state.region and region != state.region:
        # What AWS answers when the credential scope names another region.
        return 400, "AuthorizationHeaderMalformed", (
            "The authorization header is malformed; the region '%s' is wrong; "
            "expecting '%s'" % (region, state.region))
    signed_names = signed.split(";")
    for required in ("host", "x-amz-date", "x-amz-content-sha256"):
        if required not in signed_names:
            return 403, "AccessDenied", "header %s is not signed" % required
    if signed_names != sorted(signed_names):
        return 403, "SignatureDoesNotMatch", "SignedHeaders not sorted"
    amz_date = headers.get("x-amz-date", "")
    if not amz_date.startswith(date8):
        return 403, "SignatureDoesNotMatch", "credential date differs from x-amz-date"
    try:
        when = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return 403, "AccessDenied", "bad x-amz-date"
    if abs(time.time() - when) > 900:
        return 403, "RequestTimeTooSkewed", "x-amz-date too far from now"
    payload = headers.get("x-amz-content-sha256", "")
    if payload != "UNSIGNED-PAYLOAD" and payload != hashlib.sha256(body).hexdigest():
        return 400, "XAmzContentSHA256Mismatch", "x-amz-content-sha256 does not match the body"
    md5 = headers.get("Content-MD5")
    if md5 is not None and md5 != base64.b64encode(hashlib.md5(body).digest()).decode():
        return 400, "BadDigest", "Content-MD5 does not match the body"
    crc = headers.get("x-amz-checksum-crc32c")
    if crc is not None and crc != base64.b64encode(crc32c(body).to_bytes(4, "big")).decode():
        return 400, "BadDigest", "x-amz-checksum-crc32c does not match the body"
    sha = headers.get("x-amz-checksum-sha256")
    if sha is not None and sha != base64.b64encode(hashlib.sha256(body).digest()).decode():
        return 400, "BadDigest", "x-amz-checksum-sha256 does not match the body"
    if method == "PUT" and md5 is None and crc is None and sha is None and payload == "UNSIGNED-PAYLOAD":
        return 400, "MissingChecksum", "an upload without any integrity checksum"
    # Recompute with botocore from what arrived: only the signed headers.
    signed_headers = {}
    for name in signed_names:
        values = headers.get_all(name)
        if values is None:
            return 403, "SignatureDoesNotMatch", "signed header %s is absent" % name
        signed_headers[name] = ",".join(values)
    url = "http://%s%s" % (headers.get("host"), path)
    request = AWSRequest(method=method, url=url, headers=signed_headers, data=body)
    request.context["timestamp"] = amz_date
    signer = S3SigV4Auth(Credentials(key_id, state.keys[key_id]), service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if expected != signature:
        return 403, "SignatureDoesNotMatch", (
            "The request signature we calculated does not match the signature you provided. "
            "Canonical request: %s" % canonical.replace("\n", "\\n"))
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        self.counted = False  # connections that carry S3 requests, not control calls

    def _reply(self, status, body, extra=None, content_type="application/xml"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if len(body) < n:
            return None  # the client went away part way (a killed daemon): no request
        return body

    def _control(self, body):
        st = self.state
        if self.path == "/__proxy__/faults" and self.command == "POST":
            with st.lock:
                st.faults = json.loads(body or b"[]")
            return self._reply(200, b"{}", content_type="application/json")
        if self.path == "/__proxy__/reset" and self.command == "POST":
            with st.lock:
                st.faults = []
                st.reset_stats()
            return self._reply(200, b"{}", content_type="application/json")
        if self.path == "/__proxy__/stats":
            with st.lock:
                data = {"requests": st.requests, "sig_failures": st.sig_failures,
                        "connections": st.connections, "max_inflight": st.max_inflight,
                        "faults_fired": st.faults_fired, "log": st.log}
            return self._reply(200, json.dumps(data).encode(), content_type="application/json")
        return self._reply(404, b"{}", content_type="application/json")

    def _abort(self):
        # Close with RST so the client sees a reset, not a clean end.
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def _handle(self):
        st = self.state
        body = self._read_body()
        if body is None:
            self.close_connection = True
            return None
        if self.path.startswith("/__proxy__/"):
            return self._control(body)
        with st.lock:
            if not self.counted:
                st.connections += 1
                self.counted = True
            st.requests += 1
            st.inflight += 1
            st.max_inflight = max(st.max_inflight, st.inflight)
        try:
            return self._handle_s3(body)
        finally:
            with st.lock:
                st.inflight -= 1

    def _handle_s3(self, body):
        st = self.state
        if body and st.take_fault(self.command, self.path, corrupt=True):
            body = bytes([body[0] ^ 0x01]) + body[1:]  # damage "in transit"
        problem = verify(st, self.command, self.path, self.headers, body)
        if problem:
            status, code, message = problem
            with st.lock:
                st.sig_failures += 1
                st.log.append([self.command, self.path, status, code,
                               self.headers.get("Range", "")])
            sys.stderr.write("sigproxy: %s %s -> %d %s: %s\n"
                             % (self.command, self.path, status, code, message))
            return self._reply(status, s3_error(code, message))
        fault = st.take_fault(self.command, self.path)
        action = fault["action"] if fault else None
        if action == "status":
            with st.lock:
                st.log.append([self.command, self.path, fault["status"], "injected",
                               self.headers.get("Range", "")])
            extra = {}
            if "retry_after" in fault:
                extra["Retry-After"] = str(fault["retry_after"])
            codes = {500: "InternalError", 503: "SlowDown", 429: "TooManyRequests",
                     400: "InvalidRequest", 403: "AccessDenied"}
            return self._reply(fault["status"],
                               s3_error(codes.get(fault["status"], "Injected"), "injected fault"),
                               extra)
        if action == "reset":
            with st.lock:
                st.log.append([self.command, self.path, 0, "reset", self.headers.get("Range", "")])
            return self._abort()
        if action == "delay":
            time.sleep(float(fault.get("seconds", 1)))
        if st.conditional and self.command in ("PUT", "DELETE", "POST"):
            with st.cond_lock:
                return self._forward(body, action, fault, self._precondition())
        return self._forward(body, action, fault, None)

    def _precondition(self):
        """S3's answer to a conditional PUT whose condition fails, else None."""
        inm = self.headers.get("If-None-Match")
        im = self.headers.get("If-Match")
        if self.command != "PUT" or (inm is None and im is None):
            return None
        host, port = self.state.upstream
        conn = http.client.HTTPConnection(host, port, timeout=120)
        try:
            # s3rver answers a HEAD unsigned as well as signed: the proxy's own look
            conn.request("HEAD", self.path.split("?", 1)[0])
            resp = conn.getresponse()
            resp.read()
            etag = resp.getheader("ETag") if resp.status == 200 else None
        finally:
            conn.close()
        if inm is not None and inm.strip() == "*" and etag is not None:
            return 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"
        if im is not None and etag is None:
            return 404, "NoSuchKey", "The specified key does not exist."
        if im is not None and im.strip() != etag.strip():
            return 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"
        return None

    def _forward(self, body, action, fault, refused):
        st = self.state
        if refused:
            status, code, message = refused
            with st.lock:
                st.log.append([self.command, self.path, status, "precondition",
                               self.headers.get("Range", "")])
            return self._reply(status, s3_error(code, message))
        host, port = st.upstream
        conn = http.client.HTTPConnection(host, port, timeout=120)
        fwd = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        fwd["Content-Length"] = str(len(body))
        try:
            conn.request(self.command, self.path, body=body, headers=fwd)
            resp = conn.getresponse()
            data = resp.read()
        except OSError as e:
            sys.stderr.write("sigproxy: upstream failed: %s\n" % e)
            return self._abort()
        finally:
            conn.close()
        with st.lock:
            st.log.append([self.command, self.path, resp.status, action or "",
                           self.headers.get("Range", "")])
        if action == "garble" and data:
            data = data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 0x01]) + \
                data[len(data) // 2 + 1:]
        elif action == "short":
            data = data[:len(data) // 2]
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_HEADERS and k.lower() != "content-length":
                self.send_header(k, v)
        length = resp.getheader("Content-Length")
        if self.command == "HEAD" and length is not None:
            self.send_header("Content-Length", length)
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return None
        if action == "truncate":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            return self._abort()
        if action == "slow":
            chunk = int(fault.get("chunk", 65536))
            for i in range(0, len(data), chunk):
                self.wfile.write(data[i:i + chunk])
                self.wfile.flush()
                time.sleep(float(fault.get("pause", 0.05)))
            return None
        self.wfile.write(data)
        return None

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the S3 server")
    ap.add_argument("--key", action="append", default=[], help="ACCESS_KEY_ID:SECRET")
    ap.add_argument("--region", help="the only region the bucket answers to")
    ap.add_argument("--conditional", action="store_true",
                    help="honour If-None-Match / If-Match on PUT, as S3 does")
    args = ap.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    keys = dict(k.split(":", 1) for k in args.key)
    Handler.state = State((host, int(port)), keys, args.region, args.conditional)
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    http.server.ThreadingHTTPServer.daemon_threads = True
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("listening on %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
