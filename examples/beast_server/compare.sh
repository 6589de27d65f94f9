#!/usr/bin/env bash
# Compares examples/beast_server's two allocators (--allocator=arena and
# --allocator=std) under the same load from `server_demo load`, alternating
# the allocators run by run, and prints a Markdown table of medians
# (requests/s, p50/p99 latency, the server's peak RSS).
#
#   bazel build -c opt //examples/beast_server //server_demo
#   examples/beast_server/compare.sh [--runs=3] [--duration=10s]
#       [--connections=64] [--paths=/hello,/json?items=100]
#
# BEAST_SERVER and SERVER_DEMO override the binaries (default bazel-bin/...).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=3
duration=10s
connections=64
paths="/hello,/json?items=100,/json?items=1000"
for arg in "$@"; do
  case "$arg" in
    --runs=*) runs=${arg#*=} ;;
    --duration=*) duration=${arg#*=} ;;
    --connections=*) connections=${arg#*=} ;;
    --paths=*) paths=${arg#*=} ;;
    *) echo "compare.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done
server=${BEAST_SERVER:-bazel-bin/examples/beast_server/beast_server}
load=${SERVER_DEMO:-bazel-bin/server_demo/server_demo}
for b in "$server" "$load"; do
  [[ -x $b ]] || { echo "compare.sh: $b not built (bazel build -c opt //examples/beast_server //server_demo)" >&2; exit 1; }
done
tmp=$(mktemp -d)
pid=""
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

# One run: prints "rps p50 p99 peak_rss_kib".
run_once() {  # allocator path
  rm -f "$tmp/out"
  "$server" --port=0 --allocator="$1" >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  local port=""
  for _ in $(seq 100); do
    port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/out" 2>/dev/null)
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { echo "compare.sh: beast_server did not start" >&2; cat "$tmp/err" >&2; exit 1; }
  if ! "$load" load --target="127.0.0.1:$port" --path="$2" --connections="$connections" \
      --threads=1 --duration="$duration" --json 2>"$tmp/load.err" >"$tmp/load.json"; then
    echo "compare.sh: server_demo load failed ($1, $2):" >&2
    tail -5 "$tmp/load.err" >&2
    exit 1
  fi
  local rss
  rss=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
  python3 - "$tmp/load.json" "$rss" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
bad = r["errors"] + r["connection_errors"]
if bad:
    sys.exit(f"compare.sh: {bad} errors in the load run")
print(r["requests_per_second"], r["latency_us"]["p50"], r["latency_us"]["p99"], sys.argv[2])
EOF
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "beast_server: $runs run(s) per allocator and path, $duration each, $connections connections,"
echo "server on 1 thread, load generator on 1 thread ($(nproc) cores)"
echo
echo "| path | allocator | requests/s | p50 µs | p99 µs | peak RSS MiB | arena/std req/s |"
echo "|---|---|---:|---:|---:|---:|---:|"
IFS=, read -r -a path_list <<<"$paths"
for path in "${path_list[@]}"; do
  : >"$tmp/arena.txt"
  : >"$tmp/std.txt"
  for ((i = 0; i < runs; ++i)); do
    run_once arena "$path" >>"$tmp/arena.txt"
    run_once std "$path" >>"$tmp/std.txt"
  done
  declare -A rps
  for alloc in arena std; do
    f=$tmp/$alloc.txt
    rps[$alloc]=$(cut -d' ' -f1 "$f" | median)
    p50=$(cut -d' ' -f2 "$f" | median)
    p99=$(cut -d' ' -f3 "$f" | median)
    rss=$(cut -d' ' -f4 "$f" | median)
    ratio=""
    [[ $alloc == std ]] && ratio=$(awk -v a="${rps[arena]}" -v s="${rps[std]}" 'BEGIN {printf "%.2f", a / s}')
    # shellcheck disable=SC2016  # the backquotes are Markdown
    printf '| `%s` | %s | %.0f | %.0f | %.0f | %.1f | %s |\n' "$path" "$alloc" "${rps[$alloc]}" \
      "$p50" "$p99" "$(awk -v k="$rss" 'BEGIN {print k / 1024}')" "$ratio"
  done
done
