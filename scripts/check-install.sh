#!/usr/bin/env bash
# Builds Manifold with CMake, installs it into a scratch prefix, and builds and
# runs a small program against the installed package twice: once through
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

cmake -S tests/install/consumer -B "$scratch/consumer" -G Ninja \
  -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/consumer" >/dev/null
"$scratch/consumer/consumer"

libdir="$(find "$scratch/prefix" -name manifold.pc -printf '%h\n' | head -1)"
flags="$(PKG_CONFIG_PATH="$libdir" pkg-config --cflags --libs manifold)"
# shellcheck disable=SC2086
g++ -std=c++20 tests/install/consumer/main.cc -o "$scratch/consumer-pc" $flags
"$scratch/consumer-pc"
echo "check-install: find_package(manifold) and pkg-config manifold both work"
