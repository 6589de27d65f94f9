#!/usr/bin/env python3
"""Tests of bench/summarize.py's paired-round modes (classify, rounds_section)
on made-up probe and round figures."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import summarize  # noqa: E402


class ClassifyTest(unittest.TestCase):
    def test_two_modes_and_a_change(self):
        modes = summarize.classify({
            "a": (30.0, 41.0),    # fast: within 2.5x of the lowest (30)
            "b": (200.0, 190.0),  # slow
            "c": (35.0, 210.0),   # changed while it ran
            "d": None,            # no probes (an older raw file)
        })
        self.assertEqual(modes, {"a": "fast", "b": "slow", "c": "mixed", "d": None})

    def test_one_slow_cluster_is_not_called_fast(self):
        modes = summarize.classify({"a": (190.0, 205.0), "b": (200.0, 215.0)})
        self.assertEqual(set(modes.values()), {"slow"})

    def test_one_fast_cluster(self):
        modes = summarize.classify({"a": (25.0, 44.0), "b": (30.0, 31.0)})
        self.assertEqual(set(modes.values()), {"fast"})

    def test_no_probes(self):
        self.assertEqual(summarize.classify({}), {})


def table(lines, workload):
    """The rows of `workload`'s table in rounds_section's output, by peer."""
    start = lines.index(f"### {workload}\n")
    rows = {}
    for line in lines[start + 3:]:
        if not line.startswith("| "):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells
    return rows


class RoundsSectionTest(unittest.TestCase):
    def test_ratios_counted_per_mode(self):
        # Round 1: every process fast. Round 2: arena's process slow, the
        # jemalloc one fast (a mixed-mode pair, left out of both columns).
        # Round 3: both slow.
        rounds = {
            1: {"xthread": {"arena_dealloc": 10.0, "floor": 1.0, "jemalloc": 25.0}},
            2: {"xthread": {"arena_dealloc": 50.0, "floor": 1.0, "jemalloc": 25.0}},
            3: {"xthread": {"arena_dealloc": 50.0, "floor": 1.0, "jemalloc": 55.0}},
        }
        probes = {
            1: {"glibc": (30.0, 32.0), "jemalloc": (31.0, 29.0)},
            2: {"glibc": (200.0, 201.0), "jemalloc": (33.0, 30.0)},
            3: {"glibc": (199.0, 205.0), "jemalloc": (210.0, 190.0)},
        }
        lines = summarize.rounds_section(rounds, probes)
        self.assertIn("| 2 | 200 / 201, slow | 33 / 30, fast | - | - |", lines)
        rows = table(lines, "xthread")
        # All rounds: ratios 2.5, 0.5, 1.1.
        self.assertEqual(rows["jemalloc"][2:5], ["1.10", "0.50", "2.50"])
        # Same mode only: round 1 fast, round 3 slow.
        self.assertEqual(rows["jemalloc"][6], "1, 2.50 (2.50-2.50)")
        self.assertEqual(rows["jemalloc"][7], "1, 1.10 (1.10-1.10)")
        # In-process peers share arena's process: counted in every round.
        self.assertEqual(rows["floor"][6], "1, 0.10 (0.10-0.10)")
        self.assertEqual(rows["floor"][7], "2, 0.02 (0.02-0.02)")

    def test_without_probes_the_old_table(self):
        rounds = {1: {"larson": {"arena_dealloc": 10.0, "tcmalloc": 5.0}}}
        lines = summarize.rounds_section(rounds, {})
        self.assertFalse(any(line.startswith("**Modes.**") for line in lines))
        self.assertEqual(table(lines, "larson")["tcmalloc"][2], "0.50")
        self.assertEqual(len(table(lines, "larson")["tcmalloc"]), 6)


if __name__ == "__main__":
    unittest.main()
