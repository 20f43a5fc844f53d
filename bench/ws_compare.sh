#!/usr/bin/env bash
# Manifold's WebSocket listener next to nats-server 2.9's own, under the
# same load, on this machine.
#
#   bench/ws_compare.sh [--rounds N] [--scale F] [--only a,b,...] [--out DIR]
#
# Starts nats-server with `websocket { no_tls: true }` and `manifoldd --http`
# on free loopback ports and runs each scenario with `manifold bench
# --protocol nats-ws` (NATS over a WebSocket at /nats, a masked binary message
# per flush from the client, as nats.ws sends) against both, rotating the
# order every round, plus Manifold's native protocol over WebSocket (`--protocol
# ws`, manifold.v1) for reference. Prints the median of each, the ratio
# Manifold / nats-server against the bar, and each server's CPU time. Every
# message of every run is checked; a run that lost, duplicated or reordered
# anything is marked and the script exits 1.
#
#   --rounds N   rounds of every scenario (default 5)
#   --scale F    multiply every message count (default 1)
#   --only LIST  scenarios to run: pubsub16, fanout64
#   --out DIR    where logs and results.jsonl go (default: a fresh /tmp dir)
#
# Binaries: $MANIFOLDD and $MANIFOLD if set; otherwise built optimised with
# CMake in $BUILD_DIR (default /tmp/manifold-compare-build), as compare.sh.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds=5
scale=1
only=""
out=""
script=ws_compare.sh
source "$repo/bench/lib.sh"
bench_parse_options "$@"

# name | manifold bench arguments | bar (Manifold / nats-server)
scenarios=(
  "pubsub16|pubsub --size 16 --count 2000000|2.0"
  "fanout64|fanout --subs 64 --size 16 --count 100000|2.0"
)

for tool in jq python3 nats-server; do
  command -v "$tool" >/dev/null || die "$tool is needed (apt-get install $tool)"
done
bench_binaries /tmp/manifold-compare-build

[[ -n "$out" ]] || out="$(mktemp -d /tmp/manifold-ws-compare.XXXXXX)"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"

nats_pid=""
manifold_pid=""
cleanup() { bench_stop "$nats_pid" || true; bench_stop "$manifold_pid" || true; }
trap cleanup EXIT
cat > "$out/nats-server.conf" <<'CONF'
listen: 127.0.0.1:-1
websocket {
  host: 127.0.0.1
  port: -1
  no_tls: true
}
CONF
nats-server -c "$out/nats-server.conf" > "$out/nats-server.log" 2>&1 &
nats_pid=$!
wait_for "$out/nats-server.log" "Listening for websocket clients" ||
  die "nats-server did not start; see $out/nats-server.log"
nats_ws=$(sed -n 's/.*Listening for websocket clients on ws:\/\/\([0-9.]*:[0-9]*\).*/\1/p' \
  "$out/nats-server.log" | head -1)

# shellcheck disable=SC2086
"$MANIFOLDD" --listen 127.0.0.1:0 --http 127.0.0.1:0 --log_level warning \
  ${MANIFOLDD_FLAGS:-} > "$out/manifoldd.out" 2> "$out/manifoldd.log" &
manifold_pid=$!
wait_for "$out/manifoldd.out" "listening on" ||
  die "manifoldd did not start; see $out/manifoldd.log"
manifold_http=$(head -1 "$out/manifoldd.out" | grep -o '[0-9.]*:[0-9]* (http)' | cut -d' ' -f1)
[[ -n "$manifold_http" ]] || die "cannot tell manifoldd's HTTP port: $(head -1 "$out/manifoldd.out")"

targets=("nats-server|$nats_ws|$nats_pid|--protocol nats-ws"
         "manifold-nats-ws|$manifold_http|$manifold_pid|--protocol nats-ws"
         "manifold-ws|$manifold_http|$manifold_pid|--protocol ws")

bench_header \
  "servers:   $(nats-server --version) websocket on $nats_ws; manifoldd $(bench_manifold_version) --http $manifold_http ${MANIFOLDD_FLAGS:-}"

bench_rounds
python3 - "$results" <<'PY' | tee "$out/table.txt"
import json, statistics, sys

runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
labels = {"pubsub16": "pub/sub 1x1, 16 B", "fanout64": "fan-out 1x64, 16 B"}
bars = {"pubsub16": 2.0, "fanout64": 2.0}

def pick(name, target, key):
    values = [key(r) for r in runs if r["name"] == name and r["target"] == target]
    return statistics.median(values) if values else None

head = ("scenario (msgs/s received)", "nats-server ws", "manifold nats-ws",
        "ratio", "bar", "manifold ws", "cpu nats", "cpu mfld")
rows = []
for name in ("pubsub16", "fanout64"):
    if not any(r["name"] == name for r in runs):
        continue
    rate = lambda r: r["received_per_s"]
    n, m, w = (pick(name, t, rate) for t in ("nats-server", "manifold-nats-ws", "manifold-ws"))
    cn, cm = (pick(name, t, lambda r: r["server_cpu_s"]) for t in ("nats-server", "manifold-nats-ws"))
    ratio = m / n if n and m else None
    bar = f">={bars[name]}x " + ("ok" if ratio and ratio >= bars[name] else "MISSED")
    unclean = sum(1 for r in runs if r["name"] == name and not r["clean"])
    rows.append((labels[name] + (f" ({unclean} unclean)" if unclean else ""),
                 f"{n:,.0f}" if n else "-", f"{m:,.0f}" if m else "-",
                 f"{ratio:.2f}" if ratio else "-", bar, f"{w:,.0f}" if w else "-",
                 f"{cn:.2f}s" if cn is not None else "-", f"{cm:.2f}s" if cm is not None else "-"))
widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
for row in [head] + rows:
    print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
PY
if ! jq -e 'select(.clean == false)' "$results" >/dev/null 2>&1; then :; else
  echo "ws_compare.sh: some runs lost, duplicated or reordered messages" >&2
  failures=$((failures + 1))
fi
[[ $failures -eq 0 ]] || exit 1
