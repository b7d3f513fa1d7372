#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The sockgroup generic netlink family (issue 10 part 1): configured with the
# kernel's YNL client (tools/net/ynl/cli.py, from the spec), and attacked
# with raw requests (cluster_nl.py): malformed and missing attributes, limits,
# privileges; namespaces kept apart; rmmod and namespace deletion with a
# configuration present.
#
#   selftests/cluster_nl.sh
#
# On the debug kernel (DEBUG_KERNEL=1) the YNL client's part and the
# peer-up notification between two namespaces are left out: each client
# call is a Python start that parses the spec, about 10 s there, and what
# they reach in the kernel (node-set and its control listener, peer-new,
# the dumps, channels coming up, their events) the raw requests below and
# cluster.sh take there too.  Namespace A is configured with raw requests
# instead, so that the teardown part is the same.
#
#   SOCKGROUP_YNL  the YNL client's directory; default ../.build/selftests/ynl
#                  (make test-progs copies it there: the VM does not see the
#                  kernel source under /root/.cache)
#   SOCKGROUP_KO   the module (see lib.sh)

source "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
NL=$here/cluster_nl.py
KEY=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f

if [ "$DEBUG_KERNEL" = 1 ]; then
	need_ynl
else
	need_ynl yaml jsonschema
fi

test_setup

# ynl [-n NS] ARGS...: the YNL client on our spec, in namespace NS if
# given.  The spec is checked against the genetlink schema once (the first
# call, below); jsonschema takes seconds per call under TCG.
YNL_SCHEMA=(--schema "$YNL_DIR/genetlink.yaml")
ynl() {
	local ns=
	if [ "$1" = -n ]; then
		ns=$2
		shift 2
	fi
	${ns:+ip netns exec "$ns"} "$PY" "$YNL_DIR/cli.py" --spec "$SPEC" "${YNL_SCHEMA[@]}" "$@"
}

# has PATTERN TEXT: TEXT (the client's output) has PATTERN.  Each client
# call takes seconds under TCG (Python, PyYAML): one call, several checks.
has() {
	grep -q -- "$1" <<<"$2"
}

# ynl_fails ARGS...: the client's request fails.
ynl_fails() {
	! ynl "$@" >/dev/null 2>&1
}

# in_ns NS CMD...: CMD in namespace NS.
in_ns() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# tap_py NAME CMD...: a python check whose TAP lines are folded into ours.
tap_py() {
	local name=$1 out rc start=$SECONDS
	shift
	out=$("$@" 2>&1)
	rc=$?
	echo "$out" | grep -E '^not ok ' | sed 's/^/# /'
	local n f
	n=$(grep -cE '^(ok|not ok) ' <<<"$out")
	f=$(grep -cE '^not ok ' <<<"$out")
	echo "# $name: $n checks, $f failed, $((SECONDS - start)) s"
	if [ "$rc" = 0 ] && [ "$f" = 0 ] && [ "$n" -gt 0 ]; then
		ksft_result 0 "$name ($n checks)"
	else
		ksft_result 1 "$name"
		echo "$out" | tail -n 5 | sed 's/^/# | /'
	fi
}

unload_module || { echo "# cannot unload a loaded sockgroup"; exit $KSFT_FAIL; }
check "insmod sockgroup" load_module

# --- The YNL client, from the spec ---------------------------------------
# ctl_addrs NS...: the control addresses the tests give nodes (10.0.0.1,
# 10.0.0.7) on each namespace's loopback: node-set binds the node's
# control listener there, and an address the namespace lacks is refused
# (EADDRNOTAVAIL), configuration unchanged.
ctl_addrs() {
	local ns
	for ns in "$@"; do
		ip -n "${!ns}" addr add 10.0.0.1/32 dev lo &&
			ip -n "${!ns}" addr add 10.0.0.7/32 dev lo || return 1
	done
}

if [ "$DEBUG_KERNEL" = 1 ]; then
	setup_ns A
	ctl_addrs A
	check "raw: A configured (node, peer, service, rule; the YNL part runs on plain)" \
		eval 'in_ns "$A" "$PY" "$NL" setup && test "$(in_ns "$A" "$PY" "$NL" dump-ids rule)" = 1'
else
	setup_ns A B
	ctl_addrs A B
	check "ynl: node-set (id 1, 10.0.0.1:7000; the spec checked against the schema)" \
		ynl -n "$A" --do node-set --json '{"id": 1, "ctl-addr": "0a000001", "ctl-port": 7000}'
	YNL_SCHEMA=(--no-schema)
	node=$(ynl -n "$A" --do node-get 2>&1)
	sed 's/^/# node-get: /' <<<"$node"
	check "ynl: node-get reports id 1" has "'id': 1" "$node"
	check "ynl: node-get reports ctl-port 7000" has "'ctl-port': 7000" "$node"
	check "ynl: node-get reports hb-interval 200 (the default)" has "'hb-interval': 200" "$node"
	check "ynl: peer-new (id 2, 10.0.0.2, key of 32 bytes)" \
		ynl -n "$A" --do peer-new --json "{\"id\": 2, \"addr\": \"0a000002\", \"key\": \"$KEY\"}"
	dump=$(ynl -n "$A" --dump peer-get 2>&1)
	sed 's/^/# peer-get dump: /' <<<"$dump"
	check "ynl: the peer dump has peer 2" has "'id': 2" "$dump"
	check "ynl: peer 2's ctl-port defaults to the node's" has "'ctl-port': 7000" "$dump"
	check "ynl: peer 2 is down" has "'state': 'down'" "$dump"
	check "ynl: peer 2 has its counters" has "'heartbeats-rx': 0" "$dump"
	one=$(ynl -n "$A" --do peer-get --json '{"id": 2}' 2>&1)
	check "ynl: peer-get 2 answers" has "'id': 2" "$one"
	check "ynl: neither the dump nor peer-get has the key" \
		bash -c '! grep -qi -e key -e "$1" -e "x00.x01.x02" <<<"$2$3"' _ "$KEY" "$dump" "$one"
	check "ynl: stats-get answers" has "'generation'" "$(ynl -n "$A" --do stats-get 2>&1)"
	# A rule of part 2 (a hash target: a multi-attr list) and its counters, as
	# the spec describes them.
	check "ynl: service-new 1" \
		ynl -n "$A" --do service-new --json '{"id": 1, "addr": "0a010001", "port": 80}'
	check "ynl: rule-new (session-id, hash over this node and peer 2)" \
		ynl -n "$A" --do rule-new --json \
		'{"id": 1, "service": 1, "match": {"type": "session-id"}, "target": {"type": "hash", "peers": [0, 2]}}'
	rules=$(ynl -n "$A" --dump rule-get 2>&1)
	sed 's/^/# rule-get dump: /' <<<"$rules"
	check "ynl: the rule dump names the match session-id" has "'type': 'session-id'" "$rules"
	check "ynl: the rule dump has the hash's peers" has "'peers': \[0, 2\]" "$rules"
	check "ynl: the rule dump has its counters" has "'none-up': 0" "$rules"

	# Namespaces are apart.
	check "netns: B has no node (node-get fails)" ynl_fails -n "$B" --do node-get
	check "netns: B has no peers" test -z "$(in_ns "$B" "$PY" "$NL" dump-ids peer)"
	check "netns: B takes a node of its own (id 7)" \
		ynl -n "$B" --do node-set --json '{"id": 7, "ctl-addr": "0a000007", "ctl-port": 7100}'
	check "netns: A still is node 1" has "'id': 1" "$(ynl -n "$A" --do node-get 2>&1)"
	check "netns: A's peers are 2" test "$(in_ns "$A" "$PY" "$NL" dump-ids peer)" = 2
fi

# --- Events ---------------------------------------------------------------
tap_py "events: the group resolves and can be joined" in_ns "$A" "$PY" "$NL" events
if [ "$DEBUG_KERNEL" = 1 ]; then
	ksft_result 4 "events: peer-up-ntf when a channel comes up (plain kernel; on debug cluster.sh's channels send it)"
else
	# Two nodes on a veth pair, peers of each other: each side reports
	# the other up.
	setup_ns C D
	ip link add vc netns "$C" type veth peer name vd netns "$D"
	ip -n "$C" addr add 10.3.0.1/24 dev vc && ip -n "$C" link set vc up
	ip -n "$D" addr add 10.3.0.2/24 dev vd && ip -n "$D" link set vd up
	# (60 s: the four YNL calls below start python each, seconds apiece
	# under TCG when the host is busy; 20 s was once not enough.)
	in_ns "$C" "$PY" "$NL" wait-event 14 2 $((60 * TIME_FACTOR)) >"$tmp/event" &
	waiter=$!
	busywait 5000 grep -q ready "$tmp/event"
	ynl -n "$C" --do node-set --json '{"id": 1, "ctl-addr": "0a030001", "ctl-port": 7000}' >/dev/null
	ynl -n "$D" --do node-set --json '{"id": 2, "ctl-addr": "0a030002", "ctl-port": 7000}' >/dev/null
	ynl -n "$C" --do peer-new --json "{\"id\": 2, \"addr\": \"0a030002\", \"key\": \"$KEY\"}" >/dev/null
	ynl -n "$D" --do peer-new --json "{\"id\": 1, \"addr\": \"0a030001\", \"key\": \"$KEY\"}" >/dev/null
	if wait "$waiter"; then
		ksft_result 0 "events: peer-up-ntf for peer 2 in C ($(cat "$tmp/event" | tail -n 1))"
	else
		ksft_result 1 "events: peer-up-ntf for peer 2 in C"
	fi
fi

# --- Raw requests: every error path --------------------------------------
setup_ns E F
ctl_addrs E F
tap_py "raw: missing and malformed attributes (errno, extack, unchanged)" \
	in_ns "$E" "$PY" "$NL" invalid
tap_py "raw: limits (64 peers, 256 services, 1024 rules) and dumps of several parts" \
	in_ns "$F" "$PY" "$NL" limits
# CAP_NET_ADMIN over the namespace's user namespace: uid 65534 has none.
tap_py "raw: without CAP_NET_ADMIN every operation answers EPERM" \
	in_ns "$F" "$PY" "$NL" eperm
check "raw: F kept its 64 peers after the EPERM attempts" \
	test "$(in_ns "$F" "$PY" "$NL" dump-ids peer | wc -w)" = 64

# --- Teardown with a configuration present --------------------------------
setup_ns G
ctl_addrs G
in_ns "$G" "$PY" "$NL" setup
check "netns G configured (node, peer, service, rule)" \
	test "$(in_ns "$G" "$PY" "$NL" dump-ids rule)" = 1
check "ip netns del G with its configuration" ip netns del "$G"
# The namespace's state is freed in its cleanup work; a new namespace
# gets a fresh, unconfigured node meanwhile.
setup_ns H
ctl_addrs H
check "a new namespace starts unconfigured" test -z "$(in_ns "$H" "$PY" "$NL" dump-ids peer)"
ip addr add 10.0.0.1/32 dev lo
check "the initial namespace configured too" "$PY" "$NL" setup
check "rmmod with configurations in several namespaces (F: 64 peers, 1024 rules)" unload_module
check "insmod again" load_module
check "after reload, A's configuration is gone" test -z "$(in_ns "$A" "$PY" "$NL" dump-ids peer)"
check "after reload, the initial namespace has no node (ENOENT)" \
	test "$("$PY" "$NL" node-id)" = "error ENOENT"
check "rmmod" unload_module
ip addr del 10.0.0.1/32 dev lo

ksft_exit
