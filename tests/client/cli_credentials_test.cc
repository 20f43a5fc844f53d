// `manifold --user/--pass/--token` end to end: real `manifold` processes
// against a real Broker that requires admission, served over a TCP socket
// by a small event loop of the test's own whose embedder admits one user
// and refuses everyone else with a reason.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/broker.h"
#include "core/manifold.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/program_path.h"

// CMake compiles the path in; Bazel sets $MANIFOLD_CLI.
#ifndef MANIFOLD_CLI_PATH
#define MANIFOLD_CLI_PATH nullptr
#endif

namespace manifold {
namespace {

using ::manifold::testing::Completed;
using ::manifold::testing::ProgramPath;
using ::manifold::testing::RunToCompletion;
using ::testing::HasSubstr;

constexpr absl::Duration kProcessTimeout = absl::Seconds(10);

// A Broker with require_admission on 127.0.0.1:<port>. Its embedder admits
// user "alice" with password "s3cret" and token "t0k", and refuses any
// other credentials with the reason "unknown credentials for '<user>'".
class AdmittingBroker {
 public:
  AdmittingBroker() : broker_(Options()) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof(address);
    if (bind(listener_, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
        listen(listener_, 8) != 0 ||
        getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &size) !=
            0) {
      ADD_FAILURE() << "cannot listen on loopback";
      return;
    }
    address_ = absl::StrCat("127.0.0.1:", ntohs(address.sin_port));
    thread_ = std::thread([this] { Run(); });
  }
  ~AdmittingBroker() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (const auto& [fd, id] : links_) close(fd);
    close(listener_);
  }

  const std::string& address() const { return address_; }

 private:
  static BrokerOptions Options() {
    BrokerOptions options;
    options.set_require_admission(true);
    return options;
  }

  void Run() {
    while (!stop_) {
      std::vector<pollfd> fds = {{listener_, POLLIN, 0}};
      for (const auto& [fd, id] : links_) fds.push_back({fd, POLLIN, 0});
      poll(fds.data(), fds.size(), 10);
      const absl::Time now = absl::Now();
      if (fds[0].revents & POLLIN) {
        const int fd = accept(listener_, nullptr, nullptr);
        if (fd >= 0) links_[fd] = broker_.Accept(PeerInfo{"test"}, now).id();
      }
      for (size_t k = 1; k < fds.size(); ++k) {
        if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buffer[4096];
        const ssize_t n = read(fds[k].fd, buffer, sizeof(buffer));
        const ConnectionId id = links_[fds[k].fd];
        if (n <= 0) {
          broker_.Close(id, "peer closed the connection", now);
          close(fds[k].fd);
          links_.erase(fds[k].fd);
          continue;
        }
        if (Connection* c = broker_.FindConnection(id)) {
          c->Receive(absl::string_view(buffer, n), now);
        }
      }
      broker_.Process(now);
      broker_.Tick(now);
      while (std::optional<wire::BrokerEvent> e = broker_.PollEvent()) {
        if (!e->has_connection_pending()) continue;
        const wire::ConnectionPending& p = e->connection_pending();
        const ConnectionId id(p.session_id());
        if ((p.user() == "alice" && p.password() == "s3cret") ||
            p.auth_token() == "t0k") {
          broker_.Admit(id, now).IgnoreError();
        } else {
          broker_
              .Refuse(id,
                      absl::StrCat("unknown credentials for '", p.user(), "'"),
                      now)
              .IgnoreError();
        }
      }
      Flush(now);
    }
  }

  // Writes every connection's output (blocking: the peers read it all);
  // closes those the broker is done with.
  void Flush(absl::Time now) {
    for (auto it = links_.begin(); it != links_.end();) {
      Connection* c = broker_.FindConnection(it->second);
      if (c == nullptr) {
        close(it->first);
        it = links_.erase(it);
        continue;
      }
      const std::string out = c->CopyPendingOutput();
      size_t written = 0;
      while (written < out.size()) {
        const ssize_t n =
            write(it->first, out.data() + written, out.size() - written);
        if (n <= 0) break;
        written += static_cast<size_t>(n);
      }
      c->Consume(out.size());
      if (c->ShouldClose()) {
        broker_.Close(it->second, "closed by the broker", now);
        close(it->first);
        it = links_.erase(it);
        continue;
      }
      ++it;
    }
  }

  Broker broker_;
  int listener_ = -1;
  std::string address_;
  std::map<int, ConnectionId> links_;  // socket -> connection
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class CliCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cli_ = ProgramPath("MANIFOLD_CLI", MANIFOLD_CLI_PATH);
    ASSERT_FALSE(cli_.empty()) << "the build did not say where manifold is";
  }

  Completed Run(std::vector<std::string> args) {
    std::vector<std::string> argv = {"--server", broker_.address()};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<Completed> result =
        RunToCompletion(cli_, argv, kProcessTimeout);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : Completed();
  }

  std::string cli_;
  AdmittingBroker broker_;
};

TEST_F(CliCredentialsTest, UserAndPassAreAdmitted) {
  Completed pub = Run({"--user", "alice", "--pass", "s3cret", "pub", "t", "x"});
  EXPECT_EQ(pub.exit_code, 0) << pub.err;
  EXPECT_EQ(pub.out, "published 1 bytes to t (0 subscriptions)\n");
}

TEST_F(CliCredentialsTest, ATokenIsAdmitted) {
  Completed pub = Run({"--token", "t0k", "pub", "t", "x"});
  EXPECT_EQ(pub.exit_code, 0) << pub.err;
}

TEST_F(CliCredentialsTest, ARefusedConnectPrintsTheBrokersReasonAndFails) {
  Completed pub =
      Run({"--user", "mallory", "--pass", "guess", "pub", "t", "x"});
  EXPECT_EQ(pub.exit_code, 1);
  EXPECT_EQ(pub.out, "");
  EXPECT_EQ(pub.err,
            "manifold pub: REFUSED: connection refused: unknown credentials "
            "for 'mallory'\n");
  // No credentials at all: refused the same way.
  Completed none = Run({"stats"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.err, HasSubstr("unknown credentials for ''"));
}

}  // namespace
}  // namespace manifold
