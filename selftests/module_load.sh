#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The module loads, is listed, logs, unloads cleanly, and loads again.

source "$(dirname "$0")/lib.sh"

trap 'unload_module 2>/dev/null' EXIT

[ -f "$SOCKGROUP_KO" ] || { echo "# no module at $SOCKGROUP_KO"; exit $KSFT_FAIL; }
unload_module 2>/dev/null

dmesg_has() {
	dmesg | tail -n 50 | grep -q "sockgroup: $1"
}

dmesg -C
check "insmod succeeds" insmod "$SOCKGROUP_KO"
check "listed in /proc/modules" module_loaded
check "logs that it loaded" dmesg_has loaded
check "rmmod succeeds" rmmod sockgroup
check "gone from /proc/modules" eval '! module_loaded'
check "logs that it unloaded" dmesg_has unloaded
# Three more cycles; one on the debug kernel, where a cycle takes seconds
# and every other suite loads and unloads the module again.
for i in $(seq $((DEBUG_KERNEL ? 1 : 3))); do
	check "load and unload again ($i)" sh -c "insmod '$SOCKGROUP_KO' && rmmod sockgroup"
done
ksft_exit
