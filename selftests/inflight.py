#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The connections in flight while the module goes (used by rmmod_load.sh).

  inflight.py client --addr A --port P --hold N --gone FILE --stop FILE
                     [--connect-ms MS] [--reply-ms MS] > LOG
      Opens N connections to A:P and keeps them open (they fill the stalled
      member's accept queue), then one connection after another until FILE
      --stop exists.  Each connection must either connect and read its
      server's whole reply, "member K\\n" (sgctl serve), or fail to connect
      within --connect-ms.  One JSON line per connection: {n, after, outcome,
      detail}; after: --gone existed when the connection started (the module
      was unloaded by then); outcome: held, served, connect_failed, lost
      (connected, no whole reply within --reply-ms) or corrupt (another reply).
  inflight.py verify --log LOG --hold N [--min-after K]
      Every held connection connected; no connection lost or corrupt; some
      served before the module went; at least K (default 2) started after,
      each of them failed to connect: the stalled member is full and nothing
      redirects any more, so the kernel drops the SYN.

The client makes no setsockopt or getsockopt call (a nonblocking socket,
connect, poll, getpeername, recv): under QEMU TCG such a call while rmmod
patches the module's ftrace sites can oops (README, Limits).
"""
import argparse, json, os, re, select, socket, sys, time

REPLY = re.compile(rb"member [0-9]+\n")


def connect(addr, port, ms):
    """A connected nonblocking socket, or None when it did not connect."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    err = s.connect_ex((addr, port))
    if err not in (0, 115):  # EINPROGRESS
        s.close()
        return None, os.strerror(err)
    p = select.poll()
    p.register(s, select.POLLOUT)
    if not p.poll(ms):
        s.close()
        return None, "connect timed out"
    try:
        s.getpeername()  # connected if and only if there is a peer
    except OSError as e:
        s.close()
        return None, str(e)
    return s, ""


def read_reply(s, ms):
    """The bytes read until a newline, EOF or the deadline; and whether EOF."""
    deadline = time.monotonic() + ms / 1000
    got = b""
    p = select.poll()
    p.register(s, select.POLLIN)
    while not got.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not p.poll(int(left * 1000) + 1):
            return got, False
        try:
            data = s.recv(64)
        except OSError:
            return got, True
        if not data:
            return got, True
        got += data
    return got, False


def client(args):
    held = []
    n = 0

    def log(outcome, detail, after):
        print(json.dumps({"n": n, "after": after, "outcome": outcome,
                          "detail": detail}), flush=True)

    for _ in range(args.hold):
        s, err = connect(args.addr, args.port, args.reply_ms)
        n += 1
        if s:
            held.append(s)
        log("held" if s else "connect_failed", err, False)
    while not os.path.exists(args.stop):
        after = os.path.exists(args.gone)
        s, err = connect(args.addr, args.port, args.connect_ms)
        n += 1
        if not s:
            log("connect_failed", err, after)
            continue
        got, eof = read_reply(s, args.reply_ms)
        s.close()
        if REPLY.fullmatch(got):
            log("served", got.decode().strip(), after)
        elif not got:
            log("lost", "connected, closed without a reply" if eof else
                "connected, no reply in %d ms" % args.reply_ms, after)
        else:
            log("corrupt", repr(got), after)
    for s in held:
        s.close()


def verify(args):
    with open(args.log) as f:
        conns = [json.loads(l) for l in f if l.startswith("{")]
    held = conns[:args.hold]
    rest = conns[args.hold:]
    before = [c for c in rest if not c["after"]]
    after = [c for c in rest if c["after"]]
    problems = []
    if len(held) != args.hold or any(c["outcome"] != "held" for c in held):
        problems.append("the stalled member's queue was not filled: %s" % held)
    problems += ["connection %d (%s the rmmod): %s: %s" % (
        c["n"], "after" if c["after"] else "before", c["outcome"], c["detail"])
        for c in rest if c["outcome"] in ("lost", "corrupt")]
    if not any(c["outcome"] == "served" for c in before):
        problems.append("no connection served while the module was loaded")
    if len(after) < args.min_after:
        problems.append("%d connections after the rmmod, want %d" % (
            len(after), args.min_after))
    problems += ["connection %d after the rmmod: %s (%s), want a failed connect" % (
        c["n"], c["outcome"], c["detail"])
        for c in after if c["outcome"] != "connect_failed"]
    count = {}
    for c in rest:
        count[c["outcome"]] = count.get(c["outcome"], 0) + 1
    print("# %d connections after the %d held: %s; %d started after the rmmod"
          % (len(rest), len(held), count, len(after)))
    for p in problems:
        print("#", p)
    sys.exit(1 if problems else 0)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    cp = sub.add_parser("client")
    cp.add_argument("--addr", default="127.0.0.1")
    cp.add_argument("--port", type=int, required=True)
    cp.add_argument("--hold", type=int, default=0)
    cp.add_argument("--gone", required=True)
    cp.add_argument("--stop", required=True)
    cp.add_argument("--connect-ms", type=int, default=300)
    cp.add_argument("--reply-ms", type=int, default=5000)
    vp = sub.add_parser("verify")
    vp.add_argument("--log", required=True)
    vp.add_argument("--hold", type=int, default=0)
    vp.add_argument("--min-after", type=int, default=2)
    args = p.parse_args()
    {"client": client, "verify": verify}[args.cmd](args)


if __name__ == "__main__":
    main()
