# Shell functions shared by the scripts in bench/ (sourced, not run). Each
# script sets `script` (its name, for messages) before sourcing.
#
#   source "$repo/bench/lib.sh"
#   bench_binaries /tmp/manifold-x-build   # sets MANIFOLDD and MANIFOLD
#   wait_for "$out/server.log" "listening on" || die "no server"
#   before=$(bench_cpu_seconds "$pid")
#   bench_stop "$pid"

die() { echo "$script: $*" >&2; exit 1; }

# Reads the options the comparison scripts share into `rounds`, `scale`,
# `only` and `out` (the script sets their defaults first): --rounds N,
# --scale F, --only LIST, --out DIR; -h or --help prints the comment at the
# top of the script.
bench_parse_options() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --rounds) rounds="$2"; shift 2 ;;
      --scale) scale="$2"; shift 2 ;;
      --only) only="$2"; shift 2 ;;
      --out) out="$2"; shift 2 ;;
      -h|--help) awk 'NR > 1 { if (/^#/) print; else exit }' "$0"; exit 0 ;;
      *) echo "$script: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
  done
}

# Sets MANIFOLDD and MANIFOLD. Unless both name ready binaries already,
# builds Manifold optimised (-O2 -DNDEBUG) with CMake in $BUILD_DIR, or in
# the directory given.
bench_binaries() {
  if [[ -z "${MANIFOLDD:-}" || -z "${MANIFOLD:-}" ]]; then
    local build="${BUILD_DIR:-$1}" launcher=()
    command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    echo "$script: building Manifold (-O2 -DNDEBUG) in $build" >&2
    cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" -DMANIFOLD_BUILD_TESTS=OFF \
      -DMANIFOLD_BUILD_BENCHMARKS=OFF "${launcher[@]}" >/dev/null
    cmake --build "$build" -j2 --target manifoldd manifold >/dev/null
    MANIFOLDD="$build/examples/tcp_broker/manifoldd"
    MANIFOLD="$build/client/manifold"
  fi
  [[ -x "$MANIFOLDD" && -x "$MANIFOLD" ]] || die "no manifoldd/manifold binaries"
}

# file pattern: true once a line of the file matches pattern; false after
# 10 s without one (a server's "listening" line, say).
wait_for() {
  for _ in $(seq 100); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# pid: true while it runs (an exited child not yet reaped does not count).
bench_running() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != "Z" ]]
}

# pid: SIGTERM, then SIGKILL after 5 s; returns its exit status if it is a
# child of this shell.
bench_stop() {
  local pid="$1"
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    bench_running "$pid" || break
    sleep 0.1
  done
  bench_running "$pid" && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

# pid -> its user + system CPU seconds so far ("-" once it is gone).
bench_cpu_seconds() {
  awk -v t="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / t}' \
    "/proc/$1/stat" 2>/dev/null || echo "-"
}
