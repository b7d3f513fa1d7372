#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The SYN path of service groups (synpath_check.py says what each case
# asserts): a retransmitted SYN and a SYN on a TIME_WAIT 4-tuple are left to
# TCP, never steered; SYN cookies (tcp_syncookies=2, a sibling whose request
# queue is full) lose no connection; rewrite mode redirects under
# tcp_syncookies=2. Each case in a namespace of its own, over loopback
# (where the steer hook sees SYNs with no socket attached), IPv4 and IPv6.
#
#   selftests/synpath.sh [CASE...]        default: every case
#   OPENLOOP="COUNT RATE PORTS" selftests/synpath.sh openloop
#
# openloop is the issue's run scaled to the VM: 600 connections at 100/s
# (a fifth on the debug kernel, where it runs only when named), the
# client's ports reused every 3 s while the server keeps them in TIME_WAIT.
# Before the TIME_WAIT fix it lost about half of them (steered SYNs
# swallowed beside the TIME_WAIT socket); now every one is served, those on
# a TIME_WAIT 4-tuple after one retransmission.

source "$(dirname "$0")/lib.sh"

CHECK="python3 $(cd "$(dirname "$0")" && pwd)/synpath_check.py"
test_setup

unload_module 2>/dev/null
load_module || exit $KSFT_FAIL

run() { # CASE [ARGS...]: in a fresh namespace
	local ns rc
	setup_ns ns || return 1
	ip netns exec "$ns" $CHECK "$@" --tf "$TIME_FACTOR"
	rc=$?
	cleanup_all_ns
	return $rc
}

cases=("$@")
# On the debug kernel, by default, the cases whose SYNs find a socket in the
# established table (a request socket, a TIME_WAIT socket), over both
# families: the lookup takes and releases a reference on it, the one object
# lifetime this path adds.  The cookie cases are decisions with no object
# of their own (and mostly waits: their unserved clients time out, about a
# minute each there); the open-loop run is a load test.  Both run when named.
if [ ${#cases[@]} -eq 0 ]; then
	cases=(retrans timewait)
	[ "$DEBUG_KERNEL" = 1 ] || cases+=(cookies2 reqfull rewrite2 openloop)
fi
for c in "${cases[@]}"; do
	case $c in
	openloop)
		ol="600 100 300"
		[ "$TIME_FACTOR" -gt 1 ] && ol="120 20 60"
		read -r count rate ports <<<"${OPENLOOP:-$ol}"
		check "open loop: $count connections at $rate/s over $ports client ports, none lost" \
			run openloop --count "$count" --rate "$rate" --ports "$ports"
		;;
	*)
		check "$c (IPv4)" run "$c"
		check "$c (IPv6)" run "$c" --v6
		;;
	esac
done
ksft_exit
