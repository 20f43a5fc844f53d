// File: core/nats/errors.h
// -----------------------------------------------------------------------------
//
// The error strings of the NATS client protocol, and how a Manifold status
// carries the one a NATS client should see.
//
// A NATS server reports problems with a `-ERR '<text>'` line whose text is one
// of a small set of fixed strings; clients compare it (case-insensitively) to
// decide whether to reconnect, report a permissions error or give up. The
// NATS front end keeps two messages apart: the Manifold status names the exact
// problem (for the broker's events and logs), and a payload on it holds the
// fixed NATS string the client gets.
//
// Example:
//
//   absl::Status s = NatsError(wire::PAYLOAD_TOO_LARGE,
//   kMaximumPayloadViolation,
//                              "PUB announces 2000000 bytes; the limit is
//                              1048576");
//   NatsErrorText(s);   // "Maximum Payload Violation"
//   s.message();        // "PUB announces 2000000 bytes; the limit is 1048576"

#ifndef MANIFOLD_CORE_NATS_ERRORS_H_
#define MANIFOLD_CORE_NATS_ERRORS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/manifold.pb.h"

namespace manifold::nats {

// The texts, as the NATS protocol documentation lists them.
inline constexpr absl::string_view kUnknownProtocolOperation =
    "Unknown Protocol Operation";
inline constexpr absl::string_view kParserError = "Parser Error";
// (nats-server 2.9 writes this one in lower case; clients compare texts
// without regard to case.)
inline constexpr absl::string_view kMaximumControlLineExceeded =
    "Maximum Control Line Exceeded";
inline constexpr absl::string_view kMaximumPayloadViolation =
    "Maximum Payload Violation";
inline constexpr absl::string_view kInvalidSubject = "Invalid Subject";
inline constexpr absl::string_view kInvalidPublishSubject =
    "Invalid Publish Subject";
inline constexpr absl::string_view kAuthorizationViolation =
    "Authorization Violation";
inline constexpr absl::string_view kAuthenticationTimeout =
    "Authentication Timeout";
inline constexpr absl::string_view kStaleConnection = "Stale Connection";
inline constexpr absl::string_view kSlowConsumer = "Slow Consumer";
inline constexpr absl::string_view kMaximumConnectionsExceeded =
    "Maximum Connections Exceeded";
inline constexpr absl::string_view kMaximumSubscriptionsExceeded =
    "Maximum Subscriptions Exceeded";

// Returns `Permissions Violation for Publish to "<subject>"`, the text NATS
// clients report as a (non-fatal) permissions error.
std::string PublishPermissionsViolation(absl::string_view subject);

// Returns `Permissions Violation for Subscription to "<subject>"`, or, for a
// queue subscription, `... to "<subject>" using queue "<queue>"`: the texts
// nats-server sends when a SUB is not allowed (the connection stays).
std::string SubscribePermissionsViolation(absl::string_view subject,
                                          absl::string_view queue_group);

// Returns a ProtocolError(code, detail) that also carries `nats_text`, the
// string a NATS client gets in -ERR. REQUIRES: code != wire::OK.
absl::Status NatsError(wire::Code code, absl::string_view nats_text,
                       absl::string_view detail);

// Returns the NATS text `status` carries, or "" if it carries none.
std::string NatsErrorText(const absl::Status& status);

// Returns the NATS text for a fatal error with `code` that carries none of its
// own (the broker's handshake, keepalive, slow-consumer and admission errors),
// or "" when NATS has no string for it.
absl::string_view FatalErrorText(wire::Code code);

// Returns `text` made safe to quote in `-ERR '...'`: quotes become double
// quotes, control characters spaces, and it is cut to `max_bytes`.
std::string SanitizeErrorText(absl::string_view text, size_t max_bytes = 256);

}  // namespace manifold::nats

#endif  // MANIFOLD_CORE_NATS_ERRORS_H_
