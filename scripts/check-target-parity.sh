#!/usr/bin/env bash
# Checks that Bazel and CMake build the same tests, under the same names:
# every Bazel test target (bazel query 'tests(//...)', by its name after the
# colon) must be a CMake test, and every CMake test a Bazel test target. Also
# checks that no two Bazel targets share a name, as the CMake targets cannot.
# Prints what is wrong and exits 1 if anything is.
#
# What counts as one test on the CMake side, read from the CTestTestfile.cmake
# files of a configured (not built) tree:
#   - a GoogleTest executable (gtest_discover_tests): its target name. ctest
#     lists it case by case once built (the transcript corpus, one case per
#     tests/transcripts/*.textpb, included); Bazel runs it as one target.
#   - add_test() running an executable of this build: that executable's name
#     (the fuzz corpus replays: ctest name <target>_fuzzer_corpus, executable
#     and Bazel target <target>_fuzzer_test).
#   - add_test() running a script of the source tree: the ctest name (the
#     sans-IO checks and the NATS compatibility runs are sh_tests in Bazel).
# Nothing is skipped. Tests of optional adapters (io_uring, uv) exist in each
# build only where its library was found, so both builds are compared on the
# same machine. Libraries and binaries are not compared here.
#
# Usage: scripts/check-target-parity.sh
#   BUILD_DIR   where CMake is configured (default: build-parity)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

build_dir="${BUILD_DIR:-build-parity}"
cmake -S . -B "$build_dir" -G Ninja -DMANIFOLD_BUILD_TESTS=ON \
  -DMANIFOLD_BUILD_BENCHMARKS=OFF >/dev/null
build_abs="$(cd "$build_dir" && pwd)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Target names are unique in the repository (a CMake target of the same
# name stands for each), so the name after the colon is enough to compare.
bazel query 'kind(rule, //...)' --output=label 2>/dev/null | sort >"$work/all-labels"
dupes="$(sed 's/.*://' "$work/all-labels" | sort | uniq -d)"
if [[ -n "$dupes" ]]; then
  echo "check-target-parity: Bazel target names used in more than one package:"
  for name in $dupes; do grep ":$name\$" "$work/all-labels" | sed 's/^/  /'; done
  exit 1
fi

bazel query 'tests(//...)' --output=label 2>/dev/null | sort >"$work/bazel-labels"
[[ -s "$work/bazel-labels" ]] || { echo "check-target-parity: bazel query found no tests"; exit 1; }
sed 's/.*://' "$work/bazel-labels" | sort >"$work/bazel"

find "$build_abs" -name CTestTestfile.cmake -print0 |
  xargs -0 cat |
  awk -v build="$build_abs/" '
    # include("<dir>/<name>[1]_include.cmake"): gtest_discover_tests
    /^include\(".*\[[0-9]+\]_include\.cmake"\)/ {
      path = $0
      sub(/^include\("/, "", path); sub(/\[[0-9]+\]_include\.cmake"\)$/, "", path)
      sub(/.*\//, "", path)
      print path
      next
    }
    # add_test([=[<name>]=] "<command>" ...)
    /^add_test\(/ {
      name = $0; sub(/^add_test\(\[=\[/, "", name); sub(/\]=\].*/, "", name)
      command = $0; sub(/^add_test\(\[=\[[^]]*\]=\] "/, "", command)
      sub(/".*/, "", command)
      if (index(command, build) == 1) { sub(/.*\//, "", command); print command }
      else print name
    }' | sort -u >"$work/cmake"

only_bazel="$(comm -23 "$work/bazel" "$work/cmake")"
only_cmake="$(comm -13 "$work/bazel" "$work/cmake")"
if [[ -n "$only_bazel" || -n "$only_cmake" ]]; then
  if [[ -n "$only_bazel" ]]; then
    echo "check-target-parity: Bazel tests with no CMake test of the same name:"
    for name in $only_bazel; do grep ":$name\$" "$work/bazel-labels" | sed 's/^/  /'; done
  fi
  if [[ -n "$only_cmake" ]]; then
    echo "check-target-parity: CMake tests with no Bazel test of the same name:"
    sed 's/^/  /' <<<"$only_cmake"
  fi
  exit 1
fi
echo "check-target-parity: ok ($(wc -l <"$work/bazel") tests, the same in Bazel and CMake)"
