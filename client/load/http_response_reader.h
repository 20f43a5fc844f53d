// File: client/load/http_response_reader.h
// -----------------------------------------------------------------------------
//
// Reads HTTP/1.1 responses from the bytes of a client connection, for the
// load tool's Bayeux long-polling client (client/load/bayeux_load.h). The
// client has at most one request in flight per connection, so the reader
// holds one response at a time: Feed() bytes until complete(), look at it,
// then Next(). Bodies may come with Content-Length or chunked (node's
// http-parser takes out the chunking); the first Set-Cookie is kept as
// "name=value", ready to send back in a Cookie header.
//
// Example:
//
//   HttpResponseReader reader;
//   absl::Status fed = reader.Feed(bytes_from_the_socket);
//   if (fed.ok() && reader.complete() && reader.status() == 200)
//     Handle(reader.body());
//   reader.Next();

#ifndef MANIFOLD_CLIENT_LOAD_HTTP_RESPONSE_READER_H_
#define MANIFOLD_CLIENT_LOAD_HTTP_RESPONSE_READER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace manifold::load {

class HttpResponseReader {
 public:
  HttpResponseReader();
  ~HttpResponseReader();
  HttpResponseReader(const HttpResponseReader&) = delete;
  HttpResponseReader& operator=(const HttpResponseReader&) = delete;

  // Parses `bytes`, the next bytes the server sent. Bytes after a complete
  // response are kept for Next(). Returns INVALID_ARGUMENT naming the
  // problem for bytes that are no HTTP/1.x response; the connection is then
  // unusable.
  absl::Status Feed(absl::string_view bytes);
  // Tells the reader the server closed the connection: completes a response
  // whose body runs to the end of the connection. Returns UNAVAILABLE if a
  // response was cut short.
  absl::Status End();

  // True once a whole response has been read.
  bool complete() const { return complete_; }
  // REQUIRES: complete(). The status code, the body (chunking removed), the
  // first Set-Cookie's "name=value" (empty: none), and whether the server
  // keeps the connection open.
  int status() const { return status_; }
  const std::string& body() const { return body_; }
  const std::string& set_cookie() const { return set_cookie_; }
  bool keep_alive() const { return keep_alive_; }

  // Forgets the complete response and parses what followed it, if anything.
  // Errors as for Feed().
  absl::Status Next();

 private:
  struct Parser;
  friend struct Parser;

  std::unique_ptr<Parser> parser_;
  bool complete_ = false;
  int status_ = 0;
  bool keep_alive_ = true;
  std::string body_;
  std::string set_cookie_;
  // Header parsing: the field being read, and whether it is Set-Cookie.
  std::string field_;
  bool in_value_ = false;
  bool cookie_value_ = false;
  // Bytes that arrived after the complete response.
  std::string rest_;
};

}  // namespace manifold::load

#endif  // MANIFOLD_CLIENT_LOAD_HTTP_RESPONSE_READER_H_
