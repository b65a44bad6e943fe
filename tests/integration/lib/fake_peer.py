#!/usr/bin/env python3
"""A cluster member that lies: it holds the cluster key, joins like a real
node, answers probes, claims to hold every digest (a summary with every bit
set), and serves garbage for every blob. For testing quarantine: georeg must
verify peer bytes, reset its clients, skip this peer afterwards and count it.

  fake_peer.py --key FILE --name NAME --region R --port-file F --log F --join URL
               [--summary endless] [--extra-member NAME=URL] [--forge]

--summary endless answers /_georeg/v1/summary with a body that never ends
(chunked, as fast as the reader takes it). --extra-member adds a record for
another member at URL (say the cloud metadata address) to every message.
--forge adds what an honest member never sends: a tag update whose HLC
logical counter is 2^32-1, a record declaring the joined node left at
incarnation 2^64-1, a tag update in the joined node's name and a record
moving the joined node to our address (both signed with our own key, the
only node key we hold), and once a message sent in the joined node's name
(noted: "impersonation answered STATUS").

It has its own Ed25519 node key, as every member does, and signs its
record, its tag updates and its requests with it (docs/gossip.md).
"""
import argparse
import hashlib
import hmac
import http.client
import http.server
import json
import threading
import time
import urllib.parse

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ap = argparse.ArgumentParser()
ap.add_argument("--key", required=True)
ap.add_argument("--name", required=True)
ap.add_argument("--region", required=True)
ap.add_argument("--port-file", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--join", required=True)
ap.add_argument("--summary", default="bloom")
ap.add_argument("--extra-member", action="append", default=[])
ap.add_argument("--forge", action="store_true")
ap.add_argument("--joined-name", default="n1")
args = ap.parse_args()
KEY = open(args.key, "rb").read().rstrip(b"\r\n")
nonce = [0]
lock = threading.Lock()


class NodeKey:
    def __init__(self):
        self.private = Ed25519PrivateKey.generate()
        raw = self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public = raw.hex()

    def sign(self, text):
        return self.private.sign(text.encode()).hex()


NODE_KEY = NodeKey()
INC = int(time.time())  # like a real node: seconds since the epoch


def record(name, url, key, state="alive", inc=INC, region=None):
    """A member record signed with `key` (its SignedForm, peers/membership.h)."""
    r = {"name": name, "region": region or args.region, "url": url, "state": state, "inc": inc, "key": key.public}
    form = "\n".join(["georeg-member", name, r["region"], url, key.public, str(inc),
                      "left" if state == "left" else "alive"])
    r["sig"] = key.sign(form)
    return r


def tag_update(repository, digest, logical, origin, key):
    t = {"registry": "docker.io", "repository": repository, "tag": "latest", "digest": digest,
         "wall": int(time.time() * 1000), "logical": logical, "origin": origin}
    form = "\n".join(["georeg-tag", t["registry"], repository, t["tag"], digest, str(t["wall"]), str(logical), origin])
    t["sig"] = key.sign(form)
    return t


def note(line):
    with lock, open(args.log, "a") as f:
        f.write(line + "\n")


def sign(method, target, body, name):
    with lock:
        nonce[0] += 1
        n = str(nonce[0])
    t = str(int(time.time() * 1000))
    body_sha = hashlib.sha256(body).hexdigest()
    msg = "\n".join([method, target, t, n, body_sha, name])
    return {"X-Georeg-Node": name, "X-Georeg-Time": t, "X-Georeg-Nonce": n,
            "X-Georeg-Body-Sha256": body_sha,
            "X-Georeg-Signature": hmac.new(KEY, msg.encode(), hashlib.sha256).hexdigest(),
            "X-Georeg-Node-Signature": NODE_KEY.sign(msg),
            "Content-Type": "application/json"}


def post(url, message, name=None):
    body = json.dumps(message).encode()
    u = urllib.parse.urlparse(url)
    try:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=3)
        c.request("POST", "/_georeg/v1/msg", body=body, headers=sign("POST", "/_georeg/v1/msg", body, name or args.name))
        status = c.getresponse().status
        c.close()
        return status
    except OSError as e:
        note("post to %s failed: %s" % (url, e))
        return None


EXTRA_KEYS = {}  # a key holder can mint as many identities as it likes


def message(kind, seq=0, target="", sender=None):
    members = [record(args.name, SELF_URL, NODE_KEY)]
    for extra in args.extra_member:
        name, url = extra.split("=", 1)
        members.append(record(name, url, EXTRA_KEYS.setdefault(name, NodeKey())))
    tags = []
    if args.forge:
        members.append(record(args.joined_name, args.join, NODE_KEY, state="left", inc=2 ** 64 - 1, region="eu"))
        members.append(record(args.joined_name, SELF_URL, NODE_KEY, inc=INC + 10, region="eu"))
        tags.append(tag_update("library/forged", "sha256:" + "f" * 64, 2 ** 32 - 1, args.name, NODE_KEY))
        tags.append(tag_update("library/stolen", "sha256:" + "e" * 64, 0, args.joined_name, NODE_KEY))
    return {"type": kind, "from": sender or args.name, "seq": seq, "target": target, "sv": 1,
            "members": members, "tags": tags, "summaries": [], "revocations": []}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
        try:
            m = json.loads(body)
        except ValueError:
            return
        sender = next((r["url"] for r in m.get("members", []) if r.get("name") == m.get("from")), None)
        if m.get("type") == "ping" and sender:
            threading.Thread(target=post, args=(sender, message("ack", m["seq"]))).start()

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/_georeg/v1/summary" and args.summary == "endless":
            note("summary request (endless)")
            self.send_response(200)
            self.send_header("X-Georeg-Summary-Version", "1")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"\xff" * 65536
            sent = 0
            try:
                while True:
                    self.wfile.write(b"10000\r\n" + chunk + b"\r\n")
                    sent += len(chunk)
            except OSError:
                note("endless summary cut off after %d bytes" % sent)
            self.close_connection = True
            return
        if path == "/_georeg/v1/summary":
            # Every bit set: "I may have anything".
            body = b"GRBF" + (1).to_bytes(4, "little") + (64).to_bytes(8, "little") + b"\xff" * 8
            self.send_response(200)
            self.send_header("X-Georeg-Summary-Version", "1")
        elif "/blobs/" in path:
            note("blob request %s" % self.path)
            body = b"not the blob you asked for " * 1000
            self.send_response(200)
        else:
            body = b"{}"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
SELF_URL = "http://127.0.0.1:%d" % server.server_address[1]
with open(args.port_file, "w") as f:
    f.write(str(server.server_address[1]))
threading.Thread(target=server.serve_forever, daemon=True).start()
# Join: a full-state sync to the node; repeat now and then, as a member would.
impersonated = False
while True:
    post(args.join, message("sync"))
    if args.forge and not impersonated:
        time.sleep(1)  # joined first: the node holds our key, and the joined node's
        status = post(args.join, message("push", sender=args.joined_name), name=args.joined_name)
        note("impersonation answered %s" % status)
        impersonated = True
    time.sleep(2)
