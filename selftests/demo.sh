#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo (`make demo`), inside the test VM: a service of three SO_REUSEPORT
# listeners on one port, one of which has stopped accepting (its backlog is
# small and it never calls accept()). Clients open fresh connections, first
# without a service group (the stock kernel), then with the three listeners
# in one group, then with the group's stall rescue on (the stalled member's
# queued connections move to its siblings). We count the connections that
# were served. Then the cluster's handoff: demo_handoff.sh.

source "$(dirname "$0")/lib.sh"

SGCTL=${SGCTL:-$(dirname "$0")/../target/debug/sgctl}
PORT=9000
COUNT=${COUNT:-60}
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; unload_module 2>/dev/null; rm -rf "$out"' EXIT

echo "== kernel $(uname -r); insmod $SOCKGROUP_KO"
load_module || exit 1
dmesg | grep 'sockgroup: loaded'

run_case() { # NAME [--no-group]
	local name=$1; shift
	rm -f "$out/ready"
	"$SGCTL" serve --port "$PORT" --listeners 3 --backlog 4 --stalled 0 \
		--ready-file "$out/ready" --serve-seconds 120 "$@" >"$out/$name.serve" 2>&1 &
	local pid=$!
	busywait 10000 test -s "$out/ready" || { cat "$out/$name.serve"; return 1; }
	echo
	echo "== $name: $COUNT fresh connections to 127.0.0.1:$PORT (member 0 stalled, backlog 4)"
	"$SGCTL" connect --port "$PORT" --count "$COUNT" --timeout-ms 1000 | tee "$out/$name.connect"
	if [ "$name" != stock ]; then
		echo "-- sgctl show (also in /proc/net/sockgroup):"
		"$SGCTL" show
	fi
	kill -TERM "$pid"; wait "$pid" 2>/dev/null
}

run_case stock --no-group || exit 1
run_case group || exit 1
run_case rescue --stall-ms 200 || exit 1

summary() { sed -n 's/^connections \([0-9]*\): \([0-9]*\) completed, \([0-9]*\) failed.*/\2 \3/p' "$out/$1.connect"; }
read -r s_ok s_fail < <(summary stock)
read -r g_ok g_fail < <(summary group)
read -r r_ok r_fail < <(summary rescue)
echo
echo "== summary: $COUNT connections each"
printf '%-34s %10s %8s\n' case completed failed
printf '%-34s %10s %8s\n' "stock kernel (SO_REUSEPORT only)" "$s_ok" "$s_fail"
printf '%-34s %10s %8s\n' "service group (sockgroup, ring)" "$g_ok" "$g_fail"
printf '%-34s %10s %8s\n' "service group + stall rescue 200ms" "$r_ok" "$r_fail"
echo "(with the group alone, the only failures are the connections the stalled"
echo " member had already queued, backlog+1 = 5, before it was full; with stall"
echo " rescue they move to its siblings after 200 ms and are served too)"

# The cluster's handoff (issue 12): a request moved to a back-end.
"$(dirname "$0")/demo_handoff.sh" || exit 1
