// File: tests/transports/testing/wire_client.h
// -----------------------------------------------------------------------------
//
// For tests: a small blocking client that speaks raw native frames
// (core/framing.h, core/manifold.proto) over a real stream socket, TCP or
// Unix. It knows nothing of the client library, so transport tests check the
// wire itself. Every wait has a timeout.
//
//   absl::StatusOr<WireClient> alice = WireClient::Connect(endpoint);
//   ASSERT_TRUE(alice.ok());
//   ASSERT_TRUE(alice->Hello("alice").ok());
//   absl::StatusOr<uint64_t> sub = alice->Subscribe("room/*");
//   alice->Publish("room/1", "hi");
//   absl::StatusOr<wire::ServerMessage> m = alice->Receive();
//   EXPECT_EQ(m->deliver().payload(), "hi");

#ifndef MANIFOLD_TESTS_TRANSPORTS_TESTING_WIRE_CLIENT_H_
#define MANIFOLD_TESTS_TRANSPORTS_TESTING_WIRE_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "transports/sockets/endpoint.h"
#include "transports/sockets/unique_fd.h"

namespace manifold::testing {

class WireClient {
 public:
  // Connects a blocking socket. `receive_buffer_bytes` > 0 sets SO_RCVBUF
  // before connecting (a small window makes the broker's writes partial).
  static absl::StatusOr<WireClient> Connect(const Endpoint& endpoint,
                                            int receive_buffer_bytes = 0);

  WireClient(WireClient&&) = default;
  WireClient& operator=(WireClient&&) = default;

  int fd() const { return fd_.get(); }

  // Sends one frame / raw bytes, blocking until written.
  absl::Status Send(const wire::ClientMessage& message);
  absl::Status SendRaw(absl::string_view bytes);

  // Returns the next message from the broker. DEADLINE_EXCEEDED after
  // `timeout`; UNAVAILABLE once the broker closed the connection and every
  // message before the close was returned.
  absl::StatusOr<wire::ServerMessage> Receive(
      absl::Duration timeout = absl::Seconds(5));

  // Returns the next message that is not a broker keepalive Ping.
  absl::StatusOr<wire::ServerMessage> ReceiveSkippingPings(
      absl::Duration timeout = absl::Seconds(5));

  // Reads until the broker closes the connection; returns the messages that
  // came before the close, or DEADLINE_EXCEEDED.
  absl::StatusOr<std::vector<wire::ServerMessage>> ReadUntilClosed(
      absl::Duration timeout = absl::Seconds(5));

  // --- Operations; each waits for the broker's answer where there is one. ---
  absl::StatusOr<wire::Welcome> Hello(absl::string_view name);
  // Returns the new subscription's id, or the broker's error as a status.
  absl::StatusOr<uint64_t> Subscribe(absl::string_view pattern);
  // Publishes without an ack.
  absl::Status Publish(absl::string_view topic, absl::string_view payload);
  // Publishes with ack=true; returns the broker's answer (Ack or Error).
  absl::StatusOr<wire::ServerMessage> PublishAcked(absl::string_view topic,
                                                   absl::string_view payload);
  // Sends a Ping and waits for its Pong.
  absl::Status Ping();

  // Closes the sending side (the broker sees end of stream).
  void ShutdownWrite();
  // Closes with SO_LINGER 0, so the broker sees a reset.
  void Reset();
  // Closes normally.
  void Close() { fd_.reset(); }

  uint64_t next_op_id() { return ++last_op_id_; }

 private:
  explicit WireClient(UniqueFd fd);

  UniqueFd fd_;
  std::unique_ptr<FrameDecoder> decoder_;
  bool closed_ = false;
  uint64_t last_op_id_ = 0;
};

// A distinct payload of `size` bytes, so a corrupted or reordered delivery
// shows up.
std::string PatternPayload(size_t size, uint32_t seed);

// Connects to `endpoint` (see WireClient::Connect) and says Hello as
// `name`. For tests that line up several clients: a failure to connect or to
// be welcomed is a test failure (EXPECT_*), and a client that could not
// connect ends the test.
WireClient GreetedClient(const Endpoint& endpoint, absl::string_view name,
                         int receive_buffer_bytes = 0);

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_TRANSPORTS_TESTING_WIRE_CLIENT_H_
