#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Rewrite mode (SOCKGROUP_F_REWRITE): a full member's connections land on a
# sibling with the destination mapped by conntrack NAT to the sibling's own
# address and port; the client sees only the address it dialled. Over veth
# between two namespaces (PRE_ROUTING) and over loopback (LOCAL_OUT), IPv4
# and IPv6, with a steer group beside a rewrite group, 1 MiB each way.
# On the debug kernel (DEBUG_KERNEL=1): one pass per family and NAT hook
# (IPv4 over veth, IPv6 over loopback) and the conntrack check, 64 KiB each
# way; the plain kernel runs every case.

source "$(dirname "$0")/lib.sh"

CHECK="python3 $(cd "$(dirname "$0")" && pwd)/rewrite_check.py"
# 1 MiB each way; 64 KiB on the (several times slower) debug kernel.
BYTES=$((DEBUG_KERNEL ? 65536 : 1048576))
test_setup

unload_module 2>/dev/null
load_module || exit $KSFT_FAIL

setup_ns srv cli || exit $KSFT_FAIL
ip link add veth0 netns "$srv" type veth peer name veth1 netns "$cli"
ip -n "$srv" link set veth0 up
ip -n "$cli" link set veth1 up
for i in 1 2 3; do
	ip -n "$srv" addr add 192.0.2.$i/24 dev veth0
	ip -n "$srv" addr add 2001:db8::$i/64 dev veth0 nodad
done
ip -n "$cli" addr add 192.0.2.100/24 dev veth1
ip -n "$cli" addr add 2001:db8::100/64 dev veth1 nodad

# start_server NAME NS ADDRS PORT [--v6] [--steer]: members i on ADDRi:PORT+i;
# member 0 (backlog 1, never accepts) keeps 2 connections, the next go on.
start_server() {
	local name=$1 ns=$2 addrs=$3 port=$4; shift 4
	local nx=(); [ "$ns" != - ] && nx=(ip netns exec "$ns")
	rm -f "$tmp/$name.ready"
	"${nx[@]}" $CHECK server --addrs "$addrs" --port "$port" --ready "$tmp/$name.ready" \
		--seconds $((60 * TIME_FACTOR)) "$@" >"$tmp/$name.server" 2>&1 &
	echo $! >"$tmp/$name.pid"
	busywait 30000 test -s "$tmp/$name.ready" || { cat "$tmp/$name.server"; return 1; }
}

# finish NAME NS_SERVER NS_CLIENT DIALLED SERVED_AT [--v6]: 2 connections
# that fill member 0 and stay open, then 3 clients, 1 MiB each way; the 3
# must be served at SERVED_AT, and the counters must show them.
finish() {
	local name=$1 sns=$2 cns=$3 dialled=$4 served_at=$5 v6=$6
	local sx=() cx=()
	[ "$sns" != - ] && sx=(ip netns exec "$sns")
	[ "$cns" != - ] && cx=(ip netns exec "$cns")
	local port=${dialled##*:}
	"${cx[@]}" $CHECK client --addr "${dialled%:*}" --port "$port" --hold 2 --count 3 \
		--bytes "$BYTES" --timeout $((3 * TIME_FACTOR)) $v6 >"$tmp/$name.client"
	local ok=0
	"${sx[@]}" awk -v p="$port" '$1 != "#" && $6 ~ ":"p"$" && $11 == 3' /proc/net/sockgroup | grep -q . || {
		echo "counters:"; "${sx[@]}" cat /proc/net/sockgroup; ok=1; }
	# The server reports a connection when the client has closed it: wait
	# for a report per completed client (verify says what is missing).
	busywait 5000 reported "$name" || true
	kill "$(cat "$tmp/$name.pid")"; wait "$(cat "$tmp/$name.pid")" 2>/dev/null
	$CHECK verify --client "$tmp/$name.client" --server "$tmp/$name.server" \
		--dialled "$dialled" --served-at "$served_at" --served 3 || ok=1
	return $ok
}

reported() { # NAME: the server reported at least as many connections as completed
	[ "$(grep -c '^{' "$tmp/$1.server")" -ge "$(grep -c '"ok": true' "$tmp/$1.client")" ]
}

run_case() { # NAME NS_SERVER NS_CLIENT ADDRS PORT DIALLED SERVED_AT [--v6]
	start_server "$1" "$2" "$4" "$5" $8 || return 1
	finish "$1" "$2" "$3" "$6" "$7" $8
}

# NS PORT N: conntrack lists the connections redirected from PORT to the
# sibling's PORT+1 (original destination port PORT, replies from PORT+1), at
# least N of them, and none is ESTABLISHED any more: they were closed, and
# their entries follow TCP's close.  Fails when conntrack -L fails, or lists
# no redirected connection (without the module, or with no NAT done).
conntrack_entries() {
	local out n est
	out=$(ip netns exec "$1" conntrack -L -p tcp --dport "$2" 2>&1) ||
		{ echo "conntrack -L failed: $out"; return 1; }
	n=$(grep -c "sport=$(($2 + 1)) " <<<"$out")
	est=$(grep "sport=$(($2 + 1)) " <<<"$out" | grep -c ESTABLISHED)
	[ "$n" -ge "$3" ] && [ "$est" = 0 ] && return 0
	echo "$n redirected entries (want >= $3), $est ESTABLISHED (want 0):"
	echo "$out"
	return 1
}
conntrack_released() { # NS PORT N
	busywait 5000 conntrack_entries "$@" >/dev/null || conntrack_entries "$@"
}

# plain_only NAME CMD...: a case the debug kernel skips (see the header).
plain_only() {
	local name=$1; shift
	if [ "$DEBUG_KERNEL" = 1 ]; then
		ksft_result 4 "$name (plain kernel only)"
	else
		check "$name" "$@"
	fi
}

check "rewrite, IPv4 over veth (PRE_ROUTING)" \
	run_case v4veth "$srv" "$cli" 192.0.2.1,192.0.2.2,192.0.2.3 9400 192.0.2.1:9400 192.0.2.2:9401
check "conntrack state of closed redirected connections released" conntrack_released "$srv" 9400 3
plain_only "rewrite, IPv6 over veth (PRE_ROUTING)" \
	run_case v6veth "$srv" "$cli" 2001:db8::1,2001:db8::2,2001:db8::3 9410 2001:db8::1:9410 2001:db8::2:9411 --v6
plain_only "rewrite, IPv4 over loopback (LOCAL_OUT)" \
	run_case v4lo - - 127.0.0.1,127.0.0.2,127.0.0.3 9420 127.0.0.1:9420 127.0.0.2:9421
check "rewrite, IPv6 over loopback (LOCAL_OUT)" \
	run_case v6lo - - ::1,::1,::1 9430 ::1:9430 ::1:9431 --v6

# Steer and rewrite side by side in one namespace: the steered connection
# is accepted as addressed, the rewritten one at the sibling's address.
side_by_side() {
	start_server steer "$srv" 192.0.2.1,192.0.2.2,192.0.2.3 9440 --steer || return 1
	start_server rewrite "$srv" 192.0.2.1,192.0.2.2,192.0.2.3 9450 || return 1
	ip netns exec "$srv" awk '$1 != "#" {print $3}' /proc/net/sockgroup | sort -u | tr '\n' ' ' |
		grep -qx 'rewrite steer ' || { echo "modes:"; ip netns exec "$srv" cat /proc/net/sockgroup; return 1; }
	finish steer "$srv" "$cli" 192.0.2.1:9440 192.0.2.1:9440 || return 1
	finish rewrite "$srv" "$cli" 192.0.2.1:9450 192.0.2.2:9451
}
plain_only "steer and rewrite groups side by side" side_by_side
ksft_exit
