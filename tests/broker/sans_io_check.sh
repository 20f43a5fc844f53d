#!/usr/bin/env bash
# The sans-IO contract, checked with a grep: core/ and broker/ include no
# thread, mutex, socket, epoll, io_uring or libuv headers, and read no clock and
# no random source. Usage: sans_io_check.sh REPO_ROOT
set -euo pipefail
root="${1:-.}"
dirs=("$root/core" "$root/broker")

forbidden_includes='#include *[<"](thread|mutex|shared_mutex|condition_variable|future|atomic|random|unistd\.h|sys/socket\.h|sys/epoll\.h|sys/uio\.h|poll\.h|netinet/[a-z_]+\.h|arpa/inet\.h|liburing\.h|uv\.h|absl/synchronization/[a-z_]+\.h|absl/random/[a-z_]+\.h)[>"]'
forbidden_calls='(absl::Now\(|_clock::now\(|\brand\(|\bsrand\(|random_device|gettimeofday\(|clock_gettime\(|\btime\(nullptr\)|std::thread|pthread_)'

status=0
if grep -rnE "$forbidden_includes" "${dirs[@]}" --include='*.h' --include='*.cc'; then
  echo "sans-IO violation: core/ and broker/ must not include the headers above" >&2
  status=1
fi
if grep -rnE "$forbidden_calls" "${dirs[@]}" --include='*.h' --include='*.cc'; then
  echo "sans-IO violation: core/ and broker/ must not read a clock or a random source" >&2
  status=1
fi
files=$(find "${dirs[@]}" -name '*.h' -o -name '*.cc' | wc -l)
if [ "$files" -lt 10 ]; then
  echo "sans-IO check found only $files source files under $root; wrong root?" >&2
  status=1
fi
[ $status -eq 0 ] && echo "sans-IO check: $files files in core/ and broker/ are clean"
exit $status
