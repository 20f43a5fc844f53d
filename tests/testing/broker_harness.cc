#include "tests/testing/broker_harness.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace manifold::testing {

// ---------------------------------------------------------------------------
// BrokerHarness

BrokerHarness::BrokerHarness(BrokerOptions options)
    : broker_(std::move(options)), now_(absl::FromUnixSeconds(1'800'000'000)) {}

TestClient& BrokerHarness::Connect(absl::string_view name, bool hello) {
  Connection& c = broker_.Accept(PeerInfo{absl::StrCat("test:", name)}, now_);
  auto client = std::unique_ptr<TestClient>(
      new TestClient(*this, c.id(), std::string(name)));
  TestClient& ref = *client;
  clients_.emplace(c.id(), std::move(client));
  Pump();
  if (hello) ref.Hello(name);
  return ref;
}

void BrokerHarness::Advance(absl::Duration by) {
  now_ += by;
  broker_.Tick(now_);
  Pump();
}

void BrokerHarness::Pump() {
  // As a transport's turn does: draining a reader may let stalled writers go
  // on, whose input then needs processing; repeat until nothing moves.
  uint64_t consumed = 0;
  do {
    consumed = broker_.statistics().bytes_out;
    PumpOnce();
  } while (broker_.statistics().bytes_out != consumed);
}

void BrokerHarness::PumpOnce() {
  broker_.Process(now_);
  std::vector<ConnectionId> changed;
  broker_.TakeChanged(changed);
  // Every client is looked at, not only the changed ones, so that a client
  // that resumes reading drains its backlog. broker_test checks TakeChanged.
  for (auto& [id, client] : clients_) {
    if (client->closed_) continue;
    Connection* c = broker_.FindConnection(id);
    if (c == nullptr) continue;
    if (client->reading_) {
      absl::string_view chunks[64];
      while (c->PendingOutputBytes() > 0) {
        const size_t n = c->PendingOutput(absl::MakeSpan(chunks));
        size_t written = 0;
        for (size_t i = 0; i < n; ++i) {
          client->decoder_.Append(chunks[i]);
          absl::StrAppend(&transcript_, chunks[i]);
          written += chunks[i].size();
        }
        c->Consume(written);
      }
      while (true) {
        wire::ServerMessage m;
        absl::StatusOr<bool> got = client->decoder_.Next(m);
        ASSERT_TRUE(got.ok()) << got.status();
        if (!*got) break;
        client->inbox_.push_back(std::move(m));
      }
    }
    if (c->ShouldClose()) {
      client->closed_ = true;
      client->close_reason_ = c->close_reason();
      broker_.Close(id, "transport closed the link", now_);
    }
  }
}

std::vector<wire::BrokerEvent> BrokerHarness::TakeEvents() {
  std::vector<wire::BrokerEvent> events;
  while (auto event = broker_.PollEvent()) events.push_back(std::move(*event));
  return events;
}

// ---------------------------------------------------------------------------
// TestClient: transport side

void TestClient::Pump() { harness_.Pump(); }

void TestClient::Send(const wire::ClientMessage& message) {
  SendRaw(EncodeFrame(message));
}

void TestClient::SendRaw(absl::string_view bytes) {
  ASSERT_FALSE(closed_) << name_ << " sends on a closed connection";
  Connection* c = harness_.broker_.FindConnection(id_);
  ASSERT_NE(c, nullptr);
  c->Receive(bytes, harness_.now_);
  harness_.Pump();
}

std::vector<wire::ServerMessage> TestClient::TakeAll() {
  Pump();
  std::vector<wire::ServerMessage> all(inbox_.begin(), inbox_.end());
  inbox_.clear();
  return all;
}

wire::ServerMessage TestClient::Next() {
  Pump();
  if (inbox_.empty()) {
    ADD_FAILURE() << name_ << " expected a message but has none";
    return wire::ServerMessage();
  }
  wire::ServerMessage m = std::move(inbox_.front());
  inbox_.pop_front();
  return m;
}

bool TestClient::Idle() {
  Pump();
  return inbox_.empty();
}

void TestClient::set_reading(bool reading) {
  reading_ = reading;
  Pump();
}

void TestClient::Disconnect() {
  if (closed_) return;
  closed_ = true;
  harness_.broker_.Close(id_, "peer closed the connection", harness_.now_);
  harness_.Pump();
}

// ---------------------------------------------------------------------------
// TestClient: operations

void TestClient::Hello(absl::string_view name, bool no_echo) {
  wire::ClientMessage m;
  m.mutable_hello()->set_protocol_version(1);
  m.mutable_hello()->set_client_name(std::string(name));
  m.mutable_hello()->set_no_echo(no_echo);
  Send(m);
  if (harness_.broker_.options().require_admission()) return;
  wire::ServerMessage welcome = Next();
  EXPECT_TRUE(welcome.has_welcome()) << welcome.DebugString();
}

wire::ServerMessage TestClient::TrySubscribe(absl::string_view pattern,
                                             absl::string_view queue_group) {
  wire::ClientMessage m;
  wire::Subscribe* s = m.mutable_subscribe();
  s->set_op_id(next_op_id());
  s->set_pattern(std::string(pattern));
  s->set_queue_group(std::string(queue_group));
  Send(m);
  return Next();
}

SubscriptionId TestClient::Subscribe(absl::string_view pattern,
                                     absl::string_view queue_group) {
  wire::ServerMessage reply = TrySubscribe(pattern, queue_group);
  EXPECT_TRUE(reply.has_ack()) << reply.DebugString();
  EXPECT_EQ(reply.ack().op_id(), last_op_id_);
  return SubscriptionId(reply.ack().subscription_id());
}

void TestClient::Unsubscribe(SubscriptionId id, uint64_t max_messages) {
  wire::ClientMessage m;
  m.mutable_unsubscribe()->set_op_id(next_op_id());
  m.mutable_unsubscribe()->set_subscription_id(id.value());
  m.mutable_unsubscribe()->set_max_messages(max_messages);
  Send(m);
  wire::ServerMessage reply = Next();
  EXPECT_TRUE(reply.has_ack()) << reply.DebugString();
}

void TestClient::Publish(absl::string_view topic, absl::string_view payload) {
  wire::ClientMessage m;
  m.mutable_publish()->set_op_id(next_op_id());
  m.mutable_publish()->set_topic(std::string(topic));
  m.mutable_publish()->set_payload(std::string(payload));
  Send(m);
}

wire::ServerMessage TestClient::PublishAcked(absl::string_view topic,
                                             absl::string_view payload) {
  wire::ClientMessage m;
  m.mutable_publish()->set_op_id(next_op_id());
  m.mutable_publish()->set_topic(std::string(topic));
  m.mutable_publish()->set_payload(std::string(payload));
  m.mutable_publish()->set_ack(true);
  Send(m);
  return Next();
}

wire::ServerMessage TestClient::Serve(absl::string_view topic) {
  wire::ClientMessage m;
  m.mutable_serve()->set_op_id(next_op_id());
  m.mutable_serve()->set_topic(std::string(topic));
  Send(m);
  return Next();
}

wire::ServerMessage TestClient::Unserve(absl::string_view topic) {
  wire::ClientMessage m;
  m.mutable_unserve()->set_op_id(next_op_id());
  m.mutable_unserve()->set_topic(std::string(topic));
  Send(m);
  return Next();
}

uint64_t TestClient::Request(absl::string_view topic, absl::string_view payload,
                             uint32_t timeout_ms) {
  wire::ClientMessage m;
  const uint64_t op_id = next_op_id();
  m.mutable_request()->set_op_id(op_id);
  m.mutable_request()->set_topic(std::string(topic));
  m.mutable_request()->set_payload(std::string(payload));
  m.mutable_request()->set_timeout_ms(timeout_ms);
  Send(m);
  return op_id;
}

void TestClient::Respond(uint64_t request_id, absl::string_view payload,
                         wire::RequestStatus status) {
  wire::ClientMessage m;
  m.mutable_respond()->set_op_id(next_op_id());
  m.mutable_respond()->set_request_id(request_id);
  m.mutable_respond()->set_payload(std::string(payload));
  m.mutable_respond()->set_status(status);
  Send(m);
}

}  // namespace manifold::testing
