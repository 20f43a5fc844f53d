// The blocking client end to end: real manifoldd processes, real loopback TCP
// and Unix sockets, every test once over each, on each event loop this build
// has (manifoldd --loop epoll, io_uring, uv).

#include <signal.h>

#include <atomic>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "client/errors.h"
#include "client/internal/await_mutex.h"
#include "core/manifold.pb.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/notification.h"
#include "tests/testing/running_manifoldd.h"
#include "tests/transports/testing/event_loop_params.h"

namespace manifold {
namespace {

using ::manifold::testing::RunningManifoldd;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::string Text(const absl::Status& status) {
  return std::string(status.message());
}

// Takes every message from `sub` until `n` have come or `timeout` passes.
std::vector<std::string> Drain(Client::Subscription& sub, size_t n,
                               absl::Duration timeout = absl::Seconds(5)) {
  std::vector<std::string> payloads;
  const absl::Time deadline = absl::Now() + timeout;
  while (payloads.size() < n && absl::Now() < deadline) {
    absl::StatusOr<Message> m = sub.Next(deadline - absl::Now());
    if (m.ok()) payloads.push_back(m->topic + " " + m->payload);
  }
  return payloads;
}

// The examples at the top of client/client.h, as they are written there
// (with `out` for std::cout and the address passed in).
absl::Status RequestExample(const std::string& address, std::ostream& out) {
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(address);
  if (!client.ok()) return client.status();
  absl::StatusOr<Message> reply =
      (*client)->Request("time/now", "utc", absl::Seconds(2));
  if (!reply.ok()) return reply.status();
  out << reply->payload << "\n";
  return absl::OkStatus();
}

absl::Status SubscriptionExample(const std::string& address, std::ostream& out,
                                 testing::Notification& ready,
                                 testing::Notification& done) {
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(address);
  if (!client.ok()) return client.status();
  auto sub = (*client)->Subscribe("room/*", [&](const Message& m) {
    out << m.topic << ": " << m.payload << "\n";
    done.Notify();
  });
  if (!sub.ok()) return sub.status();
  ready.Notify();
  done.WaitForNotificationWithTimeout(absl::Seconds(5));
  return absl::OkStatus();
}

// (event loop, "tcp" or "unix")
using LoopAndTransport = std::tuple<std::string, std::string>;

class ClientE2eTest : public ::testing::TestWithParam<LoopAndTransport> {
 protected:
  void SetUp() override {
    RunningManifoldd::Options options;
    options.unix_socket = true;
    absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
        RunningManifoldd::Start(
            {"--loop", std::get<0>(GetParam()), "--listen", "127.0.0.1:0"},
            options);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
  }

  std::string address() const {
    return std::get<1>(GetParam()) == "tcp" ? broker_->tcp_address()
                                            : broker_->unix_address();
  }

  std::unique_ptr<Client> Connect(absl::string_view name,
                                  ClientOptions options = ClientOptions()) {
    options.name = std::string(name);
    absl::StatusOr<std::unique_ptr<Client>> client =
        Client::Connect(address(), std::move(options));
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  std::unique_ptr<RunningManifoldd> broker_;
};

INSTANTIATE_TEST_SUITE_P(
    LoopsAndTransports, ClientE2eTest,
    ::testing::Combine(::testing::ValuesIn(testing::EventLoops()),
                       ::testing::Values("tcp", "unix")),
    [](const ::testing::TestParamInfo<LoopAndTransport>& info) {
      return std::get<0>(info.param) + "_" + std::get<1>(info.param);
    });

TEST_P(ClientE2eTest, TheHeadersExamplesWorkAsWritten) {
  std::unique_ptr<Client> server = Connect("time-server");
  auto service = server->Serve(
      "time/now", [](const IncomingRequest& r) -> absl::StatusOr<std::string> {
        return absl::StrCat("12:00 ", r.payload);
      });
  ASSERT_TRUE(service.ok());
  std::ostringstream request_out;
  ASSERT_TRUE(RequestExample(address(), request_out).ok());
  EXPECT_EQ(request_out.str(), "12:00 utc\n");

  std::ostringstream sub_out;
  testing::Notification ready, done;
  absl::Status sub_status;
  std::thread listener([&] {
    sub_status = SubscriptionExample(address(), sub_out, ready, done);
  });
  ASSERT_TRUE(ready.WaitForNotificationWithTimeout(absl::Seconds(5)));
  ASSERT_TRUE(server->Publish("room/1", "hi").ok());
  listener.join();
  EXPECT_TRUE(sub_status.ok()) << sub_status;
  EXPECT_EQ(sub_out.str(), "room/1: hi\n");
}

TEST_P(ClientE2eTest, WildcardSubscriptionsAndWildcardPublishes) {
  std::unique_ptr<Client> alice = Connect("alice");
  std::unique_ptr<Client> bob = Connect("bob");
  ASSERT_TRUE(alice && bob);
  auto temps = bob->Subscribe("sensors/*/temp");
  auto all = bob->Subscribe("sensors/**");
  ASSERT_TRUE(temps.ok() && all.ok());

  ASSERT_TRUE(alice->Publish("sensors/k1/temp", "21").ok());
  ASSERT_TRUE(alice->Publish("sensors/k1/humidity", "40").ok());
  ASSERT_TRUE(alice->Publish("*/k2/temp", "19").ok());  // a wildcard publish
  ASSERT_TRUE(alice->Publish("elsewhere", "x").ok());

  EXPECT_THAT(Drain(**temps, 2),
              UnorderedElementsAre("sensors/k1/temp 21", "*/k2/temp 19"));
  EXPECT_THAT(Drain(**all, 3),
              UnorderedElementsAre("sensors/k1/temp 21",
                                   "sensors/k1/humidity 40", "*/k2/temp 19"));
  EXPECT_EQ((*all)->Next(absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_P(ClientE2eTest, AQueueGroupGivesEachMessageToOneMember) {
  std::unique_ptr<Client> publisher = Connect("publisher");
  std::vector<std::unique_ptr<Client>> workers;
  std::vector<std::unique_ptr<Client::Subscription>> subs;
  for (int i = 0; i < 3; ++i) {
    workers.push_back(Connect(absl::StrCat("worker-", i)));
    auto sub = workers.back()->QueueSubscribe("jobs/*", "workers");
    ASSERT_TRUE(sub.ok()) << sub.status();
    subs.push_back(*std::move(sub));
  }
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(publisher->Publish(absl::StrCat("jobs/", i), "x").ok());
  }
  ASSERT_TRUE(publisher->Ping().ok());
  size_t total = 0;
  for (auto& sub : subs) {
    const size_t got = Drain(*sub, 10, absl::Seconds(2)).size();
    EXPECT_EQ(got, 10u);  // the broker deals round-robin
    total += got;
  }
  EXPECT_EQ(total, 30u);
  for (auto& sub : subs) {
    EXPECT_FALSE(sub->Next(absl::Milliseconds(50)).ok());
  }
}

TEST_P(ClientE2eTest, ARequestIsAnsweredByTheServingClient) {
  std::unique_ptr<Client> server = Connect("server");
  std::unique_ptr<Client> client = Connect("client");
  auto service = server->Serve(
      "greet", [](const IncomingRequest& r) -> absl::StatusOr<std::string> {
        if (r.payload.empty()) return absl::InvalidArgumentError("who?");
        return absl::StrCat("hello, ", r.payload);
      });
  ASSERT_TRUE(service.ok()) << service.status();
  absl::StatusOr<Message> reply =
      client->Request("greet", "bob", absl::Seconds(5), {{"Lang", "en"}});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->payload, "hello, bob");

  absl::StatusOr<Message> rejected =
      client->Request("greet", "", absl::Seconds(5));
  EXPECT_EQ(Text(rejected.status()), "REJECTED: who?");
}

TEST_P(ClientE2eTest, ARequestNobodyServesFailsAtOnceWithNoServer) {
  std::unique_ptr<Client> client = Connect("client");
  const absl::Time start = absl::Now();
  absl::StatusOr<Message> reply =
      client->Request("nobody/home", "", absl::Seconds(5));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(RequestStatusOf(reply.status()), wire::NO_SERVER);
  EXPECT_EQ(Text(reply.status()),
            "NO_SERVER: no server for topic 'nobody/home'");
}

TEST_P(ClientE2eTest, ARequestTimesOutWhenTheServerDoesNotAnswer) {
  std::unique_ptr<Client> server = Connect("server");
  std::unique_ptr<Client> client = Connect("client");
  auto service = server->Serve("slow");  // pulled and never answered
  ASSERT_TRUE(service.ok());
  const absl::Time start = absl::Now();
  absl::StatusOr<Message> reply =
      client->Request("slow", "", absl::Milliseconds(200));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(RequestStatusOf(reply.status()), wire::TIMED_OUT);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(took, absl::Milliseconds(200));
  EXPECT_LT(took, absl::Seconds(2));
  // The server got the request, and learns the requester gave up if it
  // answers late.
  EXPECT_TRUE((*service)->Next(absl::Seconds(1)).ok());
}

TEST_P(ClientE2eTest, ARequestFailsWithServerGoneWhenTheServerLeaves) {
  std::unique_ptr<Client> server = Connect("server");
  std::unique_ptr<Client> client = Connect("client");
  auto service = server->Serve("svc");
  ASSERT_TRUE(service.ok());
  std::thread leave([&] {
    EXPECT_TRUE((*service)->Next(absl::Seconds(5)).ok());
    server->Close();
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<Message> reply = client->Request("svc", "", absl::Seconds(10));
  leave.join();
  EXPECT_EQ(RequestStatusOf(reply.status()), wire::SERVER_GONE);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_P(ClientE2eTest, ARequesterThatLeavesDoesNotDisturbTheServer) {
  client_internal::AwaitMutex mu;
  std::vector<absl::Status> server_errors;
  ClientOptions server_options;
  server_options.on_error = [&](const absl::Status& s) {
    client_internal::AwaitMutexLock lock(&mu);
    server_errors.push_back(s);
  };
  std::unique_ptr<Client> server = Connect("server", server_options);
  auto service = server->Serve("svc");
  ASSERT_TRUE(service.ok());

  auto removals = server->Subscribe("$sys/connection/removed");
  ASSERT_TRUE(removals.ok());
  std::unique_ptr<Client> leaver = Connect("leaver");
  const uint64_t leaver_session = leaver->session_id();
  std::thread ask([&] {
    leaver->Request("svc", "first", absl::Seconds(10)).IgnoreError();
  });
  absl::StatusOr<IncomingRequest> first = (*service)->Next(absl::Seconds(5));
  ASSERT_TRUE(first.ok());
  leaver->Close();  // mid-request
  ask.join();
  // Answer only once the broker has seen the requester go.
  bool removed = false;
  while (!removed) {
    absl::StatusOr<Message> event = (*removals)->Next(absl::Seconds(5));
    ASSERT_TRUE(event.ok()) << event.status();
    wire::BrokerEvent parsed;
    ASSERT_TRUE(parsed.ParseFromString(event->payload));
    removed = parsed.connection_removed().session_id() == leaver_session;
  }
  ASSERT_TRUE(server->Respond(first->id, "too late").ok());
  ASSERT_TRUE(server->Ping().ok());

  // The server keeps serving.
  std::unique_ptr<Client> stayer = Connect("stayer");
  std::thread answer([&] {
    absl::StatusOr<IncomingRequest> r = (*service)->Next(absl::Seconds(5));
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(server->Respond(r->id, "ok").ok());
  });
  absl::StatusOr<Message> reply = stayer->Request("svc", "", absl::Seconds(5));
  answer.join();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->payload, "ok");
  EXPECT_TRUE(server->connected());

  client_internal::AwaitMutexLock lock(&mu);
  auto reported = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return !server_errors.empty();
  };
  mu.AwaitWithTimeout(reported, absl::Seconds(2));
  ASSERT_EQ(server_errors.size(), 1u);
  EXPECT_EQ(WireCode(server_errors[0]), wire::UNKNOWN_REQUEST);
}

TEST_P(ClientE2eTest, ManyClientsAtOnce) {
  constexpr int kClients = 40;
  constexpr int kMessages = 20;
  std::unique_ptr<Client> server = Connect("echo");
  auto echo = server->Serve(
      "echo", [](const IncomingRequest& r) -> absl::StatusOr<std::string> {
        return r.payload;
      });
  ASSERT_TRUE(echo.ok());

  std::vector<std::unique_ptr<Client>> clients(kClients);
  std::vector<std::unique_ptr<Client::Subscription>> subs(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      clients[i] = Connect(absl::StrCat("c", i));
      if (clients[i] == nullptr) return;
      auto sub = clients[i]->Subscribe("fanout");
      if (sub.ok()) subs[i] = *std::move(sub);
    });
  }
  for (std::thread& t : threads) t.join();
  threads.clear();
  for (int i = 0; i < kClients; ++i) {
    ASSERT_NE(clients[i], nullptr);
    ASSERT_NE(subs[i], nullptr);
  }

  std::unique_ptr<Client> publisher = Connect("publisher");
  for (int m = 0; m < kMessages; ++m) {
    ASSERT_TRUE(publisher->Publish("fanout", absl::StrCat(m)).ok());
  }
  std::atomic<int> complete{0};
  std::atomic<int> answered{0};
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      if (Drain(*subs[i], kMessages).size() == kMessages) ++complete;
      for (int r = 0; r < 5; ++r) {
        const std::string payload = absl::StrCat(i, ":", r);
        absl::StatusOr<Message> reply =
            clients[i]->Request("echo", payload, absl::Seconds(5));
        if (reply.ok() && reply->payload == payload) ++answered;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(complete.load(), kClients);
  EXPECT_EQ(answered.load(), kClients * 5);
}

TEST_P(ClientE2eTest, StatisticsComeFromTheBroker) {
  std::unique_ptr<Client> a = Connect("a");
  std::unique_ptr<Client> b = Connect("b");
  absl::StatusOr<Message> reply =
      a->Request("$sys/stats", "", absl::Seconds(5));
  ASSERT_TRUE(reply.ok()) << reply.status();
  wire::Statistics stats;
  ASSERT_TRUE(stats.ParseFromString(reply->payload));
  EXPECT_EQ(stats.connections(), 2u);
}

TEST_P(ClientE2eTest, ClientsHearTheBrokerShutDownOnSigterm) {
  testing::Notification lost;
  absl::Status lost_status;
  ClientOptions options;
  options.on_error = [&](const absl::Status& s) {
    if (absl::IsUnavailable(s) && !lost.HasBeenNotified()) {
      lost_status = s;
      lost.Notify();
    }
  };
  std::unique_ptr<Client> watcher = Connect("watcher", options);
  std::unique_ptr<Client> server = Connect("server");
  std::unique_ptr<Client> requester = Connect("requester");
  auto sub = watcher->Subscribe("t");
  auto service = server->Serve("svc");
  ASSERT_TRUE(sub.ok() && service.ok());
  absl::StatusOr<Message> reply;
  std::thread ask(
      [&] { reply = requester->Request("svc", "", absl::Seconds(10)); });
  ASSERT_TRUE((*service)->Next(absl::Seconds(5)).ok());  // in flight

  absl::StatusOr<int> exit_code = broker_->Stop(SIGTERM);
  ask.join();
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0);
  EXPECT_TRUE(lost.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_THAT(Text(lost_status), HasSubstr("SHUTTING_DOWN"));
  EXPECT_EQ(WireCode(watcher->status()), wire::SHUTTING_DOWN);
  EXPECT_FALSE(watcher->connected());
  EXPECT_FALSE(reply.ok());
  EXPECT_EQ((*sub)->Next(absl::Seconds(1)).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_P(ClientE2eTest, ConnectingWhereNothingListensFailsClearly) {
  const std::string where = address();
  const absl::StatusOr<int> stopped = broker_->Stop(SIGTERM);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(where);
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Text(client.status()),
              HasSubstr(absl::StrCat("cannot connect to ", where)));
}

}  // namespace
}  // namespace manifold
