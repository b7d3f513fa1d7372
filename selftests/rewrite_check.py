#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Rewrite-mode checks with real connections (used by rewrite.sh).

  rewrite_check.py server --addrs A1,A2,A3 --port P --ready FILE [--v6] [--steer]
      Members i listen on Ai:P+i; member 0 has backlog 1 and never accepts;
      the others echo whatever they receive and then report, per connection,
      a JSON line {member, local, peer, bytes} on stdout. Grouped with
      SOCKGROUP_F_REWRITE unless --steer.
  rewrite_check.py client --addr A --port P --count N --bytes B [--hold H] [--v6]
      First H connections to A:P that only connect and stay open until the
      end (they fill member 0's queue: a JSON line {held} each, the run fails
      if one does not connect); then N sequential connections to A:P, each
      sends B random bytes, reads the echo, compares; prints a JSON line per
      connection {ok, local, peer, intact} (ok: connected and echoed in time).
  rewrite_check.py verify --client LOG --server LOG --dialled A:P
                          --served-at A:P --served N
      Exactly N connections completed with their bytes intact; each client
      saw the address it dialled as its peer; the server accepted each of
      them at --served-at, from the client's own address and port.
"""
import argparse, json, os, select, socket, struct, sys, threading, time

SO_SERVICE_GROUP = 0x5347
F_REWRITE = 1


def group(anchor, others, flags):
    req = struct.pack("=IIII", 1, flags, 0, len(others)) + b"".join(
        struct.pack("=i", s.fileno()) for s in others)
    anchor.setsockopt(socket.SOL_SOCKET, SO_SERVICE_GROUP, req)


def name(addr):
    return "%s:%d" % (addr[0], addr[1])


def server(args):
    fam = socket.AF_INET6 if args.v6 else socket.AF_INET
    socks = []
    for i, a in enumerate(args.addrs.split(",")):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a, args.port + i))
        s.listen(1 if i == 0 else 64)
        socks.append(s)
    group(socks[0], socks[1:], 0 if args.steer else F_REWRITE)
    with open(args.ready, "w") as f:
        f.write("ready\n")
    lock = threading.Lock()

    def serve(i, conn):
        total = 0
        with conn:
            conn.settimeout(10)
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    conn.sendall(data)
                    total += len(data)
            except OSError:
                pass
            with lock:
                print(json.dumps({"member": i, "local": name(conn.getsockname()),
                                  "peer": name(conn.getpeername()) if total else "",
                                  "bytes": total}), flush=True)

    deadline = time.time() + args.seconds
    active = socks[1:]
    while time.time() < deadline:
        r, _, _ = select.select(active, [], [], 0.2)
        for s in r:
            conn, _ = s.accept()
            threading.Thread(target=serve, args=(socks.index(s), conn), daemon=True).start()


def client(args):
    fam = socket.AF_INET6 if args.v6 else socket.AF_INET
    held = []
    for _ in range(args.hold):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(args.timeout)
        s.connect((args.addr, args.port))
        held.append(s)
        print(json.dumps({"held": name(s.getsockname())}), flush=True)
    for _ in range(args.count):
        payload = os.urandom(args.bytes)
        out = {"ok": False, "intact": False}
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(args.timeout)
        try:
            s.connect((args.addr, args.port))
            out["local"], out["peer"] = name(s.getsockname()), name(s.getpeername())
            got = bytearray()
            def send():
                try:
                    s.sendall(payload)
                except OSError:
                    pass  # the receiving side reports the failure
            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            while len(got) < len(payload):
                data = s.recv(65536)
                if not data:
                    break
                got += data
            s.shutdown(socket.SHUT_WR)
            out["ok"] = True
            out["intact"] = bytes(got) == payload
        except OSError as e:
            out["error"] = str(e)
        finally:
            s.close()
        print(json.dumps(out), flush=True)
    for s in held:
        s.close()


def verify(args):
    def lines(path):
        with open(path) as f:
            return [json.loads(l) for l in f if l.startswith("{")]
    cl = [c for c in lines(args.client) if c.get("ok")]
    sv = [s for s in lines(args.server) if s["bytes"] > 0]
    problems = []
    if len(cl) != args.served or not all(c["intact"] for c in cl):
        problems.append("clients: %d completed intact, want %d" % (
            sum(c["intact"] for c in cl), args.served))
    problems += ["client saw peer %s, dialled %s" % (c["peer"], args.dialled)
                 for c in cl if c["peer"] != args.dialled]
    if len(sv) != args.served:
        problems.append("server: %d connections served, want %d" % (len(sv), args.served))
    problems += ["server accepted at %s, want %s" % (s["local"], args.served_at)
                 for s in sv if s["local"] != args.served_at]
    if sorted(s["peer"] for s in sv) != sorted(c["local"] for c in cl):
        problems.append("server peers %s != client addresses %s" % (
            sorted(s["peer"] for s in sv), sorted(c["local"] for c in cl)))
    for p in problems:
        print("#", p)
    sys.exit(1 if problems else 0)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("server")
    sp.add_argument("--addrs", required=True)
    sp.add_argument("--port", type=int, required=True)
    sp.add_argument("--ready", required=True)
    sp.add_argument("--seconds", type=float, default=60)
    sp.add_argument("--v6", action="store_true")
    sp.add_argument("--steer", action="store_true")
    cp = sub.add_parser("client")
    cp.add_argument("--addr", required=True)
    cp.add_argument("--port", type=int, required=True)
    cp.add_argument("--count", type=int, default=5)
    cp.add_argument("--hold", type=int, default=0)
    cp.add_argument("--bytes", type=int, default=1 << 20)
    cp.add_argument("--timeout", type=float, default=3)
    cp.add_argument("--v6", action="store_true")
    vp = sub.add_parser("verify")
    vp.add_argument("--client", required=True)
    vp.add_argument("--server", required=True)
    vp.add_argument("--dialled", required=True)
    vp.add_argument("--served-at", required=True)
    vp.add_argument("--served", type=int, required=True)
    args = p.parse_args()
    {"server": server, "client": client, "verify": verify}[args.cmd](args)


if __name__ == "__main__":
    main()
