#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The UDP side of forward.sh.

  forward.py serve NAME ADDR PORT LOG  a UDP server on ADDR:PORT that answers
                                       each datagram with NAME ":" and the
                                       datagram, and logs one JSON line per
                                       datagram ({node, peer, data}) to LOG.
  forward.py flows HOST PORT N K [BASE]
                                       N flows (a socket each, source ports
                                       from BASE, or the kernel's), K datagrams
                                       each, one at a time: each must be
                                       answered (3 tries of 1 s) by the address
                                       it was sent to; prints
                                       {"flows": {port: [node, ...]}, "lost": n}.
  forward.py capture IFACE PORT FILE   the UDP payload of the first datagram to
                                       PORT seen on IFACE (AF_PACKET), to FILE.
  forward.py send SRC HOST PORT FILE   sends FILE's bytes as one datagram from
                                       SRC (an address of this namespace).
"""

import json
import os
import select
import socket
import struct
import sys
import time


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def serve(name, addr, port, log):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.bind((addr, int(port)))
    with open(log, "a", buffering=1) as out:
        # Ready: the log exists.
        while True:
            data, peer = s.recvfrom(65535)
            out.write(json.dumps({"node": name, "peer": peer[0], "port": peer[1],
                                  "data": data.decode(errors="replace")}) + "\n")
            try:
                s.sendto(name.encode() + b":" + data, peer)
            except OSError:
                # No route back (a link taken down by the test): the
                # client asks again.
                pass


def flows(host, port, n, k, base=None):
    port, n, k = int(port), int(n), int(k)
    fam = family(host)
    socks = []
    for i in range(n):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        if base is not None:
            s.bind(("", int(base) + i))
        socks.append(s)
    out, lost = {}, 0
    for j in range(k):
        for i, s in enumerate(socks):
            msg = b"flow-%d-seq-%d" % (i, j)
            got = None
            for _ in range(3):
                s.sendto(msg, (host, port))
                deadline = time.monotonic() + 1.0
                while got is None:
                    left = deadline - time.monotonic()
                    if left <= 0 or not select.select([s], [], [], left)[0]:
                        break
                    data, src = s.recvfrom(65535)
                    # The answer comes from the address dialled (direct
                    # server return), and echoes this datagram.
                    if src[0] == host and src[1] == port and data.endswith(b":" + msg):
                        got = data[: -len(msg) - 1].decode()
                if got is not None:
                    break
            if got is None:
                lost += 1
            out.setdefault(str(s.getsockname()[1]), []).append(got)
    print(json.dumps({"flows": out, "lost": lost}))


def capture(iface, port, path):
    port = int(port)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((iface, 0))
    s.settimeout(30)
    with open(path + ".ready", "w"):
        pass
    while True:
        frame = s.recv(65535)
        if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 17:
            continue
        total = struct.unpack("!H", ip[2:4])[0]
        udp = ip[ihl:total]
        if struct.unpack("!H", udp[2:4])[0] != port:
            continue
        with open(path + ".tmp", "wb") as f:
            f.write(udp[8:])
        os.rename(path + ".tmp", path)
        return


def send(src, host, port, path):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.bind((src, 0))
    with open(path, "rb") as f:
        s.sendto(f.read(), (host, int(port)))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"serve": serve, "flows": flows, "capture": capture, "send": send}[cmd](*args)


if __name__ == "__main__":
    main()
