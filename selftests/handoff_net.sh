#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The TCP handoff (issue 12) over real TCP: its options, TLS by SNI, the
# back-end's refusals, and lossy links. The cluster is handoff.sh's
# (handoff_lib.sh: cli - rtr - bridge {fe, be1, be2}, nginx on every node,
# fe's rules /be1/ to be1 and /be2/ to be2), with these additions: files
# of 64 to 256 KiB /NAME/nK on the back-ends; /be1/fb on be1 and on fe
# (the file a fallback serves: which node served it is in the logs);
# service 3 ($VIP:443, TLS) with rules by SNI, a.test to be1 and b.test
# to be2, whose nginx terminate TLS with keys of a test CA (fe has a
# plain listener there, and no key); service 4 ($VIP:8082) to be1, where
# a listener of backlog 1 never accepts, and fe's nginx serves fe's files.
#
#   opts     TCP options: window scaling, SACK, timestamps and ECN on the
#            client (fe and be at their defaults) in 6 of their 16
#            combinations, all on, each alone, all off (every option on
#            and off, every pair of them in its 4 combinations), a GET of
#            /be1/n64 or /be2/n64 handed off,
#            intact, fe's entry showing the options negotiated; each
#            option off on fe alone (its SYN-ACK without it, the replay's
#            SYN too): handed off, intact; each option off or different
#            on be1 alone (window scaling, a larger receive buffer, i.e.
#            another window scale, SACK, timestamps, ECN): the replay's
#            request socket negotiates otherwise, be1 refuses
#            (HANDOFF_NACK), fe serves /be1/fb itself, intact, counted
#            (fe's fallback-nack, be1's refused and replay-failed);
#            TcpExtPAWSEstab on cli, be1 and be2 moved by at most 3 in
#            all (stale pure ACKs reordered by the veth's per-CPU
#            backlogs; a wrong timestamp drops 10 or more a connection).
#   backlog  be1's listener on $VIP:8082 full (backlog 1, never accepts,
#            2 connections queued): be1 refuses before replaying
#            (refused moved, replay-started did not, its queue did not
#            grow), fe serves, intact, fallback-nack counted; then be1
#            with tcp_syncookies=2 (it would answer with a SYN cookie)
#            for /be1/fb on port 80, where its nginx has room: the same.
#   tls      openssl makes a CA and a key and certificate for a.test on
#            be1 and b.test on be2; curl --cacert --resolve of
#            https://a.test/be1/n256 and https://b.test/be2/n256: intact,
#            served by the right back-end (its log; the other's name
#            would fail curl's verification), handed off (fe's tls and
#            handed-off of service 3 moved), fe logged nothing; an SNI
#            without a rule (c.test) is fe's, which has no key: curl's
#            handshake fails.
#   net      netem on every link (loss 3%, delay 10 ms +- 5 ms, reorder
#            10%, duplicate 1%, both directions of each veth): 200 GETs of
#            64 to 256 KiB, 8 at once (xargs -P, a curl and a connection
#            each, from a client port used once in the run, "Connection:
#            close"), alternately to be1 and be2: every one byte-exact
#            (sha256), logged by its back-end, handed off (fe's handed-off
#            moved by 200, local and every fallback by 0; be1 and be2
#            adopted 100 each, refused none); the links did lose (the
#            back-ends retransmitted); fe sent the client no reset;
#            every handed-off connection ended (TERMs). Then the
#            control, over the same links: 100 GETs that fe serves
#            itself, all intact; in the handoff, per GET, the client's
#            TcpExtPAWSEstab at most twice the control's plus one per 10
#            GETs (the back-ends' drops are said: their path has twice
#            the netem qdiscs), and the resets the back-ends sent the
#            client at most twice fe's in the control plus one per 50
#            GETs (netem's duplicates reaching a closed socket: the
#            control sees them too, 2 in 100 in a run).
#
#   selftests/handoff_net.sh
#
#   HANDOFF_NET_PARTS  the parts to run, in this order (default
#                      "opts backlog tls net"; net alone, e.g.
#                      HANDOFF_NET_PARTS=net, takes about 140 s on the
#                      plain kernel; net last: its netem stays)
#   NET_TRANSFERS      the net part's GETs (default 200, at most 6000),
#                      NET_PARALLEL at once (default 8), NET_CONTROL
#                      the control's (default NET_TRANSFERS / 2)
#   SGCTL, SOCKGROUP_KO as handoff.sh

source "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
SGCTL=${SGCTL:-$repo/target/debug/sgctl}
PY=${SOCKGROUP_PYTHON:-/usr/bin/python3}
# Lossy links: the hold waits longer for the back-end's answer (a lost
# HANDOFF_REQ or ACK segment is retransmitted after 200 ms and more), and
# a channel goes down only after 3 s without a frame (3 heartbeats).
HOLD=${HOLD:-$((5000 * TIME_FACTOR))}
CLUSTER_HB=$((1000 * TIME_FACTOR))
source "$(dirname "$0")/handoff_lib.sh"
PARTS=" ${HANDOFF_NET_PARTS:-opts backlog tls net} "
NET_TRANSFERS=${NET_TRANSFERS:-200}
NET_PARALLEL=${NET_PARALLEL:-8}

for prog in "$SGCTL" nginx curl jq nft sha256sum openssl tc nstat "$PY"; do
	command -v "$prog" >/dev/null || { echo "# $prog not found"; exit $KSFT_SKIP; }
done

test_setup
# net_cleanup: every process left in our namespaces is killed, then
# lib.sh's cleanup (jobs, namespaces, module): none outlives the script
# holding its stdout, which run_tests.sh's pipe waits on.
net_cleanup() {
	local ns pids
	for ns in "${NS_LIST[@]}"; do
		pids=$(ip netns pids "$ns" 2>/dev/null)
		# shellcheck disable=SC2086
		[ -z "$pids" ] || kill -KILL $pids 2>/dev/null
	done
	test_cleanup
}
trap net_cleanup EXIT
# fd 3: the script's stdout, for lines said from inside check (whose
# output is captured); background jobs close it (3>&-).
exec 3>&1
cluster_net $VIP $VIP6 || exit $KSFT_FAIL
load_module || { ksft_result 1 "insmod sockgroup"; ksft_exit; }

# ---- the files, the test CA, nginx ----

sizes=(64 128 192 256)
for k in "${sizes[@]}"; do
	head -c $((k * 1024)) /dev/urandom >"$tmp/n$k"
	eval "sha_$k=$(sha256sum <"$tmp/n$k" | cut -d' ' -f1)"
done
head -c 200000 /dev/urandom >"$tmp/fb"
fb_sha=$(sha256sum <"$tmp/fb" | cut -d' ' -f1)

# tls_keys: a CA, and for be1 (a.test) and be2 (b.test) a key and a
# certificate it signed, in $tmp/NAME/tls; the CA's key is deleted.
tls_keys() {
	local ca=$tmp/ca n host d
	mkdir -p "$ca"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=sockgroup-test-ca -keyout "$ca/key" -out "$tmp/ca.crt" 2>&1 || return 1
	for n in be1:a.test be2:b.test; do
		host=${n#*:} d=$tmp/${n%:*}/tls
		mkdir -p "$d"
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$host" \
			-addext "subjectAltName=DNS:$host" -keyout "$d/key" -out "$d/csr" 2>&1 &&
			openssl x509 -req -in "$d/csr" -CA "$tmp/ca.crt" -CAkey "$ca/key" -CAcreateserial \
				-days 2 -copy_extensions copy -out "$d/crt" 2>&1 || return 1
	done
	rm -rf "$ca"
}
check "a test CA; keys and certificates for a.test (be1) and b.test (be2) (openssl)" tls_keys

# nginx_extra NAME (handoff_lib.sh's start_nginx): fe listens on 443
# without TLS (it has no key) and serves its own files on 8082; be1 and
# be2 terminate TLS on 443 for their name.
nginx_extra() {
	local d=$tmp/$1
	case $1 in
	fe)
		printf '\tserver {\n\t\tlisten %s:443;\n\t\treturn 421;\n\t}\n' $VIP
		printf '\tserver {\n\t\tlisten %s:8082;\n\t\troot %s/www;\n\t}\n' $VIP "$d"
		;;
	*)
		printf '\tserver {\n\t\tlisten %s:443 ssl;\n\t\troot %s/www;\n' $VIP "$d"
		printf '\t\tssl_certificate %s/tls/crt;\n\t\tssl_certificate_key %s/tls/key;\n\t}\n' "$d" "$d"
		;;
	esac
}
start_nginx "$tmp/n256"
for name in fe be1 be2; do
	for k in "${sizes[@]}"; do
		ln "$tmp/n$k" "$tmp/$name/www/$name/n$k"
	done
done
mkdir -p "$tmp/fe/www/be1"
ln "$tmp/fb" "$tmp/fe/www/be1/fb"
ln "$tmp/fb" "$tmp/be1/www/be1/fb"
# listening443: nginx on every node listens on 80 (both families) and 443.
listening443() {
	listening || return 1
	local ns
	for ns in "${nodes[@]}"; do
		[ "$(at "$ns" ss -Hltn "sport = :443" | wc -l)" = 1 ] || return 1
	done
}
check "nginx on $VIP:80, [$VIP6]:80 and $VIP:443 of fe, be1 and be2" busywait 10000 listening443

# ---- the cluster ----

# services: handoff_lib.sh's, and 3 ($VIP:443, rules sni:a.test to peer
# 2, sni:b.test to peer 3) and 4 ($VIP:8082, any to peer 2).
services() {
	configure &&
		sg "$fe" service add --id 3 --addr $VIP --port 443 --role frontend --hold-timeout $HOLD &&
		sg "$fe" rule add --id 7 --service 3 --prio 1 --match sni:a.test --target peer:2 &&
		sg "$fe" rule add --id 8 --service 3 --prio 2 --match sni:b.test --target peer:3 &&
		sg "$fe" service add --id 4 --addr $VIP --port 8082 --role frontend --hold-timeout $HOLD &&
		sg "$fe" rule add --id 9 --service 4 --prio 1 --match any --target peer:2 &&
		sg "$be1" service add --id 3 --addr $VIP --port 443 --role backend &&
		sg "$be2" service add --id 3 --addr $VIP --port 443 --role backend &&
		sg "$be1" service add --id 4 --addr $VIP --port 8082 --role backend
}
check "fe, be1, be2; services $VIP:80, [$VIP6]:80 (rules by path), $VIP:443 (by SNI), $VIP:8082 (to be1)" \
	services
check "fe's channels with be1 and be2 up" busywait 10000 peers_up

client_rst_counter

# ---- counters and requests ----

# stats NAME...: the counters NAME, one line: "SVC.FIELD" a field of
# fe's service SVC's stats, "be1.FIELD" and "be2.FIELD" of a back-end's
# backend stats.
stats() {
	jq -rn --argjson f "$(show "$fe")" --argjson b1 "$(show "$be1")" --argjson b2 "$(show "$be2")" \
		--arg want "$*" '
		def svc($i): $f.services[] | select(.id == $i) | .stats;
		[$want | split(" ")[] | split(".") as [$w, $k] |
			if $w == "be1" then $b1.stats.backend[$k]
			elif $w == "be2" then $b2.stats.backend[$k]
			else (svc($w | tonumber))[$k] end] | map(tostring) | join(" ")'
}
# moved_by BEFORE WANT NAME...: the counters NAME (stats' names) moved
# from BEFORE (stats' line) by WANT (one number each).
moved_by() {
	local before=($1) want=($2) names now i bad=
	shift 2
	names=("$@")
	now=($(stats "$@"))
	for i in "${!want[@]}"; do
		[ $((now[i] - before[i])) = "${want[i]}" ] || bad=1
	done
	[ -z "$bad" ] && return 0
	echo "moved by:"
	for i in "${!want[@]}"; do
		printf ' %s %d (want %s)' "${names[i]}" $((now[i] - before[i])) "${want[i]}"
	done
	echo
	return 1
}
counted() {
	busywait 3000 moved_by "$@" >/dev/null || { moved_by "$@"; diag; false; }
}


# get TAG URL [CURL ARGS...]: curl's GET of URL?TAG from cli into
# $tmp/get.TAG; "CODE SIZE LOCAL_PORT" in $tmp/curl.TAG.
get() {
	local tag=$1 url=$2
	shift 2
	at "$cli" curl -sS --max-time $((30 * TIME_FACTOR)) -o "$tmp/get.$tag" \
		-w '%{http_code} %{size_download} %{local_port}\n' "$@" "$url?$tag" >"$tmp/curl.$tag" 2>&1 &&
		[ "$(cut -d' ' -f1 "$tmp/curl.$tag")" = 200 ] && return 0
	echo "curl: $(cat "$tmp/curl.$tag")"
	diag
	return 1
}
# intact TAG SHA: the body of TAG's GET has sha256 SHA.
intact() {
	local sha
	sha=$(sha256sum <"$tmp/get.$1" | cut -d' ' -f1)
	[ "$sha" = "$2" ] && return 0
	echo "$1: $(stat -c %s "$tmp/get.$1") bytes, sha256 $sha, not $2"
	diag
	return 1
}
# served_by NAME TAG: NAME's nginx logged TAG's request from the client
# (it writes the line after its answer: waits), the other nodes did not.
served_by() {
	busywait 5000 logline "$1" "$2" >/dev/null || { echo "no line for ?$2 in $1's log"; diag; return 1; }
	[ "$(logline "$1" "$2" | cut -d' ' -f1)" = 10.81.0.1 ] ||
		{ echo "$1's log: $(logline "$1" "$2"), not from 10.81.0.1"; return 1; }
	local n
	for n in "${names[@]}"; do
		[ "$n" = "$1" ] || ! logline "$n" "$2" || { echo "$n logged ?$2 too: $(logline "$n" "$2")"; return 1; }
	done
}
# conn_opts TAG: fe's entry of TAG's connection (by the client's port):
# "wscale sack tstamp ecn" as 0/1, and its state.
conn_opts() {
	local port
	port=$(cut -d' ' -f3 "$tmp/curl.$1")
	sg "$fe" conns --json | jq -r --argjson p "$port" '.[] | select(.sport == $p) |
		[(.wscale, .sack, .tstamp, .ecn | if . then 1 else 0 end), .state] | map(tostring) | join(" ")'
}
sysctls() {
	local ns=$1
	shift
	at "$ns" sysctl -qw "$@"
}
CASE=setup

# ---- opts: TCP options on and off ----

opt_names=(tcp_window_scaling tcp_sack tcp_timestamps tcp_ecn)
# opt_set NS W S T E: NS's four options.
opt_set() {
	sysctls "$1" net.ipv4.tcp_window_scaling="$2" net.ipv4.tcp_sack="$3" \
		net.ipv4.tcp_timestamps="$4" net.ipv4.tcp_ecn="$5"
}
# handoff_get TAG NODE FILE SHA WANT: a GET of /NODE/FILE handed off to
# NODE, intact; fe's entry shows the options WANT ("W S T E").
handoff_get() {
	local tag=$1 node=$2 file=$3 sha=$4 want=$5 before got
	before=$(stats 1.handed_off 1.local 1.fallback_nack "$node.adopted")
	get "$tag" "http://$VIP/$node/$file" && intact "$tag" "$sha" || return 1
	got=$(conn_opts "$tag")
	[ "$got" = "$want moved" ] || { echo "fe's entry: options and state \"$got\", want \"$want moved\""; return 1; }
	served_by "$node" "$tag" && counted "$before" "1 0 0 1" 1.handed_off 1.local 1.fallback_nack "$node.adopted"
}
# fallback_get TAG SVC URL: a GET of URL (fe's copy of /be1/fb) that be1
# refuses after a replay (REPLAYED 1) or before (0): fe serves it,
# intact, fallback-nack of SVC and be1's refused moved by 1, handed-off
# by 0, be1's replay-started by REPLAYED and replay-failed as well.
fallback_get() {
	local tag=$1 svc=$2 url=$3 replayed=$4 before
	before=$(stats $svc.fallback_nack $svc.handed_off be1.refused be1.adopted be1.replay_started be1.replay_failed)
	get "$tag" "$url" && intact "$tag" "$fb_sha" && served_by fe "$tag" &&
		counted "$before" "1 0 1 0 $replayed $replayed" $svc.fallback_nack $svc.handed_off \
			be1.refused be1.adopted be1.replay_started be1.replay_failed
}

# paws NS: NS's TcpExtPAWSEstab (segments of established connections
# dropped for a timestamp older than the last one taken).
paws() { at "$1" nstat -asz TcpExtPAWSEstab | awk '$1 == "TcpExtPAWSEstab" { print $2 }'; }
paws3() { echo "$(paws "$cli") $(paws "$be1") $(paws "$be2")"; }

if [[ "$PARTS" == *" opts "* ]]; then
	CASE=opts
	opts_paws0=$(paws3)
	# The client's options: every option on and off, and every pair of
	# two options in each of its four combinations (a covering array:
	# all on, each alone, all off), alternately to be1 and be2.
	i=0
	for wste in 1111 1000 0100 0010 0001 0000; do
		read -r w s t e <<<"$(echo "$wste" | sed 's/./& /g')"
		i=$((i + 1))
		node=be1 && [ $((i % 2)) = 0 ] && node=be2
		opt_set "$cli" $w $s $t $e
		check "opts: client wscale=$w sack=$s ts=$t ecn=$e: GET /$node/n64 handed off to $node, intact, fe's entry shows them" \
			handoff_get "o$w$s$t$e" $node n64 "$sha_64" "$w $s $t $e"
	done
	opt_set "$cli" 1 1 1 1
	defaults=$(at "$fe" sysctl -n net.ipv4.tcp_ecn)
	# Each option off on fe alone: its SYN-ACK, and so the replay's SYN,
	# go without it; be1 (defaults) negotiates the same.
	for o in 0 1 2 3; do
		v=(1 1 1 1)
		v[o]=0
		opt_set "$fe" "${v[@]}"
		check "opts: ${opt_names[o]}=0 on fe alone: GET /be1/n128 handed off, intact, fe's entry without it" \
			handoff_get "f$o" be1 n128 "$sha_128" "${v[*]}"
		opt_set "$fe" 1 1 1 "$defaults"
	done
	# Each option off (or another window scale) on be1 alone: the
	# replay's request socket negotiates what fe's did not, be1 refuses.
	for o in 0 1 2 3; do
		v=(1 1 1 1)
		v[o]=0
		opt_set "$be1" "${v[@]}"
		check "opts: ${opt_names[o]}=0 on be1 alone: be1 refuses after the replay, fe serves /be1/fb, intact, counted" \
			fallback_get "b$o" 1 "http://$VIP/be1/fb" 1
		opt_set "$be1" 1 1 1 "$defaults"
	done
	rmem=$(at "$be1" sysctl -n net.ipv4.tcp_rmem)
	read -r r0 r1 r2 <<<"$rmem"
	sysctls "$be1" net.ipv4.tcp_rmem="$r0 $r1 $((r2 * 8))"
	check "opts: be1's tcp_rmem max x8 (window scale +3 against fe's): be1 refuses, fe serves /be1/fb, intact, counted" \
		fallback_get bw 1 "http://$VIP/be1/fb" 1
	sysctls "$be1" net.ipv4.tcp_rmem="$rmem"
	# Links without netem neither lose nor duplicate: a timestamp the
	# handoff got wrong (the client's ts_recent from fe's SYN-ACK against
	# be's TSvals, be's ts_recent from the replay against the client's)
	# has PAWS drop every segment in flight until the clocks pass, ten or
	# more per connection. One stale pure ACK may be dropped rightly: the
	# replayed child's ACK of the request (sent from the replay's CPU)
	# overtaken by the first data (nginx's CPU) on the veth's per-CPU
	# backlogs (the likely cause of the one drop a CI run saw, on the client;
	# another run saw two on be1, whose client segments come through fe's
	# forwarding and can be reordered the same way): at most 3 in all, far
	# from the 10 a connection of a wrong timestamp.
	read -r a b c <<<"$opts_paws0"
	read -r x y z <<<"$(paws3)"
	opts_paws="$((x - a)) $((y - b)) $((z - c))"
	check "opts: TcpExtPAWSEstab on cli, be1, be2 moved by at most 3 in all (a wrong timestamp drops 10 or more a connection) ($opts_paws)" \
		eval '[ $((x - a + y - b + z - c)) -le 3 ]'
fi

# ---- backlog: the back-end's listener full, or SYN cookies ----

if [[ "$PARTS" == *" backlog "* ]]; then
	CASE=backlog
	# be1's listener on $VIP:8082: backlog 1, never accepts; 2 local
	# connections fill its queue (it holds backlog + 1).
	# Through `ip netns exec` itself, which execs python: $! is python,
	# which stop_pid reaches (through the function `at`, $! was a subshell
	# whose death left python running, holding the script's stdout (fd 3)
	# and run_tests.sh's pipe for its hour). Its fd 3 is closed anyway.
	ip netns exec "$be1" "$PY" -c '
import socket, sys, time
l = socket.socket()
l.bind((sys.argv[1], 8082))
l.listen(1)
c = [socket.create_connection((sys.argv[1], 8082)) for _ in range(2)]
print("ready", flush=True)
time.sleep(600)
' $VIP >"$tmp/full.out" 2>&1 3>&- &
	full_pid=$!
	queue() { at "$be1" ss -Hltn "sport = :8082" | awk '{ print $2 }'; }
	check "backlog: be1's listener on $VIP:8082 (backlog 1, never accepts) holds 2 connections" \
		eval 'busywait 5000 eval "[ \"\$(queue)\" = 2 ]" || { echo "queue $(queue): $(cat "$tmp/full.out")"; false; }'
	check "backlog: GET of $VIP:8082/be1/fb: be1 refuses before a replay, fe serves it, intact, counted" \
		fallback_get bl 4 "http://$VIP:8082/be1/fb" 0
	check "backlog: be1's queue did not grow" eval '[ "$(queue)" = 2 ] || { echo "queue $(queue)"; false; }'
	stop_pid "$full_pid"
	sysctls "$be1" net.ipv4.tcp_syncookies=2
	check "backlog: be1 with tcp_syncookies=2 (a SYN cookie): GET /be1/fb: be1 refuses before a replay, fe serves it, intact, counted" \
		fallback_get ck 1 "http://$VIP/be1/fb" 0
	sysctls "$be1" net.ipv4.tcp_syncookies=1
fi

# ---- tls: HTTPS with rules by SNI ----

# tls_get TAG HOST NODE: curl's GET of https://HOST/NODE/n256 (HOST
# resolved to $VIP, the test CA trusted).
tls_get() {
	get "$1" "https://$2/$3/n256" --cacert "$tmp/ca.crt" --resolve "$2:443:$VIP"
}
if [[ "$PARTS" == *" tls "* ]]; then
	CASE=tls
	n=2
	[ "$DEBUG_KERNEL" = 1 ] && n=1
	for i in $(seq 1 $n); do
		for hn in a.test:be1 b.test:be2; do
			host=${hn%:*} node=${hn#*:}
			before=$(stats 3.tls 3.handed_off 3.local 3.fallback_nack "$node.adopted")
			check "tls: https://$host/$node/n256 (SNI $host): intact, served by $node, handed off (fe's tls, handed-off; $node adopted)" \
				eval 'tls_get "t$i$node" $host $node && intact "t$i$node" "$sha_256" && served_by $node "t$i$node" &&
					counted "$before" "1 1 0 0 1" 3.tls 3.handed_off 3.local 3.fallback_nack $node.adopted'
		done
	done
	before=$(stats 3.tls 3.handed_off 3.local)
	# fe_nokey: curl's handshake with fe fails (fe's listener is plain).
	fe_nokey() {
		! at "$cli" curl -sS --max-time $((30 * TIME_FACTOR)) --cacert "$tmp/ca.crt" \
			--resolve "c.test:443:$VIP" -o /dev/null "https://c.test/be1/n256?tc" 2>"$tmp/curl.tc" ||
			{ echo "curl succeeded"; return 1; }
		echo "# tc: $(cat "$tmp/curl.tc")" >&3
		counted "$before" "1 0 1" 3.tls 3.handed_off 3.local
	}
	check "tls: SNI c.test (no rule): fe's (local), which has no key: curl's TLS handshake fails" fe_nokey
	check "tls: fe's nginx configuration has no key or certificate" \
		eval '! grep -n "ssl" "$tmp/fe/nginx.conf"'
fi

# ---- net: netem on every link ----

# links: every veth end ("NS DEV"): both directions of each link.
links=("$cli eth0" "$rtr c0" "$rtr p0" "$rtr p1" "$rtr p2" "$fe eth0" "$be1 eth0" "$be2 eth0")
netem() {
	local l
	for l in "${links[@]}"; do
		set -- $l
		at "$1" tc qdisc replace dev "$2" root netem delay 10ms 5ms loss 3% reorder 10% duplicate 1% ||
			return 1
	done
}
retrans() { at "$1" awk '$1 == "Tcp:" && $2 ~ /^[0-9]/ { print $13 }' /proc/net/snmp; }
# rst_out_counters: on fe, be1 and be2, the counter rst_out of the resets
# their TCP sends from the service address to the client (where a reset
# the client received came from).
rst_out_counters() {
	local ns
	for ns in "${nodes[@]}"; do
		at "$ns" nft -f - <<-EOF || return 1
		table inet hotest {
			counter rst_out { }
			chain out {
				type filter hook output priority 0;
				ip saddr $VIP ip daddr 10.81.0.1 tcp flags & rst == rst counter name rst_out
			}
		}
		EOF
	done
}
rst_out() { echo "$(nftc "$fe" rst_out) $(nftc "$be1" rst_out) $(nftc "$be2" rst_out)"; }
# net_fetch TAG PORT0 PATH...: a GET of each PATH (NODE/nK) tagged
# ?TAGi (its position i), NET_PARALLEL at once (xargs -P), each a curl of
# its own from cli, so a connection of its own (curl --parallel left some
# transfers queued, never started), with "Connection: close" (the server
# closes first: its TIME_WAIT socket, not the client's, holds the tuple),
# from the client port PORT0+i, below the ephemeral range and used once in
# the whole run: no GET meets a tuple still in TIME_WAIT on a server.
# Bodies in $tmp/TAG/body/i.K; each curl's line "CODE SIZE PORT URL" in
# $tmp/TAG/out, in order.
net_fetch() {
	local tag=$1 port0=$2 dir=$tmp/$1 i=0 p w
	shift 2
	rm -rf "$dir"
	mkdir -p "$dir/body" "$dir/w"
	for p in "$@"; do
		i=$((i + 1))
		echo "$((port0 + i)) http://$VIP/$p?$tag$i $dir/body/$i.${p##*/n} $dir/w/$i"
	done >"$dir/list"
	# shellcheck disable=SC2016
	at "$cli" env T=$((120 * TIME_FACTOR)) xargs -P "$NET_PARALLEL" -n 4 sh -c '
		exec curl -sS --max-time "$T" --local-port "$1" -H "Connection: close" -o "$3" \
			-w "%{http_code} %{size_download} %{local_port} %{url_effective}\n" "$2" >"$4" 2>&1' sh \
		<"$dir/list"
	for i in $(seq 1 $#); do
		w=$dir/w/$i
		if [ -s "$w" ]; then tail -n 1 "$w"; else echo "none 0 0 transfer $i never ran"; fi
	done >"$dir/out"
	echo "# net $tag: $(grep -c '^200 ' "$dir/out") of $# answered 200; $(cat "$dir"/w/* 2>/dev/null |
		grep -v '^[0-9]\{3\} ' | sort | uniq -c | head -n 3 | tr -s ' \n' ' ')" >&3
}
# net_paths N NODE...: N paths, NODE in turn, files of each size in turn.
net_paths() {
	local n=$1 i
	shift
	local nodes_=("$@")
	for i in $(seq 1 "$n"); do
		echo "${nodes_[$(((i - 1) % $#))]}/n${sizes[$(((i / 2) % 4))]}"
	done
}
# net_intact TAG N: each of TAG's N GETs answered 200 and its body has its
# sha256; for one that did not, the back-ends' sockets of its client
# port (a TIME_WAIT one would have made the replay refuse it).
net_intact() {
	local dir=$tmp/$1 want=$2 f k sha bad=0 n=0
	[ "$(grep -c '^200 ' "$dir/out")" = "$want" ] ||
		{ echo "$(grep -c '^200 ' "$dir/out") of $want answered 200:"; grep -v '^200 ' "$dir/out" | head -n 5; bad=1; }
	while read -r sha f; do
		n=$((n + 1))
		k=${f##*.}
		[ "$sha" = "$(eval echo "\$sha_$k")" ] || { echo "$f: $(stat -c %s "$f") bytes, sha256 differs"; bad=1; }
	done < <(sha256sum "$dir"/body/*)
	[ "$n" = "$want" ] || { echo "$n files of $want"; bad=1; }
	[ $bad = 0 ] && return 0
	local code size port url ns
	while read -r code size port url; do
		[ "$code" = 200 ] && continue
		for ns in "$be1" "$be2"; do
			echo "$url (port $port): ${ns%%-*}'s sockets: $(at "$ns" ss -Htan "dport = :$port" | awk '{ print $1 }' | tr '\n' ' ')"
		done
	done <"$dir/out"
	diag
	return 1
}
# net_logged: be1 and be2 logged their half of the tags, fe none.
net_logged() {
	local c1 c2 c0
	c1=$(grep -c ' GET /be1/n[0-9]*?n[0-9]* 200 ' "$tmp/be1/access.log")
	c2=$(grep -c ' GET /be2/n[0-9]*?n[0-9]* 200 ' "$tmp/be2/access.log")
	c0=$(grep -c '?n[0-9]* ' "$tmp/fe/access.log")
	[ "$c1" = $((NET_TRANSFERS - NET_TRANSFERS / 2)) ] && [ "$c2" = $((NET_TRANSFERS / 2)) ] && [ "$c0" = 0 ] ||
		{ echo "be1 logged $c1, be2 $c2, fe $c0"; false; }
}
# net_ended: the back-ends watch no connection, and fe's ended (all
# services) is as many as their TERMs.
net_ended() {
	local w1 w2 t1 t2 e1 e2 e3 e4 e
	read -r w1 w2 t1 t2 e1 e2 e3 e4 < <(stats be1.watched be2.watched be1.terms be2.terms \
		1.ended 2.ended 3.ended 4.ended)
	e=$((e1 + e2 + e3 + e4))
	[ "$w1" = 0 ] && [ "$w2" = 0 ] && [ "$e" = $((t1 + t2)) ] && return 0
	echo "be1 watches $w1, be2 $w2; TERMs sent $((t1 + t2)), fe's ended $e"
	return 1
}
# paws_within H NH C NC: H drops over NH GETs at most twice C over NC per
# GET, plus one drop per 10 GETs.
paws_within() { [ $(($1 * $4 * 10)) -le $((20 * $3 * $2 + $2 * $4)) ]; }
# vip_resets: the traced resets but the client's own (each an event line,
# its src the reset's source or its socket's address, then its call stack).
vip_resets() {
	grep -v "^#" /sys/kernel/tracing/trace |
		awk '/tcp_send_reset:/ { on = !index($0, "src=10.81.") && !index($0, "src=[fd81:") } on'
}
if [[ "$PARTS" == *" net "* ]]; then
	CASE=net
	NET_CONTROL=${NET_CONTROL:-$((NET_TRANSFERS / 2))}
	check "net: netem (loss 3%, delay 10ms +-5ms, reorder 10%, duplicate 1%) on both ends of every link" netem
	check "net: counters of the resets fe, be1 and be2 send to the client (nft)" rst_out_counters
	before=$(stats 1.handed_off 1.local 1.fallback_nack 1.fallback_peer_down 1.fallback_timeout \
		1.fallback_unsent be1.adopted be2.adopted be1.refused be2.refused)
	paws0=$(paws3)
	late0=$(stats 1.late_fwd)
	rt0="$(retrans "$be1") $(retrans "$be2")"
	rst0=$(nftc "$cli" rst)
	rsto0=$(rst_out)
	# Every reset TCP sends (any namespace), with its reason and call
	# stack: printed if fe sent one.
	RSTEV=/sys/kernel/tracing/events/tcp/tcp_send_reset
	mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
	if [ -d $RSTEV ]; then
		echo stacktrace >$RSTEV/trigger && echo 1 >$RSTEV/enable && : >/sys/kernel/tracing/trace
	fi
	start=$(date +%s)
	mapfile -t paths < <(net_paths "$NET_TRANSFERS" be1 be2)
	net_fetch n 20000 "${paths[@]}"
	echo "# net: $NET_TRANSFERS GETs in $(($(date +%s) - start)) s"
	check "net: $NET_TRANSFERS GETs of 64-256 KiB ($NET_PARALLEL at once): all 200, byte-exact (sha256)" \
		net_intact n "$NET_TRANSFERS"
	check "net: be1's and be2's nginx logged their $((NET_TRANSFERS / 2)) each, fe's none" \
		eval 'busywait 5000 net_logged >/dev/null || net_logged'
	half=$((NET_TRANSFERS / 2))
	check "net: every one a handoff: fe's handed-off moved by $NET_TRANSFERS, local and every fallback by 0; be1 and be2 adopted $half each, refused none" \
		counted "$before" "$NET_TRANSFERS 0 0 0 0 0 $((NET_TRANSFERS - half)) $half 0 0" 1.handed_off 1.local \
		1.fallback_nack 1.fallback_peer_down 1.fallback_timeout 1.fallback_unsent be1.adopted be2.adopted \
		be1.refused be2.refused
	read -r a b <<<"$rt0"
	rt="$(($(retrans "$be1") - a)) $(($(retrans "$be2") - b))"
	echo "# net: be1 and be2 retransmitted $rt segments; fe sent $(($(stats 1.late_fwd) - late0)) late segments of ended connections to their back-end's TIME_WAIT (late-fwd)"
	check "net: the links lost segments: be1 and be2 retransmitted ($rt)" \
		eval 'read -r a b <<<"$rt"; [ "$a" -gt 0 ] && [ "$b" -gt 0 ]'
	read -r a b c <<<"$paws0"
	read -r x y z <<<"$(paws3)"
	paws_n="$((x - a)) $((y - b)) $((z - c))"
	read -r a b c <<<"$rsto0"
	read -r x y z <<<"$(rst_out)"
	rst_n=$(($(nftc "$cli" rst) - rst0))
	echo "# net: resets to the client: $rst_n received; sent by fe $((x - a)), be1 $((y - b)), be2 $((z - c))"
	rst_fe=$((x - a)) rst_be=$((y - b + z - c))
	check "net: fe sent no reset to the client (it never answers a moved connection)" \
		eval '[ "$rst_fe" = 0 ] || { echo "fe sent $rst_fe resets; the resets TCP sent in the run (not those of the client):"
			vip_resets | head -n 120; false; }'
	check "net: every handed-off connection ended: be1 and be2 watch none, fe counted their every TERM (ended)" \
		eval 'busywait 20000 net_ended >/dev/null || { net_ended; diag; false; }'
	if [ -d $RSTEV ]; then
		echo 0 >$RSTEV/enable && echo '!stacktrace' >$RSTEV/trigger
	fi
	# The control, in the same run over the same links: GETs that fe
	# serves itself (rule /fe/), the same sizes in turn. netem's jitter
	# reorders segments (and duplicates some): one that arrives after a
	# later one with a newer timestamp is dropped by PAWS, in any TCP.
	# The client's drops (of the server's segments: from be or from fe,
	# over 2 netem qdiscs either way) compare like for like: the
	# handoff's, per GET, at most twice the control's plus one per 10
	# GETs. A timestamp the handoff got wrong costs a drop on (nearly)
	# every connection, or the transfer; the opts part, without netem,
	# wants no drop at all. The back-ends' drops (of the client's
	# segments, over 4 qdiscs: cli, rtr, fe's forwarding, rtr) have no
	# like in the control (fe's over 2): said, not checked.
	ctrl0="$(paws "$cli") $(paws "$fe") $(nftc "$cli" rst)"
	start=$(date +%s)
	mapfile -t paths < <(net_paths "$NET_CONTROL" fe)
	net_fetch c $((20000 + NET_TRANSFERS)) "${paths[@]}"
	echo "# net control: $NET_CONTROL GETs in $(($(date +%s) - start)) s"
	check "net control: $NET_CONTROL GETs of fe's files served by fe over the same links: all 200, byte-exact" \
		net_intact c "$NET_CONTROL"
	read -r a b c <<<"$ctrl0"
	ctrl_n="$(($(paws "$cli") - a)) $(($(paws "$fe") - b)) $(($(nftc "$cli" rst) - c))"
	read -r cp fp cr <<<"$ctrl_n"
	read -r hc hb1 hb2 <<<"$paws_n"
	echo "# net: TcpExtPAWSEstab: handoff ($NET_TRANSFERS GETs): cli $hc, be1 $hb1, be2 $hb2;" \
		"control ($NET_CONTROL GETs): cli $cp, fe $fp; resets to the client in the control: $cr"
	# Resets: every transfer above completed intact, so a reset the
	# client saw came after its connection was done (netem's duplicates
	# of a segment that arrive once the socket has gone, answered by any
	# TCP): the back-ends' in the handoff, per GET, at most twice fe's in
	# the control plus one per 50 GETs. A replay that got a sequence
	# number wrong would reset (nearly) every connection.
	check "net: resets to the client in the handoff ($rst_be from be1 and be2 in $NET_TRANSFERS GETs) at most twice the control's per GET ($cr in $NET_CONTROL) plus one per 50 GETs" \
		eval '[ $((rst_be * NET_CONTROL * 50)) -le $((100 * cr * NET_TRANSFERS + NET_TRANSFERS * NET_CONTROL)) ]'
	check "net: the client's PAWS drops in the handoff ($hc in $NET_TRANSFERS GETs) at most twice the control's per GET ($cp in $NET_CONTROL) plus one per 10 GETs" \
		paws_within "$hc" "$NET_TRANSFERS" "$cp" "$NET_CONTROL"
fi

ksft_exit
