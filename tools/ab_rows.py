#!/usr/bin/env python3
"""Same-run comparison of any peer_bench rows between builds.

Runs each build's peer_bench in turn, ROUNDS times, with one benchmark
filter, and prints the median, min and max real time per row and build.
tools/ab_bench.py does the same for the request rows with the ratio to the
floor; this one is for rows without a floor of their own (larson, xthread,
arena_dealloc).

  tools/ab_rows.py --rounds 5 --filter '^(larson|xthread)/(arena_dealloc|glibc)/' \\
      before/peer_bench after/peer_bench

The directory names of the binaries label the rows.
"""
import argparse
import json
import os
import statistics
import subprocess


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--filter", required=True)
    parser.add_argument("--min-time", default="0.1")
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    times = {}  # (row, label) -> [real_time]
    for _ in range(args.rounds):
        for binary in args.binaries:
            label = os.path.basename(os.path.dirname(os.path.abspath(binary)))
            out = subprocess.run(
                [binary, "--benchmark_filter=" + args.filter,
                 "--benchmark_min_time=" + args.min_time,
                 "--benchmark_format=json"],
                check=True, capture_output=True, text=True).stdout
            for row in json.loads(out)["benchmarks"]:
                times.setdefault((row["name"], label), []).append(row["real_time"])
    for (row, label), values in sorted(times.items()):
        print(f"{row:50s} {label:10s} median {statistics.median(values):9.1f}"
              f"  min {min(values):9.1f}  max {max(values):9.1f}  n={len(values)}")


if __name__ == "__main__":
    main()
