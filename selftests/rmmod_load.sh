#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rmmod while SYNs are being redirected, many times; and groups in network
# namespaces that go away. The kernel must stay silent (vm-run fails the run
# on any oops, KASAN, lockdep or kmemleak report) and the option must answer
# ENOPROTOOPT again after each rmmod.
#
# The connections in flight when the module goes: the client dials the
# stalled member (its queue filled first), so while the module is loaded
# every connection is redirected.  A SYN the steer hook has handed to a
# sibling carries that sibling in skb->sk with a reference of its own, and
# sock_edemux (the kernel's) drops it; the request socket then lives on the
# sibling, and the handshake's ACK finds it by its 4-tuple: nothing of the
# module is involved any more, and rmmod's hook unregistration waits for hook
# calls in progress.  So each connection must be served with its whole reply,
# or fail to connect (a SYN that reaches the full stalled member after the
# hooks are gone is dropped by the kernel); none may connect and then be
# lost.  Connections started after rmmod must all fail to connect (nothing
# redirects any more).  See inflight.py.

source "$(dirname "$0")/lib.sh"

SGCTL=${SGCTL:-$(dirname "$0")/../target/debug/sgctl}
TEST_BIN=${SOCKGROUP_TEST_BIN:-$(dirname "$0")/../.build/selftests/sockgroup_test}
INFLIGHT="python3 $(cd "$(dirname "$0")" && pwd)/inflight.py"
# Four rounds in `make check` (ROUNDS=50 for a longer hunt), one on the
# slow debug kernel.
ROUNDS=${ROUNDS:-$((DEBUG_KERNEL ? 1 : 4))}
# On the debug kernel the batch below is the namespace round (groups.sh's
# netns_teardown ends one with redirected connections).
NS_ROUNDS=$((DEBUG_KERNEL ? 0 : 3))
test_setup

# rmmod succeeds: no SO_SERVICE_GROUP call is under way in these tests (one
# would hold a module reference; modref.sh tests that), but allow a moment.
rmmod_quiet() { rmmod sockgroup 2>/dev/null; }
rmmod_retry() { busywait 5000 rmmod_quiet; }

# Lines of the client's log whose outcome is $2 and "after" is $3.
logged() { # LOG OUTCOME AFTER
	grep -c "\"after\": $3, \"outcome\": \"$2\"" "$1"
}
after_rmmod() { [ "$(grep -c '"after": true' "$tmp/client")" -ge 2 ]; }
served_some() { [ "$(logged "$tmp/client" served false)" -ge 1 ]; }

round() { # N
	round_body "$1"
	local rc=$?
	kill $(jobs -p) 2>/dev/null
	wait 2>/dev/null
	unload_module 2>/dev/null
	return $rc
}

round_body() { # N
	local port=$((9100 + 3 * $1))
	rm -f "$tmp/ready" "$tmp/gone" "$tmp/stop"
	insmod "$SOCKGROUP_KO" || return 1
	# Members on ports of their own; member 0 (backlog 2) never accepts.
	"$SGCTL" serve --port $port --distinct-ports --listeners 3 --backlog 2 --stalled 0 \
		--ready-file "$tmp/ready" --serve-seconds 120 >"$tmp/serve" 2>&1 &
	busywait 10000 test -s "$tmp/ready" || { cat "$tmp/serve"; return 1; }
	$INFLIGHT client --port $port --hold 3 --gone "$tmp/gone" --stop "$tmp/stop" \
		--connect-ms $((300 * TIME_FACTOR)) --reply-ms $((5000 * TIME_FACTOR)) >"$tmp/client" &
	local client=$!
	# Redirects must be happening, and served, when the module goes.
	busywait 10000 sh -c "awk '\$1 != \"#\" && \$11 > 0' /proc/net/sockgroup | grep -q ." ||
		{ echo "no redirect counted:"; cat /proc/net/sockgroup; return 1; }
	busywait 10000 served_some || { echo "no connection served:"; cat "$tmp/client"; return 1; }
	rmmod_retry || return 1
	touch "$tmp/gone"
	[ ! -e /proc/net/sockgroup ] || return 1
	busywait 10000 after_rmmod || { echo "the client stopped:"; cat "$tmp/client"; return 1; }
	touch "$tmp/stop"
	wait "$client" || { echo "the client failed"; return 1; }
	$INFLIGHT verify --log "$tmp/client" --hold 3 || return 1
	"$TEST_BIN" --expect-no-module >/dev/null 2>&1
}

unload_module 2>/dev/null
for n in $(seq "$ROUNDS"); do
	check "rmmod under redirected load, round $n" round "$n"
done

# Groups in namespaces that end: the servers exit (their sockets close and
# leave their groups), then the namespaces are deleted, with the module loaded.
# Members on ports of their own (9200-9202) and every client to the stalled
# member's port: after the 3 it queues, each connection is redirected (on a
# shared SO_REUSEPORT port, the hash could leave the stalled member too few).
netns_round() {
	local ns
	setup_ns ns || return 1
	rm -f "$tmp/ready"
	ip netns exec "$ns" "$SGCTL" serve --port 9200 --distinct-ports --listeners 3 --backlog 2 --stalled 0 \
		--ready-file "$tmp/ready" --serve-seconds 60 >"$tmp/serve" 2>&1 &
	local server=$!
	busywait 10000 test -s "$tmp/ready" || { echo "server not ready:"; cat "$tmp/serve"; return 1; }
	ip netns exec "$ns" "$SGCTL" connect --port 9200 --count 20 --timeout-ms $((300 * TIME_FACTOR)) >"$tmp/connect" ||
		{ echo "sgctl connect failed:"; cat "$tmp/connect"; return 1; }
	ip netns exec "$ns" awk '$1 != "#" && $11 > 0' /proc/net/sockgroup | grep -q . ||
		{ echo "no redirect counted in the namespace:"; cat "$tmp/connect"
		  ip netns exec "$ns" cat /proc/net/sockgroup; return 1; }
	# The initial namespace sees none of it.
	! awk '$1 != "#"' /proc/net/sockgroup | grep -q . ||
		{ echo "the initial namespace lists groups:"; cat /proc/net/sockgroup; return 1; }
	kill -9 "$server"; wait "$server" 2>/dev/null
	cleanup_all_ns
}
load_module || exit 1
for n in $(seq "$NS_ROUNDS"); do
	check "group in a namespace that is deleted, round $n" netns_round
done

# Many namespaces deleted at once, with packets arriving in each until its
# end.  The pernet core tears such a batch down together: every pre_exit
# (ours unpublishes the namespace's state and unregisters its hooks), one
# grace period for the batch, then every exit (ours frees the state).  The
# packets keep the LOCAL_IN hook reading each state until its pre_exit; a
# state freed before those readers finished would be a use after free
# (KASAN on the debug kernel), and exit checks that a grace period passed
# since its pre_exit (a kernel warning otherwise, which fails the run); a
# state never freed is a leak (kmemleak on the debug kernel).  Each
# namespace ends (its veth peer here disappears, as in alloc_fail.sh).
BATCH=$((DEBUG_KERNEL ? 3 : 16))
batch_probes=()
batch_gone() {
	local p
	for p in "${batch_probes[@]}"; do
		[ ! -e "/sys/class/net/$p" ] || return 1
	done
}
# rx_all MIN: every namespace's end of its veth pair was sent MIN packets
# (read here, where the other ends are: no process per namespace).
rx_all() {
	local p n
	for p in "${batch_probes[@]}"; do
		read -r n <"/sys/class/net/$p/statistics/tx_packets" && [ "$n" -ge "$1" ] || return 1
	done
}
batch_round() {
	local rc
	batch_body
	rc=$?
	touch "$tmp/stop"
	wait
	cleanup_all_ns
	return $rc
}
batch_body() {
	local i ns probe addrs=() cmds=()
	batch_probes=()
	for i in $(seq "$BATCH"); do
		setup_ns ns || return 1
		probe=sgb$i-$RANDOM
		batch_probes+=("$probe")
		ip link add "$probe" type veth peer name eth0 netns "$ns" || return 1
		ip addr add "10.77.$i.1/24" dev "$probe"
		ip link set "$probe" up
		ip -n "$ns" addr add "10.77.$i.2/24" dev eth0
		ip -n "$ns" link set eth0 up
		addrs+=("10.77.$i.2")
		# A group formed, regrouped and left (the process exits).
		ip netns exec "$ns" "$TEST_BIN" -t group_info >"$tmp/group_info" 2>&1 ||
			{ echo "sockgroup_test -t group_info failed in $ns:"; cat "$tmp/group_info"; return 1; }
		cmds+=("netns del $ns")
	done
	rm -f "$tmp/stop"
	python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
addrs, stop = sys.argv[2:], sys.argv[1]
while not os.path.exists(stop):
    for a in addrs:
        try:
            s.sendto(b"x", (a, 9))
        except OSError:
            pass
' "$tmp/stop" "${addrs[@]}" &
	busywait 10000 rx_all 20 || { echo "packets do not reach every namespace"; return 1; }
	# One command for all: ip deletes them one after the other, faster
	# than the kernel tears them down, so they end in one or few batches.
	printf '%s\n' "${cmds[@]}" | ip -batch - || return 1
	NS_LIST=()
	busywait 30000 batch_gone || { echo "namespaces left:"; ip -o link show | grep -E ' sgb[0-9]+-'; return 1; }
}
check "$BATCH namespaces deleted at once, packets arriving" batch_round
check "rmmod after the namespaces" rmmod_retry
ksft_exit
