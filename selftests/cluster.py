#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The sockgroup family in several namespaces from one process (cluster.sh).

The kernel's YNL library (tools/net/ynl/lib, copied by `make test-progs`)
speaks the family from our spec; each namespace gets its own netlink socket,
opened after setns() into it, so one Python start serves a whole cluster
(starting Python once per request costs about a second under TCG).

  cluster.py YNL_DIR SPEC do NS OP JSON          one request, reply as JSON
  cluster.py YNL_DIR SPEC get NS OP JSON PATH     one value of the reply
                                                 (PATH: e.g. stats.rejected)
  cluster.py YNL_DIR SPEC wait NS PEER STATE MS  until peer PEER's state is
                                                 STATE (down|connecting|up)
  cluster.py YNL_DIR SPEC setup FILE             nodes and peers of FILE:
      [{"ns": NS, "node": {...}, "peers": [{...}, ...]}, ...]
  cluster.py YNL_DIR SPEC cycles N KO FILE NS PEER MS
                                                 N times: insmod KO, set up
                                                 FILE, wait for PEER up in
                                                 NS, rmmod
  cluster.py YNL_DIR SPEC serve                  the commands above from
      stdin, one a line, their words separated by tabs, and "close NS"
      (closes NS's socket: it would keep a deleted namespace alive); each
      answer is the command's output, then a line "= STATUS"
Binary attributes are hex strings, as with cli.py.
"""

import ctypes
import json
import os
import subprocess
import sys
import time

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_ynl = {}


def enter(ns):
    """Moves this process into network namespace NS (as `ip netns exec`)."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {ns}: {os.strerror(err)}")
    finally:
        os.close(fd)


def family(ns):
    """A YNL socket in namespace NS (opened there once; the process goes
    back to its own namespace, which then holds no other)."""
    if ns not in _ynl:
        home = os.open("/proc/self/ns/net", os.O_RDONLY)
        try:
            enter(ns)
            _ynl[ns] = YnlFamily(SPEC, schema="")
        finally:
            back = _libc.setns(home, CLONE_NEWNET)
            os.close(home)
        if back != 0:
            raise OSError(ctypes.get_errno(), "setns back to the process's namespace")
    return _ynl[ns]


def state(ns, peer):
    try:
        return family(ns).do("peer-get", {"id": peer}).get("state")
    except Exception:  # noqa: BLE001 - a peer not configured yet, or gone
        return None


def serve():
    """Commands from stdin (see above): one Python start for a whole
    script, where a start per request costs seconds under TCG."""
    for line in sys.stdin:
        words = line.rstrip("\n").split("\t")
        try:
            if words[0] == "close":
                y = _ynl.pop(words[1], None)
                if y:
                    y.sock.close()
                rc = 0
            else:
                rc = run(words[0], words[1:])
        except Exception as e:  # noqa: BLE001 - the caller sees it, and goes on
            print(f"{words[0]}: {type(e).__name__}: {e}")
            rc = 1
        print(f"= {rc}", flush=True)
    return 0


def main():
    if sys.argv[3] == "serve":
        return serve()
    return run(sys.argv[3], sys.argv[4:])


def run(cmd, args):
    if cmd == "do":
        ns, op, req = args
        print(json.dumps(family(ns).do(op, json.loads(req)), default=bytes.hex))
    elif cmd == "get":
        ns, op, req, path = args
        v = family(ns).do(op, json.loads(req))
        for k in path.split("."):
            v = v[k]
        print(v)
    elif cmd == "wait":
        ns, peer, want, ms = args[0], int(args[1]), args[2], int(args[3])
        end = time.monotonic() + ms / 1000
        while state(ns, peer) != want:
            if time.monotonic() > end:
                print(f"{ns}: peer {peer} is {state(ns, peer)}, not {want}")
                return 1
            time.sleep(0.02)
    elif cmd == "setup":
        with open(args[0]) as f:
            nodes = json.load(f)
        for n in nodes:
            ynl = family(n["ns"])
            ynl.do("node-set", n["node"])
            for p in n.get("peers", []):
                ynl.do("peer-new", p)
    elif cmd == "cycles":
        # insmod, the nodes of FILE, wait until NS sees PEER up, rmmod: N
        # times in one process (a Python start per step is seconds in TCG).
        n, ko, path, ns, peer, ms = args
        for i in range(int(n)):
            subprocess.run(["insmod", ko], check=True)
            _ynl.clear()
            ynl_lib.genl_family_name_to_id = None
            with open(path) as f:
                for node in json.load(f):
                    y = family(node["ns"])
                    y.do("node-set", node["node"])
                    for p in node.get("peers", []):
                        y.do("peer-new", p)
            end = time.monotonic() + int(ms) / 1000
            while state(ns, int(peer)) != "up":
                if time.monotonic() > end:
                    print(f"cycle {i + 1}: {ns}: peer {peer} not up")
                    return 1
                time.sleep(0.02)
            for y in _ynl.values():
                y.sock.close()
            _ynl.clear()
            subprocess.run(["rmmod", "sockgroup"], check=True)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])
    from lib import YnlFamily  # noqa: E402 - from YNL_DIR
    from lib import ynl as ynl_lib  # noqa: E402

    SPEC = sys.argv[2]
    sys.exit(main())
