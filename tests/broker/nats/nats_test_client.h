// File: tests/broker/nats/nats_test_client.h
// -----------------------------------------------------------------------------
//
// Test helper: a real Broker (through BrokerHarness, with its fake clock and
// native clients) plus NATS clients that talk to it through NatsCodec, with
// the harness playing the transport for both. NATS clients send raw protocol
// text and read back what the broker wrote, parsed into server operations by
// a small parser of the test's own (not the one under test).
//
//   NatsHarness h;
//   NatsClient& nats = h.ConnectNats("n1");   // INFO, CONNECT, PING/PONG
//   TestClient& native = h.native().Connect("c1");
//   nats.Send("SUB room.* 1\r\n");
//   native.Publish("room/a", "hi");
//   ServerOp m = nats.Next();                  // MSG room.a 1 2 / hi

#ifndef MANIFOLD_TESTS_BROKER_NATS_NATS_TEST_CLIENT_H_
#define MANIFOLD_TESTS_BROKER_NATS_NATS_TEST_CLIENT_H_

#include <deque>
#include <map>
#include <memory>
#include <string>

#include "broker/nats/nats_codec.h"
#include "tests/testing/broker_harness.h"

namespace manifold::testing {

// One operation a NATS server sent.
struct ServerOp {
  std::string op;  // "INFO", "MSG", "HMSG", "+OK", "-ERR", "PING", "PONG"
  std::string subject;
  std::string sid;
  std::string reply;
  std::string headers;  // HMSG: the raw header block
  std::string payload;
  std::string text;  // INFO: the JSON; -ERR: the text between the quotes
  std::string raw;   // the whole operation as received
};

class NatsHarness;

class NatsClient {
 public:
  ConnectionId id() const { return id_; }

  // Sends raw protocol bytes and lets the broker process them.
  void Send(absl::string_view bytes);

  // Everything received and not yet taken as raw bytes.
  std::string TakeRaw();
  // The oldest complete server operation; fails the test if there is none.
  ServerOp Next();
  // All complete operations received so far.
  std::vector<ServerOp> TakeAll();
  // True if nothing (complete or partial) is waiting.
  bool Idle();

  bool closed() const { return closed_; }
  const absl::Status& close_reason() const { return close_reason_; }
  // Stop or resume taking the broker's output.
  void set_reading(bool reading);

  // CONNECT with `json`, then PING; expects (+OK if verbose) and PONG.
  void Handshake(absl::string_view json);
  // PING and expect PONG: everything sent before has been handled.
  void Flush();
  // Sends SUB and flushes.
  void Sub(absl::string_view subject, absl::string_view sid,
           absl::string_view queue = "");
  void Pub(absl::string_view subject, absl::string_view payload,
           absl::string_view reply = "");
  // Sends HPUB with `header_block` (a complete block).
  void Hpub(absl::string_view subject, absl::string_view header_block,
            absl::string_view payload, absl::string_view reply = "");

 private:
  friend class NatsHarness;
  NatsClient(NatsHarness& harness, ConnectionId id)
      : harness_(harness), id_(id) {}
  // Moves complete operations from raw_ to ops_.
  void Parse();

  NatsHarness& harness_;
  ConnectionId id_;
  std::string raw_;
  std::deque<ServerOp> ops_;
  bool reading_ = true;
  bool closed_ = false;
  absl::Status close_reason_;
};

class NatsHarness {
 public:
  explicit NatsHarness(BrokerOptions options = BrokerOptions(),
                       NatsOptions nats = NatsOptions());

  BrokerHarness& native() { return native_; }
  Broker& broker() { return native_.broker(); }
  const NatsOptions& nats_options() const { return nats_; }

  // Accepts a NATS connection from `peer` (its INFO stays unread).
  NatsClient& Accept(absl::string_view peer = "127.0.0.1:40000");
  // Accepts, checks INFO, and completes the handshake with `json`.
  NatsClient& ConnectNats(
      absl::string_view json =
          R"({"verbose":false,"pedantic":false,"headers":true,)"
          R"("no_responders":true,"name":"nats-client","lang":"test"})");

  // Moves the fake clock and fires the broker's timers.
  void Advance(absl::Duration by);
  // Processes input and moves output to every client, native and NATS.
  void Pump();

 private:
  friend class NatsClient;
  BrokerHarness native_;
  NatsOptions nats_;
  std::map<ConnectionId, std::unique_ptr<NatsClient>> clients_;
};

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_BROKER_NATS_NATS_TEST_CLIENT_H_
