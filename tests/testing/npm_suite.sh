# shellcheck shell=bash
# Sourced by the scripts that run a node test suite against real servers
# (tests/nats/run_compat.sh, tests/http/run_web.sh): how such a run fails or
# is skipped, where it works, how no server it starts outlives it, and how
# its npm packages are installed from the committed package-lock.json.
#
#   source "$here/../testing/npm_suite.sh"
#   npm_suite_messages web-compat WEB_COMPAT_REQUIRED   # fail, unavailable
#   ... parse arguments (skip_exit_code, work_dir; absolute PATH) ...
#   npm_suite_work_dir web-compat                # sets work_dir, cleanup_dir
#   npm_suite_track_servers 'manifoldd'          # sets pids_file
#   npm_suite_copy "$here"                       # sets suite
#   npm_suite_install 240 "the npm clients" "${WEB_COMPAT_NPM_CACHE:-}"
#
# Each function states what it sets; all of them are for bash with
# `set -euo pipefail`.

# Defines fail() (one line "LABEL: FAIL: ...", exit 1) and unavailable()
# (one line "LABEL: SKIP: ...", exit $skip_exit_code; a failure instead when
# the variable named REQUIRED_VARIABLE is 1, as CI sets it). Sets
# skip_exit_code=0 for the caller's --skip-exit-code to change.
# shellcheck disable=SC2317  # fail and unavailable run when the caller calls
npm_suite_messages() {
  npm_suite_label="$1"
  npm_suite_required_variable="$2"
  skip_exit_code=0
  fail() {
    echo "$npm_suite_label: FAIL: $*" >&2
    exit 1
  }
  unavailable() {
    if [ "${!npm_suite_required_variable:-0}" = 1 ]; then
      fail "$* ($npm_suite_required_variable=1: this run may not be skipped)"
    fi
    echo "$npm_suite_label: SKIP: $*"
    exit "$skip_exit_code"
  }
}

# Prints PATH made absolute against the current directory.
absolute() {
  case "$1" in
    /*) echo "$1" ;;
    *) echo "$PWD/$1" ;;
  esac
}

# Sets work_dir, unless the caller set it: a directory NAME under Bazel's
# $TEST_TMPDIR, else a new temporary one, which is then also cleanup_dir
# (removed on exit by npm_suite_track_servers' trap).
npm_suite_work_dir() {
  cleanup_dir=""
  if [ -z "${work_dir:-}" ]; then
    if [ -n "${TEST_TMPDIR:-}" ]; then
      work_dir="$TEST_TMPDIR/$1"
    else
      work_dir="$(mktemp -d)"
      cleanup_dir="$work_dir"
    fi
  fi
  mkdir -p "$work_dir"
}

# Sets pids_file, an empty file in $work_dir where the tests write the PID of
# every server they start, and a trap that, on exit, kills each of those that
# still runs and whose command line matches the extended regular expression
# PATTERN (so a reused PID is left alone), then removes $cleanup_dir.
# REQUIRES: npm_suite_work_dir ran.
npm_suite_track_servers() {
  npm_suite_server_pattern="$1"
  pids_file="$work_dir/server-pids"
  : >"$pids_file"
  trap npm_suite_stop_leftovers EXIT
}

npm_suite_stop_leftovers() {
  local pid
  while read -r pid; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
      grep -qE "$npm_suite_server_pattern" "/proc/$pid/cmdline" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done <"$pids_file"
  if [ -n "$cleanup_dir" ]; then rm -rf "$cleanup_dir"; fi
}

# Sets suite, $work_dir/suite made afresh with the package files, the
# *.test.mjs files and lib/*.mjs of the directory HERE (copies, not the
# symbolic links Bazel's runfiles are).
npm_suite_copy() {
  local here="$1"
  suite="$work_dir/suite"
  rm -rf "$suite"
  mkdir -p "$suite/lib"
  cp -L "$here/package.json" "$here/package-lock.json" "$here"/*.test.mjs "$suite/"
  cp -L "$here"/lib/*.mjs "$suite/lib/"
}

# Installs the suite's packages with `npm ci --prefer-offline` within SECONDS,
# from npm's cache CACHE (default: the invoking user's ~/.npm, not one under
# $HOME: Bazel points $HOME at an empty directory, and a cold cache means the
# network) or the registry. Without either: unavailable(). Another failure:
# fail(), naming WHAT could not be installed and npm's first error.
# REQUIRES: npm_suite_copy ran.
npm_suite_install() {
  local seconds="$1" what="$2" cache="${3:-}"
  local user_home why
  user_home="$(getent passwd "$(id -u)" | cut -d: -f6)"
  export npm_config_cache="${cache:-${user_home:-${HOME:-$work_dir}}/.npm}"
  export npm_config_update_notifier=false
  local npm_log="$work_dir/npm-ci.log"
  if ! (cd "$suite" && timeout --kill-after=10 "$seconds" npm ci --no-audit --no-fund \
    --ignore-scripts --prefer-offline --fetch-timeout=20000 --fetch-retries=1 \
    --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=5000 --loglevel=error) \
    >"$npm_log" 2>&1; then
    why="$(grep -i 'err' "$npm_log" | grep -v 'Unknown user config' | head -1)" || true
    [ -n "$why" ] || why="$(grep -v '^\s*$' "$npm_log" | tail -1)" || true
    # No registry and nothing in the cache: a machine without network.
    if grep -qE 'EAI_AGAIN|ENOTFOUND|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|ENOTCACHED' "$npm_log"; then
      unavailable "$what: neither in npm's cache ($npm_config_cache) nor reachable in the npm registry (npm ci: $why)"
    fi
    fail "could not install $what (npm ci: ${why:-no answer within $seconds s})"
  fi
}
