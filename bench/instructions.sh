#!/usr/bin/env bash
# Instructions per routed message, counted by valgrind's callgrind: runs
# route_instructions at N and 2N messages and divides the difference by N,
# which cancels start-up costs. Repeatable on a busy machine, unlike time.
#
#   bench/instructions.sh [PATH/TO/route_instructions] [N] [SCENARIO...]
#
# Every scenario runs over the native protocol and, as nats_<scenario>,
# through the NATS front end (NatsCodec on every connection), so the table
# shows what the NATS translation costs on top of routing; where the binary
# was built with the web front end, also as ws_<scenario>: NATS over
# WebSocket (an HttpCodec at /nats on every connection), and in a table of
# its own Bayeux long-polling (bayeux_1to1, bayeux_fanout64: 100 publishes
# per POST, the subscribers' connects held). Build optimised
# first: bazel build --config=bench //bench:route_instructions, or CMake with
# CMAKE_BUILD_TYPE=Release or RelWithDebInfo.
set -euo pipefail
binary="${1:-bazel-bin/bench/route_instructions}"
n="${2:-20000}"
shift $(( $# > 2 ? 2 : $# ))
scenarios=("$@")
defaults=0
if [[ ${#scenarios[@]} -eq 0 ]]; then
  scenarios=(1to1 1to1_1k fanout8 fanout64 fanout1000 queue8 wildcard)
  defaults=1
fi
if ! command -v valgrind >/dev/null; then
  echo "instructions.sh: valgrind is not installed (apt-get install valgrind)" >&2
  exit 1
fi
[[ -x "$binary" ]] || { echo "instructions.sh: no binary at $binary" >&2; exit 1; }
count() {  # scenario messages -> total instructions
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$binary" "$1" "$2" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
per_message() {  # scenario -> instructions per message
  local a b
  a=$(count "$1" "$n")
  b=$(count "$1" $((2 * n)))
  echo $(( (b - a) / n ))
}
websocket=0
"$binary" ws_1to1 1 >/dev/null 2>&1 && websocket=1
if [[ $websocket -eq 1 ]]; then
  printf "%-11s %14s %14s %14s %14s %14s %14s\n" scenario "native/msg" \
    "native/dlvry" "nats/msg" "nats/dlvry" "nats-ws/msg" "nats-ws/dlvry"
else
  printf "%-11s %14s %14s %14s %14s\n" scenario "native/msg" "native/dlvry" \
    "nats/msg" "nats/dlvry"
fi
# Bayeux long-polling (bayeux_1to1, bayeux_fanout64) has a table of its own.
bayeux=()
plain=()
for scenario in "${scenarios[@]}"; do
  if [[ $scenario == bayeux_* ]]; then bayeux+=("$scenario"); else plain+=("$scenario"); fi
done
if [[ $defaults -eq 1 && $websocket -eq 1 ]]; then
  bayeux=(bayeux_1to1 bayeux_fanout64)
fi
for scenario in "${plain[@]}"; do
  case $scenario in
    fanout8) deliveries=8 ;;
    fanout64) deliveries=64 ;;
    fanout1000) deliveries=1000 ;;
    wildcard) deliveries=2 ;;
    *) deliveries=1 ;;
  esac
  native=$(per_message "$scenario")
  nats=$(per_message "nats_$scenario")
  if [[ $websocket -eq 1 ]]; then
    ws=$(per_message "ws_$scenario")
    printf "%-11s %14d %14d %14d %14d %14d %14d\n" "$scenario" "$native" \
      $((native / deliveries)) "$nats" $((nats / deliveries)) "$ws" \
      $((ws / deliveries))
  else
    printf "%-11s %14d %14d %14d %14d\n" "$scenario" "$native" \
      $((native / deliveries)) "$nats" $((nats / deliveries))
  fi
done
if [[ ${#bayeux[@]} -gt 0 ]]; then
  echo
  printf "%-16s %14s %14s\n" scenario "bayeux/msg" "bayeux/dlvry"
  for scenario in "${bayeux[@]}"; do
    case $scenario in
      bayeux_fanout64) deliveries=64 ;;
      *) deliveries=1 ;;
    esac
    n=$(per_message "$scenario")
    printf "%-16s %14d %14d\n" "$scenario" "$n" $((n / deliveries))
  done
fi
