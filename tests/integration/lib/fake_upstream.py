#!/usr/bin/env python3
"""A registry stand-in for faults the real one cannot produce. Tests only.

fake_upstream.py --mode MODE --port-file F --log F [--size N] [--seed S]

Binds 127.0.0.1:0, writes its port to --port-file, and logs one line per
request to --log ("METHOD PATH"). Every blob it serves is --size bytes of
seeded pseudo-random data, whatever digest is asked for, so:
  wrong-bytes  200 with the right Content-Length and the wrong bytes, slowly
               enough (64 KiB every 20 ms) that several clients join the fill
  truncate     200 with Content-Length N, then N/2 bytes, then close
  hang         accepts connections and never answers
  redirect     asks for Basic credentials (--user/--password), then answers
               blob requests with 307 to --redirect-to + "/blobs/<digest>"
               (--loop: to itself, forever)
  blobhost     serves the blob at any path; logs whether an Authorization
               header came with the request
  files        serves /v2/<name>/blobs/<digest> from --dir/<hex> (404 when
               absent), at most --rate bytes per second (0: no limit)
  bearer       like files, behind bearer tokens from its own /token (logged
               as "TOKEN"): tokens claim expires_in=300 but the registry
               honours them for --token-valid seconds only (-1: never), to
               exercise "a 401 with a stale token fetches a new one, once";
               --realm URL announces that realm instead of its own /token
  manifests    serves /v2/<name>/manifests/<ref> from --dir/<ref> (404 when
               absent), behaving as the first word of --behaviour-file says,
               read per request: normal; drip (the whole response, head
               included, one byte a second); huge (announces 2 GiB, then
               sends zeros until the client goes); hang (never answers)
Manifests and /v2/ answer 404 and 200 in the other modes.
"""
import argparse
import json
import os
import base64
import random
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True, choices=["wrong-bytes", "truncate", "hang", "redirect", "blobhost", "files", "bearer",
                                                    "manifests"])
    ap.add_argument("--behaviour-file")
    ap.add_argument("--token-valid", type=float, default=2.0)
    ap.add_argument("--dir")
    ap.add_argument("--rate", type=int, default=0)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--redirect-to")
    ap.add_argument("--realm")
    ap.add_argument("--loop", action="store_true")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--size", type=int, default=4 << 20)
    ap.add_argument("--seed", default="fake")
    args = ap.parse_args()
    body = random.Random(args.seed).randbytes(args.size)
    lock = threading.Lock()

    def record(line):
        with lock, open(args.log, "a") as f:
            f.write(line + "\n")

    if args.mode == "hang":
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(64)
        with open(args.port_file, "w") as f:
            f.write(str(srv.getsockname()[1]))
        held = []
        while True:
            conn, _ = srv.accept()
            record("CONNECT")
            held.append(conn)  # never answered, never closed

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            auth = self.headers.get("Authorization")
            record(f"{self.command} {self.path} auth={'present' if auth else 'absent'}")
            if args.mode == "redirect":
                want = "Basic " + base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
                if auth != want:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="fake"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if "/blobs/" in self.path:
                    digest = self.path.split("/blobs/")[1]
                    host = "" if args.loop else args.redirect_to
                    self.send_response(307)
                    self.send_header("Location", f"{host}/v2/loop/blobs/{digest}" if args.loop
                                     else f"{host}/blobs/{digest}?signature=abc")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            if args.mode == "bearer":
                if self.path.startswith("/token"):
                    issued = time.time()
                    record(f"TOKEN issued")
                    body_ = json.dumps({"token": f"tok-{issued}", "expires_in": 300}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body_)))
                    self.end_headers()
                    self.wfile.write(body_)
                    return
                ok = False
                if auth and auth.startswith("Bearer tok-") and args.token_valid >= 0:
                    ok = time.time() - float(auth[len("Bearer tok-"):]) <= args.token_valid
                if not ok:
                    port = self.server.server_address[1]
                    self.send_response(401)
                    self.send_header("WWW-Authenticate",
                                     f'Bearer realm="{args.realm or f"http://127.0.0.1:{port}/token"}",service="fake",scope="repository:x:pull"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            if args.mode == "manifests" and "/manifests/" in self.path:
                behaviour = "normal"
                if args.behaviour_file and os.path.exists(args.behaviour_file):
                    behaviour = (open(args.behaviour_file).read().split() or ["normal"])[0]
                record(f"BEHAVIOUR {behaviour}")
                path = os.path.join(args.dir, self.path.split("/manifests/")[1].split("?")[0])
                if behaviour == "hang":
                    time.sleep(3600)
                    return
                if behaviour == "huge":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                    self.send_header("Content-Length", str(2 << 30))
                    self.end_headers()
                    try:
                        while self.command != "HEAD":
                            self.wfile.write(b"\0" * 65536)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    self.close_connection = True
                    return
                if not os.path.isfile(path):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = open(path, "rb").read()
                import hashlib
                raw = (b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                       b"Docker-Content-Digest: sha256:" + hashlib.sha256(data).hexdigest().encode() +
                       b"\r\nContent-Length: " + str(len(data)).encode() + b"\r\n\r\n")
                if self.command != "HEAD":
                    raw += data
                try:
                    if behaviour == "drip":
                        for i in range(len(raw)):
                            self.wfile.write(raw[i:i + 1])
                            self.wfile.flush()
                            time.sleep(1)
                    else:
                        self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                return
            if args.mode in ("files", "bearer") and "/blobs/sha256:" in self.path:
                path = os.path.join(args.dir, self.path.split("/blobs/sha256:")[1].split("?")[0])
                if not os.path.isfile(path):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with open(path, "rb") as f:
                    data = f.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                step = 64 << 10
                try:
                    for off in range(0, len(data), step):
                        self.wfile.write(data[off:off + step])
                        if args.rate:
                            time.sleep(step / args.rate)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                return
            if args.mode == "blobhost":
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                return
            if self.path.split("?")[0] in ("/v2/", "/v2"):
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
                return
            if "/blobs/" not in self.path:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "HEAD":
                return
            try:
                if args.mode == "truncate":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                for off in range(0, len(body), 64 << 10):
                    self.wfile.write(body[off:off + (64 << 10)])
                    self.wfile.flush()
                    time.sleep(0.02)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file, "w") as f:
        f.write(str(httpd.server_address[1]))
    httpd.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
