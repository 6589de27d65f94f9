#!/usr/bin/env bash
# Installs what building and testing arena needs, from Debian's archive only.
# Idempotent: installs nothing when every package is present. Needs root
# (or sudo) the first time on a fresh Debian 12 machine.
#
#   tools/setup.sh            core build + tests (Bazel and CMake builds,
#                             the Boost.Beast example)
#   tools/setup.sh bench      + peer allocators, protobuf, gnuplot
#   tools/setup.sh demo       + wrk and ab for the server demo, gnuplot for
#                             `server_demo compare --plot`
set -euo pipefail

packages=(
  bazel-bootstrap g++ pkg-config
  libabsl-dev libtbb-dev libbenchmark-dev libgtest-dev libgmock-dev
  libtomlplusplus-dev
  cmake libboost-dev
)
for extra in "$@"; do
  case "$extra" in
    bench) packages+=(libjemalloc-dev libgoogle-perftools-dev libmimalloc-dev
                      libprotobuf-dev gnuplot-nox python3) ;;
    demo) packages+=(wrk apache2-utils curl gnuplot-nox) ;;
    clang) packages+=(clang-14 libclang-rt-14-dev) ;;
    *) echo "setup.sh: unknown extra '$extra' (known: bench, demo, clang)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "setup.sh: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup.sh: done"
