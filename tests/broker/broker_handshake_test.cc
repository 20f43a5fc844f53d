// Handshake, admission and connection lifecycle.

#include "broker/broker.h"
#include "core/framing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/broker_harness.h"

namespace manifold {
namespace {

using ::manifold::testing::BrokerHarness;
using ::manifold::testing::TestClient;
using ::testing::HasSubstr;

wire::ClientMessage HelloMessage(uint32_t version, absl::string_view name) {
  wire::ClientMessage m;
  m.mutable_hello()->set_protocol_version(version);
  m.mutable_hello()->set_client_name(std::string(name));
  return m;
}

TEST(BrokerHandshakeTest, HelloIsAnsweredWithWelcome) {
  BrokerHarness h;
  TestClient& c = h.Connect("alice", /*hello=*/false);
  c.Send(HelloMessage(1, "alice"));
  wire::ServerMessage m = c.Next();
  ASSERT_TRUE(m.has_welcome());
  EXPECT_EQ(m.welcome().protocol_version(), 1u);
  EXPECT_EQ(m.welcome().session_id(), c.id().value());
  EXPECT_EQ(m.welcome().server_name(), "manifold");
  EXPECT_EQ(m.welcome().max_payload_bytes(), 1u << 20);
  EXPECT_EQ(m.welcome().keepalive_interval_ms(), 30000u);
  EXPECT_EQ(h.broker().statistics().connections, 1u);
}

TEST(BrokerHandshakeTest, UnsupportedVersionIsAFatalErrorNamingTheVersions) {
  BrokerHarness h;
  TestClient& c = h.Connect("old", /*hello=*/false);
  c.Send(HelloMessage(7, "old"));
  wire::ServerMessage m = c.Next();
  ASSERT_TRUE(m.has_error());
  EXPECT_EQ(m.error().code(), wire::UNSUPPORTED_VERSION);
  EXPECT_TRUE(m.error().fatal());
  EXPECT_THAT(m.error().message(),
              HasSubstr("protocol version 7 is not supported; this broker "
                        "speaks version 1"));
  EXPECT_TRUE(c.closed());
}

TEST(BrokerHandshakeTest, OperationBeforeHelloIsRejectedAndCloses) {
  BrokerHarness h;
  TestClient& c = h.Connect("eager", /*hello=*/false);
  wire::ClientMessage m;
  m.mutable_subscribe()->set_op_id(1);
  m.mutable_subscribe()->set_pattern("a");
  c.Send(m);
  wire::ServerMessage reply = c.Next();
  EXPECT_EQ(reply.error().code(), wire::HANDSHAKE_REQUIRED);
  EXPECT_THAT(reply.error().message(),
              HasSubstr("operation 'subscribe' before Hello"));
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(h.broker().statistics().protocol_errors, 1u);
}

TEST(BrokerHandshakeTest, PublishBeforeHelloIsRejected) {
  BrokerHarness h;
  TestClient& c = h.Connect("eager", /*hello=*/false);
  c.Publish("a", "x");
  EXPECT_EQ(c.Next().error().code(), wire::HANDSHAKE_REQUIRED);
  EXPECT_TRUE(c.closed());
}

TEST(BrokerHandshakeTest, SecondHelloIsAProtocolError) {
  BrokerHarness h;
  TestClient& c = h.Connect("twice");
  c.Send(HelloMessage(1, "twice"));
  wire::ServerMessage m = c.Next();
  EXPECT_EQ(m.error().code(), wire::HANDSHAKE_REQUIRED);
  EXPECT_THAT(m.error().message(), HasSubstr("second Hello"));
  EXPECT_TRUE(c.closed());
}

TEST(BrokerHandshakeTest, ClientNameWithControlCharactersIsRejected) {
  BrokerHarness h;
  TestClient& c = h.Connect("x", /*hello=*/false);
  c.Send(HelloMessage(1, "bad\nname"));
  EXPECT_EQ(c.Next().error().code(), wire::INVALID_ARGUMENT);
  EXPECT_TRUE(c.closed());
}

TEST(BrokerHandshakeTest, PipelinedOperationsAfterHelloAreHandledInOrder) {
  BrokerHarness h;
  TestClient& c = h.Connect("pipelined", /*hello=*/false);
  std::string bytes = EncodeFrame(HelloMessage(1, "pipelined"));
  wire::ClientMessage sub;
  sub.mutable_subscribe()->set_op_id(5);
  sub.mutable_subscribe()->set_pattern("a/b");
  AppendFrame(sub, &bytes);
  c.SendRaw(bytes);
  EXPECT_TRUE(c.Next().has_welcome());
  EXPECT_EQ(c.Next().ack().op_id(), 5u);
}

TEST(BrokerHandshakeTest, SilentConnectionIsClosedAfterTheHandshakeTimeout) {
  BrokerOptions options;
  options.set_handshake_timeout_ms(3000);
  BrokerHarness h(options);
  TestClient& c = h.Connect("silent", /*hello=*/false);
  h.Advance(absl::Seconds(2));
  EXPECT_FALSE(c.closed());
  h.Advance(absl::Seconds(1));
  wire::ServerMessage m = c.Next();
  EXPECT_EQ(m.error().code(), wire::HANDSHAKE_TIMEOUT);
  EXPECT_THAT(m.error().message(), HasSubstr("no Hello within 3s"));
  EXPECT_TRUE(c.closed());
}

TEST(BrokerHandshakeTest, AdmissionWaitsForTheEmbedderAndHoldsPipelinedInput) {
  BrokerOptions options;
  options.set_require_admission(true);
  BrokerHarness h(options);
  TestClient& c = h.Connect("guest", /*hello=*/false);
  wire::ClientMessage hello = HelloMessage(1, "guest");
  hello.mutable_hello()->set_auth_token("secret");
  std::string bytes = EncodeFrame(hello);
  wire::ClientMessage sub;
  sub.mutable_subscribe()->set_op_id(9);
  sub.mutable_subscribe()->set_pattern("a");
  AppendFrame(sub, &bytes);
  c.SendRaw(bytes);
  EXPECT_TRUE(c.Idle());  // no Welcome yet, subscribe not handled

  std::vector<wire::BrokerEvent> events = h.TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  ASSERT_TRUE(events[0].has_connection_pending());
  EXPECT_EQ(events[0].connection_pending().client_name(), "guest");
  EXPECT_EQ(events[0].connection_pending().auth_token(), "secret");
  EXPECT_EQ(events[0].connection_pending().session_id(), c.id().value());

  ASSERT_TRUE(h.broker().Admit(c.id(), h.now()).ok());
  h.Pump();
  EXPECT_TRUE(c.Next().has_welcome());
  EXPECT_EQ(c.Next().ack().op_id(), 9u);
  // Admitting twice is an error for the embedder, not the client.
  EXPECT_EQ(h.broker().Admit(c.id(), h.now()).code(),
            absl::StatusCode::kNotFound);
}

TEST(BrokerHandshakeTest, RefusedConnectionGetsTheReasonAndCloses) {
  BrokerOptions options;
  options.set_require_admission(true);
  BrokerHarness h(options);
  TestClient& c = h.Connect("intruder", /*hello=*/false);
  c.Send(HelloMessage(1, "intruder"));
  ASSERT_TRUE(h.broker().Refuse(c.id(), "bad token", h.now()).ok());
  h.Pump();
  wire::ServerMessage m = c.Next();
  EXPECT_EQ(m.error().code(), wire::REFUSED);
  EXPECT_EQ(m.error().message(), "connection refused: bad token");
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(h.broker().statistics().connections_refused, 1u);
}

TEST(BrokerHandshakeTest, PendingCarriesUserAndPassword) {
  BrokerOptions options;
  options.set_require_admission(true);
  BrokerHarness h(options);
  TestClient& c = h.Connect("alice", /*hello=*/false);
  wire::ClientMessage hello = HelloMessage(1, "alice");
  hello.mutable_hello()->set_user("alice");
  hello.mutable_hello()->set_password("s3cret");
  c.Send(hello);
  std::vector<wire::BrokerEvent> events = h.TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].connection_pending().user(), "alice");
  EXPECT_EQ(events[0].connection_pending().password(), "s3cret");
}

TEST(BrokerHandshakeTest, DelayedRefusalHoldsTheConnectionUntilTheDelay) {
  BrokerOptions options;
  options.set_require_admission(true);
  options.set_handshake_timeout_ms(1000);
  BrokerHarness h(options);
  TestClient& c = h.Connect("guesser", /*hello=*/false);
  c.Send(HelloMessage(1, "guesser"));
  ASSERT_TRUE(h.broker()
                  .Refuse(c.id(), "wrong password", h.now(), absl::Seconds(2))
                  .ok());
  // Neither admitted nor refused again while the refusal waits.
  EXPECT_EQ(h.broker().Admit(c.id(), h.now()).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(h.broker().Refuse(c.id(), "again", h.now()).code(),
            absl::StatusCode::kNotFound);
  // The delay replaces the handshake timeout (1 s).
  h.Advance(absl::Milliseconds(1999));
  EXPECT_TRUE(c.Idle());
  EXPECT_FALSE(c.closed());
  h.Advance(absl::Milliseconds(1));
  wire::ServerMessage m = c.Next();
  EXPECT_EQ(m.error().code(), wire::REFUSED);
  EXPECT_EQ(m.error().message(), "connection refused: wrong password");
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(h.broker().statistics().connections_refused, 1u);
  EXPECT_EQ(h.broker().statistics().protocol_errors, 0u);
}

TEST(BrokerHandshakeTest, UnadmittedConnectionTimesOut) {
  BrokerOptions options;
  options.set_require_admission(true);
  options.set_handshake_timeout_ms(1000);
  BrokerHarness h(options);
  TestClient& c = h.Connect("waiting", /*hello=*/false);
  c.Send(HelloMessage(1, "waiting"));
  h.Advance(absl::Seconds(1));
  wire::ServerMessage m = c.Next();
  EXPECT_EQ(m.error().code(), wire::HANDSHAKE_TIMEOUT);
  EXPECT_THAT(m.error().message(), HasSubstr("not admitted within 1s"));
  EXPECT_TRUE(c.closed());
}

TEST(BrokerHandshakeTest, ConnectionsPastTheLimitAreToldWhyAndClosed) {
  BrokerOptions options;
  options.set_max_connections(2);
  BrokerHarness h(options);
  h.Connect("a");
  h.Connect("b", /*hello=*/false);  // handshaking counts too
  TestClient& third = h.Connect("c", /*hello=*/false);
  wire::ServerMessage m = third.Next();
  EXPECT_EQ(m.error().code(), wire::TOO_MANY_CONNECTIONS);
  EXPECT_THAT(m.error().message(), HasSubstr("the limit is 2"));
  EXPECT_TRUE(third.closed());
  EXPECT_EQ(h.broker().statistics().connections_refused, 1u);
  // The first two are unaffected.
  EXPECT_EQ(h.broker().connection_count(), 2u);
}

TEST(BrokerHandshakeTest, ClosingFreesASlotForTheNextConnection) {
  BrokerOptions options;
  options.set_max_connections(1);
  BrokerHarness h(options);
  TestClient& a = h.Connect("a");
  a.Disconnect();
  TestClient& b = h.Connect("b");
  EXPECT_FALSE(b.closed());
}

TEST(BrokerHandshakeTest, ShutdownSaysGoodbyeToEveryoneAndClosesAll) {
  BrokerHarness h;
  TestClient& a = h.Connect("a");
  TestClient& b = h.Connect("b", /*hello=*/false);
  h.broker().Shutdown(h.now());
  h.Pump();
  for (TestClient* c : {&a, &b}) {
    wire::ServerMessage m = c->Next();
    ASSERT_TRUE(m.has_goodbye()) << m.DebugString();
    EXPECT_EQ(m.goodbye().code(), wire::SHUTTING_DOWN);
    EXPECT_TRUE(c->closed());
  }
  EXPECT_EQ(h.broker().connection_count(), 0u);
  // New connections are refused with the reason.
  TestClient& late = h.Connect("late", /*hello=*/false);
  EXPECT_EQ(late.Next().goodbye().code(), wire::SHUTTING_DOWN);
}

TEST(BrokerHandshakeTest, CloseOfUnknownIdIsIgnored) {
  BrokerHarness h;
  h.broker().Close(ConnectionId(99), "whatever", h.now());
  SUCCEED();
}

TEST(BrokerHandshakeTest, TakeChangedListsEachConnectionWithOutputOnce) {
  Broker broker;
  const absl::Time now = absl::FromUnixSeconds(100);
  Connection& a = broker.Accept(PeerInfo{"a"}, now);
  Connection& b = broker.Accept(PeerInfo{"b"}, now);
  std::vector<ConnectionId> changed;
  broker.TakeChanged(changed);
  EXPECT_TRUE(changed.empty());
  const std::string hello = EncodeFrame(HelloMessage(1, "x"));
  a.Receive(hello, now);
  a.Receive(EncodeFrame([] {
              wire::ClientMessage m;
              m.mutable_ping()->set_op_id(3);
              return m;
            }()),
            now);
  b.Receive(hello, now);
  broker.Process(now);
  broker.TakeChanged(changed);
  EXPECT_THAT(changed, ::testing::ElementsAre(a.id(), b.id()));
  broker.TakeChanged(changed);
  EXPECT_TRUE(changed.empty());
  // Closed connections are left out.
  a.Receive(hello, now);  // second Hello: fatal, a is closing
  broker.Process(now);
  broker.Close(a.id(), "gone", now);
  broker.TakeChanged(changed);
  EXPECT_TRUE(changed.empty());
}

}  // namespace
}  // namespace manifold
