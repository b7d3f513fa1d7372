#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `sgctl cluster` against the module's generic netlink family "sockgroup"
# (issue 10, item 4).  (The kernel's own YNL client driving the family from
# the spec, item 5, is cluster_nl.sh's.)
#
# Three nodes, each a network namespace on a bridge (10.77.0.1-3), are
# configured with sgctl alone: node set, a key file per pair, peer add.
#   - `sgctl cluster show --json` parses and lists each node with its peers,
#     and neither `peer show` nor `show` (tables or JSON) ever shows a key;
#   - a key file readable by group/others is refused before the kernel is
#     asked, and nothing is added;
#   - requests the kernel refuses come out as "sgctl: WHAT: EXTACK (ERRNO)"
#     with exit status 1 and change nothing; without CAP_NET_ADMIN: EPERM;
#   - `sgctl cluster monitor` subscribes to the events group and prints one
#     line per event: peer-up for each peer once the control channels are up,
#     peer-down when a node's link goes down, peer-up again when it comes
#     back (these need the control channel; without one, they SKIP).
#
#   SGCTL        the sgctl binary; default ../target/debug/sgctl from here
#   SOCKGROUP_KO the module (see lib.sh)

source "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
SGCTL=${SGCTL:-$repo/target/debug/sgctl}
SPEC=$repo/Documentation/netlink/specs/sockgroup.yaml
PYTHON=${PYTHON:-/usr/bin/python3}
PORT=7000
HB=100	# ms between heartbeats: a peer is down after 3 silent intervals

if [ ! -x "$SGCTL" ]; then
	echo "# no sgctl at $SGCTL (make sgctl)"
	exit $KSFT_FAIL
fi
test_setup
unload_module 2>/dev/null
if ! load_module; then
	echo "# cannot load $SOCKGROUP_KO"
	exit $KSFT_FAIL
fi

# sg NODE ARGS...: sgctl cluster ARGS in node NODE's namespace (1, 2, 3).
sg() {
	local node=$1; shift
	"$SGCTL" -n "${NS[$node]}" cluster "$@"
}

# json_eval FILE EXPR: evaluate the Python expression EXPR on the JSON in
# FILE (as `d`); fails when it is false or the file is not JSON.
json_eval() {
	"$PYTHON" -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)' "$1" "$2"
}

# fails_with CMD...: CMD exits 1 and its stderr (in $tmp/err) is one line
# "sgctl: ..." ending with an errno name; prints it.
fails_with() {
	local rc=0
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	cat "$tmp/err"
	[ "$rc" = 1 ] && [ "$(wc -l <"$tmp/err")" = 1 ] &&
		grep -qE '^sgctl: .*\(E[A-Z0-9]+\)' "$tmp/err"
}

# The nodes, on a bridge in a namespace of its own.
declare -A NS
setup_ns n1 n2 n3 nbr || exit $KSFT_FAIL
NS=([1]=$n1 [2]=$n2 [3]=$n3)
ip -n "$nbr" link add br0 type bridge
ip -n "$nbr" link set br0 up
for i in 1 2 3; do
	ip link add "sgc$i" netns "$nbr" type veth peer name eth0 netns "${NS[$i]}"
	ip -n "$nbr" link set "sgc$i" master br0 up
	ip -n "${NS[$i]}" addr add "10.77.0.$i/24" dev eth0
	ip -n "${NS[$i]}" link set eth0 up
done

# The pairs' keys: hex text for 1-2 and 2-3, raw bytes for 1-3; mode 0600.
umask 077
keyfile() {	# keyfile A B: the key file of the pair A-B
	echo "$tmp/key.$(( $1 < $2 ? $1 : $2 ))-$(( $1 < $2 ? $2 : $1 ))"
}
# hexkey BYTES: that many random bytes as hex text, with a newline.
hexkey() {
	head -c "$1" /dev/urandom | od -An -v -tx1 | tr -d ' \n' && echo
}
hexkey 32 >"$(keyfile 1 2)"
hexkey 16 >"$(keyfile 2 3)"
head -c 48 /dev/urandom >"$(keyfile 1 3)"
umask 022

# Before any configuration: the family answers, there is no node.
no_node() {
	sg 1 show >"$tmp/show" && grep -q '^node: not configured' "$tmp/show" &&
		sg 1 show --json >"$tmp/show.json" &&
		json_eval "$tmp/show.json" 'd["node"] is None and d["peers"] == []'
}
check "cluster show before configuration: no node" no_node

# The monitors (lines, JSON), subscribed before anything is configured so
# that they see every event: one line per event, flushed as it comes.
sg 1 monitor --ready-file "$tmp/monitor.ready" >"$tmp/events" 2>"$tmp/monitor.err" &
MONITOR=$!
sg 1 monitor --json --ready-file "$tmp/monitor-json.ready" >"$tmp/events.json" \
	2>"$tmp/monitor-json.err" &
MONITOR_JSON=$!
monitoring() {
	kill -0 "$MONITOR" 2>/dev/null && kill -0 "$MONITOR_JSON" 2>/dev/null &&
		[ ! -s "$tmp/monitor.err" ] && [ ! -s "$tmp/monitor-json.err" ]
}
subscribed() {
	busywait 5000 test -f "$tmp/monitor.ready" -a -f "$tmp/monitor-json.ready" && monitoring
}
check "cluster monitor subscribes to the events group" subscribed

configure() {
	local i j
	for i in 1 2 3; do
		sg "$i" node set --id "$i" --ctl "10.77.0.$i:$PORT" --hb-interval "$HB" || return 1
		for j in 1 2 3; do
			[ "$i" = "$j" ] && continue
			sg "$i" peer add --id "$j" --addr "10.77.0.$j" --key-file "$(keyfile "$i" "$j")" ||
				return 1
		done
	done
}
check "node set and peer add in three namespaces" configure

shows_config() {
	local i
	for i in 1 2 3; do
		sg "$i" show --json >"$tmp/show.$i.json" && sg "$i" node show --json >"$tmp/node.$i.json" &&
			sg "$i" show >"$tmp/show.$i" || return 1
		grep -q "^node $i  ctl 10.77.0.$i:$PORT  fwd -  heartbeat $HB ms\$" "$tmp/show.$i" || return 1
	done
	sg 1 peer show --id 3 --json >"$tmp/peer3.json" || return 1
	# One interpreter for every check: under TCG each start costs seconds.
	"$PYTHON" -c 'import json, sys
tmp, port, hb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in 1, 2, 3:
    d = json.load(open(f"{tmp}/show.{i}.json"))
    n = d["node"]
    assert (n["id"], n["ctl_addr"], n["ctl_port"], n["hb_interval_ms"]) == (i, f"10.77.0.{i}", port, hb), n
    # The membership may move between the two calls (channels coming up).
    moving = ("generation", "members")
    same = lambda d: {k: v for k, v in d.items() if k not in moving}
    assert same(json.load(open(f"{tmp}/node.{i}.json"))) == same(n), (n, i)
    assert sorted(p["id"] for p in d["peers"]) == sorted({1, 2, 3} - {i}), d["peers"]
    for p in d["peers"]:
        assert p["addr"] == "10.77.0.%d" % p["id"] and p["ctl_port"] == port, p
        peer_keys = {"frames_tx", "frames_rx", "heartbeats_tx", "heartbeats_rx",
                     "rejected", "connects", "ups", "downs", "handoff_req_tx",
                     "handoff_req_rx", "handoff_ack_tx", "handoff_ack_rx",
                     "handoff_nack_tx", "handoff_nack_rx", "term_tx", "term_rx"}
        assert p["state"] in ("down", "connecting", "up") and set(p["stats"]) == peer_keys, p
    # The namespace counters: those of the channels, the handoff frames and
    # the forwarding data plane (a nest).
    assert {"peers_up", "accepted", "refused_nonpeer", "rejected", "frames_tx",
            "frames_rx", "generation", "outbox_full", "unsent", "fwd"} <= set(d["stats"]), d
    assert {"tx", "rx", "rx_nonpeer", "udp_flows"} <= set(d["stats"]["fwd"]), d
    assert d["services"] == [] and d["rules"] == [], d
p = json.load(open(f"{tmp}/peer3.json"))
assert len(p) == 1 and p[0]["id"] == 3, p' "$tmp" "$PORT" "$HB"
}
check "cluster show --json parses and lists node and peers" shows_config

# No key in any output: no "key" field, and none of the keys' bytes, raw or
# as hex, anywhere.
no_key_shown() {
	local i out="$tmp/all-output"
	: >"$out"
	for i in 1 2 3; do
		sg "$i" peer show >>"$out" && sg "$i" peer show --json >>"$out" &&
			sg "$i" show >>"$out" && sg "$i" show --json >>"$out" || return 1
	done
	"$PYTHON" -c 'import sys, re
out = open(sys.argv[1], "rb").read()
assert b"key" not in out.lower(), "a key field"
for f in sys.argv[2:]:
    k = open(f, "rb").read()
    if re.fullmatch(rb"[0-9a-f]+\n", k):
        k = bytes.fromhex(k.decode())
    for shown in (k[:8], k[:8].hex().encode(), k[:8].hex().upper().encode()):
        assert shown not in out, "a key of " + f' "$out" "$tmp"/key.*
}
check "peer show and show never show a key" no_key_shown

# peer_count NODE: how many peers NODE has, in COUNT.
peer_count() {
	COUNT=$(sg "$1" peer show | tail -n +2 | wc -l)
}

open_key_file_refused() {
	local f=$tmp/open-key rc=0
	head -c 32 /dev/urandom >"$f" && chmod 0644 "$f"
	sg 1 peer add --id 9 --addr 10.77.0.9 --key-file "$f" 2>"$tmp/err" || rc=$?
	cat "$tmp/err"
	[ "$rc" = 1 ] && [ "$(wc -l <"$tmp/err")" = 1 ] &&
		grep -q "^sgctl: peer add: key file $f: permissions 0644 are too open" "$tmp/err" ||
		return 1
	peer_count 1 && [ "$COUNT" = 2 ] || return 1
	# --insecure-key-file takes it.
	sg 1 peer add --id 9 --addr 10.77.0.9 --key-file "$f" --insecure-key-file &&
		peer_count 1 && [ "$COUNT" = 3 ] && sg 1 peer del --id 9 && peer_count 1 && [ "$COUNT" = 2 ]
}
check "a key file open to group/others is refused (--insecure-key-file takes it)" \
	open_key_file_refused

# config_of NODE: the node's configuration (not its counters or state).
config_of() {
	sg "$1" node show | head -n 1 && sg "$1" peer show | awk '{ print $1, $2, $3 }'
}

# kernel_refuses ERRNO NODE ARGS...: `sgctl cluster ARGS` in NODE fails with
# exit status 1 and ERRNO, the kernel's extack text instead of strerror's,
# and the node's peers and node config are unchanged.
kernel_refuses() {
	local errno=$1 node=$2; shift 2
	local before after
	before=$(config_of "$node") || return 1
	fails_with sg "$node" "$@" || return 1
	grep -q "($errno)\$" "$tmp/err" || return 1
	# The text before the errno is the kernel's, not the C library's.
	! grep -qE ': (Invalid argument|No such file or directory|File exists|Numerical result out of range) \(' \
		"$tmp/err" || { echo "# no extack message"; return 1; }
	after=$(config_of "$node") || return 1
	[ "$before" = "$after" ] || { echo "# state changed"; return 1; }
}
check "peer add of this node's id: extack, EINVAL, nothing changed" \
	kernel_refuses EINVAL 1 peer add --id 1 --addr 10.77.0.7 --key-file "$(keyfile 1 2)"
check "peer add of an existing id: extack, EEXIST, nothing changed" \
	kernel_refuses EEXIST 1 peer add --id 2 --addr 10.77.0.8 --key-file "$(keyfile 1 2)"
check "peer del of an unknown id: extack, ENOENT" \
	kernel_refuses ENOENT 1 peer del --id 42
check "node set with a heartbeat under the policy's minimum: extack, ERANGE" \
	kernel_refuses ERANGE 1 node set --id 1 --hb-interval 5

no_admin() {
	local rc=0
	ip netns exec "$n1" setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$SGCTL" cluster show >"$tmp/out" 2>"$tmp/err" || rc=$?
	cat "$tmp/err"
	[ "$rc" = 1 ] && grep -q '(EPERM): CAP_NET_ADMIN is needed$' "$tmp/err"
}
check "without CAP_NET_ADMIN: EPERM, said so" no_admin


# state NODE PEER: the peer's state as NODE reports it, in STATE.
peer_state() {
	STATE=$(sg "$1" peer show --id "$2" 2>/dev/null | awk 'NR == 2 { print $4 }')
}
peer_is() {	# peer_is NODE PEER STATE
	peer_state "$1" "$2" && [ "$STATE" = "$3" ]
}
all_up() {
	peer_is 1 2 up && peer_is 1 3 up && peer_is 2 3 up && peer_is 3 1 up
}
# events_has FILE LINE: the monitor wrote LINE.
events_has() {
	grep -qxF "$2" "$1"
}

# Peer up/down need the control channel: a kernel socket listening on the
# control port (ss lists kernel sockets too).
if [ -n "$(ip netns exec "$n1" ss -Hltn "sport = :$PORT" 2>/dev/null)" ]; then
	check "every pair's channel comes up" busywait 20000 all_up
	check "monitor: peer-up of peers 2 and 3" busywait 5000 sh -c \
		"grep -qxF 'peer-up id 2 addr 10.77.0.2' '$tmp/events' &&
		 grep -qxF 'peer-up id 3 addr 10.77.0.3' '$tmp/events'"
	check "monitor --json: one object per line" busywait 5000 "$PYTHON" -c 'import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if {"event": "peer-up", "id": 2, "addr": "10.77.0.2"} in ev else 1)' "$tmp/events.json"
	ip -n "$n2" link set eth0 down
	check "link of node 2 down: peer-down event within 3 intervals (and slack)" \
		busywait $((3 * HB + 2000)) events_has "$tmp/events" "peer-down id 2 addr 10.77.0.2"
	check "peer 2 no longer reported up" busywait 2000 eval '! peer_is 1 2 up'
	ip -n "$n2" link set eth0 up
	up_again() {
		[ "$(grep -cxF 'peer-up id 2 addr 10.77.0.2' "$tmp/events")" -ge 2 ]
	}
	check "link up again: peer-up event again" busywait 15000 up_again
	counters_moved() {
		sg 1 show --json >"$tmp/final.json" &&
			json_eval "$tmp/final.json" "all(p['stats']['heartbeats_rx'] > 0 and p['stats']['ups'] >= 1
				for p in d['peers']) and d['stats']['peers_up'] >= 1"
	}
	check "show: heartbeats and ups counted per peer" counters_moved
else
	# The node's control listener did not come up: that is a failure.
	ksft_result 1 "the control channel listens on port $PORT"
fi
check "monitor still running, no error" monitoring
kill "$MONITOR" "$MONITOR_JSON" 2>/dev/null
wait "$MONITOR" "$MONITOR_JSON" 2>/dev/null

deleted() {
	sg 1 node del && sg 1 show >"$tmp/show" && grep -q '^node: not configured' "$tmp/show" &&
		peer_count 1 && [ "$COUNT" = 0 ]
}
check "node del removes the node and its peers" deleted

ksft_exit
