#!/usr/bin/env python3
"""Sends one peer request signed as docs/gossip.md describes, to test the
daemon's authentication. Prints the HTTP status.

  peer_request.py URL METHOD PATH KEYFILE NODE [--body STR] [--time-offset-ms N]
                  [--repeat N]   (sends the same signed request N times; prints each status)
                  [--node-key FILE]  (NODE's own key file, 64 hex digits: adds the node signature)
                  [--header 'NAME: VALUE']  (one more header, repeatable)
"""
import argparse, hashlib, hmac, http.client, time, urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("url"); ap.add_argument("method"); ap.add_argument("path")
ap.add_argument("keyfile"); ap.add_argument("node")
ap.add_argument("--body", default="")
ap.add_argument("--time-offset-ms", type=int, default=0)
ap.add_argument("--repeat", type=int, default=1)
ap.add_argument("--node-key")
ap.add_argument("--header", action="append", default=[])
a = ap.parse_args()
key = open(a.keyfile, "rb").read().rstrip(b"\r\n")
body = a.body.encode()
t = str(int(time.time() * 1000) + a.time_offset_ms)
nonce = "7"
body_sha = hashlib.sha256(body).hexdigest()
msg = "\n".join([a.method, a.path, t, nonce, body_sha, a.node]).encode()
sig = hmac.new(key, msg, hashlib.sha256).hexdigest()
extra = dict(h.split(": ", 1) for h in a.header)
if a.node_key:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    seed = bytes.fromhex(open(a.node_key).read().strip())
    extra["X-Georeg-Node-Signature"] = Ed25519PrivateKey.from_private_bytes(seed).sign(msg).hex()
u = urllib.parse.urlparse(a.url)
for _ in range(a.repeat):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    c.request(a.method, a.path, body=body, headers={
        "X-Georeg-Node": a.node, "X-Georeg-Time": t, "X-Georeg-Nonce": nonce,
        "X-Georeg-Body-Sha256": body_sha, "X-Georeg-Signature": sig, "Content-Type": "application/json", **extra})
    print(c.getresponse().status)
    c.close()
