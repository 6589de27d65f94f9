#!/usr/bin/env bash
# CI for the CMake build and for embedding the library (issue 12), all in a
# temporary directory (nothing is written to the checkout):
#   1. tools/check_build_sync.py: Bazel and CMake list the same files;
#   2. the CMake build (library, tests, examples/beast_server) and ctest;
#   3. cmake --install to a temporary prefix;
#   4. a tiny consumer built three ways, each run (it allocates, resets and
#      prints stats): find_package(arena) against the installed tree,
#      add_subdirectory() of this checkout, and plain g++ with
#      `pkg-config --cflags --libs --static arena`.
# Needs the packages of tools/setup.sh. Usage: tools/ci_embedding.sh [-jN]
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
jobs=${1:--j2}
start=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/arena-embedding.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { echo "=== ci_embedding [$((SECONDS - start))s]: $*"; }

step "drift check (Bazel vs CMake file lists)"
tools/check_build_sync.py

step "CMake configure + build (library, tests, examples)"
cmake -S "$src" -B "$work/build" >"$work/configure.log" ||
  { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" "$jobs"

step "ctest"
ctest --test-dir "$work/build" "$jobs" --output-on-failure

step "install to a temporary prefix"
cmake --install "$work/build" --prefix "$work/prefix" >/dev/null
find "$work/prefix" -type f | sed "s|$work/prefix/||" | sort

# The consumer: its own project in its own directory, seeing only what the
# embedding method gives it.
mkdir -p "$work/consumer"
cat >"$work/consumer/main.cc" <<'EOF'
#include <cstdio>
#include <string>
#include <vector>

#include "arena/arena.h"
#include "arena/stats.h"

int main() {
  arena::Arena a;
  for (int round = 0; round < 3; ++round) {
    {
      std::vector<int, arena::ArenaAllocator<int>> v{arena::ArenaAllocator<int>(a)};
      for (int i = 0; i < 10000; ++i) v.push_back(i);
      char* buf = static_cast<char*>(a.Allocate(4096));
      buf[0] = 1;
      std::printf("round %d: live_bytes=%zu blocks=%zu\n", round, a.stats().live_bytes,
                  a.stats().blocks);
    }
    a.Reset();
  }
  const arena::ArenaStats s = a.stats();
  std::printf("after reset: live_bytes=%zu resets=%llu\n", s.live_bytes,
              static_cast<unsigned long long>(s.resets));
  std::printf("%s\n", arena::ToJson(arena::GlobalStats()).c_str());
  return s.live_bytes == 0 && s.resets == 3 ? 0 : 1;
}
EOF
cat >"$work/consumer/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.25)
project(arena_consumer LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 17)
if(ARENA_SOURCE_DIR)
  add_subdirectory(${ARENA_SOURCE_DIR} arena)
else()
  find_package(arena 0.1 CONFIG REQUIRED)
endif()
add_executable(consumer main.cc)
target_link_libraries(consumer PRIVATE arena::arena)
EOF

run_consumer() {  # label binary
  local out
  out=$("$2")
  echo "$out" | head -4
  grep -q '"arenas_created":' <<<"$out" || { echo "$1: no stats printed" >&2; exit 1; }
  echo "$1: OK"
}

step "consumer 1: find_package(arena 0.1 CONFIG REQUIRED) against the installed tree"
cmake -S "$work/consumer" -B "$work/c-find" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/c-find" "$jobs" >/dev/null
run_consumer find_package "$work/c-find/consumer"

step "consumer 2: add_subdirectory(<checkout>)"
cmake -S "$work/consumer" -B "$work/c-subdir" -DARENA_SOURCE_DIR="$src" >/dev/null
cmake --build "$work/c-subdir" "$jobs" >/dev/null
# Under add_subdirectory, tests and examples are off by default.
if [[ -e "$work/c-subdir/arena/arena_test" || -e "$work/c-subdir/arena/examples" ]]; then
  echo "add_subdirectory built tests or examples" >&2
  exit 1
fi
run_consumer add_subdirectory "$work/c-subdir/consumer"

step "consumer 3: g++ \$(pkg-config --cflags --libs --static arena)"
pcdir=$(dirname "$(find "$work/prefix" -name arena.pc)")
flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs --static arena)
echo "pkg-config: $flags"
# shellcheck disable=SC2086
g++ -std=c++17 -o "$work/c-pc" "$work/consumer/main.cc" $flags
run_consumer pkg-config "$work/c-pc"

step "done in $((SECONDS - start))s"
