#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Keep-alive connections across a dispatcher's return (dispatch.sh g).

  dispatch_back.py HOST PORT PATH SHA256 K BACK IDS NAMES GO OUT

Picks K client ports (K a multiple of 4) for connections to HOST:PORT,
half of them owned by dispatcher BACK under the view of the dispatchers
IDS (a comma list, BACK among them; NAMES their nodes' names in the same
order) and half by another, computing the scores as SPEC.md and
src/dispatch/owner.rs define them (fmix32 of CRC32C over the id,
big-endian, then the 40-byte tuple). Of each half, one half GETs PATH
(served by its owner: its body's SHA-256 must be SHA256), the other
/NAME/small of the node that neither is BACK nor owns the connection
while BACK is away (handed off there: its body must be "served by NAME").
Makes the K connections (BACK is away: another dispatcher owns each), a
GET on each, then writes OUT ("ready", then a line "port owner backup
kind server" per connection: owner and backup under the full view, kind
local or moved, server the id of the node serving it) and waits for the
file GO (up to 300 s). Then a second GET on each connection, checked the
same way, and a FIN. Exits 0 if every answer was intact and no connection
was reset, else 1 with the reasons on stderr (one line per failed
connection).
"""

import hashlib
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from handoff_close import answer, get, wait_for  # noqa: E402


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def fmix32(h):
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h


def tuple_bytes(caddr, cport, saddr, sport):
    pad = bytes(12)
    return (bytes([4, 0, 0, 0]) + socket.inet_aton(caddr) + pad +
            socket.inet_aton(saddr) + pad +
            cport.to_bytes(2, "big") + sport.to_bytes(2, "big"))


def ranked(ids, t):
    """The dispatchers by rank: the highest score first, equal scores the
    lower id first."""
    return sorted(ids, key=lambda i: (-fmix32(crc32c(i.to_bytes(4, "big") + t)), i))


M64 = (1 << 64) - 1
# The rendezvous hash's fixed key (src/cluster/select.rs HASH_KEY).
HASH_KEY = (int.from_bytes(b"sockgrou", "little"), int.from_bytes(b"p-rendez", "little"))


def siphash24(k0, k1, data):
    """SipHash-2-4 (Aumasson and Bernstein, 2012), written from the paper."""
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D,
         k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def rotl(x, b):
        return ((x << b) | (x >> (64 - b))) & M64

    def sipround():
        v[0] = (v[0] + v[1]) & M64
        v[1] = rotl(v[1], 13) ^ v[0]
        v[0] = rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & M64
        v[3] = rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & M64
        v[3] = rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & M64
        v[1] = rotl(v[1], 17) ^ v[2]
        v[2] = rotl(v[2], 32)

    tail = len(data) % 8
    words = [int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data) - tail, 8)]
    words.append(int.from_bytes(data[len(data) - tail:], "little") | ((len(data) & 0xFF) << 56))
    for m in words:
        v[3] ^= m
        sipround()
        sipround()
        v[0] ^= m
    v[2] ^= 0xFF
    for _ in range(4):
        sipround()
    return v[0] ^ v[1] ^ v[2] ^ v[3]


# The paper's test vector (key 00..0f, message 00..0e).
assert siphash24(int.from_bytes(bytes(range(8)), "little"),
                 int.from_bytes(bytes(range(8, 16)), "little"),
                 bytes(range(15))) == 0xA129CA6149BE45E5


def backend_for(ident, nodes):
    """The node of nodes (ids, all up) a hash rule places the identifier
    on: the highest weight SipHash(le64(SipHash(ident)) || le32(node)),
    equal weights to the lower id (SPEC.md, src/cluster/select.rs)."""
    h = siphash24(*HASH_KEY, ident)
    return min(nodes, key=lambda n: (-siphash24(*HASH_KEY, h.to_bytes(8, "little") + n.to_bytes(4, "little")), n))


def main():
    host, port, path, sha, k, back, ids, names, go, out = sys.argv[1:11]
    port, k, back = int(port), int(k), int(back)
    ids = [int(i) for i in ids.split(",")]
    name = dict(zip(ids, names.split(",")))
    away = [i for i in ids if i != back]
    # The client's address toward HOST (no packet sent).
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.connect((host, port))
    caddr = u.getsockname()[0]
    u.close()
    # (port, owner, backup, kind, server, path, check) per connection.
    ports, quota = [], {(m, kind): k // 4 for m in (True, False) for kind in ("local", "moved")}
    # Below the ephemeral range (32768-60999): a port some earlier
    # connection left in TIME_WAIT would refuse the bind.
    for cport in range(10000 + os.getpid() % 1000 * 8, 32768):
        t = tuple_bytes(caddr, cport, host, port)
        full, now = ranked(ids, t), ranked(away, t)
        mine = full[0] == back
        kind = "local" if quota[(mine, "local")] else "moved"
        if not quota[(mine, kind)]:
            continue
        quota[(mine, kind)] -= 1
        if kind == "local":
            server, p, want = now[0], path, ("sha", sha)
        else:
            server = [i for i in away if i != now[0]][0]
            p = f"/{name[server]}/small"
            want = ("body", f"served by {name[server]}\n".encode())
        ports.append((cport, full[0], full[1], kind, server, p, want))
        if len(ports) == k:
            break
    conns, errors = [], []
    for cport, o, b, kind, server, p, want in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(float(os.environ.get("CLIENT_TIMEOUT", "60")))
        s.bind((caddr, cport))
        s.connect((host, port))
        conns.append([s, b"", cport, o, f"{o} {b} {kind} {server}", p, want])

    def intact(body, want):
        if want[0] == "sha":
            return hashlib.sha256(body).hexdigest() == want[1]
        return body == want[1]

    for c in conns:
        get(c[0], host, c[5])
    for c in conns:
        status, body, c[1] = answer(c[0], c[1])
        if status != 200 or not intact(body, c[6]):
            errors.append(f"port {c[2]}: first GET {status}, {len(body)} bytes")
    with open(out + ".new", "w") as f:
        f.write("ready\n")
        for c in conns:
            f.write(f"{c[2]} {c[4]}\n")
    os.rename(out + ".new", out)
    wait_for(go)
    for c in conns:
        try:
            get(c[0], host, c[5])
        except OSError as e:
            errors.append(f"port {c[2]} (owner {c[3]}): second GET: {e}")
            c[0] = None
    for c in conns:
        if c[0] is None:
            continue
        try:
            status, body, _ = answer(c[0], c[1])
            if status != 200 or not intact(body, c[6]):
                errors.append(f"port {c[2]} (owner {c[3]}): second GET {status}, {len(body)} bytes")
            c[0].shutdown(socket.SHUT_WR)
            if c[0].recv(1) != b"":
                errors.append(f"port {c[2]}: data after the answer")
        except (OSError, SystemExit) as e:
            errors.append(f"port {c[2]} (owner {c[3]}): second answer: {e!r}")
        c[0].close()
    for e in errors:
        print(e, file=sys.stderr)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
