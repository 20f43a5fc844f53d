// File: client/load/http_link.h
// -----------------------------------------------------------------------------
//
// One keep-alive HTTP/1.1 client connection of the load tool's Bayeux client
// (client/load/bayeux_load.h), with one request in flight at a time: Post()
// queues a POST with a Content-Length, Flush() writes it, Read() reads until
// the response is whole (client/load/http_response_reader.h). Setup uses the
// blocking Exchange(); the measured phase drives the non-blocking socket from
// an epoll loop. A server that closes the connection after a response (no
// keep-alive) gets a fresh connection with the next Post().
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<HttpLink>> link =
//       HttpLink::Open(endpoint, "bench-sub-0", absl::Seconds(5));
//   (*link)->Post("/cometd/handshake", "", R"([{"channel":...}])");
//   absl::Status answered = (*link)->Exchange(absl::Now() + absl::Seconds(5));
//   if (answered.ok()) Use((*link)->response().body());

#ifndef MANIFOLD_CLIENT_LOAD_HTTP_LINK_H_
#define MANIFOLD_CLIENT_LOAD_HTTP_LINK_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/load/http_response_reader.h"
#include "transports/sockets/endpoint.h"
#include "transports/sockets/unique_fd.h"

namespace manifold::load {

class HttpLink {
 public:
  // Connects to `endpoint` within `timeout`, non-blocking. `name` appears in
  // errors.
  static absl::StatusOr<std::unique_ptr<HttpLink>> Open(
      const Endpoint& endpoint, std::string name, absl::Duration timeout);

  int fd() const { return fd_.get(); }
  const std::string& name() const { return name_; }
  // True while a request was posted and its response is not whole.
  bool busy() const { return busy_; }

  // Queues a POST of the JSON `body` to `path`, with a Cookie header unless
  // `cookie` is empty. REQUIRES: !busy(). Returns an error only when a new
  // connection was needed and could not be made.
  absl::Status Post(absl::string_view path, absl::string_view cookie,
                    absl::string_view body);
  // Writes as much of the queued request as the socket takes. Returns an
  // error naming the link if the connection is broken.
  absl::Status Flush();
  bool pending_output() const { return sent_ < output_.size(); }

  // Reads what the socket holds. Returns true once the response is whole
  // (then busy() is false and response() holds it until the next Post()),
  // or an error naming the link (the server closed the connection, or sent
  // no HTTP).
  absl::StatusOr<bool> Read();
  const HttpResponseReader& response() const { return reader_; }

  // Blocking: writes the queued request and reads until its response is
  // whole, or `deadline` passes (DEADLINE_EXCEEDED).
  absl::Status Exchange(absl::Time deadline);

 private:
  HttpLink(UniqueFd fd, const Endpoint& endpoint, std::string name);
  absl::Status Wait(short events, absl::Time deadline);

  UniqueFd fd_;
  const Endpoint endpoint_;
  const std::string name_;
  const std::string host_;  // the Host header's value
  std::string output_;
  size_t sent_ = 0;
  bool busy_ = false;
  bool reopen_ = false;  // the server ends the connection after a response
  HttpResponseReader reader_;
  std::unique_ptr<char[]> buffer_;
};

}  // namespace manifold::load

#endif  // MANIFOLD_CLIENT_LOAD_HTTP_LINK_H_
