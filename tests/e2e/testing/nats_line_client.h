// File: tests/e2e/testing/nats_line_client.h
// -----------------------------------------------------------------------------
//
// For end-to-end tests: a raw NATS-protocol connection that sends exactly the
// bytes a test gives it and reads the broker's answers line by line, so a
// test can send what no real NATS client would (a control line without an
// end, one byte at a time). Every wait has a timeout.
//
//   absl::StatusOr<NatsLineClient> c = NatsLineClient::Connect(broker.nats());
//   // c->info() is the INFO line the broker sent first.
//   c->Send("CONNECT {}\r\nPING\r\n");
//   absl::StatusOr<std::string> pong = c->ReadLine();   // "PONG"

#ifndef MANIFOLD_TESTS_E2E_TESTING_NATS_LINE_CLIENT_H_
#define MANIFOLD_TESTS_E2E_TESTING_NATS_LINE_CLIENT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "transports/sockets/endpoint.h"
#include "transports/sockets/unique_fd.h"

namespace manifold::testing {

class NatsLineClient {
 public:
  // Connects and reads the broker's INFO line.
  static absl::StatusOr<NatsLineClient> Connect(const Endpoint& endpoint);

  NatsLineClient(NatsLineClient&&) = default;
  NatsLineClient& operator=(NatsLineClient&&) = default;

  const std::string& info() const { return info_; }

  // Sends `bytes` as they are, blocking until written. Fails once the broker
  // has closed the connection.
  absl::Status Send(absl::string_view bytes);

  // Returns the next line without its "\r\n"; DEADLINE_EXCEEDED after
  // `timeout`, UNAVAILABLE once the broker closed and every line before the
  // close was returned.
  absl::StatusOr<std::string> ReadLine(
      absl::Duration timeout = absl::Seconds(5));

  // Reads lines until the broker closes; returns them, or DEADLINE_EXCEEDED.
  absl::StatusOr<std::vector<std::string>> ReadUntilClosed(
      absl::Duration timeout = absl::Seconds(5));

 private:
  explicit NatsLineClient(UniqueFd fd) : fd_(std::move(fd)) {}

  UniqueFd fd_;
  std::string info_;
  std::string buffer_;  // received, not yet returned
  bool closed_ = false;
};

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_E2E_TESTING_NATS_LINE_CLIENT_H_
