#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo's handoff part (`make demo` runs it after demo.sh's service
# groups), inside the test VM: a client (cli) fetches a file from a service
# address whose packets reach only the front-end (fe); fe's rules hand
# /be1/ requests to the back-end be1, which serves them from its nginx and
# answers the client directly. We show what the client got, the back-end's
# access-log line (the client's own address), fe's bytes sent next to the
# size of the download, and the handoff's counters. The cluster is the one
# of selftests/handoff.sh (handoff_lib.sh).
#
#   selftests/demo_handoff.sh

source "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
SGCTL=${SGCTL:-$here/../target/debug/sgctl}
source "$here/handoff_lib.sh"
MIB=${MIB:-20}

test_setup
cluster_net $VIP $VIP6 || exit 1
load_module || exit 1
configure || exit 1
busywait 10000 peers_up || { echo "the control channels did not come up"; exit 1; }
head -c $((MIB * 1048576)) /dev/urandom >"$tmp/big"
start_nginx "$tmp/big"
busywait 10000 listening || { echo "nginx did not start"; cat "$tmp"/*/error.log; exit 1; }

echo
echo "== handoff: cli (10.81.0.1) -> rtr -> fe, which holds $VIP:80 (also on be1's and"
echo "   be2's lo); fe's rules: /be1/ to node 2 (be1), /be2/ to node 3 (be2), /fe/ here"
tx0=$(at "$fe" ip -j -s link show eth0 | jq '.[0].stats64.tx.bytes')
at "$cli" curl -sS --max-time 60 -o "$tmp/got" \
	-w "curl http://$VIP/be1/big: HTTP %{http_code}, %{size_download} bytes in %{time_total} s\n" \
	"http://$VIP/be1/big" || exit 1
tx=$(($(at "$fe" ip -j -s link show eth0 | jq '.[0].stats64.tx.bytes') - tx0))
if cmp -s "$tmp/big" "$tmp/got"; then
	echo "sha256 $(sha256sum <"$tmp/got" | cut -c1-16)...: the file as be1 has it"
else
	echo "the file differs from be1's"
fi
# nginx writes its line once the answer is sent.
busywait 5000 test -s "$tmp/be1/access.log"
echo "-- be1's nginx access log (client, method, URI, status, bytes):"
cut -d' ' -f1-5 "$tmp/be1/access.log"
echo "-- fe's nginx access log: $(wc -l <"$tmp/fe/access.log") lines"
echo "-- fe's eth0 sent $tx bytes during the download of $((MIB * 1048576)) bytes" \
	"($(awk -v t="$tx" -v s=$((MIB * 1048576)) 'BEGIN { printf "%.2f", 100 * t / s }')%):"
echo "   the answer went from be1 straight to the client"
echo "-- fe: service 1's handoff counters, the forwarding's (sgctl cluster show --json):"
sg "$fe" show --json | jq -r '
	(.services[] | select(.id == 1) | .stats |
		"   held \(.held), handed-off \(.handed_off), local \(.local), fallbacks \(.fallback_nack + .fallback_timeout + .fallback_peer_down), client segments forwarded \(.moved_fwd)"),
	"   fwd: tx \(.stats.fwd.tx) datagrams, tx-failed \(.stats.fwd.tx_failed)"'
echo "-- be1: (sgctl cluster show --json)"
sg "$be1" show --json | jq -r '"   adopted \(.stats.backend.adopted), replays failed \(.stats.backend.replay_failed), fwd rx \(.stats.fwd.rx) datagrams"'
