#!/usr/bin/env python3
"""A service manager's notify socket, owned by a test: binds PATH (AF_UNIX,
datagram, as $NOTIFY_SOCKET names it) and writes each message it receives as
one line on stdout, its assignments joined by ' | ', flushed at once."""
import os
import socket
import sys

path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
print("listening", flush=True)
while True:
    data = s.recv(65536)
    print(" | ".join(data.decode("utf-8", "replace").strip("\n").split("\n")), flush=True)
