#!/usr/bin/env bash
# Manifold's Bayeux front end (/cometd on `manifoldd --http`) next to Faye's
# own Node.js server, under the same long-polling load, on this machine.
#
#   bench/bayeux_compare.sh [--rounds N] [--scale F] [--only a,b] [--out DIR]
#
# Starts `manifoldd --http` and Faye 1.4.3 (bench/bayeux/faye_server.mjs: a
# NodeAdapter at /cometd, timeout 30, in-memory engine) on free loopback ports
# and runs each scenario with `manifold bench --protocol bayeux` against both,
# rotating the order every round. The load client (client/load/bayeux_load.h)
# speaks Bayeux long-polling on raw HTTP/1.1 keep-alive connections from two
# epoll threads: every subscriber handshakes, subscribes and loops
# /meta/connect (all of them in one thread); one publisher (in the other)
# posts batches of 100 publishes over 8 lanes, one POST in flight per lane,
# at most 4000 messages ahead of the slowest subscriber. Prints the median
# received msgs/s of each, the ratio Manifold / Faye against the bar, each
# server's CPU time and the client's. Every subscriber checks it got every
# message once and in order; a run that lost, duplicated or reordered
# anything is marked and the script exits 1.
#
#   --rounds N   rounds of every scenario (default 5)
#   --scale F    multiply every message count (default 1)
#   --only LIST  scenarios to run: pubsub1x1, fanout1x64
#   --out DIR    where logs and results.jsonl go (default: a fresh /tmp dir)
#
# Binaries: $MANIFOLDD and $MANIFOLD if both are set; otherwise built
# optimised with CMake in $BUILD_DIR (default /tmp/manifold-compare-build),
# as compare.sh. Faye is installed into bench/bayeux/node_modules with
# `npm ci --prefer-offline` from the committed package-lock.json.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds=5
scale=1
only=""
out=""
script=bayeux_compare.sh
source "$repo/bench/lib.sh"
bench_parse_options "$@"

# name | `manifold bench` arguments | bar (Manifold / Faye)
scenarios=(
  "pubsub1x1|pubsub --subs 1 --count 400000|5.0"
  "fanout1x64|fanout --subs 64 --count 30000|5.0"
)

for tool in jq python3 node npm; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done
bench_binaries /tmp/manifold-compare-build
bayeux="$repo/bench/bayeux"
(cd "$bayeux" && npm ci --prefer-offline --no-audit --no-fund >/dev/null) ||
  die "npm ci in bench/bayeux failed"

[[ -n "$out" ]] || out="$(mktemp -d /tmp/manifold-bayeux-compare.XXXXXX)"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"

faye_pid=""
manifold_pid=""
cleanup() { bench_stop "$faye_pid" || true; bench_stop "$manifold_pid" || true; }
trap cleanup EXIT
node "$bayeux/faye_server.mjs" --port 0 > "$out/faye.log" 2>&1 &
faye_pid=$!
wait_for "$out/faye.log" "listening on" || die "Faye did not start; see $out/faye.log"
faye_http=$(grep -o 'listening on [0-9.]*:[0-9]*' "$out/faye.log" | head -1 | cut -d' ' -f3)

# shellcheck disable=SC2086
"$MANIFOLDD" --listen 127.0.0.1:0 --http 127.0.0.1:0 --log_level warning \
  ${MANIFOLDD_FLAGS:-} > "$out/manifoldd.out" 2> "$out/manifoldd.log" &
manifold_pid=$!
wait_for "$out/manifoldd.out" "listening on" ||
  die "manifoldd did not start; see $out/manifoldd.log"
manifold_http=$(head -1 "$out/manifoldd.out" | grep -o '[0-9.]*:[0-9]* (http)' | cut -d' ' -f1)
[[ -n "$manifold_http" ]] || die "cannot tell manifoldd's HTTP port: $(head -1 "$out/manifoldd.out")"

client="--protocol bayeux --bayeux_path /cometd --duration 120s --timeout 20s"
targets=("faye|$faye_http|$faye_pid|$client"
         "manifold|$manifold_http|$manifold_pid|$client")

bench_header \
  "servers:   $(head -1 "$out/faye.log") on node $(node --version); manifoldd $(bench_manifold_version) --http $manifold_http ${MANIFOLDD_FLAGS:-}" \
  "client:    $MANIFOLD bench --protocol bayeux (8 lanes x 100 per POST, window 4000)"

bench_rounds
python3 - "$results" <<'PY' | tee "$out/table.txt"
import json, statistics, sys

runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
labels = {"pubsub1x1": "pub/sub 1x1, 16 B", "fanout1x64": "fan-out 1x64, 16 B"}
bars = {"pubsub1x1": 5.0, "fanout1x64": 5.0}

def pick(name, target, key):
    values = [key(r) for r in runs if r["name"] == name and r["target"] == target]
    return statistics.median(values) if values else None

head = ("scenario (msgs/s received)", "faye", "manifold", "ratio", "bar",
        "cpu faye", "cpu mfld", "client cpu f/m", "client us/msg f/m")
rows = []
for name in ("pubsub1x1", "fanout1x64"):
    if not any(r["name"] == name for r in runs):
        continue
    f, m = (pick(name, t, lambda r: r["received_per_s"]) for t in ("faye", "manifold"))
    cf, cm = (pick(name, t, lambda r: r["server_cpu_s"]) for t in ("faye", "manifold"))
    kf, km = (pick(name, t, lambda r: r["client_cpu_s"]) for t in ("faye", "manifold"))
    uf, um = (pick(name, t, lambda r: 1e6 * r["client_cpu_s"] / max(1, r["received"]))
              for t in ("faye", "manifold"))
    ratio = m / f if f and m else None
    bar = f">={bars[name]}x " + ("ok" if ratio and ratio >= bars[name] else "MISSED")
    unclean = sum(1 for r in runs if r["name"] == name and not r["clean"])
    rows.append((labels[name] + (f" ({unclean} unclean)" if unclean else ""),
                 f"{f:,.0f}" if f else "-", f"{m:,.0f}" if m else "-",
                 f"{ratio:.2f}" if ratio else "-", bar,
                 f"{cf:.2f}s" if cf is not None else "-",
                 f"{cm:.2f}s" if cm is not None else "-",
                 f"{kf:.2f}s/{km:.2f}s" if kf is not None and km is not None else "-",
                 f"{uf:.2f}/{um:.2f}" if uf is not None and um is not None else "-"))
widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
for row in [head] + rows:
    print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
PY
if jq -e 'select(.clean == false)' "$results" >/dev/null 2>&1; then
  echo "bayeux_compare.sh: some runs lost, duplicated or reordered messages" >&2
  failures=$((failures + 1))
fi
[[ $failures -eq 0 ]] || exit 1
