#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The SYN path of service groups (used by synpath.sh), one case per call,
each in a network namespace of its own (loopback: no early demux, so the
steer hook sees SYNs with no socket attached).

  synpath_check.py CASE [--tf N] [--v6]

Cases (exit 0: passed; 1: failed, with what was seen):
  retrans    A SYN, then the same SYN again, to a member that the first one
             made full (backlog 0, one handshake under way): every SYN-ACK
             comes from the addressed member with one ISN, the retransmitted
             SYN is answered, and no redirect is counted.
  timewait   A new connection on a 4-tuple in TIME_WAIT on a full member
             completes there (TIME_WAIT reuse), not steered.
  cookies2   net.ipv4.tcp_syncookies=2, a full member that never accepts:
             no client connects without being served, no redirect counted.
  reqfull    The next sibling's request queue is over its backlog (it would
             answer with a SYN cookie): it is passed over, the one after it
             serves every client, none is connected and not served.
  rewrite2   Rewrite mode with tcp_syncookies=2: the cookie ACK follows the
             NAT mapping to the sibling, so redirects go on and are served.
  openloop   The issue's run: COUNT connections at RATE/s, client ports
             reused (a narrow ip_local_port_range), to the stalled member of
             a 3-port steer group, backlog 8; every one must be served.

The raw-socket clients' SYN-ACKs are answered by nobody: nftables drops the
RSTs the kernel would send from their ports, so their handshakes stay open.
"""
import argparse, os, select, socket, struct, subprocess, sys, threading, time

SO_SERVICE_GROUP = 0x5347
F_REWRITE = 1
RAW_PORTS = (41000, 41099)  # the raw clients' source ports
V4 = "127.0.0.1"
V6 = "::1"


class Fail(Exception):
    pass


def group(anchor, others, flags=0):
    req = struct.pack("=IIII", 1, flags, 0, len(others)) + b"".join(
        struct.pack("=i", s.fileno()) for s in others)
    anchor.setsockopt(socket.SOL_SOCKET, SO_SERVICE_GROUP, req)


def sysctl(name, value):
    with open("/proc/sys/" + name.replace(".", "/"), "w") as f:
        f.write(str(value))


def drop_raw_rsts():
    rules = """table inet sgsyn {
  chain out { type filter hook output priority 0; policy accept;
    tcp sport %d-%d tcp flags & rst == rst drop; }
}""" % RAW_PORTS
    subprocess.run(["nft", "-f", "-"], input=rules.encode(), check=True)


def members():
    """/proc/net/sockgroup: {port: {queue, handshakes, away, in, dropped}}."""
    out = {}
    with open("/proc/net/sockgroup") as f:
        for line in f:
            if line.startswith("#"):
                continue
            c = line.split()
            out[int(c[5].rsplit(":", 1)[1])] = {
                "queue": int(c[7]), "handshakes": int(c[8]), "away": int(c[10]),
                "in": int(c[11]), "dropped": int(c[12])}
    return out


def redirects():
    return sum(m["away"] + m["in"] for m in members().values())


def wait_for(what, cond, timeout):
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise Fail("timed out waiting for " + what)
        time.sleep(0.02)


def listener(fam, addr, port, backlog):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(backlog)
    return s


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


class RawPeer:
    """Sends SYNs from a port no socket owns and sees the SYN-ACKs to it."""

    def __init__(self, v6):
        self.v6 = v6
        fam = socket.AF_INET6 if v6 else socket.AF_INET
        self.addr = V6 if v6 else V4
        self.s = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_TCP)
        if v6:
            # The kernel computes the checksum at this offset (the TCP one).
            self.s.setsockopt(socket.IPPROTO_IPV6, 7, 16)  # IPV6_CHECKSUM

    def syn(self, sport, dport, seq):
        # MSS option: a SYN without one gets a default MSS, fine either way.
        hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 6 << 4, 0x02, 65535, 0, 0)
        hdr += struct.pack("!BBH", 2, 4, 1460)
        if not self.v6:
            a = socket.inet_aton(self.addr)
            pseudo = a + a + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(hdr))
            c = csum(pseudo + hdr)
            hdr = hdr[:16] + struct.pack("!H", c) + hdr[18:]
        self.s.sendto(hdr, (self.addr, 0))

    def synacks(self, dport, timeout):
        """SYN-ACKs to `dport` seen within `timeout`: [(sport, seq, ack)]."""
        out = []
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.s], [], [], left)[0]:
                return out
            pkt = self.s.recv(65535)
            if not self.v6:
                pkt = pkt[(pkt[0] & 0xf) * 4:]
            sp, dp, seq, ack, _, flags = struct.unpack("!HHIIBB", pkt[:14])
            if dp == dport and flags & 0x12 == 0x12:
                out.append((sp, seq, ack))

    def wait_synacks(self, dport, n, timeout, seen):
        end = time.monotonic() + timeout
        while len(seen) < n and time.monotonic() < end:
            seen += self.synacks(dport, min(0.1, max(0, end - time.monotonic())))
        return seen


def fam_addr(args):
    return (socket.AF_INET6, V6) if args.v6 else (socket.AF_INET, V4)


def case_retrans(args):
    fam, addr = fam_addr(args)
    drop_raw_rsts()
    port = 9600
    a = listener(fam, addr, port, 0)
    b = listener(fam, addr, port + 1, 8)
    group(a, [b])
    raw = RawPeer(args.v6)
    sport, seq = RAW_PORTS[0], 1000000
    raw.syn(sport, port, seq)
    seen = raw.wait_synacks(sport, 1, 3 * args.tf, [])
    if not seen:
        raise Fail("no SYN-ACK for the first SYN")
    m = wait_for("the handshake to be counted", lambda: members()[port]["handshakes"] == 1 and members(), 3 * args.tf)
    print("# after the first SYN: %s" % m)
    # The member is full now, because of that handshake: the same SYN again.
    raw.syn(sport, port, seq)
    seen = raw.wait_synacks(sport, 2, 3 * args.tf, seen)
    m = members()
    print("# SYN-ACKs (sport, isn, ack): %s; members: %s" % (seen, m))
    isns = {s[1] for s in seen}
    if len(isns) != 1 or {s[0] for s in seen} != {port}:
        raise Fail("SYN-ACKs from %s with ISNs %s: want one ISN from port %d" % (
            {s[0] for s in seen}, isns, port))
    if len(seen) < 2:
        raise Fail("the retransmitted SYN was not answered")
    if redirects() or m[port + 1]["handshakes"]:
        raise Fail("the retransmitted SYN was redirected: %s" % m)


def connect(fam, addr, port, timeout, bind_port=0):
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if bind_port:
        c.bind((addr, bind_port))
    c.settimeout(timeout)
    c.connect((addr, port))
    return c


def tcp_states(v6):
    """{(local port, remote port): state} from /proc/net/tcp[6]."""
    out = {}
    with open("/proc/net/tcp6" if v6 else "/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            c = line.split()
            out[(int(c[1].split(":")[1], 16), int(c[2].split(":")[1], 16))] = int(c[3], 16)
    return out


def case_timewait(args):
    fam, addr = fam_addr(args)
    drop_raw_rsts()
    port, cport = 9610, 42000
    a = listener(fam, addr, port, 0)
    b = listener(fam, addr, port + 1, 8)
    group(a, [b])
    # A connection from cport, closed by the server first: TIME_WAIT there.
    c = connect(fam, addr, port, 3 * args.tf, cport)
    a.settimeout(3 * args.tf)
    conn, _ = a.accept()
    conn.close()
    c.settimeout(3 * args.tf)
    if c.recv(1) != b"":
        raise Fail("no FIN from the server")
    c.close()
    wait_for("TIME_WAIT on the server", lambda: tcp_states(args.v6).get((port, cport)) == 6, 3 * args.tf)
    # A handshake under way makes A full (backlog 0).
    raw = RawPeer(args.v6)
    raw.syn(RAW_PORTS[0], port, 5000)
    wait_for("A full", lambda: members()[port]["handshakes"] == 1, 3 * args.tf)
    # Again from cport: TIME_WAIT takes it (tcp_timewait_state_process) and
    # hands it to A, its own listener.
    try:
        c = connect(fam, addr, port, 3 * args.tf, cport)
    except OSError as e:
        raise Fail("reconnect from the TIME_WAIT 4-tuple: %s; members %s" % (e, members()))
    conn, peer = a.accept()
    print("# accepted on A from %s; members %s" % (peer, members()))
    if peer[1] != cport:
        raise Fail("A accepted %s, want port %d" % (peer, cport))
    if redirects():
        raise Fail("redirected: %s" % members())
    conn.close()
    c.close()


def serve(sock, tag, stop):
    """Accepts and answers each connection with `tag` until `stop`."""
    sock.settimeout(0.1)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except socket.timeout:
            continue
        try:
            conn.sendall(tag)
        except OSError:
            pass
        conn.close()


def serving(*socks):
    """Serves each of `socks` (answering with the tag B, C, ...) until set."""
    stop = threading.Event()
    for s, tag in zip(socks, (b"B", b"C")):
        threading.Thread(target=serve, args=(s, tag, stop), daemon=True).start()
    return stop


def clients(fam, addr, port, n, timeout):
    """n parallel clients: (served by, connected and not served, not connected)."""
    res = []
    lock = threading.Lock()

    def one():
        r = ("noconnect", None)
        try:
            c = connect(fam, addr, port, timeout)
            try:
                data = c.recv(64)
                r = ("served", data.decode()) if data else ("unserved", None)
            except socket.timeout:
                r = ("unserved", None)
            c.close()
        except OSError:
            pass
        with lock:
            res.append(r)

    ts = [threading.Thread(target=one) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return res


def overflow(args, port, stop, timeout):
    """One connection fills A (backlog 0, never accepts), then 5 clients
    dial A; returns what each client saw and the members' counters."""
    fam, addr = fam_addr(args)
    hold = connect(fam, addr, port, 3 * args.tf)
    wait_for("A full", lambda: members()[port]["queue"] == 1, 3 * args.tf)
    res = clients(fam, addr, port, 5, timeout)
    stop.set()
    m = members()
    print("# clients: %s; members %s" % (res, m))
    hold.close()
    return res, m


def all_served_by(res, tag):
    if [r for r in res if r != ("served", tag)]:
        raise Fail("not all served by " + tag)


def case_cookies2(args):
    fam, addr = fam_addr(args)
    sysctl("net.ipv4.tcp_syncookies", 2)
    port = 9620
    a = listener(fam, addr, port, 0)
    b = listener(fam, addr, port + 1, 8)
    group(a, [b])
    res, m = overflow(args, port, serving(b), 1.5 * args.tf)
    if any(r[0] == "unserved" for r in res):
        raise Fail("connected and never served: %d of %d" % (sum(r[0] == "unserved" for r in res), len(res)))
    if redirects():
        raise Fail("redirects counted with tcp_syncookies=2: %s" % m)


def case_reqfull(args):
    fam, addr = fam_addr(args)
    drop_raw_rsts()
    port = 9630
    a = listener(fam, addr, port, 0)
    b = listener(fam, addr, port + 1, 2)
    c = listener(fam, addr, port + 2, 8)
    group(a, [b, c])
    stop = serving(b, c)
    # B's request queue over its backlog: three handshakes nobody finishes.
    raw = RawPeer(args.v6)
    for i in range(3):
        raw.syn(RAW_PORTS[0] + i, port + 1, 7000 + i)
    wait_for("B's request queue full", lambda: members()[port + 1]["handshakes"] == 3, 3 * args.tf)
    res, m = overflow(args, port, stop, 3 * args.tf)
    all_served_by(res, "C")
    if m[port + 1]["in"] or m[port + 2]["in"] != 5:
        raise Fail("redirect counters: %s" % m)


def case_rewrite2(args):
    fam, addr = fam_addr(args)
    sysctl("net.ipv4.tcp_syncookies", 2)
    port = 9640
    a = listener(fam, addr, port, 0)
    b = listener(fam, addr, port + 1, 8)
    group(a, [b], F_REWRITE)
    res, m = overflow(args, port, serving(b), 3 * args.tf)
    all_served_by(res, "B")
    if m[port + 1]["in"] != 5:
        raise Fail("redirect counters: %s" % m)


def netstat():
    """TcpExt and Tcp counters of the namespace."""
    out = {}
    with open("/proc/net/netstat") as f:
        lines = f.readlines()
    with open("/proc/net/snmp") as f:
        lines += f.readlines()
    for h, v in zip(lines[::2], lines[1::2]):
        k = h.split()
        for name, val in zip(k[1:], v.split()[1:]):
            out[k[0] + name] = int(val)
    return out


def case_openloop(args):
    fam, addr = fam_addr(args)
    # Client ports cycle every `ports` connections; the server, closing
    # first, keeps each 4-tuple in TIME_WAIT for a minute.
    sysctl("net.ipv4.ip_local_port_range", "43000 %d" % (43000 + args.ports - 1))
    port = 9700
    a = listener(fam, addr, port, 8)
    b = listener(fam, addr, port + 1, 8)
    c = listener(fam, addr, port + 2, 8)
    group(a, [b, c])
    stop = serving(b, c)
    # A never accepts: its queue holds backlog + 1 connections, then it is
    # full for the whole run (those held are not part of the count).
    held = [connect(fam, addr, port, 3 * args.tf) for _ in range(9)]
    wait_for("A full", lambda: members()[port]["queue"] == 9, 3 * args.tf)
    before = netstat()
    pending = {}  # socket -> (start, connected)
    done = {"served": 0, "unserved": 0, "noconnect": 0}
    slow = 0
    poll = select.poll()
    start = time.monotonic()
    n = 0
    while n < args.count or pending:
        now = time.monotonic()
        while n < args.count and now >= start + n / args.rate:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((addr, port))
            pending[s.fileno()] = (s, now, False)
            poll.register(s, select.POLLOUT | select.POLLIN)
            n += 1
        for fd, ev in poll.poll(5):
            s, t0, conn = pending[fd]
            if not conn:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    done["noconnect"] += 1
                    poll.unregister(s)
                    del pending[fd]
                    s.close()
                    continue
                if time.monotonic() - t0 > 0.9:
                    slow += 1
                pending[fd] = (s, t0, True)
                poll.modify(s, select.POLLIN)
                continue
            try:
                data = s.recv(64)
            except OSError:
                data = b""
            done["served" if data else "unserved"] += 1
            poll.unregister(s)
            del pending[fd]
            s.close()
        now = time.monotonic()
        for fd, (s, t0, conn) in list(pending.items()):
            if now - t0 > args.timeout * args.tf:
                done["unserved" if conn else "noconnect"] += 1
                poll.unregister(s)
                del pending[fd]
                s.close()
    took = time.monotonic() - start
    stop.set()
    after = netstat()
    delta = {k: after[k] - before.get(k, 0) for k in (
        "TcpExt:ListenOverflows", "TcpExt:ListenDrops", "TcpExt:TCPSynRetrans",
        "TcpExt:TWRecycled", "Tcp:OutRsts", "Tcp:RetransSegs")}
    tw = sum(1 for st in tcp_states(args.v6).values() if st == 6)
    print("# %d connections at %d/s over %d client ports in %.1f s: %s, "
          "%d connected after > 0.9 s; TIME_WAIT now %d; %s; members %s" % (
              args.count, args.rate, args.ports, took, done, slow, tw, delta, members()))
    if done["served"] != args.count:
        raise Fail("lost %d of %d" % (args.count - done["served"], args.count))
    for h in held:
        h.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case", choices=["retrans", "timewait", "cookies2", "reqfull",
                                    "rewrite2", "openloop"])
    p.add_argument("--tf", type=float, default=1, help="time factor (debug kernel)")
    p.add_argument("--v6", action="store_true")
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--ports", type=int, default=200)
    p.add_argument("--timeout", type=float, default=5, help="per connection (times --tf)")
    args = p.parse_args()
    try:
        globals()["case_" + args.case](args)
    except Fail as e:
        print("# FAIL %s%s: %s" % (args.case, " (IPv6)" if args.v6 else "", e))
        sys.exit(1)


if __name__ == "__main__":
    main()
