#!/usr/bin/env bash
# Builds the fuzzers with clang, libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs each on its seed corpus for a while.
# New interesting inputs go to a scratch directory, not into the repository
# (copy them into fuzz/corpus/ by hand if they are worth keeping).
#   FUZZ_SECONDS      seconds per target (default 60)
#   FUZZ_BUILD_DIR    build directory (default build-fuzz)
#   FUZZ_TARGETS      targets to run (default: all)
#   FUZZ_JOBS         targets run side by side (default: one per CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
build="${FUZZ_BUILD_DIR:-build-fuzz}"
targets="${FUZZ_TARGETS:-frame_decoder_fuzzer topic_fuzzer transcript_fuzzer broker_fuzzer nats_parser_fuzzer http_codec_fuzzer websocket_fuzzer bayeux_fuzzer tls_record_fuzzer}"

scripts/install-deps.sh clang libclang-rt-14-dev
# Only the fuzzer options are set, so an existing sanitizer build
# (scripts/sanitize.sh) can be reused as it is.
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMANIFOLD_BUILD_FUZZERS=ON \
  -DMANIFOLD_SANITIZE=address,undefined >/dev/null

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

present=()
for target in $targets; do
  if grep -q "\"$target|" fuzz/CMakeLists.txt; then
    present+=("$target")
  else
    echo "fuzz: no target $target, skipping"
  fi
done
[ ${#present[@]} -gt 0 ] || exit 0
cmake --build "$build" --target "${present[@]}" >/dev/null

# Runs one target; its report goes to $scratch/$target.report and its exit
# status to $scratch/$target.status.
run_target() {
  local target="$1" corpus="fuzz/corpus/${1%_fuzzer}" out="$scratch/$1"
  mkdir -p "$out"
  if "$build/fuzz/$target" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$out/" "$out" "$corpus" > "$out.log" 2>&1; then
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$out.log" |
      sed "s/^/fuzz: $target /" > "$out.report"
    echo 0 > "$out.status"
  else
    {
      echo "fuzz: $target FAILED"
      tail -40 "$out.log"
      for artifact in "$out"/crash-* "$out"/leak-* "$out"/timeout-*; do
        [ -f "$artifact" ] || continue
        echo "fuzz: reproducer $(basename "$artifact") (base64):"
        base64 -w 0 "$artifact"; echo
      done
    } > "$out.report"
    echo 1 > "$out.status"
  fi
}

# The targets run side by side, FUZZ_JOBS at a time (default: one per CPU).
jobs="${FUZZ_JOBS:-$(nproc)}"
running=0
for target in "${present[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  echo "fuzz: $target for ${seconds}s on fuzz/corpus/${target%_fuzzer}"
  run_target "$target" &
  running=$((running + 1))
done
wait || true

status=0
for target in "${present[@]}"; do
  cat "$scratch/$target.report"
  [ "$(cat "$scratch/$target.status" 2>/dev/null)" = 0 ] || status=1
done
exit $status
