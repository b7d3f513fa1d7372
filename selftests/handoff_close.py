#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The close paths of a handed-off connection (handoff.sh j), as a client.

  handoff_close.py MODE HOST PORT PATH EXPECT

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
"""

import socket
import struct
import sys

TIMEOUT = 30.0


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


def main():
    mode, host, port, path, expect = sys.argv[1:6]
    s = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    print(s.getsockname()[1], flush=True)
    gets = 2 if mode in ("fin", "rst") else 1
    buf = b""
    for i in range(gets):
        get(s, host, f"{path}?{mode}{i}", close=(i == gets - 1 and mode in ("server", "late")))
        status, body, buf = answer(s, buf)
        if status != 200 or body != (expect + "\n").encode():
            fail(f"GET {i}: {status} {body[:200]!r}, not 200 {expect!r}")
    if mode == "rst":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        return
    if mode == "fin":
        s.shutdown(socket.SHUT_WR)
    d = s.recv(65536)
    if d:
        fail(f"{len(d)} bytes after the answer, not the server's FIN: {d[:200]!r}")
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
