#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The cluster's control channel (issue 10 items 2, 3, 6): three nodes in
# namespaces on a bridge, configured with the kernel's YNL library from our
# spec (cluster.py), and a fourth namespace for a non-peer client and a
# relay (cluster_relay.py) between nodes 1 and 3.
#
#   every pair comes up, heartbeats flow, the membership lists all three;
#   a link down: the peers see the node down within 3 intervals (event),
#   up again after link up; a wrong key: never up, rejected counts (event);
#   a non-peer connecting: refused before any byte is read; the relay
#   duplicating, dropping or flipping a byte of one frame: the channel
#   closes, rejected counts, it comes up again; rmmod/insmod cycles with
#   channels up; deletion of a namespace whose channels are up.
#
#   selftests/cluster.sh
#
#   SOCKGROUP_YNL     the YNL client's directory (see cluster_nl.sh)
#   SOCKGROUP_CYCLES  rmmod/insmod cycles; default 12 (3 on the debug kernel)
#   SOCKGROUP_KO      the module (see lib.sh)

source "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
SGCTL=${SGCTL:-$repo/target/debug/sgctl}
# A cycle takes about 3 s on the plain kernel under TCG, 6 s on the debug
# one: a dozen (3 there) in `make check`, each takes the same paths
# (listener, channel up, rmmod with it up); SOCKGROUP_CYCLES=200 for a
# longer hunt.
CYCLES=${SOCKGROUP_CYCLES:-$([ "$DEBUG_KERNEL" = 1 ] && echo 3 || echo 12)}
HB=200
PORT=7000
K12=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
K13=101112131415161718191a1b1c1d1e1f000102030405060708090a0b0c0d0e0f
K23=202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f
WRONG=ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100

need_ynl yaml

test_setup

# cl CMD ARGS...: a cluster.py command (see there), answered by one
# cluster.py serving the whole script (a Python start per request is
# seconds under TCG, about 8 s on the debug kernel).
coproc CL { "$PY" "$here/cluster.py" "$YNL_DIR" "$SPEC" serve 2>"$tmp/cl.err"; }
cl() {
	local IFS=$'\t' line rc=1
	echo "$*" >&"${CL[1]}" || return 1
	while IFS= read -r line <&"${CL[0]}"; do
		case "$line" in
		"= "*) rc=${line#= }; break ;;
		esac
		printf '%s\n' "$line"
	done
	return "$rc"
}

# cl_stop: ends the server (its sockets gone; `wait` then waits for it).
cl_stop() {
	local pid=$CL_PID
	exec {CL[1]}>&-
	wait "$pid"
}

# hexip A.B.C.D: the address as the hex string of its 4 bytes.
hexip() {
	printf '%02x' ${1//./ }
}

# peer_val NS ID STAT: a counter of peer ID as NS sees it.
peer_val() {
	cl get "$1" peer-get "{\"id\": $2}" "stats.$3"
}

# net_val NS STAT: a namespace counter.
net_val() {
	cl get "$1" stats-get '{}' "$2"
}

# gt NS ID STAT N: peer ID's counter STAT is above N.
gt() {
	[ "$(peer_val "$1" "$2" "$3")" -gt "$4" ]
}

# net_gt NS STAT N: the namespace counter STAT is above N.
net_gt() {
	[ "$(net_val "$1" "$2")" -gt "$3" ]
}

# members_are NS LIST: node-get's members in NS are LIST (e.g. "[1, 3]").
members_are() {
	local got
	got=$(cl get "$1" node-get '{}' members)
	[ "$got" = "$2" ] || { echo "members: $got"; return 1; }
}

# wait_state NS ID STATE MS: until peer ID is STATE in NS.
wait_state() {
	cl wait "$1" "$2" "$3" $(($4 * TIME_FACTOR))
}

# has_event FILE NAME ID: the monitor's output has event NAME for peer ID.
has_event() {
	jq -s -e --arg n "$2" --argjson id "$3" 'any(.[]; .event == $n and .id == $id)' "$1" >/dev/null 2>&1 && return 0
	echo "no $2 of $3 in $1:" $(cat "$1" "${1/events/monitor-err}") >&2
	return 1
}

# node JSON for namespace NS: node ID at A; PEERS: "ID:ADDR:PORT:KEY ..."
node_json() {
	local ns=$1 id=$2 addr=$3 peers=$4 p sep=
	printf '{"ns": "%s", "node": {"id": %d, "ctl-addr": "%s", "ctl-port": %d, "hb-interval": %d}, "peers": [' \
		"$ns" "$id" "$(hexip "$addr")" "$PORT" "$HB"
	for p in $peers; do
		IFS=: read -r pid paddr pport pkey <<<"$p"
		printf '%s{"id": %d, "addr": "%s", "ctl-port": %d, "key": "%s"}' \
			"$sep" "$pid" "$(hexip "$paddr")" "$pport" "$pkey"
		sep=", "
	done
	printf ']}'
}

# The bridge and the four namespaces: node i at 10.77.0.i, x at 10.77.0.4.
setup_ns br n1 n2 n3 x
ip -n "$br" link add br0 type bridge
ip -n "$br" link set br0 up
i=0
for ns in "$n1" "$n2" "$n3" "$x"; do
	i=$((i + 1))
	ip link add veth$i netns "$ns" type veth peer name port$i netns "$br"
	ip -n "$br" link set port$i master br0 up
	ip -n "$ns" addr add 10.77.0.$i/24 dev veth$i
	ip -n "$ns" link set veth$i up
done

load_module || { ksft_result 1 "insmod sockgroup"; ksft_exit; }

# Nodes 1 and 3 talk through the relay in x: 1 connects to x:7100, which
# connects on to 3 from 10.77.0.4, the address 3 knows 1 by.
ip netns exec "$x" "$PY" "$here/cluster_relay.py" 10.77.0.4 7100 10.77.0.3 $PORT "$tmp/relay.ctl" \
	>"$tmp/relay.log" 2>&1 &
relay=$!
busywait 5000 grep -q listening "$tmp/relay.log"

setup_cluster() {
	{
		echo "["
		node_json "$n1" 1 10.77.0.1 "2:10.77.0.2:$PORT:$K12 3:10.77.0.4:7100:$K13"
		echo ","
		node_json "$n2" 2 10.77.0.2 "1:10.77.0.1:$PORT:$K12 3:10.77.0.3:$PORT:$K23"
		echo ","
		node_json "$n3" 3 10.77.0.3 "1:10.77.0.4:$PORT:$K13 2:10.77.0.2:$PORT:$K23"
		echo "]"
	} >"$tmp/cluster.json"
	cl setup "$tmp/cluster.json"
}

declare -A monitor
for ns in "$n1" "$n2" "$n3"; do
	"$SGCTL" -n "$ns" cluster monitor --json --ready-file "$tmp/ready.$ns" \
		>"$tmp/events.$ns" 2>"$tmp/monitor-err.$ns" &
	monitor[$ns]=$!
done
for ns in "$n1" "$n2" "$n3"; do
	busywait 10000 test -f "$tmp/ready.$ns"
done

check "configure three nodes" setup_cluster
all_up() {
	wait_state "$n1" 2 up 5000 && wait_state "$n1" 3 up 5000 &&
		wait_state "$n2" 1 up 5000 && wait_state "$n2" 3 up 5000 &&
		wait_state "$n3" 1 up 5000 && wait_state "$n3" 2 up 5000
}
check "every pair's channel comes up (1-3 through the relay)" all_up
check "peer-up events for 2 and 3 on node 1" \
	busywait 5000 eval 'has_event "$tmp/events.$n1" peer-up 2 && has_event "$tmp/events.$n1" peer-up 3'
hb=$(peer_val "$n1" 2 heartbeats-rx)
check "heartbeats flow (node 1 from node 2: more than $hb)" busywait 3000 gt "$n1" 2 heartbeats-rx "$hb"
check "node 1's membership is 1, 2, 3" members_are "$n1" "[1, 2, 3]"

# A link down: both peers of node 2 see it down within 3 intervals (and the
# time to notice a poll); link up: up again.
ip -n "$n2" link set veth2 down
start=$(date +%s%3N)
check "link down: node 1 sees node 2 down" wait_state "$n1" 2 down $((3 * HB + 1500))
check "link down: node 3 sees node 2 down" wait_state "$n3" 2 down $((3 * HB + 1500))
echo "# node 2 down after $(($(date +%s%3N) - start)) ms (3 intervals: $((3 * HB)) ms)"
check "peer-down event for 2 on node 1" busywait 3000 has_event "$tmp/events.$n1" peer-down 2
check "node 1's membership is 1, 3" members_are "$n1" "[1, 3]"
ip -n "$n2" link set veth2 up
check "link up: node 2 up again on nodes 1 and 3" \
	eval 'wait_state "$n1" 2 up 10000 && wait_state "$n3" 2 up 10000'

# A wrong key for node 2 on node 3: node 2's HELLO fails node 3's tag check.
cl do "$n3" peer-del '{"id": 2}' >/dev/null
cl do "$n3" peer-new "{\"id\": 2, \"addr\": \"$(hexip 10.77.0.2)\", \"ctl-port\": $PORT, \"key\": \"$WRONG\"}" >/dev/null
check "wrong key: node 3 rejects node 2's HELLOs" busywait 10000 gt "$n3" 2 rejected 1
check "wrong key: key-rejected event on node 3" busywait 3000 has_event "$tmp/events.$n3" key-rejected 2
check "wrong key: never up" test "$(cl get "$n3" peer-get '{"id": 2}' state)" != up
cl do "$n3" peer-del '{"id": 2}' >/dev/null
cl do "$n3" peer-new "{\"id\": 2, \"addr\": \"$(hexip 10.77.0.2)\", \"ctl-port\": $PORT, \"key\": \"$K23\"}" >/dev/null
check "right key again: up" eval 'wait_state "$n3" 2 up 10000 && wait_state "$n2" 3 up 10000'

# A non-peer (x is no peer of node 2) is refused before a byte is read:
# the bytes it sends are never rejected as a frame.
refused=$(net_val "$n2" refused-nonpeer)
rejected=$(net_val "$n2" rejected)
ip netns exec "$x" socat -u - TCP:10.77.0.2:$PORT <<<"not a frame" >/dev/null 2>&1
check "non-peer: refused-nonpeer moves on node 2" busywait 3000 net_gt "$n2" refused-nonpeer "$refused"
check "non-peer: nothing read (rejected unchanged)" test "$(net_val "$n2" rejected)" = "$rejected"

# The relay tampers with one frame from node 1 to node 3 after the
# handshake: node 3 closes, counts, and the channel comes up again.
for action in dup drop flip; do
	rej=$(peer_val "$n3" 1 rejected)
	ups=$(peer_val "$n3" 1 ups)
	echo "$action" >"$tmp/relay.ctl"
	check "relay $action: applied" busywait 3000 grep -q "done $action" "$tmp/relay.log"
	check "relay $action: node 3 rejects (rejected > $rej)" busywait 3000 gt "$n3" 1 rejected "$rej"
	check "relay $action: up again" busywait 10000 gt "$n3" 1 ups "$ups"
	check "relay $action: node 1 sees node 3 up" wait_state "$n1" 3 up 10000
done
check "flipped byte: key-rejected event on node 3" has_event "$tmp/events.$n3" key-rejected 1

# Deleting a namespace whose channels are up: its peers see it go. (The
# monitor in it and cl's socket there go first: a socket would keep the
# namespace alive.)
kill "${monitor[$n3]}"
wait "${monitor[$n3]}" 2>/dev/null
cl close "$n3"
ip netns del "$n3"
check "netns del: node 2 sees node 3 down" wait_state "$n2" 3 down $((3 * HB + 3000))
check "netns del: node 1 sees node 3 down" wait_state "$n1" 3 down $((3 * HB + 3000))

# rmmod/insmod with channels up (nodes 1 and 2), in a cluster.py of its own.
kill "$relay" "${monitor[$n1]}" "${monitor[$n2]}" 2>/dev/null
cl_stop
wait 2>/dev/null
{
	echo "["
	node_json "$n1" 1 10.77.0.1 "2:10.77.0.2:$PORT:$K12"
	echo ","
	node_json "$n2" 2 10.77.0.2 "1:10.77.0.1:$PORT:$K12"
	echo "]"
} >"$tmp/pair.json"
cycle() {
	"$PY" "$here/cluster.py" "$YNL_DIR" "$SPEC" cycles "$CYCLES" "$SOCKGROUP_KO" "$tmp/pair.json" \
		"$n1" 2 $((5000 * TIME_FACTOR))
}
unload_module
check "$CYCLES cycles of insmod, channel up, rmmod" cycle

ksft_exit
