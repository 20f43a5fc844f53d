// Sessions that outlive their links: resume tokens, re-attaching on a new
// link, the bounded queue while detached, expiry, take-over, statistics.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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
using ::testing::MatchesRegex;

// Sends a Hello asking for a resumable session (or resuming `token` after
// `received_frames` of the broker's frames) and returns the Welcome.
wire::Welcome ResumableHello(TestClient& client, absl::string_view token = "",
                             uint64_t received_frames = 0) {
  wire::ClientMessage m;
  wire::Hello* hello = m.mutable_hello();
  hello->set_protocol_version(1);
  hello->set_client_name(client.name());
  hello->set_resumable(true);
  hello->set_resume_token(std::string(token));
  hello->set_received_frames(received_frames);
  client.Send(m);
  wire::ServerMessage welcome = client.Next();
  EXPECT_TRUE(welcome.has_welcome()) << welcome.DebugString();
  return welcome.welcome();
}

std::vector<std::string> DeliveredPayloads(TestClient& client) {
  std::vector<std::string> payloads;
  for (const wire::ServerMessage& m : client.TakeAll()) {
    EXPECT_TRUE(m.has_deliver()) << m.DebugString();
    payloads.push_back(m.deliver().payload());
  }
  return payloads;
}

std::vector<wire::BrokerEvent> EventsOfKind(BrokerHarness& h,
                                            wire::BrokerEvent::KindCase kind) {
  std::vector<wire::BrokerEvent> matching;
  for (wire::BrokerEvent& e : h.TakeEvents()) {
    if (e.kind_case() == kind) matching.push_back(std::move(e));
  }
  return matching;
}

TEST(BrokerSessionsTest, WelcomeCarriesAResumeTokenOnlyWhenAsked) {
  BrokerOptions options;
  options.set_session_timeout_ms(5000);
  BrokerHarness h(options);
  TestClient& plain = h.Connect("plain", /*hello=*/false);
  wire::ClientMessage hello;
  hello.mutable_hello()->set_protocol_version(1);
  plain.Send(hello);
  const wire::ServerMessage welcome = plain.Next();
  EXPECT_TRUE(welcome.welcome().resume_token().empty());
  EXPECT_EQ(welcome.welcome().session_timeout_ms(), 0u);

  TestClient& resumable = h.Connect("resumable", /*hello=*/false);
  const wire::Welcome w = ResumableHello(resumable);
  EXPECT_THAT(w.resume_token(), MatchesRegex("[0-9a-f]{40}"));
  EXPECT_EQ(w.session_timeout_ms(), 5000u);
  EXPECT_FALSE(w.resumed());
  EXPECT_EQ(w.resume_code(), wire::OK);
  EXPECT_EQ(EventsOfKind(h, wire::BrokerEvent::kSessionAdded).size(), 1u);
}

TEST(BrokerSessionsTest, TokensComeFromTheSessionIdSource) {
  BrokerOptions options;
  options.set_session_id_seed(7);
  BrokerHarness a(options);
  BrokerHarness b(options);
  const std::string token_a =
      ResumableHello(a.Connect("x", /*hello=*/false)).resume_token();
  const std::string token_b =
      ResumableHello(b.Connect("x", /*hello=*/false)).resume_token();
  EXPECT_EQ(token_a, token_b);
  const std::string second =
      ResumableHello(a.Connect("y", /*hello=*/false)).resume_token();
  EXPECT_NE(second, token_a);
}

TEST(BrokerSessionsTest, ResumeReattachesSubscriptionsAndQueuedDeliveries) {
  BrokerHarness h;
  TestClient& publisher = h.Connect("publisher");
  TestClient& first = h.Connect("reader", /*hello=*/false);
  const wire::Welcome welcome = ResumableHello(first);
  first.Subscribe("room/*");  // client frame 2; broker frame 2 (Ack)
  publisher.Publish("room/1", "a");
  publisher.Publish("room/1", "b");
  EXPECT_THAT(DeliveredPayloads(first), ::testing::ElementsAre("a", "b"));
  // Broker frames handled: Welcome, Ack, a, b.
  first.Disconnect();
  EXPECT_EQ(h.broker().statistics().detached_sessions, 1u);
  EXPECT_EQ(h.broker().connection_count(), 1u);  // the publisher
  publisher.Publish("room/1", "c");
  publisher.Publish("room/2", "d");
  publisher.Publish("other", "not for it");
  EXPECT_EQ(publisher.PublishAcked("room/3", "e").ack().delivered(), 1u);

  TestClient& second = h.Connect("reader-again", /*hello=*/false);
  const wire::Welcome resumed =
      ResumableHello(second, welcome.resume_token(), 4);
  EXPECT_TRUE(resumed.resumed());
  EXPECT_EQ(resumed.session_id(), welcome.session_id());
  EXPECT_EQ(resumed.resume_token(), welcome.resume_token());
  EXPECT_EQ(resumed.received_frames(), 2u);  // its Hello and Subscribe
  EXPECT_THAT(DeliveredPayloads(second), ::testing::ElementsAre("c", "d", "e"));
  // The subscription is the link's now: live messages follow.
  publisher.Publish("room/9", "f");
  EXPECT_THAT(DeliveredPayloads(second), ::testing::ElementsAre("f"));
  EXPECT_EQ(h.broker().statistics().sessions_resumed, 1u);
  EXPECT_EQ(h.broker().statistics().detached_sessions, 0u);
  EXPECT_EQ(h.broker().statistics().connections, 2u);
}

TEST(BrokerSessionsTest, ResumeSendsAgainWhatTheLostLinkDidNotDeliver) {
  BrokerHarness h;
  TestClient& publisher = h.Connect("publisher");
  TestClient& first = h.Connect("reader", /*hello=*/false);
  const wire::Welcome welcome = ResumableHello(first);
  first.Subscribe("t");
  for (const char* payload : {"1", "2", "3"}) publisher.Publish("t", payload);
  EXPECT_EQ(first.TakeAll().size(), 3u);
  first.Disconnect();
  publisher.Publish("t", "4");
  // The client says it handled only the Welcome, the Ack and "1": the link
  // lost "2" and "3" after the broker wrote them.
  TestClient& second = h.Connect("reader", /*hello=*/false);
  EXPECT_TRUE(ResumableHello(second, welcome.resume_token(), 3).resumed());
  EXPECT_THAT(DeliveredPayloads(second), ::testing::ElementsAre("2", "3", "4"));
}

TEST(BrokerSessionsTest, ServicesAndPendingRequestsSurviveTheLink) {
  BrokerHarness h;
  TestClient& server = h.Connect("server", /*hello=*/false);
  const wire::Welcome welcome = ResumableHello(server);
  EXPECT_TRUE(server.Serve("work").has_ack());
  server.Disconnect();
  TestClient& client = h.Connect("client");
  const uint64_t op = client.Request("work", "job", 5000);
  EXPECT_TRUE(client.Idle());

  TestClient& again = h.Connect("server", /*hello=*/false);
  EXPECT_TRUE(ResumableHello(again, welcome.resume_token(), 2).resumed());
  wire::ServerMessage request = again.Next();
  ASSERT_TRUE(request.has_request()) << request.DebugString();
  EXPECT_EQ(request.request().payload(), "job");
  again.Respond(request.request().request_id(), "done");
  wire::ServerMessage response = client.Next();
  EXPECT_EQ(response.response().op_id(), op);
  EXPECT_EQ(response.response().payload(), "done");
}

TEST(BrokerSessionsTest, AQueueGroupPrefersMembersThatHaveALink) {
  BrokerHarness h;
  TestClient& publisher = h.Connect("publisher");
  TestClient& away = h.Connect("away", /*hello=*/false);
  const wire::Welcome welcome = ResumableHello(away);
  away.Subscribe("jobs", "workers");
  TestClient& here = h.Connect("here");
  here.Subscribe("jobs", "workers");
  away.Disconnect();
  for (const char* job : {"1", "2", "3", "4"}) publisher.Publish("jobs", job);
  EXPECT_THAT(DeliveredPayloads(here),
              ::testing::ElementsAre("1", "2", "3", "4"));
  // Its membership survived: with the other member gone, it gets the work.
  here.Disconnect();
  publisher.Publish("jobs", "5");
  TestClient& back = h.Connect("away", /*hello=*/false);
  EXPECT_TRUE(ResumableHello(back, welcome.resume_token(), 2).resumed());
  EXPECT_THAT(DeliveredPayloads(back), ::testing::ElementsAre("5"));
}

TEST(BrokerSessionsTest,
     AQueueGroupMessageAMemberWithoutALinkCannotHoldGoesToAnotherMember) {
  BrokerOptions options;
  options.set_session_buffer_bytes(1024);
  BrokerHarness h(options);
  TestClient& publisher = h.Connect("publisher");
  TestClient& full = h.Connect("full", /*hello=*/false);
  ResumableHello(full);
  full.Subscribe("jobs", "workers");
  full.Subscribe("bulk");
  TestClient& roomy = h.Connect("roomy", /*hello=*/false);
  const wire::Welcome roomy_welcome = ResumableHello(roomy);
  roomy.Subscribe("jobs", "workers");
  full.Disconnect();
  roomy.Disconnect();
  // Fill one member's queue to its limit; the next delivery would end it.
  const std::string payload(200, 'x');
  for (int k = 0; k < 5; ++k) publisher.Publish("bulk", payload);
  // Without a linked member the group falls back on those without a link,
  // taking turns; each job must reach the member that can still hold it.
  EXPECT_EQ(publisher.PublishAcked("jobs", "1").ack().delivered(), 1u);
  EXPECT_EQ(publisher.PublishAcked("jobs", "2").ack().delivered(), 1u);
  EXPECT_EQ(h.broker().statistics().session_overflows, 1u);

  TestClient& back = h.Connect("roomy", /*hello=*/false);
  EXPECT_TRUE(ResumableHello(back, roomy_welcome.resume_token(), 2).resumed());
  EXPECT_THAT(DeliveredPayloads(back), ::testing::ElementsAre("1", "2"));
}

TEST(BrokerSessionsTest, OverflowWhileDetachedEndsTheSessionAndSaysWhy) {
  BrokerOptions options;
  options.set_session_buffer_bytes(1024);
  BrokerHarness h(options);
  TestClient& publisher = h.Connect("publisher");
  TestClient& first = h.Connect("reader", /*hello=*/false);
  const wire::Welcome welcome = ResumableHello(first);
  first.Subscribe("t");
  first.Disconnect();
  h.TakeEvents();
  const std::string payload(200, 'x');
  for (int k = 0; k < 10; ++k) publisher.Publish("t", payload);
  // The publisher was never held back, and the session is gone.
  EXPECT_EQ(publisher.PublishAcked("t", payload).ack().delivered(), 0u);
  EXPECT_EQ(h.broker().statistics().session_overflows, 1u);
  EXPECT_EQ(h.broker().statistics().detached_sessions, 0u);
  const std::vector<wire::BrokerEvent> removed =
      EventsOfKind(h, wire::BrokerEvent::kSessionRemoved);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].session_removed().code(), wire::SESSION_OVERFLOW);

  TestClient& second = h.Connect("reader", /*hello=*/false);
  const wire::Welcome w = ResumableHello(second, welcome.resume_token(), 2);
  EXPECT_FALSE(w.resumed());
  EXPECT_EQ(w.resume_code(), wire::SESSION_OVERFLOW);
  EXPECT_THAT(w.resume_message(), HasSubstr("while its link was lost: 1"));
  EXPECT_THAT(w.resume_message(), HasSubstr("the limit is 1024"));
  // It is a new session, with a new token and nothing subscribed.
  EXPECT_NE(w.resume_token(), welcome.resume_token());
  EXPECT_NE(w.session_id(), welcome.session_id());
  EXPECT_EQ(publisher.PublishAcked("t", "y").ack().delivered(), 0u);
}

TEST(BrokerSessionsTest, ExpiryReleasesTheSessionWithAnEvent) {
  BrokerOptions options;
  options.set_session_timeout_ms(1000);
  BrokerHarness h(options);
  TestClient& watcher = h.Connect("watcher");
  watcher.Subscribe(sys_topics::kSessionRemoved);
  TestClient& publisher = h.Connect("publisher");
  TestClient& first = h.Connect("reader", /*hello=*/false);
  const wire::Welcome welcome = ResumableHello(first);
  first.Subscribe("t");
  first.Disconnect();
  const std::vector<wire::BrokerEvent> removed_links =
      EventsOfKind(h, wire::BrokerEvent::kConnectionRemoved);
  ASSERT_EQ(removed_links.size(), 1u);
  EXPECT_TRUE(removed_links[0].connection_removed().detached());

  h.Advance(absl::Milliseconds(999));
  EXPECT_TRUE(watcher.Idle());
  EXPECT_EQ(publisher.PublishAcked("t", "kept").ack().delivered(), 1u);
  h.Advance(absl::Milliseconds(1));
  wire::ServerMessage sys = watcher.Next();
  ASSERT_TRUE(sys.has_deliver());
  EXPECT_EQ(sys.deliver().topic(), sys_topics::kSessionRemoved);
  wire::BrokerEvent event;
  ASSERT_TRUE(event.ParseFromString(sys.deliver().payload()));
  EXPECT_EQ(event.session_removed().session_id(), welcome.session_id());
  EXPECT_EQ(event.session_removed().code(), wire::SESSION_EXPIRED);
  EXPECT_EQ(event.session_removed().client_name(), "reader");
  EXPECT_EQ(publisher.PublishAcked("t", "lost").ack().delivered(), 0u);
  EXPECT_EQ(h.broker().statistics().sessions_expired, 1u);
  EXPECT_EQ(h.broker().statistics().detached_sessions, 0u);

  TestClient& late = h.Connect("reader", /*hello=*/false);
  const wire::Welcome w = ResumableHello(late, welcome.resume_token(), 2);
  EXPECT_FALSE(w.resumed());
  EXPECT_EQ(w.resume_code(), wire::SESSION_EXPIRED);
}

TEST(BrokerSessionsTest, ResumeAfterMoreFramesThanWereSentIsRefused) {
  BrokerHarness h;
  TestClient& first = h.Connect("reader", /*hello=*/false);
  const wire::Welcome welcome = ResumableHello(first);
  first.Disconnect();
  TestClient& second = h.Connect("reader", /*hello=*/false);
  const wire::Welcome w = ResumableHello(second, welcome.resume_token(), 100);
  EXPECT_FALSE(w.resumed());
  EXPECT_EQ(w.resume_code(), wire::INVALID_ARGUMENT);
  EXPECT_THAT(w.resume_message(),
              HasSubstr("the broker has sent this session 1 frames"));
  EXPECT_EQ(h.broker().statistics().detached_sessions, 0u);
}

TEST(BrokerSessionsTest, UnknownTokenStartsANewSession) {
  BrokerHarness h;
  TestClient& client = h.Connect("client", /*hello=*/false);
  const wire::Welcome w = ResumableHello(client, "0123456789abcdef", 7);
  EXPECT_FALSE(w.resumed());
  EXPECT_EQ(w.resume_code(), wire::SESSION_UNKNOWN);
  EXPECT_THAT(w.resume_message(), HasSubstr("no session 01234567..."));
  EXPECT_THAT(w.resume_token(), MatchesRegex("[0-9a-f]{40}"));
  EXPECT_TRUE(client.Subscribe("t").valid());
}

TEST(BrokerSessionsTest, ResumeOnANewLinkTakesTheSessionOver) {
  BrokerHarness h;
  TestClient& publisher = h.Connect("publisher");
  TestClient& old_link = h.Connect("reader", /*hello=*/false);
  const wire::Welcome welcome = ResumableHello(old_link);
  old_link.Subscribe("t");
  publisher.Publish("t", "1");
  EXPECT_EQ(old_link.TakeAll().size(), 1u);
  // The client believes the old link dead before the broker does.
  TestClient& new_link = h.Connect("reader", /*hello=*/false);
  EXPECT_TRUE(ResumableHello(new_link, welcome.resume_token(), 3).resumed());
  const wire::ServerMessage last_word = old_link.Next();
  EXPECT_EQ(last_word.error().code(), wire::SESSION_TAKEN_OVER);
  EXPECT_TRUE(old_link.closed());
  publisher.Publish("t", "2");
  EXPECT_THAT(DeliveredPayloads(new_link), ::testing::ElementsAre("2"));
  EXPECT_TRUE(old_link.Idle());
}

TEST(BrokerSessionsTest, TooManyDetachedSessionsEndTheNewestLoss) {
  BrokerOptions options;
  options.set_max_sessions(1);
  BrokerHarness h(options);
  TestClient& a = h.Connect("a", /*hello=*/false);
  const wire::Welcome wa = ResumableHello(a);
  TestClient& b = h.Connect("b", /*hello=*/false);
  const wire::Welcome wb = ResumableHello(b);
  a.Disconnect();
  b.Disconnect();
  EXPECT_EQ(h.broker().statistics().detached_sessions, 1u);
  EXPECT_TRUE(
      ResumableHello(h.Connect("a", false), wa.resume_token(), 1).resumed());
  EXPECT_FALSE(
      ResumableHello(h.Connect("b", false), wb.resume_token(), 1).resumed());
}

TEST(BrokerSessionsTest, ShutdownEndsDetachedSessions) {
  BrokerHarness h;
  TestClient& a = h.Connect("a", /*hello=*/false);
  ResumableHello(a);
  a.Disconnect();
  h.TakeEvents();
  h.broker().Shutdown(h.now());
  h.Pump();
  const std::vector<wire::BrokerEvent> removed =
      EventsOfKind(h, wire::BrokerEvent::kSessionRemoved);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].session_removed().code(), wire::SHUTTING_DOWN);
  EXPECT_EQ(h.broker().statistics().detached_sessions, 0u);
}

}  // namespace
}  // namespace manifold
