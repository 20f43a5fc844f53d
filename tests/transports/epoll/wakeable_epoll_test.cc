// WakeableEpoll: descriptors come back with their tokens, a Wake() from
// another thread ends a wait that would otherwise block for good, and the
// wake-up itself never shows up as an event.

#include "transports/epoll/wakeable_epoll.h"

#include <fcntl.h>
#include <unistd.h>

#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "transports/sockets/unique_fd.h"

namespace manifold {
namespace {

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Pipe MakePipe() {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

TEST(WakeableEpollTest, AReadyDescriptorComesBackWithItsToken) {
  absl::StatusOr<WakeableEpoll> epoll = WakeableEpoll::Create();
  ASSERT_TRUE(epoll.ok()) << epoll.status();
  Pipe pipe = MakePipe();
  ASSERT_TRUE(epoll->Add(pipe.read.get(), EPOLLIN, 42).ok());
  ASSERT_EQ(::write(pipe.write.get(), "x", 1), 1);

  epoll_event events[4];
  absl::StatusOr<int> n = epoll->Wait(absl::MakeSpan(events), 1000);
  ASSERT_TRUE(n.ok()) << n.status();
  ASSERT_EQ(*n, 1);
  EXPECT_EQ(events[0].data.u64, 42u);
  EXPECT_TRUE(events[0].events & EPOLLIN);
}

TEST(WakeableEpollTest, WakeFromAnotherThreadEndsAWait) {
  absl::StatusOr<WakeableEpoll> epoll = WakeableEpoll::Create();
  ASSERT_TRUE(epoll.ok()) << epoll.status();
  absl::StatusOr<int> n = absl::UnknownError("never waited");
  const absl::Time start = absl::Now();
  std::thread waiter([&] {
    epoll_event events[4];
    n = epoll->Wait(absl::MakeSpan(events), /*timeout_ms=*/60'000);
  });
  epoll->Wake();
  waiter.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(30)) << "the wait timed out";
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0);
}

TEST(WakeableEpollTest, AWakeBeforeTheWaitIsConsumedOnce) {
  absl::StatusOr<WakeableEpoll> epoll = WakeableEpoll::Create();
  ASSERT_TRUE(epoll.ok()) << epoll.status();
  epoll->Wake();
  epoll->Wake();
  epoll_event events[4];
  absl::StatusOr<int> first = epoll->Wait(absl::MakeSpan(events), 1000);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, 0);
  // Both wakes were consumed by that wait: the next one times out.
  const absl::Time start = absl::Now();
  absl::StatusOr<int> second = epoll->Wait(absl::MakeSpan(events), 50);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, 0);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(40));
}

TEST(WakeableEpollTest, ModifyToNoEventsPausesADescriptor) {
  absl::StatusOr<WakeableEpoll> epoll = WakeableEpoll::Create();
  ASSERT_TRUE(epoll.ok()) << epoll.status();
  Pipe pipe = MakePipe();
  ASSERT_TRUE(epoll->Add(pipe.read.get(), EPOLLIN, 7).ok());
  ASSERT_EQ(::write(pipe.write.get(), "x", 1), 1);
  ASSERT_TRUE(epoll->Modify(pipe.read.get(), 0, 7).ok());
  epoll_event events[4];
  absl::StatusOr<int> paused = epoll->Wait(absl::MakeSpan(events), 0);
  ASSERT_TRUE(paused.ok());
  EXPECT_EQ(*paused, 0);

  ASSERT_TRUE(epoll->Modify(pipe.read.get(), EPOLLIN, 8).ok());
  absl::StatusOr<int> resumed = epoll->Wait(absl::MakeSpan(events), 1000);
  ASSERT_TRUE(resumed.ok());
  ASSERT_EQ(*resumed, 1);
  EXPECT_EQ(events[0].data.u64, 8u);
}

TEST(WakeableEpollTest, AddingABadDescriptorSaysWhichCallFailed) {
  absl::StatusOr<WakeableEpoll> epoll = WakeableEpoll::Create();
  ASSERT_TRUE(epoll.ok()) << epoll.status();
  const absl::Status status = epoll->Add(/*fd=*/-1, EPOLLIN, 1);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("epoll_ctl"), absl::string_view::npos)
      << status;
}

}  // namespace
}  // namespace manifold
