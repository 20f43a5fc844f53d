// Latency percentiles by nearest rank.

#include "client/load/latency.h"

#include <vector>

#include "gtest/gtest.h"

namespace manifold::load {
namespace {

TEST(SummarizeTest, PercentilesAreNearestRank) {
  std::vector<int64_t> samples;
  for (int64_t i = 100; i >= 1; --i) samples.push_back(i * 1000);  // 1..100us
  const LatencySummary s = Summarize(samples);
  EXPECT_EQ(s.count, 100u);
  EXPECT_EQ(s.min, absl::Microseconds(1));
  EXPECT_EQ(s.p50, absl::Microseconds(50));
  EXPECT_EQ(s.p90, absl::Microseconds(90));
  EXPECT_EQ(s.p99, absl::Microseconds(99));
  EXPECT_EQ(s.max, absl::Microseconds(100));
  EXPECT_EQ(s.mean, absl::Nanoseconds(50500));
}

TEST(SummarizeTest, OneSampleIsEveryPercentile) {
  std::vector<int64_t> samples = {42};
  const LatencySummary s = Summarize(samples);
  EXPECT_EQ(s.p50, absl::Nanoseconds(42));
  EXPECT_EQ(s.p99, absl::Nanoseconds(42));
}

TEST(SummarizeTest, NoSamplesGiveZeros) {
  std::vector<int64_t> samples;
  const LatencySummary s = Summarize(samples);
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.p50, absl::ZeroDuration());
}

}  // namespace
}  // namespace manifold::load
