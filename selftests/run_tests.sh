#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run sockgroup's kselftests (inside the test VM; see selftests/vm-run).
#
#   selftests/run_tests.sh [TEST...]     default: every test in TESTS
#
# Prints TAP; writes "PASSED FAILED SKIPPED" (subtest counts) to
# $SOCKGROUP_OUT/counts and the lines that say what failed (failed subtests,
# failed assertions with their messages) to $SOCKGROUP_OUT/failures when
# SOCKGROUP_OUT is set.  Exits non-zero when any subtest failed or any test
# script failed.

cd "$(dirname "$0")" || exit 1

TESTS=(
	module_load.sh
	kunit.sh
	groups.sh
	rmmod_load.sh
	rewrite.sh
	alloc_fail.sh
	synpath.sh
	sgctl_group.sh
)
# Real servers started and stopped dozens of times take 10 to 13 minutes on
# the debug kernel under TCG: run them there only when asked by name.
DEBUG_SKIP=" sgctl_group.sh "
[ $# -gt 0 ] && TESTS=("$@") && DEBUG_SKIP=" "

# Per test script; the debug kernel (KASAN, lockdep, kmemleak) is slower.
limit=900
[ "${SOCKGROUP_FLAVOUR:-}" = debug ] && limit=2400

passed=0 failed=0 skipped=0 n=0 status=0
failures=$(mktemp)
echo "TAP version 13"
echo "1..${#TESTS[@]}"
for t in "${TESTS[@]}"; do
	n=$((n + 1))
	echo "# selftests: sockgroup: $t"
	if [ "${SOCKGROUP_FLAVOUR:-}" = debug ] && [[ "$DEBUG_SKIP" == *" $t "* ]]; then
		echo "ok $n selftests: sockgroup: $t # SKIP on the debug kernel (selftests/run_tests.sh $t runs it)"
		skipped=$((skipped + 1))
		continue
	fi
	out=$(mktemp)
	timeout "$limit" "./$t" 2>&1 | tee "$out" | sed 's/^/# /'
	rc=${PIPESTATUS[0]}
	p=$(grep -cE '^ok [0-9]+ .*' "$out" | head -n 1)
	s=$(grep -cE '^ok [0-9]+ .*# SKIP' "$out" | head -n 1)
	f=$(grep -cE '^not ok [0-9]+ ' "$out" | head -n 1)
	p=$((p - s))
	if [ "$rc" != 0 ] && [ "$rc" != 4 ] && [ "$f" = 0 ]; then
		f=1 # the script failed outside any subtest
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	if [ "$rc" = 4 ]; then
		echo "ok $n selftests: sockgroup: $t # SKIP"
	elif [ "$rc" = 0 ] && [ "$f" = 0 ]; then
		echo "ok $n selftests: sockgroup: $t"
	else
		echo "not ok $n selftests: sockgroup: $t # exit=$rc"
		status=1
		# What failed, for the summary at the end of a long log: the
		# harness's failed assertions (and the message logged after
		# each), failed subtests, and the script's own last words.
		{
			echo "$t (exit $rc):"
			grep -E -A1 ':Expected |^not ok |^# +FAIL|[Tt]imed out|Oops|BUG' "$out" |
				grep -v '^--$' | head -n 40 | sed 's/^/  /'
			[ "$f" = 0 ] && tail -n 5 "$out" | sed 's/^/  | /'
		} >>"$failures"
	fi
	rm -f "$out"
done
if [ -n "${SOCKGROUP_OUT:-}" ]; then
	echo "$passed $failed $skipped" >"$SOCKGROUP_OUT/counts"
	cp "$failures" "$SOCKGROUP_OUT/failures"
fi
if [ -s "$failures" ]; then
	echo "# what failed:"
	sed 's/^/#   /' "$failures"
fi
rm -f "$failures"
echo "# kselftests ($SOCKGROUP_FLAVOUR kernel): $passed passed, $failed failed, $skipped skipped"
exit $status
