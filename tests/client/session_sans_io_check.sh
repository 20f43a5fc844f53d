#!/usr/bin/env bash
# The client session is sans-IO like the broker: client/session.*,
# client/errors.* and client/message.h include no thread, mutex, socket or
# event-loop headers and read no clock. Usage: session_sans_io_check.sh ROOT
set -euo pipefail
root="${1:-.}"
files=("$root/client/session.h" "$root/client/session.cc"
       "$root/client/errors.h" "$root/client/errors.cc"
       "$root/client/message.h")

forbidden_includes='#include *[<"](thread|mutex|shared_mutex|condition_variable|future|atomic|random|unistd\.h|sys/socket\.h|sys/epoll\.h|poll\.h|netinet/[a-z_]+\.h|arpa/inet\.h|liburing\.h|uv\.h|absl/synchronization/[a-z_]+\.h|absl/random/[a-z_]+\.h|absl/time/clock\.h)[>"]'
forbidden_calls='(absl::Now\(|_clock::now\(|\brand\(|random_device|gettimeofday\(|clock_gettime\(|std::thread|pthread_)'

for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "missing $f; wrong root?" >&2; exit 1; }
done
status=0
if grep -nE "$forbidden_includes" "${files[@]}"; then
  echo "sans-IO violation: the client session must not include the headers above" >&2
  status=1
fi
if grep -nE "$forbidden_calls" "${files[@]}"; then
  echo "sans-IO violation: the client session must not read a clock" >&2
  status=1
fi
[ $status -eq 0 ] && echo "client session sans-IO check: ${#files[@]} files are clean"
exit $status
