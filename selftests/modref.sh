#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The module reference of a redirected SO_SERVICE_GROUP call: with the
# call blocked inside the module (its option buffer in a userfaultfd page
# that is not there yet), rmmod must fail and the module stay; once the page
# is supplied the call completes and the module unloads.  Runs modref_test
# (kselftest harness; see its header), which loads and unloads the module
# itself ($SOCKGROUP_KO).
#
#   SOCKGROUP_MODREF_BIN  the program; default ../.build/selftests/modref_test

source "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
BIN=${SOCKGROUP_MODREF_BIN:-$here/../.build/selftests/modref_test}

[ -x "$BIN" ] || { echo "# no test program at $BIN (make test-progs)"; exit $KSFT_FAIL; }
[ -f "$SOCKGROUP_KO" ] || { echo "# no module at $SOCKGROUP_KO"; exit $KSFT_FAIL; }
trap 'unload_module 2>/dev/null' EXIT
unload_module || { echo "# a sockgroup module is loaded and cannot be unloaded"; exit $KSFT_FAIL; }
SOCKGROUP_KO=$SOCKGROUP_KO "$BIN" "$@"
