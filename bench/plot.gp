# SPDX-License-Identifier: GPL-2.0
#
# The connect-latency distributions of the overload cases, one curve per
# case: the fraction of all attempted connections that had connected within
# x.  A curve that levels off below 1 shows the connections that never
# connected (their SYNs were dropped until the client gave up).
#
#   gnuplot -e "datadir='DIR'; outfile='OUT.png'; subtitle='...'; timeout_ms=T" bench/plot.gp
# DIR holds CASE.dat and titles.gp, written by bench/aggregate.py.

if (!exists("subtitle")) subtitle = ""
if (!exists("timeout_ms")) timeout_ms = 0
load datadir.'/titles.gp'

set terminal pngcairo size 1100,800 font "DejaVu Sans,11" noenhanced
set output outfile
set title "sockgroup overload benchmark: connect latency, 3 listeners, member 0 stalled\n".subtitle
set xlabel "connect latency (ms, log scale)"
set ylabel "fraction of attempted connections connected"
set logscale x 10
set xrange [0.05:3000]
set yrange [0:1.02]
set ytics 0.1
set grid xtics ytics mxtics
set key outside below left Left reverse box font ",10" spacing 1.2 maxrows 6 height 1.5
set bmargin 11
if (timeout_ms > 0) {
	set arrow from first timeout_ms, graph 0 to first timeout_ms, graph 1 nohead front dt 2 lw 1.5 lc rgb "#444444"
	set label sprintf("the client gives up at %d ms", timeout_ms) at first timeout_ms, graph 0.5 right offset -0.8, 0 front font ",10" tc rgb "#444444"
}
set style data steps

plot \
	datadir.'/idle.dat' using 1:2 title title_idle lw 2 lc rgb "#555555", \
	datadir.'/stock.dat' using 1:2 title title_stock lw 2 lc rgb "#d62728", \
	datadir.'/reuseport.dat' using 1:2 title title_reuseport lw 2 lc rgb "#ff7f0e", \
	datadir.'/ring.dat' using 1:2 title title_ring lw 2 lc rgb "#1f77b4", \
	datadir.'/primary.dat' using 1:2 title title_primary lw 2 dt 2 lc rgb "#2ca02c", \
	datadir.'/rescue.dat' using 1:2 title title_rescue lw 2 lc rgb "#9467bd"
