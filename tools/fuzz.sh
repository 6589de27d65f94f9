#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14 + AddressSanitizer, in a Bazel
# output base of their own so that the gcc cache survives) and runs each for
# a bounded time, starting from its checked-in corpus. Exits non-zero on any
# finding (a crash, a failed check, a leak) and leaves the reproducer in the
# printed work directory.
#
#   tools/fuzz.sh               60 s per target (what CI runs)
#   tools/fuzz.sh 3600          an hour per target
#   tools/fuzz.sh 600 arena     one target
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=()
  for dir in tests/fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi
tools/setup.sh clang
base=${FUZZ_OUTPUT_BASE:-$HOME/.cache/arena-fuzz-bazel}
prefix=$(mktemp -d)/
labels=()
for t in "${targets[@]}"; do labels+=("//tests/fuzz:${t}_fuzzer"); done
bazel --output_base="$base" build --config=fuzz --symlink_prefix="$prefix" "${labels[@]}"
status=0
for t in "${targets[@]}"; do
  work=$(mktemp -d)
  cp tests/fuzz/corpus/"$t"/* "$work"/
  echo "== fuzzing $t for ${seconds}s (corpus: $work)"
  # Leaks and crashes fail the run; -timeout catches hangs.
  if ! "${prefix}bin/tests/fuzz/${t}_fuzzer" -max_total_time="$seconds" \
      -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
      -artifact_prefix="$work/" "$work" > "$work/log" 2>&1; then
    echo "fuzz.sh: $t found a failure; see $work/log and the crash-* file there" >&2
    tail -40 "$work/log" >&2
    status=1
  fi
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+ *DONE' "$work/log" || true
done
exit $status
