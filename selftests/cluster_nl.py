#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# The sockgroup generic netlink family over raw sockets (no YNL, no extra
# packages): what a client that does not follow the spec sends.
#
#   cluster_nl.py invalid   every operation with missing or malformed
#                           attributes: an errno, an extack message, and the
#                           configuration unchanged (dumped before and after)
#   cluster_nl.py limits    64 peers, 256 services, 1024 rules: one more is
#                           ENOSPC and changes nothing; dumps of several parts
#   cluster_nl.py eperm     as uid 65534 (no CAP_NET_ADMIN): every operation
#                           answers EPERM
#   cluster_nl.py events    the events group resolves and can be joined
#   cluster_nl.py wait-event CMD PEER_ID TIMEOUT_S
#                           joins the events group, prints "ready", waits for
#                           event CMD about PEER_ID
#   cluster_nl.py dump-ids OBJECT  the ids of a dump (peer, service, rule)
#   cluster_nl.py node-id   this namespace's node id, or "error ERRNO"
#   cluster_nl.py setup     node 1, peer 2, service 1, rule 1 (raw requests)
#
# Prints TAP lines for the subtests (the caller counts them) and exits 1
# when any failed.

import errno
import os
import select
import socket
import struct
import sys

NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLM_F_DUMP = 0x300
NLM_F_ACK_TLVS = 0x200
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSGERR_ATTR_MSG = 1
NLMSGERR_ATTR_MISS_TYPE = 5
NLA_F_NESTED = 0x8000
GENL_ID_CTRL = 16
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
CTRL_ATTR_MCAST_GROUPS = 7
CTRL_ATTR_MCAST_GRP_NAME = 1
CTRL_ATTR_MCAST_GRP_ID = 2

# include/uapi/linux/sockgroup_genl.h
(NODE_SET, NODE_GET, NODE_DEL, PEER_NEW, PEER_DEL, PEER_GET, SERVICE_NEW,
 SERVICE_DEL, SERVICE_GET, RULE_NEW, RULE_DEL, RULE_GET, STATS_GET,
 PEER_UP_NTF, PEER_DOWN_NTF, KEY_REJECTED_NTF) = range(1, 17)
NODE_ID, NODE_CTL_ADDR, NODE_CTL_PORT, NODE_FWD_ADDR, NODE_FWD_PORT, NODE_HB = range(1, 7)
PEER_ID, PEER_ADDR, PEER_CTL_PORT, PEER_KEY, PEER_STATE, PEER_STATS = range(1, 7)
SVC_ID, SVC_ADDR, SVC_PORT, SVC_PROTO, SVC_ROLE = range(1, 6)
MATCH_TYPE, MATCH_VALUE = 1, 2
TARGET_TYPE, TARGET_PEER, TARGET_PEERS = 1, 2, 3
TARGET_STATS_PEER, TARGET_STATS_COUNT = 1, 2
RULE_STATS_MATCHED, RULE_STATS_NONE_UP, RULE_STATS_TARGET = 1, 2, 3
RULE_ID, RULE_SERVICE, RULE_PRIO, RULE_MATCH, RULE_TARGET, RULE_STATS = range(1, 7)
(M_ANY, M_PATH_PREFIX, M_HOST, M_COOKIE, M_SNI, M_HOST_SUFFIX, M_COOKIE_VALUE,
 M_SESSION_ID) = range(8)
T_LOCAL, T_PEER, T_HASH = range(3)


def attr(t, payload):
    hdr = struct.pack("=HH", 4 + len(payload), t)
    return hdr + payload + b"\0" * (-len(payload) % 4)


def u8(t, v):
    return attr(t, struct.pack("=B", v))


def u16(t, v):
    return attr(t, struct.pack("=H", v))


def u32(t, v):
    return attr(t, struct.pack("=I", v))


def nest(t, *attrs, flag=True):
    return attr(t | (NLA_F_NESTED if flag else 0), b"".join(attrs))


def ip4(s):
    return socket.inet_pton(socket.AF_INET, s)


def parse_attrs(b):
    out = []
    while len(b) >= 4:
        ln, t = struct.unpack("=HH", b[:4])
        if ln < 4:
            break
        out.append((t & 0x3FFF, b[4:ln]))
        b = b[(ln + 3) & ~3:]
    return out


class Reply:
    def __init__(self):
        self.error = 0
        self.msg = None
        self.miss_type = None
        self.msgs = []  # (cmd, attribute bytes)


class Genl:
    def __init__(self, name=b"sockgroup"):
        self.sk = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        self.sk.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        self.sk.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self.sk.bind((0, 0))
        self.seq = 0
        self.family = GENL_ID_CTRL
        r = self.request(CTRL_CMD_GETFAMILY, attr(CTRL_ATTR_FAMILY_NAME, name + b"\0"))
        if r.error:
            raise OSError(r.error, "family %s: %s" % (name, os.strerror(r.error)))
        self.groups = {}
        for t, v in parse_attrs(r.msgs[0][1]):
            if t == CTRL_ATTR_FAMILY_ID:
                self.family = struct.unpack("=H", v)[0]
            elif t == CTRL_ATTR_MCAST_GROUPS:
                for _, g in parse_attrs(v):
                    d = dict(parse_attrs(g))
                    gname = d[CTRL_ATTR_MCAST_GRP_NAME].rstrip(b"\0").decode()
                    self.groups[gname] = struct.unpack("=I", d[CTRL_ATTR_MCAST_GRP_ID])[0]

    def request(self, cmd, attrs=b"", dump=False):
        self.seq += 1
        # A dump ends with NLMSG_DONE (its error, if any, in it); a do with
        # its ack.
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        payload = struct.pack("=BBH", cmd, 1, 0) + attrs
        msg = struct.pack("=IHHII", 16 + len(payload), self.family, flags, self.seq, 0) + payload
        self.sk.send(msg)
        r = Reply()
        while True:
            data = self.sk.recv(1 << 20)
            while len(data) >= 16:
                ln, typ, fl, seq, _ = struct.unpack("=IHHII", data[:16])
                body = data[16:ln]
                data = data[(ln + 3) & ~3:]
                if seq != self.seq:
                    continue
                if typ == NLMSG_ERROR:
                    r.error = -struct.unpack("=i", body[:4])[0]
                    if fl & NLM_F_ACK_TLVS:
                        # NETLINK_CAP_ACK: only the request's header follows.
                        for t, v in parse_attrs(body[4 + 16:]):
                            if t == NLMSGERR_ATTR_MSG:
                                r.msg = v.rstrip(b"\0").decode()
                            elif t == NLMSGERR_ATTR_MISS_TYPE:
                                r.miss_type = struct.unpack("=I", v)[0]
                    return r
                if typ == NLMSG_DONE:
                    r.error = -struct.unpack("=i", body[:4])[0] if len(body) >= 4 else 0
                    return r
                r.msgs.append((body[0], body[4:]))

    def join(self, group):
        self.sk.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, self.groups[group])


results = {"n": 0, "failed": 0}


def ok(cond, name, detail=""):
    results["n"] += 1
    if cond:
        print("ok %d - %s" % (results["n"], name))
    else:
        results["failed"] += 1
        print("not ok %d - %s%s" % (results["n"], name, (": " + detail) if detail else ""))
    sys.stdout.flush()
    return cond


# What the control channels change by themselves, not the configuration:
# the membership in node-get, a peer's state and counters.
NODE_GENERATION, NODE_MEMBERS = 7, 8
LIVE = {NODE_GET: {NODE_GENERATION, NODE_MEMBERS}, PEER_GET: {PEER_STATE, PEER_STATS}}


def snapshot(g):
    """The whole configuration, as the kernel reports it."""
    parts = []
    for cmd, dump in ((NODE_GET, False), (PEER_GET, True), (SERVICE_GET, True), (RULE_GET, True)):
        r = g.request(cmd, dump=dump)
        live = LIVE.get(cmd, set())
        msgs = [[a for a in parse_attrs(m[1]) if a[0] not in live] for m in r.msgs]
        parts.append((cmd, r.error, msgs))
    return parts


KEY = bytes(range(32))


def setup(g):
    steps = [
        (NODE_SET, u32(NODE_ID, 1) + attr(NODE_CTL_ADDR, ip4("10.0.0.1")) + u16(NODE_CTL_PORT, 7000)),
        (PEER_NEW, u32(PEER_ID, 2) + attr(PEER_ADDR, ip4("10.0.0.2")) + attr(PEER_KEY, KEY)),
        (SERVICE_NEW, u32(SVC_ID, 1) + attr(SVC_ADDR, ip4("10.1.0.1")) + u16(SVC_PORT, 80)),
        (RULE_NEW, u32(RULE_ID, 1) + u32(RULE_SERVICE, 1)
         + nest(RULE_MATCH, u32(MATCH_TYPE, 2), attr(MATCH_VALUE, b"example.com\0"))
         + nest(RULE_TARGET, u32(TARGET_TYPE, 1), u32(TARGET_PEER, 2))),
    ]
    for cmd, a in steps:
        r = g.request(cmd, a)
        if r.error:
            raise OSError(r.error, "setup cmd %d: %s (%s)" % (cmd, os.strerror(r.error), r.msg))


def peer(pid, addr, key=KEY):
    return u32(PEER_ID, pid) + attr(PEER_ADDR, addr) + attr(PEER_KEY, key)


def mt(t, value=None):
    return nest(RULE_MATCH, u32(MATCH_TYPE, t), *([attr(MATCH_VALUE, value + b"\0")] if value is not None else []))


def hash_target(*peers):
    return nest(RULE_TARGET, u32(TARGET_TYPE, T_HASH), *[u32(TARGET_PEERS, p) for p in peers])


LOCAL_T = nest(RULE_TARGET, u32(TARGET_TYPE, T_LOCAL))


def rule(rid, svc=1, match=None, target=None):
    a = u32(RULE_ID, rid) + u32(RULE_SERVICE, svc)
    if match is not None:
        a += match
    if target is not None:
        a += target
    return a


E = errno
# (name, command, attributes, errno, missing attribute type or None)
INVALID = [
    ("node-set ctl-addr of 5 bytes", NODE_SET, attr(NODE_CTL_ADDR, b"\1" * 5), E.EINVAL, None),
    ("node-set ctl-addr of 3 bytes (policy)", NODE_SET, attr(NODE_CTL_ADDR, b"\1" * 3), E.ERANGE, None),
    ("node-set fwd-addr of 8 bytes", NODE_SET, attr(NODE_FWD_ADDR, b"\1" * 8), E.EINVAL, None),
    ("node-set fwd-addr other than the ctl-addr", NODE_SET, attr(NODE_FWD_ADDR, ip4("10.0.0.9")) + u16(NODE_FWD_PORT, 7001), E.EINVAL, None),
    ("node-set ctl-addr and fwd-addr apart", NODE_SET, attr(NODE_CTL_ADDR, ip4("10.0.0.7")) + attr(NODE_FWD_ADDR, ip4("10.0.0.9")), E.EINVAL, None),
    ("node-set hb-interval 5 (policy range)", NODE_SET, u32(NODE_HB, 5), E.ERANGE, None),
    ("node-set hb-interval 60001 (policy range)", NODE_SET, u32(NODE_HB, 60001), E.ERANGE, None),
    ("node-set id 0 (policy min)", NODE_SET, u32(NODE_ID, 0), E.ERANGE, None),
    ("node-set id of a peer", NODE_SET, u32(NODE_ID, 2), E.EEXIST, None),
    ("node-set ctl-port of 4 bytes", NODE_SET, u32(NODE_CTL_PORT, 7001), E.EINVAL, None),
    ("node-set ctl-port 0 (policy min)", NODE_SET, u16(NODE_CTL_PORT, 0), E.ERANGE, None),
    ("node-set unknown attribute", NODE_SET, u32(11, 1), E.EINVAL, None),
    ("peer-new without id", PEER_NEW, attr(PEER_ADDR, ip4("10.0.0.3")) + attr(PEER_KEY, KEY), E.EINVAL, PEER_ID),
    ("peer-new without addr", PEER_NEW, u32(PEER_ID, 3) + attr(PEER_KEY, KEY), E.EINVAL, PEER_ADDR),
    ("peer-new without key", PEER_NEW, u32(PEER_ID, 3) + attr(PEER_ADDR, ip4("10.0.0.3")), E.EINVAL, PEER_KEY),
    ("peer-new key of 15 bytes (policy)", PEER_NEW, peer(3, ip4("10.0.0.3"), KEY[:15]), E.ERANGE, None),
    ("peer-new key of 65 bytes", PEER_NEW, peer(3, ip4("10.0.0.3"), bytes(65)), E.EINVAL, None),
    ("peer-new addr of 8 bytes", PEER_NEW, peer(3, b"\1" * 8), E.EINVAL, None),
    ("peer-new id of this node", PEER_NEW, peer(1, ip4("10.0.0.3")), E.EINVAL, None),
    ("peer-new existing id", PEER_NEW, peer(2, ip4("10.0.0.3")), E.EEXIST, None),
    ("peer-new existing addr", PEER_NEW, peer(3, ip4("10.0.0.2")), E.EEXIST, None),
    ("peer-del without id", PEER_DEL, b"", E.EINVAL, PEER_ID),
    ("peer-del unknown id", PEER_DEL, u32(PEER_ID, 9), E.ENOENT, None),
    ("peer-del of a rule's target", PEER_DEL, u32(PEER_ID, 2), E.EBUSY, None),
    ("peer-get without id", PEER_GET, b"", E.EINVAL, PEER_ID),
    ("peer-get unknown id", PEER_GET, u32(PEER_ID, 9), E.ENOENT, None),
    ("service-new without port", SERVICE_NEW, u32(SVC_ID, 2) + attr(SVC_ADDR, ip4("10.1.0.2")), E.EINVAL, SVC_PORT),
    ("service-new port 0 (policy)", SERVICE_NEW, u32(SVC_ID, 2) + attr(SVC_ADDR, ip4("10.1.0.2")) + u16(SVC_PORT, 0), E.ERANGE, None),
    ("service-new proto 1", SERVICE_NEW, u32(SVC_ID, 2) + attr(SVC_ADDR, ip4("10.1.0.2")) + u16(SVC_PORT, 80) + u8(SVC_PROTO, 1), E.EINVAL, None),
    ("service-new role 7 (policy max)", SERVICE_NEW, u32(SVC_ID, 2) + attr(SVC_ADDR, ip4("10.1.0.2")) + u16(SVC_PORT, 80) + u32(SVC_ROLE, 7), E.ERANGE, None),
    ("service-new existing id", SERVICE_NEW, u32(SVC_ID, 1) + attr(SVC_ADDR, ip4("10.1.0.2")) + u16(SVC_PORT, 80), E.EEXIST, None),
    ("service-new existing address", SERVICE_NEW, u32(SVC_ID, 2) + attr(SVC_ADDR, ip4("10.1.0.1")) + u16(SVC_PORT, 80), E.EEXIST, None),
    ("service-del unknown id", SERVICE_DEL, u32(SVC_ID, 9), E.ENOENT, None),
    ("service-get unknown id", SERVICE_GET, u32(SVC_ID, 9), E.ENOENT, None),
    ("rule-new without target", RULE_NEW, rule(2), E.EINVAL, RULE_TARGET),
    ("rule-new without service", RULE_NEW, u32(RULE_ID, 2) + nest(RULE_TARGET, u32(TARGET_TYPE, 0)), E.EINVAL, RULE_SERVICE),
    ("rule-new unknown service", RULE_NEW, rule(2, 9, target=nest(RULE_TARGET, u32(TARGET_TYPE, 0))), E.ENOENT, None),
    ("rule-new unknown target peer", RULE_NEW, rule(2, target=nest(RULE_TARGET, u32(TARGET_TYPE, 1), u32(TARGET_PEER, 9))), E.ENOENT, None),
    ("rule-new target without type", RULE_NEW, rule(2, target=nest(RULE_TARGET, u32(TARGET_PEER, 2))), E.EINVAL, None),
    ("rule-new target type 3 (policy max)", RULE_NEW, rule(2, target=nest(RULE_TARGET, u32(TARGET_TYPE, 3))), E.ERANGE, None),
    ("rule-new target without NLA_F_NESTED", RULE_NEW, rule(2, target=nest(RULE_TARGET, u32(TARGET_TYPE, 0), flag=False)), E.EINVAL, None),
    ("rule-new match type 9 (policy max)", RULE_NEW, rule(2, match=nest(RULE_MATCH, u32(MATCH_TYPE, 9)), target=nest(RULE_TARGET, u32(TARGET_TYPE, 0))), E.ERANGE, None),
    ("rule-new match host without value", RULE_NEW, rule(2, match=nest(RULE_MATCH, u32(MATCH_TYPE, 2)), target=nest(RULE_TARGET, u32(TARGET_TYPE, 0))), E.EINVAL, None),
    ("rule-new match value of 256 bytes (policy)", RULE_NEW, rule(2, match=nest(RULE_MATCH, u32(MATCH_TYPE, 2), attr(MATCH_VALUE, b"a" * 256 + b"\0")), target=nest(RULE_TARGET, u32(TARGET_TYPE, 0))), E.EINVAL, None),
    ("rule-new match value not NUL-terminated (policy)", RULE_NEW, rule(2, match=nest(RULE_MATCH, u32(MATCH_TYPE, 2), attr(MATCH_VALUE, b"abcd")), target=nest(RULE_TARGET, u32(TARGET_TYPE, 0))), E.EINVAL, None),
    ("rule-new local target naming a peer", RULE_NEW, rule(2, target=nest(RULE_TARGET, u32(TARGET_TYPE, 0), u32(TARGET_PEER, 2))), E.EINVAL, None),
    ("rule-new existing id", RULE_NEW, rule(1, target=nest(RULE_TARGET, u32(TARGET_TYPE, 0))), E.EEXIST, None),
    # The match values and hash targets of part 2 (rule-new's own checks).
    ("rule-new session-id with a value", RULE_NEW, rule(2, match=mt(M_SESSION_ID, b"x"), target=LOCAL_T), E.EINVAL, None),
    ("rule-new path-prefix without /", RULE_NEW, rule(2, match=mt(M_PATH_PREFIX, b"api"), target=LOCAL_T), E.EINVAL, None),
    ("rule-new host-suffix with a leading dot", RULE_NEW, rule(2, match=mt(M_HOST_SUFFIX, b".example.com"), target=LOCAL_T), E.EINVAL, None),
    ("rule-new cookie-value without =", RULE_NEW, rule(2, match=mt(M_COOKIE_VALUE, b"SID"), target=LOCAL_T), E.EINVAL, None),
    ("rule-new cookie name with ;", RULE_NEW, rule(2, match=mt(M_COOKIE, b"S;D"), target=LOCAL_T), E.EINVAL, None),
    ("rule-new hash without peers", RULE_NEW, rule(2, match=mt(M_COOKIE, b"SID"), target=hash_target()), E.EINVAL, None),
    ("rule-new hash of 17 peers", RULE_NEW, rule(2, match=mt(M_COOKIE, b"SID"), target=hash_target(*([2] * 17))), E.E2BIG, None),
    ("rule-new hash on a host match", RULE_NEW, rule(2, match=mt(M_HOST, b"a.b"), target=hash_target(2)), E.EINVAL, None),
    ("rule-new hash with an unknown peer", RULE_NEW, rule(2, match=mt(M_COOKIE, b"SID"), target=hash_target(2, 9)), E.ENOENT, None),
    ("rule-new hash with this node twice (0 and 1)", RULE_NEW, rule(2, match=mt(M_SESSION_ID), target=hash_target(0, 2, 1)), E.EINVAL, None),
    ("rule-new hash naming a peer", RULE_NEW, rule(2, match=mt(M_COOKIE, b"SID"), target=nest(RULE_TARGET, u32(TARGET_TYPE, T_HASH), u32(TARGET_PEER, 2))), E.EINVAL, None),
    ("rule-new peer target with peers", RULE_NEW, rule(2, target=nest(RULE_TARGET, u32(TARGET_TYPE, T_PEER), u32(TARGET_PEERS, 2))), E.EINVAL, None),
    ("rule-del unknown id", RULE_DEL, u32(RULE_ID, 9), E.ENOENT, None),
    ("rule-get unknown id", RULE_GET, u32(RULE_ID, 9), E.ENOENT, None),
    ("unknown command 99", 99, b"", E.EOPNOTSUPP, None),
]


def check_invalid(g, cases):
    before = snapshot(g)
    for name, cmd, attrs, want, miss in cases:
        r = g.request(cmd, attrs)
        good = r.error == want and (r.msg or cmd == 99) and (miss is None or r.miss_type == miss)
        ok(good, name, "errno %s (want %s), extack %r, missing type %r (want %r)" % (
            errno.errorcode.get(r.error, r.error), errno.errorcode[want], r.msg, r.miss_type, miss))
        after = snapshot(g)
        ok(after == before, name + ": configuration unchanged")


def rule_stats(d):
    """(matched, none-up, [(peer, count)]) of a rule-get reply's attributes."""
    s = parse_attrs(d[RULE_STATS])
    one = dict(s)
    targets = []
    for t, v in s:
        if t == RULE_STATS_TARGET:
            c = dict(parse_attrs(v))
            targets.append((struct.unpack("=I", c[TARGET_STATS_PEER])[0],
                            struct.unpack("=Q", c[TARGET_STATS_COUNT])[0]))
    return (struct.unpack("=Q", one[RULE_STATS_MATCHED])[0],
            struct.unpack("=Q", one[RULE_STATS_NONE_UP])[0], targets)


def check_new_rules(g):
    """The match types and the hash target of part 2 are taken and dumped
    as sent, with zeroed counters per target; a peer a hash names stays."""
    new = [
        (2, mt(M_COOKIE, b"SID"), hash_target(0, 2)),
        (3, mt(M_HOST_SUFFIX, b"example.com"), LOCAL_T),
        (4, mt(M_COOKIE_VALUE, b"SID=abc"), nest(RULE_TARGET, u32(TARGET_TYPE, T_PEER), u32(TARGET_PEER, 2))),
        (5, mt(M_SESSION_ID), hash_target(2, 1)),
    ]
    for rid, m, t in new:
        r = g.request(RULE_NEW, rule(rid, match=m, target=t))
        ok(r.error == 0, "rule-new %d of part 2" % rid, "errno %r %r" % (r.error, r.msg))
    want = {
        2: (M_COOKIE, b"SID\0", [0, 2], [(0, 0), (2, 0)]),
        3: (M_HOST_SUFFIX, b"example.com\0", [], [(0, 0)]),
        4: (M_COOKIE_VALUE, b"SID=abc\0", [], [(2, 0)]),
        5: (M_SESSION_ID, None, [2, 1], [(2, 0), (1, 0)]),
    }
    for rid, (mtype, value, peers, targets) in want.items():
        msgs = g.request(RULE_GET, u32(RULE_ID, rid)).msgs
        d = dict(parse_attrs(msgs[0][1])) if msgs else {}
        m = dict(parse_attrs(d.get(RULE_MATCH, b"")))
        got_peers = [struct.unpack("=I", v)[0] for t, v in parse_attrs(d.get(RULE_TARGET, b"")) if t == TARGET_PEERS]
        got = (struct.unpack("=I", m[MATCH_TYPE])[0] if MATCH_TYPE in m else None, m.get(MATCH_VALUE), got_peers,
               rule_stats(d) if RULE_STATS in d else None)
        ok(got == (mtype, value, peers, (0, 0, targets)), "rule-get %d: match, peers and counters" % rid, repr(got))
    for rid in (1, 4):
        ok(g.request(RULE_DEL, u32(RULE_ID, rid)).error == 0, "rule-del %d" % rid)
    r = g.request(PEER_DEL, u32(PEER_ID, 2))
    ok(r.error == E.EBUSY and r.msg, "peer-del of a peer of a hash target: EBUSY", "errno %r %r" % (r.error, r.msg))


def cmd_invalid():
    g = Genl()
    # Without a node: everything that needs one says so.
    for name, cmd, attrs in [
        ("node-get without a node", NODE_GET, b""),
        ("node-del without a node", NODE_DEL, b""),
        ("peer-new without a node", PEER_NEW, peer(2, ip4("10.0.0.2"))),
        ("service-new without a node", SERVICE_NEW, u32(SVC_ID, 1) + attr(SVC_ADDR, ip4("10.1.0.1")) + u16(SVC_PORT, 80)),
        ("rule-new without a node", RULE_NEW, rule(1, target=nest(RULE_TARGET, u32(TARGET_TYPE, 0)))),
    ]:
        r = g.request(cmd, attrs)
        ok(r.error == E.ENOENT and r.msg, name, "errno %r extack %r" % (r.error, r.msg))
    for name, attrs, miss in [
        ("node-set (new) without id", attr(NODE_CTL_ADDR, ip4("10.0.0.1")) + u16(NODE_CTL_PORT, 7000), NODE_ID),
        ("node-set (new) without ctl-addr", u32(NODE_ID, 1) + u16(NODE_CTL_PORT, 7000), NODE_CTL_ADDR),
        ("node-set (new) without ctl-port", u32(NODE_ID, 1) + attr(NODE_CTL_ADDR, ip4("10.0.0.1")), NODE_CTL_PORT),
    ]:
        r = g.request(NODE_SET, attrs)
        ok(r.error == E.EINVAL and r.msg and r.miss_type == miss, name,
           "errno %r extack %r missing %r" % (r.error, r.msg, r.miss_type))
    ok(g.request(NODE_GET).error == E.ENOENT, "still no node after the failed node-set")
    setup(g)
    check_invalid(g, INVALID)
    # A valid change goes through (the checks above can tell).
    r = g.request(NODE_SET, u32(NODE_HB, 500))
    ok(r.error == 0, "node-set hb-interval 500", "errno %r %r" % (r.error, r.msg))
    d = dict(parse_attrs(g.request(NODE_GET).msgs[0][1]))
    ok(struct.unpack("=I", d[NODE_HB])[0] == 500 and struct.unpack("=I", d[NODE_ID])[0] == 1,
       "node-get reports the change and keeps the rest")
    check_new_rules(g)
    # service-del takes its rules along; then peer 2 can go.
    ok(g.request(SERVICE_DEL, u32(SVC_ID, 1)).error == 0, "service-del 1")
    ok(g.request(RULE_GET, dump=True).msgs == [], "its rule went with it")
    ok(g.request(PEER_DEL, u32(PEER_ID, 2)).error == 0, "peer-del 2 (no rule targets it now)")
    ok(g.request(NODE_DEL).error == 0, "node-del")
    ok(all(not m for _, _, m in snapshot(g)), "nothing left after node-del")
    return results["failed"] == 0


def cmd_limits():
    g = Genl()
    setup(g)
    for i in range(3, 66):
        r = g.request(PEER_NEW, peer(i, struct.pack("!I", 0x0A000000 + i)))
        if r.error:
            break
    ok(r.error == 0, "63 more peers (64 in all)", "errno %r %r" % (r.error, r.msg))
    before = snapshot(g)
    r = g.request(PEER_NEW, peer(100, ip4("10.9.9.9")))
    ok(r.error == E.ENOSPC and r.msg, "peer 65: ENOSPC with a message", "errno %r %r" % (r.error, r.msg))
    ok(snapshot(g) == before, "peer 65: configuration unchanged")
    for i in range(2, 257):
        r = g.request(SERVICE_NEW, u32(SVC_ID, i) + attr(SVC_ADDR, ip4("10.1.0.2")) + u16(SVC_PORT, i))
        if r.error:
            break
    ok(r.error == 0, "255 more services (256 in all)", "errno %r %r" % (r.error, r.msg))
    r = g.request(SERVICE_NEW, u32(SVC_ID, 999) + attr(SVC_ADDR, ip4("10.1.0.9")) + u16(SVC_PORT, 1))
    ok(r.error == E.ENOSPC and r.msg, "service 257: ENOSPC with a message", "errno %r %r" % (r.error, r.msg))
    for i in range(2, 1025):
        r = g.request(RULE_NEW, rule(i, svc=1 + i % 256, match=nest(RULE_MATCH, u32(MATCH_TYPE, 1), attr(MATCH_VALUE, b"/path/%d\0" % i)),
                                     target=nest(RULE_TARGET, u32(TARGET_TYPE, 1), u32(TARGET_PEER, 2 + i % 64))))
        if r.error:
            break
    ok(r.error == 0, "1023 more rules (1024 in all)", "errno %r %r" % (r.error, r.msg))
    before = snapshot(g)
    r = g.request(RULE_NEW, rule(5000, target=nest(RULE_TARGET, u32(TARGET_TYPE, 0))))
    ok(r.error == E.ENOSPC and r.msg, "rule 1025: ENOSPC with a message", "errno %r %r" % (r.error, r.msg))
    ok(snapshot(g) == before, "rule 1025: configuration unchanged")
    # Dumps of several parts: every id once, in order.
    for cmd, key, n in ((PEER_GET, PEER_ID, 64), (SERVICE_GET, SVC_ID, 256), (RULE_GET, RULE_ID, 1024)):
        ids = [struct.unpack("=I", dict(parse_attrs(m[1]))[key])[0] for m in g.request(cmd, dump=True).msgs]
        ok(len(ids) == n and ids == sorted(set(ids)), "dump of %d: every id once, in order" % n,
           "%d ids" % len(ids))
    # Rule values come back as sent.
    d = dict(parse_attrs(g.request(RULE_GET, u32(RULE_ID, 777)).msgs[0][1]))
    m = dict(parse_attrs(d[RULE_MATCH]))
    ok(m[MATCH_VALUE] == b"/path/777\0", "rule-get 777: match value as sent", repr(m.get(MATCH_VALUE)))
    return results["failed"] == 0


def cmd_eperm():
    ops = [(c, b"") for c in range(NODE_SET, STATS_GET + 1)]
    ops += [(PEER_NEW, peer(3, ip4("10.0.0.3"))), (NODE_SET, u32(NODE_HB, 300))]
    pid = os.fork()
    if pid == 0:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        g = Genl()
        for cmd, a in ops:
            r = g.request(cmd, a)
            ok(r.error == E.EPERM, "uid 65534: command %d answers EPERM" % cmd, "errno %r" % r.error)
        for cmd in (PEER_GET, SERVICE_GET, RULE_GET):
            r = g.request(cmd, dump=True)
            ok(r.error == E.EPERM, "uid 65534: dump of command %d answers EPERM" % cmd, "errno %r" % r.error)
        sys.stdout.flush()
        os._exit(0 if results["failed"] == 0 else 1)
    _, status = os.waitpid(pid, 0)
    return status == 0


def cmd_events():
    g = Genl()
    ok("events" in g.groups, "the family has the multicast group events", repr(g.groups))
    try:
        g.join("events")
        ok(True, "joined the events group")
    except OSError as e:
        ok(False, "joined the events group", str(e))
    return results["failed"] == 0


def cmd_wait_event(cmd, peer_id, timeout):
    g = Genl()
    g.join("events")
    print("ready")
    sys.stdout.flush()
    while True:
        rd, _, _ = select.select([g.sk], [], [], timeout)
        if not rd:
            return False
        data = g.sk.recv(1 << 16)
        while len(data) >= 16:
            ln, typ, _, _, _ = struct.unpack("=IHHII", data[:16])
            body = data[16:ln]
            data = data[(ln + 3) & ~3:]
            if typ == g.family and body[0] == cmd:
                d = dict(parse_attrs(body[4:]))
                if struct.unpack("=I", d[PEER_ID])[0] == peer_id:
                    print("event %d peer %d addr %s" % (cmd, peer_id, d[PEER_ADDR].hex()))
                    return True


def cmd_dump_ids(what):
    g = Genl()
    cmd, key = {"peer": (PEER_GET, PEER_ID), "service": (SERVICE_GET, SVC_ID), "rule": (RULE_GET, RULE_ID)}[what]
    r = g.request(cmd, dump=True)
    if r.error:
        print("error", errno.errorcode.get(r.error, r.error))
        return False
    print(" ".join(str(struct.unpack("=I", dict(parse_attrs(m[1]))[key])[0]) for m in r.msgs))
    return True


def cmd_node_id():
    r = Genl().request(NODE_GET)
    if r.error:
        print("error", errno.errorcode.get(r.error, r.error))
        return False
    print(struct.unpack("=I", dict(parse_attrs(r.msgs[0][1]))[NODE_ID])[0])
    return True


def main():
    what = sys.argv[1]
    if what == "invalid":
        good = cmd_invalid()
    elif what == "limits":
        good = cmd_limits()
    elif what == "eperm":
        good = cmd_eperm()
    elif what == "events":
        good = cmd_events()
    elif what == "wait-event":
        good = cmd_wait_event(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    elif what == "dump-ids":
        good = cmd_dump_ids(sys.argv[2])
    elif what == "node-id":
        good = cmd_node_id()
    elif what == "setup":
        setup(Genl())
        good = True
    else:
        print("unknown subcommand", what)
        good = False
    sys.exit(0 if good else 1)


if __name__ == "__main__":
    main()
