#!/usr/bin/env bash
# Manifold next to nats-server, under the same load, on this machine.
#
#   bench/compare.sh [--rounds N] [--scale F] [--only a,b,...] [--out DIR]
#
# Starts nats-server and `manifoldd --nats` on free loopback ports, runs every
# scenario below with `manifold bench` against nats-server, against
# Manifold's NATS front end and against Manifold's native protocol, in turn
# (the order rotates every round, so neither server always runs first on a
# busier machine), and prints the median of each and the ratio
# Manifold / nats-server, with each server's CPU time for the same work (from
# /proc/<pid>/stat). Every message of every run is checked; a run that lost,
# duplicated or reordered anything is marked and the script exits 1.
#
#   --rounds N   rounds of every scenario (default 5)
#   --scale F    multiply every message count (default 1; 0.2 for a quick look)
#   --only LIST  scenarios to run, e.g. pubsub16,reqrep,ping
#   --out DIR    where servers' logs and the raw results (results.jsonl) go
#                (default: a fresh directory under /tmp)
#
# Binaries: $MANIFOLDD and $MANIFOLD if set; otherwise Manifold is built
# optimised (-O2 -DNDEBUG) with CMake in $BUILD_DIR (default
# /tmp/manifold-compare-build). $MANIFOLDD_FLAGS adds flags to manifoldd (e.g.
# "--loop io_uring"). nats-server is installed from Debian when missing.
# The machine is shared and noisy: compare ratios within one run, and re-run
# when `uptime` shows a low load average.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds=5
scale=1
only=""
out=""
script=compare.sh
source "$repo/bench/lib.sh"
bench_parse_options "$@"

# name | manifold bench arguments | what is compared
scenarios=(
  "pubsub16|pubsub --size 16 --count 5000000|rate"
  "pubsub1k|pubsub --size 1024 --count 1500000|rate"
  "fanout8|fanout --subs 8 --size 16 --count 2000000|rate"
  "queue4|queue --subs 4 --size 16 --count 5000000|rate"
  "wildcard|wildcard --subs 2 --size 16 --count 4000000|rate"
  "reqrep|reqrep --size 16 --count 20000|p50"
  "ping|ping --count 20000|p50"
)


for tool in jq python3; do
  command -v "$tool" >/dev/null || die "$tool is needed (apt-get install $tool)"
done
bench_need_nats_server

bench_binaries /tmp/manifold-compare-build

[[ -n "$out" ]] || out="$(mktemp -d /tmp/manifold-compare.XXXXXX)"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"

nats_pid=""
manifold_pid=""
cleanup() { bench_stop "$nats_pid" || true; bench_stop "$manifold_pid" || true; }
trap cleanup EXIT

# nats-server picks a free port itself (-p -1) and logs it.
nats-server -a 127.0.0.1 -p -1 > "$out/nats-server.log" 2>&1 &
nats_pid=$!
wait_for "$out/nats-server.log" "Listening for client connections" ||
  die "nats-server did not start; see $out/nats-server.log"
nats_addr=$(sed -n 's/.*Listening for client connections on \([0-9.]*:[0-9]*\).*/\1/p' \
  "$out/nats-server.log" | head -1)

# manifoldd binds port 0 for both listeners and prints where it listens.
# shellcheck disable=SC2086
"$MANIFOLDD" --listen 127.0.0.1:0 --nats 127.0.0.1:0 --log_level warning \
  ${MANIFOLDD_FLAGS:-} > "$out/manifoldd.out" 2> "$out/manifoldd.log" &
manifold_pid=$!
wait_for "$out/manifoldd.out" "listening on" ||
  die "manifoldd did not start; see $out/manifoldd.log"
line=$(head -1 "$out/manifoldd.out")
manifold_nats=$(echo "$line" | grep -o '[0-9.]*:[0-9]* (nats)' | cut -d' ' -f1)
manifold_native=$(echo "$line" | grep -o '[0-9.]*:[0-9]* (tcp)' | cut -d' ' -f1)
[[ -n "$manifold_nats" && -n "$manifold_native" ]] ||
  die "cannot tell manifoldd's ports from: $line"


targets=("nats-server|$nats_addr|$nats_pid|--protocol nats"
         "manifold-nats|$manifold_nats|$manifold_pid|--protocol nats"
         "manifold-native|$manifold_native|$manifold_pid|--protocol native")

bench_header \
  "servers:   $(nats-server --version) on $nats_addr; manifoldd $(bench_manifold_version) nats $manifold_nats native $manifold_native ${MANIFOLDD_FLAGS:-}"

bench_rounds
python3 - "$results" <<'PY' | tee "$out/table.txt"
import json, statistics, sys

runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
order = ["pubsub16", "pubsub1k", "fanout8", "queue4", "wildcard", "reqrep", "ping"]
labels = {
    "pubsub16": "pub/sub 1x1, 16 B", "pubsub1k": "pub/sub 1x1, 1 KiB",
    "fanout8": "fan-out 1x8, 16 B", "queue4": "queue group 1x4, 16 B",
    "wildcard": "wildcard 1x2, 16 B", "reqrep": "request/reply", "ping": "ping",
}
bars = {"pubsub16": 1.5, "pubsub1k": 1.3, "fanout8": 1.5, "queue4": 1.5,
        "wildcard": 2.0}

def pick(name, target, key):
    values = [key(r) for r in runs if r["name"] == name and r["target"] == target]
    return statistics.median(values) if values else None

def unclean(name, target):
    return sum(1 for r in runs if r["name"] == name and r["target"] == target
               and not r["clean"])

def fmt(v, rate):
    if v is None:
        return "-"
    return f"{v:,.0f}" if rate else f"{v:.1f}"

rows = []
head = ("scenario", "measure", "nats-server", "manifold", "ratio", "bar",
        "native", "cpu nats", "cpu mfld", "cpu ratio")
for name in order:
    if not any(r["name"] == name for r in runs):
        continue
    rate = name not in ("reqrep", "ping")
    key = (lambda r: r["received_per_s"]) if rate else (lambda r: r["latency_us"]["p50"])
    n, m, native = (pick(name, t, key) for t in ("nats-server", "manifold-nats", "manifold-native"))
    cn, cm = (pick(name, t, lambda r: r["server_cpu_s"]) for t in ("nats-server", "manifold-nats"))
    ratio = m / n if n and m else None
    bar = ""
    if name in bars and ratio is not None:
        bar = f">={bars[name]}x " + ("ok" if ratio >= bars[name] else "MISSED")
    marks = "".join(f" [{t}: {unclean(name, t)} unclean runs]"
                    for t in ("nats-server", "manifold-nats", "manifold-native")
                    if unclean(name, t))
    rows.append((labels[name] + marks,
                 "recv msgs/s" if rate else "p50 us",
                 fmt(n, rate), fmt(m, rate),
                 f"{ratio:.2f}x" if ratio else "-", bar, fmt(native, rate),
                 f"{cn:.2f}s" if cn is not None else "-",
                 f"{cm:.2f}s" if cm is not None else "-",
                 f"{cm / cn:.2f}x" if cn and cm is not None else "-"))
widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
for r in [head] + rows:
    print("  ".join(str(c).rjust(w) if i > 1 else str(c).ljust(w)
                    for i, (c, w) in enumerate(zip(r, widths))))

rr = pick("reqrep", "manifold-nats", lambda r: r["latency_us"]["p50"])
pp = pick("ping", "manifold-nats", lambda r: r["latency_us"]["p50"])
if rr and pp:
    print(f"\nmanifold (nats) request/reply p50 / ping p50 = {rr / pp:.2f}"
          f" (bar <= 2.0: {'ok' if rr / pp <= 2.0 else 'MISSED'})")
rr = pick("reqrep", "nats-server", lambda r: r["latency_us"]["p50"])
pp = pick("ping", "nats-server", lambda r: r["latency_us"]["p50"])
if rr and pp:
    print(f"nats-server      request/reply p50 / ping p50 = {rr / pp:.2f}")
print("\nmedians of", max((r["round"] for r in runs), default=0),
      "rounds; cpu = server CPU seconds per run (same messages for both);"
      " ratio = manifold (NATS front end) / nats-server")
PY

if [[ $failures -gt 0 ]]; then
  echo "compare.sh: $failures runs failed or were not clean; see $results" >&2
  exit 1
fi
