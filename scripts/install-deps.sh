#!/usr/bin/env bash
# Installs what Manifold needs to build and test, from Debian 12's packages.
# Does nothing (and needs no network) when everything is already installed.
set -euo pipefail

packages=(
  bazel-bootstrap cmake ninja-build g++ pkg-config
  libabsl-dev libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev libbenchmark-dev
  liburing-dev libuv1-dev libssl-dev libcrypt-dev
  libhttp-parser-dev libwslay-dev rapidjson-dev nlohmann-json3-dev
  librocksdb-dev libisal-dev libhiredis-dev redis-server
)
# Extra packages a caller asks for, e.g. "clang libclang-rt-14-dev nodejs".
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
