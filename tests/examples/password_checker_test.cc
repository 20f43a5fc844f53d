// manifoldd's password worker: checks run on its thread, each finished one
// wakes the caller, results come back with their tags, and the number
// outstanding is bounded.
#include "examples/tcp_broker/password_checker.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "broker/auth/password_hash.h"
#include "gtest/gtest.h"

namespace manifold {
namespace {

std::string Hash(const std::string& password) {
  absl::StatusOr<std::string> hash =
      HashPassword(password, std::string(kPasswordSaltBytes, 's'));
  EXPECT_TRUE(hash.ok()) << hash.status();
  return hash.value_or("");
}

PasswordCheck CheckOf(const std::string& secret, const std::string& hash) {
  PasswordCheck check;
  check.secret = secret;
  check.candidates.push_back({"user", hash});
  return check;
}

// Counts wake-ups and lets a test wait for a number of them.
class Wakes {
 public:
  void Wake() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++count_;
    changed_.notify_all();
  }
  bool WaitFor(int n) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(30),
                             [&] { return count_ >= n; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int count_ = 0;
};

TEST(PasswordCheckerTest, ChecksRunOnTheWorkerAndComeBackWithTheirTags) {
  const std::string hash = Hash("right");
  Wakes wakes;
  PasswordChecker checker(8, [&] { wakes.Wake(); });
  ASSERT_TRUE(checker.Submit(1, CheckOf("right", hash)));
  ASSERT_TRUE(checker.Submit(2, CheckOf("wrong", hash)));
  ASSERT_TRUE(wakes.WaitFor(2));
  std::vector<PasswordChecker::Finished> done = checker.TakeFinished();
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].tag, 1u);
  EXPECT_TRUE(done[0].check.ran);
  EXPECT_EQ(done[0].check.matched, 0u);
  EXPECT_EQ(done[1].tag, 2u);
  EXPECT_TRUE(done[1].check.ran);
  EXPECT_FALSE(done[1].check.matched.has_value());
  EXPECT_EQ(checker.outstanding(), 0u);
  EXPECT_TRUE(checker.TakeFinished().empty());
}

TEST(PasswordCheckerTest, NoMoreThanMaxWaitingAreOutstanding) {
  const std::string hash = Hash("right");
  Wakes wakes;
  PasswordChecker checker(3, [&] { wakes.Wake(); });
  for (uint64_t tag = 1; tag <= 3; ++tag) {
    ASSERT_TRUE(checker.Submit(tag, CheckOf("right", hash)));
  }
  // Finished but not taken back still counts.
  EXPECT_FALSE(checker.Submit(4, CheckOf("right", hash)));
  ASSERT_TRUE(wakes.WaitFor(3));
  EXPECT_FALSE(checker.Submit(5, CheckOf("right", hash)));
  EXPECT_EQ(checker.TakeFinished().size(), 3u);
  EXPECT_TRUE(checker.Submit(6, CheckOf("right", hash)));
}

TEST(PasswordCheckerTest, DestroyingItWithChecksQueuedDoesNotWaitForThemAll) {
  const std::string hash = Hash("right");
  std::atomic<int> wakes{0};
  const auto start = std::chrono::steady_clock::now();
  {
    PasswordChecker checker(64, [&] { ++wakes; });
    for (uint64_t tag = 0; tag < 64; ++tag) {
      ASSERT_TRUE(checker.Submit(tag, CheckOf("wrong", hash)));
    }
  }
  // At most the check that was running finished; the rest were dropped.
  EXPECT_LE(wakes.load(), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace manifold
