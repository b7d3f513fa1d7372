#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: run the benchmarks in the test VM (plain kernel) and write
#   bench/results/latest.json      every figure, per round and aggregated
#   bench/results/summary.md       the tables (also put into bench/README.md)
#   bench/results/connect-latency.png
#   bench/results/handoff.png          (the handoff section)
# The raw files of the run stay in .build/bench/ (one directory per run);
# `bench/bench.sh --from .build/bench/run.XXXXXX` redoes only the
# aggregation and the plot from them.
#
# The guest boots with "tsc_early_khz=<host TSC kHz> tsc=reliable" so that its
# clock is the TSC and not 4 ms jiffies (QEMU TCG); SOCKGROUP_TSC_KHZ
# overrides the host's value.  Sizes and time budgets: see run-guest.sh
# (OV_ROUNDS, OV_COUNT, COST_ROUNDS, ... are passed through).

set -euo pipefail
cd "$(dirname "$0")/.."

results=bench/results
mkdir -p "$results" .build/bench

# aggregate RUN: latest.json, summary.md, the README table and the plot.
aggregate() {
	local run=$1 date accel cpus timeout_ms
	/usr/bin/python3 bench/aggregate.py --raw "$run/vm" --host "$run/host.txt" \
		--json "$results/latest.json" --summary "$results/summary.md" \
		--plot-dir "$run/plot" --readme bench/README.md
	date=$(sed -n 's/^date=//p' "$run/vm/meta.txt")
	accel=$(sed -n 's/^accel=//p' "$run/vm/meta.txt")
	cpus=$(sed -n 's/^cpus=//p' "$run/vm/meta.txt")
	timeout_ms=$(sed -n 's/^ov_timeout_ms=//p' "$run/vm/meta.txt")
	if [ -f "$run/plot/handoff-handoff.dat" ]; then
		gnuplot -e "datadir='$run/plot'; outfile='$results/handoff.png'; subtitle='run of $date, QEMU ${accel^^}, $cpus vCPUs, medians over rounds'" \
			bench/plot-handoff.gp
		echo "bench: wrote $results/handoff.png"
	fi
	local c
	for c in idle stock reuseport ring primary rescue; do
		[ -f "$run/plot/$c.dat" ] || { echo "bench: wrote $results/latest.json, $results/summary.md, bench/README.md; no overload case $c in this run: the plot is kept" >&2; return 0; }
	done
	gnuplot -e "datadir='$run/plot'; outfile='$results/connect-latency.png'; subtitle='run of $date, QEMU ${accel^^}, $cpus vCPUs, all rounds pooled'; timeout_ms=$timeout_ms" \
		bench/plot.gp
	echo "bench: wrote $results/latest.json, $results/summary.md, $results/connect-latency.png, bench/README.md"
}

if [ "${1:-}" = --from ]; then
	[ -f "${2:-}/vm/meta.txt" ] || { echo "usage: $0 [--from RUN_DIR]" >&2; exit 2; }
	aggregate "$2"
	exit 0
fi

run=$(mktemp -d .build/bench/run.XXXXXX)

# The host's TSC rate, which the TCG guest's TSC runs at.
tsc_khz=${SOCKGROUP_TSC_KHZ:-}
if [ -z "$tsc_khz" ]; then
	mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Refined TSC clocksource calibration: \([0-9.]*\) MHz.*/\1/p' | tail -n 1)
	[ -n "$mhz" ] || mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Detected \([0-9.]*\) MHz.*/\1/p' | tail -n 1)
	[ -n "$mhz" ] || mhz=$(sed -n 's/^cpu MHz[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	tsc_khz=$(awk -v m="$mhz" 'BEGIN { printf "%d", m * 1000 }')
fi
append=
if [ "${tsc_khz:-0}" -gt 0 ]; then
	append="tsc_early_khz=$tsc_khz tsc=reliable"
else
	echo "bench: cannot tell the host's TSC rate: the guest clock may be jiffies" >&2
fi

{
	echo "cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	echo "cpus=$(nproc)"
	echo "tsc_khz=$tsc_khz"
	echo "loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "git_commit=$(git rev-parse HEAD 2>/dev/null || echo none)"
	echo "git_dirty=$([ -n "$(git status --porcelain 2>/dev/null)" ] && echo 1 || echo 0)"
} >"$run/host.txt"

echo "bench: raw results in $run"
# The guest is bounded by run-guest.sh's budgets; this is the backstop.
pass=()
for v in OV_ROUNDS OV_COUNT OV_CONC OV_TIMEOUT_MS OV_BACKLOG OV_STALL_MS COST_ROUNDS WRK_SECONDS \
	WRK_CONN IPERF_SECONDS MIN_ROUNDS OV_BUDGET_S COST_BUDGET_S SYN_ITERS SYN_ROUNDS BENCH_SECTIONS \
	HO_ROUNDS HO_SIZES HO_CASES HO_WRK_SECONDS HO_CONN HO_SAMPLES HO_UPLOAD_MIB HO_BUDGET_S HO_HAPROXY_THREADS \
	FO_ROUNDS FO_DOWNLOADS; do
	[ -n "${!v:-}" ] && pass+=("$v=${!v}")
done
status=0
SOCKGROUP_VM_OUT="$run/vm" selftests/vm-run --timeout ${BENCH_VM_TIMEOUT:-2400} ${append:+--append "$append"} -- \
	env "${pass[@]}" bench/run-guest.sh 2>&1 | tee "$run/guest.log" || status=$?
echo "loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$run/host.txt"
if [ "$status" != 0 ]; then
	echo "bench: the benchmark run failed (status $status); raw results in $run" >&2
	exit "$status"
fi

aggregate "$run"
