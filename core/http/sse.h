// File: core/http/sse.h
// -----------------------------------------------------------------------------
//
// Server-Sent Events (the WHATWG HTML "text/event-stream" format) as bytes:
// events with an id, a type and data lines, comments (heartbeats) and the
// reconnection advice.
//
// Example:
//
//   std::string out;
//   AppendSseRetry(absl::Seconds(2), out);        // "retry: 2000\n\n"
//   AppendSseEvent("rooms/a", "1", "hello", out);  // id, event, data
//   AppendSseComment("keepalive", out);            // ": keepalive\n\n"

#ifndef MANIFOLD_CORE_HTTP_SSE_H_
#define MANIFOLD_CORE_HTTP_SSE_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace manifold::http {

// Appends one event: "id: <id>", "event: <event>" and one "data: " line per
// line of `data`. A line break in `data` (CR, LF or CRLF) starts a new data
// line, which a client joins back with LF: CR and CRLF come out as LF.
// `id` and `event` must hold no line break (each is cut at the first one).
// A client sends the id of the last event it saw back as Last-Event-ID when
// it reconnects.
void AppendSseEvent(absl::string_view event, absl::string_view id,
                    absl::string_view data, std::string& out);

// Appends a comment line, which clients ignore: a heartbeat.
void AppendSseComment(absl::string_view text, std::string& out);

// Appends the reconnection delay advice ("retry: <ms>").
void AppendSseRetry(absl::Duration delay, std::string& out);

}  // namespace manifold::http

#endif  // MANIFOLD_CORE_HTTP_SSE_H_
