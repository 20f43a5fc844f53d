// File: core/http/request_parser.h
// -----------------------------------------------------------------------------
//
// HTTP/1.1 requests from a byte stream, one at a time, on top of node's
// http-parser (libhttp-parser). Sans-IO: the caller hands over bytes as they
// arrive; the parser stops at the end of each request so that pipelined
// requests are answered in order, and enforces limits on the header block,
// the number of headers and the body, each failing with the HTTP status that
// names the problem (431, 413, 400, 505).
//
// Example:
//
//   RequestParser parser(RequestLimits{});
//   absl::StatusOr<size_t> used = parser.Feed(bytes);
//   if (!used.ok()) { /* answer parser.error_status(), then close */ }
//   if (parser.complete()) {
//     const HttpRequest& request = parser.request();
//     ...                        // answer it
//     parser.Next();             // then read the next one from bytes[*used..]
//   }

#ifndef MANIFOLD_CORE_HTTP_REQUEST_PARSER_H_
#define MANIFOLD_CORE_HTTP_REQUEST_PARSER_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace manifold::http {

// One header; `name` is lower-cased (HTTP names are case-insensitive).
struct HttpHeader {
  std::string name;
  std::string value;
};

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: "/pub/a%2Fb?x=1"
  std::string path;    // the target's path, percent-decoded: "/pub/a/b"
  std::string query;   // the target's query, undecoded: "x=1"
  std::vector<HttpHeader> headers;
  std::string body;  // de-chunked
  int http_major = 1;
  int http_minor = 1;
  // The connection stays open after the answer (HTTP/1.1 without
  // "Connection: close", or HTTP/1.0 with "Connection: keep-alive").
  bool keep_alive = true;
  // "Connection: upgrade" with an "Upgrade" header: the bytes after this
  // request belong to another protocol.
  bool upgrade = false;

  // The first value of header `lowercase_name`, or nullptr.
  const std::string* Header(absl::string_view lowercase_name) const;
};

struct RequestLimits {
  // The request line and headers together (431 past it; the request line
  // alone past it is 414).
  size_t max_header_bytes = 16 * 1024;
  // Header fields in one request (431 past it).
  size_t max_headers = 64;
  // The body, after de-chunking (413 past it).
  size_t max_body_bytes = 1 << 20;
};

class RequestParser {
 public:
  explicit RequestParser(RequestLimits limits);
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses the front of `bytes`. Returns how many bytes it used: all of them
  // while the request is incomplete, or up to the end of the request once it
  // is complete() (the rest belongs to the next request, or after an upgrade
  // to the new protocol). Returns an error when the bytes are not a valid
  // request or break a limit; error_status() then holds the HTTP status to
  // answer with, and the connection must close.
  // REQUIRES: !complete() (call Next() first), and no earlier error.
  absl::StatusOr<size_t> Feed(absl::string_view bytes);

  // True once a whole request has been parsed.
  bool complete() const { return complete_; }
  // True when part of a request has arrived but not all of it.
  bool in_progress() const { return started_ && !complete_; }
  // The request. REQUIRES: complete().
  const HttpRequest& request() const { return request_; }
  HttpRequest& mutable_request() { return request_; }

  // Forgets the finished request and gets ready for the next one.
  // REQUIRES: complete() and !request().upgrade.
  void Next();

  // Changes the limits for the requests not yet begun.
  void set_limits(const RequestLimits& limits) { limits_ = limits; }

  // The HTTP status for the error Feed() returned (400, 413, 414, 431, 505).
  int error_status() const { return error_status_; }

 private:
  struct Callbacks;
  absl::Status Fail(int status, absl::string_view message);

  RequestLimits limits_;
  struct ParserState;
  std::unique_ptr<ParserState> state_;
  HttpRequest request_;
  bool started_ = false;
  bool complete_ = false;
  size_t header_bytes_ = 0;
  bool last_was_value_ = false;
  int error_status_ = 0;
  std::string error_message_;
};

// Percent-decodes `text` ("%2F" -> "/"; with `plus_is_space`, "+" -> " " as
// in query strings). Returns false when a "%" is not followed by two hex
// digits.
bool PercentDecode(absl::string_view text, bool plus_is_space,
                   std::string& out);

// The standard reason phrase for an HTTP status code ("Not Found").
absl::string_view ReasonPhrase(int status);

}  // namespace manifold::http

#endif  // MANIFOLD_CORE_HTTP_REQUEST_PARSER_H_
