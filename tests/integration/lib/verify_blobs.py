#!/usr/bin/env python3
"""verify_blobs.py HOST:PORT QUERY < digests: GETs /v2/x/blobs/<digest>?QUERY for
every digest on stdin over one keep-alive connection and checks each body's
sha256. Prints one line per mismatch or error; exits with their count (max 100)."""
import hashlib
import http.client
import sys

host, port = sys.argv[1].rsplit(":", 1)
query = sys.argv[2]
bad = 0
conn = http.client.HTTPConnection(host, int(port), timeout=10)
for digest in sys.stdin.read().split():
    try:
        conn.request("GET", f"/v2/x/blobs/{digest}?{query}")
        resp = conn.getresponse()
        body = resp.read()
        got = "sha256:" + hashlib.sha256(body).hexdigest()
        if resp.status != 200 or got != digest:
            bad += 1
            print(f"{digest}: status {resp.status}, served as {got}")
    except Exception as e:  # a reset or a short body: the blob was not served whole
        bad += 1
        print(f"{digest}: {e!r}")
        conn.close()
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
sys.exit(min(bad, 100))
