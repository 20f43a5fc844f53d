// File: core/headers.h
// -----------------------------------------------------------------------------
//
// Rules for message headers, shared by every protocol front end so that a
// header accepted from one kind of client can be delivered to any other (NATS
// headers travel as "Key: Value" lines, so keys cannot hold ':' or spaces and
// values cannot hold line breaks).
//
// Example:
//
//   absl::Status s = ValidateHeader("Trace-Id", "abc");   // OK
//   ValidateHeader("bad key", "x");  // INVALID_ARGUMENT: names the character

#ifndef MANIFOLD_CORE_HEADERS_H_
#define MANIFOLD_CORE_HEADERS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace manifold {

// Longest header key accepted.
inline constexpr size_t kMaxHeaderKeyBytes = 256;

// Returns OK if `key` and `value` form a valid header, else an
// INVALID_ARGUMENT error naming the problem. Keys are 1..256 bytes of printable
// ASCII without ':' or space; values are any bytes except CR and LF.
absl::Status ValidateHeader(absl::string_view key, absl::string_view value);

}  // namespace manifold

#endif  // MANIFOLD_CORE_HEADERS_H_
