// File: broker/http/http_status.h
// -----------------------------------------------------------------------------
//
// The HTTP status that stands for a broker error or a request's outcome, so
// every web protocol (REST answers, Bayeux's "NNN::reason" errors) says the
// same thing for the same failure.
//
// Example:
//
//   int status = StatusForError(wire::INVALID_TOPIC);      // 400
//   int timeout = StatusForRequest(wire::TIMED_OUT);        // 504

#ifndef MANIFOLD_BROKER_HTTP_HTTP_STATUS_H_
#define MANIFOLD_BROKER_HTTP_HTTP_STATUS_H_

#include "core/manifold.pb.h"

namespace manifold {

// The status for an operation's (non-fatal) error: 400 bad topic or
// argument, 403 reserved or refused, 413 too large, 429 over a per-client
// limit, 408 too slow, 503 overloaded or shutting down, 500 otherwise.
int StatusForError(wire::Code code);

// The status for a request's outcome: 200 answered, 503 NO_SERVER, 504
// TIMED_OUT, 502 SERVER_GONE, 422 REJECTED.
int StatusForRequest(wire::RequestStatus status);

}  // namespace manifold

#endif  // MANIFOLD_BROKER_HTTP_HTTP_STATUS_H_
