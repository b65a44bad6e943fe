#!/usr/bin/env python3
"""Client load on a fleet, every response counted (tests/integration/fleet_churn.sh).

  fleet_load.py seed ORIGIN REPO N SIZE OUT
      uploads N random blobs of SIZE bytes to the registry at ORIGIN
      (host:port) under REPO and writes their digests to OUT, one a line.

  fleet_load.py run PLAN
      PLAN is JSON: {"nodes": {name: url}, "ns": origin registry name,
      "repo": mirrored repository, "cached": [digest], "uncached": [digest],
      "push_repo": own-registry repository, "creds": "user:password",
      "workers": per node, "control": path, "report": path}.
      Workers per node loop over four kinds of request until the control
      file says "stop": a GET of a blob the fleet has cached, a GET of a
      blob nobody fetched yet (each once per node, verified by digest), a
      HEAD of a blob nobody has (404 wanted) and a push (blob upload and
      manifest PUT, 201 wanted). The control file names the nodes to load,
      one a line; a node not named gets nothing (it is being killed). Every
      response that is not what a client wants is a failure: the report
      lists each with its node, request and answer, and ends with
      "requests N failed M". A request that fails at a node the control file
      no longer names (it was in flight when the test stopped that node) is
      counted apart, not as a failure.
"""
import base64
import hashlib
import http.client
import json
import os
import random
import sys
import threading
import time


def conn_to(url, timeout=60):
    host = url.split("//", 1)[1]
    h, p = host.rsplit(":", 1)
    return http.client.HTTPConnection(h, int(p), timeout=timeout)


def request(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    return r.status, data, r


def seed(origin, repo, n, size, out):
    c = conn_to("http://" + origin)
    digests = []
    for i in range(n):
        blob = os.urandom(size)
        d = "sha256:" + hashlib.sha256(blob).hexdigest()
        st, _, r = request(c, "POST", f"/v2/{repo}/blobs/uploads/")
        if st != 202:
            sys.exit(f"seed: POST answered {st}")
        loc = r.getheader("Location")
        loc = loc.split("://", 1)[1].split("/", 1)[1] if "://" in loc else loc.lstrip("/")
        sep = "&" if "?" in loc else "?"
        st, _, _ = request(c, "PUT", f"/{loc}{sep}digest={d}", blob,
                           {"Content-Type": "application/octet-stream"})
        if st != 201:
            sys.exit(f"seed: PUT answered {st}")
        digests.append(d)
    with open(out, "w") as f:
        f.write("\n".join(digests) + "\n")


class Load:
    def __init__(self, plan):
        self.p = plan
        self.lock = threading.Lock()
        self.total = 0
        self.failures = []
        self.counts = {}
        self.uncached = {n: list(plan["uncached"]) for n in plan["nodes"]}
        self.auth = "Basic " + base64.b64encode(plan["creds"].encode()).decode()
        self.active = set(plan["nodes"])
        self.at_stopped = 0
        self.stopping = False

    def note(self, node, what, ok, detail):
        with self.lock:
            if not ok and node not in self.active:
                # In flight at a node the test was stopping (a push under the
                # sanitizers outlasts the pause before the kill): not a
                # client of a surviving node.
                self.at_stopped += 1
                return
            self.total += 1
            self.counts[what] = self.counts.get(what, 0) + 1
            if not ok:
                self.failures.append(f"{time.strftime('%H:%M:%S')} {node} {what}: {detail}")

    def control(self):
        while not self.stopping:
            try:
                lines = open(self.p["control"]).read().split()
            except OSError:
                lines = []
            if "stop" in lines:
                self.stopping = True
                return
            with self.lock:
                self.active = set(lines) & set(self.p["nodes"])
            time.sleep(0.05)

    def next_uncached(self, node):
        with self.lock:
            return self.uncached[node].pop() if self.uncached[node] else None

    def worker(self, node, seed_n):
        rng = random.Random(seed_n)
        url = self.p["nodes"][node]
        conn = None
        ns, repo = self.p["ns"], self.p["repo"]
        i = 0
        while not self.stopping:
            with self.lock:
                on = node in self.active
            if not on:
                if conn:
                    conn.close()
                    conn = None
                time.sleep(0.05)
                continue
            if conn is None:
                conn = conn_to(url)
            kind = ("cached", "uncached", "absent", "push")[i % 4]
            i += 1
            try:
                if kind == "cached" or kind == "uncached":
                    d = rng.choice(self.p["cached"]) if kind == "cached" else self.next_uncached(node)
                    if d is None:
                        continue
                    st, data, _ = request(conn, "GET", f"/v2/{repo}/blobs/{d}?ns={ns}")
                    got = "sha256:" + hashlib.sha256(data).hexdigest()
                    self.note(node, "GET " + kind, st == 200 and got == d,
                              f"{d[:19]}: {st} {data[:120]!r}" if st != 200 else f"{d[:19]}: wrong bytes")
                elif kind == "absent":
                    d = "sha256:" + hashlib.sha256(os.urandom(16)).hexdigest()
                    st, _, _ = request(conn, "HEAD", f"/v2/{self.p['push_repo']}/blobs/{d}")
                    self.note(node, "HEAD absent", st == 404, f"{d[:19]}: {st}")
                else:
                    self.push(conn, node, rng)
            except (OSError, http.client.HTTPException) as e:
                self.note(node, kind, False, f"{type(e).__name__}: {e}")
                conn.close()
                conn = None
        if conn:
            conn.close()

    def push(self, conn, node, rng):
        repo = self.p["push_repo"]
        hdr = {"Authorization": self.auth}
        blobs = []
        for _ in range(2):
            b = rng.randbytes(256 + rng.randrange(4096))
            d = "sha256:" + hashlib.sha256(b).hexdigest()
            st, data, _ = request(conn, "POST", f"/v2/{repo}/blobs/uploads/?digest={d}", b,
                                  dict(hdr, **{"Content-Type": "application/octet-stream"}))
            if st != 201:
                return self.note(node, "push blob", False, f"{st} {data[:160]!r}")
            self.note(node, "push blob", True, "")
            blobs.append((d, len(b)))
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": blobs[0][0], "size": blobs[0][1]},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": blobs[1][0], "size": blobs[1][1]}],
        }).encode()
        tag = f"{node}-{rng.randrange(1 << 30)}"
        st, data, _ = request(conn, "PUT", f"/v2/{repo}/manifests/{tag}", manifest,
                              dict(hdr, **{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}))
        self.note(node, "push manifest", st == 201, f"{tag}: {st} {data[:160]!r}")

    def run(self):
        threads = [threading.Thread(target=self.control)]
        n = 0
        for node in self.p["nodes"]:
            for _ in range(self.p["workers"]):
                n += 1
                threads.append(threading.Thread(target=self.worker, args=(node, n)))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with open(self.p["report"], "w") as f:
            for line in self.failures:
                f.write(line + "\n")
            f.write("by kind: " + " ".join(f"{k.replace(' ', '_')}={v}" for k, v in sorted(self.counts.items()))
                    + f" (cut off at a node being stopped: {self.at_stopped})\n")
            f.write(f"requests {self.total} failed {len(self.failures)}\n")


if __name__ == "__main__":
    if sys.argv[1] == "seed":
        seed(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    else:
        Load(json.load(open(sys.argv[2]))).run()
