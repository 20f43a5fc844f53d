#!/usr/bin/env bash
# Bursts at a slow reader: does every message arrive, and how much memory
# does the server take? Manifold (NATS front end and native protocol, on each
# event loop) next to nats-server, same load, same run.
#
#   bench/burst.sh [--rounds N] [--loops epoll,io_uring,uv] [--read-rate B]
#                  [--scale F] [--out DIR]
#
# One publisher bursts (no window: as fast as the server takes it) at one
# subscriber that reads at most --read-rate payload bytes per second, in two
# shapes: 2,000,000 x 1 KiB and 40,000 x 64 KiB. Every round runs each shape
# against nats-server and against manifoldd's NATS and native listeners on
# each loop, in rotating order. For each run it records what arrived (every
# message is numbered and checked: lost, duplicated, reordered) and the
# server's peak resident memory while the run lasted (VmRSS sampled every
# 50 ms), then prints per target: runs, runs that lost anything, messages
# lost in all, and the largest peak RSS.
#
#   --rounds N     rounds (default 20)
#   --loops LIST   manifoldd's event loops (default: epoll,io_uring,uv; those
#                  this build or kernel lacks are skipped with one line)
#   --read-rate B  the subscriber's bytes per second (default 200000000)
#   --scale F      multiply both message counts (default 1; 0.05 for a look)
#   --out DIR      logs and raw results (results.jsonl); default under /tmp
#
# Binaries: $MANIFOLDD and $MANIFOLD, or built as bench/compare.sh does.
# $MANIFOLDD_FLAGS adds flags to every manifoldd (e.g. a slow-consumer
# policy, to compare policies).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds=20
loops=""
read_rate=200000000
scale=1
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --loops) loops="$2"; shift 2 ;;
    --read-rate) read_rate="$2"; shift 2 ;;
    --scale) scale="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "burst.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

script=burst.sh
source "$repo/bench/lib.sh"
for tool in jq python3 nats-server; do
  command -v "$tool" >/dev/null || die "$tool is needed (apt-get install $tool)"
done
bench_binaries /tmp/manifold-burst-build
[[ -n "$loops" ]] || loops="epoll,io_uring,uv"  # those this build lacks are skipped

[[ -n "$out" ]] || out="$(mktemp -d /tmp/manifold-burst.XXXXXX)"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"

pids=()
cleanup() { for pid in "${pids[@]}"; do bench_stop "$pid" || true; done; }
trap cleanup EXIT

# target name | address | protocol | server pid
targets=()
nats-server -a 127.0.0.1 -p -1 > "$out/nats-server.log" 2>&1 &
pids+=($!)
wait_for "$out/nats-server.log" "Listening for client connections" ||
  die "nats-server did not start; see $out/nats-server.log"
targets+=("nats-server|$(sed -n 's/.*client connections on \([0-9.]*:[0-9]*\).*/\1/p' \
  "$out/nats-server.log" | head -1)|nats|${pids[-1]}")
for loop in ${loops//,/ }; do
  # shellcheck disable=SC2086
  "$MANIFOLDD" --listen 127.0.0.1:0 --nats 127.0.0.1:0 --loop "$loop" \
    --log_level warning ${MANIFOLDD_FLAGS:-} > "$out/manifoldd-$loop.out" \
    2> "$out/manifoldd-$loop.log" &
  pids+=($!)
  if ! wait_for "$out/manifoldd-$loop.out" "listening on"; then
    echo "burst.sh: skipping --loop $loop: $(tail -1 "$out/manifoldd-$loop.log")" >&2
    continue
  fi
  line=$(head -1 "$out/manifoldd-$loop.out")
  targets+=("manifold-nats-$loop|$(echo "$line" | grep -o '[0-9.]*:[0-9]* (nats)' | cut -d' ' -f1)|nats|${pids[-1]}")
  targets+=("manifold-native-$loop|$(echo "$line" | grep -o '[0-9.]*:[0-9]* (tcp)' | cut -d' ' -f1)|native|${pids[-1]}")
done

# The server's largest VmRSS (KiB) while `pid_to_watch` runs.
peak_rss_while() {  # server_pid watched_pid
  local peak=0 now
  while kill -0 "$2" 2>/dev/null; do
    now=$(awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
    (( now > peak )) && peak=$now
    sleep 0.05
  done
  echo "$peak"
}

shapes=("1k|1024|2000000" "64k|65536|40000")
{
  echo "date:      $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine:   $(nproc) CPUs, kernel $(uname -r)"
  echo "servers:   $(nats-server --version); manifoldd $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?') ${MANIFOLDD_FLAGS:-}"
  echo "load:      $(uptime | sed 's/.*load average/load average/')"
  echo "rounds:    $rounds, loops $loops, read rate $read_rate B/s, scale $scale, output $out"
} | tee "$out/header.txt"

for ((round = 1; round <= rounds; round++)); do
  for shape in "${shapes[@]}"; do
    IFS='|' read -r name size count <<< "$shape"
    count=$(awk -v c="$count" -v s="$scale" 'BEGIN { n = int(c * s); print (n < 100 ? 100 : n) }')
    for ((k = 0; k < ${#targets[@]}; k++)); do
      IFS='|' read -r target address protocol pid \
        <<< "${targets[$(((k + round) % ${#targets[@]}))]}"
      "$MANIFOLD" --server "$address" --json bench pubsub --protocol "$protocol" \
        --pubs 1 --subs 1 --size "$size" --count "$count" --window 1000000000 \
        --read_rate "$read_rate" --duration 600s --timeout 10s \
        > "$out/run.json" 2> "$out/run.err" &
      run=$!
      peak=$(peak_rss_while "$pid" "$run")
      wait "$run" || true
      kill -0 "$pid" 2>/dev/null || die "$target exited; see $out"
      if [[ ! -s "$out/run.json" ]]; then
        echo "burst.sh: $target $name: $(tail -1 "$out/run.err")" >&2
        echo "{\"target\":\"$target\",\"name\":\"$name\",\"round\":$round,\"failed\":true,\"expected\":$count,\"received\":0,\"lost\":$count,\"peak_rss_kib\":$peak}" >> "$results"
        continue
      fi
      jq -c --arg target "$target" --arg name "$name" --argjson round "$round" \
        --argjson peak "$peak" \
        '{target: $target, name: $name, round: $round, failed: false,
          expected, received, lost, duplicates, reordered, clean, elapsed_s,
          received_per_s, peak_rss_kib: $peak}' "$out/run.json" >> "$results"
    done
  done
  echo "round $round of $rounds done ($(uptime | sed 's/.*load average/load average/'))" >&2
done

python3 - "$results" <<'PY' | tee "$out/table.txt"
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
targets = list(dict.fromkeys(r["target"] for r in runs))
print("| burst | server | runs | runs with loss | messages lost | median msgs/s | peak RSS |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for name, label in (("1k", "2 M x 1 KiB"), ("64k", "40 k x 64 KiB")):
    for t in targets:
        rs = [r for r in runs if r["target"] == t and r["name"] == name]
        if not rs:
            continue
        lossy = sum(1 for r in rs if r["failed"] or not r.get("clean", False))
        lost = sum(r["lost"] for r in rs)
        rates = sorted(r.get("received_per_s", 0) for r in rs if not r["failed"])
        median = rates[len(rates) // 2] if rates else 0
        peak = max(r["peak_rss_kib"] for r in rs) / 1024
        print(f"| {label} | {t} | {len(rs)} | {lossy} | {lost:,} | {median:,.0f} | {peak:.1f} MiB |")
PY
if jq -e 'select(.failed or (.clean | not))' "$results" > /dev/null; then
  echo "burst.sh: some runs lost messages (see the table)" >&2
  exit 1
fi
