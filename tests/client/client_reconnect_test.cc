// The blocking client's reconnect (ClientOptions::reconnect) end to end, on
// each event loop: a network blip (a proxy between client and manifoldd
// resets every link mid-stream) is resumed without loss, and a manifoldd
// restart (killed, or shut down gracefully) is survived by subscribing again.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/testing/running_manifoldd.h"
#include "tests/transports/testing/event_loop_params.h"

namespace manifold {
namespace {

using ::manifold::testing::RunningManifoldd;

// A TCP proxy on 127.0.0.1 that forwards each accepted link to `target_port`
// and can reset every link it carries at once (CutAll), as a network blip
// does. New links are accepted again afterwards.
class CuttableProxy {
 public:
  explicit CuttableProxy(int target_port) : target_port_(target_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    ::listen(listener_, 16);
    socklen_t length = sizeof(address);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~CuttableProxy() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    acceptor_.join();
    CutAll();
    for (std::thread& t : pumps_) t.join();
    ::close(listener_);
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  // Resets every link now (SO_LINGER 0): bytes in flight are lost.
  void CutAll() {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_) {
      linger hard{.l_onoff = 1, .l_linger = 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
      ::shutdown(fd, SHUT_RDWR);
    }
    open_.clear();
  }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      const int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in target{};
      target.sin_family = AF_INET;
      target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      target.sin_port = htons(target_port_);
      if (::connect(upstream, reinterpret_cast<sockaddr*>(&target),
                    sizeof(target)) != 0) {
        ::close(client);
        ::close(upstream);
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        open_.push_back(client);
        open_.push_back(upstream);
      }
      pumps_.emplace_back([client, upstream] { Pump(client, upstream); });
    }
  }

  // Copies bytes both ways until either side ends or is cut.
  static void Pump(int a, int b) {
    char buffer[64 * 1024];
    pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    while (::poll(fds, 2, -1) > 0) {
      for (int k = 0; k < 2; ++k) {
        if (fds[k].revents == 0) continue;
        const ssize_t n = ::read(fds[k].fd, buffer, sizeof(buffer));
        if (n <= 0) goto done;
        for (ssize_t sent = 0; sent < n;) {
          // MSG_NOSIGNAL: a peer that was cut must not kill the test with
          // SIGPIPE.
          const ssize_t w = ::send(fds[1 - k].fd, buffer + sent,
                                   static_cast<size_t>(n - sent), MSG_NOSIGNAL);
          if (w <= 0) goto done;
          sent += w;
        }
      }
    }
  done:
    ::shutdown(a, SHUT_RDWR);
    ::shutdown(b, SHUT_RDWR);
    ::close(a);
    ::close(b);
  }

  const int target_port_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::vector<std::thread> pumps_;
  std::mutex mu_;
  std::vector<int> open_;
};

ClientOptions Reconnecting(std::vector<std::string>* errors,
                           std::mutex* errors_mu) {
  ClientOptions options;
  options.name = "survivor";
  options.reconnect.enabled = true;
  options.reconnect.initial_backoff = absl::Milliseconds(20);
  options.reconnect.max_backoff = absl::Milliseconds(200);
  options.reconnect.give_up_after = absl::Seconds(20);
  options.reconnect.jitter_seed = 1;
  options.on_error = [errors, errors_mu](const absl::Status& s) {
    std::lock_guard<std::mutex> lock(*errors_mu);
    errors->push_back(std::string(s.message()));
  };
  return options;
}

class ClientReconnectTest : public ::testing::TestWithParam<std::string> {
 protected:
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> StartBroker(int port = 0) {
    return RunningManifoldd::Start({absl::StrCat("--loop=", GetParam()),
                                    absl::StrCat("--listen=127.0.0.1:", port)});
  }

  // Publishes `payload` on `topic` every 50 ms until `sub` receives it or 15 s
  // pass: the subscriber comes back on its own schedule.
  static bool PublishUntilReceived(const std::string& address,
                                   Client::Subscription& sub,
                                   absl::string_view topic,
                                   absl::string_view payload) {
    const absl::Time deadline = absl::Now() + absl::Seconds(15);
    while (absl::Now() < deadline) {
      absl::StatusOr<std::unique_ptr<Client>> publisher =
          Client::Connect(address);
      if (publisher.ok()) {
        (*publisher)->Publish(topic, payload).IgnoreError();
        (*publisher)->Ping().IgnoreError();
      }
      absl::StatusOr<Message> m = sub.Next(absl::Milliseconds(50));
      while (m.ok()) {
        if (m->payload == payload) return true;
        m = sub.Next(absl::Milliseconds(1));
      }
    }
    return false;
  }

  // Waits up to 5 s for on_error to have been told something containing
  // `text`.
  bool WaitForError(absl::string_view text) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      {
        std::lock_guard<std::mutex> lock(errors_mu_);
        for (const std::string& e : errors_) {
          if (absl::StrContains(e, text)) return true;
        }
      }
      absl::SleepFor(absl::Milliseconds(10));  // poll interval
    }
    return false;
  }

  std::vector<std::string> errors_;
  std::mutex errors_mu_;
};

TEST_P(ClientReconnectTest, ANetworkBlipIsResumedWithNothingLost) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker = StartBroker();
  ASSERT_TRUE(broker.ok()) << broker.status();
  CuttableProxy proxy((*broker)->tcp().port);
  absl::StatusOr<std::unique_ptr<Client>> subscriber =
      Client::Connect(proxy.address(), Reconnecting(&errors_, &errors_mu_));
  ASSERT_TRUE(subscriber.ok()) << subscriber.status();
  auto sub = (*subscriber)->Subscribe("blip/*");
  ASSERT_TRUE(sub.ok()) << sub.status();
  absl::StatusOr<std::unique_ptr<Client>> publisher =
      Client::Connect((*broker)->tcp_address());
  ASSERT_TRUE(publisher.ok()) << publisher.status();

  constexpr int kMessages = 4000;
  std::vector<std::string> received;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE((*publisher)->Publish("blip/x", absl::StrCat(i)).ok());
    if (i == kMessages / 2) {
      // Let some arrive, then cut the link mid-stream.
      absl::StatusOr<Message> m = (*sub)->Next(absl::Seconds(5));
      ASSERT_TRUE(m.ok()) << m.status();
      received.push_back(m->payload);
      proxy.CutAll();
    }
  }
  ASSERT_TRUE((*publisher)->Ping().ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (received.size() < kMessages && absl::Now() < deadline) {
    absl::StatusOr<Message> m = (*sub)->Next(deadline - absl::Now());
    if (m.ok()) received.push_back(m->payload);
  }
  ASSERT_EQ(received.size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_EQ(received[i], absl::StrCat(i)) << "at " << i;
  }
  EXPECT_GE((*subscriber)->reconnects(), 1u);
  EXPECT_EQ((*subscriber)->sessions_lost(), 0u);
  EXPECT_TRUE((*subscriber)->connected());
}

TEST_P(ClientReconnectTest, AKilledBrokerIsSurvivedBySubscribingAgain) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> first = StartBroker();
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = (*first)->tcp().port;
  absl::StatusOr<std::unique_ptr<Client>> subscriber = Client::Connect(
      (*first)->tcp_address(), Reconnecting(&errors_, &errors_mu_));
  ASSERT_TRUE(subscriber.ok()) << subscriber.status();
  auto sub = (*subscriber)->Subscribe("news/*");
  ASSERT_TRUE(sub.ok()) << sub.status();
  ASSERT_TRUE(
      PublishUntilReceived((*first)->tcp_address(), **sub, "news/a", "one"));

  const absl::StatusOr<int> stopped = (*first)->Stop(SIGKILL);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> second = StartBroker(port);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(
      PublishUntilReceived((*second)->tcp_address(), **sub, "news/b", "two"));
  EXPECT_EQ((*subscriber)->sessions_lost(), 1u);
  EXPECT_TRUE((*subscriber)->connected());
  // on_error runs on the client's callback thread, in its own time.
  EXPECT_TRUE(WaitForError("no longer had this client's session"));
}

TEST_P(ClientReconnectTest, AGracefulRestartIsSurvivedToo) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> first = StartBroker();
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = (*first)->tcp().port;
  absl::StatusOr<std::unique_ptr<Client>> subscriber = Client::Connect(
      (*first)->tcp_address(), Reconnecting(&errors_, &errors_mu_));
  ASSERT_TRUE(subscriber.ok()) << subscriber.status();
  auto sub = (*subscriber)->Subscribe("news/*");
  ASSERT_TRUE(sub.ok()) << sub.status();

  absl::StatusOr<int> exit_code = (*first)->Stop(SIGTERM);
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0);
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> second = StartBroker(port);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(
      PublishUntilReceived((*second)->tcp_address(), **sub, "news/c", "three"));
  EXPECT_EQ((*subscriber)->sessions_lost(), 1u);
}

TEST_P(ClientReconnectTest, WithoutReconnectALostBrokerEndsTheClient) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker = StartBroker();
  ASSERT_TRUE(broker.ok()) << broker.status();
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect((*broker)->tcp_address());
  ASSERT_TRUE(client.ok()) << client.status();
  const absl::StatusOr<int> stopped = (*broker)->Stop(SIGKILL);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while ((*client)->connected() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));  // poll interval
  }
  EXPECT_FALSE((*client)->connected());
  EXPECT_EQ((*client)->reconnects(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Loops, ClientReconnectTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

}  // namespace
}  // namespace manifold
