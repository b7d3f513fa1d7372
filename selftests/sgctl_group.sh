#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# sgctl groups the listening sockets of real, unmodified servers (Debian's
# socat and nginx), and the module then steers their overflow.
#
# socat: servers A (backlog 1, answers "served-by-a") and B (answers
# "served-by-b") listen on two ports of 127.0.0.1.  A is stopped (SIGSTOP),
# so its accept queue fills (backlog + 1 = 2 connections) and stays full.
#   - baseline, module loaded, no group: connections to A's port are never
#     served (A's queue fills, then its SYNs are dropped); A then resumes,
#     drains its queue and is stopped again;
#   - A and B grouped with `sgctl group --member PIDA:FDA --member PIDB:FDB`
#     (two processes): the first connections fill A's queue and hang, the
#     rest are served by B although they dialled A's port, and
#     /proc/net/sockgroup counts each of them as redirected away from A and
#     into B;
#   - after `sgctl ungroup --member PIDA:FDA`: none served by B any more;
#   - A resumed (SIGCONT) serves its own port again.
# nginx: `sgctl group --pid MASTER --listening` finds and groups both of its
# listeners; the group is listed and nginx still answers on both ports.
#
#   SGCTL        the sgctl binary; default ../target/debug/sgctl from here
#   SOCKGROUP_KO the module (see lib.sh)
#
# Every wait is bounded, and scaled by how slowly this guest runs programs
# (the debug kernel under TCG is tens of times slower); the servers and
# clients are stopped and the module unloaded on exit.

source "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
SGCTL=${SGCTL:-$here/../target/debug/sgctl}

PORT_A=18081
PORT_B=18082
NGINX_PORT_1=18091
NGINX_PORT_2=18092
LOOPS=10	# connections of the grouped run
BASELINE=5	# connections of each ungrouped run
MIN_STEERED=7	# of LOOPS, served by B while A is stopped
CONNECT_TIMEOUT=3	# seconds: a SYN dropped for good (retransmits at 1 s, 3 s)
TMP=$(mktemp -d /tmp/sgctl_group.XXXXXX)

PID_A= PID_B= NGINX_PID=
CLIENTS=()

# Sleeping and polling without starting programs or subshells: on the debug
# kernel under TCG every exec costs seconds.
mkfifo "$TMP/sleep" && exec {SLEEP_FD}<>"$TMP/sleep"
nap() {
	read -r -t "${1:-0.05}" -u "$SLEEP_FD" || :
}
# clock: milliseconds since the epoch, in MS.
clock() {
	local t=${EPOCHREALTIME/[.,]/}
	MS=$((t / 1000))
}

# SLOW: how much slower than usual this guest runs programs (1 on the plain
# kernel, tens on the debug kernel under TCG); every timeout is scaled by it.
exec_ms=
for _ in 1 2 3; do
	clock && t0=$MS
	/bin/true
	clock && t=$((MS - t0))
	[ -n "$exec_ms" ] && [ "$exec_ms" -le "$t" ] || exec_ms=$t
done
SLOW=$((exec_ms / 100 + 1))
[ "$SLOW" -le 50 ] || SLOW=50
REPLY_WAIT=$((10 * SLOW))	# seconds a client may wait for its reply, at most

# waitfor SECONDS CMD ARGS...: until CMD succeeds, or fail after SECONDS.
waitfor() {
	local end
	clock && end=$((MS + $1 * 1000)) && shift
	until "$@"; do
		clock && [ "$MS" -lt "$end" ] || return 1
		nap
	done
	return 0
}

# exited PID: the process is gone or a zombie.
exited() {
	local stat lines
	# Read whole (see `gone` in lib.sh).
	mapfile -t lines 2>/dev/null <"/proc/$1/stat" || return 0
	stat=${lines[0]:-}
	[ -n "$stat" ] || return 0
	stat=${stat##*) }
	[ "${stat%% *}" = Z ]
}

# has FILE TEXT: FILE has a line containing TEXT.
has() {
	local line
	while IFS= read -r line; do
		[[ $line == *"$2"* ]] && return 0
	done 2>/dev/null <"$1"
	return 1
}

# stop_proc PID [SIGNAL]: signal it (TERM by default; KILL if it lingers),
# reap it.
stop_proc() {
	local pid=$1 sig=${2:-TERM}
	[ -n "$pid" ] || return 0
	kill -CONT "$pid" 2>/dev/null
	kill "-$sig" "$pid" 2>/dev/null
	if ! waitfor $((5 * SLOW)) exited "$pid"; then
		echo "# process $pid ignored SIG$sig: SIGKILL"
		kill -KILL "$pid" 2>/dev/null
		waitfor $((2 * SLOW)) exited "$pid"
	fi
	wait "$pid" 2>/dev/null
	return 0
}

cleanup() {
	local pid
	for pid in "${CLIENTS[@]}"; do
		stop_proc "$pid"
	done
	stop_proc "$PID_A"
	stop_proc "$PID_B"
	stop_proc "$NGINX_PID" QUIT
	PID_A= PID_B= NGINX_PID=
	unload_module 2>/dev/null
	exec {SLEEP_FD}<&-
	rm -rf "$TMP"
}
trap cleanup EXIT

# listening PORT: something listens on 127.0.0.1:PORT.
listening() {
	[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

# accept_queue PORT: connections waiting in the accept queue of the socket
# listening on PORT (ss shows them as the listener's Recv-Q).
accept_queue() {
	ss -Hltn "sport = :$1" 2>/dev/null | awk '{ print $2; exit }'
}

# listen_fd PID PORT: the fd of PID's socket listening on PORT (from ss).
listen_fd() {
	ss -Hltnp "sport = :$2" 2>/dev/null |
		grep -o "pid=$1,fd=[0-9]*" | head -n 1 | cut -d= -f3
}

# dial PORT: one connection to 127.0.0.1:PORT; prints the reply.
dial() {
	socat -T "$REPLY_WAIT" -u "TCP:127.0.0.1:$1,connect-timeout=$CONNECT_TIMEOUT" STDOUT 2>/dev/null
}

# client_settled PID LOG: the client connected (socat logged the start of
# its transfer) or gave up.
client_settled() {
	exited "$1" || has "$2" "starting data transfer loop"
}

# count_exited PID...: how many of the processes have exited, in EXITED.
count_exited() {
	local pid
	EXITED=0
	for pid; do
		exited "$pid" && EXITED=$((EXITED + 1))
	done
	return 0
}

# replies_in N PID...: at least N of the processes have exited.
replies_in() {
	local n=$1; shift
	count_exited "$@"
	[ "$EXITED" -ge "$n" ]
}

# dial_many PORT N: N socat clients to 127.0.0.1:PORT, one after another
# (each starts once the previous one has connected or given up), all
# waiting for their replies at once.  While A is stopped, a connection that
# sits in A's accept queue gets no reply: the wait ends once every other
# connected client has its reply (or after REPLY_WAIT seconds), and the
# clients left waiting are stopped.  Sets SERVED_A, SERVED_B, UNSERVED and
# CONNECTED, and prints the replies in order as a TAP comment.
dial_many() {
	local port=$1 n=$2 i pid q0 q1 parked expect reply replies=
	local dir="$TMP/dial.$port.$EPOCHSECONDS.$RANDOM" connected=()
	mkdir "$dir"
	q0=$(accept_queue "$PORT_A")
	CLIENTS=()
	for ((i = 0; i < n; i++)); do
		socat -d -d -T "$REPLY_WAIT" -u \
			"TCP:127.0.0.1:$port,connect-timeout=$CONNECT_TIMEOUT" STDOUT \
			>"$dir/$i.out" 2>"$dir/$i.log" &
		pid=$!
		CLIENTS+=("$pid")
		waitfor $((CONNECT_TIMEOUT * 2 + 5 * SLOW)) client_settled "$pid" "$dir/$i.log"
		has "$dir/$i.log" "starting data transfer loop" && connected+=("$pid")
	done
	q1=$(accept_queue "$PORT_A")
	parked=$((q1 - q0))
	expect=$((${#connected[@]} - parked))
	CONNECTED=${#connected[@]}
	if [ "$CONNECTED" -gt 0 ] && ! waitfor "$REPLY_WAIT" replies_in "$expect" "${connected[@]}"; then
		count_exited "${connected[@]}"
		echo "# only $EXITED of $expect replies within $REPLY_WAIT s"
	fi
	for pid in "${CLIENTS[@]}"; do
		stop_proc "$pid"
	done
	CLIENTS=()
	SERVED_A=0 SERVED_B=0 UNSERVED=0
	for ((i = 0; i < n; i++)); do
		reply=
		IFS= read -r reply <"$dir/$i.out"
		case "$reply" in
		served-by-a) SERVED_A=$((SERVED_A + 1)); replies+=" a" ;;
		served-by-b) SERVED_B=$((SERVED_B + 1)); replies+=" b" ;;
		*) UNSERVED=$((UNSERVED + 1)); replies+=" -" ;;
		esac
	done
	echo "# $n connections to port $port:$replies (a: $SERVED_A, b: $SERVED_B, none: $UNSERVED;" \
		"connected $CONNECTED, $parked parked in A's accept queue)"
}

# member_field PORT COLUMN: a column of the /proc/net/sockgroup line of the
# member on 127.0.0.1:PORT (1 group, 11 redirected_away, 12 redirected_in).
member_field() {
	awk -v local="127.0.0.1:$1" -v col="$2" '$1 !~ /^#/ && $6 == local { print $col }' \
		/proc/net/sockgroup
}

# one_group PORT...: exactly these ports are listed, all in one group, which
# has no other member.
one_group() {
	local port id= line_id n
	for port in "$@"; do
		line_id=$(member_field "$port" 1)
		[ -n "$line_id" ] || { echo "port $port not listed"; return 1; }
		[ "$(echo "$line_id" | wc -l)" = 1 ] || { echo "port $port listed twice"; return 1; }
		[ -z "$id" ] || [ "$id" = "$line_id" ] || { echo "ports in groups $id and $line_id"; return 1; }
		id=$line_id
	done
	n=$(awk -v id="$id" '$1 == id' /proc/net/sockgroup | wc -l)
	[ "$n" = $# ] || { echo "group $id has $n members, expected $#"; return 1; }
}

# no_groups: /proc/net/sockgroup lists no member.
no_groups() {
	! grep -qv '^#' /proc/net/sockgroup
}

show_groups() {
	sed 's/^/# /' /proc/net/sockgroup
}

for tool in socat ss; do
	if ! command -v "$tool" >/dev/null; then
		echo "# $tool not installed (selftests/install-deps)"
		exit $KSFT_SKIP
	fi
done
if [ ! -x "$SGCTL" ]; then
	echo "# no sgctl at $SGCTL (cargo build -p sgctl)"
	exit $KSFT_FAIL
fi
if [ ! -f "$SOCKGROUP_KO" ]; then
	echo "# no module at $SOCKGROUP_KO"
	exit $KSFT_FAIL
fi
echo "# running a program takes $exec_ms ms: timeouts scaled by $SLOW, replies awaited up to $REPLY_WAIT s"
unload_module 2>/dev/null
check "insmod sockgroup" insmod "$SOCKGROUP_KO"

### socat: two processes, one group ###

socat "TCP-LISTEN:$PORT_A,bind=127.0.0.1,reuseaddr,backlog=1,fork" \
	SYSTEM:'echo served-by-a' 2>"$TMP/socat-a.log" &
PID_A=$!
socat "TCP-LISTEN:$PORT_B,bind=127.0.0.1,reuseaddr,backlog=64,fork" \
	SYSTEM:'echo served-by-b' 2>"$TMP/socat-b.log" &
PID_B=$!
if waitfor $((5 * SLOW)) listening "$PORT_A" && waitfor $((5 * SLOW)) listening "$PORT_B" &&
	[ "$(dial "$PORT_A")" = served-by-a ] && [ "$(dial "$PORT_B")" = served-by-b ]; then
	ksft_result 0 "socat servers A and B listen and answer"
else
	ksft_result 1 "socat servers A and B listen and answer"
	cat "$TMP"/socat-*.log | sed 's/^/# /'
	ksft_exit
fi
FD_A=$(listen_fd "$PID_A" "$PORT_A")
FD_B=$(listen_fd "$PID_B" "$PORT_B")
echo "# socat A: pid $PID_A fd $FD_A port $PORT_A; socat B: pid $PID_B fd $FD_B port $PORT_B"

# A stops accepting: its accept queue (backlog 1: 2 connections) fills.
kill -STOP "$PID_A"
dial_many "$PORT_A" "$BASELINE"
if [ "$SERVED_B" = 0 ] && [ "$SERVED_A" = 0 ]; then
	ksft_result 0 "baseline, no group: A stopped, 0 of $BASELINE connections to A served (by B or A)"
else
	ksft_result 1 "baseline, no group: A stopped, 0 of $BASELINE connections to A served (by B or A)"
fi

# A accepts what is queued, then stops again with an empty accept queue.
kill -CONT "$PID_A"
a_drained() {
	[ "$(accept_queue "$PORT_A")" = 0 ] &&
		[ "$(dial "$PORT_A")" = served-by-a ]
}
check "A resumed drains its accept queue and serves" waitfor $((15 * SLOW)) a_drained
kill -STOP "$PID_A"
echo "# A stopped again, accept queue: $(accept_queue "$PORT_A")"

out=$("$SGCTL" group --member "$PID_A:$FD_A" --member "$PID_B:$FD_B" 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
if [ "$rc" = 0 ] && echo "$out" | grep -q "^grouped $PID_A:$FD_A $PID_B:$FD_B (policy ring)$"; then
	ksft_result 0 "sgctl group --member A --member B (two processes)"
else
	ksft_result 1 "sgctl group --member A --member B (two processes)"
fi
show_groups
check "/proc/net/sockgroup: A and B in one group" one_group "$PORT_A" "$PORT_B"
check "sgctl info --member B: 2 members" \
	sh -c "'$SGCTL' info --member '$PID_B:$FD_B' --json | grep -c '\"local\"' | grep -qx 2"

dial_many "$PORT_A" "$LOOPS"
show_groups
away=$(member_field "$PORT_A" 11)
into=$(member_field "$PORT_B" 12)
if [ "$SERVED_B" -ge "$MIN_STEERED" ] && [ "$SERVED_A" = 0 ]; then
	ksft_result 0 "grouped: A stopped, $SERVED_B of $LOOPS connections to A's port served by B (>= $MIN_STEERED)"
else
	ksft_result 1 "grouped: A stopped, $SERVED_B of $LOOPS connections to A's port served by B (>= $MIN_STEERED)"
fi
if [ "$away" = "$SERVED_B" ] && [ "$into" = "$SERVED_B" ]; then
	ksft_result 0 "counters: A redirected_away $away, B redirected_in $into = $SERVED_B served by B"
else
	ksft_result 1 "counters: A redirected_away ${away:-?}, B redirected_in ${into:-?} = $SERVED_B served by B"
fi

out=$("$SGCTL" ungroup --member "$PID_A:$FD_A" 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
show_groups
if [ "$rc" = 0 ] && [ -z "$(member_field "$PORT_A" 1)" ]; then
	ksft_result 0 "sgctl ungroup --member A: A is listed no more"
else
	ksft_result 1 "sgctl ungroup --member A: A is listed no more"
fi

dial_many "$PORT_A" "$BASELINE"
if [ "$SERVED_B" = 0 ] && [ "$SERVED_A" = 0 ]; then
	ksft_result 0 "ungrouped: A stopped, 0 of $BASELINE connections to A served (by B or A)"
else
	ksft_result 1 "ungrouped: A stopped, 0 of $BASELINE connections to A served (by B or A)"
fi

kill -CONT "$PID_A"
a_serves() {
	[ "$(dial "$PORT_A")" = served-by-a ]
}
check "A resumed (SIGCONT) serves its port again" waitfor $((15 * SLOW)) a_serves

stop_proc "$PID_A"
stop_proc "$PID_B"
PID_A= PID_B=
check "socat stopped: no group left" no_groups

### nginx: one process, its listeners found by sgctl ###

if ! command -v nginx >/dev/null || ! command -v curl >/dev/null; then
	ksft_result $KSFT_SKIP "nginx: nginx or curl not installed"
else
	cat >"$TMP/nginx.conf" <<-EOF
		daemon off;
		master_process on;
		worker_processes 1;
		pid $TMP/nginx.pid;
		error_log $TMP/nginx-error.log;
		events {}
		http {
			access_log off;
			client_body_temp_path $TMP/nb;
			proxy_temp_path $TMP/np;
			fastcgi_temp_path $TMP/nf;
			uwsgi_temp_path $TMP/nu;
			scgi_temp_path $TMP/ns;
			server {
				listen 127.0.0.1:$NGINX_PORT_1;
				listen 127.0.0.1:$NGINX_PORT_2;
				return 200 "nginx\n";
			}
		}
	EOF
	nginx -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" 2>>"$TMP/nginx-error.log" &
	NGINX_PID=$!
	if waitfor $((10 * SLOW)) listening "$NGINX_PORT_1" &&
		waitfor $((5 * SLOW)) listening "$NGINX_PORT_2"; then
		ksft_result 0 "nginx listens on ports $NGINX_PORT_1 and $NGINX_PORT_2"
	else
		ksft_result 1 "nginx listens on ports $NGINX_PORT_1 and $NGINX_PORT_2"
		sed 's/^/# /' "$TMP/nginx-error.log"
	fi

	out=$("$SGCTL" group --pid "$NGINX_PID" --listening 2>&1)
	rc=$?
	echo "$out" | sed 's/^/# /'
	if [ "$rc" = 0 ] &&
		echo "$out" | grep -q "^process $NGINX_PID: 2 listening TCP sockets$" &&
		echo "$out" | grep -Eq "^  [0-9]+ +127\.0\.0\.1:$NGINX_PORT_1$" &&
		echo "$out" | grep -Eq "^  [0-9]+ +127\.0\.0\.1:$NGINX_PORT_2$" &&
		echo "$out" | grep -q "^grouped "; then
		ksft_result 0 "sgctl group --pid NGINX_MASTER --listening: both listeners found and grouped"
	else
		ksft_result 1 "sgctl group --pid NGINX_MASTER --listening: both listeners found and grouped"
	fi
	show_groups
	check "/proc/net/sockgroup: nginx's ports in one group" \
		one_group "$NGINX_PORT_1" "$NGINX_PORT_2"
	for port in "$NGINX_PORT_1" "$NGINX_PORT_2"; do
		check "grouped nginx answers on port $port" \
			sh -c "[ \"\$(curl -s --max-time $((3 * SLOW)) http://127.0.0.1:$port/)\" = nginx ]"
	done

	stop_proc "$NGINX_PID" QUIT
	NGINX_PID=
	check "nginx stopped: no group left" no_groups
fi

check "rmmod sockgroup" unload_module
ksft_exit
