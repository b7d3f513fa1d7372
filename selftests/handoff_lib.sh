# SPDX-License-Identifier: GPL-2.0
#
# The handoff's cluster (issue 12), shared by handoff.sh and the demo
# (demo_handoff.sh), on lib.sh's cluster_net: services 1 ($VIP:80) and 2
# ([$VIP6]:80), front-end on fe, back-end on be1 and be2; fe's rules /be1/
# to peer 2, /be2/ to peer 3, /fe/ local; nginx on every node serving
# only its own /NAME/ files from $tmp/NAME/www, its access log (client
# address, method, URI, status, bytes, body file) in $tmp/NAME/access.log.
#
# Needs SGCTL and tmp (lib.sh's test_setup); HOLD, the services' hold
# timeout (default 2000 ms, times TIME_FACTOR).

VIP=10.99.0.1
VIP6=fd99::1
HOLD=${HOLD:-$((2000 * TIME_FACTOR))}

# configure: the nodes, services and rules.
configure() {
	cluster_nodes &&
		sg "$fe" service add --id 1 --addr $VIP --port 80 --role frontend --hold-timeout $HOLD &&
		sg "$fe" service add --id 2 --addr $VIP6 --port 80 --role frontend --hold-timeout $HOLD || return 1
	local s r=0
	for s in 1 2; do
		sg "$fe" rule add --id $((r + 1)) --service $s --prio 1 --match path-prefix:/be1/ --target peer:2 &&
			sg "$fe" rule add --id $((r + 2)) --service $s --prio 2 --match path-prefix:/be2/ --target peer:3 &&
			sg "$fe" rule add --id $((r + 3)) --service $s --prio 3 --match path-prefix:/fe/ --target local ||
			return 1
		r=$((r + 3))
	done
	local i
	for i in 1 2; do
		sg "${nodes[$i]}" service add --id 1 --addr $VIP --port 80 --role backend &&
			sg "${nodes[$i]}" service add --id 2 --addr $VIP6 --port 80 --role backend ||
			return 1
	done
}
peers_up() {
	[ "$(sg "$fe" peer show --json | jq '[.[] | select(.state == "up")] | length')" = 2 ]
}
# fallback_server NAME: on fe only, $VIP:8081 answering "fallback by fe"
# (the port of handoff.sh's service 3, whose back-end be1 has no listener).
fallback_server() {
	[ "$1" = fe ] || return 0
	printf '\tserver {\n\t\tlisten %s:8081;\n\t\taccess_log off;\n' $VIP
	printf '\t\tlocation / { return 200 "fallback by fe\\n"; }\n\t}\n'
}
# extra_listens NAME: with EXTRA_PORT set (the benchmarks', bench/run-handoff.sh),
# NAME's server listens on that port of $VIP and of its eth0 address too.
extra_listens() {
	[ -n "${EXTRA_PORT:-}" ] || return 0
	local i
	for i in "${!names[@]}"; do
		[ "${names[$i]}" = "$1" ] && break
	done
	printf '\t\t\tlisten %s:%s;\n\t\t\tlisten 10.80.0.%d:%s;\n' $VIP "$EXTRA_PORT" $((i + 1)) "$EXTRA_PORT"
}
# start_nginx FILE: nginx on fe, be1 and be2 (as jobs of this shell: do not
# call it in a command substitution), each serving FILE as /NAME/big and a
# line "served by NAME" as /NAME/small (and both under /NAME/linger/,
# closed with nginx's lingering close); POSTs to /NAME/upload are answered
# "stored by NAME", their body kept in a file of $tmp/NAME/body (its name
# the log line's last field).
start_nginx() {
	local name d
	for name in "${names[@]}"; do
		d=$tmp/$name
		mkdir -p "$d/www/$name" "$d/body" "$d/proxy"
		ln "$1" "$d/www/$name/big"
		echo "served by $name" >"$d/www/$name/small"
		: >"$d/access.log"
		# POSTs to /NAME/upload: the body kept in a file of $d/body (its name
		# in the log), then passed to a local server that answers 200.
		cat >"$d/nginx.conf" <<-EOF
	daemon off;
	master_process on;
	# Workers as root: the files and temporary directories are in a 0700 $tmp.
	user root;
	worker_processes 1;
	pid $d/nginx.pid;
	error_log $d/error.log;
	events {}
	http {
		log_format t '\$remote_addr \$request_method \$request_uri \$status \$body_bytes_sent \$request_body_file';
		access_log $d/access.log t;
		client_body_temp_path $d/body;
		proxy_temp_path $d/proxy;
		fastcgi_temp_path $d/proxy;
		uwsgi_temp_path $d/proxy;
		scgi_temp_path $d/proxy;
		client_max_body_size 64m;
		server {
			listen $VIP:80;
			listen [$VIP6]:80;
$(extra_listens "$name")
			root $d/www;
			location /$name/upload {
				client_body_in_file_only on;
				proxy_pass http://127.0.0.1:8080;
			}
			# /NAME/linger/FILE: /NAME/FILE, closed with a lingering close
			# (nginx shuts down its side, then reads what the client still
			# sends until its FIN).
			location /$name/linger/ {
				alias $d/www/$name/;
				lingering_close always;
			}
		}
$(fallback_server "$name")
$(nginx_extra "$name")
		server {
			listen 127.0.0.1:8080;
			access_log off;
			location / { return 200 "stored by $name\n"; }
		}
	}
	EOF
		# Through `ip netns exec` itself, which execs nginx: the cleanup's kill
		# reaches it. Without a suite's fd 3 (its stdout, in handoff.sh and
		# handoff_net.sh): nothing of the suite's output stays open in nginx.
		ip netns exec "$(eval echo "\$$name")" nginx -c "$d/nginx.conf" -e "$d/error.log" \
			>/dev/null 2>>"$d/error.log" 3>&- &
	done
}
# nginx_extra NAME: more of NAME's nginx configuration (server blocks in
# its http block), for a suite to define after sourcing this file; none by
# default.
nginx_extra() { :; }
listening() {
	local ns
	for ns in "${nodes[@]}"; do
		[ "$(at "$ns" ss -Hltn "sport = :80" | wc -l)" = 2 ] || return 1
	done
}

# client_rst_counter: in cli's table inet hotest, the counter rst of the
# resets from the service addresses the client receives (nftc "$cli" rst);
# and every reset TCP sends from then on (any namespace) traced with its
# reason and call stack (tcp:tcp_send_reset), which diag prints.
client_rst_counter() {
	local ev=/sys/kernel/tracing/events/tcp/tcp_send_reset
	mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
	if [ -d $ev ]; then
		echo stacktrace >$ev/trigger 2>/dev/null
		echo 1 >$ev/enable && : >/sys/kernel/tracing/trace
	fi
	at "$cli" nft -f - <<-EOF
	table inet hotest {
		counter rst { }
		chain in {
			type filter hook input priority 0;
			ip saddr $VIP tcp flags & rst == rst counter name rst
			ip6 saddr $VIP6 tcp flags & rst == rst counter name rst
		}
	}
	EOF
}
# show NS: NS's node, peers, services and counters (JSON; one sgctl a
# snapshot: every program start counts on the debug kernel).
show() { sg "$1" show --json; }
# nftc NS NAME [TABLE]: packets of the counter NAME of NS's table inet TABLE (hotest).
nftc() { at "$1" nft -j list counter inet "${3:-hotest}" "$2" | jq '.nftables[1].counter.packets'; }
# logline NAME TAG: NAME's nginx's line of the request tagged ?TAG.
logline() { grep " [A-Z]* [^ ]*?$2 " "$tmp/$1/access.log"; }

# diag: what the nodes saw, once per case (CASE) that failed.
diag() {
	[ -e "$tmp/diag.$CASE" ] && return 0
	: >"$tmp/diag.$CASE"
	local f n
	f=$(show "$fe")
	jq -r '.services[] | "fe service \(.id): \(.stats | tojson)"' <<<"$f"
	jq -r '.peers[] | "fe peer \(.id): \(.state) \(.stats | tojson)"' <<<"$f"
	echo "fe fwd: $(jq -c .stats.fwd <<<"$f")"
	for n in 1 2; do
		echo "${names[$n]}: $(show "${nodes[$n]}" |
			jq -c '{fwd: .stats.fwd, backend: .stats.backend, peers: [.peers[] | .stats]}')"
	done
	echo "fe conns: $(sg "$fe" conns --json | jq -c '[.[] | {state, service}]')"
	for n in "${names[@]}"; do
		echo "$n access log (last 3):"
		tail -n 3 "$tmp/$n/access.log"
		[ -s "$tmp/$n/error.log" ] && { echo "$n error log (last 3):"; tail -n 3 "$tmp/$n/error.log"; }
	done
	echo "dmesg (last 5 of sockgroup):"
	dmesg | grep sockgroup | tail -n 5
	echo "resets TCP sent, but the client's and the nodes' channels' (tcp:tcp_send_reset; src: the reset's source):"
	grep -v "^#" /sys/kernel/tracing/trace 2>/dev/null |
		awk '/tcp_send_reset:/ { on = !index($0, "src=10.81.") && !index($0, "src=[fd81:") &&
			!index($0, "src=10.80.") && !index($0, "src=[fd80:") } on' |
		head -n 60
}
