#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Paced downloads that measure their longest stall (dispatch.sh j, l, k;
handoff.sh z: connections that last).

  dispatch_stall.py HOST PORT RATE SHA256 OUT PATH...

One connection per PATH to HOST:PORT, all at once (a thread each), with a
small receive buffer (16 KiB, set before connect: TCP then carries the
body at the pace the client reads it): a GET with "Connection: close",
whose body is read at RATE bytes per second. Writes OUT.ports (one client
port per line, in PATH's order) once every connection is made, and
OUT.flowing once every body has begun. At the end OUT, one line per
connection:

  INDEX PORT RESULT BYTES STALL_MS TOTAL_MS STALL_AT_MS

RESULT is ok (status 200, the body's SHA-256 is SHA256, then the server's
FIN), or what went wrong (reset, timeout, eof, statusCODE: the answer's
status code, sha). STALL_MS is
the longest time a receive of the body waited for data (a paced reader
otherwise finds data waiting), TOTAL_MS the time from connect to the end,
STALL_AT_MS when that longest wait began (CLOCK_MONOTONIC, in ms: the
guest's /proc/uptime, to compare with the caller's events).
Exits 0 if every connection is ok.

STALL_PORTS (environment), a client port per PATH separated by spaces:
each connection binds its port (SO_REUSEADDR) instead of an ephemeral one.
"""

import hashlib
import os
import socket
import sys
import threading
import time

# Longer than any failover: a transfer that waits this long failed.
TIMEOUT = 90


class Conn:
    def __init__(self, path, port=0):
        self.path = path
        self.port = port
        self.result = "unstarted"
        self.bytes = 0
        self.stall = 0.0
        self.stall_at = 0.0
        self.total = 0.0
        self.made = threading.Event()
        self.began = threading.Event()


def run(c, host, port, rate, sha):
    t0 = time.monotonic()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.settimeout(TIMEOUT)
        if c.port:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("", c.port))
        s.connect((host, port))
        c.port = s.getsockname()[1]
        c.made.set()
        s.sendall(f"GET {c.path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(16384)
            if not d:
                c.result = "eof"
                return
            buf += d
        head, _, body = buf.partition(b"\r\n\r\n")
        code = head.split(b"\r\n")[0].split()[1]
        if code != b"200":
            c.result = "status" + code.decode(errors="replace")
            return
        h = hashlib.sha256(body)
        n = len(body)
        c.began.set()
        start = time.monotonic()
        while True:
            # Paced: no faster than rate.
            ahead = n / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
            t = time.monotonic()
            d = s.recv(16384)
            if time.monotonic() - t > c.stall:
                c.stall, c.stall_at = time.monotonic() - t, t
            if not d:
                break
            h.update(d)
            n += len(d)
        c.bytes = n
        c.result = "ok" if h.hexdigest() == sha else "sha"
    except ConnectionResetError:
        c.result = "reset"
    except socket.timeout:
        c.result = "timeout"
    except OSError as e:
        c.result = f"errno{e.errno}"
    finally:
        c.total = time.monotonic() - t0
        c.made.set()
        c.began.set()
        s.close()


def main():
    host, port, rate, sha, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    paths = sys.argv[6:]
    sports = [int(p) for p in os.environ.get("STALL_PORTS", "").split()]
    if sports and len(sports) != len(paths):
        sys.exit("STALL_PORTS: one port per PATH")
    conns = [Conn(p, sports[i] if sports else 0) for i, p in enumerate(paths)]
    threads = [threading.Thread(target=run, args=(c, host, port, rate, sha)) for c in conns]
    for t in threads:
        t.start()
    for c in conns:
        c.made.wait()
    with open(out + ".ports", "w") as f:
        f.writelines(f"{c.port}\n" for c in conns)
    for c in conns:
        c.began.wait()
    open(out + ".flowing", "w").close()
    for t in threads:
        t.join()
    with open(out + ".tmp", "w") as f:
        for i, c in enumerate(conns):
            f.write(f"{i} {c.port} {c.result} {c.bytes} {c.stall * 1000:.0f} {c.total * 1000:.0f} {c.stall_at * 1000:.0f}\n")
    # Whole, or not at all, for the caller's wait.

    os.rename(out + ".tmp", out)
    return 0 if all(c.result == "ok" for c in conns) else 1


if __name__ == "__main__":
    sys.exit(main())
