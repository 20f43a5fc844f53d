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

# The load average, as `uptime` says it.
bench_load() { uptime | sed 's/.*load average/load average/'; }

# The Manifold commit measured, "+changes" when the tree differs from it.
bench_manifold_version() {
  echo "$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet 2>/dev/null || echo '+changes')"
}

# Prints the run's header and keeps it in $out/header.txt: date, machine,
# each line given (servers, client), load, rounds.
bench_header() {
  {
    echo "date:      $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine:   $(nproc) CPUs, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), kernel $(uname -r)"
    local line
    for line in "$@"; do echo "$line"; done
    echo "load:      $(bench_load)"
    echo "rounds:    $rounds, scale $scale, output $out"
  } | tee "$out/header.txt"
}

# Runs every scenario `rounds` times against every target with `manifold
# bench`, the targets' order rotating each round, and appends each run's
# JSON, with target, name, round and the server's CPU seconds
# (server_cpu_s), to $results. Reads `scenarios` ("name|manifold bench
# arguments|..."; --count is multiplied by `scale`, at least 1000), `only`
# and `targets` ("name|address|server pid|more manifold bench arguments").
# Counts failed runs in `failures`; stops the script if a server exits.
bench_rounds() {
  failures=0
  local round entry name args count scaled run_args k target address pid
  local extra before after json status
  for ((round = 1; round <= rounds; round++)); do
    for entry in "${scenarios[@]}"; do
      IFS='|' read -r name args _ <<< "$entry"
      if [[ -n "$only" && ",$only," != *",$name,"* ]]; then continue; fi
      count=$(echo "$args" | sed -n 's/.*--count \([0-9]*\).*/\1/p')
      scaled=$(awk -v c="$count" -v s="$scale" 'BEGIN { n = int(c * s); print (n < 1000 ? 1000 : n) }')
      run_args="${args/--count $count/--count $scaled}"
      for ((k = 0; k < ${#targets[@]}; k++)); do
        IFS='|' read -r target address pid extra \
          <<< "${targets[$(((k + round) % ${#targets[@]}))]}"
        before=$(bench_cpu_seconds "$pid")
        set +e
        # shellcheck disable=SC2086
        json=$("$MANIFOLD" --server "$address" --json bench $run_args $extra \
          2> "$out/last-run.err")
        status=$?
        set -e
        after=$(bench_cpu_seconds "$pid")
        bench_running "$pid" || die "$target exited; see $out"
        if [[ -z "$json" ]]; then
          echo "$script: $target $name failed: $(tail -1 "$out/last-run.err")" >&2
          failures=$((failures + 1))
          continue
        fi
        [[ $status -eq 0 ]] || failures=$((failures + 1))
        echo "$json" | jq -c --arg target "$target" --arg name "$name" \
          --argjson round "$round" \
          --argjson cpu "$(awk -v a="$before" -v b="$after" 'BEGIN{printf "%.3f", b - a}')" \
          '. + {target: $target, name: $name, round: $round, server_cpu_s: $cpu}' \
          >> "$results"
      done
    done
    echo "round $round of $rounds done ($(bench_load))" >&2
  done
  echo "load:      $(bench_load) (at the end)" | tee -a "$out/header.txt"
}

# Installs nats-server from Debian when it is missing, or dies saying how.
bench_need_nats_server() {
  command -v nats-server >/dev/null && return 0
  echo "$script: installing nats-server (Debian package)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server >/dev/null 2>&1 ||
    { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server >/dev/null; } ||
    die "cannot install nats-server (apt-get install nats-server)"
}
