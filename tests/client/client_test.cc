// The blocking client against a real broker running in this process
// (MemoryBroker), through the in-memory transport. The same client over TCP
// and Unix sockets against the real manifoldd is in client_e2e_test.cc.

#include "client/client.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/errors.h"
#include "client/internal/await_mutex.h"
#include "client/memory_stream.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/notification.h"
#include "transports/memory/memory_broker.h"

namespace manifold {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::StartsWith;

std::string Text(const absl::Status& status) {
  return std::string(status.message());
}

// Collects messages from a callback subscription; waits for them with a
// deadline. Declare it before the clients that feed it: a client's callback
// thread may still be leaving the handler (unlocking mu_) when the test has
// what it waited for, and destroying the client first joins that thread.
class Inbox {
 public:
  MessageHandler Handler() {
    return [this](const Message& m) {
      client_internal::AwaitMutexLock lock(&mu_);
      messages_.push_back(m);
    };
  }
  // Waits until at least `n` messages arrived (at most 5 s); returns them.
  std::vector<Message> WaitFor(size_t n) {
    client_internal::AwaitMutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return messages_.size() >= n;
    };
    mu_.AwaitWithTimeout(enough, absl::Seconds(5));
    return messages_;
  }
  size_t size() {
    client_internal::AwaitMutexLock lock(&mu_);
    return messages_.size();
  }

 private:
  client_internal::AwaitMutex mu_;
  std::vector<Message> messages_ ABSL_GUARDED_BY(mu_);
};

class ClientTest : public ::testing::Test {
 protected:
  static BrokerOptions Options() {
    BrokerOptions options;
    options.set_close_linger_ms(200);
    return options;
  }

  std::unique_ptr<Client> Connect(absl::string_view name,
                                  ClientOptions options = ClientOptions()) {
    options.name = std::string(name);
    absl::StatusOr<std::unique_ptr<Client>> client =
        ConnectInMemory(*broker_, std::move(options));
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  std::unique_ptr<MemoryBroker> broker_ =
      std::make_unique<MemoryBroker>(Options());
};

// --- Connecting --------------------------------------------------------------

TEST_F(ClientTest, ConnectingCompletesTheHandshake) {
  std::unique_ptr<Client> client = Connect("alice");
  EXPECT_TRUE(client->connected());
  EXPECT_NE(client->session_id(), 0u);
  EXPECT_EQ(client->welcome().server_name, "manifold");
  EXPECT_TRUE(client->status().ok());
  EXPECT_TRUE(client->Ping().ok());
}

TEST_F(ClientTest, ARefusedConnectionReportsTheBrokersReason) {
  BrokerOptions options = Options();
  options.set_max_connections(1);
  broker_ = std::make_unique<MemoryBroker>(options);
  std::unique_ptr<Client> first = Connect("first");
  absl::StatusOr<std::unique_ptr<Client>> second =
      ConnectInMemory(*broker_, ClientOptions());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(WireCode(second.status()), wire::TOO_MANY_CONNECTIONS);
  EXPECT_THAT(Text(second.status()), StartsWith("TOO_MANY_CONNECTIONS: "));
}

// --- Pub/sub -----------------------------------------------------------------

TEST_F(ClientTest, ACallbackSubscriptionGetsEveryMatchingMessage) {
  Inbox inbox;  // before the clients: it must outlive their threads
  std::unique_ptr<Client> alice = Connect("alice");
  std::unique_ptr<Client> bob = Connect("bob");
  auto sub = bob->Subscribe("room/*", inbox.Handler());
  ASSERT_TRUE(sub.ok()) << sub.status();
  EXPECT_NE((*sub)->id(), 0u);
  EXPECT_EQ((*sub)->pattern(), "room/*");

  PublishOptions options;
  options.headers = {{"Trace-Id", "t1"}};
  options.reply_to = "inbox/alice";
  ASSERT_TRUE(alice->Publish("room/1", "hello", options).ok());
  ASSERT_TRUE(alice->Publish("hall/1", "not for bob").ok());
  ASSERT_TRUE(alice->Publish("room/2", "again").ok());

  std::vector<Message> got = inbox.WaitFor(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].topic, "room/1");
  EXPECT_EQ(got[0].payload, "hello");
  EXPECT_THAT(got[0].headers, ElementsAre(Pair("Trace-Id", "t1")));
  EXPECT_EQ(got[0].reply_to, "inbox/alice");
  EXPECT_EQ(got[1].payload, "again");
}

TEST_F(ClientTest, APulledSubscriptionHandsOutMessagesInOrder) {
  std::unique_ptr<Client> client = Connect("solo");
  auto sub = client->Subscribe("a/**");
  ASSERT_TRUE(sub.ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(client->Publish(absl::StrCat("a/b/", i), absl::StrCat(i)).ok());
  }
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<Message> m = (*sub)->Next(absl::Seconds(5));
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->payload, absl::StrCat(i));
  }
  absl::StatusOr<Message> none = (*sub)->Next(absl::Milliseconds(20));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ClientTest, PublishConfirmedSaysHowManySubscriptionsGotTheMessage) {
  std::unique_ptr<Client> alice = Connect("alice");
  std::unique_ptr<Client> bob = Connect("bob");
  auto s1 = bob->Subscribe("x/*");
  auto s2 = bob->Subscribe("x/y");
  ASSERT_TRUE(s1.ok() && s2.ok());
  absl::StatusOr<uint64_t> delivered = alice->PublishConfirmed("x/y", "hi");
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(*delivered, 2u);
}

TEST_F(ClientTest, BrokerRefusalsAreClearErrors) {
  std::unique_ptr<Client> client = Connect("c");
  absl::StatusOr<uint64_t> reserved = client->PublishConfirmed("$sys/x", "");
  EXPECT_EQ(WireCode(reserved.status()), wire::RESERVED_TOPIC);
  EXPECT_EQ(Text(reserved.status()),
            "RESERVED_TOPIC: topic '$sys/x' is reserved for the broker");

  auto bad = client->Subscribe("a//b");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Text(bad.status()),
            "INVALID_PATTERN: invalid pattern 'a//b': segment 2 is empty");
  EXPECT_TRUE(client->connected());
}

TEST_F(ClientTest, AFailedFireAndForgetPublishGoesToOnError) {
  client_internal::AwaitMutex mu;
  std::vector<absl::Status> errors;
  ClientOptions options;
  options.on_error = [&](const absl::Status& s) {
    client_internal::AwaitMutexLock lock(&mu);
    errors.push_back(s);
  };
  std::unique_ptr<Client> client = Connect("c", options);
  ASSERT_TRUE(client->Publish("bad//topic", "x").ok());
  ASSERT_TRUE(client->Ping().ok());
  client_internal::AwaitMutexLock lock(&mu);
  auto one = [&]()
                 ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return !errors.empty(); };
  mu.AwaitWithTimeout(one, absl::Seconds(5));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(WireCode(errors[0]), wire::INVALID_TOPIC);
}

TEST_F(ClientTest, AQueueGroupSharesTheMessages) {
  std::unique_ptr<Client> pub = Connect("pub");
  std::unique_ptr<Client> w1 = Connect("w1");
  std::unique_ptr<Client> w2 = Connect("w2");
  auto s1 = w1->QueueSubscribe("jobs/*", "workers");
  auto s2 = w2->QueueSubscribe("jobs/*", "workers");
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_EQ((*s1)->queue_group(), "workers");
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(pub->Publish(absl::StrCat("jobs/", i), "x").ok());
  }
  ASSERT_TRUE(pub->Ping().ok());
  int n1 = 0, n2 = 0;
  while ((*s1)->Next(absl::Milliseconds(100)).ok()) ++n1;
  while ((*s2)->Next(absl::Milliseconds(100)).ok()) ++n2;
  EXPECT_EQ(n1 + n2, 20);
  EXPECT_EQ(n1, 10);
}

TEST_F(ClientTest, UnsubscribeEndsTheSubscription) {
  std::unique_ptr<Client> client = Connect("c");
  auto sub = client->Subscribe("t");
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE((*sub)->Unsubscribe().ok());
  ASSERT_TRUE(client->Publish("t", "x").ok());
  EXPECT_EQ((*sub)->Next(absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kOutOfRange);
}

TEST_F(ClientTest, AutoUnsubscribeEndsAfterThatManyMessages) {
  std::unique_ptr<Client> client = Connect("c");
  auto sub = client->Subscribe("t");
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE((*sub)->AutoUnsubscribe(2).ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(client->Publish("t", "x").ok());
  EXPECT_TRUE((*sub)->Next(absl::Seconds(5)).ok());
  EXPECT_TRUE((*sub)->Next(absl::Seconds(5)).ok());
  EXPECT_EQ((*sub)->Next(absl::Seconds(5)).status().code(),
            absl::StatusCode::kOutOfRange);
}

TEST_F(ClientTest, DestroyingTheSubscriptionUnsubscribes) {
  std::unique_ptr<Client> pub = Connect("pub");
  std::unique_ptr<Client> sub_client = Connect("sub");
  {
    auto sub = sub_client->Subscribe("t");
    ASSERT_TRUE(sub.ok());
  }
  ASSERT_TRUE(sub_client->Ping().ok());
  absl::StatusOr<uint64_t> delivered = pub->PublishConfirmed("t", "x");
  ASSERT_TRUE(delivered.ok());
  EXPECT_EQ(*delivered, 0u);
}

TEST_F(ClientTest, AFullBufferDropsAndCountsAndSaysSo) {
  std::atomic<int> overflow_reports{0};
  ClientOptions options;
  options.max_buffered_messages = 3;
  options.on_error = [&](const absl::Status& s) {
    if (absl::IsResourceExhausted(s)) ++overflow_reports;
  };
  std::unique_ptr<Client> client = Connect("c", options);
  auto sub = client->Subscribe("t");
  ASSERT_TRUE(sub.ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(client->Publish("t", "x").ok());
  ASSERT_TRUE(client->Ping().ok());
  EXPECT_EQ((*sub)->dropped(), 7u);
  int kept = 0;
  while ((*sub)->Next(absl::Milliseconds(20)).ok()) ++kept;
  EXPECT_EQ(kept, 3);
  for (int i = 0; i < 500 && overflow_reports.load() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(overflow_reports.load(), 1);  // once per overflow, not per drop
}

// --- Requests ----------------------------------------------------------------

TEST_F(ClientTest, ARequestGetsTheHandlersAnswer) {
  std::unique_ptr<Client> server = Connect("server");
  std::unique_ptr<Client> client = Connect("client");
  auto service = server->Serve(
      "math/double",
      [](const IncomingRequest& r) -> absl::StatusOr<std::string> {
        int n = 0;
        if (!absl::SimpleAtoi(r.payload, &n)) {
          return absl::InvalidArgumentError(
              absl::StrCat("'", r.payload, "' is not a number"));
        }
        return absl::StrCat(2 * n);
      });
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ((*service)->topic(), "math/double");

  absl::StatusOr<Message> reply =
      client->Request("math/double", "21", absl::Seconds(5));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->payload, "42");
  EXPECT_EQ(reply->topic, "math/double");

  absl::StatusOr<Message> rejected =
      client->Request("math/double", "x", absl::Seconds(5));
  EXPECT_EQ(RequestStatusOf(rejected.status()), wire::REJECTED);
  EXPECT_EQ(Text(rejected.status()), "REJECTED: 'x' is not a number");
}

TEST_F(ClientTest, ARequestNobodyServesFailsAtOnce) {
  std::unique_ptr<Client> client = Connect("client");
  const absl::Time start = absl::Now();
  absl::StatusOr<Message> reply =
      client->Request("nobody/home", "", absl::Seconds(5));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(RequestStatusOf(reply.status()), wire::NO_SERVER);
  EXPECT_EQ(Text(reply.status()),
            "NO_SERVER: no server for topic 'nobody/home'");
}

TEST_F(ClientTest, ARequestTimesOutWhenTheServerSitsOnIt) {
  std::unique_ptr<Client> server = Connect("server");
  std::unique_ptr<Client> client = Connect("client");
  auto service = server->Serve("slow");  // pulled, never answered
  ASSERT_TRUE(service.ok());
  const absl::Time start = absl::Now();
  absl::StatusOr<Message> reply =
      client->Request("slow", "", absl::Milliseconds(150));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(RequestStatusOf(reply.status()), wire::TIMED_OUT);
  EXPECT_GE(took, absl::Milliseconds(150));
  EXPECT_LT(took, absl::Seconds(2));
}

TEST_F(ClientTest, ARequestFailsWithServerGoneWhenTheServerDisconnects) {
  std::unique_ptr<Client> server = Connect("server");
  std::unique_ptr<Client> client = Connect("client");
  auto service = server->Serve("svc");
  ASSERT_TRUE(service.ok());
  std::thread vanish([&] {
    ASSERT_TRUE((*service)->Next(absl::Seconds(5)).ok());  // got it
    server->Close();
  });
  absl::StatusOr<Message> reply = client->Request("svc", "", absl::Seconds(5));
  vanish.join();
  EXPECT_EQ(RequestStatusOf(reply.status()), wire::SERVER_GONE);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kAborted);
}

TEST_F(ClientTest, APulledServiceIsAnsweredWithRespond) {
  std::unique_ptr<Client> server = Connect("server");
  std::unique_ptr<Client> client = Connect("client");
  auto service = server->Serve("svc");
  ASSERT_TRUE(service.ok());
  std::thread answer([&] {
    absl::StatusOr<IncomingRequest> r = (*service)->Next(absl::Seconds(5));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->payload, "q");
    EXPECT_THAT(r->headers, ElementsAre(Pair("K", "V")));
    EXPECT_EQ(r->requester_session_id, client->session_id());
    EXPECT_TRUE(server->Respond(r->id, "a", {{"R", "1"}}).ok());
  });
  absl::StatusOr<Message> reply =
      client->Request("svc", "q", absl::Seconds(5), {{"K", "V"}});
  answer.join();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->payload, "a");
  EXPECT_THAT(reply->headers, ElementsAre(Pair("R", "1")));
}

TEST_F(ClientTest, ServingATopicTwiceNamesTheHolder) {
  std::unique_ptr<Client> first = Connect("first");
  std::unique_ptr<Client> second = Connect("second");
  auto a = first->Serve("svc");
  ASSERT_TRUE(a.ok());
  auto b = second->Serve("svc");
  EXPECT_EQ(WireCode(b.status()), wire::TOPIC_ALREADY_SERVED);
  EXPECT_THAT(Text(b.status()), HasSubstr("first"));
  auto again = first->Serve("svc");
  EXPECT_EQ(WireCode(again.status()), wire::TOPIC_ALREADY_SERVED);
}

TEST_F(ClientTest, UnservingLetsAnotherClientServe) {
  std::unique_ptr<Client> first = Connect("first");
  std::unique_ptr<Client> second = Connect("second");
  auto a = first->Serve("svc");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE((*a)->Unserve().ok());
  EXPECT_TRUE(second->Serve("svc").ok());
}

// --- Callbacks may use the client --------------------------------------------

TEST_F(ClientTest, AHandlerWaitingOnItsOwnClientsServiceTimesOutNotDeadlocks) {
  std::unique_ptr<Client> client = Connect("c");
  auto time_service = client->Serve(
      "time", [](const IncomingRequest&) -> absl::StatusOr<std::string> {
        return std::string("noon");
      });
  ASSERT_TRUE(time_service.ok());
  auto greeter = client->Serve(
      "greet", [&](const IncomingRequest& r) -> absl::StatusOr<std::string> {
        absl::StatusOr<Message> time =
            client->Request("time", "", absl::Milliseconds(200));
        if (!time.ok()) return time.status();
        return absl::StrCat("good ", time->payload, ", ", r.payload);
      });
  ASSERT_TRUE(greeter.ok());
  std::unique_ptr<Client> caller = Connect("caller");
  // The nested request is handled by the callback thread while it is busy
  // with "greet"; it times out rather than deadlock, and says so.
  absl::StatusOr<Message> reply =
      caller->Request("greet", "bob", absl::Seconds(5));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(RequestStatusOf(reply.status()), wire::REJECTED);
  EXPECT_THAT(Text(reply.status()), HasSubstr("TIMED_OUT"));
}

TEST_F(ClientTest, AMessageHandlerMayPublishAndRequest) {
  Inbox results;  // before the clients: it must outlive their threads
  std::unique_ptr<Client> server = Connect("server");
  auto echo = server->Serve(
      "echo", [](const IncomingRequest& r) -> absl::StatusOr<std::string> {
        return r.payload;
      });
  ASSERT_TRUE(echo.ok());
  std::unique_ptr<Client> client = Connect("client");
  auto results_sub = client->Subscribe("results", results.Handler());
  auto sub = client->Subscribe("work", [&](const Message& m) {
    absl::StatusOr<Message> r =
        client->Request("echo", m.payload, absl::Seconds(2));
    client->Publish("results", r.ok() ? r->payload : Text(r.status()))
        .IgnoreError();
  });
  ASSERT_TRUE(sub.ok() && results_sub.ok());
  ASSERT_TRUE(client->Publish("work", "ping").ok());
  std::vector<Message> got = results.WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "ping");
}

TEST_F(ClientTest, AClientMayBeDestroyedFromItsOwnCallback) {
  std::unique_ptr<Client> pub = Connect("pub");
  std::unique_ptr<Client> doomed = Connect("doomed");
  testing::Notification destroyed;
  std::unique_ptr<Client::Subscription> sub;
  auto s = doomed->Subscribe("bye", [&](const Message&) {
    sub.reset();
    doomed.reset();
    destroyed.Notify();
  });
  ASSERT_TRUE(s.ok());
  sub = *std::move(s);
  ASSERT_TRUE(pub->Publish("bye", "").ok());
  EXPECT_TRUE(destroyed.WaitForNotificationWithTimeout(absl::Seconds(5)));
}

TEST_F(ClientTest, HandlesMayOutliveTheirClient) {
  std::unique_ptr<Client> client = Connect("c");
  auto sub = client->Subscribe("t");
  auto service = client->Serve("svc");
  ASSERT_TRUE(sub.ok() && service.ok());
  client.reset();
  EXPECT_EQ((*sub)->Next(absl::Milliseconds(10)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE((*service)->Unserve().ok());
  // Destroying them now is harmless.
}

// --- Endings -----------------------------------------------------------------

TEST_F(ClientTest, ClosingFailsCallsInProgressAndLaterOnes) {
  std::unique_ptr<Client> server = Connect("server");
  std::unique_ptr<Client> client = Connect("client");
  auto service = server->Serve("slow");
  ASSERT_TRUE(service.ok());
  absl::StatusOr<Message> reply;
  std::thread waiting(
      [&] { reply = client->Request("slow", "", absl::Seconds(10)); });
  ASSERT_TRUE((*service)->Next(absl::Seconds(5)).ok());
  client->Close();
  waiting.join();
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(client->connected());
  EXPECT_EQ(client->Publish("t", "x").code(), absl::StatusCode::kUnavailable);
  client->Close();  // again: nothing happens
}

TEST_F(ClientTest, CloseSendsWhatWasPublishedBeforeIt) {
  std::unique_ptr<Client> listener = Connect("listener");
  auto sub = listener->Subscribe("t");
  ASSERT_TRUE(sub.ok());
  std::unique_ptr<Client> client = Connect("client");
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(client->Publish("t", "x").ok());
  client.reset();
  int got = 0;
  while ((*sub)->Next(absl::Milliseconds(200)).ok()) ++got;
  EXPECT_EQ(got, 100);
}

TEST_F(ClientTest, TheBrokerGoingAwayIsReported) {
  testing::Notification lost;
  absl::Status lost_status;
  ClientOptions options;
  options.on_error = [&](const absl::Status& s) {
    if (absl::IsUnavailable(s) && !lost.HasBeenNotified()) {
      lost_status = s;
      lost.Notify();
    }
  };
  std::unique_ptr<Client> client = Connect("c", options);
  auto sub = client->Subscribe("t");
  ASSERT_TRUE(sub.ok());
  broker_.reset();  // graceful shutdown: Goodbye
  EXPECT_TRUE(lost.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_THAT(Text(lost_status), HasSubstr("SHUTTING_DOWN"));
  EXPECT_FALSE(client->connected());
  EXPECT_EQ(WireCode(client->status()), wire::SHUTTING_DOWN);
  absl::StatusOr<Message> next = (*sub)->Next(absl::Seconds(1));
  EXPECT_EQ(next.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Text(next.status()), HasSubstr("SHUTTING_DOWN"));
}

// --- Many threads ------------------------------------------------------------

TEST_F(ClientTest, ManyThreadsShareOneClient) {
  std::unique_ptr<Client> server = Connect("server");
  auto echo = server->Serve(
      "echo", [](const IncomingRequest& r) -> absl::StatusOr<std::string> {
        return r.payload;
      });
  ASSERT_TRUE(echo.ok());
  std::unique_ptr<Client> client = Connect("client");
  auto sub = client->Subscribe("count");
  ASSERT_TRUE(sub.ok());
  constexpr int kThreads = 8;
  constexpr int kEach = 50;
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string payload = absl::StrCat(t, "/", i);
        absl::StatusOr<Message> r =
            client->Request("echo", payload, absl::Seconds(5));
        if (r.ok() && r->payload == payload) ++answered;
        client->Publish("count", payload).IgnoreError();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(answered.load(), kThreads * kEach);
  int counted = 0;
  while ((*sub)->Next(absl::Milliseconds(200)).ok()) ++counted;
  EXPECT_EQ(counted, kThreads * kEach);
}

}  // namespace
}  // namespace manifold
