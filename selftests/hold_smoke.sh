#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A quick end-to-end check of the front-end hold (H-hold's own; the full
# suite is hold.sh): one client and one server namespace on a veth pair, a
# service on the server's address and port 8080, a Python HTTP server.
#   - curl through the service gets the file intact (sha256), and the
#     service's counters show the connection held, decided local, HTTP/1;
#   - conn-get lists it decided (local) with the client's ISN;
#   - a client that sends half a request is held: conn-get says held, the
#     server has accepted nothing (its accept queue is empty); the rest of
#     the request completes it: the server answers;
#   - a client that sends half a request and waits is released after the
#     service's hold-timeout (counted over-time) and served;
#   - rmmod with a connection held, and a namespace deleted with one held:
#     no report (vm-run checks the console).
#
#   SGCTL        the sgctl binary; default ../target/debug/sgctl from here
#   SOCKGROUP_KO the module (see lib.sh)

source "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
SGCTL=${SGCTL:-$repo/target/debug/sgctl}
PORT=8080

[ -x "$SGCTL" ] || { echo "# no sgctl at $SGCTL (make sgctl)"; exit $KSFT_FAIL; }
need_ynl yaml jsonschema
test_setup
unload_module 2>/dev/null
load_module || { echo "# cannot load $SOCKGROUP_KO"; exit $KSFT_FAIL; }

ynl() {
	ip netns exec "$srv" "$PY" "$YNL_DIR/cli.py" --spec "$SPEC" \
		--schema "$YNL_DIR/genetlink.yaml" --output-json "$@"
}

# svc_stat NAME [ID]: the counter NAME of service ID (default 1).
svc_stat() {
	ynl --do service-get --json "{\"id\": ${2:-1}}" |
		"$PY" -c "import json,sys; print(json.load(sys.stdin)['stats']['$1'])"
}

# conn_states: the states of the connections listed, one per line.
conn_states() {
	ynl --dump conn-get | "$PY" -c 'import json,sys
for c in json.load(sys.stdin): print(c["state"], c["client-isn"], c["bytes"])'
}

setup_ns srv cli || exit $KSFT_FAIL
ip link add veth0 netns "$srv" type veth peer name veth0 netns "$cli"
ip -n "$srv" addr add 10.88.0.1/24 dev veth0
ip -n "$cli" addr add 10.88.0.2/24 dev veth0
ip -n "$srv" addr add fd88::1/64 dev veth0 nodad
ip -n "$cli" addr add fd88::2/64 dev veth0 nodad
ip -n "$srv" link set veth0 up
ip -n "$cli" link set veth0 up

mkdir -p "$tmp/www"
head -c 300000 /dev/urandom >"$tmp/www/blob"
want=$(sha256sum <"$tmp/www/blob")
for p in $PORT $((PORT + 1)); do
	ip netns exec "$srv" "$PY" -m http.server -b 10.88.0.1 -d "$tmp/www" $p \
		>"$tmp/http.log" 2>&1 &
done
ip netns exec "$srv" "$PY" -m http.server -b fd88::1 -d "$tmp/www" $PORT \
	>"$tmp/http6.log" 2>&1 &
busywait 5000 sh -c "ip netns exec $srv ss -ltnH | grep -q :$((PORT + 1))"
busywait 5000 sh -c "ip netns exec $srv ss -ltnH | grep -q 'fd88::1\]:$PORT'"

# Service 1 (sgctl, as an operator would) holds for 2 s, the default: each
# YNL call takes seconds under TCG, so service 2 (port 8081) holds for 30 s
# for the checks of a connection held.
sg() { ip netns exec "$srv" "$SGCTL" cluster "$@"; }
sg node set --id 1 --ctl 10.88.0.1:7000 >/dev/null
sg service add --id 1 --addr 10.88.0.1 --port $PORT >/dev/null
check "hold-timeout: 2000 ms by default" sh -c \
	"$(declare -f ynl); PY=$PY YNL_DIR=$YNL_DIR SPEC=$SPEC srv=$srv
	 ynl --do service-get --json '{\"id\": 1}' | grep -q '\"hold-timeout\": 2000'"
ynl --do service-del --json '{"id": 1}' >/dev/null
sg service add --id 1 --addr 10.88.0.1 --port $PORT >/dev/null
ynl --do service-new --json '{"id": 2, "addr": "0a580001", "port": 8081, "hold-timeout": 30000}' >/dev/null
check "hold-timeout out of range refused" sh -c \
	"! ip netns exec $srv $PY $YNL_DIR/cli.py --spec $SPEC --schema $YNL_DIR/genetlink.yaml \
	 --do service-new --json '{\"id\": 9, \"addr\": \"0a580001\", \"port\": 9, \"hold-timeout\": 50}'"

got=$(ip netns exec "$cli" curl -s --max-time 10 "http://10.88.0.1:$PORT/blob" | sha256sum)
check "curl through the service: bytes intact" test "$got" = "$want"
check "counted held" test "$(svc_stat held)" -ge 1
check "counted local" test "$(svc_stat local)" -ge 1
check "counted http1" test "$(svc_stat http1)" -ge 1
decided_local() { conn_states | grep -q '^local '; }
check "conn-get lists it decided local" decided_local

# Half a request: held, nothing accepted; the rest: served.
ip netns exec "$cli" "$PY" - "$tmp" <<'EOF' &
import socket, sys, time, os
tmp = sys.argv[1]
s = socket.create_connection(("10.88.0.1", 8081))
s.sendall(b"GET /blob HTTP/1.0\r\nHost: x\r\n")
open(tmp + "/half", "w").close()
while not os.path.exists(tmp + "/go"):
    time.sleep(0.02)
s.sendall(b"\r\n")
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
open(tmp + "/half_reply", "wb").write(data)
EOF
half=$!
busywait 5000 test -e "$tmp/half"
held_state() { conn_states | grep -q '^held '; }
check "half a request: held" busywait 2000 held_state
check "half a request: nothing in the accept queue" sh -c \
	"ip netns exec $srv ss -ltnH 'sport = :$((PORT + 1))' | awk '{exit \$2 != 0}'"
touch "$tmp/go"
wait $half
check "the rest: served" grep -q "200 OK" "$tmp/half_reply"

# Over time: released after the hold-timeout (2 s by default), served.
before=$(svc_stat over-time)
ip netns exec "$cli" "$PY" - <<'EOF' >"$tmp/slow_reply" &
import socket, sys, time
s = socket.create_connection(("10.88.0.1", 8080))
s.sendall(b"GET /blob HTTP/1.0\r\n")
time.sleep(3)
s.sendall(b"\r\n")
sys.stdout.write(s.recv(100).decode(errors="replace"))
EOF
slow=$!
over_time_moved() { [ "$(svc_stat over-time)" -gt "$before" ]; }
check "a slow client: released over-time" busywait 5000 over_time_moved
wait $slow
check "a slow client: served" grep -q "HTTP/1.0 200" "$tmp/slow_reply"

# A request in 1-byte segments (TCP_NODELAY, a pause after each): held
# until the last header byte, then served.
ip netns exec "$cli" "$PY" - <<'EOF' >"$tmp/bytes_reply"
import socket, sys, time
s = socket.create_connection(("10.88.0.1", 8081))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for b in b"GET /blob HTTP/1.0\r\nHost: x\r\n\r\n":
    s.send(bytes([b]))
    time.sleep(0.005)
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
sys.stdout.buffer.write(data.split(b"\r\n\r\n", 1)[1])
EOF
check "1-byte segments: served, bytes intact" test "$(sha256sum <"$tmp/bytes_reply")" = "$want"

# A reset while held: what is held is dropped, counted aborted; the server
# never sees the connection.
before=$(svc_stat aborted 2)
ip netns exec "$cli" "$PY" - <<'EOF'
import socket, struct, time
s = socket.create_connection(("10.88.0.1", 8081))
s.sendall(b"GET / HTTP/1.0\r\n")
time.sleep(0.2)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
EOF
aborted_moved() { [ "$(svc_stat aborted 2)" -gt "$before" ]; }
check "a reset while held: counted aborted" busywait 5000 aborted_moved
check "a reset while held: nothing in the accept queue" sh -c \
	"ip netns exec $srv ss -ltnH 'sport = :$((PORT + 1))' | awk '{exit \$2 != 0}'"

# The service deleted while a connection is held: released (local), then
# served when the client sends the rest.
rm -f "$tmp/half" "$tmp/go" "$tmp/half_reply"
ip netns exec "$cli" "$PY" - "$tmp" <<'EOF' &
import socket, sys, time, os
tmp = sys.argv[1]
s = socket.create_connection(("10.88.0.1", 8081))
s.sendall(b"GET /blob HTTP/1.0\r\n")
open(tmp + "/half", "w").close()
while not os.path.exists(tmp + "/go"):
    time.sleep(0.02)
s.sendall(b"\r\n")
open(tmp + "/half_reply", "wb").write(s.recv(100))
EOF
half=$!
busywait 5000 test -e "$tmp/half"
check "before service-del: held" busywait 2000 held_state
ynl --do service-del --json '{"id": 2}' >/dev/null
no_held() { ! conn_states | grep -q '^held '; }
check "service-del: the hold released" busywait 3000 no_held
touch "$tmp/go"
wait $half
check "service-del: served" grep -q "200 OK" "$tmp/half_reply"

# SYN cookies: the ACK finds no request socket (TCP makes the child from
# the cookie): not held, counted.
before=$(svc_stat cookie-bypass)
ip netns exec "$srv" sysctl -qw net.ipv4.tcp_syncookies=2
got=$(ip netns exec "$cli" curl -s --max-time 10 "http://10.88.0.1:$PORT/blob" | sha256sum)
ip netns exec "$srv" sysctl -qw net.ipv4.tcp_syncookies=1
check "SYN cookies: served" test "$got" = "$want"
check "SYN cookies: counted cookie-bypass" test "$(svc_stat cookie-bypass)" -gt "$before"

# IPv6.
sg service add --id 3 --addr fd88::1 --port $PORT >/dev/null
got=$(ip netns exec "$cli" curl -s --max-time 10 "http://[fd88::1]:$PORT/blob" | sha256sum)
check "IPv6: bytes intact" test "$got" = "$want"
check "IPv6: held and decided local" sh -c "[ $(svc_stat held 3) -ge 1 ] && [ $(svc_stat local 3) -ge 1 ]"

# Teardown with connections held: a namespace deleted, then rmmod.
hold_one() {
	ip netns exec "$1" "$PY" -c 'import socket, sys, time
s = socket.create_connection(("10.88.0.1", int(sys.argv[1])))
s.sendall(b"GET / HTTP/1.0\r\n")
time.sleep(30)' "$2" &
}
setup_ns srv2 cli2 || exit $KSFT_FAIL
ip link add veth0 netns "$srv2" type veth peer name veth0 netns "$cli2"
ip -n "$srv2" addr add 10.88.0.1/24 dev veth0
ip -n "$cli2" addr add 10.88.0.2/24 dev veth0
ip -n "$srv2" link set veth0 up
ip -n "$cli2" link set veth0 up
ip netns exec "$srv2" "$PY" -c 'import socket, time
s = socket.socket(); s.bind(("10.88.0.1", 8080)); s.listen(); time.sleep(60)' &
l2=$!
busywait 5000 sh -c "ip netns exec $srv2 ss -ltnH | grep -q :$PORT"
ip netns exec "$srv2" "$SGCTL" cluster node set --id 1 --ctl 10.88.0.1:7000 >/dev/null
ip netns exec "$srv2" "$PY" "$YNL_DIR/cli.py" --spec "$SPEC" --schema "$YNL_DIR/genetlink.yaml" \
	--do service-new --json '{"id": 1, "addr": "0a580001", "port": 8080, "hold-timeout": 30000}' >/dev/null
hold_one "$cli2" $PORT
held2() {
	ip netns exec "$srv2" "$PY" "$YNL_DIR/cli.py" --spec "$SPEC" \
		--schema "$YNL_DIR/genetlink.yaml" --output-json --dump conn-get | grep -q '"held"'
}
check "second namespace: held" busywait 2000 held2
kill $l2; wait $l2 2>/dev/null
ip netns del "$srv2"
ip netns del "$cli2"
ynl --do service-new --json '{"id": 4, "addr": "0a580001", "port": 8081, "hold-timeout": 30000}' >/dev/null
hold_one "$cli" $((PORT + 1))
check "held before rmmod" busywait 2000 held_state
check "rmmod with a connection held" rmmod sockgroup

ksft_exit
