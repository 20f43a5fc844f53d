#!/usr/bin/env bash
# Manifold next to nats-server, both with TLS, under the same load.
#
#   bench/tls_compare.sh [--rounds N] [--scale F] [--only a,b,...] [--out DIR]
#
# Makes a throw-away CA and a server certificate (P-256, for 127.0.0.1 and
# localhost) with `openssl` in the output directory, starts nats-server with
# TLS (--tls --tlscert --tlskey) and `manifoldd --tls_cert --tls_key` (TLS on
# its native and NATS listeners) on free loopback ports, and runs every
# scenario below with `manifold bench --tls --tls_ca ca.pem` against
# nats-server, Manifold's NATS front end and Manifold's native protocol, in
# turn (the order rotates every round). NATS clients read INFO in clear and
# then start TLS, as nats.go and nats.js do. Prints the median of each, the
# ratio Manifold (NATS) / nats-server against the bar, and each server's CPU
# time for the same work. Every message of every run is checked; a run that
# failed, lost, duplicated or reordered anything is marked and the script
# exits 1.
#
#   --rounds N   rounds of every scenario (default 5)
#   --scale F    multiply every message count (default 1; 0.2 for a quick look)
#   --only LIST  scenarios to run, e.g. pubsub16,fanout8
#   --out DIR    where certificates, servers' logs and the raw results
#                (results.jsonl) go (default: a fresh directory under /tmp)
#
# Binaries: $MANIFOLDD and $MANIFOLD if set; otherwise Manifold is built
# optimised (-O2 -DNDEBUG) with CMake in $BUILD_DIR (default
# /tmp/manifold-compare-build). $MANIFOLDD_FLAGS adds flags to manifoldd.
# The machine is shared and noisy: compare ratios within one run.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds=5
scale=1
only=""
out=""
script=tls_compare.sh
source "$repo/bench/lib.sh"
bench_parse_options "$@"

# name | manifold bench arguments | what is compared
scenarios=(
  "pubsub16|pubsub --size 16 --count 5000000|rate"
  "pubsub1k|pubsub --size 1024 --count 1500000|rate"
  "fanout8|fanout --subs 8 --size 16 --count 2000000|rate"
)

for tool in jq python3 openssl; do
  command -v "$tool" >/dev/null || die "$tool is needed (apt-get install $tool)"
done
bench_need_nats_server

bench_binaries /tmp/manifold-compare-build

[[ -n "$out" ]] || out="$(mktemp -d /tmp/manifold-tls-compare.XXXXXX)"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"

# A throw-away CA and a server certificate for localhost it signed.
"$repo/examples/tcp_broker/make-test-certs.sh" "$out" > "$out/openssl.log" ||
  die "could not make the certificates; see above"

nats_pid=""
manifold_pid=""
cleanup() { bench_stop "$nats_pid" || true; bench_stop "$manifold_pid" || true; }
trap cleanup EXIT

# nats-server picks a free port itself (-p -1) and logs it.
nats-server -a 127.0.0.1 -p -1 --tls --tlscert "$out/server.pem" \
  --tlskey "$out/server.key" > "$out/nats-server.log" 2>&1 &
nats_pid=$!
wait_for "$out/nats-server.log" "Listening for client connections" ||
  die "nats-server did not start; see $out/nats-server.log"
nats_addr=$(sed -n 's/.*Listening for client connections on \([0-9.]*:[0-9]*\).*/\1/p' \
  "$out/nats-server.log" | head -1)

# manifoldd binds port 0 for both listeners and prints where it listens;
# --tls_cert turns TLS on for every listener.
# shellcheck disable=SC2086
"$MANIFOLDD" --listen 127.0.0.1:0 --nats 127.0.0.1:0 \
  --tls_cert "$out/server.pem" --tls_key "$out/server.key" \
  --log_level warning ${MANIFOLDD_FLAGS:-} \
  > "$out/manifoldd.out" 2> "$out/manifoldd.log" &
manifold_pid=$!
wait_for "$out/manifoldd.out" "listening on" ||
  die "manifoldd did not start; see $out/manifoldd.log"
line=$(head -1 "$out/manifoldd.out")
manifold_nats=$(echo "$line" | grep -o '[0-9.]*:[0-9]* (nats)' | cut -d' ' -f1)
manifold_native=$(echo "$line" | grep -o '[0-9.]*:[0-9]* (tcp)' | cut -d' ' -f1)
[[ -n "$manifold_nats" && -n "$manifold_native" ]] ||
  die "cannot tell manifoldd's ports from: $line"

tls="--tls --tls_ca $out/ca.pem"
targets=("nats-server|$nats_addr|$nats_pid|--protocol nats $tls"
         "manifold-nats|$manifold_nats|$manifold_pid|--protocol nats $tls"
         "manifold-native|$manifold_native|$manifold_pid|--protocol native $tls")

bench_header \
  "servers:   $(nats-server --version) --tls on $nats_addr; manifoldd $(bench_manifold_version) --tls_cert, nats $manifold_nats native $manifold_native ${MANIFOLDD_FLAGS:-}" \
  "tls:       $(openssl version | cut -d' ' -f1-2), P-256 server certificate; TLS 1.3 unless a side refuses it"

bench_rounds
python3 - "$results" <<'PY' | tee "$out/table.txt"
import json, statistics, sys

runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
order = ["pubsub16", "pubsub1k", "fanout8"]
labels = {
    "pubsub16": "TLS pub/sub 1x1, 16 B", "pubsub1k": "TLS pub/sub 1x1, 1 KiB",
    "fanout8": "TLS fan-out 1x8, 16 B",
}
bars = {"pubsub16": 1.5, "pubsub1k": 1.5, "fanout8": 1.5}

def pick(name, target, key):
    values = [key(r) for r in runs if r["name"] == name and r["target"] == target]
    return statistics.median(values) if values else None

def unclean(name, target):
    return sum(1 for r in runs if r["name"] == name and r["target"] == target
               and not r["clean"])

def fmt(v):
    return "-" if v is None else f"{v:,.0f}"

rows = []
head = ("scenario", "measure", "nats-server", "manifold", "ratio", "bar",
        "native", "cpu nats", "cpu mfld", "cpu ratio")
for name in order:
    if not any(r["name"] == name for r in runs):
        continue
    key = lambda r: r["received_per_s"]
    n, m, native = (pick(name, t, key) for t in ("nats-server", "manifold-nats", "manifold-native"))
    cn, cm = (pick(name, t, lambda r: r["server_cpu_s"]) for t in ("nats-server", "manifold-nats"))
    ratio = m / n if n and m else None
    bar = ""
    if ratio is not None:
        bar = f">={bars[name]}x " + ("ok" if ratio >= bars[name] else "MISSED")
    marks = "".join(f" [{t}: {unclean(name, t)} unclean runs]"
                    for t in ("nats-server", "manifold-nats", "manifold-native")
                    if unclean(name, t))
    rows.append((labels[name] + marks, "recv msgs/s", fmt(n), fmt(m),
                 f"{ratio:.2f}x" if ratio else "-", bar, fmt(native),
                 f"{cn:.2f}s" if cn is not None else "-",
                 f"{cm:.2f}s" if cm is not None else "-",
                 f"{cm / cn:.2f}x" if cn and cm is not None else "-"))
widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
for r in [head] + rows:
    print("  ".join(str(c).rjust(w) if i > 1 else str(c).ljust(w)
                    for i, (c, w) in enumerate(zip(r, widths))))
print("\nmedians of", max((r["round"] for r in runs), default=0),
      "rounds, every connection over TLS; cpu = server CPU seconds per run"
      " (same messages for both); ratio = manifold (NATS front end) /"
      " nats-server")
PY

if [[ $failures -gt 0 ]]; then
  echo "$script: $failures runs failed or were not clean; see $results" >&2
  exit 1
fi
