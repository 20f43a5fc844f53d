#!/usr/bin/env bash
# A Manifold cluster next to a nats-server cluster, under the same load, on
# this machine.
#
#   bench/cluster_compare.sh [--rounds N] [--seconds S] [--only a,b,...] [--out DIR]
#
# Starts one redis-server and three `manifoldd --cluster redis://... --node
# nK` nodes on it, and three nats-server nodes joined by routes on loopback
# (each `-cluster nats://127.0.0.1:P -routes <the other two>`; the script
# waits until every node's /routez lists two routes). Then, in turn (the
# order rotates every round), runs `manifold bench` against the nats-server
# cluster, the Manifold cluster's NATS front ends and its native protocol,
# publishers always on node 1 and subscribers on the other nodes
# (`--sub_servers`):
#
#   pubsub16  pub/sub 1x1, 16 B, subscriber on node 2: messages/s
#   pubsub1k  pub/sub 1x1, 1 KiB, subscriber on node 2: messages/s
#   fanout64  1 publisher, 64 subscribers on nodes 1, 2, 3, 1, 2, ... (round
#             robin), 16 B: delivered messages/s
#   reqrep    request/reply across nodes, one request at a time, requester on
#             node 1, responder on node 2: round-trip p50/p99 (the load tool
#             times round trips only, not one-way pub/sub deliveries; a round
#             trip crosses the cluster twice). Over the native protocol
#             the responder is a native service (Serve) on node 2, reached
#             through the cluster's service registry.
#
# Each run sends for --seconds (or until its count is reached), after a 1 s
# --settle for the subscriptions to reach node 1. Prints the medians, the
# ratio Manifold (NATS front end) / nats-server, the CPU seconds of every
# server process per run (three nodes summed; Redis apart) and Redis's CPU
# per delivered message, from /proc/<pid>/stat before and after each run.
# Every message of every run is checked; a run that lost, duplicated or
# reordered anything is marked and the script exits 1.
#
#   --rounds N   rounds of every scenario (default 3)
#   --seconds S  how long each run sends (default 4)
#   --only LIST  scenarios to run, e.g. pubsub16,fanout64
#   --out DIR    where servers' logs and the raw results (results.jsonl) go
#                (default: a fresh directory under /tmp)
#
# Defaults take about 3 minutes on 2 CPUs. Binaries: $MANIFOLDD and
# $MANIFOLD if set; otherwise Manifold is built optimised (-O2 -DNDEBUG) with
# CMake in $BUILD_DIR (default /tmp/manifold-compare-build); manifoldd needs
# hiredis for --cluster. $MANIFOLDD_FLAGS adds flags to every node.
# redis-server and nats-server come from Debian (redis-server, nats-server).
# The machine is shared and noisy: compare ratios within one run.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds=3
scale=1  # printed by bench_header; runs are bounded by --seconds instead
seconds=4
only=""
out=""
script=cluster_compare.sh
source "$repo/bench/lib.sh"
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
bench_parse_options "${args[@]+"${args[@]}"}"
[[ "$scale" == 1 ]] || die "--scale does not apply here: runs last --seconds"
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -ge 1 ]] ||
  die "--seconds takes a whole number of seconds, at least 1"

# name | manifold bench arguments | subscribers' nodes | measure
# (The counts only bound a run on a fast machine; --seconds ends it first.)
scenarios=(
  "pubsub16|pubsub --size 16 --count 50000000|2|rate"
  "pubsub1k|pubsub --size 1024 --count 10000000|2|rate"
  "fanout64|fanout --subs 64 --size 16 --count 4000000|1,2,3|rate"
  "reqrep|reqrep --size 16 --count 1000000|2|p50"
)

for tool in jq python3 redis-server; do
  command -v "$tool" >/dev/null || die "$tool is needed (apt-get install $tool)"
done
bench_need_nats_server

bench_binaries /tmp/manifold-compare-build

[[ -n "$out" ]] || out="$(mktemp -d /tmp/manifold-cluster-compare.XXXXXX)"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]+"${pids[@]}"}"; do bench_stop "$pid" || true; done
}
trap cleanup EXIT

# Free loopback TCP ports, as many as asked (bound, read, released).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# port: the number of routes nats-server's monitoring port lists (0 while
# it does not answer).
nats_routes() {
  python3 - "$1" <<'PY'
import json, sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/routez", timeout=1) as r:
        print(json.load(r).get("num_routes", 0))
except Exception:
    print(0)
PY
}

read -r redis_port c1 c2 c3 r1 r2 r3 m1 m2 m3 <<< "$(free_ports 10)"

# Redis, without persistence.
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  > "$out/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
wait_for "$out/redis.log" "Ready to accept connections" ||
  die "redis-server did not start; see $out/redis.log"

# Three nats-server nodes; each routes to the other two.
client_ports=("$c1" "$c2" "$c3")
route_ports=("$r1" "$r2" "$r3")
monitor_ports=("$m1" "$m2" "$m3")
nats_pids=()
for k in 0 1 2; do
  routes=""
  for j in 0 1 2; do
    [[ $j -eq $k ]] && continue
    routes+="${routes:+,}nats://127.0.0.1:${route_ports[$j]}"
  done
  nats-server -a 127.0.0.1 -p "${client_ports[$k]}" -m "${monitor_ports[$k]}" \
    -n "n$((k + 1))" --cluster_name bench \
    -cluster "nats://127.0.0.1:${route_ports[$k]}" -routes "$routes" \
    > "$out/nats-n$((k + 1)).log" 2>&1 &
  nats_pids+=($!)
  pids+=($!)
done
for k in 0 1 2; do
  for _ in $(seq 100); do
    [[ "$(nats_routes "${monitor_ports[$k]}")" -ge 2 ]] && continue 2
    sleep 0.1
  done
  die "nats-server n$((k + 1)) has fewer than 2 routes after 10 s; see $out/nats-n$((k + 1)).log"
done

# Three manifoldd nodes on the Redis; each binds port 0 for both listeners
# and prints where it listens.
manifold_pids=()
manifold_nats=()
manifold_native=()
for k in 1 2 3; do
  # shellcheck disable=SC2086
  "$MANIFOLDD" --listen 127.0.0.1:0 --nats 127.0.0.1:0 --log_level warning \
    --cluster "redis://127.0.0.1:$redis_port" --node "n$k" \
    ${MANIFOLDD_FLAGS:-} > "$out/manifoldd-n$k.out" 2> "$out/manifoldd-n$k.log" &
  manifold_pids+=($!)
  pids+=($!)
  wait_for "$out/manifoldd-n$k.out" "listening on" ||
    die "manifoldd n$k did not start; see $out/manifoldd-n$k.log"
  wait_for "$out/manifoldd-n$k.log" "cluster: joined" ||
    die "manifoldd n$k did not join the cluster; see $out/manifoldd-n$k.log"
  line=$(head -1 "$out/manifoldd-n$k.out")
  manifold_nats+=("$(echo "$line" | grep -o '[0-9.]*:[0-9]* (nats)' | cut -d' ' -f1)")
  manifold_native+=("$(echo "$line" | grep -o '[0-9.]*:[0-9]* (tcp)' | cut -d' ' -f1)")
  [[ -n "${manifold_nats[-1]}" && -n "${manifold_native[-1]}" ]] ||
    die "cannot tell manifoldd n$k's ports from: $line"
done

nats_addrs=("127.0.0.1:$c1" "127.0.0.1:$c2" "127.0.0.1:$c3")
# name | node addresses | server pids | protocol
targets=(
  "nats-server|${nats_addrs[*]}|${nats_pids[*]}|nats"
  "manifold-nats|${manifold_nats[*]}|${manifold_pids[*]}|nats"
  "manifold-native|${manifold_native[*]}|${manifold_pids[*]}|native"
)

bench_header \
  "servers:   $(nats-server --version) x3 on ${nats_addrs[*]} (routes ${route_ports[*]})" \
  "           manifoldd $(bench_manifold_version) x3 nats ${manifold_nats[*]} native ${manifold_native[*]} ${MANIFOLDD_FLAGS:-}" \
  "           $(redis-server --version | cut -d' ' -f1-3) on 127.0.0.1:$redis_port" \
  "runs:      --seconds $seconds each, --settle 1s"

# pids... -> their CPU seconds summed.
cpu_sum() {
  local pid total=0
  for pid in "$@"; do
    total=$(awk -v a="$total" -v b="$(bench_cpu_seconds "$pid")" 'BEGIN { printf "%.3f", a + b }')
  done
  echo "$total"
}

failures=0
for ((round = 1; round <= rounds; round++)); do
  for entry in "${scenarios[@]}"; do
    IFS='|' read -r name bench_args sub_nodes _ <<< "$entry"
    if [[ -n "$only" && ",$only," != *",$name,"* ]]; then continue; fi
    for ((k = 0; k < ${#targets[@]}; k++)); do
      IFS='|' read -r target addresses server_pids protocol \
        <<< "${targets[$(((k + round) % ${#targets[@]}))]}"
      read -r -a node <<< "$addresses"
      read -r -a spids <<< "$server_pids"
      subs=""
      for n in ${sub_nodes//,/ }; do subs+="${subs:+,}${node[$((n - 1))]}"; done
      before=$(cpu_sum "${spids[@]}")
      redis_before=$(bench_cpu_seconds "$redis_pid")
      set +e
      # shellcheck disable=SC2086
      json=$("$MANIFOLD" --server "${node[0]}" --json bench $bench_args \
        --protocol "$protocol" --sub_servers "$subs" --settle 1s \
        --duration "${seconds}s" 2> "$out/last-run.err")
      status=$?
      set -e
      after=$(cpu_sum "${spids[@]}")
      redis_after=$(bench_cpu_seconds "$redis_pid")
      for pid in "${spids[@]}" "$redis_pid"; do
        bench_running "$pid" || die "a server of $target exited; see $out"
      done
      if [[ -z "$json" ]]; then
        echo "$script: $target $name failed: $(tail -1 "$out/last-run.err")" >&2
        failures=$((failures + 1))
        continue
      fi
      [[ $status -eq 0 ]] || failures=$((failures + 1))
      redis_cpu=0
      [[ "$target" == nats-server ]] ||
        redis_cpu=$(awk -v a="$redis_before" -v b="$redis_after" 'BEGIN { printf "%.3f", b - a }')
      echo "$json" | jq -c --arg target "$target" --arg name "$name" \
        --argjson round "$round" \
        --argjson cpu "$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.3f", b - a }')" \
        --argjson redis "$redis_cpu" \
        '. + {target: $target, name: $name, round: $round, server_cpu_s: $cpu, redis_cpu_s: $redis}' \
        >> "$results"
    done
  done
  echo "round $round of $rounds done ($(bench_load))" >&2
done
echo "load:      $(bench_load) (at the end)" | tee -a "$out/header.txt"

python3 - "$results" <<'PY' | tee "$out/table.txt"
import json, statistics, sys

runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
order = ["pubsub16", "pubsub1k", "fanout64", "reqrep"]
labels = {
    "pubsub16": "pub/sub 1x1 across nodes, 16 B",
    "pubsub1k": "pub/sub 1x1 across nodes, 1 KiB",
    "fanout64": "fan-out 1x64 over 3 nodes, 16 B",
    "reqrep": "request/reply across nodes",
}
targets = ("nats-server", "manifold-nats", "manifold-native")

def pick(name, target, key):
    values = [key(r) for r in runs if r["name"] == name and r["target"] == target]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

def unclean(name, target):
    return sum(1 for r in runs if r["name"] == name and r["target"] == target
               and not r["clean"])

def per_msg_us(field):
    # CPU microseconds per delivered message (per answered request).
    return lambda r: (r[field] * 1e6 / r["received"]) if r["received"] else None

def fmt(v, rate):
    if v is None:
        return "-"
    return f"{v:,.0f}" if rate else f"{v:.1f}"

def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"

head = ("scenario", "measure", "nats-server", "manifold", "ratio", "native",
        "ratio", "cpu nats", "cpu mfld", "redis cpu", "redis us/msg")
rows = []
for name in order:
    if not any(r["name"] == name for r in runs):
        continue
    measures = ([("recv msgs/s", lambda r: r["received_per_s"], True)]
                if name != "reqrep" else
                [("p50 us", lambda r: r["latency_us"]["p50"], False),
                 ("p99 us", lambda r: r["latency_us"]["p99"], False)])
    marks = "".join(f" [{t}: {unclean(name, t)} unclean]" for t in targets
                    if unclean(name, t))
    for i, (measure, key, rate) in enumerate(measures):
        n, m, native = (pick(name, t, key) for t in targets)
        cn, cm = (pick(name, t, lambda r: r["server_cpu_s"])
                  for t in ("nats-server", "manifold-nats"))
        rc = pick(name, "manifold-nats", lambda r: r["redis_cpu_s"])
        rpm = pick(name, "manifold-nats", per_msg_us("redis_cpu_s"))
        first = i == 0
        rows.append(((labels[name] + marks) if first else "", measure,
                     fmt(n, rate), fmt(m, rate), ratio(m, n), fmt(native, rate),
                     ratio(native, n),
                     f"{cn:.2f}s" if first and cn is not None else "",
                     f"{cm:.2f}s" if first and cm is not None else "",
                     f"{rc:.2f}s" if first and rc is not None else "",
                     f"{rpm:.2f}" if first and rpm is not None else ""))
widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
for r in [head] + rows:
    print("  ".join(str(c).rjust(w) if i > 1 else str(c).ljust(w)
                    for i, (c, w) in enumerate(zip(r, widths))))

print("\nserver CPU per delivered message (us; three nodes summed, Redis apart):")
for name in order:
    vals = [pick(name, t, per_msg_us("server_cpu_s")) for t in targets]
    if any(v is not None for v in vals):
        print(f"  {name:9} " + "  ".join(
            f"{t} {v:.2f}" if v is not None else f"{t} -"
            for t, v in zip(targets, vals)))
rn = [pick(name, "manifold-native", per_msg_us("redis_cpu_s")) for name in order]
print("redis CPU per delivered message, native protocol (us): " + ", ".join(
    f"{name} {v:.2f}" for name, v in zip(order, rn) if v is not None))
print("\nmedians of", max((r["round"] for r in runs), default=0),
      "rounds; ratio = Manifold / nats-server (msgs/s: higher is better for"
      " Manifold; latency: lower); cpu = CPU seconds of the three nodes per"
      " run (Manifold's NATS front end); redis = redis-server's")
PY

if [[ $failures -gt 0 ]]; then
  echo "$script: $failures runs failed or were not clean; see $results" >&2
  exit 1
fi
