#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rmmod while SYNs are being redirected, many times; and groups in network
# namespaces that go away. The kernel must stay silent (vm-run fails the run
# on any oops, KASAN, lockdep or kmemleak report) and the option must answer
# ENOPROTOOPT again after each rmmod.

source "$(dirname "$0")/lib.sh"

SGCTL=${SGCTL:-$(dirname "$0")/../target/debug/sgctl}
TEST_BIN=${SOCKGROUP_TEST_BIN:-$(dirname "$0")/../.build/selftests/sockgroup_test}
# Fewer rounds on the slow debug kernel.
ROUNDS=${ROUNDS:-$([ "${SOCKGROUP_FLAVOUR:-}" = debug ] && echo 4 || echo 10)}
test_setup

# rmmod refuses (EBUSY) only while a SO_SERVICE_GROUP call is under way.
rmmod_retry() {
	local i
	for i in $(seq 50); do
		rmmod sockgroup 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

round() { # N
	round_body "$1"
	local rc=$?
	kill $(jobs -p) 2>/dev/null
	wait 2>/dev/null
	unload_module 2>/dev/null
	return $rc
}

round_body() { # N
	rm -f "$tmp/ready"
	insmod "$SOCKGROUP_KO" || return 1
	"$SGCTL" serve --port $((9100 + $1)) --listeners 3 --backlog 2 --stalled 0 \
		--ready-file "$tmp/ready" --serve-seconds 60 >"$tmp/serve" 2>&1 &
	local server=$!
	busywait 10000 test -s "$tmp/ready" || { cat "$tmp/serve"; return 1; }
	"$SGCTL" connect --port $((9100 + $1)) --count 100000 --timeout-ms 200 >/dev/null 2>&1 &
	local client=$!
	# Redirects must be happening when the module goes.
	busywait 10000 sh -c "awk '\$1 != \"#\" && \$11 > 0' /proc/net/sockgroup | grep -q ." || return 1
	rmmod_retry || return 1
	[ ! -e /proc/net/sockgroup ] || return 1
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
for n in 1 2 3; do
	check "group in a namespace that is deleted, round $n" netns_round
done
check "rmmod after the namespaces" rmmod_retry
ksft_exit
