#!/usr/bin/python3
"""fake_b2.py - a FAKE of two calls of Backblaze B2's native API, for tests.

Written from B2's published API documentation (version 2 of the calls); it
is not Backblaze's code and does nothing else:

  GET  /b2api/v2/b2_authorize_account   Authorization: Basic base64(keyId:key)
       -> 200 {accountId, authorizationToken, apiUrl, downloadUrl, s3ApiUrl,
               recommendedPartSize, absoluteMinimumPartSize, allowed}
       -> 401 {"status": 401, "code": "unauthorized", "message": ...}
  POST /b2api/v2/b2_list_buckets        Authorization: <token>
       body {"accountId": ..., "bucketId": ...(optional)}
       -> 200 {"buckets": [{accountId, bucketId, bucketName, bucketType, ...}]}
       -> 401 {"code": "bad_auth_token"} / 400 {"code": "bad_request"}

Run: /usr/bin/python3 fake_b2.py --port 0 --key KEYID:KEY --s3-url URL \
         --bucket BUCKETID:NAME   (prints "listening on PORT" once ready)
"""

import argparse
import base64
import http.server
import json
import secrets

ACCOUNT_ID = "fakeaccount0001"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    conf = None
    tokens = set()

    def log_message(self, fmt, *args):
        pass

    def _json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status, code, message):
        self._json(status, {"status": status, "code": code, "message": message})

    def do_GET(self):
        if self.path != "/b2api/v2/b2_authorize_account":
            return self._error(404, "not_found", "unknown call")
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return self._error(401, "unauthorized", "missing Basic authorization")
        try:
            key_id, key = base64.b64decode(auth[6:]).decode().split(":", 1)
        except ValueError:
            return self._error(400, "bad_request", "malformed Basic authorization")
        if self.conf.keys.get(key_id) != key:
            return self._error(401, "unauthorized", "invalid application key id or key")
        token = "4_" + secrets.token_hex(16)
        Handler.tokens.add(token)
        base = "http://127.0.0.1:%d" % self.server.server_address[1]
        self._json(200, {
            "accountId": ACCOUNT_ID,
            "authorizationToken": token,
            "apiUrl": base,
            "downloadUrl": base,
            "s3ApiUrl": self.conf.s3_url,
            "recommendedPartSize": 100000000,
            "absoluteMinimumPartSize": 5000000,
            "allowed": {"capabilities": ["listBuckets", "readFiles", "writeFiles",
                                         "deleteFiles"],
                        "bucketId": None, "bucketName": None, "namePrefix": None},
        })

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.path != "/b2api/v2/b2_list_buckets":
            return self._error(404, "not_found", "unknown call")
        if self.headers.get("Authorization") not in Handler.tokens:
            return self._error(401, "bad_auth_token", "invalid authorization token")
        try:
            req = json.loads(body)
        except ValueError:
            return self._error(400, "bad_request", "body is not JSON")
        if req.get("accountId") != ACCOUNT_ID:
            return self._error(401, "unauthorized", "accountId does not match the token")
        buckets = [{"accountId": ACCOUNT_ID, "bucketId": bid, "bucketName": name,
                    "bucketType": "allPrivate", "bucketInfo": {}, "corsRules": [],
                    "lifecycleRules": [], "revision": 1, "options": ["s3"]}
                   for bid, name in self.conf.buckets.items()
                   if "bucketId" not in req or req["bucketId"] == bid]
        self._json(200, {"buckets": buckets})


def main():
    ap = argparse.ArgumentParser(description="a fake of B2's authorize/list-buckets calls")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--key", action="append", default=[], help="KEYID:KEY")
    ap.add_argument("--bucket", action="append", default=[], help="BUCKETID:NAME")
    ap.add_argument("--s3-url", required=True)
    args = ap.parse_args()
    args.keys = dict(k.split(":", 1) for k in args.key)
    args.buckets = dict(b.split(":", 1) for b in args.bucket)
    Handler.conf = args
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("listening on %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
