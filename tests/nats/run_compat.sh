#!/usr/bin/env bash
# NATS compatibility suite: the official NATS client for Node (the `nats` npm
# package, nats.js, at the version package-lock.json pins) against a real
# server, run with node's built-in test runner.
#
#   run_compat.sh --target manifold --manifoldd PATH --manifold PATH \
#                 --native-peer PATH [--manifoldd-flag FLAG]... [--work-dir DIR]
#                 [--skip-exit-code N]
#   run_compat.sh --target nats-server [--work-dir DIR]      # the control
#
# --target manifold drives `manifoldd --nats` (with a native client beside the
# NATS ones: native_peer and the `manifold` CLI); --target nats-server drives
# the reference server with the same suite, so a failure that shows up against
# both is the suite's, one against manifoldd only is a Manifold difference.
# --manifoldd-flag adds a flag to every manifoldd the tests start (e.g.
# --manifoldd-flag=--loop=io_uring).
#
# Installs what is missing: node and npm, and nats-server for the control,
# with apt-get (needs root or sudo); then nats.js with `npm ci --prefer-offline`
# from npm's cache, or the npm registry when the cache lacks it. Every step has
# a time limit, and a failure is one line on stderr starting
# "nats-compat: FAIL:". Servers are started by the tests on free loopback ports
# and stopped by PID.
#
# Offline: when what the suite needs cannot be had (the npm registry is
# unreachable and npm's cache lacks nats.js, or apt-get cannot install a
# missing tool), the run is skipped with one line starting "nats-compat: SKIP:"
# and exits with --skip-exit-code (default 0; ctest passes 77, its "skipped").
# With NATS_COMPAT_REQUIRED=1 (as CI sets it) that is a failure instead.
#
# Environment: NATS_COMPAT_NPM_CACHE (npm's cache directory; default the
# invoking user's ~/.npm, also under Bazel, which points $HOME at the test's
# temporary directory), NATS_COMPAT_REQUIRED=1 (never skip),
# NATS_COMPAT_SERVER_LOG=1 (copy the server's log to stderr).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/../testing/npm_suite.sh
source "$here/../testing/npm_suite.sh"
npm_suite_messages nats-compat NATS_COMPAT_REQUIRED

target=manifold
manifoldd=""
manifold_cli=""
native_peer=""
work_dir=""
manifoldd_flags=()
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target="$2"; shift 2 ;;
    --manifoldd) manifoldd="$(absolute "$2")"; shift 2 ;;
    --manifold) manifold_cli="$(absolute "$2")"; shift 2 ;;
    --native-peer) native_peer="$(absolute "$2")"; shift 2 ;;
    --work-dir) work_dir="$(absolute "$2")"; shift 2 ;;
    --manifoldd-flag) manifoldd_flags+=("$2"); shift 2 ;;
    --manifoldd-flag=*) manifoldd_flags+=("${1#--manifoldd-flag=}"); shift ;;
    --skip-exit-code) skip_exit_code="$2"; shift 2 ;;
    *) fail "unknown argument '$1' (see the comment at the top of $0)" ;;
  esac
done

case "$target" in
  manifold)
    for pair in "--manifoldd:$manifoldd" "--manifold:$manifold_cli" "--native-peer:$native_peer"; do
      flag="${pair%%:*}"
      path="${pair#*:}"
      [ -n "$path" ] || fail "--target manifold needs $flag PATH"
      [ -x "$path" ] || fail "$flag $path is not an executable"
    done
    ;;
  nats-server) ;;
  *) fail "--target must be manifold or nats-server, not '$target'" ;;
esac

# --- Tools: node, npm, nats-server --------------------------------------------

apt_install() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || fail "$* missing; install with: apt-get install $*"
    sudo=(sudo -n)
  fi
  echo "nats-compat: installing $* with apt-get"
  # The manifold and the control run may both get here at once.
  local lock=/tmp/manifold-nats-compat-apt.lock
  local log
  log="$(mktemp)"
  if ! flock -w 900 "$lock" timeout 300 "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=120 \
    update -qq >"$log" 2>&1 ||
    ! flock -w 900 "$lock" env DEBIAN_FRONTEND=noninteractive timeout 600 "${sudo[@]}" \
      apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends "$@" \
      >>"$log" 2>&1; then
    local why
    why="$(grep -v '^\s*$' "$log" | tail -1)"
    rm -f "$log"
    unavailable "$* not installed and apt-get could not install it: $why"
  fi
  rm -f "$log"
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt_install nodejs npm
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    fail "node and npm are not on PATH ($PATH) after installing nodejs and npm"
  fi
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 18 ] || fail "node $(node --version) is too old; the suite needs node 18 or newer"

# Debian installs nats-server in /usr/sbin, which is not on every PATH.
find_nats_server() {
  command -v nats-server 2>/dev/null || { [ -x /usr/sbin/nats-server ] && echo /usr/sbin/nats-server; } || true
}
nats_server=""
if [ "$target" = nats-server ]; then
  nats_server="$(find_nats_server)"
  if [ -z "$nats_server" ]; then
    apt_install nats-server
    nats_server="$(find_nats_server)"
    [ -n "$nats_server" ] || fail "nats-server is not on PATH ($PATH) after installing it"
  fi
fi

# --- The suite and nats.js ------------------------------------------------------

npm_suite_work_dir "nats-compat-$target"
npm_suite_track_servers 'manifoldd|nats-server'
npm_suite_copy "$here"
started=$(date +%s)
npm_suite_install 180 nats.js "${NATS_COMPAT_NPM_CACHE:-}"
nats_version="$(node -p "require('$suite/node_modules/nats/package.json').version")"
echo "nats-compat: nats.js $nats_version installed in $(($(date +%s) - started))s; target $target"

# --- Run ------------------------------------------------------------------------


export NATS_COMPAT_TARGET="$target"
export NATS_COMPAT_PIDS_FILE="$pids_file"
export MANIFOLDD="$manifoldd"
export MANIFOLDD_FLAGS="${manifoldd_flags[*]}"
export MANIFOLD_CLI="$manifold_cli"
export NATIVE_PEER="$native_peer"
export NATS_SERVER="$nats_server"

cd "$suite"
started=$(date +%s)
status=0
timeout --kill-after=10 300 node --test ./*.test.mjs || status=$?
elapsed=$(($(date +%s) - started))
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  fail "the suite did not finish within 300 s (target $target)"
fi
if [ "$status" -ne 0 ]; then
  fail "nats.js suite against $target failed (exit $status, ${elapsed}s); see the 'not ok' lines above"
fi
echo "nats-compat: nats.js $nats_version suite against $target passed in ${elapsed}s"
