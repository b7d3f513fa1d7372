#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the raw results of bench/run-guest.sh into bench/results/latest.json,
a human summary, the data files of the plot, and the results table of
bench/README.md (between the "results:begin" and "results:end" markers).

Python's standard library only (Debian's python3).

    aggregate.py --raw DIR --host FILE --json OUT.json --summary OUT.txt
                 --plot-dir DIR [--readme bench/README.md]
"""

import argparse
import json
import math
import re
import statistics
import sys
from pathlib import Path

OV_CASES = ["idle", "stock", "reuseport", "ring", "primary", "rescue"]
OV_LABELS = {
    "idle": "idle: nobody stalled, no group (stock kernel)",
    "stock": "stock kernel, 3 ports, no group",
    "reuseport": "stock kernel, SO_REUSEPORT group",
    "ring": "sockgroup, policy ring",
    "primary": "sockgroup, policy primary",
    "rescue": "sockgroup + stall rescue (ring)",
}
COST_STATES = ["unloaded", "loaded", "group"]
COST_LABELS = {
    "unloaded": "module not loaded",
    "loaded": "module loaded, no group",
    "group": "module loaded, group, nobody full",
}
NSTAT = ["ListenOverflows", "ListenDrops", "TCPReqQFullDrop", "SyncookiesSent"]
# Also kept, to explain what the four above do not show.
NSTAT_EXTRA = ["TCPSynRetrans", "TCPTimeouts", "TCPAbortOnData", "TCPAbortOnClose"]
USER_HZ = 100  # /proc/stat ticks per second
# The KUnit case sg_test_syn_decision's cases, in the order of the table.
SYN_CASES = ["no_group", "not_member", "keep", "next", "walk"]
SYN_LABELS = {
    "no_group": "no group in the namespace",
    "not_member": "listener in no group",
    "keep": "member with room",
    "next": "full, next takes it",
    "walk": "full, ring walked to the last",
}
SYN_RE = re.compile(r"syn_decision members=(\d+) from=(\w+) case=(\w+) iters=(\d+) "
                    r"rounds=(\d+) chosen=(-?\d+) ns_min=(\d+) ns_median=(\d+)")
SYN_FROM = {
    "packet": "SYN packet (the hook's whole decision)",
    "listener": "its listener (after the hook's listener lookup)",
}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values):
    values = [v for v in values if v is not None]
    return [min(values), max(values)] if values else None


def permille(sorted_values, pm):
    """Nearest rank, as sgctl connect computes it."""
    if not sorted_values:
        return None
    rank = math.ceil(pm * len(sorted_values) / 1000)
    return sorted_values[max(rank, 1) - 1]


def read_meta(path):
    meta = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        meta[key] = value
    return meta


def read_counters(path):
    """'Prefix: names' / 'Prefix: values' line pairs -> {PrefixName: value}."""
    out = {}
    lines = path.read_text().splitlines()
    for names, values in zip(lines[0::2], lines[1::2]):
        prefix, _, names = names.partition(":")
        _, _, values = values.partition(":")
        for n, v in zip(names.split(), values.split()):
            try:
                out[prefix + n] = int(v)
            except ValueError:
                pass
    return out


def counter_deltas(before, after):
    b, a = read_counters(before), read_counters(after)
    return {k: a[k] - b.get(k, 0) for k in a if a[k] - b.get(k, 0) != 0}


def read_sockgroup(path):
    members = []
    if not path.exists():
        return members
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        f = line.split()
        member = {
            "group": int(f[0]), "policy": f[1], "member": int(f[3]), "local": f[5],
            "queue": int(f[7]), "handshakes": int(f[8]), "limit": int(f[9]),
            "redirected_away": int(f[10]), "redirected_in": int(f[11]),
            "dropped": int(f[12]),
        }
        # Stall rescue's columns (a module with version 2 requests).
        if len(f) >= 18:
            member.update({"stall_ms": int(f[14]), "status": f[15],
                           "rescued_away": int(f[16]), "rescued_in": int(f[17])})
        members.append(member)
    return members


def overload(raw, meta):
    cases = {}
    samples = {}
    for case in OV_CASES:
        rounds = []
        pooled = []
        for conn in sorted(raw.glob(f"overload-{case}-r*.connect.json"),
                           key=lambda p: int(re.search(r"-r(\d+)\.", p.name).group(1))):
            base = str(conn)[: -len(".connect.json")]
            rnd = int(re.search(r"-r(\d+)\.", conn.name).group(1))
            c = json.loads(conn.read_text())
            lat = c.get("connect_latency_us") or {}
            reply = c.get("reply_latency_us") or {}
            deltas = counter_deltas(Path(base + ".counters-before.txt"),
                                    Path(base + ".counters-after.txt"))
            serve_path = Path(base + ".serve.json")
            try:
                serve = json.loads(serve_path.read_text())
                accepted = [m["accepted"] for m in serve["members"]]
            except (OSError, ValueError, KeyError):
                accepted = None
            s = c.get("connect_latency_samples_us") or []
            pooled.extend(s)
            rounds.append({
                "round": rnd,
                "attempted": c["count"],
                "completed": c["completed"],
                "failed": c["failed"],
                "connect_failed": c["connect_failed"],
                "timed_out_after_connect": c["timeouts"],
                "no_reply": c["no_reply"],
                "served_per_member": accepted,
                "connect_latency_us": {k: lat.get(k) for k in ("min", "p50", "p99", "p999", "max")},
                "reply_latency_us": {k: reply.get(k) for k in ("p50", "p99", "p999", "max")},
                "connections_over_1s": sum(1 for v in s if v >= 1_000_000),
                "elapsed_us": c.get("elapsed_us"),
                "nstat": {n: deltas.get("TcpExt" + n, 0) for n in NSTAT},
                "nstat_extra": {n: deltas.get("TcpExt" + n, 0) for n in NSTAT_EXTRA},
                "tcp_retrans_segs": deltas.get("TcpRetransSegs", 0),
                "sockgroup": read_sockgroup(Path(base + ".sockgroup.txt")),
            })
        if not rounds:
            continue
        pooled.sort()
        attempted = sum(r["attempted"] for r in rounds)
        samples[case] = (pooled, attempted)

        def med(key, sub=None):
            vals = [(r[key][sub] if sub else r[key]) for r in rounds]
            return median(vals)

        cases[case] = {
            "label": OV_LABELS[case],
            "rounds": len(rounds),
            "per_round_median": {
                "attempted": med("attempted"),
                "completed": med("completed"),
                "failed": med("failed"),
                "connect_failed": med("connect_failed"),
                "timed_out_after_connect": med("timed_out_after_connect"),
                "connect_latency_us": {k: med("connect_latency_us", k)
                                       for k in ("p50", "p99", "p999")},
                "reply_latency_us": {k: med("reply_latency_us", k)
                                     for k in ("p50", "p99", "p999")},
                "nstat": {n: median([r["nstat"][n] for r in rounds]) for n in NSTAT},
                "nstat_extra": {n: median([r["nstat_extra"][n] for r in rounds])
                                for n in NSTAT_EXTRA},
            },
            "total": {
                "attempted": attempted,
                "completed": sum(r["completed"] for r in rounds),
                "failed": sum(r["failed"] for r in rounds),
                "connect_failed": sum(r["connect_failed"] for r in rounds),
                "timed_out_after_connect": sum(r["timed_out_after_connect"] for r in rounds),
                "no_reply": sum(r["no_reply"] for r in rounds),
                "connections_over_1s": sum(r["connections_over_1s"] for r in rounds),
                # Connections moved from a stalled member's queue (stall
                # rescue; the listing's rescued_away, summed).
                "rescued": sum(m.get("rescued_away", 0) for r in rounds
                               for m in r["sockgroup"]),
                "nstat": {n: sum(r["nstat"][n] for r in rounds) for n in NSTAT},
                "nstat_extra": {n: sum(r["nstat_extra"][n] for r in rounds)
                                for n in NSTAT_EXTRA},
            },
            "pooled_connect_latency_us": {
                "samples": len(pooled),
                "p50": permille(pooled, 500),
                "p99": permille(pooled, 990),
                "p999": permille(pooled, 999),
                "max": pooled[-1] if pooled else None,
                "all_us": pooled,
            },
            "per_round": rounds,
        }
    # Ratios against the idle service (nobody stalled), paired by round.
    idle = {r["round"]: r for r in cases.get("idle", {}).get("per_round", [])}
    for case, data in cases.items():
        ratios = {}
        for k in ("p50", "p99", "p999"):
            per = []
            for r in data["per_round"]:
                base = idle.get(r["round"])
                if base and base["connect_latency_us"][k] and r["connect_latency_us"][k]:
                    per.append(r["connect_latency_us"][k] / base["connect_latency_us"][k])
            ratios[k] = {"median": median(per), "min_max": spread(per)}
        data["latency_ratio_to_idle"] = ratios
    return cases, samples


def parse_wrk(text):
    out = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", text)
    if m:
        scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
        out["requests"] = int(m.group(1))
        out["seconds"] = float(m.group(2)) * scale
    m = re.search(r"Requests/sec:\s*([\d.]+)", text)
    if m:
        out["requests_per_s"] = float(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = ({"connect": int(m.group(1)), "read": int(m.group(2)),
                             "write": int(m.group(3)), "timeout": int(m.group(4))}
                            if m else {"connect": 0, "read": 0, "write": 0, "timeout": 0})
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    return out


def cost(raw, meta):
    per_state = {}
    for state in COST_STATES:
        rounds = []
        for wrk in sorted(raw.glob(f"cost-{state}-r*.wrk.txt"),
                          key=lambda p: int(re.search(r"-r(\d+)\.", p.name).group(1))):
            base = str(wrk)[: -len(".wrk.txt")]
            rnd = int(re.search(r"-r(\d+)\.", wrk.name).group(1))
            w = parse_wrk(wrk.read_text())
            cpu = {}
            cpu_path = Path(base + ".wrk-cpu.txt")
            if cpu_path.exists():
                for kv in cpu_path.read_text().split():
                    k, _, v = kv.partition("=")
                    cpu[k] = int(v)
            busy_s = cpu.get("busy_ticks", 0) / USER_HZ
            cpu_us_per_conn = (busy_s * 1e6 / w["requests"]) if w.get("requests") else None
            try:
                ip = json.loads(Path(base + ".iperf3.json").read_text())
                bps = ip["end"]["sum_received"]["bits_per_second"]
                retr = ip["end"]["sum_sent"].get("retransmits")
            except (OSError, ValueError, KeyError):
                bps, retr = None, None
            rounds.append({
                "round": rnd,
                "wrk": w,
                "connections_per_s": w.get("requests_per_s"),
                "cpu_busy_s_during_wrk": busy_s,
                "cpu_us_per_connection": cpu_us_per_conn,
                "iperf3_bits_per_s": bps,
                "iperf3_retransmits": retr,
                "group_members": len(read_sockgroup(Path(base + ".sockgroup.txt"))),
            })
        per_state[state] = rounds

    def by_round(state, key):
        return {r["round"]: r[key] for r in per_state.get(state, [])}

    states = {}
    base_rate = by_round("unloaded", "connections_per_s")
    base_bps = by_round("unloaded", "iperf3_bits_per_s")
    for state, rounds in per_state.items():
        if not rounds:
            continue
        rate_ratio = [r["connections_per_s"] / base_rate[r["round"]] for r in rounds
                      if r["connections_per_s"] and base_rate.get(r["round"])]
        bps_ratio = [r["iperf3_bits_per_s"] / base_bps[r["round"]] for r in rounds
                     if r["iperf3_bits_per_s"] and base_bps.get(r["round"])]
        states[state] = {
            "label": COST_LABELS[state],
            "rounds": len(rounds),
            "connections_per_s": {"median": median(r["connections_per_s"] for r in rounds),
                                  "min_max": spread([r["connections_per_s"] for r in rounds])},
            "cpu_us_per_connection": {
                "median": median(r["cpu_us_per_connection"] for r in rounds),
                "min_max": spread([r["cpu_us_per_connection"] for r in rounds])},
            "iperf3_bits_per_s": {"median": median(r["iperf3_bits_per_s"] for r in rounds),
                                  "min_max": spread([r["iperf3_bits_per_s"] for r in rounds])},
            "connection_rate_ratio_to_unloaded": {"median": median(rate_ratio),
                                                  "min_max": spread(rate_ratio)},
            "throughput_ratio_to_unloaded": {"median": median(bps_ratio),
                                             "min_max": spread(bps_ratio)},
            "per_round": rounds,
        }

    # Per-SYN cost of the decision: the extra time per connection with a
    # group (nobody full) over the module not loaded, paired by round.
    cpus = int(meta.get("cpus", "1") or 1)
    g_rate = by_round("group", "connections_per_s")
    g_cpu = by_round("group", "cpu_us_per_connection")
    u_cpu = by_round("unloaded", "cpu_us_per_connection")
    from_rate, from_cpu = [], []
    for rnd, r in g_rate.items():
        if r and base_rate.get(rnd):
            from_rate.append(cpus * (1 / r - 1 / base_rate[rnd]) * 1e9)
        if g_cpu.get(rnd) and u_cpu.get(rnd):
            from_cpu.append((g_cpu[rnd] - u_cpu[rnd]) * 1e3)
    def resolved(values):
        return len(values) >= 2 and (min(values) > 0 or max(values) < 0)

    per_syn = {
        "ns_from_rate": {"median": median(from_rate), "min_max": spread(from_rate),
                         "per_round": from_rate, "resolved": resolved(from_rate)},
        "ns_from_cpu_time": {"median": median(from_cpu), "min_max": spread(from_cpu),
                             "per_round": from_cpu, "resolved": resolved(from_cpu)},
        "method": (
            "ns_from_rate = CPUs x (1/rate(group) - 1/rate(not loaded)) per round "
            "(wrk, fresh connections, one SYN each; assumes the vCPUs are the "
            "bottleneck); ns_from_cpu_time = busy CPU time per connection "
            "(/proc/stat during wrk) with the group minus without the module. "
            "Both include every packet of the connection that the hook sees, "
            "not only the SYN. An estimate under QEMU TCG (emulated CPU, host "
            "shared with other work): the spread across rounds is the "
            "uncertainty; 'resolved' is false when the rounds disagree in sign, "
            "i.e. the cost is below what the run can resolve."),
    }
    return states, per_syn


def syn_decision(raw, states):
    """The figures of sg_test_syn_decision (its KUnit results file), and
    each decision as a share of a connection's CPU time in section 2."""
    path = raw / "syn-decision.kunit.txt"
    if not path.exists():
        return None
    text = path.read_text()
    sizes = {}
    iters = rounds = 0
    for m in SYN_RE.finditer(text):
        members, start, case, it, rd, chosen, ns_min, ns_med = m.groups()
        iters, rounds = int(it), int(rd)
        sizes.setdefault(members, {}).setdefault(start, {})[case] = {
            "chosen": int(chosen),
            "ns_per_decision": {"fastest_round": int(ns_min) / iters,
                                "median_round": int(ns_med) / iters},
        }
    conn_us = (states.get("unloaded") or {}).get("cpu_us_per_connection", {}).get("median")
    if conn_us:
        for d in (d for froms in sizes.values() for cases in froms.values()
                  for d in cases.values()):
            d["share_of_connection_cpu"] = d["ns_per_decision"]["fastest_round"] / (conn_us * 1e3)
    return {
        "parameters": {"iterations": iters, "rounds": rounds,
                       "kunit_case": "sg_test_syn_decision (sockgroup_kunit.ko)"},
        "kunit_case_passed": bool(re.search(r"^\s*ok \d+ sg_test_syn_decision$", text, re.M)),
        "connection_cpu_us": conn_us,
        "members": sizes,
        "method": (
            "Inside the guest's kernel, the module's own code: from packet = "
            "NetGroups::steer_packet, the LOCAL_IN hook's steer decision for an IPv4 SYN "
            "(built in memory, 127.0.0.1:40000 to the addressed listener) without acting "
            "on it: the namespace's groups snapshot under RCU, the TCP header, the "
            "listener lookup (inet_lookup_listener), the listener's group by binary "
            "search, its ring position, ring::choose reading each member's load, and for "
            "a redirect the established lookup of the 4-tuple; from listener = "
            "NetGroups::steer_choice, the same from the listener on (no packet, no "
            "lookups). Each called `iterations` times in a loop between two ktime_get() "
            "per case and round, modes and cases alternating within a round; "
            "ns_per_decision = the round's time / iterations (fastest and median round). "
            "Ring groups of 2, 8 and 64 loopback listeners made with the option's own path "
            "(Control::regroup), all full (backlog 1, 2 connections queued) but the last in "
            "ring order: keep = the last member (room: the kernel's path), next = the one "
            "before it (its next member takes it), walk = member 0 (every member read); "
            "not_member = a listener of no group; no_group = a namespace's groups without "
            "any. Not included: netfilter's call of the hook and the hook's fetch of the "
            "namespace's state, and the action (assigning the socket, the counters). "
            "Under QEMU TCG "
            "(emulated CPU): compare with the connection's CPU time of the same run "
            "(share_of_connection_cpu: fastest round over cost.states.unloaded's median "
            "cpu_us_per_connection), not with native figures."),
    }


# ---------------------------------------------------------------- handoff
HO_CASES = ["direct", "haproxy", "ipvs-dr", "handoff"]
HO_LABELS = {
    "direct": "direct: the client to be1 itself",
    "haproxy": "HAProxy (HTTP mode, content rules) on fe",
    "ipvs-dr": "IPVS direct routing on fe",
    "handoff": "sockgroup handoff on fe",
}
HO_NAMESPACES = ["cli", "rtr", "fe", "be1", "be2"]


def read_snapshot(path):
    """bench/run-handoff.sh's ho_snapshot: /proc/stat's cpu line, each
    namespace's /proc/net/dev, fe's processes' /proc/PID/stat."""
    snap = {"cpu": None, "netdev": {}, "fe_procs": {}}
    section = None
    for line in path.read_text().splitlines():
        if line.startswith("== "):
            section = line[3:].split()
            continue
        if section == ["stat"] and line.startswith("cpu "):
            snap["cpu"] = [int(v) for v in line.split()[1:]]
        elif section and section[0] == "netdev":
            name, _, rest = line.partition(":")
            f = [int(v) for v in rest.split()]
            snap["netdev"].setdefault(section[1], {})[name.strip()] = {
                "rx_bytes": f[0], "rx_packets": f[1], "tx_bytes": f[8], "tx_packets": f[9]}
        elif section == ["fe_procs"] and line:
            pid = line.split()[0]
            comm = line[line.index("(") + 1:line.rindex(")")]
            f = line[line.rindex(")") + 2:].split()
            # utime and stime are fields 14 and 15 of the line (11 and 12
            # after the state, which is field 3).
            snap["fe_procs"][pid] = {"comm": comm, "ticks": int(f[11]) + int(f[12])}
    return snap


def snapshot_deltas(before, after):
    """The figures of one measured interval, in us and bytes/packets."""
    b, a = before["cpu"], after["cpu"]
    d = [x - y for x, y in zip(a, b)]
    # user nice system idle iowait irq softirq steal ...
    busy = sum(d) - d[3] - d[4]
    tick_us = 1e6 / USER_HZ
    net = {}
    all_rx = 0
    for ns, ifaces in after["netdev"].items():
        for name, c in ifaces.items():
            c0 = before["netdev"].get(ns, {}).get(name)
            if c0 is None:
                continue
            dd = {k: c[k] - c0[k] for k in c}
            net[f"{ns}/{name}"] = dd
            if name != "lo":
                all_rx += dd["rx_packets"] + dd["tx_packets"]
    procs = {}
    for pid, p in after["fe_procs"].items():
        if pid in before["fe_procs"]:
            p0 = before["fe_procs"][pid]
            key = p["comm"]
            procs[key] = procs.get(key, 0) + (p["ticks"] - p0["ticks"]) * tick_us
    fe = net.get("fe/eth0", {"rx_bytes": 0, "rx_packets": 0, "tx_bytes": 0, "tx_packets": 0})
    softirq_us = d[6] * tick_us
    # fe's share of the packets: what it received and what it sent (a
    # handoff's forwarding sends more datagrams than it receives packets).
    share = (fe["rx_packets"] + fe["tx_packets"]) / all_rx if all_rx else 0.0
    return {
        "vm_busy_us": busy * tick_us,
        "vm_softirq_us": softirq_us,
        "fe_process_us": sum(procs.values()),
        "fe_process_us_by_comm": procs,
        "fe_packet_share": share,
        "fe_softirq_us": softirq_us * share,
        "fe_eth0": fe,
        "all_packets": all_rx,
    }


def pct(values, p):
    values = sorted(values)
    return permille(values, p * 10) if values else None


def ho_files(raw, tail, suffix, prefix=""):
    """(path, path without suffix, (case, groups of tail...)) of the raw files
    handoff-PREFIX<case>-TAIL SUFFIX."""
    pat = re.compile(f"handoff-{prefix}(direct|haproxy|ipvs-dr|handoff)-{tail}{re.escape(suffix)}$")
    for path in sorted(raw.glob(f"handoff-{prefix}*{suffix}")):
        m = pat.fullmatch(path.name)
        if m:
            yield path, str(path)[:-len(suffix)], m.groups()


def handoff(raw, meta):
    sizes = [int(s) for s in meta.get("ho_sizes_kib", "").split()]
    rounds = {}
    for path, base, (case, size, rnd) in ho_files(raw, r"(\d+)k-r(\d+)", ".wrk.txt"):
        size, rnd = int(size), int(rnd)
        wrk = parse_wrk(path.read_text())
        rec = {"wrk": wrk}
        try:
            dl = snapshot_deltas(read_snapshot(Path(base + ".before.txt")),
                                 read_snapshot(Path(base + ".after.txt")))
        except (OSError, ValueError, IndexError):
            dl = None
        n = wrk.get("requests") or 0
        # Answers other than 200 (a handoff that fell back to fe, which
        # does not have be1's objects, answers 404) are not counted as
        # served: requests/s and bytes per response byte are of the 200s;
        # CPU time per request is over every request wrk completed.
        ok = n - wrk.get("non_2xx", 0)
        if dl and n and ok > 0:
            body = ok * size * 1024
            rec.update({
                "requests_per_s": ok / wrk["seconds"] if wrk.get("seconds") else None,
                "wrk_requests_per_s": wrk.get("requests_per_s"),
                "requests": n,
                "non_2xx": n - ok,
                "vm_cpu_us_per_request": dl["vm_busy_us"] / n,
                "fe_cpu_us_per_request": (dl["fe_process_us"] + dl["fe_softirq_us"]) / n,
                "fe_process_cpu_us_per_request": dl["fe_process_us"] / n,
                "fe_softirq_us_per_request": dl["fe_softirq_us"] / n,
                "fe_tx_bytes_per_response_byte": dl["fe_eth0"]["tx_bytes"] / body,
                "fe_rx_tx_bytes_per_response_byte":
                    (dl["fe_eth0"]["tx_bytes"] + dl["fe_eth0"]["rx_bytes"]) / body,
                "deltas": dl,
            })
        try:
            t = json.loads(Path(base + ".timing.json").read_text())
            ttfb = [s["ttfb_us"] for s in t["samples"]]
            tot = [s["total_us"] for s in t["samples"]]
            rec["timing"] = {
                "completed": t["completed"], "failed": t["failed"],
                "ttfb_p50_us": pct(ttfb, 50), "ttfb_p99_us": pct(ttfb, 99),
                "total_p50_us": pct(tot, 50), "total_p99_us": pct(tot, 99),
                "ttfb_us": ttfb, "total_us": tot,
            }
        except (OSError, ValueError, KeyError):
            rec["timing"] = None
        rounds.setdefault(size, {}).setdefault(case, {})[rnd] = rec

    def fig(rec, key):
        if key.startswith("timing."):
            t = rec.get("timing")
            return t.get(key[7:]) if t else None
        return rec.get(key)

    keys = ["requests_per_s", "vm_cpu_us_per_request", "fe_cpu_us_per_request",
            "fe_process_cpu_us_per_request", "fe_softirq_us_per_request",
            "fe_tx_bytes_per_response_byte", "fe_rx_tx_bytes_per_response_byte",
            "timing.ttfb_p50_us", "timing.ttfb_p99_us", "timing.total_p50_us",
            "timing.total_p99_us"]
    out = {}
    for size in sizes:
        by_case = rounds.get(size, {})
        out_size = {}
        for case in HO_CASES:
            rr = by_case.get(case)
            if not rr:
                continue
            d = {"label": HO_LABELS[case], "rounds": len(rr)}
            for k in keys:
                vals = [fig(rr[r], k) for r in sorted(rr)]
                name = k.replace("timing.", "")
                d[name] = {"median": median(vals), "min_max": spread(vals), "per_round": vals}
            # Paired by round: against HAProxy, against direct; the CPU
            # the case adds to the whole VM against direct's.
            for ref, figs in (("haproxy", ["requests_per_s", "fe_cpu_us_per_request",
                                           "timing.ttfb_p50_us", "timing.total_p50_us",
                                           "fe_tx_bytes_per_response_byte"]),
                              ("direct", ["requests_per_s", "vm_cpu_us_per_request",
                                          "timing.ttfb_p50_us"])):
                refr = by_case.get(ref, {})
                ratios = {}
                for k in figs:
                    vals = []
                    for r in sorted(rr):
                        a, b = fig(rr[r], k), fig(refr.get(r, {}), k) if r in refr else None
                        vals.append(a / b if a is not None and b else None)
                    ratios[k.replace("timing.", "")] = {"median": median(vals),
                                                        "min_max": spread(vals),
                                                        "per_round": vals}
                d[f"ratio_to_{ref.replace('-', '_')}"] = ratios
            added = []
            for r in sorted(rr):
                a = rr[r].get("vm_cpu_us_per_request")
                b = by_case.get("direct", {}).get(r, {}).get("vm_cpu_us_per_request")
                added.append(a - b if a is not None and b is not None else None)
            d["vm_cpu_us_per_request_added_to_direct"] = {
                "median": median(added), "min_max": spread(added), "per_round": added}
            d["non_2xx_total"] = sum(rr[r].get("non_2xx", 0) for r in rr)
            d["requests_total"] = sum(rr[r].get("requests", 0) for r in rr)
            d["timing_failed_total"] = sum((rr[r].get("timing") or {}).get("failed", 0) for r in rr)
            d["per_round"] = {str(r): {k: v for k, v in rr[r].items()} for r in sorted(rr)}
            out_size[case] = d
        if out_size:
            out[str(size)] = out_size

    # The uploads: per-packet cost of forwarding the client's segments.
    up = {}
    for path, base, (case, rnd) in ho_files(raw, r"r(\d+)", ".curl.txt", "upload-"):
        rnd = int(rnd)
        text = path.read_text()
        rec = {"curl": text.strip()}
        mm = re.search(r"http_code=(\d+) size_upload=(\d+) time_total=([\d.]+)", text)
        if mm:
            rec.update({"http_code": int(mm.group(1)), "bytes": int(mm.group(2)),
                        "seconds": float(mm.group(3))})
        try:
            rec["deltas"] = snapshot_deltas(read_snapshot(Path(base + ".before.txt")),
                                            read_snapshot(Path(base + ".after.txt")))
        except (OSError, ValueError, IndexError):
            rec["deltas"] = None
        up.setdefault(case, {})[rnd] = rec
    upload = {}
    for case in ["direct", "ipvs-dr", "handoff"]:
        rr = up.get(case)
        if not rr:
            continue
        per = []
        for r in sorted(rr):
            rec = rr[r]
            dl = rec.get("deltas")
            ref = up.get("direct", {}).get(r, {}).get("deltas")
            row = {"round": r, "seconds": rec.get("seconds"), "http_code": rec.get("http_code")}
            if dl:
                pk = dl["fe_eth0"]["rx_packets"]
                row.update({
                    "fe_rx_packets": pk, "fe_tx_packets": dl["fe_eth0"]["tx_packets"],
                    "vm_busy_us": dl["vm_busy_us"],
                    "fe_softirq_us": dl["fe_softirq_us"],
                    "fe_process_us": dl["fe_process_us"],
                })
                # The client's segments as full-sized ones (MSS 1448 at MTU
                # 1500): the same count in every case, whatever GRO merged
                # or the handoff's MSS clamp split.
                seg = (rec.get("bytes") or 0) / 1448
                row["segments_1448"] = seg
                if case != "direct" and pk:
                    row["fe_softirq_us_per_fe_packet"] = dl["fe_softirq_us"] / pk
                    if ref:
                        added = dl["vm_busy_us"] - ref["vm_busy_us"]
                        row["added_vm_us_per_fe_packet"] = added / pk
                        if seg:
                            row["added_vm_us_per_segment"] = added / seg
            per.append(row)

        def agg(k):
            vals = [p.get(k) for p in per]
            return {"median": median(vals), "min_max": spread(vals)}
        upload[case] = {"rounds": len(per), "per_round": per,
                        **{k: agg(k) for k in ["seconds", "fe_rx_packets", "fe_tx_packets",
                                               "vm_busy_us", "added_vm_us_per_segment",
                                               "added_vm_us_per_fe_packet",
                                               "fe_softirq_us_per_fe_packet"]}}
    if "handoff" in upload and "ipvs-dr" in upload:
        ratios = {}
        for k in ["added_vm_us_per_segment", "added_vm_us_per_fe_packet",
                  "fe_softirq_us_per_fe_packet"]:
            h = {p["round"]: p.get(k) for p in upload["handoff"]["per_round"]}
            i = {p["round"]: p.get(k) for p in upload["ipvs-dr"]["per_round"]}
            vals = [h[r] / i[r] if h.get(r) is not None and i.get(r) else None for r in sorted(h)]
            ratios[k] = {"median": median(vals), "min_max": spread(vals), "per_round": vals}
        upload["handoff_to_ipvs_dr"] = ratios
    if not out and not upload:
        return None
    return {
        "parameters": {
            "rounds": max((d["rounds"] for s in out.values() for d in s.values()), default=0),
            "sizes_kib": sizes,
            "wrk_seconds": int(meta.get("ho_wrk_seconds", "0") or 0),
            "wrk_connections": int(meta.get("ho_connections", "0") or 0),
            "timing_samples": int(meta.get("ho_samples", "0") or 0),
            "upload_mib": int(meta.get("ho_upload_mib", "0") or 0),
            "haproxy": meta.get("haproxy_version"),
            "haproxy_threads": meta.get("ho_haproxy_threads", "default"),
            "ipvsadm": meta.get("ipvsadm_version"),
        },
        "attribution": (
            "fe_cpu = fe's processes (utime+stime of every process in fe's namespace, "
            "/proc/PID/stat: nginx, haproxy) + fe_softirq; fe_softirq = the VM's softirq "
            "time (/proc/stat) times fe's share of the packets on all the namespaces' "
            "interfaces (fe's eth0 rx + tx packets over the rx + tx packets of every "
            "interface but lo in cli, rtr, fe, be1, be2; /proc/PID/net/dev): the kernel "
            "does not account softirq time per namespace, so this is a proportional "
            "split, blind to what a packet costs. vm_cpu_us_per_request_added_to_direct: the whole VM's busy time per "
            "request minus direct's in the same round and size: what going through fe "
            "adds, however it is attributed"),
        "sizes": out,
        "upload": upload,
        "fe_show_before": _load_json(raw / "handoff-fe-show-before.json"),
        "fe_show_after": _load_json(raw / "handoff-fe-show-after.json"),
    }


def _load_json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def fmt_us(us):
    if us is None:
        return "-"
    if us >= 1000:
        return f"{us / 1000:.1f} ms"
    return f"{us:.0f} us"


def fmt_ratio(r):
    if not r or r.get("median") is None:
        return "-"
    lo, hi = r["min_max"]
    return f"{r['median']:.2f} ({lo:.2f}-{hi:.2f})"


# --------------------------------------------------------------- failover
FO_EVENTS = [("link-down", "j"), ("join", "l"), ("netns-deleted", "k")]


def failover(raw, meta):
    """run-guest.sh's failover section: raw/failover.N.jsonl (one object a
    round of selftests/dispatch.sh: j, l, k) and failover.N.status."""
    runs = []
    for path in sorted(raw.glob("failover.*.jsonl"),
                       key=lambda p: int(p.name.split(".")[1])):
        n = int(path.name.split(".")[1])
        status = raw / f"failover.{n}.status"
        rounds = []
        for line in path.read_text().splitlines():
            try:
                rounds.append(json.loads(line))
            except ValueError:
                continue
        runs.append({"run": n,
                     "suite_status": int(status.read_text().strip()) if status.exists() else None,
                     "rounds": rounds})
    if not runs:
        return None
    events = {}
    for event, _ in FO_EVENTS:
        rs = [r for run in runs for r in run["rounds"] if r.get("event") == event]
        if not rs:
            continue
        d = {"runs": len(rs),
             "downloads": sum(r["downloads"] for r in rs),
             "complete": sum(r["complete"] for r in rs),
             "reset": sum(r["reset"] for r in rs),
             "heartbeat_ms": rs[0]["heartbeat_ms"]}
        if event == "join":
            d["owner_changed"] = [r["owner_changed"] for r in rs]
            d["stall_ms"] = {"median": median([r["stall_ms"] for r in rs]),
                             "max": max(r["stall_ms"] for r in rs)}
        else:
            d["leaving_owned"] = [r["leaving_owned"] for r in rs]
            d["bound_ms"] = rs[0]["bound_ms"]
            for k in ("stall_leaving_ms", "stall_others_ms"):
                d[k] = {"median": median([r[k] for r in rs]), "max": max(r[k] for r in rs),
                        "min": min(r[k] for r in rs)}
            # When a node that stays saw the node go (its peer-down event),
            # after the event; runs before 2026-12-05 did not record it.
            seen = [r["down_seen_ms"] for r in rs if r.get("down_seen_ms") is not None]
            d["down_seen_ms"] = {"median": median(seen), "min": min(seen),
                                 "max": max(seen)} if seen else None
        events[event] = d
    return {
        "parameters": {
            "runs": len(runs),
            "suite": "selftests/dispatch.sh (plain kernel), rounds j, l, k",
            "downloads": f"{runs[0]['rounds'][0]['downloads'] if runs[0]['rounds'] else '?'} "
                         "a round, 1 MiB each, reads paced at 64 KiB/s (48 KiB/s in l; "
                         "half that at more than 30 a round), "
                         "16 KiB receive buffer (selftests/dispatch_stall.py)",
            "stall": "the longest time one receive of a download waited for data",
        },
        "events": events,
        "runs": runs,
    }


def failover_table(result, lines):
    f = result["failover"]
    p = f["parameters"]
    failed = [r["run"] for r in f["runs"] if r.get("suite_status")]
    lines.append(f"**Failover**{reused(f)}: {p['runs']} run(s) of {p['suite']}; {p['downloads']}. "
                 "Stall: " + p["stall"] + ", over the downloads the leaving node owned and over "
                 "the others (median of the runs, and their range); seen down after: when the "
                 "first node that stays reported the leaving node down (`sgctl cluster monitor`'s "
                 "peer-down), after the event. Bound: issue 13's figure, "
                 "3 heartbeat intervals + 1 RTO (200 ms)." +
                 (f" The suite's checks failed in run(s) {failed} (raw/failover.N.tap)."
                  if failed else " The suite's checks passed in every run."))
    lines.append("")
    lines.append("| event | downloads | complete byte-exact | reset | owned by the leaving node "
                 "| seen down after | its longest stall | the others' | bound |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = {"link-down": "owner's link down (j)", "join": "fourth dispatcher joins (l)",
             "netns-deleted": "owner's namespace deleted (k)"}
    for event, _ in FO_EVENTS:
        d = f["events"].get(event)
        if not d:
            continue
        if event == "join":
            owned = "owner changed: " + ", ".join(map(str, d["owner_changed"]))
            st = f"{d['stall_ms']['median']:.0f} ms (max {d['stall_ms']['max']})"
            lines.append(f"| {names[event]} | {d['downloads']} | {d['complete']} | {d['reset']} "
                         f"| {owned} | - | - | {st} | - |")
            continue
        sl, so, dn = d["stall_leaving_ms"], d["stall_others_ms"], d.get("down_seen_ms")
        seen = f"{dn['median']:.0f} ms ({dn['min']}-{dn['max']})" if dn else "-"
        lines.append(f"| {names[event]} | {d['downloads']} | {d['complete']} | {d['reset']} "
                     f"| {', '.join(map(str, d['leaving_owned']))} | {seen} "
                     f"| {sl['median']:.0f} ms ({sl['min']}-{sl['max']}) "
                     f"| {so['median']:.0f} ms ({so['min']}-{so['max']}) | {d['bound_ms']} ms |")
    lines.append("")


def tables(result):
    meta = result["environment"]
    lines = []
    lines.append(f"Run of {meta['date']}: kernel {meta['kernel']}, {meta['cpus']} vCPUs, "
                 f"QEMU {meta['accel'].upper()} ({meta['cpu_model']}), clocksource "
                 f"{meta['clocksource']}; host load average {result['host']['loadavg_before']} "
                 f"before, {result['host']['loadavg_after']} after.")
    if not meta["latency_clock_ok"]:
        lines.append("")
        lines.append(f"**WARNING**: the guest's clocksource was {meta['clocksource']}, not tsc: "
                     "the latencies below move in jiffies steps (4 ms at HZ=250).")
    lines.append("")
    if "overload" in result:
        overload_table(result, lines)
    if "cost" in result:
        cost_table(result, lines)
    if "syn_decision" in result:
        syn_table(result, lines)
    if "handoff" in result:
        handoff_table(result, lines)
    if "failover" in result:
        failover_table(result, lines)
    return "\n".join(lines).rstrip("\n") + "\n"


def reused(section):
    """The note of a section taken over from an earlier run."""
    run = section.get("from_run")
    return f" (from the run of {run['date']}: this run did not measure it)" if run else ""


def overload_table(result, lines):
    ov = result["overload"]["cases"]
    o = result["overload"]["parameters"]
    lines.append(f"**Overload**{reused(result['overload'])}: {o['rounds']} round(s) of {o['connections']} fresh connections per "
                 f"case ({o['concurrency']} clients at once, {o['timeout_ms']} ms to connect and "
                 f"again to read the reply), member 0 stalled with backlog {o['backlog']}; "
                 f"stall rescue after {o.get('stall_ms', 0)} ms; "
                 "totals over all rounds, latencies are medians of the per-round figures "
                 "(ratio: to the idle service in the same round; reply p99: from the start "
                 "of a connection to its reply, which for a rescued one includes its wait "
                 "in the stalled queue).")
    lines.append("")
    lines.append("| case | attempted | completed | failed (connect / no reply) | p50 | p99 | p99.9 "
                 "| p99 / idle p99 | reply p99 | rescued | ListenOverflows | ListenDrops "
                 "| TCPReqQFullDrop | SyncookiesSent | TCPSynRetrans |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case in OV_CASES:
        if case not in ov:
            continue
        d = ov[case]
        t = d["total"]
        lat = d["per_round_median"]["connect_latency_us"]
        reply = d["per_round_median"].get("reply_latency_us") or {}
        ratio = d["latency_ratio_to_idle"]["p99"]
        lines.append(
            f"| {d['label']} | {t['attempted']} | {t['completed']} | {t['failed']} "
            f"({t['connect_failed']} / {t['timed_out_after_connect'] + t['no_reply']}) | {fmt_us(lat['p50'])} "
            f"| {fmt_us(lat['p99'])} | {fmt_us(lat['p999'])} | {fmt_ratio(ratio)} "
            f"| {fmt_us(reply.get('p99'))} | {t.get('rescued', 0)} "
            f"| {t['nstat']['ListenOverflows']} | {t['nstat']['ListenDrops']} "
            f"| {t['nstat']['TCPReqQFullDrop']} | {t['nstat']['SyncookiesSent']} "
            f"| {t['nstat_extra']['TCPSynRetrans']} |")
    lines.append("")


def cost_table(result, lines):
    c = result["cost"]
    p = c["parameters"]
    lines.append(f"**Cost**{reused(c)}: {p['rounds']} round(s), two network namespaces on a veth pair; "
                 f"wrk {p['wrk_seconds']} s, {p['wrk_connections']} connections, "
                 "`Connection: close` (one fresh connection per request) against nginx; "
                 f"iperf3 {p['iperf_seconds']} s. Medians, (min-max) over rounds; ratios "
                 "paired by round against the module not loaded.")
    lines.append("")
    lines.append("| state | connections/s | ratio | CPU per connection | bulk Mbit/s | ratio |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    for state in COST_STATES:
        if state not in c["states"]:
            continue
        d = c["states"][state]
        cpu = d["cpu_us_per_connection"]["median"]
        bps = d["iperf3_bits_per_s"]["median"]
        lines.append(
            f"| {d['label']} | {d['connections_per_s']['median']:.0f} "
            f"| {fmt_ratio(d['connection_rate_ratio_to_unloaded'])} "
            f"| {fmt_us(cpu)} | {bps / 1e6:.0f} "
            f"| {fmt_ratio(d['throughput_ratio_to_unloaded'])} |")
    lines.append("")
    ps = c["per_syn_cost"]
    r, u = ps["ns_from_rate"], ps["ns_from_cpu_time"]

    def t(v):
        a = abs(v)
        if a >= 1e6:
            return f"{v / 1e6:+.2f} ms"
        if a >= 1e3:
            return f"{v / 1e3:+.1f} us"
        return f"{v:+.0f} ns"

    def ns(x):
        if x["median"] is None:
            return "-"
        lo, hi = x["min_max"]
        if len(x["per_round"]) < 2:
            verdict = "one round: no spread"
        elif lo <= 0 <= hi:
            verdict = "the rounds span zero: below what this run can resolve"
        else:
            verdict = "all rounds agree in sign"
        return f"{t(x['median'])} per connection (rounds {t(lo)} to {t(hi)}; {verdict})"

    lines.append(f"**Per-SYN cost** of the decision (group, nobody full, against the module "
                 f"not loaded; an estimate under TCG, median over rounds): from the "
                 f"connection rate {ns(r)}; from busy CPU time per connection {ns(u)}.")
    lines.append("")


def syn_table(result, lines):
    sd = result["syn_decision"]
    p = sd["parameters"]
    conn = sd.get("connection_cpu_us")
    lines.append(f"**SYN decision inside the module**{reused(sd)}: the KUnit case "
                 f"`sg_test_syn_decision`, {p['iterations']} decisions per case and round, "
                 f"{p['rounds']} rounds, ns per decision in the fastest round (the median "
                 "round in the JSON); ring groups whose members are all full but the last; "
                 "under TCG. The KUnit case "
                 + ("passed (every decision chose as expected)." if sd["kunit_case_passed"]
                    else "**failed**: see the raw results file."))
    lines.append("")
    lines.append("| members | decision from | "
                 + " | ".join(SYN_LABELS[c] for c in SYN_CASES) + " |")
    lines.append("|---:|---|" + "---:|" * len(SYN_CASES))
    for members in sorted(sd["members"], key=int):
        for start in SYN_FROM:
            cases = sd["members"][members].get(start)
            if not cases:
                continue
            cells = []
            for c in SYN_CASES:
                d = cases.get(c)
                cells.append(f"{d['ns_per_decision']['fastest_round']:.0f} ns" if d else "-")
            lines.append(f"| {members} | {SYN_FROM[start]} | " + " | ".join(cells) + " |")
    if conn:
        def pct(members, case):
            d = sd["members"].get(members, {}).get("packet", {}).get(case)
            return f"{d['share_of_connection_cpu'] * 100:.3f}%" if d else "-"
        big = max(sd["members"], key=int, default=None)
        lines.append("")
        lines.append(f"The hook's decision for a SYN packet against a connection's CPU time "
                     f"in the cost section ({fmt_us(conn)}, module not loaded): no group "
                     f"{pct(big, 'no_group')} of it, a member with room in a group of {big} "
                     f"{pct(big, 'keep')}, the whole ring of {big} walked {pct(big, 'walk')}.")


def handoff_table(result, lines):
    h = result["handoff"]
    p = h["parameters"]
    lines.append(f"**Handoff**{reused(h)}: {p['rounds']} round(s) on the cluster of "
                 f"`selftests/handoff.sh` (cli - rtr - fe, be1, be2; nginx on each), the object "
                 f"on be1; per size and case wrk {p['wrk_seconds']} s, {p['wrk_connections']} "
                 "connections, `Connection: close`, then our client (`bench/http_timing.py`, "
                 f"{p['timing_samples']} fresh connections one after the other: TTFB and total "
                 "time from the start of connect). Medians over rounds; ratios paired by round, "
                 "(min-max). fe CPU = fe's processes + fe's share of the softirq time "
                 "(section 5); added = the whole VM's CPU per request minus `direct`'s. "
                 "requests/s and bytes per response byte count the 200 answers only.")
    lines.append("")
    lines.append("| size | case | requests/s | / direct | / HAProxy | TTFB p50 | TTFB p99 "
                 "| total p50 | total p99 | VM CPU/req | added | fe CPU/req | fe CPU / HAProxy "
                 "| fe tx bytes / resp byte | not 200 (wrk; our client) |")
    lines.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, cases in sorted(h["sizes"].items(), key=lambda kv: int(kv[0])):
        s = int(size)
        sl = f"{s // 1024} MiB" if s >= 1024 else f"{s} KiB"
        for case in HO_CASES:
            d = cases.get(case)
            if not d:
                continue
            rps = d["requests_per_s"]["median"]
            by = d["fe_tx_bytes_per_response_byte"]["median"]
            lines.append(
                f"| {sl} | {case} | {rps:.1f} | {fmt_ratio(d['ratio_to_direct']['requests_per_s'])} "
                f"| {fmt_ratio(d['ratio_to_haproxy']['requests_per_s'])} "
                f"| {fmt_us(d['ttfb_p50_us']['median'])} | {fmt_us(d['ttfb_p99_us']['median'])} "
                f"| {fmt_us(d['total_p50_us']['median'])} | {fmt_us(d['total_p99_us']['median'])} "
                f"| {fmt_us(d['vm_cpu_us_per_request']['median'])} "
                f"| {fmt_signed_us(d['vm_cpu_us_per_request_added_to_direct']['median'])} "
                f"| {fmt_us(d['fe_cpu_us_per_request']['median'])} "
                f"| {fmt_ratio(d['ratio_to_haproxy']['fe_cpu_us_per_request'])} "
                f"| {by:.3f} | {d['non_2xx_total']} of {d['requests_total']}; "
                f"{d['timing_failed_total']} of {p['timing_samples'] * d['rounds']} |"
                if rps is not None and by is not None else
                f"| {sl} | {case} | - | | | | | | | | | | | | |")
    up = h.get("upload") or {}
    if any(c in up for c in ("direct", "ipvs-dr", "handoff")):
        lines.append("")
        lines.append(f"**Upload** of {p['upload_mib']} MiB (one POST to `/be1/upload` per case "
                     "and round; the client's segments go through fe, the answer not): the "
                     "per-packet cost of forwarding is the VM's busy time during the upload "
                     "minus `direct`'s in the same round, over the upload's size in full-sized "
                     "segments (1448 bytes), and over the packets fe received on its eth0 "
                     "(GRO merges them, differently per case); fe's softirq share per "
                     "packet beside it.")
        lines.append("")
        lines.append("| case | upload time | fe rx / tx packets | added VM time per segment "
                     "| added VM time per fe rx packet | fe softirq per fe rx packet |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for case in ("direct", "ipvs-dr", "handoff"):
            d = up.get(case)
            if not d:
                continue
            sec = d["seconds"]["median"]
            pk = d["fe_rx_packets"]["median"]
            lines.append(f"| {case} | {sec:.2f} s | {pk:.0f} / {d['fe_tx_packets']['median']:.0f} "
                         f"| {fmt_signed_us(d['added_vm_us_per_segment']['median'])} "
                         f"| {fmt_signed_us(d['added_vm_us_per_fe_packet']['median'])} "
                         f"| {fmt_us(d['fe_softirq_us_per_fe_packet']['median'])} |"
                         if sec is not None and pk is not None else f"| {case} | - | | | | |")
        r = up.get("handoff_to_ipvs_dr")
        if r:
            lines.append("")
            lines.append("handoff / ipvs-dr, paired by round: added VM time per segment "
                         f"{fmt_ratio(r['added_vm_us_per_segment'])}, per fe rx packet "
                         f"{fmt_ratio(r['added_vm_us_per_fe_packet'])}; fe softirq per fe rx "
                         f"packet {fmt_ratio(r['fe_softirq_us_per_fe_packet'])}."
                         + (" IPVS-DR's added time spans zero over the rounds (below what "
                            "this run resolves): the ratios of added time are not meaningful."
                            if spans_zero(up["ipvs-dr"]["added_vm_us_per_segment"]) else ""))
    b, a = h.get("fe_show_before"), h.get("fe_show_after")
    try:
        sb = next(x["stats"] for x in b["services"] if x["id"] == 1)
        sa = next(x["stats"] for x in a["services"] if x["id"] == 1)
        dd = {k: sa[k] - sb[k] for k in sa if isinstance(sa[k], int)}
        lines.append("")
        lines.append(f"fe's service 1 over the measured rounds (`sgctl cluster show`): held "
                     f"{dd['held']}, handed off {dd['handed_off']}, fallbacks (NACK from be1 "
                     f"{dd['fallback_nack']}, timeout {dd['fallback_timeout']}, peer down "
                     f"{dd['fallback_peer_down']}), client segments forwarded {dd['moved_fwd']}.")
    except (TypeError, KeyError, StopIteration):
        pass
    lines.append("")


def spans_zero(fig):
    mm = fig.get("min_max")
    return bool(mm) and mm[0] <= 0 <= mm[1]


def fmt_signed_us(us):
    if us is None:
        return "-"
    return ("+" if us >= 0 else "-") + fmt_us(abs(us))


def handoff_plot_data(result, plot_dir):
    """One file per case: size (KiB), requests/s, fe CPU per request (us)."""
    h = result.get("handoff")
    if not h or "from_run" in h:
        return
    plot_dir.mkdir(parents=True, exist_ok=True)
    for case in HO_CASES:
        rows = []
        for size, cases in sorted(h["sizes"].items(), key=lambda kv: int(kv[0])):
            d = cases.get(case)
            if d and d["requests_per_s"]["median"] is not None:
                rows.append(f"{size} {d['requests_per_s']['median']:.3f} "
                            f"{d['fe_cpu_us_per_request']['median']:.3f}")
        if rows:
            (plot_dir / f"handoff-{case}.dat").write_text(
                "# size_kib requests_per_s fe_cpu_us_per_request (medians)\n"
                + "\n".join(rows) + "\n")


def plot_data(samples, cases, plot_dir):
    plot_dir.mkdir(parents=True, exist_ok=True)
    index = []
    titles = []
    for case in OV_CASES:
        if case not in samples:
            continue
        pooled, attempted = samples[case]
        path = plot_dir / f"{case}.dat"
        with path.open("w") as f:
            f.write(f"# connect latency (ms), fraction of {attempted} attempts connected\n")
            for i, v in enumerate(pooled, 1):
                f.write(f"{v / 1000:.3f} {i / attempted:.5f}\n")
        never = attempted - len(pooled)
        unserved = cases[case]["total"]["timed_out_after_connect"] + cases[case]["total"]["no_reply"]
        title = (f"{OV_LABELS[case]}: of {attempted}, {never} never connected, "
                 f"{unserved} connected but not served")
        index.append(f"{case}\t{title}")
        titles.append(f'title_{case} = "{title}"')
    (plot_dir / "index.txt").write_text("\n".join(index) + "\n")
    (plot_dir / "titles.gp").write_text("\n".join(titles) + "\n")


def update_readme(readme, table, date):
    text = readme.read_text()
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    if begin not in text or end not in text:
        print(f"aggregate: {readme}: no results markers; not updated", file=sys.stderr)
        return
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    body = (f"\n<!-- written by bench/aggregate.py from the run of {date}; "
            f"do not edit by hand -->\n\n{table}\n![connect latency per case]"
            "(results/connect-latency.png)\n\n![handoff: requests/s and fe CPU per request]"
            "(results/handoff.png)\n\n")
    readme.write_text(head + begin + body + end + tail)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True, type=Path, help="the guest's output dir")
    ap.add_argument("--host", required=True, type=Path, help="host facts (key=value)")
    ap.add_argument("--json", required=True, type=Path)
    ap.add_argument("--summary", required=True, type=Path)
    ap.add_argument("--plot-dir", required=True, type=Path)
    ap.add_argument("--readme", type=Path)
    args = ap.parse_args()

    meta = read_meta(args.raw / "meta.txt")
    host = read_meta(args.host)
    raw = args.raw / "raw"
    ov_cases, samples = overload(raw, meta)
    states, per_syn = cost(raw, meta)
    # A section this run did not measure (BENCH_SECTIONS) keeps the figures
    # of the run before, with that run's date and commit.
    try:
        previous = json.loads(args.json.read_text())
    except (OSError, ValueError):
        previous = {}
    prev_run = {"date": (previous.get("environment") or {}).get("date"),
                "git_commit": (previous.get("host") or {}).get("git_commit")}

    def keep(name):
        section = previous.get(name)
        if section is None:
            return None
        section.setdefault("from_run", prev_run)
        return section

    # The nstat cross-check: nstat's absolute counters against our snapshot.
    check = {}
    try:
        ours = read_counters(raw / "check.counters.txt")
        theirs = json.loads((raw / "check.nstat.json").read_text())["kernel"]
        check = {k: {"proc_net": ours.get(k), "nstat": theirs.get(k)}
                 for k in ["TcpExt" + n for n in NSTAT + NSTAT_EXTRA]}
    except (OSError, ValueError, KeyError):
        pass

    result = {
        "schema": "sockgroup-bench/1",
        "environment": {
            "date": meta.get("date"),
            "kernel": meta.get("kernel"),
            "kernel_version": meta.get("kernel_version"),
            "cpus": int(meta.get("cpus", "0") or 0),
            "cpu_model": meta.get("cpu_model"),
            "accel": meta.get("accel"),
            "clocksource": meta.get("clocksource"),
            "latency_clock_ok": meta.get("clocksource") == "tsc",
            "kernel_cmdline": meta.get("cmdline"),
            "module": meta.get("module"),
            "wrk": meta.get("wrk_version"),
            "iperf3": meta.get("iperf3_version"),
        },
        "host": {
            "cpu_model": host.get("cpu_model"),
            "cpus": int(host.get("cpus", "0") or 0),
            "tsc_khz": host.get("tsc_khz"),
            "loadavg_before": host.get("loadavg_before"),
            "loadavg_after": host.get("loadavg_after"),
            "git_commit": host.get("git_commit"),
            "git_dirty": host.get("git_dirty") == "1",
        },
        "overload": {
            "parameters": {
                "rounds": max((d["rounds"] for d in ov_cases.values()), default=0),
                "connections": int(meta.get("ov_count", "0")),
                "concurrency": int(meta.get("ov_concurrency", "0")),
                "timeout_ms": int(meta.get("ov_timeout_ms", "0")),
                "backlog": int(meta.get("ov_backlog", "0")),
                "stall_ms": int(meta.get("ov_stall_ms", "0") or 0),
                "stalled_member": 0,
                "listeners": 3,
                "client": "sgctl connect (fresh connections, no keep-alive)",
            },
            "nstat_note": ("deltas of the kernel's TcpExt counters around each case, read "
                           "from /proc/net/netstat (the file nstat reads); they count "
                           "packets (a SYN and each retransmission), not connections"),
            "cases": ov_cases,
        },
        "cost": {
            "parameters": {
                "rounds": max((d["rounds"] for d in states.values()), default=0),
                "wrk_seconds": int(meta.get("wrk_seconds", "0")),
                "wrk_connections": int(meta.get("wrk_connections", "0")),
                "iperf_seconds": int(meta.get("iperf_seconds", "0")),
                "server": "nginx, 1 worker, 3 listeners (grouped in state 'group')",
            },
            "states": states,
            "per_syn_cost": per_syn,
        },
        "nstat_crosscheck": check,
    }
    if not ov_cases:
        del result["overload"], result["nstat_crosscheck"]
        for name in ("overload", "nstat_crosscheck"):
            if keep(name) is not None:
                result[name] = keep(name)
    if not states:
        del result["cost"]
        if keep("cost") is not None:
            result["cost"] = keep("cost")
    cost_states = (result.get("cost") or {}).get("states") or {}
    syn = syn_decision(raw, cost_states)
    if syn is None:
        syn = keep("syn_decision")
    elif "from_run" in result.get("cost", {}):
        syn["connection_cpu_note"] = "connection_cpu_us from the cost section's earlier run"
    if syn is not None:
        result["syn_decision"] = syn
    ho = handoff(raw, meta)
    if ho is None:
        ho = keep("handoff")
    if ho is not None:
        result["handoff"] = ho
    fo = failover(raw, meta)
    if fo is None:
        fo = keep("failover")
    if fo is not None:
        result["failover"] = fo
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    table = tables(result)
    args.summary.write_text(table)
    plot_data(samples, ov_cases, args.plot_dir)
    handoff_plot_data(result, args.plot_dir)
    if args.readme:
        update_readme(args.readme, table, meta.get("date"))
    print(table)


if __name__ == "__main__":
    main()
