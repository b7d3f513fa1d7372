#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""hold.sh's helper: a test server and real kernel TCP clients (no raw
sockets), so that what is checked is what an application sees.

  hold.py serve LOG PORT...       a server on [::]:PORT (IPv4 too) for each
                                  PORT, and on 127.0.0.1:8079 for nginx's
                                  /api/: logs one JSON line per event to LOG
                                  (accept, with the time accept() returned;
                                  req, with the sha256 of the request read)
                                  and answers every HTTP/1 request with the
                                  sha256 of the whole request and of its body.
  hold.py slow HOST PORT LOG      a request in 1-byte segments (TCP_NODELAY,
                                  each on the wire before the next is
                                  written) with pauses; checks that the
                                  server's accept() returned only after the
                                  last byte was sent, and the answer's sha256.
  hold.py conns HOST PORT N       N connections, a request each, answers
                                  checked; --keep FILE: then writes the local
                                  ports to FILE and holds them open until
                                  killed.
  hold.py stall HOST PORT N FILE  N connections that stop in the middle of
                                  their header; ports to FILE, open until
                                  killed.
  hold.py big HOST PORT           a header block over 16 KiB, answer checked.
  hold.py h2 HOST PORT            the HTTP/2 connection preface.
  hold.py tls HOST PORT [SNI]     a TLS ClientHello (with SNI NAME, or none).
  hold.py mss HOST PORT            a connection, a request, answer checked;
                                  prints the MSS the server's SYN-ACK
                                  announced, as the client's socket took it
                                  (TCP_MAXSEG, plus the timestamp option's
                                  12 bytes when they were agreed).
  hold.py compare SS CONNS PORTS ADDR DPORT  the learned state of the connections whose
                                  client (ADDR) ports are in PORTS (a JSON list),
                                  from `sgctl cluster conns --json` (CONNS),
                                  against the client's `ss -Htine` (SS).

Every client prints a JSON object on stdout ("sport": its local port) and
exits non-zero, with the reason on stderr, when a check fails.
"""

import fcntl
import hashlib
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

TIME_FACTOR = int(os.environ.get("TIME_FACTOR", "1"))
TIMEOUT = 10 * TIME_FACTOR
HASH_PORT = 8079
# ioctl: bytes of the send queue not yet sent (include/uapi/linux/sockios.h).
SIOCOUTQNSD = 0x894B
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def sha(data):
    return hashlib.sha256(data).hexdigest()


# ---- Server ----

class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def __call__(self, **ev):
        with self.lock:
            self.f.write(json.dumps(ev) + "\n")


def http_request(buf):
    """(length, body) of the first complete HTTP/1 request in buf, or None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].decode("latin-1").split("\r\n")
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    total = end + 4 + length
    if len(buf) < total:
        return None
    return total, buf[end + 4:total]


def serve_conn(conn, lport, peer, log):
    conn.settimeout(3600)
    buf = b""
    first = True
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            buf += data
            if first:
                first = False
                kind = ("tls" if buf[:1] == b"\x16" else
                        "h2" if H2_PREFACE.startswith(buf[:len(H2_PREFACE)]) else "http")
                log(ev="data", lport=lport, pport=peer[1], n=len(data), kind=kind,
                    t=time.time())
                if kind != "http":
                    # Nothing to answer: the client only checks that it
                    # reached the server.
                    break
            while True:
                r = http_request(buf)
                if r is None:
                    break
                total, body = r
                req = buf[:total]
                buf = buf[total:]
                log(ev="req", lport=lport, pport=peer[1], n=len(req), sha=sha(req))
                answer = f"{sha(req)} {sha(body)}\n".encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(answer), answer))
    except OSError as e:
        log(ev="error", lport=lport, pport=peer[1], err=str(e))
    finally:
        log(ev="close", lport=lport, pport=peer[1], n=len(buf))
        conn.close()


def listen_loop(lsock, lport, log):
    while True:
        conn, peer = lsock.accept()
        log(ev="accept", lport=lport, peer=peer[0], pport=peer[1], t=time.time())
        threading.Thread(target=serve_conn, args=(conn, lport, peer, log), daemon=True).start()


def serve(path, ports):
    log = Log(path)
    socks = []
    for port in ports:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", port))
        s.listen(128)
        socks.append((s, port))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", HASH_PORT))
    s.listen(128)
    socks.append((s, HASH_PORT))
    for s, port in socks:
        threading.Thread(target=listen_loop, args=(s, port, log), daemon=True).start()
    log(ev="listening", ports=ports)
    while True:
        signal.pause()


# ---- Clients ----

def connect(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(TIMEOUT)
    s.connect((host, port))
    return s


def read_answer(s):
    """The body of one HTTP/1 answer (Content-Length framed)."""
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            length = 0
            for line in buf[:end].decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(buf) >= end + 4 + length:
                return buf[end + 4:end + 4 + length]
        data = s.recv(65536)
        if not data:
            raise OSError(f"connection closed after {len(buf)} bytes of the answer")
        buf += data


def check_answer(s, req):
    got = read_answer(s).split()
    if not got or got[0].decode() != sha(req):
        fail(f"port {s.getsockname()[1]}: the server read other bytes than sent "
             f"(answer {got!r}, sent sha256 {sha(req)}, {len(req)} bytes)")


def request(path, host="hold.test", extra=b""):
    return (b"GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: hold.py\r\n%s\r\n"
            % (path.encode(), host.encode(), extra))


def server_events(log, lport, pport):
    """The server's events of the connection from client port pport to its
    port lport."""
    out = []
    with open(log) as f:
        for line in f:
            ev = json.loads(line)
            if ev.get("pport") == pport and ev.get("lport") == lport:
                out.append(ev)
    return out


def unsent(s):
    return struct.unpack("i", fcntl.ioctl(s.fileno(), SIOCOUTQNSD, bytes(4)))[0]


def wait_sent(s, what):
    """Until TCP has sent every byte written: each byte is its own segment,
    and 'sent' means on the wire, not queued behind a full window.  Returns
    how long that took."""
    start = time.time()
    end = start + 2 * TIME_FACTOR
    while unsent(s):
        if time.time() > end:
            fail(f"{what}: {unsent(s)} byte(s) still unsent after {2 * TIME_FACTOR} s "
                 f"(the client's window is full: nothing acknowledges the held bytes)")
        time.sleep(0.001)
    return time.time() - start


def slow(host, port, log, pause_ms, ss_cmd):
    s = connect(host, port)
    sport = s.getsockname()[1]
    req = request("/slow/%d" % sport, extra=b"X-Slow: one byte per segment\r\n")
    slowest = (0, 0)
    for i, b in enumerate(req[:-1]):
        s.sendall(bytes([b]))
        slowest = max(slowest, (wait_sent(s, f"byte {i + 1} of {len(req)}"), i + 1))
        time.sleep(pause_ms / 1000)
    if slowest[0] > 0.5 * TIME_FACTOR:
        # The hold released the connection (it timed out) while a byte
        # waited for room in the window: nothing acknowledged the bytes held.
        fail(f"byte {slowest[1]} of {len(req)} waited {slowest[0]:.2f} s to be sent "
             f"(the client's window was full: nothing acknowledged the held bytes)")
    # The listener's accept queue is empty before the last byte, and the
    # server has not accepted the connection.
    recvq = None
    if ss_cmd:
        out = subprocess.run(ss_cmd, shell=True, capture_output=True, text=True).stdout
        recvq = [int(line.split()[1]) for line in out.splitlines() if line.strip()]
        if not recvq or any(recvq):
            fail(f"before the last byte, the listener's Recv-Q: {out!r}")
    early = [e for e in server_events(log, port, sport) if e["ev"] == "accept"]
    if early:
        fail(f"accepted before the last header byte was sent: {early}")
    t_last = time.time()
    s.sendall(req[-1:])
    check_answer(s, req)
    if unsent(s):
        fail("the last byte was never sent")
    acc = [e for e in server_events(log, port, sport) if e["ev"] == "accept"]
    if len(acc) != 1:
        fail(f"accept events of port {sport}: {acc}")
    if acc[0]["t"] < t_last:
        fail(f"accept() returned {t_last - acc[0]['t']:.3f} s before the last byte was sent")
    s.close()
    print(json.dumps({"sport": sport, "t_last": t_last, "t_accept": acc[0]["t"],
                      "recvq": recvq}))


def wait_killed(socks):
    """Until a signal ends the process; its sockets close with it."""
    while socks:
        signal.pause()


def conns(host, port, n, keep):
    socks = [connect(host, port) for _ in range(n)]
    ports = [s.getsockname()[1] for s in socks]
    reqs = [request("/conn/%d" % p) for p in ports]
    for s, req in zip(socks, reqs):
        s.sendall(req)
    for s, req in zip(socks, reqs):
        check_answer(s, req)
    print(json.dumps({"sport": ports}), flush=True)
    if keep:
        write_ports(keep, ports)
        wait_killed(socks)


# struct tcp_info (include/uapi/linux/tcp.h): tcpi_options is its 6th byte.
TCPI_OPTIONS_AT = 5
TCPI_OPT_TIMESTAMPS = 1


def mss(host, port):
    s = connect(host, port)
    req = request("/mss")
    s.sendall(req)
    check_answer(s, req)
    seg = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    opts = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[TCPI_OPTIONS_AT]
    ts = 12 if opts & TCPI_OPT_TIMESTAMPS else 0
    print(json.dumps({"sport": s.getsockname()[1], "mss": seg + ts, "maxseg": seg}))
    s.close()


def write_ports(path, ports):
    with open(path + ".tmp", "w") as f:
        json.dump(ports, f)
    os.rename(path + ".tmp", path)


def stall(host, port, n, path):
    socks = []
    for _ in range(n):
        s = connect(host, port)
        # Closed by a reset when the process is killed: no orphan left
        # retransmitting a FIN to a namespace that may be gone.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.sendall(b"GET /stalled HTTP/1.1\r\nHost: hold.test\r\nX-Partial: ")
        socks.append(s)
    write_ports(path, [s.getsockname()[1] for s in socks])
    wait_killed(socks)


def big(host, port):
    s = connect(host, port)
    pad = b"".join(b"X-Pad-%02d: %s\r\n" % (i, b"p" * 500) for i in range(40))
    req = request("/big", extra=pad)
    assert len(req) > 16384
    s.sendall(req)
    check_answer(s, req)
    print(json.dumps({"sport": s.getsockname()[1], "bytes": len(req)}))


def until_closed(s):
    """Reads until the server closes; the server closes after the first data."""
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass


def h2(host, port):
    s = connect(host, port)
    # The preface and an empty SETTINGS frame.
    s.sendall(H2_PREFACE + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
    until_closed(s)
    print(json.dumps({"sport": s.getsockname()[1]}))


def tls(host, port, sni):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = connect(host, port)
    sport = s.getsockname()[1]
    try:
        # The server closes after the ClientHello: the handshake fails.
        ctx.wrap_socket(s, server_hostname=sni).close()
    except (ssl.SSLError, OSError):
        pass
    print(json.dumps({"sport": sport}))


# ---- The learned state against ss ----

def parse_ss(text):
    """{client port: set of ss's tokens} of `ss -Htine` output."""
    out = {}
    sport = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            local = line.split()[3]
            sport = int(local.rsplit(":", 1)[1])
            out[sport] = {}
            continue
        for tok in line.split():
            name, _, value = tok.partition(":")
            out[sport][name] = value
    return out


def compare(ss_path, conns_path, ports_path, client, dport):
    dport = int(dport)
    ss = parse_ss(open(ss_path).read())
    # The client's connections to the port ss looked at: an earlier
    # connection from the same client port to another service (a decided
    # entry is listed for a while) is another connection.
    conns = {c["sport"]: c for c in json.load(open(conns_path))
             if c.get("saddr") == client and c.get("dport") == dport}
    ports = json.load(open(ports_path))
    bad = []
    for p in ports:
        c, t = conns.get(p), ss.get(p)
        if c is None or t is None:
            bad.append(f"port {p}: in conns {c is not None}, in ss {t is not None}")
            continue
        ts = "ts" in t
        want = {"sack": "sack" in t, "tstamp": ts, "ecn": "ecn" in t,
                "wscale": "wscale" in t}
        # The MSS the client announced in its SYN: ss's advmss, which the
        # client lowered by the timestamp option's 12 bytes once they were
        # agreed.
        want["mss"] = int(t["advmss"]) + (12 if ts else 0)
        # ss: the server's scale (snd), then the client's own (rcv); conn:
        # the client's (snd_wscale), then the server's; both 0 without.
        snd, rcv = (int(v) for v in t.get("wscale", "0,0").split(","))
        want["snd_wscale"], want["rcv_wscale"] = rcv, snd
        got = {k: c.get(k) for k in want}
        if got != want:
            bad.append(f"port {p}: conns {got}, ss {want} ({t})")
    if bad:
        fail("\n".join(bad))
    print(json.dumps({"compared": len(ports)}))


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "serve":
        serve(args[0], [int(p) for p in args[1:]])
    elif cmd == "slow":
        pause = int(os.environ.get("PAUSE_MS", "10"))
        slow(args[0], int(args[1]), args[2], pause, os.environ.get("SS_CMD"))
    elif cmd == "conns":
        keep = args[4] if len(args) > 4 and args[3] == "--keep" else None
        conns(args[0], int(args[1]), int(args[2]), keep)
    elif cmd == "stall":
        stall(args[0], int(args[1]), int(args[2]), args[3])
    elif cmd == "big":
        big(args[0], int(args[1]))
    elif cmd == "h2":
        h2(args[0], int(args[1]))
    elif cmd == "tls":
        tls(args[0], int(args[1]), args[2] if len(args) > 2 else None)
    elif cmd == "mss":
        mss(args[0], int(args[1]))
    elif cmd == "compare":
        compare(*args)
    else:
        fail(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
