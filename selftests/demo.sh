#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo (`make demo`), run inside the test VM: load sockgroup.ko, show
# that the kernel knows it and what it logged, and unload it.

source "$(dirname "$0")/lib.sh"

echo "== kernel: $(uname -r)"
echo "== insmod $SOCKGROUP_KO"
insmod "$SOCKGROUP_KO" || exit 1
echo "== lsmod"
lsmod | grep -E '^(Module|sockgroup) '
echo "== kernel log"
dmesg | grep -E 'sockgroup|KTAP|# Subtest: sockgroup|ok [0-9]+ sg_' | tail -n 20
echo "== rmmod sockgroup"
rmmod sockgroup && dmesg | grep 'sockgroup: unloaded'
