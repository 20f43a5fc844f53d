// Reconnect backoff: grows, stays within its bounds, jitters, and is
// reproducible from a seed.

#include "client/backoff.h"

#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace manifold {
namespace {

std::vector<absl::Duration> Waits(uint64_t seed, int n) {
  Backoff backoff({.initial = absl::Milliseconds(100),
                   .max = absl::Seconds(2),
                   .seed = seed});
  std::vector<absl::Duration> waits;
  for (int k = 0; k < n; ++k) waits.push_back(backoff.Next());
  return waits;
}

TEST(BackoffTest, EachWaitLiesBetweenHalfAndAllOfTheDoubledCeiling) {
  const std::vector<absl::Duration> waits = Waits(42, 12);
  absl::Duration ceiling = absl::Milliseconds(100);
  for (absl::Duration wait : waits) {
    EXPECT_GE(wait, ceiling / 2);
    EXPECT_LE(wait, ceiling);
    ceiling = std::min(ceiling * 2, absl::Seconds(2));
  }
  EXPECT_GE(waits.back(), absl::Seconds(1));  // capped, not past the max
}

TEST(BackoffTest, TheSameSeedGivesTheSameWaitsAndOthersDiffer) {
  EXPECT_EQ(Waits(7, 8), Waits(7, 8));
  EXPECT_NE(Waits(7, 8), Waits(8, 8));
}

TEST(BackoffTest, ClientsCutOffTogetherDoNotComeBackTogether) {
  std::set<absl::Duration> first_waits;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    first_waits.insert(Waits(seed, 1)[0]);
  }
  EXPECT_GT(first_waits.size(), 15u);
}

TEST(BackoffTest, ResetStartsFromTheInitialWaitAgain) {
  Backoff backoff(
      {.initial = absl::Milliseconds(100), .max = absl::Seconds(2), .seed = 3});
  for (int k = 0; k < 6; ++k) backoff.Next();
  backoff.Reset();
  EXPECT_LE(backoff.Next(), absl::Milliseconds(100));
}

TEST(BackoffTest, SeedZeroDrawsFromTheOperatingSystem) {
  Backoff backoff(
      {.initial = absl::Milliseconds(100), .max = absl::Seconds(2), .seed = 0});
  const absl::Duration wait = backoff.Next();
  EXPECT_GE(wait, absl::Milliseconds(50));
  EXPECT_LE(wait, absl::Milliseconds(100));
}

}  // namespace
}  // namespace manifold
