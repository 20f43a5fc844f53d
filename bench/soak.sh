#!/usr/bin/env bash
# Soak test: a real manifoldd on loopback under churn for a bounded time.
#
#   bench/soak.sh                      # 10 minutes (the default)
#   bench/soak.sh --duration=1m        # shorter; SOAK_DURATION=1m works too
#   bench/soak.sh --duration=30s -- --churn_connections=200   # driver flags
#
# About 1,000 short-lived clients connect, subscribe, publish and leave (in
# every way a client can leave) while publishers send numbered messages at a
# steady rate to healthy subscribers that check every number. The broker's
# resident memory is sampled from /proc/<pid>/status every second. At the end
# the figures are printed: connections churned, messages published and
# received (lost and out-of-order counts), and the broker's RSS - first and
# last sample, min, max and trend after a warm-up. Exits 0 only if nothing was
# lost, nobody was cut off or got an error, the RSS stayed flat and manifoldd
# shut down cleanly on SIGTERM.
#
# Builds manifoldd and soak_driver with CMake in $MANIFOLD_BUILD_DIR (default
# ./build) unless $MANIFOLDD and $SOAK_DRIVER name ready binaries.
#
# File descriptors: each side holds one per client, so the script raises the
# soft limit (ulimit -n) to $SOAK_FD_LIMIT (default 4096) for both processes,
# within the hard limit.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
duration="${SOAK_DURATION:-10m}"
driver_flags=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration=*) duration="${1#--duration=}" ;;
    --duration) duration="$2"; shift ;;
    --) shift; driver_flags+=("$@"); break ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument '$1' (driver flags go after --)" >&2
       exit 2 ;;
  esac
  shift
done

build_dir="${MANIFOLD_BUILD_DIR:-$repo/build}"
manifoldd="${MANIFOLDD:-}"
driver="${SOAK_DRIVER:-}"
if [[ -z "$manifoldd" || -z "$driver" ]]; then
  echo "soak: building manifoldd and soak_driver in $build_dir"
  if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
    cmake -S "$repo" -B "$build_dir" -G Ninja >/dev/null
  fi
  cmake --build "$build_dir" -j2 --target manifoldd soak_driver >/dev/null
  manifoldd="$build_dir/examples/tcp_broker/manifoldd"
  driver="$build_dir/bench/soak/soak_driver"
fi

fd_limit="${SOAK_FD_LIMIT:-4096}"
hard="$(ulimit -Hn)"
if [[ "$hard" != unlimited && "$hard" -lt "$fd_limit" ]]; then
  fd_limit="$hard"
fi
ulimit -n "$fd_limit"
echo "soak: file descriptor limit (ulimit -n) set to $(ulimit -n) for manifoldd and the driver"

work="$(mktemp -d /tmp/manifold-soak-XXXXXX)"
broker_pid=""
cleanup() {
  if [[ -n "$broker_pid" ]] && kill -0 "$broker_pid" 2>/dev/null; then
    kill -KILL "$broker_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$manifoldd" --listen=127.0.0.1:0 --log_level=warning \
  >"$work/broker.out" 2>"$work/broker.err" &
broker_pid=$!
address=""
for _ in $(seq 100); do
  if line="$(head -n1 "$work/broker.out" 2>/dev/null)" && [[ -n "$line" ]]; then
    address="$(sed -n 's/^manifoldd listening on \([^ ]*\) (tcp).*/\1/p' <<<"$line")"
    break
  fi
  sleep 0.1
done
if [[ -z "$address" ]]; then
  echo "soak: manifoldd did not start: $(cat "$work/broker.err")" >&2
  exit 1
fi
echo "soak: $line (pid $broker_pid)"

status=0
"$driver" --broker="$address" --broker_pid="$broker_pid" \
  --duration="$duration" "${driver_flags[@]}" || status=$?

kill -TERM "$broker_pid"
broker_status=0
wait "$broker_pid" || broker_status=$?
broker_pid=""
if [[ "$broker_status" -ne 0 ]]; then
  echo "soak: manifoldd exited with status $broker_status" >&2
  status=1
fi
warnings="$(wc -l <"$work/broker.err")"
echo "soak: manifoldd exited with status $broker_status after SIGTERM; $warnings lines of warnings in its log"
if [[ "$warnings" -gt 0 ]]; then
  head -n 5 "$work/broker.err" | sed 's/^/  manifoldd: /'
fi
exit "$status"
