#!/usr/bin/env bash
# Checks that dependencies point one way: every #include "..." in C++ sources
# and every import "..." in .proto files is allowed by the layering below.
# Prints each one that is not as FILE:LINE: "the include": the rule it
# breaks; exits 1 if there is any, 0 otherwise.
#
#   core/        includes nothing of broker/, transports/, client/
#   broker/      includes nothing of transports/, client/
#   transports/  includes nothing of client/
#   client/      (the CLI and the load generator too) includes nothing of
#                bench/, examples/, tests/
#   bench/, examples/ and tests/ are leaves: nothing outside them includes
#   them. Only tests/ includes tests/, only examples/ includes examples/ and
#   only bench/ includes bench/ -- except that tests include the code they
#   test: tests/examples/ may include examples/, tests/bench/ bench/.
#
# Usage: scripts/check-layers.sh [REPO_ROOT]   (default: this checkout)
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root"

# The folders whose includes are ordered; system and third-party headers
# ("absl/...", "gtest/...") are not ours to order.
layers="core broker transports client examples tests bench fuzz"
pattern="^($(tr ' ' '|' <<<"$layers"))/"

# Every C++ and proto file of the checkout (tracked or new, not ignored).
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files="$(git ls-files --cached --others --exclude-standard -- '*.h' '*.cc' '*.proto' |
    grep -E "$pattern" | sort | while read -r f; do [[ -e "$f" ]] && echo "$f"; done)"
else
  files="$(find . -type f \( -name '*.h' -o -name '*.cc' -o -name '*.proto' \) |
    sed 's|^\./||' | grep -E "$pattern" | sort)"
fi

xargs -r grep -HnE '^[[:space:]]*(#[[:space:]]*include|import)[[:space:]]*"' <<<"$files" |
  awk -v layers="$layers" -v file_count="$(wc -l <<<"$files")" '
BEGIN {
  n = split(layers, names, " ")
  for (i = 1; i <= n; ++i) layer[names[i]] = 1
}
function top(path) { return substr(path, 1, index(path "/", "/") - 1) }
# Why `from` may not include `to`; "" if it may.
function violation(from, to,   a, b, mirrored) {
  a = top(from); b = top(to)
  if (a == b) return ""
  if (a == "core" && (b == "broker" || b == "transports" || b == "client"))
    return "core/ includes nothing of broker/, transports/, client/"
  if (a == "broker" && (b == "transports" || b == "client"))
    return "broker/ includes nothing of transports/, client/"
  if (a == "transports" && b == "client")
    return "transports/ includes nothing of client/"
  if (a == "client" && (b == "bench" || b == "examples" || b == "tests"))
    return "client/ includes nothing of bench/, examples/, tests/"
  if (b == "tests") return "nothing outside tests/ includes tests/"
  if (b == "examples" || b == "bench") {
    mirrored = top(substr(from, length("tests/") + 1))
    if (a == "tests" && mirrored == b) return ""
    return "nothing outside " b "/ (but its tests, tests/" b "/) includes " b "/"
  }
  return ""
}
{
  # FILE:LINE:TEXT
  file = $0; sub(/:.*/, "", file)
  rest = substr($0, length(file) + 2)
  line = rest; sub(/:.*/, "", line)
  text = substr(rest, length(line) + 2)
  if (!match(text, /"[^"]+"/)) next
  target = substr(text, RSTART + 1, RLENGTH - 2)
  if (!(top(target) in layer) || index(target, "/") == 0) next
  ++checked
  why = violation(file, target)
  if (why != "") {
    printf "%s:%s: \"%s\": %s\n", file, line, target, why
    ++problems
  }
}
END {
  if (problems > 0) {
    printf "check-layers: %d include(s) against the layering (of %d checked)\n", problems, checked
    exit 1
  }
  printf "check-layers: ok (%d includes in %d files follow the layering)\n", checked, file_count
}'
