#!/usr/bin/env bash
# Does a slow subscriber slow down anyone but its own publisher? Measures an
# unrelated publisher/subscriber pair (`manifold bench pubsub`, 1 KiB, NATS
# protocol) alone, then while a subscriber that never reads holds up a
# publisher flooding it, on manifoldd --nats and on nats-server, in turns.
#
#   bench/isolation.sh [--rounds N] [--count N] [--out DIR]
#
#   --rounds N   rounds (default 3); each measures both servers, both ways
#   --count N    messages of the measured pair per run (default 1000000)
#   --out DIR    logs and raw results; default under /tmp
#
# The stuck subscriber and the flooding publisher are raw NATS connections
# (python3): the subscriber subscribes and never reads again; the publisher
# writes 1 KiB messages to it as fast as its socket takes them. manifoldd
# runs with --max_stall=10m so that the stall lasts the whole run (by
# default it would end after 2 s, when the stuck subscriber is cut).
# Binaries: $MANIFOLDD and $MANIFOLD, or built as bench/compare.sh does.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds=3
count=1000000
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --count) count="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "isolation.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

script=isolation.sh
source "$repo/bench/lib.sh"
for tool in jq python3 nats-server; do
  command -v "$tool" >/dev/null || die "$tool is needed (apt-get install $tool)"
done
bench_binaries /tmp/manifold-isolation-build
[[ -n "$out" ]] || out="$(mktemp -d /tmp/manifold-isolation.XXXXXX)"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"

pids=()
cleanup() { for pid in "${pids[@]}"; do bench_stop "$pid" || true; done; }
trap cleanup EXIT

nats-server -a 127.0.0.1 -p -1 > "$out/nats-server.log" 2>&1 &
pids+=($!)
wait_for "$out/nats-server.log" "Listening for client connections" ||
  die "nats-server did not start"
nats_addr=$(sed -n 's/.*client connections on \([0-9.]*:[0-9]*\).*/\1/p' \
  "$out/nats-server.log" | head -1)
"$MANIFOLDD" --listen 127.0.0.1:0 --nats 127.0.0.1:0 --max_stall=10m \
  --log_level warning > "$out/manifoldd.out" 2> "$out/manifoldd.log" &
pids+=($!)
wait_for "$out/manifoldd.out" "listening on" || die "manifoldd did not start"
manifold_addr=$(head -1 "$out/manifoldd.out" | grep -o '[0-9.]*:[0-9]* (nats)' |
  cut -d' ' -f1)

# A NATS subscriber to "stuck.topic" that never reads, and a publisher that
# floods it; both run until killed.
start_stall() {  # address
  python3 - "$1" <<'PY' &
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
sub = socket.create_connection((host, int(port)))
sub.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
sub.sendall(b'CONNECT {"verbose":false}\r\nSUB stuck.topic 1\r\nPING\r\n')
time.sleep(0.5)  # subscribed; from now on it never reads
pub = socket.create_connection((host, int(port)))
pub.sendall(b'CONNECT {"verbose":false}\r\n')
frame = b"PUB stuck.topic 1024\r\n" + b"s" * 1024 + b"\r\n"
burst = frame * 64
while True:
    pub.sendall(burst)  # blocks while the server holds this publisher back
PY
  stall_pid=$!
  sleep 1.5  # the flood has filled the stuck subscriber
}

run_pair() {  # target address condition round
  local json
  json=$("$MANIFOLD" --server "$2" --json bench pubsub --protocol nats \
    --size 1024 --count "$count" --duration 60s 2> "$out/run.err") || true
  [[ -n "$json" ]] || { echo "isolation.sh: $1 $3: $(tail -1 "$out/run.err")" >&2; return; }
  echo "$json" | jq -c --arg target "$1" --arg condition "$3" --argjson round "$4" \
    '{target: $target, condition: $condition, round: $round, clean,
      received_per_s}' >> "$results"
}

for ((round = 1; round <= rounds; round++)); do
  for target in "manifold|$manifold_addr" "nats-server|$nats_addr"; do
    IFS='|' read -r name address <<< "$target"
    run_pair "$name" "$address" alone "$round"
    start_stall "$address"
    run_pair "$name" "$address" "beside a stalled flood" "$round"
    kill "$stall_pid" 2>/dev/null; wait "$stall_pid" 2>/dev/null || true
  done
  echo "round $round of $rounds done ($(uptime | sed 's/.*load average/load average/'))" >&2
done

python3 - "$results" <<'PY' | tee "$out/table.txt"
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| server | pair alone, msgs/s | beside a stalled flood, msgs/s | kept |")
print("| --- | ---: | ---: | ---: |")
for t in ("manifold", "nats-server"):
    alone = [r["received_per_s"] for r in runs if r["target"] == t and r["condition"] == "alone"]
    beside = [r["received_per_s"] for r in runs if r["target"] == t and r["condition"] != "alone"]
    if alone and beside:
        a, b = statistics.median(alone), statistics.median(beside)
        print(f"| {t} | {a:,.0f} | {b:,.0f} | {b / a:.0%} |")
PY
