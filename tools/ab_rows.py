#!/usr/bin/env python3
"""Same-run comparison of any peer_bench rows between builds.

Runs each build's peer_bench in turn, ROUNDS times, with one benchmark
filter, and prints the median, min and max real time per row and build.
tools/ab_bench.py does the same for the request rows with the ratio to the
floor; this one is for rows without a floor of their own (larson, xthread,
arena_dealloc).

  tools/ab_rows.py --rounds 5 --filter '^(larson|xthread)/(arena_dealloc|glibc)/' \\
      before/peer_bench after/peer_bench

The directory names of the binaries label the rows. Every process also runs
peer_bench's cross_core probe (first and last; see bench/summarize.py): each
two-thread row's figures are split by the mode the process ran in (fast,
slow, mixed), since on a small VM a mode change moves them more than most
code changes do. One-thread rows are reported across modes.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from summarize import PROBE, classify  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--filter", required=True)
    parser.add_argument("--min-time", default="0.1")
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    runs = []  # (process, row, label, real_time)
    probes = {}  # process -> (first, last)
    row_filter = f"^{PROBE}/|{args.filter}"
    for r in range(args.rounds):
        for binary in args.binaries:
            label = os.path.basename(os.path.dirname(os.path.abspath(binary)))
            out = subprocess.run(
                [binary, "--benchmark_filter=" + row_filter,
                 "--benchmark_min_time=" + args.min_time,
                 "--benchmark_format=json"],
                check=True, capture_output=True, text=True).stdout
            process = (r, label)
            got = {}
            for row in json.loads(out)["benchmarks"]:
                if row["name"].startswith(PROBE + "/"):
                    got[row["name"].split("/")[1]] = row["real_time"]
                else:
                    runs.append((process, row["name"], label, row["real_time"]))
            if len(got) == 2:
                probes[process] = (got["first"], got["last"])
    modes = classify(probes)
    times = {}  # (row, label, mode) -> [real_time]
    for process, row, label, t in runs:
        mode = modes.get(process) if row.endswith("threads:2") else None
        times.setdefault((row, label, mode or "-"), []).append(t)
    for (row, label, mode), values in sorted(times.items()):
        print(f"{row:50s} {label:10s} {mode:6s} median {statistics.median(values):9.1f}"
              f"  min {min(values):9.1f}  max {max(values):9.1f}  n={len(values)}")
    print("cross_core probes (first / last ns) per round and build: " + "; ".join(
        f"{r} {label} {p[0]:.0f}/{p[1]:.0f} {modes[(r, label)]}"
        for (r, label), p in sorted(probes.items())))


if __name__ == "__main__":
    main()
