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

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/../testing/npm_suite.sh
source "$here/../testing/npm_suite.sh"
npm_suite_messages web-compat WEB_COMPAT_REQUIRED

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

npm_suite_work_dir web-compat
[ -n "$screenshot_dir" ] || screenshot_dir="$work_dir"
npm_suite_track_servers 'manifold'
npm_suite_copy "$here"
npm_suite_install 240 "the npm clients" "${WEB_COMPAT_NPM_CACHE:-}"

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
