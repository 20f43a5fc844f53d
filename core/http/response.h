// File: core/http/response.h
// -----------------------------------------------------------------------------
//
// HTTP/1.1 responses as bytes: a status line, headers and a body with its
// Content-Length, or a head alone for a body that streams until the
// connection closes (Server-Sent Events).
//
// Example:
//
//   std::string out;
//   AppendResponse(200, "application/json", R"({"delivered":3})",
//                  ResponseOptions{}, out);

#ifndef MANIFOLD_CORE_HTTP_RESPONSE_H_
#define MANIFOLD_CORE_HTTP_RESPONSE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace manifold::http {

struct ResponseOptions {
  // Adds "Connection: close": the server closes after this response.
  bool close = false;
  // More headers, written as given ("Allow", "Cache-Control", ...).
  std::vector<std::pair<std::string, std::string>> headers;
};

// Appends a complete response with `body` and its Content-Length.
void AppendResponse(int status, absl::string_view content_type,
                    absl::string_view body, const ResponseOptions& options,
                    std::string& out);

// Appends the status line and headers of a response whose body follows
// without a length and ends when the connection closes.
void AppendStreamingResponseHead(int status, absl::string_view content_type,
                                 const ResponseOptions& options,
                                 std::string& out);

// A JSON error body: {"error":{"code":"NO_SERVER","status":503,
// "message":"..."}}. `code` names the problem (a wire::Code or RequestStatus
// name); the message is escaped as JSON requires.
std::string JsonErrorBody(absl::string_view code, int status,
                          absl::string_view message);

// `text` as a JSON string literal, quotes included.
std::string JsonString(absl::string_view text);

}  // namespace manifold::http

#endif  // MANIFOLD_CORE_HTTP_RESPONSE_H_
