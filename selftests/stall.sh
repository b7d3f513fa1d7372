#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Stall rescue (issue 9): a member of a group that stops accepting has the
# connections waiting in its accept queue moved to its siblings, and new
# SYNs for it go to them, once its oldest connection has waited the group's
# stall_ms (version 2 of the request).
#
#   a. `sgctl serve --stalled 0 --stall-ms 200 --backlog 64`, 3 members
#      (steer: one SO_REUSEPORT port; rewrite: three ports), 200 clients
#      (`sgctl connect --payload 700`: a line sent right after connecting,
#      which the member that accepts reads and answers with its length and
#      hash), IPv4 and IPv6: every client served by a sibling, its bytes
#      intact, none connected and never served; member 0's rescued_away is
#      its siblings' rescued_in, and more than 0, the same in the
#      getsockopt reply (serve's report) and /proc/net/sockgroup (`sgctl
#      show --json`).  The same group without --stall-ms: the connections
#      left in member 0's queue are never served (the baseline, printed).
#   b. An unmodified nginx, 3 workers, `listen ... reuseport backlog=511`,
#      one worker stopped (SIGSTOP) while wrk opens fresh connections
#      (`Connection: close`, 2 s timeout): first without a group (the stock
#      figures, printed, not judged), then grouped with `sgctl group --pid
#      MASTER --listening --stall-ms 200`: 0 socket timeouts, and 0
#      connections left in the stopped worker's queue (connected, never
#      served: wrk does not count those), its member listed stalled with
#      connections rescued away; after SIGCONT the worker answers requests
#      (a probe reaches it) and its member is serving again.
#   c. The stalled member closes while its queue is being rescued
#      (sockgroup_test -f stall_close): every client is accepted once on
#      the sibling, bytes intact, or reset; none lost, none twice.  On the
#      debug kernel vm-run fails the run on any KASAN, lockdep or kmemleak
#      report.
#
# The debug kernel runs every part with fewer clients and a shorter wrk.
#
#   SGCTL               the sgctl binary; default ../target/debug/sgctl
#   SOCKGROUP_TEST_BIN  default ../.build/selftests/sockgroup_test
#   SOCKGROUP_KO        the module (see lib.sh)

source "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
SGCTL=${SGCTL:-$repo/target/debug/sgctl}
BIN=${SOCKGROUP_TEST_BIN:-$repo/.build/selftests/sockgroup_test}

STALL_MS=200
PAYLOAD=700
if [ "$DEBUG_KERNEL" = 1 ]; then
	CLIENTS=40 BACKLOG=16 CONC=4 TIMEOUT_MS=8000 BASE_TIMEOUT_MS=3000
	WRK_CONN=8
else
	CLIENTS=200 BACKLOG=64 CONC=8 TIMEOUT_MS=3000 BASE_TIMEOUT_MS=1000
	WRK_CONN=16
fi
# wrk (4.1.0) counts a socket timeout only for a response that came after
# --timeout (2 s): a connection never answered is never counted, it only
# stops making requests.  So the connections that connected and were never
# served are counted on the server: what is left in the stopped worker's
# accept queue once wrk is done (its clients closed them, nobody accepted).
WRK_SECONDS=4
PORT=19200
NGINX_PORT=19280

for prog in "$SGCTL" jq nginx wrk curl pgrep; do
	command -v "$prog" >/dev/null || { echo "# $prog not found"; exit $KSFT_SKIP; }
done
[ -x "$BIN" ] || { echo "# no test program at $BIN (make test-progs)"; exit $KSFT_FAIL; }

SERVE_PID= NGINX_PID= STOPPED=
cleanup() {
	[ -n "$STOPPED" ] && kill -CONT "$STOPPED" 2>/dev/null
	[ -n "$NGINX_PID" ] && kill -QUIT "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
	test_cleanup
}
test_setup
trap cleanup EXIT
unload_module 2>/dev/null
load_module || { ksft_result 1 "insmod sockgroup"; ksft_exit; }

### a. sgctl serve: a stalled member among three ###

# serve_case NAME ADDR MODE STALL: the serve/connect run of one case (MODE
# steer or rewrite, STALL the --stall-ms or "none"), its files in $tmp/NAME.*.
serve_case() {
	local name=$1 addr=$2 mode=$3 stall=$4 f=$tmp/$1
	local args=(--port "$PORT" --addr "$addr" --listeners 3 --backlog "$BACKLOG" --stalled 0
		--read-payload --json --serve-seconds 300 --ready-file "$f.ready")
	local ports=1 timeout=$TIMEOUT_MS conc=$CONC
	[ "$mode" = rewrite ] && args+=(--rewrite --distinct-ports) && ports=3
	if [ "$stall" = none ]; then
		timeout=$BASE_TIMEOUT_MS conc=$((CONC * 2))
	else
		args+=(--stall-ms "$stall")
	fi
	PORT=$((PORT + 10))
	"$SGCTL" serve "${args[@]}" >"$f.serve.json" 2>"$f.serve.log" &
	SERVE_PID=$!
	if ! busywait 10000 test -s "$f.ready"; then
		echo "# $name: the server did not start"
		sed 's/^/# /' "$f.serve.log"
		stop_pid "$SERVE_PID"
		return 1
	fi
	"$SGCTL" connect --addr "$addr" --port "${args[1]}" --ports "$ports" --count "$CLIENTS" \
		--concurrency "$conc" --timeout-ms "$timeout" --payload "$PAYLOAD" --json \
		>"$f.connect.json"
	"$SGCTL" show --json >"$f.show.json"
	cp /proc/net/sockgroup "$f.proc"
	stop_pid "$SERVE_PID"
	SERVE_PID=
	echo "# $name: $(jq -c '{completed, failed, timeouts, connect_failed, payload_mismatch,
		served: [.members[] | "\(.member):\(.served)"], p99_us: .connect_latency_us.p99}' \
		"$f.connect.json")"
	jq -r '.group.members[]? | "#   member \(.index) \(.local) \(.status) queue \(.accept_queue)" +
		" redirected_away \(.redirected_away) rescued_away \(.rescued_away) rescued_in \(.rescued_in)"' \
		"$f.serve.json"
}

# every_client_served NAME: all clients answered by members 1 and 2, their
# payloads intact; member 0 accepted nothing; serve answered them all.
every_client_served() {
	local f=$tmp/$1
	jq -e --argjson n "$CLIENTS" '.completed == $n and .failed == 0 and .timeouts == 0
		and .payload_mismatch == 0 and .payload_bytes > 0
		and ([.members[] | select(.member == 0)] | length) == 0' "$f.connect.json" >/dev/null ||
		{ echo "connect: $(jq -c . "$f.connect.json" | cut -c1-400)"; return 1; }
	jq -e --argjson n "$CLIENTS" '.total == $n and .unanswered == 0 and .members[0].accepted == 0' \
		"$f.serve.json" >/dev/null ||
		{ echo "serve: $(jq -c '{total, unanswered, members}' "$f.serve.json")"; return 1; }
}

# rescued_counters NAME: in the getsockopt reply (serve's report at exit),
# the group's stall_ms is STALL_MS, member 0 is stalled with rescued_away >
# 0 equal to its siblings' rescued_in, which rescued nothing away.
rescued_counters() {
	# A sibling slow to accept on a loaded host (the debug kernel beside
	# the plain one) may be found stalled for a while too and pass some of
	# its queue on: what the group's members rescued away, its members
	# rescued in, and member 0 none.
	jq -e --argjson s "$STALL_MS" '.group as $g | $g.stall_ms == $s
		and $g.members[0].status == "stalled" and $g.members[0].rescued_away > 0
		and $g.members[0].rescued_in == 0
		and ([$g.members[] | .rescued_away] | add) == ([$g.members[] | .rescued_in] | add)
		and ([$g.members[1:][] | .status == "serving"] | any)' "$tmp/$1.serve.json" >/dev/null ||
		{ jq -c '.group' "$tmp/$1.serve.json"; return 1; }
}

# procfs_agrees NAME: /proc/net/sockgroup (its header with the four new
# columns at the end; parsed by `sgctl show --json`) lists each member with
# the status and counters of the getsockopt reply (no traffic in between).
procfs_agrees() {
	local f=$tmp/$1 header
	IFS= read -r header <"$f.proc"
	[[ $header == *" cookie stall_ms status rescued_away rescued_in" ]] ||
		{ echo "header: $header"; return 1; }
	jq -e -n --slurpfile show "$f.show.json" --slurpfile serve "$f.serve.json" '
		($serve[0].group) as $g
		| ($show[0] | map(select(.id == $g.id)) | .[0]) as $p
		| $p.stall_ms == $g.stall_ms and ($p.members | length) == ($g.members | length)
		and ([$g.members[] as $m | $p.members[] | select(.cookie == $m.cookie)
			| .status == $m.status and .rescued_away == $m.rescued_away
			  and .rescued_in == $m.rescued_in] | length == 3 and all)' >/dev/null ||
		{ sed 's/^/# /' "$f.proc"; jq -c '.group.members' "$f.serve.json"; return 1; }
}

for c in "steer-ipv4 127.0.0.1 steer" "steer-ipv6 ::1 steer" \
	"rewrite-ipv4 127.0.0.1 rewrite" "rewrite-ipv6 ::1 rewrite"; do
	read -r name addr mode <<<"$c"
	if ! serve_case "$name" "$addr" "$mode" "$STALL_MS"; then
		ksft_result 1 "$name: sgctl serve --stall-ms $STALL_MS"
		continue
	fi
	check "$name: $CLIENTS clients of a group with member 0 stalled all served by siblings, payload intact" \
		every_client_served "$name"
	check "$name: member 0 stalled, rescued away > 0, the group's rescued_away = rescued_in (getsockopt v2)" \
		rescued_counters "$name"
	check "$name: /proc/net/sockgroup's stall columns agree with getsockopt" procfs_agrees "$name"
done

# The baseline: the same group without stall rescue.
if serve_case baseline 127.0.0.1 steer none; then
	never=$(jq '.timeouts' "$tmp/baseline.connect.json")
	echo "# baseline (group without --stall-ms): $never of $CLIENTS clients connected and were" \
		"never served (member 0's queue, backlog $BACKLOG); with --stall-ms $STALL_MS: 0"
	check "baseline without --stall-ms: clients left in member 0's queue ($never) are never served" \
		jq -e '.timeouts > 0 and .payload_mismatch == 0' "$tmp/baseline.connect.json"
	check "baseline: version 1 request, no stall columns' values (stall_ms 0, nothing rescued)" \
		jq -e '.group.stall_ms == 0 and ([.group.members[] | .rescued_away + .rescued_in] | add) == 0' \
		"$tmp/baseline.serve.json"
else
	ksft_result 1 "baseline: sgctl serve without --stall-ms"
fi

### b. nginx with a stopped worker, under wrk ###

cat >"$tmp/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 3;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $tmp/nb;
	proxy_temp_path $tmp/np;
	fastcgi_temp_path $tmp/nf;
	uwsgi_temp_path $tmp/nu;
	scgi_temp_path $tmp/ns;
	server {
		listen 127.0.0.1:$NGINX_PORT reuseport backlog=511;
		return 200 "worker \$pid\n";
	}
}
EOF

# listeners PORT: how many sockets listen on 127.0.0.1:PORT.
listeners() {
	local sl local_addr rem st rest hex n=0
	printf -v hex '0100007F:%04X' "$1"
	while read -r sl local_addr rem st rest; do
		[ "$local_addr" = "$hex" ] && [ "$st" = 0A ] && n=$((n + 1))
	done </proc/net/tcp
	echo "$n"
}
three_listeners() { [ "$(listeners "$NGINX_PORT")" = 3 ]; }

# run_wrk NAME: wrk with fresh connections; sets TIMEOUTS and REQUESTS.
run_wrk() {
	timeout $((WRK_SECONDS + 30)) wrk -t 2 -c "$WRK_CONN" -d "${WRK_SECONDS}s" --timeout 2s \
		-H 'Connection: close' "http://127.0.0.1:$NGINX_PORT/" >"$tmp/wrk-$1.txt" 2>&1
	sed 's/^/#   /' "$tmp/wrk-$1.txt"
	TIMEOUTS=$(sed -n 's/.*Socket errors:.*timeout \([0-9]*\).*/\1/p' "$tmp/wrk-$1.txt")
	TIMEOUTS=${TIMEOUTS:-0}
	REQUESTS=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$tmp/wrk-$1.txt")
	REQUESTS=${REQUESTS:-0}
}

# the_worker_answers PID: a request served by worker PID (the reuseport
# hash picks a listener per connection: a few tries).
the_worker_answers() {
	[ "$(curl -s --max-time 2 "http://127.0.0.1:$NGINX_PORT/")" = "worker $1" ]
}

# member_line COOKIE: the /proc/net/sockgroup fields of that member.
member_line() {
	awk -v c="$1" '$1 !~ /^#/ && $14 == c' /proc/net/sockgroup
}
is_serving() { [ "$(member_line "$1" | awk '{ print $16 }')" = serving ]; }

nginx -c "$tmp/nginx.conf" -e "$tmp/nginx-error.log" 2>>"$tmp/nginx-error.log" &
NGINX_PID=$!
workers=()
if busywait 10000 three_listeners; then
	busywait 5000 sh -c "[ \$(pgrep -c -P $NGINX_PID) = 3 ]"
	mapfile -t workers < <(pgrep -P "$NGINX_PID")
fi
if [ "${#workers[@]}" = 3 ]; then
	ksft_result 0 "nginx: 3 workers, 3 reuseport listeners on port $NGINX_PORT"
else
	ksft_result 1 "nginx: 3 workers, 3 reuseport listeners on port $NGINX_PORT"
	sed 's/^/# /' "$tmp/nginx-error.log"
fi

if [ "${#workers[@]}" = 3 ]; then
	W=${workers[1]}
	echo "# nginx master $NGINX_PID, workers ${workers[*]}; stopping worker $W"

	# Stock: no group.
	kill -STOP "$W" && STOPPED=$W
	run_wrk stock
	stock_timeouts=$TIMEOUTS stock_requests=$REQUESTS
	# The stopped worker's listener is the one with a queue (ss: Recv-Q).
	stock_stuck=$(ss -Hltn "sport = :$NGINX_PORT" | awk '$2 > m { m = $2 } END { print m + 0 }')
	kill -CONT "$W" && STOPPED=
	check "stock: the worker resumed serves again" busywait 10000 the_worker_answers "$W"

	out=$("$SGCTL" group --pid "$NGINX_PID" --listening --stall-ms "$STALL_MS" 2>&1)
	rc=$?
	echo "$out" | sed 's/^/# /'
	if [ "$rc" = 0 ] && echo "$out" | grep -q "^grouped .* (policy ring, stall-ms $STALL_MS)$" &&
		echo "$out" | grep -q "^process $NGINX_PID: 3 listening TCP sockets$"; then
		ksft_result 0 "sgctl group --pid MASTER --listening --stall-ms $STALL_MS: 3 listeners"
	else
		ksft_result 1 "sgctl group --pid MASTER --listening --stall-ms $STALL_MS: 3 listeners"
	fi

	kill -STOP "$W" && STOPPED=$W
	run_wrk group
	sed 's/^/# /' /proc/net/sockgroup
	stalled=$(awk '$1 !~ /^#/ && $16 == "stalled" { print $14, $17 }' /proc/net/sockgroup)
	echo "# worker $W stopped, wrk ${WRK_SECONDS}s, $WRK_CONN connections: stock kernel" \
		"$stock_timeouts socket timeouts of $stock_requests requests; group with --stall-ms" \
		"$STALL_MS: $TIMEOUTS timeouts of $REQUESTS requests"
	if [ "$TIMEOUTS" = 0 ] && [ "$REQUESTS" -gt 0 ]; then
		ksft_result 0 "grouped, worker stopped: 0 socket timeouts ($REQUESTS requests; stock: $stock_timeouts timeouts)"
	else
		ksft_result 1 "grouped, worker stopped: 0 socket timeouts ($TIMEOUTS of $REQUESTS requests)"
	fi
	# The stopped worker's member: the stalled one that passed the most
	# on (on a loaded host a running worker's member may stall a moment
	# too, and pass a few on: said, not judged).
	read -r cookie away < <(sort -k2,2nr <<<"$stalled" | head -n 1)
	[ "$(grep -c . <<<"$stalled")" -gt 1 ] && echo "# more than one member stalled: $(tr '\n' ' ' <<<"$stalled")"
	if [ -n "$cookie" ] && [ "${away:-0}" -gt 0 ]; then
		ksft_result 0 "the stopped worker's member is stalled, $away connections rescued away"
	else
		ksft_result 1 "the stopped worker's member is stalled, connections rescued away (${stalled:-no member stalled})"
	fi
	# What is still in its queue (a probe let through at the end) moves
	# within stall_ms and a tick: then nothing is left unserved.
	queue_empty() { [ "$(member_line "$1" | awk '{ print $8 }')" = 0 ]; }
	if [ -n "$cookie" ] && busywait $((2 * STALL_MS + 500)) queue_empty "$cookie"; then
		ksft_result 0 "grouped: 0 connections left in the stopped worker's queue (stock: $stock_stuck)"
	else
		ksft_result 1 "grouped: 0 connections left in the stopped worker's queue: $(member_line "$cookie" | awk '{ print $8 }')"
	fi
	echo "# connected and never served while the worker was stopped: stock kernel $stock_stuck," \
		"group with --stall-ms $STALL_MS 0"

	# Its queue was rescued: it has nothing to accept until a probe (one
	# connection per second) reaches it, which it then serves.
	kill -CONT "$W" && STOPPED=
	check "after SIGCONT: worker $W answers requests (a probe reaches it)" \
		busywait 10000 the_worker_answers "$W"
	if [ -n "$cookie" ]; then
		check "after SIGCONT: the worker's member is serving again" busywait 5000 is_serving "$cookie"
	else
		ksft_result 1 "after SIGCONT: the worker's member is serving again (no member was stalled)"
	fi
	stop_pid "$NGINX_PID" QUIT
	NGINX_PID=
	check "nginx stopped: no group left" busywait 5000 sh -c '! grep -qv "^#" /proc/net/sockgroup'
fi

### c. the stalled member closes during its rescue ###

echo "# $BIN -f stall_close"
"$BIN" -f stall_close 2>&1 | sed 's/^#  /#   /'
rc=${PIPESTATUS[0]}
ksft_result "$rc" "sockgroup_test -f stall_close: nothing lost, nothing twice"

check "rmmod sockgroup" unload_module
ksft_exit
