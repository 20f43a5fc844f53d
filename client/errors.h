// File: client/errors.h
// -----------------------------------------------------------------------------
//
// How a client reports what the broker said. Every failure the broker can
// report becomes an `absl::Status` whose message starts with the protocol's
// name for it, followed by the broker's own explanation:
//
//   INVALID_TOPIC: invalid topic 'a//b': segment 2 is empty
//   NO_SERVER: no server for topic 'time/now'
//
// The status also carries the protocol code, so programs can branch on it
// without parsing text: `WireCode(status)` (core/status.h) for operation
// errors, `RequestStatusOf(status)` for the outcome of a request.
//
// Example:
//
//   absl::StatusOr<Message> reply = client->Request("time/now", "", timeout);
//   if (RequestStatusOf(reply.status()) == wire::NO_SERVER) StartServer();

#ifndef MANIFOLD_CLIENT_ERRORS_H_
#define MANIFOLD_CLIENT_ERRORS_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/manifold.pb.h"

namespace manifold {

// Returns the status for an `Error{code, message}` from the broker: the absl
// code that core/status.h assigns to `code`, the message
// "<CODE_NAME>: <message>", and `code` itself (readable with WireCode()).
// REQUIRES: code != wire::OK.
absl::Status BrokerError(wire::Code code, absl::string_view message);

// Returns the status for a request that did not succeed:
//   NO_SERVER    -> kUnavailable       nobody serves the topic
//   TIMED_OUT    -> kDeadlineExceeded  no answer in time
//   SERVER_GONE  -> kAborted           the server left before answering
//   REJECTED     -> kFailedPrecondition  the server declined
// with the message "<STATUS_NAME>: <message>" and `status` itself (readable
// with RequestStatusOf()). REQUIRES: status != wire::REQUEST_OK.
absl::Status RequestFailed(wire::RequestStatus status,
                           absl::string_view message);

// Returns the request outcome carried by a status from RequestFailed(), or
// nullopt for any other status (an OK status gives REQUEST_OK).
std::optional<wire::RequestStatus> RequestStatusOf(const absl::Status& status);

}  // namespace manifold

#endif  // MANIFOLD_CLIENT_ERRORS_H_
