#!/usr/bin/env python3
"""Adds latency between test regions without netem (this kernel has none).

Runs in the hub namespace of tests/integration/lib/netns.sh, where every
bridged IPv4 packet is sent to NFQUEUE by iptables. It holds each packet for
the one-way delay of its (source region, destination region) pair, the
region being the third octet of the address, then lets it pass. If this
process dies, bridged traffic stops (fail closed): a test cannot silently
run without its delays.

  netdelay.py --config delays.json [--queue N]

delays.json: {"oneway_ms": {"1-2": 20, "2-1": 20, ...}}; pairs not listed: 0.
Standard library only: the netfilter queue protocol is spoken over a raw
netlink socket.
"""
import argparse
import heapq
import json
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
MSG_PACKET, MSG_VERDICT, MSG_CONFIG = 0, 1, 2
CFG_CMD, CFG_PARAMS, CFG_QUEUE_MAXLEN, CFG_MASK, CFG_FLAGS = 1, 2, 3, 4, 5
CMD_BIND = 1
COPY_PACKET = 2
F_GSO = 1 << 2
ATTR_PACKET_HDR, ATTR_VERDICT_HDR, ATTR_PAYLOAD = 1, 2, 10
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2


def attr(kind, payload):
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + bytes((4 - size % 4) % 4)


def message(kind, queue, attrs, flags=NLM_F_REQUEST):
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, 0, 0) + body


def verdict(queue, packet_id):
    return message(MSG_VERDICT, queue, [attr(ATTR_VERDICT_HDR, struct.pack(">II", NF_ACCEPT, packet_id))])


class Delayer:
    def __init__(self, config, queue):
        with open(config) as f:
            pairs = json.load(f).get("oneway_ms", {})
        self.delay = {tuple(int(x) for x in k.split("-")): float(v) / 1000 for k, v in pairs.items()}
        self.queue = queue
        self.stopping = False
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        self.sock.bind((0, 0))
        self.configure(attr(CFG_CMD, struct.pack("=BBH", CMD_BIND, 0, socket.htons(socket.AF_INET))))
        # Only the IPv4 header is copied to us: the addresses are all we read.
        self.configure(attr(CFG_PARAMS, struct.pack(">IB", 20, COPY_PACKET)))
        self.configure(attr(CFG_QUEUE_MAXLEN, struct.pack(">I", 100000)))
        self.configure(attr(CFG_MASK, struct.pack(">I", F_GSO)), attr(CFG_FLAGS, struct.pack(">I", F_GSO)))

    def configure(self, *attrs):
        self.sock.send(message(MSG_CONFIG, self.queue, attrs, NLM_F_REQUEST | NLM_F_ACK))
        reply = self.sock.recv(65536)
        kind = struct.unpack_from("=H", reply, 4)[0]
        if kind == NLMSG_ERROR and struct.unpack_from("=i", reply, 16)[0] != 0:
            raise OSError("NFQUEUE %d: configuration refused" % self.queue)

    def packets(self, data):
        """Yields (packet id, source region, destination region) from one recv."""
        off = 0
        while off + 20 <= len(data):
            size, kind = struct.unpack_from("=IH", data, off)
            if size < 16:
                return
            if kind == (NFNL_SUBSYS_QUEUE << 8) | MSG_PACKET:
                packet_id, src, dst = None, 0, 0
                a = off + 20  # after nlmsghdr (16) and nfgenmsg (4)
                while a + 4 <= off + size:
                    alen, akind = struct.unpack_from("=HH", data, a)
                    if alen < 4:
                        break
                    akind &= 0x7FFF
                    if akind == ATTR_PACKET_HDR:
                        packet_id = struct.unpack_from(">I", data, a + 4)[0]
                    elif akind == ATTR_PAYLOAD and alen >= 4 + 20 and data[a + 4] >> 4 == 4:
                        src, dst = data[a + 4 + 14], data[a + 4 + 18]
                    a += (alen + 3) & ~3
                if packet_id is not None:
                    yield packet_id, src, dst
            off += (size + 3) & ~3

    def run(self):
        held, order = [], 0
        while not self.stopping:
            timeout = max(0.0, held[0][0] - time.monotonic()) if held else 0.5
            try:
                readable, _, _ = select.select([self.sock], [], [], timeout)
            except InterruptedError:
                readable = []
            out = []
            if readable:
                while True:
                    try:
                        data = self.sock.recv(1 << 20, socket.MSG_DONTWAIT)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as e:  # ENOBUFS: the kernel dropped some; TCP resends
                        log("recv: %s" % e)
                        break
                    now = time.monotonic()
                    for packet_id, src, dst in self.packets(data):
                        wait = self.delay.get((src, dst), 0.0)
                        if wait <= 0:
                            out.append(verdict(self.queue, packet_id))
                        else:
                            order += 1
                            heapq.heappush(held, (now + wait, order, packet_id))
            now = time.monotonic()
            while held and held[0][0] <= now:
                out.append(verdict(self.queue, heapq.heappop(held)[2]))
            self.send(out)
        self.send([verdict(self.queue, p) for _, _, p in held])

    def send(self, out):
        for i in range(0, len(out), 200):
            try:
                self.sock.send(b"".join(out[i:i + 200]))
            except OSError as e:
                log("verdict: %s" % e)


def log(msg):
    sys.stderr.write("%s netdelay: %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--queue", type=int, default=0)
    args = ap.parse_args()
    d = Delayer(args.config, args.queue)

    def stop(*_):
        d.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("holding packets on NFQUEUE %d" % args.queue)
    d.run()


if __name__ == "__main__":
    main()
