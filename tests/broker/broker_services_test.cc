// Request/response services.

#include "broker/broker.h"
#include "broker/sys_topics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/broker_harness.h"

namespace manifold {
namespace {

using ::manifold::testing::BrokerHarness;
using ::manifold::testing::TestClient;
using ::testing::HasSubstr;

TEST(BrokerServicesTest, RequestIsRoutedToTheServerAndTheAnswerBack) {
  BrokerHarness h;
  TestClient& server = h.Connect("server");
  TestClient& client = h.Connect("client");
  EXPECT_TRUE(server.Serve("time/now").has_ack());
  const uint64_t op = client.Request("time/now", "utc", 2500);
  wire::ServerMessage incoming = server.Next();
  ASSERT_TRUE(incoming.has_request()) << incoming.DebugString();
  EXPECT_EQ(incoming.request().topic(), "time/now");
  EXPECT_EQ(incoming.request().payload(), "utc");
  EXPECT_EQ(incoming.request().timeout_ms(), 2500u);
  EXPECT_EQ(incoming.request().requester_session_id(), client.id().value());
  server.Respond(incoming.request().request_id(), "12:00");
  wire::ServerMessage response = client.Next();
  ASSERT_TRUE(response.has_response());
  EXPECT_EQ(response.response().op_id(), op);
  EXPECT_EQ(response.response().status(), wire::REQUEST_OK);
  EXPECT_EQ(response.response().payload(), "12:00");
  EXPECT_TRUE(server.Idle());
  EXPECT_EQ(h.broker().statistics().requests_in_flight, 0u);
}

TEST(BrokerServicesTest, RequestWithNoServerFailsAtOnce) {
  BrokerHarness h;
  TestClient& client = h.Connect("client");
  const uint64_t op = client.Request("nobody", "x");
  wire::ServerMessage response = client.Next();
  EXPECT_EQ(response.response().op_id(), op);
  EXPECT_EQ(response.response().status(), wire::NO_SERVER);
  EXPECT_EQ(response.response().message(), "no server for topic 'nobody'");
}

TEST(BrokerServicesTest, RequestTimesOutWhenTheServerDoesNotAnswer) {
  BrokerHarness h;
  TestClient& server = h.Connect("slowpoke");
  TestClient& client = h.Connect("client");
  server.Serve("work");
  client.Request("work", "x", 500);
  const uint64_t request_id = server.Next().request().request_id();
  h.Advance(absl::Milliseconds(499));
  EXPECT_TRUE(client.Idle());
  h.Advance(absl::Milliseconds(1));
  wire::ServerMessage response = client.Next();
  EXPECT_EQ(response.response().status(), wire::TIMED_OUT);
  EXPECT_THAT(response.response().message(),
              HasSubstr("('slowpoke') did not answer 'work' within 500ms"));
  EXPECT_EQ(h.broker().statistics().requests_timed_out, 1u);
  // A late answer is an error to the server, and the client hears nothing.
  server.Respond(request_id, "too late");
  wire::ServerMessage error = server.Next();
  EXPECT_EQ(error.error().code(), wire::UNKNOWN_REQUEST);
  EXPECT_FALSE(error.error().fatal());
  EXPECT_TRUE(client.Idle());
}

TEST(BrokerServicesTest, DefaultAndMaximumTimeoutsApply) {
  BrokerOptions options;
  options.set_default_request_timeout_ms(2000);
  options.set_max_request_timeout_ms(3000);
  BrokerHarness h(options);
  TestClient& server = h.Connect("server");
  TestClient& client = h.Connect("client");
  server.Serve("work");
  client.Request("work", "x", 0);
  EXPECT_EQ(server.Next().request().timeout_ms(), 2000u);
  client.Request("work", "x", 60000);
  EXPECT_EQ(server.Next().request().timeout_ms(), 3000u);
  h.Advance(absl::Seconds(3));
  auto responses = client.TakeAll();
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[0].response().status(), wire::TIMED_OUT);
  EXPECT_EQ(responses[1].response().status(), wire::TIMED_OUT);
}

TEST(BrokerServicesTest,
     ServerDisconnectingFailsPendingRequestsWithServerGone) {
  BrokerHarness h;
  TestClient& server = h.Connect("flaky");
  TestClient& client = h.Connect("client");
  server.Serve("work");
  const uint64_t op1 = client.Request("work", "1");
  const uint64_t op2 = client.Request("work", "2");
  server.Disconnect();
  auto responses = client.TakeAll();
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[0].response().op_id(), op1);
  EXPECT_EQ(responses[1].response().op_id(), op2);
  for (const auto& r : responses) {
    EXPECT_EQ(r.response().status(), wire::SERVER_GONE);
    EXPECT_THAT(r.response().message(), HasSubstr("('flaky') disconnected"));
  }
  // The topic is free again: the next request finds no server.
  client.Request("work", "3");
  EXPECT_EQ(client.Next().response().status(), wire::NO_SERVER);
}

TEST(BrokerServicesTest, UnservingFailsPendingRequestsWithServerGone) {
  BrokerHarness h;
  TestClient& server = h.Connect("server");
  TestClient& client = h.Connect("client");
  server.Serve("work");
  client.Request("work", "1");
  server.Next();
  EXPECT_TRUE(server.Unserve("work").has_ack());
  wire::ServerMessage response = client.Next();
  EXPECT_EQ(response.response().status(), wire::SERVER_GONE);
  EXPECT_THAT(response.response().message(), HasSubstr("stopped serving"));
}

TEST(BrokerServicesTest, SecondServerForATopicIsRefusedNamingTheHolder) {
  BrokerHarness h;
  TestClient& first = h.Connect("first");
  TestClient& second = h.Connect("second");
  first.Serve("work");
  wire::ServerMessage reply = second.Serve("work");
  EXPECT_EQ(reply.error().code(), wire::TOPIC_ALREADY_SERVED);
  EXPECT_THAT(reply.error().message(),
              HasSubstr(absl::StrCat("already served by conn#",
                                     first.id().value(), " ('first')")));
  EXPECT_THAT(first.Serve("work").error().message(),
              HasSubstr("by this connection"));
}

TEST(BrokerServicesTest, ServeTopicsMustBeLiteralAndNotReserved) {
  BrokerHarness h;
  TestClient& c = h.Connect("c");
  EXPECT_EQ(c.Serve("work/*").error().code(), wire::INVALID_TOPIC);
  EXPECT_EQ(c.Serve("$sys/stats").error().code(), wire::RESERVED_TOPIC);
  EXPECT_EQ(c.Unserve("never").error().code(), wire::NOT_SERVING);
}

TEST(BrokerServicesTest, ServerMayRejectARequest) {
  BrokerHarness h;
  TestClient& server = h.Connect("server");
  TestClient& client = h.Connect("client");
  server.Serve("work");
  client.Request("work", "x");
  wire::ClientMessage m;
  m.mutable_respond()->set_request_id(server.Next().request().request_id());
  m.mutable_respond()->set_status(wire::REJECTED);
  m.mutable_respond()->set_message("quota exceeded");
  server.Send(m);
  wire::ServerMessage response = client.Next();
  EXPECT_EQ(response.response().status(), wire::REJECTED);
  EXPECT_EQ(response.response().message(), "quota exceeded");
}

TEST(BrokerServicesTest, RespondWithAStatusOtherThanOkOrRejectedIsInvalid) {
  BrokerHarness h;
  TestClient& server = h.Connect("server");
  TestClient& client = h.Connect("client");
  server.Serve("work");
  client.Request("work", "x");
  const uint64_t request_id = server.Next().request().request_id();
  server.Respond(request_id, "", wire::TIMED_OUT);
  EXPECT_EQ(server.Next().error().code(), wire::INVALID_ARGUMENT);
  // The request is still pending and can be answered properly.
  server.Respond(request_id, "ok");
  EXPECT_EQ(client.Next().response().payload(), "ok");
}

TEST(BrokerServicesTest, OnlyTheServerMayAnswerARequest) {
  BrokerHarness h;
  TestClient& server = h.Connect("server");
  TestClient& client = h.Connect("client");
  TestClient& impostor = h.Connect("impostor");
  server.Serve("work");
  client.Request("work", "x");
  const uint64_t request_id = server.Next().request().request_id();
  impostor.Respond(request_id, "fake");
  EXPECT_EQ(impostor.Next().error().code(), wire::UNKNOWN_REQUEST);
  EXPECT_TRUE(client.Idle());
}

TEST(BrokerServicesTest, RequesterLeavingDropsItsRequests) {
  BrokerHarness h;
  TestClient& server = h.Connect("server");
  TestClient& client = h.Connect("client");
  server.Serve("work");
  client.Request("work", "x");
  const uint64_t request_id = server.Next().request().request_id();
  client.Disconnect();
  EXPECT_EQ(h.broker().statistics().requests_in_flight, 0u);
  server.Respond(request_id, "anyone?");
  EXPECT_THAT(server.Next().error().message(), HasSubstr("requester left"));
}

TEST(BrokerServicesTest, PendingRequestsPerConnectionAreLimited) {
  BrokerOptions options;
  options.set_max_pending_requests_per_connection(2);
  BrokerHarness h(options);
  TestClient& server = h.Connect("server");
  TestClient& client = h.Connect("client");
  server.Serve("work");
  client.Request("work", "1");
  client.Request("work", "2");
  client.Request("work", "3");
  wire::ServerMessage error = client.Next();
  EXPECT_EQ(error.error().code(), wire::TOO_MANY_PENDING_REQUESTS);
  EXPECT_THAT(error.error().message(), HasSubstr("the limit is 2"));
}

TEST(BrokerServicesTest, ServicesPerConnectionAreLimited) {
  BrokerOptions options;
  options.set_max_services_per_connection(1);
  BrokerHarness h(options);
  TestClient& server = h.Connect("server");
  server.Serve("a");
  EXPECT_EQ(server.Serve("b").error().code(), wire::TOO_MANY_SERVICES);
}

TEST(BrokerServicesTest, StatisticsAreAnsweredByTheBroker) {
  BrokerHarness h;
  TestClient& c = h.Connect("c");
  c.Subscribe("a");
  c.Request(std::string(sys_topics::kStatisticsTopic), "");
  wire::ServerMessage response = c.Next();
  ASSERT_EQ(response.response().status(), wire::REQUEST_OK);
  wire::Statistics stats;
  ASSERT_TRUE(stats.ParseFromString(response.response().payload()));
  EXPECT_EQ(stats.connections(), 1u);
  EXPECT_EQ(stats.subscriptions(), 1u);
}

TEST(BrokerServicesTest, AConnectionMayRequestItsOwnService) {
  BrokerHarness h;
  TestClient& c = h.Connect("self");
  c.Serve("echo");
  c.Request("echo", "ping");
  wire::ServerMessage incoming = c.Next();
  c.Respond(incoming.request().request_id(), "pong");
  EXPECT_EQ(c.Next().response().payload(), "pong");
}

}  // namespace
}  // namespace manifold
