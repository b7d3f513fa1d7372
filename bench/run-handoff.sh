# SPDX-License-Identifier: GPL-2.0
#
# The handoff section of the benchmarks (bench/README.md, section 5), sourced
# by bench/run-guest.sh (whose helpers it uses: log, wait_for, module_state,
# $RAW, $TMP, $SGCTL), on the cluster of selftests/handoff.sh
# (selftests/handoff_lib.sh): cli - rtr - {fe, be1, be2}, nginx on every
# node, fe's rules sending /be1/ to be1. Cases, alternating round after round:
#
#   direct   the client fetches from be1 itself (10.80.0.2:8090)
#   haproxy  HAProxy in HTTP mode on fe ($VIP:8080), the same content rules
#            (/be1/ to be1, /be2/ to be2, the rest to fe's nginx)
#   ipvs-dr  IPVS direct routing on fe ($VIP:8090, real server be1, which
#            holds $VIP on lo with arp_ignore/arp_announce: cluster_net's)
#   handoff  sockgroup: fe's service 1 ($VIP:80), the rule /be1/ to be1
#
# Per round, object size and case: wrk (fresh connections, "Connection:
# close"), snapshots of the counters before and after it (/proc/stat, each
# namespace's /proc/PID/net/dev, the /proc/PID/stat of fe's processes), then
# bench/http_timing.py (TTFB and total time over $HO_SAMPLES fresh
# connections). Per round also a $HO_UPLOAD_MIB MiB POST to /be1/upload in
# the cases direct, ipvs-dr and handoff, with the same snapshots around it.
# bench/aggregate.py turns the snapshots into figures.

source "$here/../selftests/handoff_lib.sh"

HO_ROUNDS=${HO_ROUNDS:-4}
HO_SIZES=${HO_SIZES:-1 64 1024}
HO_CASES=${HO_CASES:-direct haproxy ipvs-dr handoff}
HO_WRK_SECONDS=${HO_WRK_SECONDS:-$WRK_SECONDS}
HO_CONN=${HO_CONN:-4}
HO_SAMPLES=${HO_SAMPLES:-30}
HO_UPLOAD_MIB=${HO_UPLOAD_MIB:-20}
HO_BUDGET_S=${HO_BUDGET_S:-420}
# HAProxy's threads (nbthread); unset: its default, one per CPU.
HO_HAPROXY_THREADS=${HO_HAPROXY_THREADS:-}

HO_HAPROXY_PORT=8080
HO_EXTRA_PORT=8090

# holder NS: a process in NS whose /proc/PID/net/dev and ns/net we read.
declare -A HO_HOLDER
ho_holders() {
	local var
	for var in cli rtr fe be1 be2; do
		ip netns exec "${!var}" sleep 100000 &
		HO_HOLDER[$var]=$!
	done
}

# ho_snapshot FILE: the counters the figures come from.
ho_snapshot() {
	local lines var p fens=/proc/${HO_HOLDER[fe]}/ns/net
	{
		mapfile -t lines </proc/stat
		echo "== stat"
		echo "${lines[0]}"
		for var in cli rtr fe be1 be2; do
			mapfile lines <"/proc/${HO_HOLDER[$var]}/net/dev"
			echo "== netdev $var"
			printf '%s' "${lines[@]:2}"
		done
		# fe's processes (nginx, haproxy): utime and stime of each, all its
		# threads (/proc/PID/stat fields 14 and 15).
		echo "== fe_procs"
		for p in /proc/[0-9]*; do
			[ "${p#/proc/}" != "${HO_HOLDER[fe]}" ] && [[ $p/ns/net -ef $fens ]] || continue
			mapfile -t lines 2>/dev/null <"$p/stat" && echo "${lines[0]}"
		done
	} >"$1"
}

# ho_tcp_counters BASE: cli's and be1's TCP counters (what nstat reads), kept
# raw beside an upload's figures.
ho_tcp_counters() {
	local var lines
	for var in cli be1; do
		mapfile lines <"/proc/${HO_HOLDER[$var]}/net/netstat"
		printf '%s' "${lines[@]}" >"$1.$var-netstat.txt"
		mapfile lines <"/proc/${HO_HOLDER[$var]}/net/snmp"
		printf '%s' "${lines[@]}" >>"$1.$var-netstat.txt"
	done
}

ho_target() { # CASE: "HOST PORT"
	case "$1" in
	direct) echo "10.80.0.2 $HO_EXTRA_PORT" ;;
	haproxy) echo "$VIP $HO_HAPROXY_PORT" ;;
	ipvs-dr) echo "$VIP $HO_EXTRA_PORT" ;;
	handoff) echo "$VIP 80" ;;
	esac
}

ho_enter() {
	[ "$1" = ipvs-dr ] || return 0
	at "$fe" ipvsadm -A -t "$VIP:$HO_EXTRA_PORT" -s rr &&
		at "$fe" ipvsadm -a -t "$VIP:$HO_EXTRA_PORT" -r "10.80.0.2:$HO_EXTRA_PORT" -g
}
ho_leave() {
	[ "$1" = ipvs-dr ] || return 0
	at "$fe" ipvsadm -L -n --stats >"$2.ipvs.txt" 2>&1
	at "$fe" ipvsadm -D -t "$VIP:$HO_EXTRA_PORT"
}

ho_haproxy() {
	cat >"$tmp/haproxy.cfg" <<-EOF
		global
			maxconn 4096
			${HO_HAPROXY_THREADS:+nbthread $HO_HAPROXY_THREADS}
			pidfile $tmp/haproxy.pid
		defaults
			mode http
			timeout connect 5s
			timeout client 30s
			timeout server 30s
		frontend web
			bind $VIP:$HO_HAPROXY_PORT
			acl be1 path_beg /be1/
			acl be2 path_beg /be2/
			use_backend be1 if be1
			use_backend be2 if be2
			default_backend fe
		backend be1
			server be1 10.80.0.2:$HO_EXTRA_PORT
		backend be2
			server be2 10.80.0.3:$HO_EXTRA_PORT
		backend fe
			server fe 10.80.0.1:$HO_EXTRA_PORT
	EOF
	cp "$tmp/haproxy.cfg" "$RAW/handoff-haproxy.cfg"
	at "$fe" haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 &
	HO_HAPROXY_PID=$!
	wait_for 30000 tcp_listening "${HO_HOLDER[fe]}" $HO_HAPROXY_PORT
}

ho_setup() {
	tmp=$TMP/handoff
	mkdir -p "$tmp"
	cluster_net $VIP $VIP6 || return 1
	module_state loaded || return 1
	CLUSTER_HB=1000 configure || { log "handoff: configure failed"; return 1; }
	wait_for 10000 peers_up || { log "handoff: the control channels did not come up"; return 1; }
	local s
	for s in $HO_SIZES; do
		head -c $((s * 1024)) /dev/urandom >"$tmp/obj-${s}k"
	done
	head -c $((HO_UPLOAD_MIB * 1048576)) /dev/urandom >"$tmp/upload"
	EXTRA_PORT=$HO_EXTRA_PORT start_nginx "$tmp/upload"
	wait_for 30000 listening || { log "handoff: nginx did not start"; cat "$tmp"/*/error.log; return 1; }
	for s in $HO_SIZES; do
		ln "$tmp/obj-${s}k" "$tmp/be1/www/be1/obj-${s}k"
	done
	ho_holders
	ho_haproxy || { log "handoff: haproxy did not start"; cat "$tmp/haproxy.log"; return 1; }
	# A few requests through every case before the first round: haproxy's
	# and nginx's first requests (and haproxy's start, which goes on after
	# it listens) are not in any case's figures.
	local c host port
	for c in $HO_CASES; do
		read -r host port < <(ho_target "$c")
		ho_enter "$c" || return 1
		timeout 120 ip netns exec "$cli" /usr/bin/python3 "$here/http_timing.py" "$host" "$port" \
			"/be1/obj-${HO_SIZES%% *}k" 3 >"$RAW/handoff-warmup-$c.json" 2>&1
		ho_leave "$c" "$RAW/handoff-warmup-$c"
	done
	sg "$fe" show --json >"$RAW/handoff-fe-show-before.json"
}

# ho_case CASE SIZE ROUND
ho_case() {
	local c=$1 s=$2 r=$3 host port
	local base=$RAW/handoff-$c-${s}k-r$r path=/be1/obj-${s}k
	read -r host port < <(ho_target "$c")
	ho_enter "$c" || { log "handoff: cannot set up $c"; return 1; }
	ho_snapshot "$base.before.txt"
	timeout $((HO_WRK_SECONDS + 30)) ip netns exec "$cli" wrk -t 2 -c "$HO_CONN" -d "${HO_WRK_SECONDS}s" \
		--timeout 5s -H 'Connection: close' "http://$host:$port$path" >"$base.wrk.txt" 2>&1
	ho_snapshot "$base.after.txt"
	timeout 300 ip netns exec "$cli" /usr/bin/python3 "$here/http_timing.py" "$host" "$port" "$path" \
		"$HO_SAMPLES" >"$base.timing.json" 2>"$base.timing.err"
	ho_leave "$c" "$base"
	local wrk
	wrk=$(<"$base.wrk.txt")
	[[ $wrk =~ Requests/sec:[[:space:]]*([0-9.]+) ]] && wrk=${BASH_REMATCH[1]} || wrk=?
	log "handoff $c ${s} KiB round $r: wrk $wrk req/s," \
		"timing client $(json_field "$base.timing.json" completed)/$HO_SAMPLES"
}

# ho_upload CASE ROUND
ho_upload() {
	local c=$1 r=$2 host port
	local base=$RAW/handoff-upload-$c-r$r
	read -r host port < <(ho_target "$c")
	ho_enter "$c" || return 1
	ho_snapshot "$base.before.txt"
	ho_tcp_counters "$base.before"
	timeout 120 ip netns exec "$cli" curl -sS -o "$base.answer.txt" -H 'Expect:' -H 'Connection: close' \
		-w 'http_code=%{http_code} size_upload=%{size_upload} time_total=%{time_total}\n' \
		--data-binary "@$tmp/upload" "http://$host:$port/be1/upload" >"$base.curl.txt" 2>&1
	ho_snapshot "$base.after.txt"
	ho_tcp_counters "$base.after"
	ho_leave "$c" "$base"
	rm -f "$tmp"/be1/body/*
	log "handoff upload $c round $r: $(<"$base.curl.txt"), answer $(<"$base.answer.txt")"
}

ho_run() {
	local round start s i c cases order
	start=$(now_ms)
	read -ra cases <<<"$HO_CASES"
	for ((round = 1; round <= HO_ROUNDS; round++)); do
		if ((round > MIN_ROUNDS && $(now_ms) - start > HO_BUDGET_S * 1000)); then
			log "handoff: time budget spent, $((round - 1)) rounds"
			break
		fi
		# Each case takes each position once every ${#cases[@]} rounds.
		order=()
		for i in "${!cases[@]}"; do
			order+=("${cases[$(((i + round - 1) % ${#cases[@]}))]}")
		done
		for s in $HO_SIZES; do
			for c in "${order[@]}"; do
				ho_case "$c" "$s" "$round" || return 1
			done
		done
		if ((HO_UPLOAD_MIB > 0)); then
			for c in "${order[@]}"; do
				[ "$c" = haproxy ] || ho_upload "$c" "$round" || return 1
			done
		fi
	done
}

handoff_section() {
	{
		echo "ho_rounds=$HO_ROUNDS"
		echo "ho_sizes_kib=$HO_SIZES"
		echo "ho_cases=$HO_CASES"
		echo "ho_wrk_seconds=$HO_WRK_SECONDS"
		echo "ho_connections=$HO_CONN"
		echo "ho_samples=$HO_SAMPLES"
		echo "ho_upload_mib=$HO_UPLOAD_MIB"
		echo "ho_haproxy_threads=${HO_HAPROXY_THREADS:-default}"
		echo "haproxy_version=$(haproxy -v 2>&1 | head -n 1)"
		echo "ipvsadm_version=$(ipvsadm -v 2>&1 | head -n 1)"
	} >>"$OUT/meta.txt"
	local status=0
	ho_setup && ho_run || status=1
	sg "$fe" show --json >"$RAW/handoff-fe-show-after.json" 2>&1
	sg "$be1" show --json >"$RAW/handoff-be1-show-after.json" 2>&1
	local p
	for p in "${HO_HOLDER[@]}" $HO_HAPROXY_PID; do
		stop_pid "$p"
	done
	# nginx on the three nodes (start_nginx's jobs).
	kill $(jobs -p) 2>/dev/null
	wait 2>/dev/null
	cleanup_all_ns
	module_state unloaded
	return $status
}
