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
trap 'unload_module 2>/dev/null' EXIT

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
check "KUnit suite result" grep -qE '^ok [0-9]+ sockgroup$' "$results"
check "rmmod sockgroup_kunit" rmmod sockgroup_kunit
check "rmmod sockgroup" rmmod sockgroup
ksft_exit
