#!/usr/bin/env python3
"""bench/suite.py: georeg side by side with what a user would run instead.

One run starts an origin (Debian's docker-registry) seeded with blobs of
1 MiB, 32 MiB, 256 MiB and 1 GiB and a few hundred small manifests, then
measures, the same way and alternating targets round by round:

  georeg          this build (build-release), filling from the origin
  proxy_cache     nginx proxy_cache set up as a registry cache (cache lock on)
  registry-proxy  docker-registry in proxy (pull-through) mode
  static-sendfile nginx serving the same blobs as files, sendfile on  } the
  static-copy     the same, sendfile off and 1 MiB output buffers     } ceilings
  origin          the origin itself (the ceiling of a cold fetch)

Figures: cold fetch per size (time, first byte, upstream GETs); warm 1 GiB
single stream; 32 MiB blob at 16 and 64 clients; manifest GET by digest and
by tag and blob HEAD at 64 connections (req/s, p50, p99); a 32-client herd
on one uncached 256 MiB blob (upstream GETs, wall time, slowest first byte);
CPU seconds per warm GiB; peak RSS at 64 clients per blob size; a 1 GiB
layer push against docker-registry; a peer fill against an upstream fill.
Each is the median of --rounds rounds with min-max, and a ratio to the best
ceiling of the same run. Prints a Markdown report (and writes it with
--out), and an SVG chart with --chart (gnuplot).

Run it through bench/run.sh (installs the packages, builds, runs as root).
Loopback only; every server binds 127.0.0.1 on a free port and is stopped by
PID when the run ends.
"""
import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

MiB = 1 << 20
GiB = 1 << 30
SIZES = [("1MiB", MiB), ("32MiB", 32 * MiB), ("256MiB", 256 * MiB), ("1GiB", GiB)]
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = MANIFEST_TYPE + ", application/vnd.docker.distribution.manifest.v2+json"
HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url], capture_output=True, text=True)
        if r.stdout not in ("", "000"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / CLK_TCK


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_hwm(pids):
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


class Proc:
    """A server process the suite started; stopped by PID."""

    def __init__(self, name, argv, logfile, env=None):
        self.name = name
        self.log = logfile
        with open(logfile, "ab") as out:
            self.p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def pids(self):
        return [self.p.pid] + children(self.p.pid)

    def stop(self):
        if self.p.poll() is not None:
            return
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


class Target:
    """One server under test: started fresh (empty cache) or kept."""

    ceiling = False
    caches = True  # a cache that fills from the origin (cold figures apply)

    def __init__(self, suite, name):
        self.suite = suite
        self.name = name
        self.dir = os.path.join(suite.work, name)
        self.proc = None
        self.port = None

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def pids(self):
        return self.proc.pids() if self.proc else []

    def start(self, fresh):
        self.stop()
        if fresh and os.path.exists(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir, exist_ok=True)
        if self.port is None:
            self.port = free_port()
        self.proc = self.launch()
        wait_http(self.url("/v2/"))

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None


def nginx_conf(t, http_body):
    return f"""daemon off;
user root;
worker_processes auto;
pid {t.dir}/nginx.pid;
error_log {t.dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log {t.dir}/access.log;
  keepalive_requests 1000000;
  client_body_temp_path {t.dir}/tmp/body;
  proxy_temp_path {t.dir}/tmp/proxy;
  fastcgi_temp_path {t.dir}/tmp/fastcgi;
  uwsgi_temp_path {t.dir}/tmp/uwsgi;
  scgi_temp_path {t.dir}/tmp/scgi;
  default_type application/octet-stream;
{http_body}
}}
"""


class NginxTarget(Target):
    def launch(self):
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_conf(self, self.http_body()))
        return Proc(self.name, ["nginx", "-c", conf, "-p", self.dir], os.path.join(self.dir, "stdout.log"))


class StaticTarget(NginxTarget):
    ceiling = True
    caches = False

    def __init__(self, suite, name, sendfile):
        super().__init__(suite, name)
        self.sendfile = sendfile

    def http_body(self):
        io = "sendfile on; tcp_nopush on;" if self.sendfile else "sendfile off; output_buffers 1 1m;"
        return f"""  {io}
  server {{
    listen 127.0.0.1:{self.port};
    root {self.suite.www};
    location /v2/bench/manifests/ {{ default_type {MANIFEST_TYPE}; }}
    location = /v2/ {{ return 200 '{{}}'; }}
  }}"""


class ProxyCacheTarget(NginxTarget):
    """nginx as a registry cache: blobs kept by digest, manifests by URI and
    Accept for as long as georeg's tag_ttl (5 min), one upstream request per
    key at a time (proxy_cache_lock), HEAD answered from the cached GET."""

    def http_body(self):
        return f"""  sendfile on; tcp_nopush on;
  proxy_cache_path {self.dir}/cache levels=1:2 keys_zone=registry:64m max_size=16g inactive=30d use_temp_path=off;
  upstream origin {{ server 127.0.0.1:{self.suite.origin.port}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{self.port};
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_cache registry;
    proxy_cache_lock on;
    proxy_cache_lock_timeout 10m;
    proxy_cache_lock_age 10m;
    proxy_ignore_headers Cache-Control Expires Set-Cookie;
    proxy_read_timeout 10m;
    location /v2/ {{
      proxy_pass http://origin;
      proxy_cache_valid 200 5m;
      proxy_cache_key $uri$http_accept;
    }}
    location ~ ^/v2/.+/blobs/sha256: {{
      proxy_pass http://origin;
      proxy_cache_valid 200 30d;
      proxy_cache_key $uri;
    }}
  }}"""


def registry_yml(addr, root, extra=""):
    return f"""version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: {addr}
  secret: bench-not-a-secret
{extra}"""


class RegistryTarget(Target):
    """docker-registry: the origin itself, or a pull-through cache of it."""

    def __init__(self, suite, name, proxy_of=None):
        super().__init__(suite, name)
        self.proxy_of = proxy_of
        self.ceiling = proxy_of is None
        self.caches = proxy_of is not None

    def launch(self):
        extra = f"proxy:\n  remoteurl: http://127.0.0.1:{self.proxy_of.port}\n" if self.proxy_of else ""
        yml = os.path.join(self.dir, "registry.yml")
        with open(yml, "w") as f:
            f.write(registry_yml(f"127.0.0.1:{self.port}", os.path.join(self.dir, "data"), extra))
        return Proc(self.name, ["docker-registry", "serve", yml], os.path.join(self.dir, "registry.log"))


class GeoregTarget(Target):
    """georeg with its defaults (access log, metrics, scrub), one upstream:
    the origin. Optionally one of a cluster (peer fill)."""

    def __init__(self, suite, name, extra=""):
        super().__init__(suite, name)
        self.extra = extra

    def launch(self):
        cfg = os.path.join(self.dir, "georeg.toml")
        with open(cfg, "w") as f:
            f.write(f"""[server]
listen = "127.0.0.1:{self.port}"
[cache]
dir = "{self.dir}/cache"
max_size = "8GiB"
[metrics]
listen = "127.0.0.1:{free_port()}"
[[upstream]]
registry = "bench"
url = "http://127.0.0.1:{self.suite.origin.port}"
{self.extra}""")
        return Proc(self.name, [self.suite.georeg, "serve", "--config", cfg], os.path.join(self.dir, "georeg.log"))


def curl_get(url, method="GET", extra=()):
    """One request by curl: (first byte s, total s, bytes, status)."""
    argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{time_starttransfer} %{time_total} %{size_download} %{http_code}"]
    if method == "HEAD":
        argv.append("-I")
    r = subprocess.run(argv + list(extra) + [url], capture_output=True, text=True, check=True)
    ttfb, total, size, code = r.stdout.split()
    return float(ttfb), float(total), int(size), int(code)


def wrk(url, conns, seconds):
    """wrk against one URL (blob throughput); bench/wrk.lua prints its summary as JSON."""
    threads = min(2, conns)
    r = subprocess.run(["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--timeout", "30s",
                        "-s", os.path.join(HERE, "wrk.lua"), url], capture_output=True, text=True)
    m = re.search(r"^WRKJSON (.*)$", r.stdout, re.M)
    if not m:
        raise RuntimeError(f"wrk printed no summary: {r.stdout} {r.stderr}")
    out = json.loads(m.group(1))
    if out["status_errors"] or out["socket_errors"] or out["timeouts"] or not out["requests"]:
        raise RuntimeError(f"wrk against {url}: {out}")
    return out


def reqload(suite, port, conns, seconds, paths, method, accept):
    """bench/reqload (wrk cannot wait out a HEAD with a Content-Length): the request-rate figures."""
    r = subprocess.run([suite.reqload, "-c", str(conns), "-t", "2", "-d", str(seconds), "-m", method,
                        "-H", "Accept: " + accept, "-p", paths, str(port)], capture_output=True, text=True)
    m = re.search(r"^WRKJSON (.*)$", r.stdout, re.M)
    if not m:
        raise RuntimeError(f"reqload printed no summary: {r.stdout} {r.stderr}")
    out = json.loads(m.group(1))
    if out["status_errors"] or out["socket_errors"] or not out["requests"]:
        raise RuntimeError(f"reqload against port {port}: {out}")
    return out


class Suite:
    def __init__(self, args):
        self.args = args
        self.rounds = args.rounds
        self.work = tempfile.mkdtemp(prefix="georeg-suite.", dir=args.workdir)
        self.www = os.path.join(self.work, "www")
        self.georeg = os.path.abspath(args.georeg)
        self.reqload = os.path.join(self.work, "reqload")
        subprocess.run(["cc", "-O2", "-pthread", "-o", self.reqload, os.path.join(HERE, "reqload.c")], check=True)
        self.results = {}  # figure -> target -> [values]
        self.notes = []
        self.blobs = {}  # size name -> (digest, path)
        self.manifests = []  # (tag, digest)
        self.targets = []
        self.origin = None

    def record(self, figure, target, value):
        self.results.setdefault(figure, {}).setdefault(target, []).append(value)

    # ---- the origin and its content ----
    def seed(self):
        self.origin = RegistryTarget(self, "origin")
        self.origin.start(fresh=True)
        src = os.path.join(self.work, "src")
        os.makedirs(src)
        os.makedirs(os.path.join(self.www, "v2/bench/blobs"))
        os.makedirs(os.path.join(self.www, "v2/bench/manifests"))
        for name, size in SIZES:
            path = os.path.join(src, name)
            log(f"seeding a {name} blob")
            subprocess.run(f"head -c {size} /dev/urandom > {path}", shell=True, check=True)
            h = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(8 * MiB):
                    h.update(chunk)
            digest = "sha256:" + h.hexdigest()
            self.push_blob("bench", path, digest)
            os.link(path, os.path.join(self.www, "v2/bench/blobs", digest))
            self.blobs[name] = (digest, path)
        config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        cfg_path = os.path.join(src, "config")
        with open(cfg_path, "wb") as f:
            f.write(config)
        cfg_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self.push_blob("bench", cfg_path, cfg_digest)
        layer = self.blobs["1MiB"][0]
        log(f"seeding {self.args.manifests} manifests")
        conn = http.client.HTTPConnection("127.0.0.1", self.origin.port)
        for i in range(self.args.manifests):
            body = json.dumps({
                "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest,
                           "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": MiB}],
                "annotations": {"org.opencontainers.image.ref.name": f"m{i}"}}, separators=(",", ":")).encode()
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            conn.request("PUT", f"/v2/bench/manifests/m{i}", body=body, headers={"Content-Type": MANIFEST_TYPE})
            r = conn.getresponse()
            r.read()
            if r.status != 201:
                raise RuntimeError(f"origin refused manifest m{i}: {r.status}")
            for ref in (f"m{i}", digest):
                with open(os.path.join(self.www, "v2/bench/manifests", ref), "wb") as f:
                    f.write(body)
            self.manifests.append((f"m{i}", digest))
        conn.close()
        self.write_paths("tags", [f"/v2/bench/manifests/{t}" for t, _ in self.manifests])
        self.write_paths("digests", [f"/v2/bench/manifests/{d}" for _, d in self.manifests])
        self.write_paths("blobs", [f"/v2/bench/blobs/{d}" for d, _ in self.blobs.values()])

    def write_paths(self, name, paths):
        with open(os.path.join(self.work, name + ".paths"), "w") as f:
            f.write("\n".join(paths) + "\n")

    def push_blob(self, repo, path, digest, port=None, auth=None):
        """POST an upload, PUT the whole blob (monolithic), as docker-registry takes it."""
        conn = http.client.HTTPConnection("127.0.0.1", port or self.origin.port, blocksize=MiB)
        headers = {"Authorization": auth} if auth else {}
        conn.request("POST", f"/v2/{repo}/blobs/uploads/", headers=headers)
        r = conn.getresponse()
        r.read()
        loc = r.getheader("Location")
        loc = re.sub(r"^https?://[^/]+", "", loc)
        sep = "&" if "?" in loc else "?"
        with open(path, "rb") as f:
            conn.request("PUT", f"{loc}{sep}digest={digest}", body=f,
                         headers=dict(headers, **{"Content-Type": "application/octet-stream",
                                                  "Content-Length": str(os.path.getsize(path))}))
            r = conn.getresponse()
            r.read()
        conn.close()
        if r.status != 201:
            raise RuntimeError(f"push of {digest} answered {r.status}")

    def upstream_gets(self, digest):
        with open(self.origin.proc.log, errors="replace") as f:
            return sum(1 for line in f if f'"GET /v2/bench/blobs/{digest}' in line)

    # ---- figures ----
    def warm(self, t):
        """Every blob and manifest fetched once through `t`, so what follows is warm."""
        for _ in range(2):
            for digest, _ in self.blobs.values():
                curl_get(t.url(f"/v2/bench/blobs/{digest}"))
        for tag, digest in self.manifests:
            for ref in (tag, digest):
                curl_get(t.url(f"/v2/bench/manifests/{ref}"), extra=["-H", "Accept: " + ACCEPT])
                curl_get(t.url(f"/v2/bench/manifests/{ref}"), method="HEAD", extra=["-H", "Accept: " + ACCEPT])
        time.sleep(1)  # nginx renames its cache files into place; georeg publishes after the digest matched

    def cold(self, t, name):
        digest, _ = self.blobs[name]
        if t.caches:
            t.start(fresh=True)
        before = self.upstream_gets(digest)
        ttfb, total, size, code = curl_get(t.url(f"/v2/bench/blobs/{digest}"))
        if code != 200 or size != dict(SIZES)[name]:
            raise RuntimeError(f"{t.name} cold {name}: {code}, {size} bytes")
        time.sleep(0.5)
        self.record(f"cold {name}: time (s)", t.name, total)
        self.record(f"cold {name}: first byte (ms)", t.name, ttfb * 1000)
        if t.caches:
            self.record(f"cold {name}: upstream GETs", t.name, self.upstream_gets(digest) - before)

    def herd(self, t, clients=32, name="256MiB"):
        """`clients` connections from one process (bench/reqload -1), each
        asking once for the same uncached blob at the same moment: 32 curl
        processes would measure their own start-up on 2 cores instead."""
        digest, _ = self.blobs[name]
        t.start(fresh=True)
        before = self.upstream_gets(digest)
        self.write_paths("herd", [f"/v2/bench/blobs/{digest}"])
        r = subprocess.run([self.reqload, "-1", "-c", str(clients), "-t", "2", "-d", "120", "-m", "GET",
                            "-H", "Accept: */*", "-p", os.path.join(self.work, "herd.paths"), str(t.port)],
                           capture_output=True, text=True)
        m = re.search(r"^WRKJSON (.*)$", r.stdout, re.M)
        out = json.loads(m.group(1)) if m else None
        if not out or out["requests"] != clients or out["status_errors"] or out["socket_errors"] or \
                out["bytes"] < clients * dict(SIZES)[name]:
            raise RuntimeError(f"{t.name} herd: {r.stdout} {r.stderr}")
        time.sleep(0.5)
        self.record(f"herd {clients} x {name}: wall (s)", t.name, out["wall_us"] / 1e6)
        self.record(f"herd {clients} x {name}: slowest first byte (ms)", t.name, out["first_byte_max_us"] / 1000)
        self.record(f"herd {clients} x {name}: upstream GETs", t.name, self.upstream_gets(digest) - before)

    def single_stream(self, t):
        digest, _ = self.blobs["1GiB"]
        # Fetched once unmeasured just before: this VM trims its page cache
        # within seconds (docs/performance.md), and the figure is of memory.
        curl_get(t.url(f"/v2/bench/blobs/{digest}"))
        pids = t.pids()
        cpu0 = cpu_seconds(pids)
        _, total, size, code = curl_get(t.url(f"/v2/bench/blobs/{digest}"))
        cpu = cpu_seconds(pids) - cpu0
        if code != 200 or size != GiB:
            raise RuntimeError(f"{t.name} warm 1GiB: {code} {size}")
        self.record("warm 1GiB, 1 stream (GB/s)", t.name, size / total / 1e9)
        self.record("CPU s per warm GiB", t.name, cpu / (size / GiB))

    def parallel(self, t, conns):
        digest, _ = self.blobs["32MiB"]
        out = wrk(t.url(f"/v2/bench/blobs/{digest}"), conns, self.args.seconds)
        self.record(f"warm 32MiB, {conns} clients (GB/s)", t.name, out["bytes"] / out["duration_us"] * 1e6 / 1e9)

    def requests(self, t, what):
        paths = {"manifest GET by digest": "digests", "manifest GET by tag": "tags", "blob HEAD": "blobs"}[what]
        method = "HEAD" if what == "blob HEAD" else "GET"
        out = reqload(self, t.port, 64, self.args.seconds, os.path.join(self.work, paths + ".paths"), method, ACCEPT)
        self.record(f"{what}, 64 conns (req/s)", t.name, out["requests"] / out["duration_us"] * 1e6)
        self.record(f"{what}, 64 conns: p50 (ms)", t.name, out["p50_us"] / 1000)
        self.record(f"{what}, 64 conns: p99 (ms)", t.name, out["p99_us"] / 1000)

    def rss(self, t):
        """Peak RSS (VmHWM) at 64 clients per blob size, and the peak of its
        anonymous part (RssAnon, sampled every 20 ms): pages of a file mapped
        while written (georeg writing from data.mdb's map) count in RSS but
        are the page cache's, not the process's own memory."""
        for name, _ in SIZES:
            pids = t.pids()
            reset_hwm(pids)
            anon = 0
            load = subprocess.Popen(["wrk", "-t", "2", "-c", "64", "-d", "3s", "--timeout", "30s",
                                     t.url(f"/v2/bench/blobs/{self.blobs[name][0]}")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while load.poll() is None:
                anon = max(anon, sum(status_kb(p, "RssAnon") for p in pids))
                time.sleep(0.02)
            if load.returncode != 0:
                raise RuntimeError(f"wrk against {t.name} for RSS: exit {load.returncode}")
            hwm = sum(status_kb(p, "VmHWM") for p in pids)
            self.record(f"peak RSS at 64 clients, {name} blob (MB)", t.name, hwm * 1024 / 1e6)
            self.record(f"peak anonymous RSS at 64 clients, {name} blob (MB)", t.name, anon * 1024 / 1e6)

    def push(self):
        """A 1 GiB layer (config, layer, manifest) by curl: POST, PATCH the whole layer, PUT ?digest=."""
        gdir = os.path.join(self.work, "georeg-push")
        os.makedirs(gdir)
        htpasswd = os.path.join(gdir, "htpasswd")
        with open(htpasswd, "w") as f:
            subprocess.run([self.georeg, "registry", "htpasswd", "bench", "--cost", "4"], input="bench\n", text=True,
                           stdout=f, check=True)
        g = GeoregTarget(self, "georeg-push")
        g.launch = lambda: Proc("georeg-push", [self.georeg, "serve", "--config", os.path.join(g.dir, "g.toml")],
                                os.path.join(g.dir, "georeg.log"))
        g.port = free_port()
        os.makedirs(g.dir, exist_ok=True)
        with open(os.path.join(g.dir, "g.toml"), "w") as f:
            f.write(f"""[server]
listen = "127.0.0.1:{g.port}"
[cache]
dir = "{g.dir}/cache"
max_size = "1GiB"
[registry]
name = "bench.local"
push_htpasswd = "{htpasswd}"
max_size = "{(self.rounds + 2) * 1024 + 1024}MiB"
copies = 1
""")
        g.start(fresh=False)
        layer = os.path.join(self.work, "push-layer")
        shutil.copyfile(self.blobs["1GiB"][1], layer)
        try:
            for r in range(self.rounds):
                for name, port, auth in (("georeg", g.port, ["-u", "bench:bench"]), ("docker-registry", self.origin.port, [])):
                    with open(layer, "r+b") as f:  # a distinct layer each time: its first 8 bytes
                        f.write(os.urandom(8))
                    self.record("push 1GiB layer (s)", name, self.push_once(port, f"push/r{r}", layer, auth))
        finally:
            g.stop()
            os.unlink(layer)

    def push_once(self, port, repo, layer, auth):
        base = f"http://127.0.0.1:{port}"
        config = os.path.join(self.work, "push-config")
        with open(config, "wb") as f:
            f.write(b"{}")

        def sha(path):
            h = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(8 * MiB):
                    h.update(chunk)
            return "sha256:" + h.hexdigest()

        def location(out):
            m = re.search(r"^location: (\S+)", out, re.M | re.I)
            loc = m.group(1)
            return base + loc if loc.startswith("/") else loc

        blobs = [(config, sha(config)), (layer, sha(layer))]
        start = time.time()
        for path, digest in blobs:
            out = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", "-X", "POST", *auth,
                                  f"{base}/v2/{repo}/blobs/uploads/"], capture_output=True, text=True).stdout
            out = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", "-X", "PATCH", *auth, "-H",
                                  "Content-Type: application/octet-stream", "-T", path, location(out)],
                                 capture_output=True, text=True).stdout
            loc = location(out)
            code = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", *auth,
                                   loc + ("&" if "?" in loc else "?") + "digest=" + digest],
                                  capture_output=True, text=True).stdout
            if code != "201":
                raise RuntimeError(f"blob PUT to {base} answered {code}")
        manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": blobs[0][1], "size": 2},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                           "digest": blobs[1][1], "size": os.path.getsize(layer)}]})
        code = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", *auth, "-H",
                               "Content-Type: " + MANIFEST_TYPE, "--data-binary", manifest,
                               f"{base}/v2/{repo}/manifests/1"], capture_output=True, text=True).stdout
        if code != "201":
            raise RuntimeError(f"manifest PUT to {base} answered {code}")
        return time.time() - start

    def peer_fill(self, name="256MiB"):
        """Node b fills from node a, a region-mate, against a's fill from the origin."""
        key = os.path.join(self.work, "cluster.key")
        with open(key, "w") as f:
            f.write(os.urandom(32).hex())
        a = GeoregTarget(self, "peer-a")
        b = GeoregTarget(self, "peer-b")
        a.port, b.port = free_port(), free_port()
        # One region: region-mates hold each other's digest summaries, so b
        # knows a has the blob (across regions a miss would go to the
        # digest's fleet owner, which may be b itself).
        for n, region in ((a, "bench"), (b, "bench")):
            n.extra = f"""[node]
name = "{n.name}"
region = "{region}"
[cluster]
key_file = "{key}"
advertise = "http://127.0.0.1:{n.port}"
seeds = ["http://127.0.0.1:{a.port}"]
probe_interval = "500ms"
probe_timeout = "200ms"
"""
        digest = self.blobs[name][0]
        try:
            for _ in range(self.rounds):
                # Both down first: last round's b, still up, would introduce
                # itself to the new a under its old key, and a pins a name to
                # the first key it sees (docs/gossip.md), refusing the new b.
                a.stop()
                b.stop()
                # a fills alone: with b up, a's miss could go to b when b
                # is the digest's fleet owner (docs/gossip.md).
                a.start(fresh=True)
                _, up, size, code = curl_get(a.url(f"/v2/bench/blobs/{digest}"))
                b.start(fresh=True)
                self.wait_member(b, a.name)
                self.wait_member(a, b.name)
                self.wait_summary(b, a, digest)
                _, peer, size2, code2 = curl_get(b.url(f"/v2/bench/blobs/{digest}"))
                if (code, code2, size, size2) != (200, 200, dict(SIZES)[name], dict(SIZES)[name]):
                    raise RuntimeError("peer fill: bad response")
                with open(b.proc.log, errors="replace") as f:
                    if f"GET blob {digest} from peer {a.name}" not in f.read():
                        raise RuntimeError("peer fill: b did not fill from a")
                self.record(f"fill {name} (GB/s)", "georeg from upstream", size / up / 1e9)
                self.record(f"fill {name} (GB/s)", "georeg from peer", size / peer / 1e9)
        finally:
            a.stop()
            b.stop()

    def peers_json(self, node):
        r = subprocess.run([self.georeg, "peers", "ls", "-o", "json", "--cache-dir", f"{node.dir}/cache"],
                           capture_output=True, text=True)
        return json.loads(r.stdout) if r.returncode == 0 else {"members": []}

    def wait_member(self, node, member):
        for _ in range(100):
            if any(m.get("name") == member and m.get("state") == "alive" for m in self.peers_json(node)["members"]):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{member} did not join {node.name}")

    def wait_summary(self, viewer, member, digest):
        """Until `viewer` holds the summary `member` published after caching `digest`."""
        for _ in range(100):
            r = subprocess.run([self.georeg, "cache", "ls", "-o", "json", "--cache-dir", f"{member.dir}/cache"],
                               capture_output=True, text=True)
            if r.returncode == 0 and any(e.get("digest") == digest for e in json.loads(r.stdout)):
                break
            time.sleep(0.1)
        own = [m for m in self.peers_json(member)["members"] if m.get("name") == member.name]
        time.sleep(1.2)
        want = [m for m in self.peers_json(member)["members"] if m.get("name") == member.name][0]["summary_version"]
        for _ in range(100):
            got = [m for m in self.peers_json(viewer)["members"] if m.get("name") == member.name]
            if got and got[0].get("summary_version", 0) >= want:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{viewer.name} did not get {member.name}'s summary ({own})")

    # ---- the run ----
    def run(self):
        log(f"work directory {self.work}")
        self.seed()
        caches = [GeoregTarget(self, "georeg"), ProxyCacheTarget(self, "proxy_cache"),
                  RegistryTarget(self, "registry-proxy", proxy_of=self.origin)]
        ceilings = [StaticTarget(self, "static-sendfile", True), StaticTarget(self, "static-copy", False)]
        self.targets = caches + ceilings
        parts = set(self.args.only.split(","))
        try:
            for r in range(self.rounds if "cold" in parts else 0):
                log(f"round {r + 1}/{self.rounds}: cold fetches and herds")
                for name, _ in SIZES:
                    self.cold(self.origin, name)  # the ceiling: the origin itself, from its page cache
                    for t in caches:
                        self.cold(t, name)
                for t in caches:
                    self.herd(t)
            for t in self.targets if "warm" in parts else []:
                t.start(fresh=True)
                log(f"warming {t.name}")
                self.warm(t)
            for r in range(self.rounds if "warm" in parts else 0):
                log(f"round {r + 1}/{self.rounds}: warm figures")
                for t in self.targets:
                    self.single_stream(t)
                for conns in (16, 64):
                    for t in self.targets:
                        self.parallel(t, conns)
                for what in ("manifest GET by digest", "manifest GET by tag", "blob HEAD"):
                    for t in self.targets:
                        self.requests(t, what)
            if "warm" in parts:
                log("peak RSS at 64 clients")
                for t in self.targets:
                    self.rss(t)
            for t in self.targets:
                t.stop()
            if "push" in parts:
                log("push")
                self.push()
            if "peer" in parts:
                log("peer fill")
                self.peer_fill()
        except Exception as e:  # the figures so far are still worth a report
            failed = e
            log(f"the run stopped: {e!r}")
        else:
            failed = None
        finally:
            for t in self.targets + [self.origin]:
                if t:
                    t.stop()
        report = self.report()
        if failed:
            report = f"**Incomplete: the run stopped at {failed!r}**\n\n" + report
        print(report)
        if self.args.out:
            with open(self.args.out, "w") as f:
                f.write(report)
        if self.args.chart:
            self.chart(self.args.chart)
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        if failed:
            sys.exit(1)

    # ---- the report ----
    LOWER_IS_BETTER = ("(s)", "(ms)", "CPU", "RSS", "upstream GETs")

    def report(self):
        order = ["georeg", "proxy_cache", "registry-proxy", "static-sendfile", "static-copy", "origin"]
        lines = ["| figure | " + " | ".join(order) + " | georeg / best ceiling | georeg / proxy_cache |",
                 "|---|" + "---|" * (len(order) + 2)]
        for fig, per in self.results.items():
            if fig.startswith("push") or fig.startswith("fill"):
                continue
            cells = [cell(per.get(t)) for t in order]
            lines.append(f"| {fig} | " + " | ".join(cells) + f" | {self.ratio(fig, per, ceiling=True)} | "
                         f"{self.ratio(fig, per, ceiling=False)} |")
        push = self.results.get("push 1GiB layer (s)", {})
        fill = next((v for k, v in self.results.items() if k.startswith("fill")), {})
        extra = ["", "| figure | georeg | reference | ratio |", "|---|---|---|---|"]
        if push:
            extra.append(f"| push 1GiB layer (s) | {cell(push.get('georeg'))} | docker-registry {cell(push.get('docker-registry'))} | "
                         f"{med(push['georeg']) / med(push['docker-registry']):.2f} |")
        if fill:
            extra.append(f"| fill 256MiB (GB/s) | from a peer {cell(fill.get('georeg from peer'))} | from the upstream "
                         f"{cell(fill.get('georeg from upstream'))} | {med(fill['georeg from peer']) / med(fill['georeg from upstream']):.2f} |")
        head = [f"{self.rounds} rounds, medians (min-max); wrk runs {self.args.seconds} s; "
                f"{os.cpu_count()} cores; {self.version()}", ""]
        return "\n".join(head + lines + extra + [""] + self.targets_table()) + "\n"

    def ratio(self, fig, per, ceiling):
        g = per.get("georeg")
        if not g:
            return ""
        if ceiling:
            refs = [t.name for t in self.targets + [self.origin] if t.ceiling and t.name in per]
        else:
            refs = ["proxy_cache"] if "proxy_cache" in per else []
        if not refs:
            return ""
        lower = any(k in fig for k in self.LOWER_IS_BETTER)
        best = (min if lower else max)(med(per[r]) for r in refs)
        return f"{med(g) / best:.2f}" if best else ""

    def targets_table(self):
        """The issue's targets, each as measured."""
        R = self.results

        def m(fig, t):
            return med(R[fig][t]) if fig in R and t in R[fig] else float("nan")

        def best_static(fig):
            return max(m(fig, "static-sendfile"), m(fig, "static-copy"))

        rows = []

        def add(what, value, want, ok):
            rows.append(f"| {what} | {value} | {want} | {'yes' if ok else '**no**'} |")

        for fig in ("warm 1GiB, 1 stream (GB/s)", "warm 32MiB, 16 clients (GB/s)", "warm 32MiB, 64 clients (GB/s)"):
            r1, r2 = m(fig, "georeg") / best_static(fig), m(fig, "georeg") / m(fig, "proxy_cache")
            add(fig.split(" (")[0] + ": vs best static, vs proxy_cache", f"{r1:.2f}, {r2:.2f}", "≥ 1.0, ≥ 1.0",
                r1 >= 1 and r2 >= 1)
        c = "CPU s per warm GiB"
        add(c, f"{m(c, 'georeg'):.3f} vs {m(c, 'proxy_cache'):.3f}", "≤ proxy_cache", m(c, "georeg") <= m(c, "proxy_cache"))
        for what in ("manifest GET by digest", "manifest GET by tag", "blob HEAD"):
            fig = f"{what}, 64 conns (req/s)"
            r = m(fig, "georeg") / best_static(fig)
            p99 = f"{what}, 64 conns: p99 (ms)"
            sp = min(m(p99, "static-sendfile"), m(p99, "static-copy"))
            if what == "blob HEAD":
                add(f"{what}: rate vs best static", f"{r:.2f}", "≥ 1.0", r >= 1)
            else:
                add(f"{what}: rate vs best static; p99", f"{r:.2f}; {m(p99, 'georeg'):.2f} vs {sp:.2f} ms",
                    "≥ 1.0; ≤ static", r >= 1 and m(p99, "georeg") <= sp)
        cold = "cold 1GiB: time (s)"
        r = m(cold, "georeg") / m(cold, "proxy_cache")
        gets = max(R.get("cold 1GiB: upstream GETs", {}).get("georeg", [0]))
        add("cold 1GiB: time vs proxy_cache; upstream GETs", f"{r:.2f}; {gets}", "≤ 1.0 (aim 0.8); 1",
            r <= 1 and gets == 1)
        hw, hf, hg = ("herd 32 x 256MiB: wall (s)", "herd 32 x 256MiB: slowest first byte (ms)",
                      "herd 32 x 256MiB: upstream GETs")
        r = m(hw, "georeg") / m(hw, "proxy_cache")
        gets = max(R.get(hg, {}).get("georeg", [0]))
        first = max(R.get(hf, {}).get("georeg", [float("nan")]))
        add("herd: upstream GETs; wall vs proxy_cache; slowest first byte", f"{gets}; {r:.2f}; {first:.0f} ms",
            "1; ≤ 0.85; ≤ 50 ms", gets == 1 and r <= 0.85 and first <= 50)
        p = "push 1GiB layer (s)"
        r = m(p, "georeg") / m(p, "docker-registry")
        add("push 1GiB: vs docker-registry", f"{r:.2f}", "≤ 1.0", r <= 1)
        f = "fill 256MiB (GB/s)"
        r = m(f, "georeg from peer") / m(f, "georeg from upstream")
        add("peer fill vs upstream fill", f"{r:.2f}", "≥ 0.9", r >= 0.9)
        for what in ("peak RSS", "peak anonymous RSS"):
            rss = [med(per["georeg"]) for k, per in R.items() if k.startswith(what + " ") and "georeg" in per] \
                or [float("nan")]
            add(f"georeg {what} at 64 clients (max; max/min over blob sizes)",
                f"{max(rss):.0f} MB; {max(rss) / min(rss):.2f}", "≤ 100 MB; flat (< 1.5)",
                max(rss) <= 100 and max(rss) / min(rss) < 1.5)
        return ["| target | measured | wanted | met |", "|---|---|---|---|"] + rows

    def version(self):
        r = subprocess.run([self.georeg, "version"], capture_output=True, text=True)
        rev = subprocess.run(["git", "-C", HERE, "describe", "--always", "--dirty"], capture_output=True, text=True)
        return " ".join(x for x in (r.stdout.strip(), rev.stdout.strip()) if x) or "?"

    def chart(self, path):
        """Each figure as a ratio to the best ceiling (higher is better), per target."""
        figs = ["warm 1GiB, 1 stream (GB/s)", "warm 32MiB, 16 clients (GB/s)", "warm 32MiB, 64 clients (GB/s)",
                "manifest GET by digest, 64 conns (req/s)", "manifest GET by tag, 64 conns (req/s)",
                "blob HEAD, 64 conns (req/s)"]
        names = ["georeg", "proxy_cache", "registry-proxy", "static-sendfile", "static-copy"]
        data = os.path.join(self.work, "chart.dat")
        with open(data, "w") as f:
            f.write("figure " + " ".join(names) + "\n")
            for fig in figs:
                per = self.results.get(fig, {})
                best = max(med(per[t]) for t in ("static-sendfile", "static-copy") if t in per)
                label = fig.split(" (")[0].replace(" ", "_").replace(",", "")
                f.write(label + " " + " ".join(f"{med(per[n]) / best:.3f}" if n in per else "0" for n in names) + "\n")
        script = f"""set terminal svg size 1000,480 dynamic font 'sans,11' background '#ffffff'
set output '{path}'
set termoption noenhanced
set title 'Warm serving, ratio to the faster static nginx ceiling ({self.rounds} rounds, medians)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set yrange [0:*]
set grid ytics
set key top right
set xtics rotate by -20 noenhanced
set ylabel 'ratio to best ceiling'
plot '{data}' using 2:xtic(1) title columnheader(2), '' using 3 title columnheader(3), '' using 4 title columnheader(4), \\
     '' using 5 title columnheader(5), '' using 6 title columnheader(6), 1 with lines dt 2 lc 'black' notitle
"""
        subprocess.run(["gnuplot"], input=script, text=True, check=True)


def med(values):
    return statistics.median(values)


def fmt(v):
    if v >= 1000:
        return f"{v / 1000:.1f}k"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(values):
    if not values:
        return "—"
    if min(values) == max(values):
        return fmt(med(values))
    return f"{fmt(med(values))} ({fmt(min(values))}–{fmt(max(values))})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--georeg", default=os.path.join(HERE, "..", "build-release", "src", "georeg"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5, help="each wrk run")
    ap.add_argument("--manifests", type=int, default=300)
    ap.add_argument("--out", help="write the Markdown report here too")
    ap.add_argument("--chart", help="write an SVG chart here (gnuplot)")
    ap.add_argument("--workdir", default="/tmp")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, caches)")
    ap.add_argument("--only", default="cold,warm,push,peer",
                    help="the parts to run, comma-separated: cold (and herds), warm (and RSS), push, peer")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("suite.py: run as root (nginx runs as root here), through bench/run.sh")
    Suite(args).run()


if __name__ == "__main__":
    main()
