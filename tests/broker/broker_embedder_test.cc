// The embedder's own messages: Broker::Publish, Broker::Request and
// Broker::PollResponse, without a connection.

#include <optional>
#include <string>

#include "broker/broker.h"
#include "core/manifold.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/broker_harness.h"

namespace manifold {
namespace {

using ::manifold::testing::BrokerHarness;
using ::manifold::testing::TestClient;
using ::testing::HasSubstr;

TEST(BrokerEmbedderTest, PublishReachesEveryMatchingSubscription) {
  BrokerHarness h;
  TestClient& exact = h.Connect("exact");
  TestClient& wildcard = h.Connect("wildcard");
  exact.Subscribe("news/today");
  wildcard.Subscribe("news/*");
  Broker::MessageOptions options;
  options.headers = {{"origin", "app"}};
  absl::StatusOr<uint64_t> delivered =
      h.broker().Publish("news/today", "hello", h.now(), options);
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(*delivered, 2u);
  h.Pump();
  for (TestClient* c : {&exact, &wildcard}) {
    const wire::ServerMessage m = c->Next();
    ASSERT_TRUE(m.has_deliver()) << m.DebugString();
    EXPECT_EQ(m.deliver().topic(), "news/today");
    EXPECT_EQ(m.deliver().payload(), "hello");
    ASSERT_EQ(m.deliver().headers_size(), 1);
    EXPECT_EQ(m.deliver().headers(0).key(), "origin");
  }
  EXPECT_EQ(*h.broker().Publish("nobody/listens", "x", h.now()), 0u);
}

TEST(BrokerEmbedderTest, PublishRejectsWhatAClientWouldBeRefused) {
  BrokerOptions options;
  options.set_max_payload_bytes(16);
  BrokerHarness h(options);
  const absl::Status reserved =
      h.broker().Publish("$sys/stats", "x", h.now()).status();
  EXPECT_THAT(reserved.message(), HasSubstr("reserved"));
  const absl::Status invalid =
      h.broker().Publish("a//b", "x", h.now()).status();
  EXPECT_FALSE(invalid.ok());
  const absl::Status large =
      h.broker().Publish("a", std::string(17, 'x'), h.now()).status();
  EXPECT_THAT(large.message(), HasSubstr("exceeds the limit of 16"));
}

TEST(BrokerEmbedderTest, PublishReachesADetachedSession) {
  BrokerHarness h;
  TestClient& reader = h.Connect("reader", /*hello=*/false);
  wire::ClientMessage hello;
  hello.mutable_hello()->set_protocol_version(1);
  hello.mutable_hello()->set_resumable(true);
  reader.Send(hello);
  const std::string token = reader.Next().welcome().resume_token();
  reader.Subscribe("t");
  reader.Disconnect();
  EXPECT_EQ(*h.broker().Publish("t", "while away", h.now()), 1u);

  TestClient& again = h.Connect("reader", /*hello=*/false);
  hello.mutable_hello()->set_resume_token(token);
  hello.mutable_hello()->set_received_frames(2);
  again.Send(hello);
  EXPECT_TRUE(again.Next().welcome().resumed());
  EXPECT_EQ(again.Next().deliver().payload(), "while away");
}

TEST(BrokerEmbedderTest, RequestIsAnsweredThroughPollResponse) {
  BrokerHarness h;
  TestClient& server = h.Connect("server");
  server.Serve("time/now");
  absl::StatusOr<RequestId> id =
      h.broker().Request("time/now", "utc", absl::Seconds(2), h.now());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_FALSE(h.broker().PollResponse().has_value());
  h.Pump();
  const wire::ServerMessage request = server.Next();
  ASSERT_TRUE(request.has_request()) << request.DebugString();
  EXPECT_EQ(request.request().payload(), "utc");
  EXPECT_EQ(request.request().timeout_ms(), 2000u);
  EXPECT_EQ(request.request().requester_session_id(), 0u);
  server.Respond(request.request().request_id(), "12:00");
  std::optional<wire::Response> response = h.broker().PollResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->op_id(), id->value());
  EXPECT_EQ(response->status(), wire::REQUEST_OK);
  EXPECT_EQ(response->payload(), "12:00");
  EXPECT_FALSE(h.broker().PollResponse().has_value());
}

TEST(BrokerEmbedderTest, RequestFailuresComeAsResponses) {
  BrokerHarness h;
  absl::StatusOr<RequestId> none =
      h.broker().Request("nobody", "x", absl::Seconds(1), h.now());
  ASSERT_TRUE(none.ok());
  std::optional<wire::Response> response = h.broker().PollResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status(), wire::NO_SERVER);

  TestClient& server = h.Connect("server");
  server.Serve("slow");
  absl::StatusOr<RequestId> slow =
      h.broker().Request("slow", "x", absl::Milliseconds(300), h.now());
  ASSERT_TRUE(slow.ok());
  h.Advance(absl::Milliseconds(300));
  response = h.broker().PollResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->op_id(), slow->value());
  EXPECT_EQ(response->status(), wire::TIMED_OUT);
}

TEST(BrokerEmbedderTest, RequestsAndUntakenAnswersAreBounded) {
  BrokerOptions options;
  options.set_max_pending_requests_per_connection(2);
  BrokerHarness h(options);
  EXPECT_TRUE(h.broker().Request("a", "", absl::Seconds(1), h.now()).ok());
  EXPECT_TRUE(h.broker().Request("a", "", absl::Seconds(1), h.now()).ok());
  const absl::Status third =
      h.broker().Request("a", "", absl::Seconds(1), h.now()).status();
  EXPECT_THAT(third.message(), HasSubstr("the limit is 2"));
  EXPECT_TRUE(h.broker().PollResponse().has_value());
  EXPECT_TRUE(h.broker().Request("a", "", absl::Seconds(1), h.now()).ok());
}

}  // namespace
}  // namespace manifold
