#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""The benchmarks' own HTTP client (bench/README.md, section 5): COUNT GETs of
http://HOST:PORT/PATH, one after the other, each on a fresh connection
("Connection: close"), timed from the start of connect(): connect, first byte
of the response (TTFB) and last byte (the server's FIN). Prints JSON with every
sample in microseconds; a failed request counts in "failed" and has no sample.

  http_timing.py HOST PORT PATH COUNT [TIMEOUT_S]

What wrk does not give: wrk reports per-request latency of its own connections
without the time to first byte.
"""

import json
import socket
import sys
import time


def one(host, port, path, timeout):
    req = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").encode()
    t0 = time.perf_counter_ns()
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        t_conn = time.perf_counter_ns()
        s.sendall(req)
        first = None
        received = 0
        head = b""
        while True:
            data = s.recv(1 << 16)
            if not data:
                break
            if first is None:
                first = time.perf_counter_ns()
            received += len(data)
            if len(head) < 64:
                head += data[:64]
        t_end = time.perf_counter_ns()
    finally:
        s.close()
    if first is None or not head.startswith(b"HTTP/1.1 200"):
        raise OSError(f"no 200 answer: {head[:40]!r}")
    return {"connect_us": (t_conn - t0) / 1e3, "ttfb_us": (first - t0) / 1e3,
            "total_us": (t_end - t0) / 1e3, "bytes": received}


def main():
    host, port, path, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 10.0
    samples, errors = [], []
    for _ in range(count):
        try:
            samples.append(one(host, port, path, timeout))
        except OSError as e:
            errors.append(str(e))
    json.dump({"url": f"http://{host}:{port}{path}", "count": count,
               "completed": len(samples), "failed": len(errors), "errors": errors[:5],
               "samples": samples}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
