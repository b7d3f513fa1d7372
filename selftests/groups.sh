#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Service groups (SPEC section 1), checked by the kselftest program
# sockgroup_test: without the module SO_SERVICE_GROUP answers ENOPROTOOPT;
# with the module loaded every test of sockgroup_test passes; after rmmod
# the option answers ENOPROTOOPT again.
#
#   selftests/groups.sh [HARNESS ARGS...]   e.g. -f redirect, -t dual_stack
#
#   SOCKGROUP_TEST_BIN  the program; default ../.build/selftests/sockgroup_test
#                       from this directory (make -C selftests O=../.build/selftests)
#   SOCKGROUP_KO        the module (see lib.sh)
#
# The program's TAP output passes through; the module steps are reported as
# TAP lines of their own.  Exits non-zero when anything failed.

source "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
BIN=${SOCKGROUP_TEST_BIN:-$here/../.build/selftests/sockgroup_test}

status=$KSFT_PASS
failed() {
	echo "# groups.sh: $*"
	status=$KSFT_FAIL
}

if [ ! -x "$BIN" ]; then
	echo "# no test program at $BIN (build it: make -C selftests O=../.build/selftests)"
	exit $KSFT_FAIL
fi
if [ ! -f "$SOCKGROUP_KO" ]; then
	echo "# no module at $SOCKGROUP_KO"
	exit $KSFT_FAIL
fi

trap 'unload_module 2>/dev/null' EXIT

# Start from a kernel without the module.
if ! unload_module; then
	echo "# a sockgroup module is loaded and cannot be unloaded"
	exit $KSFT_FAIL
fi

echo "# before insmod: SO_SERVICE_GROUP answers ENOPROTOOPT"
"$BIN" --expect-no-module || failed "ENOPROTOOPT check before insmod"

if load_module && module_loaded; then
	ksft_result 0 "insmod sockgroup"
	# alloc_fail needs fault injection set up: alloc_fail.sh runs it;
	# stall.sh runs stall_close (a member closed during its rescue).
	echo "# with the module loaded: $BIN -T no_module -F alloc_fail -F stall_close $*"
	"$BIN" -T no_module -F alloc_fail -F stall_close "$@" || failed "sockgroup_test"

	if unload_module && ! module_loaded; then
		ksft_result 0 "rmmod sockgroup"
		echo "# after rmmod: SO_SERVICE_GROUP answers ENOPROTOOPT again"
		"$BIN" --expect-no-module || failed "ENOPROTOOPT check after rmmod"
	else
		ksft_result 1 "rmmod sockgroup"
		failed "rmmod"
	fi
else
	ksft_result 1 "insmod sockgroup ($SOCKGROUP_KO)"
	failed "insmod"
fi

exit $status
