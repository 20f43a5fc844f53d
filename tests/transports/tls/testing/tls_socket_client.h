// File: tests/transports/tls/testing/tls_socket_client.h
// -----------------------------------------------------------------------------
//
// For tests: a blocking TLS client over a real TCP socket, made of a client
// TlsSession (transports/tls/tls_session.h). It can read a clear greeting
// line first (NATS's INFO before the handshake). Every wait has a timeout.
//
//   absl::StatusOr<TlsSocketClient> c =
//       TlsSocketClient::Connect(endpoint, client_context);
//   ASSERT_TRUE(c.ok() && c->Handshake().ok());
//   c->Send(HelloFrame());
//   absl::StatusOr<std::string> bytes = c->ReadAtLeast(1);

#ifndef MANIFOLD_TESTS_TRANSPORTS_TLS_TESTING_TLS_SOCKET_CLIENT_H_
#define MANIFOLD_TESTS_TRANSPORTS_TLS_TESTING_TLS_SOCKET_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "transports/sockets/endpoint.h"
#include "transports/sockets/unique_fd.h"
#include "transports/tls/tls_context.h"
#include "transports/tls/tls_session.h"

namespace manifold::testing {

class TlsSocketClient {
 public:
  // Connects a TCP socket to `endpoint`; the TLS session starts when
  // Handshake() is called.
  static absl::StatusOr<TlsSocketClient> Connect(
      const Endpoint& endpoint,
      std::shared_ptr<const TlsClientContext> context);

  TlsSocketClient(TlsSocketClient&&) = default;
  TlsSocketClient& operator=(TlsSocketClient&&) = default;

  // Reads one line in clear (through "\r\n"), before the handshake.
  absl::StatusOr<std::string> ReadClearLine(
      absl::Duration timeout = absl::Seconds(5));

  // Runs the handshake to its end. Returns the session's failure, or
  // UNAVAILABLE if the server closed the connection first.
  absl::Status Handshake(absl::Duration timeout = absl::Seconds(5));

  // Encrypts and sends `plaintext`. REQUIRES: the handshake is done.
  absl::Status Send(absl::string_view plaintext);

  // Returns the plaintext received so far once there are at least `n`
  // bytes of it, and forgets it. DEADLINE_EXCEEDED after `timeout`;
  // UNAVAILABLE if the server closed first.
  absl::StatusOr<std::string> ReadAtLeast(
      size_t n, absl::Duration timeout = absl::Seconds(5));

  // Waits until the server closes the connection (end of stream or reset).
  absl::Status WaitForClose(absl::Duration timeout = absl::Seconds(5));

  TlsSession& session() { return *session_; }

 private:
  TlsSocketClient(UniqueFd fd, std::unique_ptr<TlsSession> session);
  // Reads once (waiting up to `deadline`) and feeds the session. Returns
  // UNAVAILABLE at end of stream.
  absl::Status ReadOnce(absl::Time deadline);
  absl::Status Flush();

  UniqueFd fd_;
  std::unique_ptr<TlsSession> session_;
  std::string clear_;  // bytes read before the handshake started
  std::string plain_;
  bool started_ = false;
};

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_TRANSPORTS_TLS_TESTING_TLS_SOCKET_CLIENT_H_
