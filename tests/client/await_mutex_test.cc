// AwaitMutex (client/internal/await_mutex.h): waiting for a condition on
// state guarded by a std::mutex, with absl::Mutex's semantics.

#include "client/internal/await_mutex.h"

#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace manifold::client_internal {
namespace {

TEST(AwaitMutexTest, AwaitReturnsOnceAnotherThreadMakesTheConditionTrue) {
  AwaitMutex mu;
  bool ready = false;
  // Set (under the lock) when Await() has found the condition false: from
  // then on the waiter only wakes if the setter's change wakes it.
  bool waiting = false;
  std::thread setter([&] {
    AwaitMutexLock lock(&mu);
    EXPECT_TRUE(mu.AwaitWithTimeout([&] { return waiting; }, absl::Seconds(30)))
        << "the waiter never checked its condition";
    ready = true;
  });
  {
    AwaitMutexLock lock(&mu);
    mu.Await([&] {
      if (!ready) waiting = true;
      return ready;
    });
    EXPECT_TRUE(ready);
    EXPECT_TRUE(waiting) << "Await() returned without having to wait";
  }
  setter.join();
}

TEST(AwaitMutexTest, AwaitWithTimeoutGivesUpAfterTheTimeout) {
  AwaitMutex mu;
  AwaitMutexLock lock(&mu);
  const absl::Time start = absl::Now();
  EXPECT_FALSE(
      mu.AwaitWithTimeout([] { return false; }, absl::Milliseconds(50)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
}

TEST(AwaitMutexTest, AwaitWithDeadlineReturnsTrueAtOnceWhenAlreadyTrue) {
  AwaitMutex mu;
  AwaitMutexLock lock(&mu);
  EXPECT_TRUE(mu.AwaitWithDeadline([] { return true; }, absl::InfinitePast()));
}

// A thread that changes the state and then waits, without unlocking in
// between, must still wake the threads waiting for that change (as the
// client's callers do: queue output, then wait for its answer).
TEST(AwaitMutexTest, ChangeFollowedByAwaitWakesOtherWaiters) {
  AwaitMutex mu;
  int request = 0;
  int answer = 0;
  std::thread server([&] {
    AwaitMutexLock lock(&mu);
    mu.Await([&] { return request != 0; });
    answer = request * 2;
  });
  {
    AwaitMutexLock lock(&mu);
    request = 21;
    EXPECT_TRUE(
        mu.AwaitWithTimeout([&] { return answer != 0; }, absl::Seconds(10)));
    EXPECT_EQ(answer, 42);
  }
  server.join();
}

TEST(AwaitMutexTest, ManyWaitersOnDifferentConditionsAllWake) {
  AwaitMutex mu;
  int stage = 0;
  std::vector<std::thread> waiters;
  int woken = 0;
  for (int i = 1; i <= 8; ++i) {
    waiters.emplace_back([&, i] {
      AwaitMutexLock lock(&mu);
      mu.Await([&] { return stage >= i; });
      ++woken;
    });
  }
  for (int i = 1; i <= 8; ++i) {
    AwaitMutexLock lock(&mu);
    stage = i;
  }
  for (std::thread& t : waiters) t.join();
  EXPECT_EQ(woken, 8);
}

}  // namespace
}  // namespace manifold::client_internal
