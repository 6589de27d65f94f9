#!/usr/bin/env python3
"""Turns bench/run's raw results into summary.md and PNG plots (gnuplot).

Reads RESULTS/raw/{glibc,jemalloc,tcmalloc,mimalloc}.json (Google Benchmark,
median aggregates), RESULTS/raw/frag.jsonl and frag_*.csv, and
RESULTS/raw/machine.txt. Ratios are oriented as the issue asks: "peer time /
arena time" (above 1 means arena is faster) and "time / floor time".
"""
import json
import os
import re
import subprocess
import sys
from collections import defaultdict

ARENA = "arena"
FLOOR = "floor"
# peer_bench's cross_core rows: one pass of a cache line between the two
# cores, run first and last in every process (the machine's mode).
PROBE = "cross_core"
MALLOCS = ("glibc", "jemalloc", "tcmalloc", "mimalloc")
# Probes above this (ns per pass) are never the fast mode (the development
# machine's fast mode measures 25-45, its slow one 190-220).
SLOW_NS = 100


def load_benchmarks(raw):
    """data[(workload, args)][threads][peer] = (items_per_second, counters).

    A row measured at several code placements (peer_bench's phase:N arg) is
    one entry: the median over its phases, with every phase's figure in
    counters["phase_ips"]."""
    phased = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for lib in ("glibc", "jemalloc", "tcmalloc", "mimalloc"):
        path = os.path.join(raw, lib + ".json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            doc = json.load(f)
        for b in doc["benchmarks"]:
            if b.get("aggregate_name") != "median":
                continue
            name = b["run_name"]
            m = re.match(r"([^/]+)/([^/]+)/(.*?)/?real_time/threads:(\d+)$", name + "")
            if not m:
                m = re.match(r"([^/]+)/([^/]+)(.*)/threads:(\d+)$", name)
            workload, peer, args, threads = m.group(1), m.group(2), m.group(3).strip("/"), int(m.group(4))
            if workload == PROBE:
                continue  # not an allocator row: load_probes
            args = "/".join(a for a in args.split("/") if a and not a.startswith("phase:"))
            counters = {k: v for k, v in b.items() if k in ("bytes_per_request", "depot_ops_per_request")}
            phased[(workload, args)][threads][peer].append((b["items_per_second"], counters))
    data = defaultdict(lambda: defaultdict(dict))
    for key, by_threads in phased.items():
        for threads, by_peer in by_threads.items():
            for peer, runs in by_peer.items():
                ips = [r[0] for r in runs]
                counters = dict(runs[0][1])
                for k in counters:
                    counters[k] = median([r[1][k] for r in runs])
                counters["phase_ips"] = ips
                data[key][threads][peer] = (median(ips), counters)
    return data


def spread(threads, counters, digits=1):
    """'a-b' ns per item over the phases of a row measured at several placements."""
    ips = counters.get("phase_ips", [])
    if len(ips) < 2:
        return ""
    ns = [threads * 1e9 / x for x in ips]
    return f"{min(ns):.{digits}f}-{max(ns):.{digits}f}"


def fmt(x, digits=2):
    return f"{x:.{digits}f}"


def table_for(cell, threads, unit_name, per_item_scale=1e9):
    """Markdown rows for one workload/args/threads cell."""
    ref = ARENA if ARENA in cell else "arena_dealloc"
    arena_ips = cell.get(ref, (None,))[0]
    floor_ips = cell.get(FLOOR, (None,))[0]
    rows = []
    for peer, (ips, counters) in sorted(cell.items(), key=lambda kv: -kv[1][0]):
        ns = threads * per_item_scale / ips
        vs_arena = fmt(arena_ips / ips) if arena_ips else "-"
        vs_floor = fmt(floor_ips / ips) if floor_ips else "-"
        extra = []
        if spread(threads, counters):
            extra.append(f"placements {spread(threads, counters)} ns")
        if "depot_ops_per_request" in counters:
            extra.append(f"depot ops/request {counters['depot_ops_per_request']:.4f}")
        rows.append(f"| {peer} | {ns:.1f} | {vs_arena} | {vs_floor} | {'; '.join(extra)} |")
    head = (f"| peer | ns per {unit_name} (per thread) | peer time / {ref} time | time / floor time | |\n"
            "|---|---:|---:|---:|---|")
    return head + "\n" + "\n".join(rows)


def load_rounds(raw):
    """rounds[r][workload][peer] = ns per object per thread, from bench/run's
    paired rounds (raw/rounds/<malloc>_<round>.json, one repetition each)."""
    rounds = defaultdict(lambda: defaultdict(dict))
    d = os.path.join(raw, "rounds")
    if not os.path.isdir(d):
        return rounds
    for name in sorted(os.listdir(d)):
        m = re.match(r"[a-z]+_(\d+)\.json$", name)
        if not m:
            continue
        with open(os.path.join(d, name)) as f:
            doc = json.load(f)
        for b in doc["benchmarks"]:
            if b.get("run_type") != "iteration":
                continue
            mm = re.match(r"([^/]+)/([^/]+)/real_time/threads:(\d+)$", b["run_name"])
            if mm and mm.group(1) != PROBE:
                threads = int(mm.group(3))
                rounds[int(m.group(1))][mm.group(1)][mm.group(2)] = threads * 1e9 / b["items_per_second"]
    return rounds


def load_probes(path):
    """(first, last): the cross_core rows' ns of one peer_bench process (its
    JSON: median aggregates, or single runs), or None without them."""
    if not os.path.exists(path):
        return None
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
    with open(path) as f:
        doc = json.load(f)
    got = {}
    for b in doc["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        m = re.match(PROBE + r"/(first|last)/real_time/threads:2$", b["run_name"])
        if m:
            got[m.group(1)] = b["real_time"] * scale[b["time_unit"]]
    return (got["first"], got["last"]) if len(got) == 2 else None


def classify(probes):
    """Each process's mode from its two probes: the low mode when both lie
    within 2.5x the run's lowest figure, the high mode when both lie above,
    'mixed' when the mode changed while it ran. The modes are named 'fast'
    and 'slow', or 'slow' and 'slower' when even the lowest figure is above
    SLOW_NS (the run never saw the fast mode)."""
    values = [v for p in probes.values() if p for v in p]
    if not values:
        return {}
    limit = 2.5 * min(values)
    low, high = ("slow", "slower") if min(values) > SLOW_NS else ("fast", "slow")
    modes = {}
    for key, p in probes.items():
        if p is None:
            modes[key] = None
        elif max(p) <= limit:
            modes[key] = low
        elif min(p) > limit:
            modes[key] = high
        else:
            modes[key] = "mixed"
    return modes


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def process_of(peer):
    """The malloc whose peer_bench process measured `peer` (the in-process
    peers run in the glibc one)."""
    for lib in MALLOCS[1:]:
        if peer in (lib, lib + "_new"):
            return lib
    return "glibc"


def rounds_section(rounds, probes):
    """The two-thread cross-thread rows with ratios taken within each round;
    probes[r][malloc] = (first, last) cross_core ns of that round's process."""
    if not rounds:
        return []
    ref = "arena_dealloc"
    modes = classify({(r, lib): p for r in probes for lib, p in probes[r].items()})
    out = ["## cross-thread rows, paired rounds (2 threads)\n",
           "On this 2-vCPU machine the two-thread figures move between a fast and a slow "
           "mode (cross-core transfers several times dearer) from one minute to the next, "
           "so a single pass may measure arena in one mode and a peer in another. Here "
           "each round runs every peer's two-thread xthread and larson rows once (one "
           "process per malloc, seconds apart), the ratios are taken within each round, "
           "and the table gives their median and range over "
           f"{len(rounds)} rounds. **peer time / {ref} time**: above 1 means arena is "
           "faster.\n"]
    if modes:
        out.append("**Modes.** Every process runs peer_bench's `cross_core` row (ns for one pass "
                   "of a cache line from one core to the other) first and last. A process ran in "
                   "the run's low mode when both figures lie within 2.5x the run's lowest, in its "
                   "high mode when both lie above, *mixed* when the mode changed while it ran. "
                   f"The modes are called fast and slow (slow and slower if no figure is under "
                   f"{SLOW_NS} ns). A peer's ratio in a round counts in a mode's column when its "
                   "process and arena_dealloc's (the glibc one) both ran in that mode; only those "
                   "ratios compare the allocators rather than the machine's modes.\n")
        out.append("| round | " + " | ".join(f"{lib}: first / last ns, mode" for lib in MALLOCS) + " |")
        out.append("|---:|" + "---|" * len(MALLOCS))
        for r in sorted(probes):
            cells = []
            for lib in MALLOCS:
                p = probes[r].get(lib)
                cells.append(f"{p[0]:.0f} / {p[1]:.0f}, {modes[(r, lib)]}" if p else "-")
            out.append(f"| {r} | " + " | ".join(cells) + " |")
        out.append("")
    for workload in ("xthread", "larson"):
        # peer -> [(ns, ratio to ref, ratio to floor, mode of the round's pair)]
        per_peer = defaultdict(list)
        for r in sorted(rounds):
            cell = rounds[r].get(workload, {})
            if ref not in cell:
                continue
            for peer, ns in cell.items():
                floor = cell.get(FLOOR)
                mine, theirs = modes.get((r, "glibc")), modes.get((r, process_of(peer)))
                same = mine if mine == theirs and mine not in (None, "mixed") else None
                per_peer[peer].append((ns, ns / cell[ref], ns / floor if floor else None, same))
        if not per_peer:
            continue
        out.append(f"### {workload}\n")
        head = (f"| peer | ns per object (per thread), median | peer time / {ref} time, median "
                "| min | max | time / floor time, median |")
        rule = "|---|---:|---:|---:|---:|---:|"
        named = [m for m in ("fast", "slow", "slower") if m in modes.values()]
        for mode in named:
            head += f" {mode} rounds: n, median (min-max) |"
            rule += "---:|"
        out.append(head)
        out.append(rule)
        rows = []
        for peer, xs in per_peer.items():
            ratios = [x[1] for x in xs]
            floors = [x[2] for x in xs if x[2] is not None]
            row = (median(ratios), peer, median([x[0] for x in xs]), min(ratios),
                   max(ratios), median(floors) if floors else None,
                   [x for x in xs if x[3] is not None])
            rows.append(row)
        for ratio, peer, ns, lo, hi, fl, same in sorted(rows, key=lambda row: row[:2]):
            line = (f"| {peer} | {ns:.1f} | {fmt(ratio)} | {fmt(lo)} | {fmt(hi)} | "
                    f"{fmt(fl) if fl is not None else '-'} |")
            if named:
                for mode in named:
                    sr = [x[1] for x in same if x[3] == mode]
                    line += (f" {len(sr)}, {fmt(median(sr))} ({fmt(min(sr))}-{fmt(max(sr))}) |"
                             if sr else " 0 |")
            out.append(line)
        out.append("")
    return out


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script.encode(), check=True)


def plot_threads(results, data, key, title, png):
    cells = data.get(key)
    if not cells:
        return None
    threads = sorted(cells)
    peers = sorted({p for t in threads for p in cells[t]})
    dat = os.path.join(results, "raw", png.replace(".png", ".dat"))
    with open(dat, "w") as f:
        f.write("threads " + " ".join(peers) + "\n")
        for t in threads:
            f.write(str(t) + " " + " ".join(
                f"{cells[t][p][0] / 1e6:.4f}" if p in cells[t] else "NaN" for p in peers) + "\n")
    plots = ", ".join(
        f"'{dat}' using 1:{i + 2} with linespoints lw 2 title '{p}'" for i, p in enumerate(peers))
    gnuplot(f"""set terminal pngcairo size 1000,560 noenhanced
set output '{os.path.join(results, png)}'
set title '{title}'
set xlabel 'threads'
set ylabel 'million operations per second (all threads)'
set xtics 1
set key outside right
set grid
set logscale y
plot {plots}
""")
    return png


def shared_section(results, path):
    """Tables and a plot for bench/shared_bench (SharedArena vs its peers)."""
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
    # cells[m][threads][peer] = (microseconds per request, depot ops per request)
    cells = defaultdict(lambda: defaultdict(dict))
    with open(path) as f:
        doc = json.load(f)
    for b in doc["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        m = re.match(r"BM_Request<(\w+)>/threads:(\d+)/M:(\d+)", b["run_name"])
        if not m:
            continue
        peer = re.sub(r"(?<!^)(?=[A-Z])", "_", m.group(1)).lower()
        us = b["real_time"] * scale[b["time_unit"]]
        cells[int(m.group(3))][int(m.group(2))][peer] = (us, b.get("depot_ops_per_req"))
    out = ["## parallel requests (SharedArena)\n",
           "One request = a `tbb::parallel_for` over 32 tasks, each making M allocations of "
           "16-256 B that outlive the task, then one bulk free (`bench/shared_bench.cc`). "
           "Threads set with `tbb::global_control`. `shared_pooled`: one SharedArena Reset per "
           "request; `shared_fresh`: one made per request; protobuf's thread-safe Arena the "
           "same two ways; a `tbb::memory_pool` shared by the tasks; "
           "`std::pmr::synchronized_pool_resource`; malloc/free. **peer time / shared_pooled "
           "time**: above 1 means SharedArena is faster.\n"]
    for mval in sorted(cells):
        for t in sorted(cells[mval]):
            row = cells[mval][t]
            ref = row.get("shared_pooled", (None, None))[0]
            out.append(f"### M = {mval}, {t} thread{'s' if t > 1 else ''}\n")
            out.append("| peer | us per request | peer time / shared_pooled time | depot ops/request |")
            out.append("|---|---:|---:|---:|")
            for peer, (us, ops) in sorted(row.items(), key=lambda kv: kv[1][0]):
                ratio = fmt(us / ref) if ref else "-"
                ops_s = f"{ops:.3f}" if ops is not None else ""
                out.append(f"| {peer} | {us:.1f} | {ratio} | {ops_s} |")
            out.append("")
        peers = sorted({p for t in cells[mval] for p in cells[mval][t]})
        threads = sorted(cells[mval])
        dat = os.path.join(results, "raw", f"shared_m{mval}.dat")
        with open(dat, "w") as f:
            f.write("threads " + " ".join(peers) + "\n")
            for t in threads:
                f.write(str(t) + " " + " ".join(
                    f"{1e6 / cells[mval][t][p][0]:.1f}" if p in cells[mval][t] else "NaN"
                    for p in peers) + "\n")
        png = f"shared_m{mval}_threads.png"
        plots = ", ".join(f"'{dat}' using 1:{i + 2} with linespoints lw 2 title '{p}'"
                          for i, p in enumerate(peers))
        gnuplot(f"""set terminal pngcairo size 1000,560 noenhanced
set output '{os.path.join(results, png)}'
set title 'parallel requests, M = {mval} allocations per task'
set xlabel 'threads'
set ylabel 'requests per second'
set xtics 1
set key outside right
set grid
set logscale y
plot {plots}
""")
        out.append(f"![parallel requests, M = {mval}]({png})\n")
    return out


def main():
    results = sys.argv[1] if len(sys.argv) > 1 else "bench/results"
    raw = os.path.join(results, "raw")
    data = load_benchmarks(raw)
    out = []
    machine = open(os.path.join(raw, "machine.txt")).read().strip() if os.path.exists(
        os.path.join(raw, "machine.txt")) else ""
    out.append("# arena: comparison with its peers\n")
    out.append("Produced by `bench/run" + (" --quick" if "quick" in machine else "") + "`.\n")
    out.append("```\n" + machine + "\n```\n")
    out.append("Each figure is the median of the repetitions. **peer time / arena time**: above 1 "
               "means arena is faster. **time / floor time**: how far from a bare bump pointer "
               "over a hot buffer (the physical limit of the workload). `glibc`, `jemalloc`, "
               "`tcmalloc`, `mimalloc` are malloc/free (the `_new` rows new/delete), the last "
               "three loaded with LD_PRELOAD.\n")
    out.append("**Code placement.** A loop of a few instructions per allocation can run at a "
               "speed set by where it lies against the core's fetch lines (on the development "
               "machine the floor's micro loop takes 77 or 128 ns per batch from one source). "
               "The request rows and the bare micro rows (touch:0) are therefore each measured "
               "at four placements of their loop (`peer_bench`'s `phase` arg: 0, 16, 32 and 48 "
               "bytes into a 64-byte line); their figure is the median over the four, and "
               "\"placements\" gives the range. **floor_counted** is the floor plus an exact "
               "count of requested bytes, **floor_checked** that plus a check of the bump "
               "against its buffer's end: the least an allocator that keeps `live_bytes` "
               "exact and stays in bounds does per allocation.\n")

    sections = [
        ("request", "", "request",
         "64 allocations (most 16-256 B, a tail to 16 KiB), 3 bytes written into each, "
         "a pmr vector and a pmr string, then everything freed or Reset."),
        ("xthread", "", "object", "Producer/consumer: one thread allocates, the other frees."),
        ("larson", "", "object",
         "Threads replace random slots of a shared table, freeing objects other threads "
         "allocated. Peers that cannot free single objects (pmr monotonic, protobuf Arena, "
         "arena with Reset only) sit this one out."),
    ]
    pass_probes = {lib: p for lib in MALLOCS
                   if (p := load_probes(os.path.join(raw, lib + ".json")))}
    for workload, args, unit, text in sections:
        cells = data.get((workload, args))
        if not cells:
            continue
        out.append(f"## {workload}\n\n{text}\n")
        for t in sorted(cells):
            out.append(f"### {t} thread{'s' if t > 1 else ''}\n")
            out.append(table_for(cells[t], t, unit) + "\n")
            if workload in ("xthread", "larson") and t == 2 and os.path.isdir(os.path.join(raw, "rounds")):
                out.append("One pass, each malloc in its own process minutes apart: the two-thread "
                           "figures may come from different modes of this machine (the floor row "
                           "shows this pass's). Compare peers in the paired rounds below.\n")
                if pass_probes:
                    out.append("This pass's `cross_core` probes, first / last ns (see Modes below): " +
                               ", ".join(f"{lib} {p[0]:.0f} / {p[1]:.0f}"
                                         for lib, p in pass_probes.items()) + ".\n")

    round_probes = defaultdict(dict)
    rounds_dir = os.path.join(raw, "rounds")
    if os.path.isdir(rounds_dir):
        for name in sorted(os.listdir(rounds_dir)):
            m = re.match(r"([a-z]+)_(\d+)\.json$", name)
            p = load_probes(os.path.join(rounds_dir, name)) if m else None
            if p:
                round_probes[int(m.group(2))][m.group(1)] = p
    out.extend(rounds_section(load_rounds(raw), round_probes))

    micro = {k: v for k, v in data.items() if k[0] == "micro"}
    if micro:
        out.append("## micro\n\nBatches of 256 allocations of one size, then free/Reset of all. "
                   "Peer time / arena time at 1 thread (touch: 2 bytes written per allocation).\n")
        args_sorted = sorted(micro, key=lambda k: tuple(int(x) for x in re.findall(r"\d+", k[1])))
        peers = sorted({p for k in micro for p in micro[k].get(1, {})})
        out.append("| peer | " + " | ".join(a[1].replace("size:", "").replace("/touch:", " t") for a in args_sorted) + " |")
        out.append("|---|" + "---:|" * len(args_sorted))
        for p in peers:
            row = []
            for k in args_sorted:
                cell = micro[k].get(1, {})
                if p in cell and ARENA in cell:
                    row.append(fmt(cell[ARENA][0] / cell[p][0]))
                else:
                    row.append("-")
            out.append(f"| {p} | " + " | ".join(row) + " |")
        out.append("\nns per allocation for arena and floor at 1 thread: " + ", ".join(
            f"{k[1]}: arena {1e9 / micro[k][1][ARENA][0]:.2f}, floor {1e9 / micro[k][1][FLOOR][0]:.2f}"
            for k in args_sorted if ARENA in micro[k].get(1, {}) and FLOOR in micro[k].get(1, {})) + "\n")
        # Issue 11's bare-row figure: arena time / floor time, untouched rows,
        # next to the reference rows' (see the code placement paragraph).
        bare = [k for k in args_sorted if k[1].endswith("touch:0")]
        threads = sorted({t for k in bare for t in micro[k]})
        refs = ["floor_counted", "floor_checked", ARENA]
        if bare and threads:
            out.append("Bare rows (touch:0): time / floor time, same pass, each the median "
                       "over four code placements; floor ns per allocation with its range "
                       "over the placements.\n")
            out.append("| size | threads | floor ns (placements) | " +
                       " | ".join(refs) + " | arena / floor_checked |")
            out.append("|---|---:|---:|" + "---:|" * (len(refs) + 1))
            for k in bare:
                for t in threads:
                    cell = micro[k].get(t, {})
                    if FLOOR not in cell:
                        continue
                    floor_ips, floor_counters = cell[FLOOR]
                    row = [f"{t / floor_ips * 1e9:.2f} ({spread(t, floor_counters, 2) or '-'})"]
                    row += [fmt(floor_ips / cell[p][0]) if p in cell else "-" for p in refs]
                    row.append(fmt(cell["floor_checked"][0] / cell[ARENA][0])
                               if ARENA in cell and "floor_checked" in cell else "-")
                    out.append(f"| {k[1].split('/')[0].replace('size:', '')} B | {t} | " +
                               " | ".join(row) + " |")
            out.append("")

    # Fragmentation.
    frag_path = os.path.join(raw, "frag.jsonl")
    if os.path.exists(frag_path):
        rows = [json.loads(line) for line in open(frag_path) if line.strip()]
        out.append("## fragmentation\n\nA long churn of requests (with a 1-8 MiB allocation every "
                   "200th) over a slowly changing long-lived set (16 generations, one replaced at a "
                   "time, each with its own size mix). RSS is a delta over a baseline taken before "
                   "the workload; live bytes are counted by the benchmark. After the load stops, "
                   "the process idles for the release delay (the main thread calls "
                   "`arena::OnThreadIdle()` as an idle event loop would); retained = RSS - baseline "
                   "- live. Only arena has a configured cache ceiling (depot_max_bytes + thread "
                   "caches + large_cache_bytes).\n")
        out.append("| peer | peak RSS MiB | peak live MiB | peak RSS / peak live | retained after release MiB | cache ceiling MiB | requests |")
        out.append("|---|---:|---:|---:|---:|---:|---:|")
        mib = 1 << 20
        for r in sorted(rows, key=lambda r: r["peak_rss_over_peak_live"]):
            ceiling = f"{r['cache_ceiling_bytes'] / mib:.1f}" if r["cache_ceiling_bytes"] else "-"
            out.append(f"| {r['peer']} | {r['peak_rss_bytes'] / mib:.1f} | {r['peak_live_bytes'] / mib:.1f} | "
                       f"{r['peak_rss_over_peak_live']:.3f} | {r['retained_after_release_bytes'] / mib:.1f} | "
                       f"{ceiling} | {r['requests']} |")
        out.append("")
        plots = []
        for r in rows:
            csv = os.path.join(raw, f"frag_{r['peer']}.csv")
            if os.path.exists(csv):
                plots.append(f"'{csv}' using ($1/1000):($2/1048576) with lines lw 2 title '{r['peer']} RSS'")
        arena_csv = os.path.join(raw, "frag_arena.csv")
        if os.path.exists(arena_csv):
            plots.append(f"'{arena_csv}' using ($1/1000):($3/1048576) with lines dt 2 lw 2 lc rgb 'black' title 'live bytes'")
        if plots:
            gnuplot(f"""set terminal pngcairo size 1000,560 noenhanced
set output '{os.path.join(results, "frag_rss.png")}'
set title 'Fragmentation workload: RSS over time (delta over baseline)'
set datafile separator ','
set key autotitle columnhead
set xlabel 'seconds'
set ylabel 'MiB'
set key outside right
set grid
plot {", ".join(plots)}
""")
            out.append("![RSS over time](frag_rss.png)\n")

    # Parallel requests: SharedArena (bench/shared_bench.cc).
    shared_path = os.path.join(raw, "shared.json")
    if os.path.exists(shared_path):
        out.extend(shared_section(results, shared_path))

    out.append("## throughput versus threads\n")
    for key, title, png in [
        (("request", ""), "request workload", "request_threads.png"),
        (("larson", ""), "larson workload", "larson_threads.png"),
        (("xthread", ""), "producer/consumer (2 threads)", "xthread_threads.png"),
        (("micro", "size:256/touch:1"), "micro, 256 B, touched", "micro256_threads.png"),
    ]:
        if plot_threads(results, data, key, title, png):
            out.append(f"![{title}]({png})\n")

    with open(os.path.join(results, "summary.md"), "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
