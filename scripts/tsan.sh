#!/usr/bin/env bash
# Runs the tests of every piece of Manifold that uses threads under
# ThreadSanitizer: a clang -fsanitize=thread CMake build in its own directory
# (MANIFOLD_SANITIZE=thread), then each test program in turn:
#
#   client     await_mutex_test, client_test, client_e2e_test, tls_stream_test,
#              cli_test,
#              shell_command_test (the client's reader, writer and callback
#              threads, and the lock between them)
#   transports memory_broker_test (client threads against the broker thread),
#              broker_driver_test, epoll_server_test, socket_server_test (a
#              server thread on each loop: epoll, io_uring, uv),
#              wakeable_epoll_test (a wake-up from another thread),
#              rocksdb_stream_storage_test (the storage thread, where RocksDB
#              is installed)
#   examples   manifoldd_test (manifoldd on each loop, its signal handling),
#              manifoldd_auth_test and password_checker_test (logins whose
#              password checks run on manifoldd's worker thread)
#   e2e        every tests/e2e/*_test.cc (threads that keep healthy traffic
#              going and watch the broker's events while it is attacked)
#
# manifoldd and the manifold CLI that these tests start are built with TSan
# too, and every report from any process lands in one log directory, so a race
# in a child process fails the run as surely as one in a test.
#
# Abseil from Debian is not built with TSan, so code under test must not
# synchronise through absl::Mutex, absl::CondVar or absl::Notification (TSan
# cannot see them and reports every access they guard as a race); the
# threaded code uses std::mutex and std::condition_variable instead.
#
#   scripts/tsan.sh                  # build and run everything listed above
#   scripts/tsan.sh client_test      # only the named test programs
#   BUILD_DIR      where to build (default: build-tsan)
#   TSAN_JOBS      build parallelism (default: 2)
#
# Prints one line per test program and a summary; exits non-zero if any test
# failed or any ThreadSanitizer report was written.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh clang libclang-rt-14-dev

build_dir="${BUILD_DIR:-build-tsan}"
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DMANIFOLD_SANITIZE=thread \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DMANIFOLD_BUILD_BENCHMARKS=OFF "${launcher[@]}" >/dev/null

# The test programs, and where CMake puts them.
declare -A where=(
  [await_mutex_test]=tests/client
  [client_test]=tests/client
  [client_e2e_test]=tests/client
  [client_reconnect_test]=tests/client
  [tls_stream_test]=tests/client
  [cli_test]=tests/client
  [shell_command_test]=tests/client/cli
  [memory_broker_test]=tests/transports
  [broker_driver_test]=tests/transports
  [epoll_server_test]=tests/transports
  [socket_server_test]=tests/transports
  [wakeable_epoll_test]=tests/transports
  [manifoldd_test]=tests/examples
  [manifoldd_auth_test]=tests/examples
  [password_checker_test]=tests/examples
)
programs=(await_mutex_test client_test client_e2e_test client_reconnect_test tls_stream_test cli_test shell_command_test
          memory_broker_test broker_driver_test epoll_server_test socket_server_test
          wakeable_epoll_test
          manifoldd_test manifoldd_auth_test password_checker_test)
if pkg-config --exists rocksdb; then
  where[rocksdb_stream_storage_test]=tests/transports/storage
  programs+=(rocksdb_stream_storage_test)
fi
for source in tests/e2e/*_test.cc; do
  name="$(basename "$source" .cc)"
  where[$name]=tests/e2e
  programs+=("$name")
done
if [[ $# -gt 0 ]]; then programs=("$@"); fi

echo "tsan: building ${programs[*]} (and manifoldd, manifold) in $build_dir"
cmake --build "$build_dir" -j "${TSAN_JOBS:-2}" \
  --target manifoldd manifold "${programs[@]}"

logs="$(mktemp -d /tmp/manifold-tsan-XXXXXX)"
trap 'rm -rf "$logs"' EXIT
# Every process writes its reports to $logs/report.<pid>; a report ends that
# process with exit code 66. scripts/tsan.supp says what is not reported, and
# why.
export TSAN_OPTIONS="log_path=$logs/report:halt_on_error=1:exitcode=66:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"

passed=0
failed=0
failures=()
for program in "${programs[@]}"; do
  binary="$build_dir/${where[$program]:-}/$program"
  if [[ ! -x "$binary" ]]; then
    echo "tsan: FAIL $program (not built at $binary)"
    failed=$((failed + 1)); failures+=("$program"); continue
  fi
  before=$(find "$logs" -name 'report.*' | wc -l)
  started=$(date +%s)
  status=0
  "$binary" --gtest_brief=1 >"$logs/$program.out" 2>&1 || status=$?
  reports=$(( $(find "$logs" -name 'report.*' | wc -l) - before ))
  tests=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) tests\{0,1\}.*/\1/p' "$logs/$program.out")
  took=$(( $(date +%s) - started ))
  if [[ "$status" -eq 0 && "$reports" -eq 0 ]]; then
    echo "tsan: ok   $program (${tests:-?} tests, ${took}s)"
    passed=$((passed + 1))
  else
    echo "tsan: FAIL $program (exit $status, $reports ThreadSanitizer reports, ${took}s)"
    failed=$((failed + 1)); failures+=("$program")
    grep -E '^\[  FAILED  \]' "$logs/$program.out" | sed 's/^/      /' | head -20 || true
  fi
done

if [[ $(find "$logs" -name 'report.*' | wc -l) -gt 0 ]]; then
  echo "tsan: ThreadSanitizer reports (first of each):"
  for report in "$logs"/report.*; do
    echo "---- $(basename "$report")"
    head -n 40 "$report"
  done
fi
echo "tsan: ${passed} passed, ${failed} failed${failures:+ (${failures[*]})}"
[[ "$failed" -eq 0 ]]
