#!/bin/sh
echo "bazel coverage is not available offline; use the CMake coverage build" >&2
exit 1
