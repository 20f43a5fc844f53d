#!/usr/bin/env bash
# Durable streams: Manifold next to nats-server's JetStream, under the same
# load, on this machine.
#
#   bench/streams_compare.sh [--rounds N] [--scale F] [--only a,b,...] [--out DIR]
#
# Starts `nats-server -js -sd DIR` and creates a file stream BENCH on
# "bench.>" through its JetStream API (a raw NATS request, written by the
# small Python helper below), and starts `manifoldd --config FILE` with a
# data directory and a stream BENCH on "bench/**" (the same subjects), its
# storage on disk and its sync policy `always` (the default: every batch is
# synced before its acks go out). Then, in turn (the order rotates every
# round), runs `manifold bench durable` against nats-server, Manifold's NATS
# front end and Manifold's native protocol: one publisher keeping up to 4000
# publishes waiting for their durable acknowledgement (a JetStream PubAck on
# a reply inbox for NATS, Ack for native), every ack checked and timed.
# Prints the medians of acks/s and ack latency p50/p99, the ratio Manifold
# (NATS) / nats-server against the 2x bar, and each server's CPU time.
#
# Then (pull, push): fills a fresh stream on each server with $PULL_COUNT
# (default 200,000) 16-byte messages through its NATS port, and reads them
# all `rounds` times through a new durable JetStream consumer with nats.js
# (bench/jetstream_read.mjs, ack each: pull, js.fetch() of 1000 at a time;
# push, js.subscribe() with max_ack_pending 1000), the same client for
# both; prints the medians of messages/s and the ratio.
#
# Then, Manifold only: fills a fresh data directory with $REPLAY_COUNT
# (default 1,000,000) 16-byte messages, replays them all to one native
# subscriber (Subscribe.replay from sequence 1) `rounds` times, restarts
# manifoldd `rounds` times reading its "N streams with M messages recovered
# from DIR in T" line, and replays once more after the last restart.
#
#   --rounds N   rounds of every scenario (default 3)
#   --scale F    multiply every message count (default 1; 0.2 for a quick look)
#   --only LIST  scenarios to run: durable16, durable1k, ack16 (one publish
#                at a time: the latency of one durable ack), pull, push,
#                replay
#   --out DIR    where servers' data, logs and the raw results go
#                (results.jsonl, replay.jsonl; default: a fresh directory
#                under /tmp)
#
# nats-server 2.9 has no setting to sync each write (sync_interval came in
# 2.10): it acknowledges once the message is written to the operating
# system and syncs in the background, an `interval` policy. With
# DURABLE_INTERVAL=1 the script also runs a second manifoldd with
# `stream_sync: INTERVAL` (target manifold-nats-interval), the like for like.
#
# With PER_TOPIC=N both streams keep at most N messages per subject
# (nats-server's max_msgs_per_subject, Manifold's max_msgs_per_topic). The
# durable loads publish to one subject, so with N=1 each message replaces
# the one before: a last-value stream at its busiest. (Leave `replay` out
# of --only then: its stream would hold one message.)
#
# Binaries: $MANIFOLDD and $MANIFOLD if set; otherwise Manifold is built
# optimised (-O2 -DNDEBUG) with CMake in $BUILD_DIR (default
# /tmp/manifold-compare-build). nats-server is installed from Debian when
# missing. The machine is shared and noisy, and disks differ more than CPUs:
# compare ratios within one run.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds=3
scale=1
only=""
out=""
script=streams_compare.sh
source "$repo/bench/lib.sh"
bench_parse_options "$@"
replay_count="${REPLAY_COUNT:-1000000}"

# name | manifold bench arguments | what is compared
scenarios=(
  "durable16|durable --size 16 --count 300000 --duration 60s|rate"
  "durable1k|durable --size 1024 --count 150000 --duration 60s|rate"
  "ack16|durable --size 16 --count 2000 --window 1 --duration 60s|p50"
)

for tool in jq python3; do
  command -v "$tool" >/dev/null || die "$tool is needed (apt-get install $tool)"
done
bench_need_nats_server

bench_binaries /tmp/manifold-compare-build

[[ -n "$out" ]] || out="$(mktemp -d /tmp/manifold-streams-compare.XXXXXX)"
mkdir -p "$out"
results="$out/results.jsonl"
replays="$out/replay.jsonl"
: > "$results"
: > "$replays"

# address name subjects: creates a file stream on nats-server with a
# JetStream API request ($JS.API.STREAM.CREATE.<name>), as `nats stream add`
# does; dies with the server's answer when it is refused.
js_create_stream() {
  python3 - "$@" <<'PY' || die "could not create the JetStream stream"
import json, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
name, subject = sys.argv[2], sys.argv[3]
per_subject = int(sys.argv[4]) if len(sys.argv) > 4 else 0
stream = {"name": name, "subjects": [subject], "storage": "file",
          "retention": "limits", "discard": "old", "num_replicas": 1}
if per_subject > 0:
    stream["max_msgs_per_subject"] = per_subject
config = json.dumps(stream).encode()
s = socket.create_connection((host, int(port)), timeout=10)
f = s.makefile("rb")
if not f.readline().startswith(b"INFO "):
    sys.exit("not a NATS server")
api = f"$JS.API.STREAM.CREATE.{name}"
s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":false}\r\n'
          b"SUB _INBOX.streamcreate 1\r\n" +
          f"PUB {api} _INBOX.streamcreate {len(config)}\r\n".encode() +
          config + b"\r\n")
while True:
    line = f.readline()
    if not line:
        sys.exit("the server closed the connection")
    if line.startswith(b"PING"):
        s.sendall(b"PONG\r\n")
    elif line.startswith(b"-ERR"):
        sys.exit(line.decode().strip())
    elif line.startswith(b"MSG "):
        size = int(line.split()[-1])
        reply = json.loads(f.read(size + 2)[:size])
        if "error" in reply:
            sys.exit(f"{api}: {reply['error'].get('description', reply['error'])}")
        c = reply["config"]
        print(f"nats-server stream {c['name']} on {c['subjects']}, "
              f"{c['storage']} storage")
        break
PY
}

# name: starts `nats-server -js` with its store in $out/<name>-js and its
# log in $out/<name>-server.log, on a free port it picks itself (-p -1) and
# logs; sets nats_pid and nats_addr.
start_nats_js() {
  local name="$1"
  nats-server -js -sd "$out/$name-js" -a 127.0.0.1 -p -1 \
    > "$out/$name-server.log" 2>&1 &
  nats_pid=$!
  wait_for "$out/$name-server.log" "Listening for client connections" ||
    die "nats-server did not start; see $out/$name-server.log"
  nats_addr=$(sed -n 's/.*Listening for client connections on \([0-9.]*:[0-9]*\).*/\1/p' \
    "$out/$name-server.log" | head -1)
}

# name data_dir [config lines...]: writes $out/<name>.textpb, a manifoldd
# configuration with a data directory and the stream BENCH on bench/**.
manifold_config() {
  local name="$1" dir="$2"
  shift 2
  {
    echo "data_dir: \"$dir\""
    echo "streams { name: \"BENCH\" topics: \"bench/**\" max_msgs_per_topic: ${PER_TOPIC:-0} }"
    local line
    for line in "$@"; do echo "$line"; done
  } > "$out/$name.textpb"
}

# name: starts manifoldd with $out/<name>.textpb on free ports; sets
# started_pid, started_nats and started_native, and started_ms: the
# milliseconds from its start to its "listening" line (within 10 ms).
start_manifoldd() {
  local name="$1" line start_ns
  start_ns=$(date +%s%N)
  # shellcheck disable=SC2086
  "$MANIFOLDD" --config "$out/$name.textpb" --listen 127.0.0.1:0 \
    --nats 127.0.0.1:0 --log_level warning ${MANIFOLDD_FLAGS:-} \
    >> "$out/$name.out" 2>> "$out/$name.log" &
  started_pid=$!
  local seen_before
  seen_before=$(grep -c "listening on" "$out/$name.out" 2>/dev/null || true)
  for _ in $(seq 6000); do  # recovery may take a while: up to 60 s
    [[ $(grep -c "listening on" "$out/$name.out" 2>/dev/null || true) -gt ${seen_before:-0} ]] && break
    bench_running "$started_pid" || break
    sleep 0.01
  done
  started_ms=$((($(date +%s%N) - start_ns) / 1000000))
  bench_running "$started_pid" || die "manifoldd exited; see $out/$name.log"
  line=$(grep "listening on" "$out/$name.out" | tail -1)
  [[ -n "$line" ]] || die "manifoldd did not start; see $out/$name.log"
  started_nats=$(echo "$line" | grep -o '[0-9.]*:[0-9]* (nats)' | cut -d' ' -f1)
  started_native=$(echo "$line" | grep -o '[0-9.]*:[0-9]* (tcp)' | cut -d' ' -f1)
  [[ -n "$started_nats" && -n "$started_native" ]] ||
    die "cannot tell manifoldd's ports from: $line"
}

nats_pid=""
manifold_pid=""
interval_pid=""
replay_pid=""
cleanup() {
  bench_stop "$nats_pid" || true
  bench_stop "$manifold_pid" || true
  bench_stop "$interval_pid" || true
  bench_stop "$replay_pid" || true
}
trap cleanup EXIT

wants() { [[ -z "$only" || ",$only," == *",$1,"* ]]; }

if wants durable16 || wants durable1k || wants ack16; then
  start_nats_js nats
  js_create_stream "$nats_addr" BENCH 'bench.>' "${PER_TOPIC:-0}"

  manifold_config manifoldd "$out/manifold-data"
  start_manifoldd manifoldd
  manifold_pid=$started_pid
  targets=("nats-server|$nats_addr|$nats_pid|--protocol nats"
           "manifold-nats|$started_nats|$manifold_pid|--protocol nats"
           "manifold-native|$started_native|$manifold_pid|--protocol native")
  servers="servers:   $(nats-server --version) -js (file stream BENCH on bench.>, max_msgs_per_subject ${PER_TOPIC:-0}) on $nats_addr; manifoldd $(bench_manifold_version) stream BENCH on bench/** (file, sync always, max_msgs_per_topic ${PER_TOPIC:-0}), nats $started_nats native $started_native ${MANIFOLDD_FLAGS:-}"
  if [[ "${DURABLE_INTERVAL:-0}" == 1 ]]; then
    manifold_config manifoldd-interval "$out/manifold-data-interval" \
      'broker { stream_sync: INTERVAL }'
    start_manifoldd manifoldd-interval
    interval_pid=$started_pid
    targets+=("manifold-nats-interval|$started_nats|$interval_pid|--protocol nats")
    servers="$servers; manifoldd sync interval (1 s), nats $started_nats"
  fi
  bench_header "$servers" \
    "disk:      $(df -h "$out" | awk 'NR == 2 {print $1 " (" $2 ")"}') under $out"

  bench_rounds
  python3 - "$results" <<'PY' | tee "$out/table.txt"
import json, statistics, sys

runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
order = ["durable16", "durable1k", "ack16"]
labels = {"durable16": "durable 1x1, 16 B", "durable1k": "durable 1x1, 1 KiB",
          "ack16": "one at a time, 16 B"}
bar = 2.0
targets = ["nats-server", "manifold-nats", "manifold-native",
           "manifold-nats-interval"]

def pick(name, target, key):
    values = [key(r) for r in runs if r["name"] == name and r["target"] == target
              and r.get("latency_us")]
    return statistics.median(values) if values else None

def unclean(name, target):
    return sum(1 for r in runs if r["name"] == name and r["target"] == target
               and not r["clean"])

rows = []
head = ("scenario", "target", "acks/s", "p50", "p99", "cpu/run", "vs nats-server")
for name in order:
    base = pick(name, "nats-server", lambda r: r["received_per_s"])
    for t in targets:
        rate = pick(name, t, lambda r: r["received_per_s"])
        if rate is None:
            continue
        p50 = pick(name, t, lambda r: r["latency_us"]["p50"])
        p99 = pick(name, t, lambda r: r["latency_us"]["p99"])
        cpu = pick(name, t, lambda r: r["server_cpu_s"])
        ratio = ""
        if t != "nats-server" and base:
            ratio = f"{rate / base:.2f}x"
            if t == "manifold-nats" and name != "ack16":
                ratio += f" (bar >={bar}x " + ("ok)" if rate / base >= bar else "MISSED)")
        mark = f" [{unclean(name, t)} unclean]" if unclean(name, t) else ""
        rows.append((labels[name], t + mark, f"{rate:,.0f}", f"{p50 / 1000:.2f}ms",
                     f"{p99 / 1000:.2f}ms", f"{cpu:.2f}s", ratio))
widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
for r in [head] + rows:
    print("  ".join(str(c).rjust(w) if 1 < i < 6 else str(c).ljust(w)
                    for i, (c, w) in enumerate(zip(r, widths))))
print("\nmedians of", max((r["round"] for r in runs), default=0),
      "rounds; one publisher, up to 4000 publishes awaiting their durable ack"
      " (one at a time for 'one at a time');"
      " p50/p99 = publish-to-ack latency; cpu = server CPU seconds per run"
      " (same messages for each)")
PY
  bench_stop "$nats_pid" || true; nats_pid=""
  bench_stop "$manifold_pid" || true; manifold_pid=""
  bench_stop "$interval_pid" || true; interval_pid=""
fi

if wants pull || wants push; then
  command -v node >/dev/null || die "node is needed for pull and push (apt-get install nodejs)"
  pulls="$out/pull.jsonl"
  : > "$pulls"
  n=$(awk -v c="${PULL_COUNT:-200000}" -v s="$scale" 'BEGIN { n = int(c * s); print (n < 1000 ? 1000 : n) }')
  rm -rf "$out/pull-nats-js" "$out/pull-data"
  start_nats_js pull-nats
  js_create_stream "$nats_addr" BENCH 'bench.>'
  manifold_config pull "$out/pull-data"
  start_manifoldd pull
  manifold_pid=$started_pid
  pull_targets=("nats-server|$nats_addr|$nats_pid" "manifold-nats|$started_nats|$manifold_pid")
  for entry in "${pull_targets[@]}"; do
    IFS='|' read -r target address _ <<< "$entry"
    echo "pull: filling $target with $n messages of 16 B ($(bench_load))" >&2
    "$MANIFOLD" --server "$address" --json bench durable --protocol nats \
      --size 16 --count "$n" --duration 3600s > /dev/null 2> "$out/last-run.err" ||
      die "filling $target failed: $(tail -1 "$out/last-run.err")"
  done
  failures=${failures:-0}
  modes=()
  wants pull && modes+=(pull)
  wants push && modes+=(push)
  for mode in "${modes[@]}"; do
    for ((round = 1; round <= rounds; round++)); do
      for ((k = 0; k < ${#pull_targets[@]}; k++)); do
        IFS='|' read -r target address pid \
          <<< "${pull_targets[$(((k + round) % ${#pull_targets[@]}))]}"
        before=$(bench_cpu_seconds "$pid")
        json=$(node "$repo/bench/jetstream_read.mjs" "$mode" "$address" BENCH "$n" \
          2> "$out/last-run.err") ||
          echo "$script: $mode from $target failed: $(tail -1 "$out/last-run.err")" >&2
        after=$(bench_cpu_seconds "$pid")
        [[ -n "$json" ]] || { failures=$((failures + 1)); continue; }
        echo "$json" | jq -c --arg target "$target" --argjson round "$round" \
          --argjson cpu "$(awk -v a="$before" -v b="$after" 'BEGIN{printf "%.3f", b - a}')" \
          '. + {target: $target, round: $round, server_cpu_s: $cpu}' >> "$pulls"
      done
    done
  done
  bench_stop "$nats_pid" || true; nats_pid=""
  bench_stop "$manifold_pid" || true; manifold_pid=""
  echo "load:      $(bench_load) (after the pulls)" | tee -a "$out/header.txt"
  python3 - "$pulls" <<'PY' | tee "$out/pull-table.txt"
import json, statistics, sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
how = {"pull": "pull consumer (nats.js fetch 1000, ack each)",
       "push": "push consumer (nats.js subscribe, max_ack_pending 1000, ack each)"}
for mode in ("pull", "push"):
    rates = {}
    for t in ("nats-server", "manifold-nats"):
        mine = [r for r in rows if r["target"] == t and r["mode"] == mode]
        if not mine:
            continue
        rate = statistics.median(r["received_per_s"] for r in mine)
        cpu = statistics.median(r["server_cpu_s"] for r in mine)
        bad = sum(1 for r in mine if not r["clean"])
        rates[t] = rate
        ratio = (f"  {rate / rates['nats-server']:.2f}x nats-server"
                 if t != "nats-server" and "nats-server" in rates else "")
        print(f"{mode}     {t:14} {mine[0]['received']:,} stored messages through a durable "
              f"{how[mode]}: {rate:,.0f} msgs/s, "
              f"server CPU {cpu:.2f}s (median of {len(mine)}){ratio}"
              + (f"  [{bad} unclean]" if bad else ""))
PY
  if grep -q '"clean":false' "$pulls"; then failures=$((failures + 1)); fi
fi

if wants replay; then
  n=$(awk -v c="$replay_count" -v s="$scale" 'BEGIN { n = int(c * s); print (n < 1000 ? 1000 : n) }')
  echo "replay: filling a fresh stream with $n messages of 16 B ($(bench_load))" >&2
  rm -rf "$out/replay-data"
  manifold_config replay "$out/replay-data"
  start_manifoldd replay
  replay_pid=$started_pid
  # One native durable publisher: every message acked, so all are stored.
  "$MANIFOLD" --server "$started_native" --json bench durable --size 16 \
    --count "$n" --duration 3600s 2> "$out/last-run.err" |
    jq -c '. + {phase: "fill"}' >> "$replays" ||
    die "filling the stream failed: $(tail -1 "$out/last-run.err")"
  # replay [phase]: one replay of all n messages, appended to replay.jsonl.
  replay() {
    local before after json
    before=$(bench_cpu_seconds "$replay_pid")
    json=$("$MANIFOLD" --server "$started_native" --json bench replay \
      --count "$n" --timeout 30s 2> "$out/last-run.err") ||
      echo "$script: replay failed: $(tail -1 "$out/last-run.err")" >&2
    after=$(bench_cpu_seconds "$replay_pid")
    [[ -n "$json" ]] || { failures=$((failures + 1)); return 0; }
    echo "$json" | jq -c --arg phase "$1" \
      --argjson cpu "$(awk -v a="$before" -v b="$after" 'BEGIN{printf "%.3f", b - a}')" \
      '. + {phase: $phase, server_cpu_s: $cpu}' >> "$replays"
  }
  failures=${failures:-0}
  for ((round = 1; round <= rounds; round++)); do replay replay; done
  for ((round = 1; round <= rounds; round++)); do
    bench_stop "$replay_pid" || true
    start_manifoldd replay
    replay_pid=$started_pid
    # manifoldd says how long recovery took on stderr (replay.log).
    grep -h "recovered from" "$out/replay.out" "$out/replay.log" | tail -1 |
      jq -R -c --argjson ms "$started_ms" \
        '{phase: "restart", line: ., listening_ms: $ms}' >> "$replays"
  done
  replay after-restart
  bench_stop "$replay_pid" || true; replay_pid=""
  echo "load:      $(bench_load) (after the replays)" | tee -a "$out/header.txt"
  python3 - "$replays" <<'PY' | tee "$out/replay-table.txt"
import json, re, statistics, sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
def seconds(text):
    value = 0.0
    for number, unit in re.findall(r"([0-9.]+)(ms|us|s|m|h)", text):
        value += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[unit]
    return value
fill = [r for r in rows if r["phase"] == "fill"]
replays = [r for r in rows if r["phase"] == "replay"]
after = [r for r in rows if r["phase"] == "after-restart"]
restarts = [r for r in rows if r["phase"] == "restart"]
if fill:
    f = fill[0]
    print(f"fill     {f['received']:,} messages of 16 B acked at "
          f"{f['received_per_s']:,.0f}/s (native, sync always), "
          f"p50 {f['latency_us']['p50'] / 1000:.2f}ms p99 {f['latency_us']['p99'] / 1000:.2f}ms"
          + ("" if f["clean"] else "  NOT CLEAN"))
if replays:
    rate = statistics.median(r["received_per_s"] for r in replays)
    cpu = statistics.median(r["server_cpu_s"] for r in replays)
    bad = sum(1 for r in replays if not r["clean"])
    print(f"replay   {replays[0]['received']:,} stored messages to one subscriber: "
          f"{rate:,.0f} msgs/s (median of {len(replays)}), server CPU {cpu:.2f}s"
          + (f"  [{bad} unclean]" if bad else ""))
for r in after:
    print(f"replay   after the last restart: {r['received_per_s']:,.0f} msgs/s"
          + ("" if r["clean"] else "  NOT CLEAN"))
if restarts:
    times = [seconds(r["line"].rsplit(" in ", 1)[1]) for r in restarts]
    print(f"restart  {statistics.median(times) * 1000:,.0f} ms to recover "
          f"(median of {len(times)}; each: "
          + ", ".join(f"{t * 1000:,.0f} ms" for t in times) + ")")
    listening = [r["listening_ms"] for r in restarts]
    print(f"         {statistics.median(listening):,.0f} ms from exec to listening "
          f"(median; each: " + ", ".join(f"{t:,} ms" for t in listening) + ")")
    print(f"         {restarts[-1]['line']}")
PY
fi

if [[ ${failures:-0} -gt 0 ]]; then
  echo "$script: $failures runs failed or were not clean; see $out" >&2
  exit 1
fi
