#!/usr/bin/env bash
# Builds everything with clang, AddressSanitizer and UndefinedBehaviorSanitizer
# (LeakSanitizer included) and runs every test. The fuzzers are built in the
# same tree, so `FUZZ_BUILD_DIR=build-asan fuzz/run.sh` reuses it.
#   BUILD_DIR   where to build (default: build-asan)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh clang libclang-rt-14-dev

build_dir="${BUILD_DIR:-build-asan}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DMANIFOLD_SANITIZE=address,undefined \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DMANIFOLD_BUILD_FUZZERS=ON -DMANIFOLD_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build_dir"
# Halt on the first report of any kind, with a stack.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" "$@"
