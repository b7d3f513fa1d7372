#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A stand-in back-end peer of the control channel that takes every handoff
(hold.sh, until the kernel's back-end replays connections).

  handoff_peer.py ADDR PORT OWN_ID PEER_ID KEY_FILE LOG [SYNCS [GO]]

Listens on ADDR:PORT for the front-end (node PEER_ID, the lower id, which
connects), answers its HELLO (HMAC-SHA256 under the pair's key from
KEY_FILE, hex), derives the session key as the kernel does
(src/cluster/frame.rs), sends heartbeats every 500 ms, and answers every
HANDOFF_REQ with a HANDOFF_ACK for its tuple. LOG gets one JSON line per
event: {"ev": "up"}, {"ev": "req", "sport": N, "request": N}.

SYNCS (dispatch.sh), "OWNER:BACKUP,...": once up, it sends a CONN_SYNC of
service 1 for each (client 10.81.0.9, port 40000, 40001, ..., to
10.99.0.1:80), then one TRANSFER carrying the same entries, as a peer
that is no dispatcher would forge them; logged {"ev": "synced", "n": N}.
An entry "OWNER:BACKUP@SERVICE" names another service. With GO, the
CONN_SYNCs go once the file GO exists (the caller saw this node join the
service's view), and no TRANSFER follows.
"""

import hashlib
import hmac
import json
import os
import select
import socket
import struct
import sys
import time

MAGIC, VERSION, HEADER, TAG = 0x53474331, 1, 32, 32
HELLO, HEARTBEAT, REQ, ACK, CONN_SYNC, TRANSFER = 1, 2, 3, 4, 7, 9
A_TUPLE, A_NONCE, A_RECEIVER, A_CAPS, A_HB = 1, 2, 3, 4, 5
A_GEN, A_UPTIME, A_REQUEST, A_BACKEND_ISN, A_STATE = 6, 7, 17, 18, 19
A_CLIENT_ISN, A_SERVER_ISN = 8, 9
A_OWNER, A_BACKUP, A_BACKEND, A_ENTRY, A_SERVICE, A_PLACEMENT = 21, 22, 23, 24, 25, 26
A_BATCH = 27


def conn_sync(i, owner, backup, service=1):
    """A CONN_SYNC's payload (src/cluster/frame.rs): placement local."""
    tup = bytes([4, 0, 0, 0]) + bytes([10, 81, 0, 9]) + bytes(12) + \
        bytes([10, 99, 0, 1]) + bytes(12) + struct.pack(">HH", 40000 + i, 80)
    return (tlv(A_TUPLE, tup) + tlv(A_OWNER, struct.pack(">I", owner)) +
            tlv(A_BACKUP, struct.pack(">I", backup)) +
            tlv(A_BACKEND, struct.pack(">I", owner)) + tlv(A_GEN, struct.pack(">Q", 1)) +
            tlv(A_SERVICE, struct.pack(">I", service)) + tlv(A_CLIENT_ISN, struct.pack(">I", 1)) +
            tlv(A_SERVER_ISN, struct.pack(">I", 2)) + tlv(A_PLACEMENT, bytes([3])))


def tlv(ty, value):
    pad = (-len(value)) % 4
    return struct.pack(">HH", ty, len(value)) + value + b"\0" * pad


def tlvs(payload):
    out, i = {}, 0
    while i + 4 <= len(payload):
        ty, n = struct.unpack_from(">HH", payload, i)
        out[ty] = payload[i + 4:i + 4 + n]
        i += 4 + n + (-n) % 4
    return out


class Conn:
    def __init__(self, sock, own, key):
        self.sock, self.own, self.key = sock, own, key
        self.seq = 0
        self.buf = b""

    def send(self, ty, payload, key):
        h = struct.pack(">IBBHIIQII", MAGIC, VERSION, ty, 0, len(payload), self.own,
                        self.seq, 0, 0)
        self.seq += 1
        body = h + payload
        self.sock.sendall(body + hmac.new(key, body, hashlib.sha256).digest())

    def frames(self):
        """The complete frames received so far: (type, payload)."""
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data
        while len(self.buf) >= HEADER:
            n = struct.unpack_from(">I", self.buf, 8)[0]
            if len(self.buf) < HEADER + n + TAG:
                break
            ty = self.buf[5]
            payload = self.buf[HEADER:HEADER + n]
            self.buf = self.buf[HEADER + n + TAG:]
            yield ty, payload


def main(argv):
    addr, port, own, peer, key_file, log_path = argv[1:7]
    syncs = []
    for s in argv[7].split(",") if len(argv) > 7 else []:
        entry, _, service = s.partition("@")
        o, b = map(int, entry.split(":"))
        syncs.append((o, b, int(service or 1)))
    go = argv[8] if len(argv) > 8 else None
    own, peer = int(own), int(peer)
    key = bytes.fromhex(open(key_file).read().strip())
    log = open(log_path, "a", buffering=1)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((addr, int(port)))
    lsock.listen(4)
    log.write(json.dumps({"ev": "listening"}) + "\n")
    while True:
        sock, _ = lsock.accept()
        c = Conn(sock, own, key)
        session = None
        next_hb = 0.0
        start = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                if session is not None and now >= next_hb:
                    c.send(HEARTBEAT, tlv(A_GEN, struct.pack(">Q", 1)) +
                           tlv(A_UPTIME, struct.pack(">Q", int((now - start) * 1000))), session)
                    next_hb = now + 0.5
                    if syncs and (go is None or os.path.exists(go)):
                        for i, (o, b, svc) in enumerate(syncs):
                            c.send(CONN_SYNC, conn_sync(i, o, b, svc), session)
                        if go is None:
                            entries = b"".join(tlv(A_ENTRY, conn_sync(i, o, b, svc))
                                               for i, (o, b, svc) in enumerate(syncs))
                            c.send(TRANSFER, tlv(A_GEN, struct.pack(">Q", 1)) +
                                   tlv(A_BATCH, struct.pack(">I", 1)) + entries, session)
                        log.write(json.dumps({"ev": "synced", "n": len(syncs)}) + "\n")
                        syncs = []
                r, _, _ = select.select([sock], [], [], 0.1)
                if not r:
                    continue
                for ty, payload in c.frames():
                    t = tlvs(payload)
                    if ty == HELLO and session is None:
                        nonce_c, nonce_a = t[A_NONCE], os.urandom(16)
                        c.send(HELLO, tlv(A_NONCE, nonce_a) +
                               tlv(A_RECEIVER, struct.pack(">I", peer)) +
                               tlv(A_CAPS, struct.pack(">I", 0)) +
                               tlv(A_HB, struct.pack(">I", 500)), key)
                        label = b"sockgroup-session-v1" + struct.pack(">II", peer, own)
                        session = hmac.new(key, label + nonce_c + nonce_a,
                                           hashlib.sha256).digest()
                        log.write(json.dumps({"ev": "up"}) + "\n")
                    elif ty == REQ:
                        tup = t[A_TUPLE]
                        sport = struct.unpack_from(">H", tup, 36)[0]
                        log.write(json.dumps({"ev": "req", "sport": sport,
                                              "request": len(t.get(A_REQUEST, b""))}) + "\n")
                        c.send(ACK, tlv(A_TUPLE, tup) +
                               tlv(A_BACKEND_ISN, struct.pack(">I", 1)) +
                               tlv(A_STATE, bytes([1])), session)
        except (EOFError, OSError, KeyError) as e:
            log.write(json.dumps({"ev": "closed", "err": str(e)}) + "\n")
            sock.close()


if __name__ == "__main__":
    main(sys.argv)
