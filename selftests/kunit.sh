#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the module's KUnit suite (it runs when the module loads) and report
# each case from /sys/kernel/debug/kunit/sockgroup/results as a subtest.

source "$(dirname "$0")/lib.sh"

results=/sys/kernel/debug/kunit/sockgroup/results
trap 'unload_module 2>/dev/null' EXIT

unload_module 2>/dev/null
if ! insmod "$SOCKGROUP_KO"; then
	ksft_result 1 "insmod"
	ksft_exit
fi
if [ ! -r "$results" ]; then
	ksft_result 1 "KUnit results at $results"
	ksft_exit
fi

cases=0
while read -r line; do
	case "$line" in
	"ok "*) cases=$((cases + 1)); ksft_result 0 "kunit: ${line#ok * }" ;;
	"not ok "*) cases=$((cases + 1)); ksft_result 1 "kunit: ${line#not ok * }"
		grep -B30 "$line" "$results" | sed 's/^/# /' ;;
	esac
done < <(sed -n 's/^[[:space:]]*\(\(not \)\{0,1\}ok [0-9]* sg_.*\)/\1/p' "$results")
[ "$cases" -gt 0 ] || { ksft_result 1 "KUnit reported no case"; cat "$results" | sed 's/^/# /'; }
ksft_exit
