// File: tests/testing/broker_harness.h
// -----------------------------------------------------------------------------
//
// Test helper: a Broker with a fake clock and clients that talk to it through
// real frames, with the harness playing the transport (it moves bytes, honours
// WantsRead/ShouldClose and closes links). Tests read as specifications:
//
//   BrokerHarness h;
//   TestClient& alice = h.Connect("alice");
//   TestClient& bob = h.Connect("bob");
//   SubscriptionId sub = bob.Subscribe("room/*");
//   alice.Publish("room/1", "hi");
//   wire::ServerMessage m = bob.Next();
//   EXPECT_EQ(m.deliver().payload(), "hi");
//   h.Advance(absl::Seconds(30));      // fake time; fires the broker's timers

#ifndef MANIFOLD_TESTS_TESTING_BROKER_HARNESS_H_
#define MANIFOLD_TESTS_TESTING_BROKER_HARNESS_H_

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "broker/broker.h"
#include "core/framing.h"
#include "core/manifold.pb.h"

namespace manifold::testing {

class BrokerHarness;

// One client: sends operations, collects what the broker sends back.
class TestClient {
 public:
  ConnectionId id() const { return id_; }
  const std::string& name() const { return name_; }

  // Sends one operation and lets the broker process it.
  void Send(const wire::ClientMessage& message);
  // Sends raw bytes (for malformed input) and lets the broker process them.
  void SendRaw(absl::string_view bytes);

  // Everything received so far, removed from the inbox.
  std::vector<wire::ServerMessage> TakeAll();
  // The oldest received message; fails the test if there is none.
  wire::ServerMessage Next();
  // True if nothing has been received.
  bool Idle();
  size_t inbox_size() {
    Pump();
    return inbox_.size();
  }

  // The link was closed (by the broker, or by Disconnect()).
  bool closed() const { return closed_; }
  // The status the broker closed the connection with.
  const absl::Status& close_reason() const { return close_reason_; }

  // Stop or resume taking the broker's output, like a peer that does not read.
  void set_reading(bool reading);

  // Closes the link from the client's side.
  void Disconnect();

  // --- Operations; each checks the broker's answer with gtest.
  // ----------------
  void Hello(absl::string_view name, bool no_echo = false);
  // Subscribes and returns the new id, expecting an Ack.
  SubscriptionId Subscribe(absl::string_view pattern,
                           absl::string_view queue_group = "");
  // Sends a Subscribe and returns the broker's reply (Ack or Error).
  wire::ServerMessage TrySubscribe(absl::string_view pattern,
                                   absl::string_view queue_group = "");
  void Unsubscribe(SubscriptionId id, uint64_t max_messages = 0);
  // Publishes without an ack.
  void Publish(absl::string_view topic, absl::string_view payload);
  // Publishes with ack=true and returns the broker's reply.
  wire::ServerMessage PublishAcked(absl::string_view topic,
                                   absl::string_view payload);
  wire::ServerMessage Serve(absl::string_view topic);
  wire::ServerMessage Unserve(absl::string_view topic);
  // Sends a Request; returns its op id. The Response arrives later.
  uint64_t Request(absl::string_view topic, absl::string_view payload,
                   uint32_t timeout_ms = 0);
  void Respond(uint64_t request_id, absl::string_view payload,
               wire::RequestStatus status = wire::REQUEST_OK);

  uint64_t next_op_id() { return ++last_op_id_; }

 private:
  friend class BrokerHarness;
  TestClient(BrokerHarness& harness, ConnectionId id, std::string name)
      : harness_(harness), id_(id), name_(std::move(name)) {}
  void Pump();

  BrokerHarness& harness_;
  ConnectionId id_;
  std::string name_;
  std::deque<wire::ServerMessage> inbox_;
  FrameDecoder decoder_{FrameDecoder::Options{.max_frame_bytes = 64 << 20}};
  bool reading_ = true;
  bool closed_ = false;
  absl::Status close_reason_;
  uint64_t last_op_id_ = 0;
};

class BrokerHarness {
 public:
  explicit BrokerHarness(BrokerOptions options = BrokerOptions());

  Broker& broker() { return broker_; }
  absl::Time now() const { return now_; }

  // Accepts a connection and, if `hello`, completes the handshake (expecting
  // a Welcome). The client lives as long as the harness.
  TestClient& Connect(absl::string_view name, bool hello = true);

  // Moves the fake clock forward and fires the broker's due timers.
  void Advance(absl::Duration by);

  // Lets the broker process input and moves output to the clients, until
  // nothing moves. Called by TestClient after every send; tests call it after
  // Admit/Refuse/Shutdown.
  void Pump();

  // All events the broker queued, removed from its queue.
  std::vector<wire::BrokerEvent> TakeEvents();

  // Bytes the broker wrote to each client, in order; for determinism checks.
  const std::string& transcript() const { return transcript_; }

 private:
  friend class TestClient;

  void PumpOnce();

  Broker broker_;
  absl::Time now_;
  std::map<ConnectionId, std::unique_ptr<TestClient>> clients_;
  std::string transcript_;
};

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_TESTING_BROKER_HARNESS_H_
