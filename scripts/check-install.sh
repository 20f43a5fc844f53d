#!/usr/bin/env bash
# Builds Manifold with CMake, installs it into a scratch prefix, compiles each
# installed header on its own (so a header that needs one that is not
# installed, or that does not include what it uses, fails here), and builds
# and runs a small program against the installed package twice: once through
# find_package(manifold) and once through pkg-config.
#   BUILD_DIR   the CMake build to install from (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

build_dir="${BUILD_DIR:-build}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir"
cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null

libdir="$(find "$scratch/prefix" -name manifold.pc -printf '%h\n' | head -1)"
cflags="$(PKG_CONFIG_PATH="$libdir" pkg-config --cflags manifold)"
# Each header in a translation unit of its own, one per CPU at a time. A
# header that fails stops the run (xargs stops at an exit status of 255).
check_header() {
  local relative="${1#"$scratch/prefix/include/manifold/"}" work
  work="$(mktemp -d "$scratch/header.XXXXXX")"
  echo "#include \"$relative\"" > "$work/one_header.cc"
  # shellcheck disable=SC2086
  if ! g++ -std=c++20 -fsyntax-only $cflags "$work/one_header.cc" \
      2> "$work/one_header.log"; then
    echo "check-install: FAIL: the installed header $relative does not" \
         "compile on its own:" >&2
    head -20 "$work/one_header.log" >&2
    exit 255
  fi
}
export -f check_header
export scratch cflags
find "$scratch/prefix/include/manifold" -name '*.h' -print0 | sort -z |
  xargs -0 -n 1 -P "$(nproc)" bash -c 'check_header "$1"' check_header
headers="$(find "$scratch/prefix/include/manifold" -name '*.h' | wc -l)"
if [ -d "$scratch/prefix/include/manifold/broker/internal" ]; then
  echo "check-install: FAIL: internal headers were installed" >&2
  exit 1
fi
echo "check-install: $headers installed headers each compile on their own"

cmake -S tests/install/consumer -B "$scratch/consumer" -G Ninja \
  -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/consumer" >/dev/null
"$scratch/consumer/consumer"

flags="$(PKG_CONFIG_PATH="$libdir" pkg-config --cflags --libs manifold)"
# shellcheck disable=SC2086
g++ -std=c++20 tests/install/consumer/main.cc -o "$scratch/consumer-pc" $flags
"$scratch/consumer-pc"
echo "check-install: find_package(manifold) and pkg-config manifold both work"
