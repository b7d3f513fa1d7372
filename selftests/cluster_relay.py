#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A TCP relay between two nodes' control channels (cluster.sh).

  cluster_relay.py LISTEN_ADDR LISTEN_PORT TARGET_ADDR TARGET_PORT CTL_FILE

Relays every connection to the target. From the connecting side to the
target it cuts the stream into frames (32-byte header, its length at bytes
8..12, the payload, a 32-byte tag); when CTL_FILE exists it reads one word
from it and removes it, and applies that to the next frame after the
handshake's HELLO: "dup" sends it twice, "drop" leaves it out, "flip"
changes one byte of its payload or tag. It prints "relayed N" for every
connection and "done ACTION" once an action was applied.
"""

import os
import socket
import struct
import sys
import threading

HEADER, TAG = 32, 32


def pump_back(src, dst):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            dst.sendall(b)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def read_exact(s, n):
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            raise EOFError
        b += chunk
    return b


def pump_frames(src, dst, ctl):
    frames = 0
    try:
        while True:
            header = read_exact(src, HEADER)
            (length,) = struct.unpack(">I", header[8:12])
            frame = header + read_exact(src, length + TAG)
            frames += 1
            action = None
            if frames > 1 and os.path.exists(ctl):
                with open(ctl) as f:
                    action = f.read().strip()
                os.unlink(ctl)
            if action == "dup":
                dst.sendall(frame + frame)
            elif action == "drop":
                pass
            elif action == "flip":
                b = bytearray(frame)
                b[-1] ^= 0x01
                dst.sendall(bytes(b))
            else:
                dst.sendall(frame)
            if action:
                print(f"done {action}", flush=True)
    except (OSError, EOFError):
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main():
    laddr, lport, taddr, tport, ctl = sys.argv[1:6]
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((laddr, int(lport)))
    ls.listen(8)
    print("listening", flush=True)
    n = 0
    while True:
        client, _ = ls.accept()
        try:
            # From our own address: the target's peer entry names us.
            server = socket.create_connection((taddr, int(tport)), source_address=(laddr, 0))
        except OSError:
            client.close()
            continue
        n += 1
        print(f"relayed {n}", flush=True)
        threading.Thread(target=pump_frames, args=(client, server, ctl), daemon=True).start()
        threading.Thread(target=pump_back, args=(server, client), daemon=True).start()


if __name__ == "__main__":
    main()
