#!/usr/bin/env bash
# Installs what is missing, builds everything with CMake + Ninja, and runs
# every test with ctest. Usage: scripts/test.sh [extra ctest arguments]
#   BUILD_DIR   where to build (default: build)
#   SANITIZE    e.g. "address,undefined": a sanitizer build in $BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

build_dir="${BUILD_DIR:-build}"
cmake_args=(-S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release)
if [ -n "${SANITIZE:-}" ]; then
  cmake_args+=(-DMANIFOLD_SANITIZE="$SANITIZE" -DCMAKE_CXX_COMPILER=clang++
               -DMANIFOLD_BUILD_BENCHMARKS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
               -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG")
fi
cmake "${cmake_args[@]}" >/dev/null
cmake --build "$build_dir"
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" "$@"
