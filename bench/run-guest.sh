#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The benchmarks, inside the test VM (started by bench/bench.sh through
# selftests/vm-run).  Writes raw results to $SOCKGROUP_OUT (copied back to
# the host): meta.txt, and one file per measurement under raw/.  The host
# side (bench/aggregate.py) turns them into bench/results/latest.json.
#
# 1. Overload: three listeners, member 0 stalled (never accepts, backlog
#    $OV_BACKLOG); $OV_COUNT fresh connections per case and round from
#    `sgctl connect` ($OV_CONC clients at once), nstat deltas around each.
#      idle       stock kernel, 3 ports, nobody stalled (the unloaded p99)
#      stock      stock kernel, 3 ports (PORT, PORT+1, PORT+2), no group;
#                 clients dial the three ports in turn
#      reuseport  stock kernel, 3 SO_REUSEPORT listeners on one port
#      ring       sockgroup, the 3 ports of `stock` in a ring group
#      primary    sockgroup, the same, policy primary
#      rescue     sockgroup + stall rescue: the ring group of `ring` with
#                 --stall-ms $OV_STALL_MS (member 0's queue moved to its
#                 siblings once its oldest connection waited that long)
#    The module is loaded for ring, primary and rescue only; the order of the
#    cases is reversed every other round.
# 2. Cost: two network namespaces on a veth pair; nginx (one worker, three
#    listeners) in one, wrk (fresh connections, "Connection: close") and
#    iperf3 in the other.  States: module not loaded, loaded without any
#    group, loaded with nginx's three listeners in a group (nobody full).
#    Every round runs the three states; the order rotates, so that each
#    state takes each position once every three rounds.
# 3. SYN decision (bench/README.md, section 4): the module's decision timed
#    inside the kernel by the KUnit case sg_test_syn_decision
#    (sockgroup_kunit.ko loaded with syn_bench_iters=$SYN_ITERS
#    syn_bench_rounds=$SYN_ROUNDS): groups of 2, 8 and 64 loopback
#    listeners, and no group; its results file is kept.
# 4. Handoff (bench/README.md, section 5; bench/run-handoff.sh): on the
#    cluster of selftests/handoff.sh, the client direct to a back-end,
#    through HAProxy, IPVS-DR and the handoff; requests/s, TTFB, CPU, bytes
#    through the front-end, and a 20 MiB upload's per-packet cost.
# 5. Failover (bench/README.md, section 6): selftests/dispatch.sh, whose
#    rounds j, l and k make $FO_DOWNLOADS (30) paced downloads each (1 MiB
#    at 64 KiB/s)
#    over three dispatchers while the owner of about a third loses its
#    link (j), a fourth dispatcher joins (l), a node's namespace is deleted
#    (k); $FO_ROUNDS runs, their figures (DISPATCH_FIGURES: downloads
#    complete, reset, the longest stall of those the leaving node owned
#    and of the others) in raw/failover.N.jsonl, the suite's output and
#    exit status beside them.
#
# BENCH_SECTIONS (default "overload cost syn handoff failover") names the
# sections to run.
#
# Every wait and every client run is bounded in time; each section stops
# starting rounds once its time budget is spent (at least $MIN_ROUNDS rounds).
#
# Under TCG, starting a program (exec) costs seconds when the host is busy:
# waits, counters and logs here use bash builtins only.  The TCP counters
# are read from /proc/net/netstat and /proc/net/snmp, the files nstat reads
# (a snapshot before and after each case; nstat itself is run once at the end
# as a cross-check).

source "$(dirname "$0")/../selftests/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
SGCTL=${SGCTL:-$here/../target/debug/sgctl}
OUT=${SOCKGROUP_OUT:-/tmp/bench-out}
RAW=$OUT/raw

OV_ROUNDS=${OV_ROUNDS:-3}
OV_COUNT=${OV_COUNT:-150}
OV_CONC=${OV_CONC:-4}
OV_TIMEOUT_MS=${OV_TIMEOUT_MS:-1100}
OV_BACKLOG=${OV_BACKLOG:-4}
OV_STALL_MS=${OV_STALL_MS:-100}
COST_ROUNDS=${COST_ROUNDS:-6}
WRK_SECONDS=${WRK_SECONDS:-2}
WRK_CONN=${WRK_CONN:-8}
IPERF_SECONDS=${IPERF_SECONDS:-2}
MIN_ROUNDS=${MIN_ROUNDS:-3}
OV_BUDGET_S=${OV_BUDGET_S:-200}
COST_BUDGET_S=${COST_BUDGET_S:-180}
SYN_ITERS=${SYN_ITERS:-100000}
SYN_ROUNDS=${SYN_ROUNDS:-5}
FO_ROUNDS=${FO_ROUNDS:-2}
FO_DOWNLOADS=${FO_DOWNLOADS:-100}
BENCH_SECTIONS=${BENCH_SECTIONS:-overload cost syn handoff failover}

SRV_IP=10.77.0.1
CLI_IP=10.77.0.2
HTTP_PORT=8080
IPERF_PORT=5201
export NSTAT_HISTORY=/tmp/bench.nstat

TMP=$(mktemp -d /tmp/bench.XXXXXX)
SERVE_PID= NGINX_PID= IPERF_PID=

T0=${EPOCHREALTIME/./}
now_ms() { echo $(( (${EPOCHREALTIME/./} - T0) / 1000 )); }
log() { printf 'bench: [%6.1f s] %s\n' "$(( $(now_ms) / 100 ))e-1" "$*"; }

# nap SECONDS: sleep without starting a program (read on a pipe nobody writes).
exec {NAPFD}<> <(:)
nap() { read -rt "$1" -u "$NAPFD" || :; }

# wait_for TIMEOUT_MS CMD ARGS...: until CMD succeeds; fails after TIMEOUT_MS.
wait_for() {
	local end=$(( $(now_ms) + $1 )); shift
	until "$@"; do
		(( $(now_ms) > end )) && return 1
		nap 0.05
	done
}

# tcp_listening PID PORT: a socket of PID's network namespace listens on PORT
# (IPv4), from /proc/PID/net/tcp.
tcp_listening() {
	local hex line sl local_addr rem st rest lines
	printf -v hex ':%04X' "$2"
	# Read whole (see `gone` in selftests/lib.sh).
	mapfile -t lines 2>/dev/null <"/proc/$1/net/tcp" || return 1
	for line in "${lines[@]}"; do
		read -r sl local_addr rem st rest <<<"$line"
		[[ $local_addr == *"$hex" && $st == 0A ]] && return 0
	done
	return 1
}

# counters FILE: snapshot of the TCP counters (what nstat reads).
counters() {
	local lines
	mapfile lines </proc/net/netstat
	printf '%s' "${lines[@]}" >"$1"
	mapfile lines </proc/net/snmp
	printf '%s' "${lines[@]}" >>"$1"
}

# json_field FILE NAME: the first number after "NAME": in FILE.
json_field() {
	local text
	text=$(<"$1")
	[[ $text =~ \"$2\":[[:space:]]*([0-9.e+-]+) ]] && echo "${BASH_REMATCH[1]}"
}

cleanup() {
	stop_pid "$SERVE_PID"; stop_pid "$NGINX_PID" QUIT; stop_pid "$IPERF_PID"
	SERVE_PID= NGINX_PID= IPERF_PID=
	cleanup_all_ns
	unload_module 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

module_state() { # loaded|unloaded
	case "$1" in
	loaded) module_loaded || insmod "$SOCKGROUP_KO" || return 1 ;;
	unloaded) ! module_loaded || rmmod sockgroup || return 1 ;;
	esac
}

# ---------------------------------------------------------------- meta
mkdir -p "$RAW"
clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)
accel=unknown
if dmesg | grep -q 'Hypervisor detected: KVM'; then
	accel=kvm
elif grep -q 'QEMU TCG' /proc/cpuinfo; then
	accel=tcg
fi
{
	echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "kernel=$(uname -r)"
	echo "kernel_version=$(uname -v)"
	echo "cpus=$(nproc)"
	echo "cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	echo "accel=$accel"
	echo "clocksource=$clocksource"
	echo "cmdline=$(cat /proc/cmdline)"
	echo "module=$SOCKGROUP_KO"
	echo "module_srcversion=$(modinfo -F srcversion "$SOCKGROUP_KO" 2>/dev/null)"
	echo "ov_rounds=$OV_ROUNDS"
	echo "ov_count=$OV_COUNT"
	echo "ov_concurrency=$OV_CONC"
	echo "ov_timeout_ms=$OV_TIMEOUT_MS"
	echo "ov_backlog=$OV_BACKLOG"
	echo "ov_stall_ms=$OV_STALL_MS"
	echo "cost_rounds=$COST_ROUNDS"
	echo "wrk_seconds=$WRK_SECONDS"
	echo "wrk_connections=$WRK_CONN"
	echo "iperf_seconds=$IPERF_SECONDS"
	echo "wrk_version=$(wrk --version 2>&1 | head -n 1 | cut -d' ' -f2)"
	echo "iperf3_version=$(iperf3 --version | head -n 1)"
	echo "syn_iters=$SYN_ITERS"
	echo "syn_rounds=$SYN_ROUNDS"
	echo "sections=$BENCH_SECTIONS"
} >"$OUT/meta.txt"
cat "$OUT/meta.txt"
if [ "$clocksource" != tsc ]; then
	log "WARNING: clocksource is $clocksource, not tsc: latencies are in jiffies steps"
fi

# ---------------------------------------------------------------- overload
# overload_case NAME ROUND INDEX: one case of one round.
overload_case() {
	local name=$1 round=$2 index=$3 lines
	local port=$((20000 + round * 100 + index * 10))
	local serve=(--port "$port" --listeners 3 --backlog "$OV_BACKLOG" --stalled 0)
	local ports=3
	case "$name" in
	idle) serve=(--port "$port" --listeners 3 --backlog "$OV_BACKLOG" --distinct-ports --no-group) ;;
	stock) serve+=(--distinct-ports --no-group) ;;
	reuseport) serve+=(--no-group); ports=1 ;;
	ring) serve+=(--distinct-ports --policy ring) ;;
	primary) serve+=(--distinct-ports --policy primary) ;;
	rescue) serve+=(--distinct-ports --policy ring --stall-ms "$OV_STALL_MS") ;;
	esac
	local base=$RAW/overload-$name-r$round
	rm -f "$TMP/ready"
	"$SGCTL" serve "${serve[@]}" --ready-file "$TMP/ready" --serve-seconds 120 --json \
		>"$base.serve.json" 2>"$base.serve.log" &
	SERVE_PID=$!
	if ! wait_for 30000 test -s "$TMP/ready"; then
		log "overload $name round $round: the server did not start"
		cat "$base.serve.log"
		stop_pid "$SERVE_PID"; SERVE_PID=
		return 1
	fi
	counters "$base.counters-before.txt"
	timeout 120 "$SGCTL" connect --port "$port" --ports "$ports" --count "$OV_COUNT" \
		--concurrency "$OV_CONC" --timeout-ms "$OV_TIMEOUT_MS" --json --samples \
		>"$base.connect.json"
	counters "$base.counters-after.txt"
	if [ -r /proc/net/sockgroup ]; then
		mapfile lines </proc/net/sockgroup
		printf '%s' "${lines[@]}" >"$base.sockgroup.txt"
	fi
	stop_pid "$SERVE_PID"; SERVE_PID=
	log "overload $name round $round: completed $(json_field "$base.connect.json" completed)," \
		"failed $(json_field "$base.connect.json" failed), p99 $(json_field "$base.connect.json" p99) us," \
		"$(json_field "$base.connect.json" elapsed_us) us"
}

overload() {
	local round order name i start
	start=$(now_ms)
	for ((round = 1; round <= OV_ROUNDS; round++)); do
		if ((round > MIN_ROUNDS && $(now_ms) - start > OV_BUDGET_S * 1000)); then
			log "overload: time budget spent, $((round - 1)) rounds"
			break
		fi
		if ((round % 2)); then
			order=(idle stock reuseport ring primary rescue)
		else
			order=(rescue primary ring reuseport stock idle)
		fi
		for i in "${!order[@]}"; do
			name=${order[$i]}
			case "$name" in
			ring | primary | rescue) module_state loaded ;;
			*) module_state unloaded ;;
			esac || return 1
			overload_case "$name" "$round" "$i" || return 1
		done
	done
	module_state unloaded
}

# ---------------------------------------------------------------- cost
setup_cost_net() {
	setup_ns SRV CLI || return 1
	ip link add veth-srv netns "$SRV" type veth peer name veth-cli netns "$CLI" || return 1
	ip -n "$SRV" addr add "$SRV_IP/24" dev veth-srv
	ip -n "$CLI" addr add "$CLI_IP/24" dev veth-cli
	ip -n "$SRV" link set veth-srv up
	ip -n "$CLI" link set veth-cli up
	mkdir -p "$TMP/nginx"
	cat >"$TMP/nginx.conf" <<-EOF
		daemon off;
		master_process on;
		worker_processes 1;
		pid $TMP/nginx/nginx.pid;
		error_log $TMP/nginx/error.log;
		events { worker_connections 1024; }
		http {
			access_log off;
			client_body_temp_path $TMP/nginx/b;
			proxy_temp_path $TMP/nginx/p;
			fastcgi_temp_path $TMP/nginx/f;
			uwsgi_temp_path $TMP/nginx/u;
			scgi_temp_path $TMP/nginx/s;
			server {
				listen $SRV_IP:$HTTP_PORT;
				listen $SRV_IP:$((HTTP_PORT + 1));
				listen $SRV_IP:$((HTTP_PORT + 2));
				return 200 "ok\n";
			}
		}
	EOF
}

# cpu_ticks: busy and total ticks of all CPUs (the "cpu" line of /proc/stat).
cpu_ticks() {
	local cpu user nice system idle iowait rest
	read -r cpu user nice system idle iowait rest </proc/stat
	local total=$((user + nice + system + idle + iowait)) v
	for v in $rest; do total=$((total + v)); done
	echo "$((total - idle - iowait)) $total"
}

GROUPED=0

# cost_enter STATE: unloaded, loaded (no group) or group (nginx's three
# listeners grouped; the group goes with rmmod).
cost_enter() {
	case "$1" in
	unloaded) module_state unloaded || return 1; GROUPED=0 ;;
	loaded)
		# The round orders never ask for group -> loaded.
		((GROUPED == 0)) || { log "cost: cannot leave the group state for loaded"; return 1; }
		module_state loaded ;;
	group)
		module_state loaded || return 1
		if ((GROUPED == 0)); then
			ip netns exec "$SRV" "$SGCTL" group --pid "$NGINX_PID" --listening \
				>"$RAW/cost-group.sgctl-group.txt" 2>&1 || {
				log "cost: sgctl group failed"; cat "$RAW/cost-group.sgctl-group.txt"; return 1; }
			GROUPED=1
		fi ;;
	esac
}

# cost_state STATE ROUND: wrk, then iperf3, in one state.
cost_state() {
	local state=$1 round=$2 lines
	local base=$RAW/cost-$state-r$round
	cost_enter "$state" || return 1

	local b0 t0 b1 t1
	read -r b0 t0 < <(cpu_ticks)
	timeout $((WRK_SECONDS + 30)) ip netns exec "$CLI" wrk -t 2 -c "$WRK_CONN" -d "${WRK_SECONDS}s" \
		--timeout 2s -H 'Connection: close' "http://$SRV_IP:$HTTP_PORT/" >"$base.wrk.txt" 2>&1
	read -r b1 t1 < <(cpu_ticks)
	echo "busy_ticks=$((b1 - b0)) total_ticks=$((t1 - t0))" >"$base.wrk-cpu.txt"
	if [ -r "/proc/$NGINX_PID/net/sockgroup" ]; then
		mapfile lines <"/proc/$NGINX_PID/net/sockgroup"
		printf '%s' "${lines[@]}" >"$base.sockgroup.txt"
	fi
	timeout $((IPERF_SECONDS + 30)) ip netns exec "$CLI" iperf3 -c "$SRV_IP" -p "$IPERF_PORT" \
		-t "$IPERF_SECONDS" -J >"$base.iperf3.json" 2>&1
	local wrk iperf
	wrk=$(<"$base.wrk.txt")
	[[ $wrk =~ Requests/sec:[[:space:]]*([0-9.]+) ]] && wrk=${BASH_REMATCH[1]} || wrk=?
	iperf=$(<"$base.iperf3.json")
	[[ $iperf =~ \"sum_received\":[^}]*\"bits_per_second\":[[:space:]]*([0-9]+) ]] &&
		iperf=$((BASH_REMATCH[1] / 1000000)) || iperf=?
	log "cost $state round $round: wrk $wrk conn/s, iperf3 $iperf Mbit/s"
}

cost() {
	local round order state start
	start=$(now_ms)
	setup_cost_net || return 1
	# nginx and the iperf3 server run for the whole section: the states
	# change under them (insmod, sgctl group, rmmod).
	ip netns exec "$SRV" nginx -c "$TMP/nginx.conf" -e "$TMP/nginx/error.log" 2>>"$TMP/nginx/error.log" &
	NGINX_PID=$!
	if ! wait_for 30000 tcp_listening "$NGINX_PID" $((HTTP_PORT + 2)); then
		log "cost: nginx did not start"; cat "$TMP/nginx/error.log"
		return 1
	fi
	ip netns exec "$SRV" iperf3 -s -B "$SRV_IP" -p "$IPERF_PORT" >/dev/null 2>&1 &
	IPERF_PID=$!
	wait_for 30000 tcp_listening "$IPERF_PID" "$IPERF_PORT" || { log "cost: iperf3 -s did not start"; return 1; }
	for ((round = 1; round <= COST_ROUNDS; round++)); do
		if ((round > MIN_ROUNDS && $(now_ms) - start > COST_BUDGET_S * 1000)); then
			log "cost: time budget spent, $((round - 1)) rounds"
			break
		fi
		# Each state takes each position once every three rounds; the
		# rotation never goes from group to loaded.
		case $((round % 3)) in
		1) order=(unloaded loaded group) ;;
		2) order=(group unloaded loaded) ;;
		0) order=(loaded group unloaded) ;;
		esac
		for state in "${order[@]}"; do
			cost_state "$state" "$round" || return 1
		done
	done
	stop_pid "$IPERF_PID"; IPERF_PID=
	stop_pid "$NGINX_PID" QUIT; NGINX_PID=
	module_state unloaded
}

# ---------------------------------------------------------------- syn decision
syn_decision() {
	local results=/sys/kernel/debug/kunit/sockgroup/results lines line
	module_state loaded || return 1
	if ! insmod "$SOCKGROUP_KUNIT_KO" syn_bench_iters="$SYN_ITERS" syn_bench_rounds="$SYN_ROUNDS"; then
		log "syn decision: insmod sockgroup_kunit.ko failed"
		return 1
	fi
	mapfile lines <"$results"
	printf '%s' "${lines[@]}" >"$RAW/syn-decision.kunit.txt"
	rmmod sockgroup_kunit
	module_state unloaded
	for line in "${lines[@]}"; do
		[[ $line == *"syn_decision members="*" case=walk "* ]] && log "${line#*# }"
		[[ $line == "ok "*" sockgroup"* ]] && return 0
	done
	log "syn decision: the KUnit suite failed"
	printf '%s' "${lines[@]}"
	return 1
}

source "$here/run-handoff.sh"

# ---------------------------------------------------------------- failover
# failover_section: selftests/dispatch.sh $FO_ROUNDS times (it loads and
# removes the module itself); a run whose checks failed is kept and said
# (its status file), its figures are what they are.
failover_section() {
	local r status
	module_state unloaded || return 1
	for r in $(seq 1 "$FO_ROUNDS"); do
		log "failover: run $r of $FO_ROUNDS (selftests/dispatch.sh)"
		status=0
		DISPATCH_FIGURES=$RAW/failover.$r.jsonl DISPATCH_J=$FO_DOWNLOADS SGCTL=$SGCTL \
			bash "$here/../selftests/dispatch.sh" >"$RAW/failover.$r.tap" 2>&1 || status=$?
		echo "$status" >"$RAW/failover.$r.status"
		[ "$status" = 0 ] || log "failover: run $r: dispatch.sh exited $status (raw/failover.$r.tap)"
		[ -s "$RAW/failover.$r.jsonl" ] || { log "failover: run $r wrote no figures"; return 1; }
		log "failover: run $r: $(tr '\n' ' ' <"$RAW/failover.$r.jsonl")"
	done
	module_state unloaded
}

# section NAME: whether BENCH_SECTIONS names it.
section() { [[ " $BENCH_SECTIONS " == *" $1 "* ]]; }

if section overload; then
	overload || { log "overload failed"; exit 1; }
	log "overload done"
	# Cross-check: nstat's view of the counters, next to our own snapshot.
	counters "$RAW/check.counters.txt"
	nstat -a -z --json >"$RAW/check.nstat.json" 2>&1
fi
if section cost; then
	cost || { log "cost failed"; exit 1; }
	log "cost done"
fi
if section syn; then
	syn_decision || { log "syn decision failed"; exit 1; }
	log "syn decision done"
fi
if section handoff; then
	handoff_section || { log "handoff failed"; exit 1; }
	log "handoff done"
fi
if section failover; then
	failover_section || { log "failover failed"; exit 1; }
	log "failover done"
fi
dmesg >"$OUT/dmesg.txt"
exit 0
