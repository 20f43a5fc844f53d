#!/usr/bin/env bash
# Builds the fuzzers with clang, libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs each on its seed corpus for a while.
# New interesting inputs go to a scratch directory, not into the repository
# (copy them into fuzz/corpus/ by hand if they are worth keeping).
#   FUZZ_SECONDS      seconds per target (default 60)
#   FUZZ_BUILD_DIR    build directory (default build-fuzz)
#   FUZZ_TARGETS      targets to run (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
build="${FUZZ_BUILD_DIR:-build-fuzz}"
targets="${FUZZ_TARGETS:-frame_decoder_fuzzer topic_fuzzer transcript_fuzzer broker_fuzzer nats_parser_fuzzer}"

scripts/install-deps.sh clang libclang-rt-14-dev
# Only the fuzzer options are set, so an existing sanitizer build
# (scripts/sanitize.sh) can be reused as it is.
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMANIFOLD_BUILD_FUZZERS=ON \
  -DMANIFOLD_SANITIZE=address,undefined >/dev/null

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
status=0
for target in $targets; do
  if ! grep -q "\"$target|" fuzz/CMakeLists.txt; then
    echo "fuzz: no target $target, skipping"
    continue
  fi
  cmake --build "$build" --target "$target" >/dev/null
  corpus="fuzz/corpus/${target%_fuzzer}"
  mkdir -p "$scratch/$target"
  echo "fuzz: $target for ${seconds}s on $corpus"
  if ! "$build/fuzz/$target" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$scratch/$target/" "$scratch/$target" "$corpus" \
      > "$scratch/$target.log" 2>&1; then
    status=1
    echo "fuzz: $target FAILED"
    tail -40 "$scratch/$target.log"
    for artifact in "$scratch/$target"/crash-* "$scratch/$target"/leak-* \
                    "$scratch/$target"/timeout-*; do
      [ -f "$artifact" ] || continue
      echo "fuzz: reproducer $(basename "$artifact") (base64):"
      base64 -w 0 "$artifact"; echo
    done
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" \
      "$scratch/$target.log" | sed "s/^/fuzz: $target /"
  fi
done
exit $status
