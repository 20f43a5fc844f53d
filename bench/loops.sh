#!/usr/bin/env bash
# manifoldd's event loops (epoll, io_uring, libuv) against each other, under
# the same load, in one run on this machine.
#
#   bench/loops.sh [--rounds N] [--scale F] [--loops LIST] [--out DIR]
#
# For every round, scenario and loop (the loop order rotates every round, so
# no loop always runs first on a busier machine), starts
# `manifoldd --loop LOOP` on a free loopback port, drives it with
# `manifold bench` over the native protocol, reads the broker's CPU time from
# /proc/<pid>/stat, and stops it with SIGTERM (it must exit 0). Scenarios:
#
#   pubsub16   pub/sub 1 -> 1, 16-byte payloads
#   pubsub1k   pub/sub 1 -> 1, 1 KiB payloads
#   fanout8    fan-out 1 -> 8, 16-byte payloads
#
# Prints, per scenario and loop, the median delivered messages per second
# (with the slowest and fastest round) and the broker's CPU time per
# delivery. Every message of every run is checked by `manifold bench` (lost,
# duplicated, reordered, corrupt); a run that is not clean is marked and the
# script exits 1.
#
#   --rounds N   rounds (default 5)
#   --scale F    multiply every message count (default 1; 0.2 for a quick look)
#   --loops L    loops to compare, comma-separated (default: every loop the
#                manifoldd binary has)
#   --out DIR    where logs and raw results (results.jsonl) go (default: a
#                fresh directory under /tmp)
#
# Binaries: $MANIFOLDD and $MANIFOLD if set; otherwise Manifold is built
# optimised (-O2 -DNDEBUG) with CMake in $BUILD_DIR (default
# /tmp/manifold-loops-build). Loopback only; every run is bounded by its
# message count and by `manifold bench --duration`.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds=5
scale=1
loops=""
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --scale) scale="$2"; shift 2 ;;
    --loops) loops="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "loops.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

# name|manifold bench arguments
scenarios=(
  "pubsub16|pubsub --pubs 1 --subs 1 --size 16 --count 30000000"
  "pubsub1k|pubsub --pubs 1 --subs 1 --size 1024 --count 3000000"
  "fanout8|fanout --subs 8 --size 16 --count 5000000"
)

script=loops.sh
source "$repo/bench/lib.sh"
command -v python3 >/dev/null || die "python3 is needed (apt-get install python3)"

bench_binaries /tmp/manifold-loops-build

if [[ -z "$loops" ]]; then
  # "unknown --loop '?'; this build has: epoll, io_uring, uv"
  loops=$({ "$MANIFOLDD" --loop '?' 2>&1 || true; } |
    sed -n 's/.*this build has: //p' | tr -d ' ')
  [[ -n "$loops" ]] || die "cannot tell which loops $MANIFOLDD has"
fi
IFS=',' read -r -a loop_list <<< "$loops"

[[ -n "$out" ]] || out="$(mktemp -d /tmp/manifold-loops.XXXXXX)"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"

broker_pid=""
cleanup() { bench_stop "$broker_pid" || true; }
trap cleanup EXIT


start_broker() {  # loop -> sets broker_pid and address
  local loop="$1" started=$SECONDS
  # The shell truncates the files in the child, after this function goes
  # on: never let it read the previous broker's "listening on" line.
  rm -f "$out/manifoldd-$loop.out" "$out/manifoldd-$loop.log"
  "$MANIFOLDD" --loop "$loop" --listen 127.0.0.1:0 --log_level warning \
    > "$out/manifoldd-$loop.out" 2> "$out/manifoldd-$loop.log" &
  broker_pid=$!
  for _ in $(seq 300); do
    grep -q "listening on" "$out/manifoldd-$loop.out" 2>/dev/null && break
    kill -0 "$broker_pid" 2>/dev/null ||
      die "manifoldd --loop $loop exited: $(cat "$out/manifoldd-$loop.log")"
    sleep 0.1
  done
  address=$({ grep -o '127.0.0.1:[0-9]*' "$out/manifoldd-$loop.out" || true; } |
    head -1)
  if [[ -z "$address" ]]; then
    local state
    state="$(sed -n 's/^State:\s*//p' "/proc/$broker_pid/status" 2>/dev/null), waiting in $(cat "/proc/$broker_pid/wchan" 2>/dev/null)"
    die "manifoldd --loop $loop did not say where it listens within $((SECONDS - started)) s ($state)"
  fi
  if ((SECONDS - started > 2)); then
    echo "loops.sh: manifoldd --loop $loop took $((SECONDS - started)) s to start" >&2
  fi
}

{
  echo "date:      $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine:   $(nproc) CPUs, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), kernel $(uname -r)"
  echo "manifoldd: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet 2>/dev/null || echo '+changes'), loops $loops"
  echo "command:   bench/loops.sh --rounds $rounds --scale $scale"
  echo "load:      $(uptime | sed 's/.*load average/load average/')"
  echo "output:    $out"
} | tee "$out/header.txt"

failures=0
for ((round = 1; round <= rounds; round++)); do
  for entry in "${scenarios[@]}"; do
    IFS='|' read -r name args <<< "$entry"
    count=$(echo "$args" | sed -n 's/.*--count \([0-9]*\).*/\1/p')
    scaled=$(awk -v c="$count" -v s="$scale" 'BEGIN { n = int(c * s); print (n < 1000 ? 1000 : n) }')
    run_args="${args/--count $count/--count $scaled}"
    for ((k = 0; k < ${#loop_list[@]}; k++)); do
      loop="${loop_list[$(((k + round) % ${#loop_list[@]}))]}"
      start_broker "$loop"
      before=$(bench_cpu_seconds "$broker_pid")
      set +e
      # shellcheck disable=SC2086
      json=$("$MANIFOLD" --server "$address" --json bench $run_args \
        --duration 30s 2> "$out/last-run.err")
      status=$?
      set -e
      after=$(bench_cpu_seconds "$broker_pid")
      if [[ "$after" == "-" ]]; then
        echo "loops.sh: manifoldd --loop $loop died during $name; see $out" >&2
        failures=$((failures + 1))
        broker_pid=""
        continue
      fi
      set +e
      bench_stop "$broker_pid"
      exit_status=$?
      set -e
      broker_pid=""
      if [[ $exit_status -ne 0 ]]; then
        echo "loops.sh: manifoldd --loop $loop exited with $exit_status; see $out" >&2
        failures=$((failures + 1))
      fi
      if [[ -z "$json" ]]; then
        echo "loops.sh: $loop $name failed: $(tail -1 "$out/last-run.err")" >&2
        failures=$((failures + 1))
        continue
      fi
      [[ $status -eq 0 ]] || failures=$((failures + 1))
      cpu=$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.3f", b - a }')
      printf '{"loop":"%s","name":"%s","round":%d,"server_cpu_s":%s,"report":%s}\n' \
        "$loop" "$name" "$round" "$cpu" "$json" >> "$results"
    done
  done
  echo "round $round of $rounds done ($(uptime | sed 's/.*load average/load average/'))" >&2
done

echo "load:      $(uptime | sed 's/.*load average/load average/') (at the end)" | tee -a "$out/header.txt"
python3 - "$results" "$loops" <<'PY' | tee "$out/table.txt"
import json, statistics, sys

runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
loops = sys.argv[2].split(",")
order = ["pubsub16", "pubsub1k", "fanout8"]
labels = {"pubsub16": "pub/sub 1->1, 16 B", "pubsub1k": "pub/sub 1->1, 1 KiB",
          "fanout8": "fan-out 1->8, 16 B"}

def of(name, loop):
    return [r for r in runs if r["name"] == name and r["loop"] == loop]

def median(values):
    return statistics.median(values) if values else None

head = ["scenario"]
for loop in loops:
    head += [f"{loop} M msgs/s [min-max]", f"{loop} cpu ns/msg"]
rows = []
for name in order:
    if not any(r["name"] == name for r in runs):
        continue
    row = [labels[name]]
    for loop in loops:
        mine = of(name, loop)
        rates = [r["report"]["received_per_s"] / 1e6 for r in mine]
        cpu = median([r["server_cpu_s"] / max(r["report"]["received"], 1) * 1e9
                      for r in mine])
        unclean = sum(1 for r in mine if not r["report"]["clean"])
        row.append("-" if not rates else
                   f"{median(rates):.2f} [{min(rates):.2f}-{max(rates):.2f}]" +
                   (f" ({unclean} unclean)" if unclean else ""))
        row.append("-" if cpu is None else f"{cpu:.0f}")
    rows.append(row)
widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
for r in [head] + rows:
    print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                    for i, (c, w) in enumerate(zip(r, widths))))
print("\nmedians of", max((r["round"] for r in runs), default=0),
      "rounds; M msgs/s = millions of deliveries received per second by the"
      " load tool; cpu ns/msg = the broker's CPU time (user + system) per"
      " delivery")
PY

if [[ $failures -gt 0 ]]; then
  echo "loops.sh: $failures runs failed or were not clean; see $results" >&2
  exit 1
fi
