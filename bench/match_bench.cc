// Subscription matching benchmarks: how long it takes to find the recipients
// of one topic among 10, 1k or 100k subscriptions, with literal and wildcard
// patterns, from the cache and without it.
//
//   bazel run -c opt //bench:match_bench

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "broker/internal/subscription_index.h"

namespace manifold {
namespace {

using ::manifold::internal::SubscriptionIndex;

// `count` subscriptions like "tenant/<i>/device/<i % 100>/status": literal
// patterns spread over a wide trie, as many clients watching their own topics.
void AddLiteral(SubscriptionIndex& index, int count) {
  for (int i = 0; i < count; ++i) {
    index.Add(SubscriptionId(i + 1), nullptr,
              absl::StrCat("tenant/", i, "/device/", i % 100, "/status"), "");
  }
}

// Mostly wildcard patterns: "tenant/<i>/*/*/status", "tenant/<i>/**", plus a
// few global ones ("**/status", "tenant/*/device/*/status").
void AddWildcard(SubscriptionIndex& index, int count) {
  for (int i = 0; i < count; ++i) {
    const std::string pattern =
        i % 2 == 0 ? absl::StrCat("tenant/", i / 2, "/*/*/status")
                   : absl::StrCat("tenant/", i / 2, "/**");
    index.Add(SubscriptionId(i + 1), nullptr, pattern, "");
  }
  index.Add(SubscriptionId(count + 1), nullptr, "**/status", "");
  index.Add(SubscriptionId(count + 2), nullptr, "tenant/*/device/*/status", "");
}

template <bool kWildcard, bool kCached>
void BM_Match(benchmark::State& state) {
  const int count = static_cast<int>(state.range(0));
  SubscriptionIndex index;
  if (kWildcard) {
    AddWildcard(index, count);
  } else {
    AddLiteral(index, count);
  }
  // Topics that each hit one tenant; 64 of them rotate.
  std::vector<std::string> topics;
  for (int i = 0; i < 64; ++i) {
    const int tenant = (i * 7919) % std::max(1, kWildcard ? count / 2 : count);
    topics.push_back(
        absl::StrCat("tenant/", tenant, "/device/", tenant % 100, "/status"));
  }
  size_t matched = 0, i = 0;
  for (auto _ : state) {
    const std::string& topic = topics[i++ & 63];
    auto nodes = kCached ? index.Match(topic) : index.MatchUncached(topic);
    matched += nodes.size();
    benchmark::DoNotOptimize(nodes.data());
  }
  state.counters["matched/topic"] =
      static_cast<double>(matched) / state.iterations();
}
BENCHMARK_TEMPLATE(BM_Match, false, true)
    ->Name("BM_MatchLiteral/cached")
    ->Arg(10)
    ->Arg(1000)
    ->Arg(100000);
BENCHMARK_TEMPLATE(BM_Match, false, false)
    ->Name("BM_MatchLiteral/uncached")
    ->Arg(10)
    ->Arg(1000)
    ->Arg(100000);
BENCHMARK_TEMPLATE(BM_Match, true, true)
    ->Name("BM_MatchWildcard/cached")
    ->Arg(10)
    ->Arg(1000)
    ->Arg(100000);
BENCHMARK_TEMPLATE(BM_Match, true, false)
    ->Name("BM_MatchWildcard/uncached")
    ->Arg(10)
    ->Arg(1000)
    ->Arg(100000);

// A publish to a pattern ("tenant/*/device/7/status") walks the trie against
// it; never cached.
void BM_MatchPublishPattern(benchmark::State& state) {
  const int count = static_cast<int>(state.range(0));
  SubscriptionIndex index;
  AddLiteral(index, count);
  size_t matched = 0;
  for (auto _ : state) {
    auto nodes = index.MatchPattern("tenant/*/device/7/status");
    matched += nodes.size();
    benchmark::DoNotOptimize(nodes.data());
  }
  state.counters["matched/topic"] =
      static_cast<double>(matched) / state.iterations();
}
BENCHMARK(BM_MatchPublishPattern)->Arg(10)->Arg(1000)->Arg(100000);

}  // namespace
}  // namespace manifold
