#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The close paths of a handed-off connection (handoff.sh j), as a client.

  handoff_close.py MODE HOST PORT PATH EXPECT [GO]

HTTP/1.1 to HOST:PORT: GETs of PATH, each answer's body must be EXPECT
(a line, without its newline). Prints the client's port, then exits 0 if
every step went as MODE says, else 1 with the reason on stderr:

  fin     two GETs on the keep-alive connection, then a FIN (shutdown);
          the server's FIN follows (recv returns b"").
  rst     two GETs, then close with SO_LINGER 0: a reset from the client.
  server  one GET with "Connection: close": the server closes after the
          answer (recv returns b""), then the client closes.
  late    as server, then the client sends data after the server's FIN
          and closes (FIN): the server's lingering close reads it, no reset
          (recv returns b"", not ECONNRESET).
  syn     a GET, then a SYN on the connection's own tuple from a raw
          socket (a late duplicate of the client's first SYN); until the
          file GO exists, no SYN-ACK may come back on the tuple; then a
          second GET on the connection, and a FIN as in fin: the connection
          lives on (no reset ended it).
  tw      as server, then waits until the file GO exists (the server's
          TIME_WAIT holds the tuple, the front-end's entry of it is gone),
          and sends its FIN again from a raw socket (a retransmission, as
          after a lost ACK), with the sequence numbers seen on the tuple:
          the server's TIME_WAIT must answer with an ACK, not a reset.
  ack     as fin, the client's socket closed (TIME_WAIT; the file GO.closed
          made), and once the file GO.ack exists, its last
          ACK again from a raw socket (a duplicate, or its answer to the
          server's FIN sent again), then its FIN again (sent before the
          server's ACK of it came), with the sequence numbers seen on the
          tuple; then waits until the file GO exists (the caller saw the
          server drop it) and fails if a reset came on the tuple: the
          server side closed second (passive close) and holds no socket.
  stale   a GET; once the file GO.cut exists, a reset from the client
          (SO_LINGER 0; the file GO.reset made); once the file GO.again
          exists ("PATH EXPECT...", read as GO.path), a new connection
          from the same address and port (SO_REUSEADDR), a GET of that
          PATH with "Connection: close": its body must be EXPECT.
  wait    a GET, then waits until the file GO exists (the caller's
          signal, up to 300 s), a second GET on the connection, then a FIN
          as in fin. With PATH "-", the connection is made first, then the
          path and the expected body are read from the file GO.path ("PATH
          EXPECT...", waited for as GO) before the first GET.
"""

import os
import random
import socket
import struct
import sys
import time

# The socket's timeout (CLIENT_TIMEOUT, seconds): a failover's answer may
# come after several retransmissions.
TIMEOUT = float(os.environ.get("CLIENT_TIMEOUT", "30"))


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def answer(s, buf):
    """Reads one answer (Content-Length); returns (status, body, rest)."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            fail(f"EOF inside the headers: {buf[:200]!r}")
        buf += d
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    n = 0
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(buf) < n:
        d = s.recv(65536)
        if not d:
            fail(f"EOF inside the body: {len(buf)} of {n} bytes")
        buf += d
    return status, buf[:n], buf[n:]


def get(s, host, path, close=False):
    req = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
    if close:
        req += "Connection: close\r\n"
    s.sendall((req + "\r\n").encode())


def wait_for(name):
    deadline = time.monotonic() + 300
    while not os.path.exists(name):
        if time.monotonic() > deadline:
            fail(f"{name} did not appear within 300 s")
        time.sleep(0.05)


def csum(data):
    if len(data) % 2:
        data += b"\0"
    t = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return ~t & 0xFFFF


def send_syn(s, go):
    """Sends a SYN on s's IPv4 tuple, with a sequence number of its own,
    from a raw socket (the kernel writes the IP header), then reads what
    comes back on the tuple until the file `go` exists: a SYN-ACK (a
    listener's answer, whose challenge ACK from the client would be
    answered with a reset) fails."""
    (src, sport), (dst, dport) = s.getsockname(), s.getpeername()
    seq = random.getrandbits(32)
    # SYN, window 64240, an MSS option of 1460.
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 6 << 4, 0x02, 64240, 0, 0)
    hdr += struct.pack("!BBH", 2, 4, 1460)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(hdr))
    hdr = hdr[:16] + struct.pack("!H", csum(pseudo + hdr)) + hdr[18:]
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    r.settimeout(0.05)
    r.bind((src, 0))
    r.sendto(hdr, (dst, 0))
    deadline = time.monotonic() + 300
    try:
        while not os.path.exists(go):
            if time.monotonic() > deadline:
                fail(f"{go} did not appear within 300 s")
            try:
                pkt, (peer, _) = r.recvfrom(65536)
            except socket.timeout:
                continue
            ihl = (pkt[0] & 0x0F) * 4
            ps, pd = struct.unpack("!HH", pkt[ihl:ihl + 4])
            flags = pkt[ihl + 13]
            if peer == dst and (ps, pd) == (dport, sport) and flags & 0x02:
                fail(f"the SYN on the connection's tuple was answered with flags {flags:#x} "
                     "(a listener's SYN-ACK)")
    finally:
        r.close()


def tcp_hdr(src, dst, sport, dport, seq, ack, flags):
    """A TCP header without options, its checksum over the IPv4 pseudo
    header."""
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(hdr))
    return hdr[:16] + struct.pack("!H", csum(pseudo + hdr)) + hdr[18:]


def segs_from(r, dst, dport, sport):
    """The TCP segments queued on raw socket r from dst:dport to sport, as
    (flags, seq, ack, payload length)."""
    out = []
    while True:
        try:
            pkt, (peer, _) = r.recvfrom(65536)
        except (BlockingIOError, socket.timeout):
            return out
        ihl = (pkt[0] & 0x0F) * 4
        total = struct.unpack("!H", pkt[2:4])[0]
        ps, pd, seq, ack, off, flags = struct.unpack("!HHIIBB", pkt[ihl:ihl + 14])
        if peer == dst and (ps, pd) == (dport, sport):
            out.append((flags, seq, ack, total - ihl - (off >> 4) * 4))


def fin_again(s, r, go):
    """After the connection s closed (the server's FIN first, then the
    client's): once the file `go` exists, the client's FIN again on s's
    tuple from raw socket r (which saw the whole connection), then what
    answers it within 10 s: an ACK passes, a reset or nothing fails."""
    (src, sport), (dst, dport) = s.getsockname(), s.getpeername()
    s.close()
    wait_for(go)
    r.setblocking(False)
    segs = segs_from(r, dst, dport, sport)
    fins = [(seq + n) for flags, seq, ack, n in segs if flags & 0x01]
    if not fins or not segs:
        fail(f"no FIN from the server seen on the tuple ({len(segs)} segments)")
    # The server's last ACK acknowledged the client's FIN: its sequence
    # number is one less.
    client_fin = (segs[-1][2] - 1) & 0xFFFFFFFF
    w = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    w.bind((src, 0))
    w.sendto(tcp_hdr(src, dst, sport, dport, client_fin, (fins[-1] + 1) & 0xFFFFFFFF, 0x11), (dst, 0))
    w.close()
    r.settimeout(0.1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for flags, seq, ack, n in segs_from(r, dst, dport, sport):
            if flags & 0x04:
                fail(f"the FIN sent again was answered with a reset (flags {flags:#x})")
            if flags & 0x10 and ack == (client_fin + 1) & 0xFFFFFFFF:
                return
    fail("no answer to the FIN sent again within 10 s")


def ack_again(s, names, r, go):
    """After the connection s of `names` (its own address and its peer's,
    read while it was connected) closed, the client's FIN first, then the
    server's: once the file `go`.ack exists (the caller saw the server's
    socket go: an ACK that reached it first, or waited behind its owner's
    lock, would close it quietly), its last ACK again on the tuple from
    raw socket r (which saw the whole connection); once the file `go`
    exists, any reset seen on the tuple fails."""
    (src, sport), (dst, dport) = names
    s.close()
    open(go + ".closed", "w").close()
    wait_for(go + ".ack")
    r.setblocking(False)
    segs = segs_from(r, dst, dport, sport)
    fins = [(seq + n) for flags, seq, ack, n in segs if flags & 0x01]
    if not fins:
        fail(f"no FIN from the server seen on the tuple ({len(segs)} segments)")
    # The server's FIN acknowledged the client's: the client's next
    # sequence number.
    seq = [ack for flags, _, ack, _ in segs if flags & 0x01][-1]
    w = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    w.bind((src, 0))
    ack = (fins[-1] + 1) & 0xFFFFFFFF
    w.sendto(tcp_hdr(src, dst, sport, dport, seq, ack, 0x10), (dst, 0))
    # Then its FIN again (sent before the server's ACK of it came, as
    # after a delayed ACK).
    w.sendto(tcp_hdr(src, dst, sport, dport, (seq - 1) & 0xFFFFFFFF, ack, 0x11), (dst, 0))
    w.close()
    wait_for(go)
    for flags, _, _, _ in segs_from(r, dst, dport, sport):
        if flags & 0x04:
            fail(f"the last ACK or the FIN sent again was answered with a reset (flags {flags:#x})")


def stale(s, names, host, port, go):
    """The stale mode after its first GET on s (see the module's text)."""
    wait_for(go + ".cut")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    open(go + ".reset", "w").close()
    wait_for(go + ".again")
    with open(go + ".again") as f:
        path, expect = f.read().strip().split(" ", 1)
    n = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    n.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    n.bind(names[0])
    n.settimeout(TIMEOUT)
    try:
        n.connect((host, int(port)))
    except OSError as e:
        fail(f"the new connection from port {names[0][1]}: {e}")
    get(n, host, f"{path}?stale", close=True)
    status, body, _ = answer(n, b"")
    if status != 200 or body != (expect + "\n").encode():
        fail(f"the new connection's GET: {status} {body[:200]!r}, not 200 {expect!r}")
    n.close()


def main():
    mode, host, port, path, expect = sys.argv[1:6]
    go = sys.argv[6] if len(sys.argv) > 6 else None
    raw = None
    if mode in ("tw", "ack"):
        # Opened first: it sees every segment of the connection.
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    names = (s.getsockname(), s.getpeername())
    print(names[0][1], flush=True)
    if path == "-":
        wait_for(go + ".path")
        with open(go + ".path") as f:
            path, expect = f.read().strip().split(" ", 1)
    gets = 2 if mode in ("fin", "rst", "syn", "wait", "ack") else 1
    buf = b""
    for i in range(gets):
        if mode == "wait" and i == 1:
            wait_for(go)
        if mode == "syn" and i == 1:
            send_syn(s, go)
        get(s, host, f"{path}?{mode}{i}", close=(i == gets - 1 and mode in ("server", "late", "tw")))
        status, body, buf = answer(s, buf)
        if status != 200 or body != (expect + "\n").encode():
            fail(f"GET {i}: {status} {body[:200]!r}, not 200 {expect!r}")
    if mode == "stale":
        stale(s, names, host, port, go)
        return
    if mode == "rst":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        return
    if mode in ("fin", "syn", "wait", "ack"):
        s.shutdown(socket.SHUT_WR)
    d = s.recv(65536)
    if d:
        fail(f"{len(d)} bytes after the answer, not the server's FIN: {d[:200]!r}")
    if mode == "tw":
        fin_again(s, raw, go)
        return
    if mode == "ack":
        ack_again(s, names, raw, go)
        return
    if mode == "late":
        s.sendall(b"late bytes after the server's FIN\r\n")
        s.shutdown(socket.SHUT_WR)
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            fail("reset after the late bytes")
        if d:
            fail(f"{len(d)} bytes after the late ones: {d[:200]!r}")
    s.close()


if __name__ == "__main__":
    main()
