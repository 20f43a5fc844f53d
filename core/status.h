// File: core/status.h
// -----------------------------------------------------------------------------
//
// Errors in Manifold are `absl::Status` values that also carry the protocol's
// own error code (`wire::Code`), so a failure found deep in the core can be
// reported to a client as a specific, named error without a translation table.
//
// Example:
//
//   absl::Status s = ProtocolError(wire::INVALID_TOPIC,
//                                  "invalid topic 'a//b': segment 2 is empty");
//   s.code();        // absl::StatusCode::kInvalidArgument
//   WireCode(s);     // wire::INVALID_TOPIC
//   s.message();     // "invalid topic 'a//b': segment 2 is empty"

#ifndef MANIFOLD_CORE_STATUS_H_
#define MANIFOLD_CORE_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/manifold.pb.h"

namespace manifold {

// Returns a non-OK status with `message` that carries `code`. The absl code is
// chosen to match the meaning of `code` (e.g. kResourceExhausted for
// TOO_MANY_SUBSCRIPTIONS). REQUIRES: code != wire::OK.
absl::Status ProtocolError(wire::Code code, absl::string_view message);

// Returns the protocol code carried by `status`: wire::OK for an OK status,
// the code given to ProtocolError() when there is one, otherwise a code derived
// from the absl code (wire::INTERNAL when nothing fits).
wire::Code WireCode(const absl::Status& status);

// Returns the absl code that ProtocolError() uses for `code`.
absl::StatusCode AbslCodeFor(wire::Code code);

// Returns the protocol's name for `code`, e.g. "INVALID_TOPIC".
std::string CodeName(wire::Code code);

}  // namespace manifold

#endif  // MANIFOLD_CORE_STATUS_H_
