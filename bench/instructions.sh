#!/usr/bin/env bash
# Instructions per routed message, counted by valgrind's callgrind: runs
# route_instructions at N and 2N messages and divides the difference by N,
# which cancels start-up costs. Repeatable on a busy machine.
#   bench/instructions.sh [PATH/TO/route_instructions] [N]
set -euo pipefail
binary="${1:-bazel-bin/bench/route_instructions}"
n="${2:-20000}"
if ! command -v valgrind >/dev/null; then
  echo "instructions.sh: valgrind is not installed (apt-get install valgrind)" >&2
  exit 1
fi
count() {  # scenario messages -> total instructions
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$binary" "$1" "$2" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf "%-10s %18s %18s\n" scenario "instr/message" "instr/delivery"
for scenario in 1to1 1to1_1k fanout8 fanout64 fanout1000 queue8; do
  a=$(count "$scenario" "$n")
  b=$(count "$scenario" $((2 * n)))
  per_message=$(( (b - a) / n ))
  case $scenario in
    fanout8) deliveries=8 ;;
    fanout64) deliveries=64 ;;
    fanout1000) deliveries=1000 ;;
    *) deliveries=1 ;;
  esac
  printf "%-10s %18d %18d\n" "$scenario" "$per_message" $((per_message / deliveries))
done
