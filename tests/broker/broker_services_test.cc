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

// --- Requests made by publishing with a reply_to (NATS-style) -------------

// Publishes `payload` on `topic` with `reply_to`, as a NATS request does.
void PublishRequest(TestClient& c, absl::string_view topic,
                    absl::string_view payload, absl::string_view reply_to,
                    bool ack = false) {
  wire::ClientMessage m;
  wire::Publish* publish = m.mutable_publish();
  publish->set_op_id(c.next_op_id());
  publish->set_topic(std::string(topic));
  publish->set_payload(std::string(payload));
  publish->set_reply_to(std::string(reply_to));
  publish->set_ack(ack);
  publish->set_no_responders(true);
  c.Send(m);
}

// Answers `request_id` with `status`, a payload, a message and a header.
void RespondWith(TestClient& server, uint64_t request_id,
                 wire::RequestStatus status, absl::string_view payload,
                 absl::string_view message, absl::string_view header_value) {
  wire::ClientMessage m;
  wire::Respond* respond = m.mutable_respond();
  respond->set_op_id(server.next_op_id());
  respond->set_request_id(request_id);
  respond->set_status(status);
  respond->set_payload(std::string(payload));
  respond->set_message(std::string(message));
  wire::Header* header = respond->add_headers();
  header->set_key("Answered-By");
  header->set_value(std::string(header_value));
  server.Send(m);
}

TEST(BrokerServicesTest, PublishWithReplyToAServedTopicIsARequestToItsServer) {
  BrokerOptions options;
  options.set_default_request_timeout_ms(1500);
  BrokerHarness h(options);
  TestClient& server = h.Connect("server");
  TestClient& asker = h.Connect("asker");
  server.Serve("time/now");
  const SubscriptionId inbox = asker.Subscribe("inbox/asker/*");
  PublishRequest(asker, "time/now", "utc", "inbox/asker/1");
  wire::ServerMessage incoming = server.Next();
  ASSERT_TRUE(incoming.has_request()) << incoming.DebugString();
  EXPECT_EQ(incoming.request().topic(), "time/now");
  EXPECT_EQ(incoming.request().payload(), "utc");
  EXPECT_EQ(incoming.request().timeout_ms(), 1500u);
  EXPECT_EQ(incoming.request().requester_session_id(), asker.id().value());
  EXPECT_EQ(h.broker().statistics().requests_in_flight, 1u);

  RespondWith(server, incoming.request().request_id(), wire::REQUEST_OK,
              "12:00", "", "server");
  wire::ServerMessage answer = asker.Next();
  ASSERT_TRUE(answer.has_deliver()) << answer.DebugString();
  EXPECT_EQ(answer.deliver().subscription_id(), inbox.value());
  EXPECT_EQ(answer.deliver().topic(), "inbox/asker/1");
  EXPECT_EQ(answer.deliver().payload(), "12:00");
  ASSERT_EQ(answer.deliver().headers_size(), 1);
  EXPECT_EQ(answer.deliver().headers(0).key(), "Answered-By");
  EXPECT_EQ(answer.deliver().headers(0).value(), "server");
  EXPECT_TRUE(asker.Idle());
  EXPECT_TRUE(server.Idle());
  EXPECT_EQ(h.broker().statistics().requests_in_flight, 0u);
}

TEST(BrokerServicesTest, PublishWithoutReplyToAServedTopicIsNoRequest) {
  BrokerHarness h;
  TestClient& server = h.Connect("server");
  TestClient& c = h.Connect("c");
  server.Serve("work");
  EXPECT_EQ(c.PublishAcked("work", "x").ack().delivered(), 0u);
  EXPECT_TRUE(server.Idle());
  EXPECT_EQ(h.broker().statistics().requests, 0u);
}

TEST(BrokerServicesTest, PublishWithAReservedReplyToIsNoRequest) {
  BrokerHarness h;
  TestClient& server = h.Connect("server");
  TestClient& c = h.Connect("c");
  server.Serve("work");
  PublishRequest(c, "work", "x", "$sys/events/fake", /*ack=*/true);
  EXPECT_EQ(c.Next().ack().delivered(), 0u);
  EXPECT_TRUE(server.Idle());
  EXPECT_EQ(h.broker().statistics().requests, 0u);
}

TEST(BrokerServicesTest,
     ServedTopicWithSubscribersDeliversToThemAndAsksTheServerOnce) {
  BrokerHarness h;
  TestClient& server = h.Connect("server");
  TestClient& listener = h.Connect("listener");
  TestClient& asker = h.Connect("asker");
  server.Serve("work");
  listener.Subscribe("work");
  asker.Subscribe("inbox/*");
  PublishRequest(asker, "work", "job", "inbox/1", /*ack=*/true);
  // The server counts as one recipient.
  EXPECT_EQ(asker.Next().ack().delivered(), 2u);
  wire::ServerMessage seen = listener.Next();
  EXPECT_EQ(seen.deliver().payload(), "job");
  EXPECT_EQ(seen.deliver().reply_to(), "inbox/1");
  const uint64_t request_id = server.Next().request().request_id();
  EXPECT_TRUE(server.Idle());
  // Both may answer, on reply_to; the asker gets both, in the order sent.
  listener.Publish("inbox/1", "from the listener");
  RespondWith(server, request_id, wire::REQUEST_OK, "from the server", "",
              "server");
  auto answers = asker.TakeAll();
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].deliver().payload(), "from the listener");
  EXPECT_EQ(answers[1].deliver().payload(), "from the server");
}

TEST(BrokerServicesTest, RejectionIsPublishedWithServiceErrorHeaders) {
  BrokerHarness h;
  TestClient& server = h.Connect("server");
  TestClient& asker = h.Connect("asker");
  server.Serve("quota");
  asker.Subscribe("inbox/*");
  PublishRequest(asker, "quota", "more", "inbox/1");
  RespondWith(server, server.Next().request().request_id(), wire::REJECTED,
              "details", "quota\r\nexceeded", "server");
  wire::ServerMessage answer = asker.Next();
  EXPECT_EQ(answer.deliver().payload(), "details");
  ASSERT_EQ(answer.deliver().headers_size(), 3);
  EXPECT_EQ(answer.deliver().headers(0).key(), "Answered-By");
  EXPECT_EQ(answer.deliver().headers(1).key(), "Nats-Service-Error");
  // A line break in the reason would end the header: it becomes spaces.
  EXPECT_EQ(answer.deliver().headers(1).value(), "quota  exceeded");
  EXPECT_EQ(answer.deliver().headers(2).key(), "Nats-Service-Error-Code");
  EXPECT_EQ(answer.deliver().headers(2).value(), "500");
}

TEST(BrokerServicesTest, UnansweredPublishRequestTimesOutSilently) {
  BrokerOptions options;
  options.set_default_request_timeout_ms(1000);
  BrokerHarness h(options);
  TestClient& server = h.Connect("slowpoke");
  TestClient& asker = h.Connect("asker");
  server.Serve("work");
  asker.Subscribe("inbox/*");
  PublishRequest(asker, "work", "x", "inbox/1");
  const uint64_t request_id = server.Next().request().request_id();
  h.Advance(absl::Seconds(1));
  EXPECT_EQ(h.broker().statistics().requests_timed_out, 1u);
  EXPECT_EQ(h.broker().statistics().requests_in_flight, 0u);
  EXPECT_TRUE(asker.Idle());
  server.Respond(request_id, "too late");
  EXPECT_EQ(server.Next().error().code(), wire::UNKNOWN_REQUEST);
  EXPECT_TRUE(asker.Idle());
}

TEST(BrokerServicesTest, ServerGoingAwayLeavesPublishRequestsUnanswered) {
  BrokerHarness h;
  TestClient& server = h.Connect("server");
  TestClient& asker = h.Connect("asker");
  server.Serve("work");
  asker.Subscribe("inbox/*");
  PublishRequest(asker, "work", "x", "inbox/1");
  server.Next();
  server.Disconnect();
  EXPECT_TRUE(asker.Idle());
  EXPECT_EQ(h.broker().statistics().requests_in_flight, 0u);
  // The topic is no longer served: the next one gets the 503 notice.
  PublishRequest(asker, "work", "x", "inbox/2");
  wire::ServerMessage notice = asker.Next();
  ASSERT_EQ(notice.deliver().headers_size(), 1);
  EXPECT_EQ(notice.deliver().headers(0).value(), "503");
}

TEST(BrokerServicesTest, PublishRequestsCountAgainstPendingRequests) {
  BrokerOptions options;
  options.set_max_pending_requests_per_connection(2);
  BrokerHarness h(options);
  TestClient& server = h.Connect("server");
  TestClient& listener = h.Connect("listener");
  TestClient& asker = h.Connect("asker");
  server.Serve("work");
  listener.Subscribe("work");
  PublishRequest(asker, "work", "1", "inbox/1");
  asker.Request("work", "2");
  PublishRequest(asker, "work", "3", "inbox/3");
  wire::ServerMessage error = asker.Next();
  EXPECT_EQ(error.error().code(), wire::TOO_MANY_PENDING_REQUESTS);
  EXPECT_FALSE(error.error().fatal());
  EXPECT_THAT(error.error().message(),
              HasSubstr("2 requests in flight; the limit is 2"));
  // Refused as a whole: neither the server nor the listener saw "3".
  EXPECT_EQ(server.TakeAll().size(), 2u);
  EXPECT_EQ(listener.TakeAll().size(), 1u);
}

TEST(BrokerServicesTest, PublishRequesterLeavingDropsItsRequests) {
  BrokerHarness h;
  TestClient& server = h.Connect("server");
  TestClient& asker = h.Connect("asker");
  TestClient& other = h.Connect("other");
  server.Serve("work");
  other.Subscribe("inbox/*");
  PublishRequest(asker, "work", "x", "inbox/1");
  const uint64_t request_id = server.Next().request().request_id();
  asker.Disconnect();
  EXPECT_EQ(h.broker().statistics().requests_in_flight, 0u);
  server.Respond(request_id, "nobody waits");
  EXPECT_EQ(server.Next().error().code(), wire::UNKNOWN_REQUEST);
  EXPECT_TRUE(other.Idle());
}

}  // namespace
}  // namespace manifold
