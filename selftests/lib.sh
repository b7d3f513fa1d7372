# SPDX-License-Identifier: GPL-2.0
#
# Shared helpers of sockgroup's kselftests, in the style of
# tools/testing/selftests/net/lib.sh: TAP output, kselftest exit codes,
# network namespaces cleaned up on exit, busywait.

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

SOCKGROUP_KO=${SOCKGROUP_KO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.build/plain/sockgroup.ko}
# The KUnit suite's module, built next to sockgroup.ko (kernels with KUnit).
SOCKGROUP_KUNIT_KO=${SOCKGROUP_KUNIT_KO:-$(dirname "$SOCKGROUP_KO")/sockgroup_kunit.ko}

ksft_tests=0
ksft_failed=0
ksft_skipped=0
NS_LIST=()

# ksft_result STATUS NAME: one TAP line for a subtest.
ksft_result() {
	local status=$1; shift
	ksft_tests=$((ksft_tests + 1))
	case "$status" in
	0) echo "ok $ksft_tests - $*" ;;
	4) echo "ok $ksft_tests - $* # SKIP"; ksft_skipped=$((ksft_skipped + 1)) ;;
	*) echo "not ok $ksft_tests - $*"; ksft_failed=$((ksft_failed + 1)) ;;
	esac
	# SG_TIMES=1: when each result came, in seconds since the script began.
	[ -z "${SG_TIMES:-}" ] || echo "# [${SECONDS} s]"
}

# check NAME CMD ARGS...: run CMD, record a subtest named NAME.
check() {
	local name=$1; shift
	local out
	if out=$("$@" 2>&1); then
		ksft_result 0 "$name"
	else
		ksft_result 1 "$name"
		echo "$out" | sed 's/^/# /'
	fi
}

ksft_exit() {
	echo "# $ksft_tests tests, $ksft_failed failed, $ksft_skipped skipped"
	[ "$ksft_failed" -eq 0 ] || exit $KSFT_FAIL
	exit $KSFT_PASS
}

# The debug kernel (KASAN, lockdep, kmemleak) under TCG is several times
# slower: waits for something to happen are stretched by this factor, and
# scripts run less traffic there (DEBUG_KERNEL=1; see run_tests.sh for what
# runs on which kernel).
TIME_FACTOR=1
DEBUG_KERNEL=0
[ "${SOCKGROUP_FLAVOUR:-}" = debug ] && TIME_FACTOR=6 && DEBUG_KERNEL=1

# busywait TIMEOUT_MS CMD ARGS...: until CMD succeeds, or fail after
# TIMEOUT_MS (times TIME_FACTOR).  Tries every 20 ms; the clock and the pause
# are bash's own ($EPOCHREALTIME, read -t on a pipe nobody writes), with no
# fork per try: a fork costs tens of milliseconds on the debug kernel.
exec {_busywait_fd}<> <(:)
busywait() {
	local timeout_us=$(($1 * TIME_FACTOR * 1000)); shift
	local now=${EPOCHREALTIME/[.,]/}
	local end=$((now + timeout_us))
	while true; do
		"$@" && return 0
		now=${EPOCHREALTIME/[.,]/}
		[ "$now" -gt "$end" ] && return 1
		read -r -t 0.02 -u "$_busywait_fd" _ || :
	done
}

# gone PID: the process has exited (gone, or a zombie), read from
# /proc/PID/status without starting a program.
gone() {
	local lines line
	# The whole file at once: bash's `read` buffers a seekable file and
	# seeks back what it did not use when it returns; a loop left early on
	# a process that exits meanwhile fails that seek (ESRCH), and the
	# shell's next `read` of fd 0 returns the rest of this file instead.
	mapfile -t lines 2>/dev/null <"/proc/$1/status" || return 0
	for line in "${lines[@]}"; do
		case "$line" in State:*Z*) return 0 ;; State:*) return 1 ;; esac
	done
	return 0
}

# stop_pid PID [SIGNAL]: signal one process we started (TERM by default),
# SIGKILL if it has not exited 5 s later, and reap it.
stop_pid() {
	[ -n "$1" ] || return 0
	kill "-${2:-TERM}" "$1" 2>/dev/null
	busywait 5000 gone "$1" || kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# setup_ns VAR...: create uniquely named namespaces, loopback up.
setup_ns() {
	local var name
	for var in "$@"; do
		name="$var-$(mktemp -u XXXXXX)"
		ip netns add "$name" || return 1
		ip -n "$name" link set lo up
		NS_LIST+=("$name")
		eval "$var=$name"
	done
}

cleanup_all_ns() {
	local ns
	for ns in "${NS_LIST[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	NS_LIST=()
}

# test_setup: a scratch directory in $tmp, and on exit the cleanup every
# test wants: background jobs stopped, namespaces deleted, module unloaded.
test_setup() {
	tmp=$(mktemp -d)
	trap test_cleanup EXIT
}

test_cleanup() {
	kill $(jobs -p) 2>/dev/null
	wait 2>/dev/null
	cleanup_all_ns
	unload_module 2>/dev/null
	[ -n "${tmp:-}" ] && rm -rf "$tmp"
}

module_loaded() {
	grep -q '^sockgroup ' /proc/modules
}

load_module() {
	module_loaded || insmod "$SOCKGROUP_KO"
}

unload_module() {
	# The KUnit module uses sockgroup's symbols: it goes first.
	! grep -q '^sockgroup_kunit ' /proc/modules || rmmod sockgroup_kunit || return 1
	! module_loaded || rmmod sockgroup
}

# need_ynl MODULE...: set YNL_DIR (the kernel's YNL client and library, which
# `make test-progs` copies for the VM), SPEC (our family's spec) and PY (Debian's
# python3: /root, where pyenv lives, is a tmpfs in the VM); fail without the
# client, skip without the Python MODULEs (python3-yaml, python3-jsonschema;
# none: a script that only speaks raw netlink on this kernel).
need_ynl() {
	local repo
	repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	YNL_DIR=${SOCKGROUP_YNL:-$repo/.build/selftests/ynl}
	SPEC=$repo/Documentation/netlink/specs/sockgroup.yaml
	PY=${SOCKGROUP_PYTHON:-/usr/bin/python3}
	if [ ! -f "$YNL_DIR/cli.py" ] || [ ! -d "$YNL_DIR/lib" ]; then
		echo "# no YNL client at $YNL_DIR (make test-progs copies it there)"
		exit "$KSFT_FAIL"
	fi
	local mods
	mods=$(IFS=,; echo "$*")
	if [ -n "$mods" ] && ! "$PY" -c "import $mods" 2>/dev/null; then
		echo "# $PY lacks one of: $* (python3-yaml, python3-jsonschema)"
		exit "$KSFT_SKIP"
	fi
}

# cluster_net VIP VIP6: the cluster's network of forward.sh and handoff.sh.
# Namespaces cli (10.81.0.1, fd81::1) - rtr - bridge br0 in rtr
# {fe 10.80.0.1, be1 10.80.0.2, be2 10.80.0.3} (fd80::1-3, their eth0);
# the service addresses VIP and VIP6 on the lo of fe, be1 and be2, which
# answer nobody's ARP or neighbour solicitation for them on eth0
# (arp_ignore=1, arp_announce=2): rtr routes them to fe, the back-ends
# answer the client directly (direct server return). Sets cli, rtr, fe,
# be1 and be2 to the namespaces' names, nodes to fe's, be1's and be2's and
# names to "fe be1 be2"; at NS CMD... runs CMD in NS.
cluster_net() {
	local vip=$1 vip6=$2 i ns
	setup_ns cli rtr fe be1 be2 || return 1
	nodes=("$fe" "$be1" "$be2")
	names=(fe be1 be2)
	# One `ip -batch` per namespace: on the debug kernel each program
	# start costs a second or two (KASAN under TCG).
	{
		for i in 0 1 2; do
			echo "link add eth0 netns ${nodes[$i]} type veth peer name p$i netns $rtr"
		done
		echo "link add eth0 netns $cli type veth peer name c0 netns $rtr"
	} | ip -batch - || return 1
	{
		echo "link add br0 type bridge"
		echo "link set br0 up"
		echo "addr add 10.80.0.254/24 dev br0"
		echo "addr add fd80::fe/64 dev br0 nodad"
		for i in 0 1 2; do
			echo "link set p$i master br0 up"
		done
		echo "link set c0 up"
		echo "addr add 10.81.0.254/24 dev c0"
		echo "addr add fd81::fe/64 dev c0 nodad"
		echo "route add $vip/32 via 10.80.0.1"
		echo "route add $vip6/128 via fd80::1"
	} | ip -n "$rtr" -batch - || return 1
	for i in 0 1 2; do
		ns=${nodes[$i]}
		printf '%s\n' "link set eth0 up" \
			"addr add 10.80.0.$((i + 1))/24 dev eth0" \
			"addr add fd80::$((i + 1))/64 dev eth0 nodad" \
			"route add default via 10.80.0.254" \
			"route add ::/0 via fd80::fe" \
			"addr add $vip/32 dev lo" \
			"addr add $vip6/128 dev lo nodad" | ip -n "$ns" -batch - || return 1
		ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
	done
	printf '%s\n' "link set eth0 up" \
		"addr add 10.81.0.1/24 dev eth0" \
		"addr add fd81::1/64 dev eth0 nodad" \
		"route add default via 10.81.0.254" \
		"route add ::/0 via fd81::fe" | ip -n "$cli" -batch - || return 1
	ip netns exec "$rtr" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}

# at NS CMD ARGS...: CMD in the network namespace NS (`ip netns add`'s).
# Through nsenter, which only enters it: `ip netns exec` also makes a
# mount namespace and mounts a sysfs of NS, which costs 0.3 s a program
# on the debug kernel (1.1 s against 0.8 s under TCG); CMD sees the
# host's /sys (nothing run this way reads it; /proc/net and /proc/sys/net
# are NS's).
at() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }
# sg NS ARGS...: `sgctl cluster ARGS` in NS ($SGCTL), which enters NS
# itself (sgctl -n: one program start less than nsenter's, half a second
# on the debug kernel).
sg() { local ns=$1; shift; "$SGCTL" -n "$ns" cluster "$@"; }

# cluster_nodes [later]: on cluster_net's nodes, fe node 1, be1 node 2 and
# be2 node 3, control channel on port 7000 and forwarding on 7001 of their
# eth0 address (with "later", the back-ends' forwarding is left for the
# caller to set); fe and each back-end peers, with the keys $tmp/key.1-2
# and $tmp/key.1-3 (made on the first call).
cluster_nodes() {
	local i fwd
	umask 077
	for i in 2 3; do
		[ -s "$tmp/key.1-$i" ] ||
			head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$tmp/key.1-$i"
	done
	umask 022
	[ "${1:-}" = later ] || fwd=1
	# CLUSTER_HB: the heartbeat interval, when the caller sets one (the
	# debug kernel's pauses under load must not take a channel down).
	local hb=${CLUSTER_HB:+--hb-interval $CLUSTER_HB}
	# shellcheck disable=SC2086
	sg "$fe" node set --id 1 --ctl 10.80.0.1:7000 --fwd 10.80.0.1:7001 $hb || return 1
	for i in 2 3; do
		sg "$fe" peer add --id $i --addr 10.80.0.$i --key-file "$tmp/key.1-$i" &&
			sg "${nodes[$i - 1]}" node set --id $i --ctl "10.80.0.$i:7000" ${fwd:+--fwd "10.80.0.$i:7001"} $hb &&
			sg "${nodes[$i - 1]}" peer add --id 1 --addr 10.80.0.1 --key-file "$tmp/key.1-$i" ||
			return 1
	done
}
