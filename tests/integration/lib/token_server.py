#!/usr/bin/env python3
"""A registry token server for docker-registry's token auth mode. Tests only.

token_server.py --port-file F --log F --key K --cert C --issuer I --service S
                [--expires N] [--user U --password P]

Issues RS256 JWTs (signed with `openssl dgst`, the certificate in the x5c
header) granting the pull scope asked for. Logs one line per request:
"TOKEN scope=<scope> auth=<yes|no> status=<code>". With --user, requests
without those Basic credentials get 401.
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    ap = argparse.ArgumentParser()
    for a in ("--port-file", "--log", "--key", "--cert", "--issuer", "--service"):
        ap.add_argument(a, required=True)
    ap.add_argument("--expires", type=int, default=300)
    ap.add_argument("--user")
    ap.add_argument("--password")
    args = ap.parse_args()
    der = subprocess.run(["openssl", "x509", "-in", args.cert, "-outform", "DER"], check=True,
                         capture_output=True).stdout
    header = b64url(json.dumps({"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}).encode())
    want_auth = None
    if args.user:
        want_auth = "Basic " + base64.b64encode(f"{args.user}:{args.password}".encode()).decode()

    def record(line):
        with open(args.log, "a") as f:
            f.write(line + "\n")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, code, body):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            q = parse_qs(urlparse(self.path).query)
            scope = q.get("scope", [""])[0]
            auth = self.headers.get("Authorization")
            if want_auth and auth != want_auth:
                record(f"TOKEN scope={scope} auth={'yes' if auth else 'no'} status=401")
                return self.reply(401, b'{"details":"bad credentials"}')
            access = []
            parts = scope.split(":")
            if len(parts) == 3 and parts[0] == "repository":
                access.append({"type": "repository", "name": parts[1], "actions": ["pull"]})
            now = int(time.time())
            claims = {"iss": args.issuer, "sub": args.user or "anonymous", "aud": args.service,
                      "exp": now + args.expires, "nbf": now - 10, "iat": now,
                      "jti": b64url(os.urandom(12)), "access": access}
            signing_input = (header + "." + b64url(json.dumps(claims).encode())).encode()
            sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", args.key], input=signing_input,
                                 check=True, capture_output=True).stdout
            token = signing_input.decode() + "." + b64url(sig)
            record(f"TOKEN scope={scope} auth={'yes' if auth else 'no'} status=200")
            self.reply(200, json.dumps({"token": token, "access_token": token, "expires_in": args.expires}).encode())

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file, "w") as f:
        f.write(str(httpd.server_address[1]))
    httpd.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
