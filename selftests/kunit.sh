#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The module's KUnit suite is a test module of its own, sockgroup_kunit.ko:
# loading sockgroup.ko runs no test; loading sockgroup_kunit.ko (after it)
# runs the suite, and each case of /sys/kernel/debug/kunit/sockgroup/results
# is reported as a subtest, which fails when the case failed.

source "$(dirname "$0")/lib.sh"

suite=/sys/kernel/debug/kunit/sockgroup
results=$suite/results
# The replay cases' network (sg_replay_case in rust/sockgroup_kunit.c), in
# this namespace: the service address on lo, the client behind a veth pair
# with a permanent neighbour entry (no ARP or NDP), so that what TCP sends
# it leaves through sgr0 and reaches nobody.
replay_net_down() {
	ip link del sgr0
	ip addr del 198.51.100.1/32 dev lo
	ip -6 addr del 2001:db8:2::1/128 dev lo
} 2>/dev/null
replay_net_up() {
	ip link add sgr0 type veth peer name sgr1 &&
		ip link set sgr1 up && ip link set sgr0 up &&
		ip addr add 192.0.2.1/24 dev sgr0 &&
		ip -6 addr add 2001:db8:1::1/64 dev sgr0 nodad &&
		ip neigh replace 192.0.2.2 lladdr 02:00:00:00:00:02 dev sgr0 nud permanent &&
		ip -6 neigh replace 2001:db8:1::2 lladdr 02:00:00:00:00:02 dev sgr0 nud permanent &&
		ip link set lo up &&
		ip addr add 198.51.100.1/32 dev lo &&
		ip -6 addr add 2001:db8:2::1/128 dev lo
}
trap 'unload_module 2>/dev/null; replay_net_down' EXIT

unload_module 2>/dev/null
if [ ! -f "$SOCKGROUP_KUNIT_KO" ]; then
	ksft_result 1 "test module at $SOCKGROUP_KUNIT_KO (built for kernels with CONFIG_KUNIT)"
	ksft_exit
fi
# load NAME KO: insmod as a subtest; the test ends when it fails.
load() {
	local out
	if out=$(insmod "$2" 2>&1); then
		ksft_result 0 "insmod $1"
	else
		ksft_result 1 "insmod $1"
		echo "$out" | sed 's/^/# /'
		ksft_exit
	fi
}

load sockgroup.ko "$SOCKGROUP_KO"
# A test that opens sockets has no place in an ordinary load.
check "insmod sockgroup.ko runs no KUnit test" test ! -e "$suite"
replay_net_down
check "the replay cases' network (sgr0, addresses on lo)" replay_net_up
load sockgroup_kunit.ko "$SOCKGROUP_KUNIT_KO"
if [ ! -r "$results" ]; then
	ksft_result 1 "KUnit results at $results"
	ksft_exit
fi

# KTAP: the cases are indented under the suite, with their own plan.
cases=0
while read -r line; do
	case "$line" in
	"ok "*) cases=$((cases + 1)); ksft_result 0 "kunit: ${line#ok * }" ;;
	"not ok "*) cases=$((cases + 1)); ksft_result 1 "kunit: ${line#not ok * }"
		grep -B30 -F "$line" "$results" | sed 's/^/# /' ;;
	esac
done < <(sed -n 's/^[[:space:]]\{1,\}\(\(not \)\{0,1\}ok [0-9]* sg_.*\)/\1/p' "$results")
plan=$(sed -n 's/^[[:space:]]\{1,\}1\.\.\([0-9]*\)$/\1/p' "$results" | head -n 1)
if [ "$cases" -eq 0 ] || [ "$cases" != "$plan" ]; then
	ksft_result 1 "KUnit reported $cases cases of a plan of ${plan:-none}"
	sed 's/^/# /' "$results"
fi
# What the replay cases observed (their kunit_info lines).
grep -E '^[[:space:]]*# sg_test_replay' "$results" | grep -F outcome | sed 's/^[[:space:]]*/# /'
check "KUnit suite result" grep -qE '^ok [0-9]+ sockgroup$' "$results"
check "rmmod sockgroup_kunit" rmmod sockgroup_kunit
check "rmmod sockgroup" rmmod sockgroup
ksft_exit
