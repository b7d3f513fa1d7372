#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Failed allocations leave no socket and no network namespace behind (the
# debug kernel's fault injection; elsewhere this test skips, exit 4).
#
# A namespace keeps every socket made in it alive, and a socket listed in a
# group is kept by the group until it is taken out: a removal that were
# lost would pin a dead namespace for ever. Each round runs in a namespace
# with a veth pair whose other end is in the initial namespace: that end
# disappears when, and only when, the namespace's exit runs, i.e. when
# every socket of the namespace is gone.
#
#   1. sockgroup_test -f alloc_fail in the namespace: every request failing
#      at each of its allocations in turn (failslab, fail-nth) returns
#      ENOMEM and changes nothing; close() of a member with each of its
#      allocations failing still takes it out; a removal retried after three
#      failed sweeps (fail_sockgroup_sweep). The namespace is then deleted.
#   2. The sweep fails for as long as the test wants (probability 100):
#      members closed, namespace deleted; it stays while the sweep fails,
#      and goes once the sweep may succeed.
#   3. The same, but the module is removed while the sweep fails: module
#      exit drops every socket, and the namespace goes.
# After each round /proc/net/sockstat's TCP sockets are back to where they
# were.
#
#   SOCKGROUP_TEST_BIN, SOCKGROUP_KO: as for groups.sh

source "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
BIN=${SOCKGROUP_TEST_BIN:-$here/../.build/selftests/sockgroup_test}
DBG=/sys/kernel/debug
FS=$DBG/failslab
SW=$DBG/fail_sockgroup_sweep

mountpoint -q $DBG || mount -t debugfs none $DBG 2>/dev/null
if [ ! -d "$FS" ] || [ ! -e /proc/self/fail-nth ]; then
	echo "# no failslab or fail-nth (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS): the debug kernel has them"
	exit $KSFT_SKIP
fi
for f in "$BIN" "$SOCKGROUP_KO"; do
	[ -e "$f" ] || { echo "# missing $f"; exit $KSFT_FAIL; }
done

saved_wait=$(cat $FS/ignore-gfp-wait) saved_verbose=$(cat $FS/verbose)
cleanup() {
	[ -d "$SW" ] && echo 0 >$SW/probability
	echo "$saved_wait" >$FS/ignore-gfp-wait
	echo "$saved_verbose" >$FS/verbose
	test_cleanup
}
test_setup
trap cleanup EXIT
unload_module || { echo "# sockgroup is loaded and cannot be unloaded"; exit $KSFT_FAIL; }
load_module || exit $KSFT_FAIL
echo N >$FS/ignore-gfp-wait
echo 0 >$FS/verbose

# TCP sockets of every namespace (sockstat's "alloc" is global).
tcp_alloc() {
	awk '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "alloc") print $(i + 1) }' /proc/net/sockstat
}
tcp_back() {
	[ "$(tcp_alloc)" = "$base" ]
}
base=$(tcp_alloc)

# round_ns: a namespace $ns (loopback up) and a veth pair, end $probe here.
round_ns() {
	setup_ns ns || return 1
	probe=sgaf$RANDOM
	ip link add "$probe" type veth peer name eth0 netns "$ns"
}
ns_gone() {
	! ip link show "$probe" >/dev/null 2>&1
}
# delete_ns: delete $ns (forget it: its end is checked through $probe).
delete_ns() {
	ip netns del "$ns"
	NS_LIST=("${NS_LIST[@]/$ns}")
}

# group3: in $ns, three listeners grouped; the process exits (closing them).
group3() {
	ip netns exec "$ns" python3 -c '
import socket, struct
ls = []
for i in range(3):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    ls.append(s)
req = struct.pack("IIIIii", 1, 0, 0, 2, ls[1].fileno(), ls[2].fileno())
ls[0].setsockopt(socket.SOL_SOCKET, 0x5347, req)
'
}

# sweep_failed N: the sweep has failed at least N times since times was 1000.
sweep_failed() {
	[ $((1000 - $(cat $SW/times))) -ge "$1" ]
}

echo "# 1: failing allocations in requests and sweeps"
round_ns || exit $KSFT_FAIL
# nsenter, not ip netns exec: that mounts a sysfs of the namespace over
# /sys, which hides debugfs (failslab, fail_sockgroup_sweep).
nsenter --net="/run/netns/$ns" "$BIN" -f alloc_fail
ksft_result $? "sockgroup_test -f alloc_fail"
delete_ns
busywait 10000 ns_gone
ksft_result $? "the namespace went"
busywait 10000 tcp_back
ksft_result $? "TCP sockets back to $base (now $(tcp_alloc))"

if [ ! -d "$SW" ]; then
	ksft_result 4 "sweep failing at the namespace's end (no $SW)"
	ksft_exit
fi
echo 0 >$SW/verbose
echo 1 >$SW/interval

echo "# 2: the sweep fails while the namespace ends, then recovers"
round_ns || exit $KSFT_FAIL
echo 1000 >$SW/times
echo 100 >$SW/probability
group3
ksft_result $? "three members grouped and closed"
delete_ns
busywait 10000 sweep_failed 3
ksft_result $? "the sweep failed and retried ($((1000 - $(cat $SW/times))) times)"
ns_gone
ksft_result $((!$?)) "the namespace stays while its closed members are listed"
echo 0 >$SW/probability
busywait 10000 ns_gone
ksft_result $? "the namespace went once the sweep succeeded"
busywait 10000 tcp_back
ksft_result $? "TCP sockets back to $base (now $(tcp_alloc))"

echo "# 3: rmmod while the sweep fails"
round_ns || exit $KSFT_FAIL
echo 1000 >$SW/times
echo 100 >$SW/probability
group3
ksft_result $? "three members grouped and closed"
delete_ns
busywait 10000 sweep_failed 1
ksft_result $? "the sweep failed"
unload_module
ksft_result $? "rmmod sockgroup"
busywait 10000 ns_gone
ksft_result $? "the namespace went with the module"
busywait 10000 tcp_back
ksft_result $? "TCP sockets back to $base (now $(tcp_alloc))"

ksft_exit
