// WakeableEpoll: descriptors come back with their tokens, a Wake() from
// another thread ends a wait that would otherwise block for good, and the
// wake-up itself never shows up as an event.

#include "transports/epoll/wakeable_epoll.h"

#include <fcntl.h>
#include <unistd.h>

#include <optional>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "transports/sockets/unique_fd.h"

namespace manifold {
namespace {

class WakeableEpollTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<WakeableEpoll> epoll = WakeableEpoll::Create();
    ASSERT_TRUE(epoll.ok()) << epoll.status();
    epoll_.emplace(*std::move(epoll));
  }

  // Adds the read end of a fresh pipe with `token` and makes it readable.
  void AddReadablePipe(uint64_t token) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    read_end_ = UniqueFd(fds[0]);
    write_end_ = UniqueFd(fds[1]);
    ASSERT_TRUE(epoll_->Add(read_end_.get(), EPOLLIN, token).ok());
    ASSERT_EQ(::write(write_end_.get(), "x", 1), 1);
  }

  // Waits at most `timeout_ms`; the events are in events_.
  int Wait(int timeout_ms) {
    absl::StatusOr<int> n = epoll_->Wait(absl::MakeSpan(events_), timeout_ms);
    EXPECT_TRUE(n.ok()) << n.status();
    return n.value_or(-1);
  }

  std::optional<WakeableEpoll> epoll_;
  UniqueFd read_end_;
  UniqueFd write_end_;
  epoll_event events_[4];
};

TEST_F(WakeableEpollTest, AReadyDescriptorComesBackWithItsToken) {
  ASSERT_NO_FATAL_FAILURE(AddReadablePipe(42));
  ASSERT_EQ(Wait(1000), 1);
  EXPECT_EQ(events_[0].data.u64, 42u);
  EXPECT_TRUE(events_[0].events & EPOLLIN);
}

TEST_F(WakeableEpollTest, WakeFromAnotherThreadEndsAWait) {
  int n = -1;
  const absl::Time start = absl::Now();
  std::thread waiter([&] { n = Wait(/*timeout_ms=*/60'000); });
  epoll_->Wake();
  waiter.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(30)) << "the wait timed out";
  EXPECT_EQ(n, 0);
}

TEST_F(WakeableEpollTest, AWakeBeforeTheWaitIsConsumedOnce) {
  epoll_->Wake();
  epoll_->Wake();
  EXPECT_EQ(Wait(1000), 0);
  // Both wakes were consumed by that wait: the next one times out.
  const absl::Time start = absl::Now();
  EXPECT_EQ(Wait(50), 0);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(40));
}

TEST_F(WakeableEpollTest, ModifyToNoEventsPausesADescriptor) {
  ASSERT_NO_FATAL_FAILURE(AddReadablePipe(7));
  ASSERT_TRUE(epoll_->Modify(read_end_.get(), 0, 7).ok());
  EXPECT_EQ(Wait(0), 0);

  ASSERT_TRUE(epoll_->Modify(read_end_.get(), EPOLLIN, 8).ok());
  ASSERT_EQ(Wait(1000), 1);
  EXPECT_EQ(events_[0].data.u64, 8u);
}

TEST_F(WakeableEpollTest, TheWakeTokenIsNotForOtherDescriptors) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  EXPECT_TRUE(absl::IsInvalidArgument(
      epoll_->Add(read_end.get(), EPOLLIN, WakeableEpoll::kWakeToken)));
}

TEST_F(WakeableEpollTest, AddingABadDescriptorSaysWhichCallFailed) {
  const absl::Status status = epoll_->Add(/*fd=*/-1, EPOLLIN, 1);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("epoll_ctl"), absl::string_view::npos)
      << status;
}

}  // namespace
}  // namespace manifold
