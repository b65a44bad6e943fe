#!/usr/bin/env python3
"""attack.py PORT SCENARIO [ARGS]: hostile clients against georeg, for
tests/integration/hostile_clients.sh. Prints "ok - NAME" / "not ok - NAME:
detail" lines (the caller counts them) and, for scenarios that hold
connections open, prints "holding" and waits for the file $RELEASE before
letting go, so the caller can measure the daemon's memory meanwhile.

Scenarios:
  smuggling            classic request-smuggling and malformed heads: each
                       gets 400/405/411 and the connection closed
  signed-bodies N      N connections announce 16 MiB bodies with a signature
                       header and send 1 MiB each, then hold
  pipeline PATH N      N pipelined GETs of PATH on one connection, never read
  close-body PATH SECONDS  GET PATH with Connection: close, never read, then
                       as many bytes as the server takes, for SECONDS
  slow-reader PATH N RATE  N pipelined GETs of PATH read at RATE bytes/s;
                       prints the bytes received
  slowloris N SECONDS  N connections trickling a request head while one
                       normal client measures GET /v2/ latency (p99 printed)
  abandon PATH N       N connections ask for PATH and hang up at once
  idle N               N connections that send nothing, then hold (to use up
                       the daemon's file descriptors)
"""
import resource
import socket
import statistics
import sys
import threading
import time

PORT = int(sys.argv[1])
SCENARIO = sys.argv[2]
ARGS = sys.argv[3:]


def report(ok, name, detail=""):
    print(("ok - " if ok else "not ok - ") + name + ("" if ok else ": " + detail), flush=True)


def connect(timeout=10):
    return socket.create_connection(("127.0.0.1", PORT), timeout=timeout)


def read_until_close(s, timeout=5.0):
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data, True
            data += chunk
    except (socket.timeout, ConnectionResetError):
        return data, False


def pour(s, limit, seconds):
    """Sends filler on non-blocking socket `s` for up to `seconds` or `limit`
    bytes, as fast as the peer takes it; returns the bytes it took."""
    s.setblocking(False)
    sent = 0
    chunk = b"x" * 65536
    end = time.time() + seconds
    while sent < limit and time.time() < end:
        try:
            sent += s.send(chunk)
        except BlockingIOError:
            time.sleep(0.005)
        except OSError:
            break
    return sent


def hold():
    """Keeps the attack's connections open until the file $RELEASE exists."""
    import os
    print("holding", flush=True)
    release = os.environ.get("RELEASE", "")
    end = time.time() + 60
    while release and not os.path.exists(release) and time.time() < end:
        time.sleep(0.05)


def smuggling():
    cases = {
        "TE with CL": b"POST /v2/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
        "two CLs": b"GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n",
        "bare LF": b"GET /v2/ HTTP/1.1\nHost: x\n\n",
        "obs-fold": b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
        "NUL in a header": b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
        "chunk-size overflow": b"POST /v2/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n",
        "CONNECT": b"CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: 169.254.169.254:80\r\n\r\n",
        "HTTP/0.9": b"GET /v2/\r\n\r\n",
        "TE: identity, chunked": b"POST /v2/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n",
        "space before colon": b"GET /v2/ HTTP/1.1\r\nHost : x\r\n\r\n",
    }
    for name, raw in cases.items():
        s = connect()
        s.sendall(raw)
        data, closed = read_until_close(s)
        s.close()
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
        report(status in (400, 405, 411) and closed, f"{name}: {status or 'no answer'} and closed",
               f"status {status}, closed {closed}, {data[:80]!r}")


def signed_bodies(n):
    socks = []
    head = (b"POST /_georeg/v1/msg HTTP/1.1\r\nHost: x\r\nX-Georeg-Signature: 00\r\nX-Georeg-Node: evil\r\n"
            b"Content-Length: 16777216\r\n\r\n")
    for _ in range(n):
        s = connect()
        s.sendall(head)
        pour(s, 1 << 20, 0.5)
        socks.append(s)
    report(True, f"{n} connections announced 16 MiB signed bodies")
    hold()
    for s in socks:
        s.close()


def pipeline(path, n):
    s = connect()
    req = f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n".encode()
    s.sendall(req * n)
    report(True, f"{n} pipelined GETs of {path} sent, none read")
    hold()
    s.close()


def close_body(path, seconds):
    # The response is big and never read, so it stays queued: the old server
    # buffered everything sent after the request meanwhile.
    s = connect()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nConnection: close\r\n\r\n".encode())
    sent = pour(s, 1 << 40, seconds)
    report(sent < (16 << 20), f"the server took only {sent >> 20} MiB of a 256 MiB body it never reads",
           f"{sent} bytes taken")
    hold()
    s.close()


def slow_reader(path, n, rate):
    s = connect(timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n".encode() * n)
    got = 0
    start = time.time()
    s.settimeout(10)
    try:
        while True:
            chunk = s.recv(16384)
            if not chunk:
                break
            got += len(chunk)
            # Steady, slow: never faster than `rate`.
            ahead = got / rate - (time.time() - start)
            if ahead > 0:
                time.sleep(ahead)
    except (socket.timeout, ConnectionResetError):
        pass
    print(got, flush=True)


def idle(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks = [connect() for _ in range(n)]  # the kernel completes them; the daemon may not accept them all
    report(len(socks) == n, "%d idle connections opened" % n)
    hold()
    for s in socks:
        s.close()


def slowloris(n, seconds):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks = []
    for i in range(n):
        try:
            s = connect()
            s.setblocking(False)
            s.send(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError as e:
            report(False, "slowloris connections", f"connection {i}: {e}")
            break
    stop = time.time() + seconds
    lat = []

    def trickle():
        while time.time() < stop:
            for s in socks:
                try:
                    s.send(b"X: y\r\n")
                except OSError:
                    pass
            time.sleep(0.5)

    t = threading.Thread(target=trickle)
    t.start()
    while time.time() < stop:
        t0 = time.time()
        c = connect()
        c.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data, _ = read_until_close(c)
        c.close()
        lat.append((time.time() - t0) * 1000)
        if not data.startswith(b"HTTP/1.1 200"):
            report(False, "a normal client is served during the slowloris", repr(data[:60]))
            break
        time.sleep(0.01)
    t.join()
    lat.sort()
    p99 = lat[int(len(lat) * 0.99) - 1] if lat else 1e9
    print(f"p99_ms {p99:.1f} median_ms {statistics.median(lat):.1f} requests {len(lat)} held {len(socks)}", flush=True)
    for s in socks:
        s.close()


def abandon(path, n):
    for _ in range(n):
        s = connect()
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n".encode())
        s.close()
    report(True, f"{n} clients asked for {path} and left")


if SCENARIO == "smuggling":
    smuggling()
elif SCENARIO == "signed-bodies":
    signed_bodies(int(ARGS[0]))
elif SCENARIO == "pipeline":
    pipeline(ARGS[0], int(ARGS[1]))
elif SCENARIO == "close-body":
    close_body(ARGS[0], float(ARGS[1]))
elif SCENARIO == "slow-reader":
    slow_reader(ARGS[0], int(ARGS[1]), float(ARGS[2]))
elif SCENARIO == "slowloris":
    slowloris(int(ARGS[0]), float(ARGS[1]))
elif SCENARIO == "abandon":
    abandon(ARGS[0], int(ARGS[1]))
elif SCENARIO == "idle":
    idle(int(ARGS[0]))
else:
    sys.exit("unknown scenario " + SCENARIO)
