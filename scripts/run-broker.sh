#!/usr/bin/env bash
# Installs what is missing, builds the bundled broker (manifoldd) with CMake,
# and runs it in the foreground. Arguments go to manifoldd, e.g.
#   scripts/run-broker.sh --listen 0.0.0.0:24387 --unix /tmp/manifold.sock
# Stop it with Ctrl-C (graceful shutdown).
#   BUILD_DIR   where to build (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

build_dir="${BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir" --target manifoldd manifold
exec "$build_dir/examples/tcp_broker/manifoldd" "$@"
