#!/usr/bin/env python3
"""Before/after comparison of arena builds on a noisy machine.

Runs each binary in turn, `rounds` times, and prints per row the median time
and the median of the per-process ratio to the floor (each process measures
its own floor, so layout and frequency effects common to one process
cancel). Two kinds of binary are understood, by their output:

  peer_bench      request rows (request/<peer>/phase:P/real_time/threads:N;
                  per process, the median over the code placements P)
  fastpath_bench  BM_Arena<touch>/<size> against BM_Floor<touch>/<size>

  tools/ab_bench.py --rounds 10 before/peer_bench after/peer_bench
  tools/ab_bench.py --rounds 6 before/fastpath_bench after/fastpath_bench

Build each binary with `bazel build -c opt //bench:peer_bench
//bench:fastpath_bench` in a worktree of the commit (copy it out: bazel-bin
is overwritten by the next build). Name the copies apart (the directory
names label the rows).
"""
import argparse
import collections
import re
import statistics
import subprocess

REQUEST = re.compile(r"request/(\w+)/(?:phase:\d+/)?real_time/threads:(\d+)_median\s+([\d.]+)")
FASTPATH = re.compile(r"BM_(Floor|Arena)<(true|false)>/(\d+)_median\s+([\d.]+)")


def run(binary, min_time):
    common = [f"--benchmark_min_time={min_time}", "--benchmark_repetitions=3",
              "--benchmark_report_aggregates_only=true"]
    if "fastpath" in binary:
        args = [binary, "--benchmark_filter=^BM_(Floor|Arena)<"] + common
    else:
        args = [binary, "--peers=all", "--quick",
                "--benchmark_filter=^request/(floor|arena|arena_fresh)/"] + common
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rows = {}  # row -> time
    phases = collections.defaultdict(list)
    for m in REQUEST.finditer(out):
        phases[(m.group(1), "threads:" + m.group(2))].append(float(m.group(3)))
    for row, ts in phases.items():
        rows[row] = statistics.median(ts)
    for m in FASTPATH.finditer(out):
        rows[(m.group(1), f"touch:{m.group(2)} size:{m.group(3)}")] = float(m.group(4))
    result = {}
    for (peer, where), t in rows.items():
        floor = rows.get(("floor" if peer.islower() else "Floor", where))
        if floor and peer.lower() != "floor":
            result[(peer, where)] = (t, t / floor)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--min-time", type=float, default=0.1)
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    times = collections.defaultdict(list)
    ratios = collections.defaultdict(list)
    for _ in range(args.rounds):
        for binary in args.binaries:
            for row, (t, ratio) in run(binary, args.min_time).items():
                times[(binary, row)].append(t)
                ratios[(binary, row)].append(ratio)
    label = {b: b.rsplit("/", 2)[-2] if "/" in b else b for b in args.binaries}
    for key in sorted(ratios, key=lambda k: (k[1], args.binaries.index(k[0]))):
        binary, (peer, where) = key
        r = ratios[key]
        print(f"{peer:12} {where:22} {label[binary]:12} median {statistics.median(times[key]):8.1f} ns"
              f"  /floor median {statistics.median(r):.3f} (min {min(r):.3f}, max {max(r):.3f}, n={len(r)})")


if __name__ == "__main__":
    main()
