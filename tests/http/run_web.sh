#!/usr/bin/env bash
# The web front end against real clients: the npm packages ws, eventsource,
# nats.ws and puppeteer-core (pinned in package-lock.json) and curl against a
# real `manifoldd --http`, with the `manifold` CLI as a native client, run
# with node's built-in test runner; tls.test.mjs repeats the essentials over
# https:// and wss:// with certificates it makes with the `openssl` command. The dashboard test drives Debian's
# chromium headless.
#
#   run_web.sh --manifoldd PATH --manifold PATH [--manifoldd-flag FLAG]...
#              [--work-dir DIR] [--screenshot-dir DIR] [--skip-exit-code N]
#
# --manifoldd-flag adds a flag to every manifoldd (e.g. --loop=io_uring).
# Installs the npm packages with `npm ci --prefer-offline` (npm's cache, or
# the registry when the cache lacks them). Without chromium the dashboard
# test is skipped with one line; CI installs it. Servers are started by the
# tests on free loopback ports and stopped by PID. A failure is one line
# starting "web-compat: FAIL:".
#
# Offline: when the registry is unreachable and npm's cache lacks the
# packages, the run is skipped with one line starting "web-compat: SKIP:"
# and exits with --skip-exit-code (default 0; ctest passes 77, its
# "skipped"). With WEB_COMPAT_REQUIRED=1 (as CI sets it) that is a failure.
# WEB_COMPAT_NPM_CACHE names npm's cache (default: the invoking user's
# ~/.npm, also under Bazel, which points $HOME elsewhere).
set -euo pipefail

fail() {
  echo "web-compat: FAIL: $*" >&2
  exit 1
}
skip_exit_code=0
unavailable() {
  if [ "${WEB_COMPAT_REQUIRED:-0}" = 1 ]; then
    fail "$* (WEB_COMPAT_REQUIRED=1: this run may not be skipped)"
  fi
  echo "web-compat: SKIP: $*"
  exit "$skip_exit_code"
}
absolute() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }

manifoldd=""
manifold_cli=""
work_dir=""
screenshot_dir=""
manifoldd_flags=()
while [ $# -gt 0 ]; do
  case "$1" in
    --manifoldd) manifoldd="$(absolute "$2")"; shift 2 ;;
    --manifold) manifold_cli="$(absolute "$2")"; shift 2 ;;
    --work-dir) work_dir="$(absolute "$2")"; shift 2 ;;
    --screenshot-dir) screenshot_dir="$(absolute "$2")"; shift 2 ;;
    --manifoldd-flag) manifoldd_flags+=("$2"); shift 2 ;;
    --manifoldd-flag=*) manifoldd_flags+=("${1#--manifoldd-flag=}"); shift ;;
    --skip-exit-code) skip_exit_code="$2"; shift 2 ;;
    *) fail "unknown argument '$1' (see the comment at the top of $0)" ;;
  esac
done
[ -x "$manifoldd" ] || fail "--manifoldd PATH must name the manifoldd binary"
[ -x "$manifold_cli" ] || fail "--manifold PATH must name the manifold CLI"
command -v node >/dev/null && command -v npm >/dev/null || fail "node and npm are needed (Node 18 or newer)"
command -v curl >/dev/null || fail "curl is needed (apt-get install curl)"
command -v openssl >/dev/null || fail "openssl is needed to make the TLS tests' certificates (apt-get install openssl)"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cleanup_dir=""
if [ -z "$work_dir" ]; then
  if [ -n "${TEST_TMPDIR:-}" ]; then work_dir="$TEST_TMPDIR/web-compat"; else
    work_dir="$(mktemp -d)"
    cleanup_dir="$work_dir"
  fi
fi
mkdir -p "$work_dir"
[ -n "$screenshot_dir" ] || screenshot_dir="$work_dir"

pids_file="$work_dir/pids"
: >"$pids_file"
stop_leftovers() {
  local pid
  while read -r pid; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
      grep -qE 'manifold' "/proc/$pid/cmdline" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done <"$pids_file"
  if [ -n "$cleanup_dir" ]; then rm -rf "$cleanup_dir"; fi
}
trap stop_leftovers EXIT

suite="$work_dir/suite"
rm -rf "$suite"
mkdir -p "$suite/lib"
cp -L "$here/package.json" "$here/package-lock.json" "$here"/*.test.mjs "$suite/"
cp -L "$here"/lib/*.mjs "$suite/lib/"

user_home="$(getent passwd "$(id -u)" | cut -d: -f6)"
export npm_config_cache="${WEB_COMPAT_NPM_CACHE:-${user_home:-${HOME:-$work_dir}}/.npm}"
export npm_config_update_notifier=false
npm_log="$work_dir/npm-ci.log"
if ! (cd "$suite" && timeout --kill-after=10 240 npm ci --no-audit --no-fund --ignore-scripts \
  --prefer-offline --fetch-timeout=20000 --fetch-retries=1 --loglevel=error) >"$npm_log" 2>&1; then
  why="$(grep -i 'err' "$npm_log" | head -1)"
  # No registry and nothing in the cache: a machine without network.
  if grep -qE 'EAI_AGAIN|ENOTFOUND|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|ENOTCACHED' "$npm_log"; then
    unavailable "the npm clients are neither in npm's cache ($npm_config_cache) nor reachable in the npm registry (npm ci: $why)"
  fi
  fail "could not install the npm clients (npm ci: ${why:-no answer within 240 s})"
fi

export MANIFOLDD="$manifoldd" MANIFOLD_CLI="$manifold_cli" MANIFOLDD_FLAGS="${manifoldd_flags[*]}"
export WEB_PIDS_FILE="$pids_file" WEB_SCREENSHOT_DIR="$screenshot_dir"
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "web-compat: no chromium at ${CHROMIUM:-/usr/bin/chromium}: the dashboard test is skipped (apt-get install chromium)"
fi
cd "$suite"
status=0
timeout --kill-after=10 300 node --test --test-concurrency=1 ./*.test.mjs || status=$?
[ "$status" -eq 0 ] || fail "the web suite failed (exit $status); see the 'not ok' lines above"
echo "web-compat: passed; dashboard screenshot (when chromium ran): $screenshot_dir/dashboard.png"
