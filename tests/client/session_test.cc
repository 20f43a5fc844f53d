// ClientSession against a real in-process Broker: the test plays the
// transport, moving bytes between the two with a fake clock.

#include "client/session.h"

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "broker/broker.h"
#include "client/errors.h"
#include "core/framing.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;
using ::testing::StartsWith;

std::string Text(const absl::Status& status) {
  return std::string(status.message());
}

PublishOptions Acked() {
  PublishOptions options;
  options.ack = true;
  return options;
}

// One session linked to the broker through a Connection.
struct Link {
  ClientSession session;
  ConnectionId id;
  bool link_closed = false;
  std::vector<session::Event> events;  // polled, not yet taken by the test
};

class ClientSessionTest : public ::testing::Test {
 protected:
  explicit ClientSessionTest(BrokerOptions options = BrokerOptions())
      : broker_(std::move(options)) {}

  // A session whose Hello the broker has answered (events taken).
  Link& Open(absl::string_view name, ClientSessionOptions options = {}) {
    Link& link = Attach(name, std::move(options));
    std::vector<session::Event> events = Take(link);
    EXPECT_THAT(events, SizeIs(1));
    EXPECT_TRUE(!events.empty() &&
                std::holds_alternative<session::Welcomed>(events[0]));
    EXPECT_TRUE(link.session.open());
    return link;
  }

  // A session connected to the broker, Hello sent, events left in place.
  Link& Attach(absl::string_view name, ClientSessionOptions options = {}) {
    options.client_name = std::string(name);
    Connection& c = broker_.Accept(PeerInfo{absl::StrCat("test:", name)}, now_);
    links_.push_back(std::unique_ptr<Link>(
        new Link{ClientSession(std::move(options)), c.id(), false, {}}));
    Pump();
    return *links_.back();
  }

  // Moves bytes both ways until nothing moves; polls every session's events
  // (which lets sessions answer pings).
  void Pump() {
    for (int round = 0; round < 100; ++round) {
      bool moved = false;
      for (auto& link : links_) {
        std::string out = link->session.TakeOutput();
        Connection* c = broker_.FindConnection(link->id);
        if (!out.empty() && c != nullptr && !link->link_closed) {
          c->Receive(out, now_);
          moved = true;
        }
      }
      broker_.Process(now_);
      std::vector<ConnectionId> changed;
      broker_.TakeChanged(changed);
      for (auto& link : links_) {
        Connection* c = broker_.FindConnection(link->id);
        if (c == nullptr || link->link_closed) continue;
        absl::string_view chunks[16];
        while (c->PendingOutputBytes() > 0) {
          const size_t n = c->PendingOutput(absl::MakeSpan(chunks));
          size_t written = 0;
          for (size_t i = 0; i < n; ++i) {
            link->session.Receive(chunks[i]);
            written += chunks[i].size();
          }
          c->Consume(written);
          moved = true;
        }
        if (c->ShouldClose()) {
          broker_.Close(link->id, "transport closed the link", now_);
          link->link_closed = true;
          link->session.EndOfStream();
        }
      }
      for (auto& link : links_) {
        while (std::optional<session::Event> e = link->session.PollEvent()) {
          link->events.push_back(std::move(*e));
        }
        if (!link->session.PendingOutput().empty()) moved = true;
      }
      if (!moved) return;
    }
    ADD_FAILURE() << "bytes kept moving after 100 rounds";
  }

  // The client side hangs up.
  void Disconnect(Link& link) {
    link.link_closed = true;
    broker_.Close(link.id, "peer closed the connection", now_);
    link.session.EndOfStream();
    Pump();
  }

  void Advance(absl::Duration by) {
    now_ += by;
    broker_.Tick(now_);
    for (auto& link : links_) link->session.Tick(now_);
    Pump();
  }

  std::vector<session::Event> Take(Link& link) {
    Pump();
    std::vector<session::Event> events = std::move(link.events);
    link.events.clear();
    return events;
  }

  // The only event `link` has, which must be a T.
  template <typename T>
  T TakeOne(Link& link) {
    std::vector<session::Event> events = Take(link);
    EXPECT_THAT(events, SizeIs(1));
    for (session::Event& e : events) {
      if (T* t = std::get_if<T>(&e)) return std::move(*t);
    }
    ADD_FAILURE() << "no event of the expected kind among " << events.size();
    return T();
  }

  // Events of kind T, the others dropped.
  template <typename T>
  std::vector<T> TakeAll(Link& link) {
    std::vector<T> found;
    for (session::Event& e : Take(link)) {
      if (T* t = std::get_if<T>(&e)) found.push_back(std::move(*t));
    }
    return found;
  }

  uint64_t Subscribe(Link& link, absl::string_view pattern,
                     absl::string_view group = "", uint64_t handle = 0) {
    absl::StatusOr<uint64_t> op =
        link.session.Subscribe(pattern, group, handle);
    EXPECT_TRUE(op.ok()) << op.status();
    session::OperationDone done = TakeOne<session::OperationDone>(link);
    EXPECT_EQ(done.op_id, *op);
    EXPECT_TRUE(done.status.ok()) << done.status;
    return done.subscription_id;
  }

  void Serve(Link& link, absl::string_view topic) {
    ASSERT_TRUE(link.session.Serve(topic).ok());
    session::OperationDone done = TakeOne<session::OperationDone>(link);
    ASSERT_TRUE(done.status.ok()) << done.status;
  }

  Broker broker_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  std::vector<std::unique_ptr<Link>> links_;
};

// --- Handshake ---------------------------------------------------------------

TEST_F(ClientSessionTest, HelloIsTheFirstOutputAndCarriesTheOptions) {
  ClientSessionOptions options;
  options.client_name = "sensor-7";
  options.auth_token = "secret";
  options.user = "ops";
  options.password = "pw";
  options.no_echo = true;
  ClientSession session(options);
  FrameDecoder decoder({});
  decoder.Append(session.TakeOutput());
  wire::ClientMessage hello;
  ASSERT_TRUE(*decoder.Next(hello));
  ASSERT_TRUE(hello.has_hello());
  EXPECT_EQ(hello.hello().protocol_version(), 1u);
  EXPECT_EQ(hello.hello().client_name(), "sensor-7");
  EXPECT_EQ(hello.hello().auth_token(), "secret");
  EXPECT_EQ(hello.hello().user(), "ops");
  EXPECT_EQ(hello.hello().password(), "pw");
  EXPECT_TRUE(hello.hello().no_echo());
}

TEST_F(ClientSessionTest, WelcomeOpensTheSessionAndReportsTheBrokersLimits) {
  Link& link = Attach("alice");
  session::Welcomed welcome = TakeOne<session::Welcomed>(link);
  EXPECT_EQ(welcome.session_id, link.id.value());
  EXPECT_EQ(welcome.server_name, "manifold");
  EXPECT_EQ(welcome.max_payload_bytes, BrokerOptions().max_payload_bytes());
  EXPECT_EQ(welcome.keepalive_interval, absl::Seconds(30));
  EXPECT_TRUE(link.session.open());
  EXPECT_EQ(link.session.welcome().session_id, link.id.value());
}

TEST_F(ClientSessionTest,
       OperationsBeforeTheWelcomeFailWithoutSendingAnything) {
  ClientSession session({});
  session.TakeOutput();
  absl::StatusOr<uint64_t> op = session.Publish("a", "x");
  EXPECT_EQ(op.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Text(op.status()), HasSubstr("Welcome"));
  EXPECT_THAT(session.PendingOutput(), IsEmpty());
}

// --- Pub/sub -----------------------------------------------------------------

TEST_F(ClientSessionTest, DeliveriesCarryTheHandleGivenToSubscribe) {
  Link& alice = Open("alice");
  Link& bob = Open("bob");
  const uint64_t sub = Subscribe(bob, "room/*", "", /*handle=*/77);
  EXPECT_NE(sub, 0u);
  ASSERT_NE(bob.session.FindSubscription(sub), nullptr);
  EXPECT_EQ(bob.session.FindSubscription(sub)->pattern, "room/*");

  PublishOptions options;
  options.headers = {{"Trace-Id", "abc"}, {"Trace-Id", "def"}};
  options.reply_to = "inbox/alice";
  ASSERT_TRUE(alice.session.Publish("room/1", "hi", options).ok());

  session::Delivered d = TakeOne<session::Delivered>(bob);
  EXPECT_EQ(d.handle, 77u);
  EXPECT_EQ(d.subscription_id, sub);
  EXPECT_EQ(d.message.topic, "room/1");
  EXPECT_EQ(d.message.payload, "hi");
  EXPECT_THAT(d.message.headers,
              ElementsAre(Pair("Trace-Id", "abc"), Pair("Trace-Id", "def")));
  EXPECT_EQ(d.message.reply_to, "inbox/alice");
  EXPECT_FALSE(d.last);
  EXPECT_THAT(Take(alice), IsEmpty());
}

TEST_F(ClientSessionTest,
       PublishingToAPatternReachesEveryIntersectingSubscription) {
  Link& alice = Open("alice");
  Link& bob = Open("bob");
  Subscribe(bob, "lobby/**", "", 1);
  Subscribe(bob, "garden/alice", "", 2);
  Subscribe(bob, "lobby/bob", "", 3);
  ASSERT_TRUE(alice.session.Publish("*/alice", "wave").ok());
  std::vector<session::Delivered> got = TakeAll<session::Delivered>(bob);
  std::vector<uint64_t> handles;
  for (const auto& d : got) handles.push_back(d.handle);
  EXPECT_THAT(handles, ::testing::UnorderedElementsAre(1u, 2u));
}

TEST_F(ClientSessionTest, AQueueGroupGetsEachMessageOnce) {
  Link& pub = Open("pub");
  Link& w1 = Open("w1");
  Link& w2 = Open("w2");
  Subscribe(w1, "jobs/*", "workers");
  Subscribe(w2, "jobs/*", "workers");
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(pub.session.Publish(absl::StrCat("jobs/", i), "x").ok());
  }
  const size_t n1 = TakeAll<session::Delivered>(w1).size();
  const size_t n2 = TakeAll<session::Delivered>(w2).size();
  EXPECT_EQ(n1 + n2, 10u);
  EXPECT_EQ(n1, 5u);  // round-robin
}

TEST_F(ClientSessionTest, PublishWithAckReportsHowManySubscriptionsItReached) {
  Link& alice = Open("alice");
  Link& bob = Open("bob");
  Subscribe(bob, "a/*");
  Subscribe(bob, "a/b");
  absl::StatusOr<uint64_t> op = alice.session.Publish("a/b", "x", Acked());
  ASSERT_TRUE(op.ok());
  session::OperationDone done = TakeOne<session::OperationDone>(alice);
  EXPECT_EQ(done.op_id, *op);
  EXPECT_EQ(done.kind, OperationKind::kPublish);
  EXPECT_TRUE(done.status.ok());
  EXPECT_EQ(done.delivered, 2u);
}

TEST_F(ClientSessionTest, AFailedPublishWithoutAckIsReportedAsAnAsyncError) {
  Link& alice = Open("alice");
  absl::StatusOr<uint64_t> op = alice.session.Publish("$sys/fake", "x");
  ASSERT_TRUE(op.ok());
  session::AsyncError error = TakeOne<session::AsyncError>(alice);
  EXPECT_EQ(error.op_id, *op);
  EXPECT_EQ(WireCode(error.status), wire::RESERVED_TOPIC);
  EXPECT_EQ(error.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Text(error.status),
              StartsWith("RESERVED_TOPIC: topic '$sys/fake'"));
  EXPECT_TRUE(alice.session.open());
}

TEST_F(ClientSessionTest, BrokerErrorsNameTheCodeAndCarryTheBrokersMessage) {
  Link& alice = Open("alice");
  absl::StatusOr<uint64_t> op = alice.session.Subscribe("a//b", "", 0);
  ASSERT_TRUE(op.ok());
  session::OperationDone done = TakeOne<session::OperationDone>(alice);
  EXPECT_EQ(done.op_id, *op);
  EXPECT_EQ(done.kind, OperationKind::kSubscribe);
  EXPECT_EQ(done.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WireCode(done.status), wire::INVALID_PATTERN);
  EXPECT_EQ(done.status.message(),
            "INVALID_PATTERN: invalid pattern 'a//b': segment 2 is empty");
  EXPECT_EQ(alice.session.subscription_count(), 0u);
}

TEST_F(ClientSessionTest, EchoCanBeTurnedOff) {
  ClientSessionOptions options;
  options.no_echo = true;
  Link& quiet = Open("quiet", options);
  Link& loud = Open("loud");
  Subscribe(quiet, "t");
  Subscribe(loud, "t");
  ASSERT_TRUE(quiet.session.Publish("t", "x").ok());
  ASSERT_TRUE(loud.session.Publish("t", "y").ok());
  std::vector<session::Delivered> q = TakeAll<session::Delivered>(quiet);
  ASSERT_THAT(q, SizeIs(1));
  EXPECT_EQ(q[0].message.payload, "y");
  EXPECT_THAT(TakeAll<session::Delivered>(loud), SizeIs(2));
}

TEST_F(ClientSessionTest, UnsubscribeStopsDeliveriesAtOnceEvenThoseInFlight) {
  Link& alice = Open("alice");
  Link& bob = Open("bob");
  const uint64_t sub = Subscribe(bob, "t");
  ASSERT_TRUE(alice.session.Publish("t", "in flight").ok());
  // The delivery is on its way to bob (not yet polled) when he unsubscribes.
  ASSERT_TRUE(bob.session.Unsubscribe(sub).ok());
  EXPECT_EQ(bob.session.FindSubscription(sub), nullptr);
  std::vector<session::Event> events = Take(bob);
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_TRUE(std::holds_alternative<session::OperationDone>(events[0]));
  EXPECT_EQ(bob.session.dropped_deliveries(), 1u);
  ASSERT_TRUE(alice.session.Publish("t", "later").ok());
  EXPECT_THAT(Take(bob), IsEmpty());
}

TEST_F(ClientSessionTest, UnsubscribeWithMaxEndsTheSubscriptionAfterThatMany) {
  Link& alice = Open("alice");
  Link& bob = Open("bob");
  const uint64_t sub = Subscribe(bob, "t");
  ASSERT_TRUE(alice.session.Publish("t", "1").ok());
  Pump();
  ASSERT_TRUE(bob.session.Unsubscribe(sub, /*max_messages=*/3).ok());
  for (int i = 2; i <= 5; ++i) {
    ASSERT_TRUE(alice.session.Publish("t", absl::StrCat(i)).ok());
  }
  std::vector<session::Delivered> got = TakeAll<session::Delivered>(bob);
  ASSERT_THAT(got, SizeIs(3));
  EXPECT_EQ(got[2].message.payload, "3");
  EXPECT_FALSE(got[1].last);
  EXPECT_TRUE(got[2].last);
  EXPECT_EQ(bob.session.FindSubscription(sub), nullptr);
}

TEST_F(ClientSessionTest, UnsubscribingFromAnUnknownSubscriptionFailsLocally) {
  Link& alice = Open("alice");
  absl::StatusOr<uint64_t> op = alice.session.Unsubscribe(12345);
  EXPECT_EQ(op.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Text(op.status()), HasSubstr("sub#12345"));
  EXPECT_THAT(alice.session.PendingOutput(), IsEmpty());
}

// --- Services ----------------------------------------------------------------

TEST_F(ClientSessionTest, ARequestGetsTheServersAnswer) {
  Link& server = Open("server");
  Link& client = Open("client");
  Serve(server, "time/now");
  absl::StatusOr<uint64_t> op = client.session.Request(
      "time/now", "utc", absl::Seconds(2), now_, {{"Accept", "text"}});
  ASSERT_TRUE(op.ok());

  session::RequestReceived received = TakeOne<session::RequestReceived>(server);
  EXPECT_EQ(received.request.topic, "time/now");
  EXPECT_EQ(received.request.payload, "utc");
  EXPECT_THAT(received.request.headers, ElementsAre(Pair("Accept", "text")));
  EXPECT_EQ(received.request.timeout, absl::Seconds(2));
  EXPECT_EQ(received.request.requester_session_id, client.id.value());
  ASSERT_TRUE(
      server.session.Respond(received.request.id, "12:00", {{"Zone", "UTC"}})
          .ok());

  session::RequestDone done = TakeOne<session::RequestDone>(client);
  EXPECT_EQ(done.op_id, *op);
  ASSERT_TRUE(done.reply.ok()) << done.reply.status();
  EXPECT_EQ(done.reply->topic, "time/now");
  EXPECT_EQ(done.reply->payload, "12:00");
  EXPECT_THAT(done.reply->headers, ElementsAre(Pair("Zone", "UTC")));
  EXPECT_EQ(client.session.pending_operations(), 0u);
  EXPECT_THAT(Take(server), IsEmpty());
}

TEST_F(ClientSessionTest, ARequestNobodyServesFailsAtOnceWithNoServer) {
  Link& client = Open("client");
  ASSERT_TRUE(
      client.session.Request("nobody/home", "", absl::Seconds(2), now_).ok());
  session::RequestDone done = TakeOne<session::RequestDone>(client);
  EXPECT_EQ(done.reply.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(RequestStatusOf(done.reply.status()), wire::NO_SERVER);
  EXPECT_EQ(done.reply.status().message(),
            "NO_SERVER: no server for topic 'nobody/home'");
}

TEST_F(ClientSessionTest, ARejectedRequestCarriesTheServersReason) {
  Link& server = Open("server");
  Link& client = Open("client");
  Serve(server, "math/sqrt");
  ASSERT_TRUE(
      client.session.Request("math/sqrt", "-1", absl::Seconds(1), now_).ok());
  session::RequestReceived r = TakeOne<session::RequestReceived>(server);
  ASSERT_TRUE(server.session.Reject(r.request.id, "negative input").ok());
  session::RequestDone done = TakeOne<session::RequestDone>(client);
  EXPECT_EQ(RequestStatusOf(done.reply.status()), wire::REJECTED);
  EXPECT_EQ(done.reply.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(done.reply.status().message(), "REJECTED: negative input");
}

TEST_F(ClientSessionTest, TheBrokerTimesOutARequestTheServerSitsOn) {
  Link& server = Open("server");
  Link& client = Open("client");
  Serve(server, "slow");
  // The session's own deadline is later than the broker's.
  ASSERT_TRUE(
      client.session.Request("slow", "", absl::Milliseconds(500), now_).ok());
  TakeOne<session::RequestReceived>(server);
  now_ += absl::Milliseconds(500);
  broker_.Tick(now_);
  session::RequestDone done = TakeOne<session::RequestDone>(client);
  EXPECT_EQ(RequestStatusOf(done.reply.status()), wire::TIMED_OUT);
  EXPECT_EQ(done.reply.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(Text(done.reply.status()), StartsWith("TIMED_OUT: "));
}

TEST_F(ClientSessionTest,
       TheSessionTimesOutARequestAtItsDeadlineEvenIfTheBrokerIsSilent) {
  Link& server = Open("server");
  Link& client = Open("client");
  Serve(server, "slow");
  ASSERT_TRUE(client.session.Request("slow", "", absl::Seconds(1), now_).ok());
  EXPECT_EQ(client.session.NextDeadline(), now_ + absl::Seconds(1));
  session::RequestReceived r = TakeOne<session::RequestReceived>(server);

  client.session.Tick(now_ + absl::Milliseconds(999));
  EXPECT_THAT(Take(client), IsEmpty());
  client.session.Tick(now_ + absl::Seconds(1));  // the broker's clock stands
  session::RequestDone done = TakeOne<session::RequestDone>(client);
  EXPECT_EQ(RequestStatusOf(done.reply.status()), wire::TIMED_OUT);
  EXPECT_THAT(Text(done.reply.status()), HasSubstr("'slow'"));
  EXPECT_EQ(client.session.NextDeadline(), std::nullopt);

  // The answer that arrives afterwards is ignored.
  ASSERT_TRUE(server.session.Respond(r.request.id, "late").ok());
  EXPECT_THAT(Take(client), IsEmpty());
}

TEST_F(ClientSessionTest, ARequestFailsWithServerGoneWhenTheServerLeaves) {
  Link& server = Open("server");
  Link& client = Open("client");
  Serve(server, "svc");
  ASSERT_TRUE(client.session.Request("svc", "", absl::Seconds(5), now_).ok());
  TakeOne<session::RequestReceived>(server);
  Disconnect(server);
  session::RequestDone done = TakeOne<session::RequestDone>(client);
  EXPECT_EQ(RequestStatusOf(done.reply.status()), wire::SERVER_GONE);
  EXPECT_EQ(done.reply.status().code(), absl::StatusCode::kAborted);
}

TEST_F(ClientSessionTest, ServingATopicSomeoneElseServesNamesTheHolder) {
  Link& first = Open("first");
  Link& second = Open("second");
  Serve(first, "svc");
  ASSERT_TRUE(second.session.Serve("svc").ok());
  session::OperationDone done = TakeOne<session::OperationDone>(second);
  EXPECT_EQ(WireCode(done.status), wire::TOPIC_ALREADY_SERVED);
  EXPECT_THAT(
      Text(done.status),
      StartsWith("TOPIC_ALREADY_SERVED: topic 'svc' is already served"));
  EXPECT_THAT(Text(done.status), HasSubstr("first"));
}

TEST_F(ClientSessionTest, AnsweringAnUnknownRequestIsAnAsyncError) {
  Link& server = Open("server");
  ASSERT_TRUE(server.session.Respond(999, "x").ok());
  session::AsyncError error = TakeOne<session::AsyncError>(server);
  EXPECT_EQ(WireCode(error.status), wire::UNKNOWN_REQUEST);
}

TEST_F(ClientSessionTest, UnserveEndsPendingRequestsWithServerGone) {
  Link& server = Open("server");
  Link& client = Open("client");
  Serve(server, "svc");
  ASSERT_TRUE(client.session.Request("svc", "", absl::Seconds(5), now_).ok());
  TakeOne<session::RequestReceived>(server);
  ASSERT_TRUE(server.session.Unserve("svc").ok());
  EXPECT_TRUE(TakeOne<session::OperationDone>(server).status.ok());
  EXPECT_EQ(
      RequestStatusOf(TakeOne<session::RequestDone>(client).reply.status()),
      wire::SERVER_GONE);
}

TEST_F(ClientSessionTest, StatisticsAreAnsweredByTheBroker) {
  Link& client = Open("client");
  ASSERT_TRUE(
      client.session.Request("$sys/stats", "", absl::Seconds(1), now_).ok());
  session::RequestDone done = TakeOne<session::RequestDone>(client);
  ASSERT_TRUE(done.reply.ok()) << done.reply.status();
  wire::Statistics stats;
  ASSERT_TRUE(stats.ParseFromString(done.reply->payload));
  EXPECT_EQ(stats.connections(), 1u);
}

TEST_F(ClientSessionTest, ARequestNeedsAPositiveTimeout) {
  Link& client = Open("client");
  EXPECT_EQ(client.session.Request("x", "", absl::ZeroDuration(), now_)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Keepalive and ping ------------------------------------------------------

class ClientKeepaliveTest : public ClientSessionTest {
 protected:
  static BrokerOptions Options() {
    BrokerOptions options;
    options.set_keepalive_interval_ms(1000);
    options.set_keepalive_max_missed(2);
    return options;
  }
  ClientKeepaliveTest() : ClientSessionTest(Options()) {}
};

TEST_F(ClientKeepaliveTest, TheSessionAnswersKeepalivePingsByItself) {
  Link& quiet = Open("quiet");
  for (int i = 0; i < 10; ++i) Advance(absl::Seconds(1));
  EXPECT_TRUE(quiet.session.open());
  EXPECT_FALSE(quiet.link_closed);
  EXPECT_THAT(Take(quiet), IsEmpty());  // pings are not events
  EXPECT_EQ(broker_.statistics().keepalive_disconnects, 0u);
}

TEST_F(ClientSessionTest, PingIsAnsweredAfterEverythingSentBefore) {
  Link& alice = Open("alice");
  ASSERT_TRUE(alice.session.Publish("$sys/x", "").ok());
  absl::StatusOr<uint64_t> ping = alice.session.Ping();
  ASSERT_TRUE(ping.ok());
  std::vector<session::Event> events = Take(alice);
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_TRUE(std::holds_alternative<session::AsyncError>(events[0]));
  auto* done = std::get_if<session::OperationDone>(&events[1]);
  ASSERT_NE(done, nullptr);
  EXPECT_EQ(done->op_id, *ping);
  EXPECT_EQ(done->kind, OperationKind::kPing);
}

// --- Endings -----------------------------------------------------------------

TEST_F(ClientSessionTest,
       ShutdownFailsPendingOperationsThenClosesWithShuttingDown) {
  Link& server = Open("server");
  Link& client = Open("client");
  Serve(server, "svc");
  absl::StatusOr<uint64_t> op =
      client.session.Request("svc", "", absl::Seconds(5), now_);
  ASSERT_TRUE(op.ok());
  Pump();
  broker_.Shutdown(now_);
  std::vector<session::Event> events = Take(client);
  ASSERT_FALSE(events.empty());
  auto* closed = std::get_if<session::Closed>(&events.back());
  ASSERT_NE(closed, nullptr);
  EXPECT_EQ(WireCode(closed->reason), wire::SHUTTING_DOWN);
  EXPECT_THAT(Text(closed->reason), StartsWith("SHUTTING_DOWN: "));
  // The request ended exactly once before that.
  int request_outcomes = 0;
  for (auto& e : events) {
    if (auto* done = std::get_if<session::RequestDone>(&e)) {
      ++request_outcomes;
      EXPECT_EQ(done->op_id, *op);
      EXPECT_FALSE(done->reply.ok());
    }
  }
  EXPECT_EQ(request_outcomes, 1);
  EXPECT_TRUE(client.session.closed());
  EXPECT_EQ(client.session.Publish("t", "x").status().code(),
            absl::StatusCode::kUnavailable);
}

class ClientAdmissionTest : public ClientSessionTest {
 protected:
  static BrokerOptions Options() {
    BrokerOptions options;
    options.set_require_admission(true);
    return options;
  }
  ClientAdmissionTest() : ClientSessionTest(Options()) {}
};

TEST_F(ClientAdmissionTest, UserAndPasswordReachTheAdmissionCheck) {
  ClientSessionOptions options;
  options.user = "alice";
  options.password = "s3cret";
  Link& alice = Attach("alice", options);
  std::optional<wire::BrokerEvent> event;
  while ((event = broker_.PollEvent()) && !event->has_connection_pending()) {
  }
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->connection_pending().user(), "alice");
  EXPECT_EQ(event->connection_pending().password(), "s3cret");
  EXPECT_EQ(event->connection_pending().auth_token(), "");
  ASSERT_TRUE(broker_.Admit(alice.id, now_).ok());
  Pump();
  TakeOne<session::Welcomed>(alice);
}

TEST_F(ClientAdmissionTest, ARefusedSessionClosesWithTheBrokersReason) {
  ClientSessionOptions options;
  options.auth_token = "wrong";
  Link& intruder = Attach("intruder", options);
  EXPECT_THAT(Take(intruder), IsEmpty());
  ASSERT_TRUE(broker_.Refuse(intruder.id, "bad token", now_).ok());
  Pump();
  session::Closed closed = TakeOne<session::Closed>(intruder);
  EXPECT_EQ(WireCode(closed.reason), wire::REFUSED);
  EXPECT_EQ(closed.reason.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Text(closed.reason), StartsWith("REFUSED: "));
  EXPECT_THAT(Text(closed.reason), HasSubstr("bad token"));
  EXPECT_FALSE(intruder.session.open());
}

TEST_F(ClientSessionTest, AStreamThatEndsQuietlyClosesTheSessionAsUnavailable) {
  Link& alice = Open("alice");
  ASSERT_TRUE(alice.session.Ping().ok());
  alice.session.EndOfStream();
  std::vector<session::Event> events = Take(alice);
  ASSERT_THAT(events, SizeIs(2));
  auto* ping = std::get_if<session::OperationDone>(&events[0]);
  ASSERT_NE(ping, nullptr);
  EXPECT_EQ(ping->status.code(), absl::StatusCode::kUnavailable);
  auto* closed = std::get_if<session::Closed>(&events[1]);
  ASSERT_NE(closed, nullptr);
  EXPECT_EQ(closed->reason.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(closed->reason.message(), "connection closed by the broker");
}

TEST(ClientSessionStreamTest, AStreamCutInTheMiddleOfAFrameSaysSo) {
  ClientSession session({});
  wire::ServerMessage welcome;
  welcome.mutable_welcome()->set_session_id(1);
  const std::string frame = EncodeFrame(welcome);
  session.Receive(frame);
  session.Receive(frame.substr(0, 2));
  session.EndOfStream();
  std::optional<session::Event> first = session.PollEvent();
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(std::holds_alternative<session::Welcomed>(*first));
  std::optional<session::Event> second = session.PollEvent();
  ASSERT_TRUE(second.has_value());
  auto* closed = std::get_if<session::Closed>(&*second);
  ASSERT_NE(closed, nullptr);
  EXPECT_THAT(Text(closed->reason), HasSubstr("in the middle of a frame"));
  EXPECT_EQ(session.PollEvent(), std::nullopt);
}

TEST(ClientSessionStreamTest, GarbageFromTheBrokerEndsTheSession) {
  ClientSession session({});
  session.Receive("\x05\xff\xff\xff\xff\xff");
  std::optional<session::Event> event = session.PollEvent();
  ASSERT_TRUE(event.has_value());
  auto* closed = std::get_if<session::Closed>(&*event);
  ASSERT_NE(closed, nullptr);
  EXPECT_EQ(WireCode(closed->reason), wire::MALFORMED_MESSAGE);
  EXPECT_THAT(Text(closed->reason),
              StartsWith("MALFORMED_MESSAGE: the broker sent a bad frame"));
}

TEST(ClientSessionStreamTest, AFrameOverTheLimitEndsTheSession) {
  ClientSessionOptions options;
  options.max_frame_bytes = 16;
  ClientSession session(options);
  wire::ServerMessage big;
  big.mutable_welcome()->set_server_name(std::string(100, 'x'));
  session.Receive(EncodeFrame(big));
  std::optional<session::Event> event = session.PollEvent();
  ASSERT_TRUE(event.has_value());
  auto* closed = std::get_if<session::Closed>(&*event);
  ASSERT_NE(closed, nullptr);
  EXPECT_EQ(WireCode(closed->reason), wire::FRAME_TOO_LARGE);
}

TEST_F(ClientSessionTest, CloseFailsEachPendingOperationOnceThenReportsClosed) {
  Link& alice = Open("alice");
  absl::StatusOr<uint64_t> a = alice.session.Ping();
  absl::StatusOr<uint64_t> b =
      alice.session.Request("x", "", absl::Seconds(1), now_);
  ASSERT_TRUE(a.ok() && b.ok());
  alice.session.Close(absl::CancelledError("the application is done"));
  alice.session.Close(absl::CancelledError("twice"));
  std::vector<session::Event> events;
  while (auto e = alice.session.PollEvent()) events.push_back(std::move(*e));
  ASSERT_THAT(events, SizeIs(3));
  EXPECT_EQ(std::get<session::OperationDone>(events[0]).op_id, *a);
  EXPECT_EQ(std::get<session::RequestDone>(events[1]).op_id, *b);
  EXPECT_THAT(Text(std::get<session::RequestDone>(events[1]).reply.status()),
              HasSubstr("the application is done"));
  EXPECT_EQ(std::get<session::Closed>(events[2]).reason.message(),
            "the application is done");
  EXPECT_EQ(alice.session.NextDeadline(), std::nullopt);
  alice.session.Tick(now_ + absl::Hours(1));
  EXPECT_EQ(alice.session.PollEvent(), std::nullopt);
}

// --- Limits ------------------------------------------------------------------

TEST_F(ClientSessionTest, OperationsPastThePendingLimitFailWithoutSending) {
  ClientSessionOptions options;
  options.max_pending_operations = 2;
  Link& alice = Open("alice", options);
  ASSERT_TRUE(alice.session.Ping().ok());
  ASSERT_TRUE(alice.session.Ping().ok());
  const size_t before = alice.session.PendingOutput().size();
  absl::StatusOr<uint64_t> third = alice.session.Ping();
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(Text(third.status()), HasSubstr("limit is 2"));
  EXPECT_EQ(alice.session.PendingOutput().size(), before);
  // Operations that await nothing are not limited by it.
  EXPECT_TRUE(alice.session.Publish("t", "x").ok());
}

TEST_F(ClientSessionTest,
       OperationsPastTheOutputLimitFailUntilOutputIsWritten) {
  ClientSessionOptions options;
  options.max_output_bytes = 64;
  Link& alice = Open("alice", options);
  ASSERT_TRUE(alice.session.Publish("t", std::string(80, 'x')).ok());
  absl::StatusOr<uint64_t> next = alice.session.Publish("t", "y");
  EXPECT_EQ(next.status().code(), absl::StatusCode::kResourceExhausted);
  alice.session.Consume(alice.session.PendingOutput().size());
  EXPECT_TRUE(alice.session.Publish("t", "y").ok());
}

}  // namespace
}  // namespace manifold
