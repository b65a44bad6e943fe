#!/usr/bin/env python3
"""raw_http.py PORT SCENARIO: raw-socket HTTP checks against georeg. Prints
"ok - NAME" or "not ok - NAME: detail" lines; exit status 0 even on failures
(the calling script counts the lines)."""
import socket
import sys
import time

PORT = int(sys.argv[1])
SCENARIO = sys.argv[2]


def connect():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    return s


def read_all(s, timeout=5.0):
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data, True  # closed by the server
            data += chunk
    except socket.timeout:
        return data, False


def responses(data):
    """Splits a byte stream of HTTP/1.1 responses (with Content-Length) into (status, headers, body)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


def report(name, cond, detail=""):
    print(("ok - " if cond else "not ok - ") + name + ("" if cond else ": " + detail))


def status_of(raw, name, expect, closes=True):
    s = connect()
    s.sendall(raw)
    data, closed = read_all(s, 5)
    rs = responses(data)
    got = rs[0][0] if rs else None
    report(f"{name}: {expect}", got == expect, f"got {got!r} from {data[:120]!r}")
    if closes:
        report(f"{name}: connection closed after the error", closed, "still open")
    s.close()


if SCENARIO == "limits":
    status_of(b"GET /v2/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", "long request line", 414)
    status_of(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", "huge header", 431)
    many = b"".join(b"X-H%d: y\r\n" % i for i in range(150))
    status_of(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n", "too many headers", 431)
    status_of(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", "obs-fold", 400)
    status_of(b"GET /v2/ HTTP/1.1\nHost: x\n\n", "bare LF", 400)
    status_of(b"GARBAGE\r\n\r\n", "garbage", 400)
    status_of(b"GET /v2/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "duplicate Content-Length", 400)
elif SCENARIO == "pipeline":
    s = connect()
    reqs = b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p for p in
                    (b"/v2/", b"/v2/Bad/manifests/x", b"/healthz", b"/v2/a/blobs/sha256:12"))
    s.sendall(reqs)
    data, closed = read_all(s, 2)
    rs = responses(data)
    report("pipelining: four responses", len(rs) == 4, f"got {len(rs)}")
    report("pipelining: in request order", [r[0] for r in rs] == [200, 400, 200, 400], str([r[0] for r in rs]))
    report("pipelining: connection kept alive", not closed, "closed")
    # keep-alive: the same connection serves another request later
    s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
    data, _ = read_all(s, 1)
    report("keep-alive: a later request on the same connection", responses(data)[:1] and responses(data)[0][0] == 200, repr(data[:80]))
    s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data, closed = read_all(s, 3)
    rs = responses(data)
    report("Connection: close is answered", len(rs) == 1 and rs[0][0] == 200, repr(data[:80]))
    report("Connection: close closes", closed, "still open")
    report("Connection: close is echoed", rs and rs[0][1].get("connection") == "close", str(rs and rs[0][1]))
elif SCENARIO == "header-timeout":
    s = connect()
    s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")  # never finished
    t0 = time.time()
    data, closed = read_all(s, 10)
    rs = responses(data)
    report("slow request head gets 408", rs and rs[0][0] == 408, repr(data[:80]))
    report("and the connection closes", closed, "still open")
    report("within the configured timeout", time.time() - t0 < 5, f"{time.time() - t0:.1f}s")
elif SCENARIO == "idle-timeout":
    s = connect()
    s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
    t0 = time.time()
    data, closed = read_all(s, 10)
    report("idle keep-alive connection is closed", closed, "still open")
    report("after the idle timeout", 1 < time.time() - t0 < 6, f"{time.time() - t0:.1f}s")
else:
    sys.exit("unknown scenario")
