# SPDX-License-Identifier: GPL-2.0
#
# The handoff section (bench/README.md, section 5): requests/s and the
# front-end's CPU time per request by object size, one line per case
# (medians over rounds).
#
#   gnuplot -e "datadir='DIR'; outfile='OUT.png'; subtitle='...'" bench/plot-handoff.gp
# DIR holds handoff-CASE.dat (size_kib requests_per_s fe_cpu_us_per_request),
# written by bench/aggregate.py.

if (!exists("subtitle")) subtitle = ""

set terminal pngcairo size 1300,560 font "DejaVu Sans,11" noenhanced
set output outfile
set multiplot layout 1,2 title "sockgroup handoff benchmark, fresh connections (Connection: close)\n".subtitle
set logscale x 2
set xlabel "object size (KiB, log scale)"
set xrange [0.7:1500]
set xtics ("1" 1, "64" 64, "1024" 1024)
set grid xtics ytics
set key top right box font ",10"
set style data linespoints

f(c) = datadir.'/handoff-'.c.'.dat'

set title "requests/s (wrk)"
set ylabel "requests/s (log scale)"
set logscale y 10
plot f('direct') using 1:2 title "direct (client to be1)" lw 2 pt 7 lc rgb "#555555", \
	f('haproxy') using 1:2 title "HAProxy on fe" lw 2 pt 5 lc rgb "#d62728", \
	f('ipvs-dr') using 1:2 title "IPVS-DR on fe" lw 2 pt 9 lc rgb "#ff7f0e", \
	f('handoff') using 1:2 title "sockgroup handoff" lw 2 pt 11 lc rgb "#1f77b4"

set title "front-end CPU per request (processes + softirq share)"
set ylabel "us per request (log scale)"
plot f('haproxy') using 1:3 title "HAProxy on fe" lw 2 pt 5 lc rgb "#d62728", \
	f('ipvs-dr') using 1:3 title "IPVS-DR on fe" lw 2 pt 9 lc rgb "#ff7f0e", \
	f('handoff') using 1:3 title "sockgroup handoff" lw 2 pt 11 lc rgb "#1f77b4"
unset multiplot
