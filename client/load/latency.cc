#include "client/load/latency.h"

#include <algorithm>
#include <cmath>

namespace manifold::load {
namespace {

// Nearest rank: the smallest sample with at least `fraction` of all samples
// at or below it. REQUIRES: `sorted` is not empty.
int64_t Percentile(const std::vector<int64_t>& sorted, double fraction) {
  const double rank = std::ceil(fraction * static_cast<double>(sorted.size()));
  const size_t index =
      rank < 1 ? 0 : std::min(sorted.size(), static_cast<size_t>(rank)) - 1;
  return sorted[index];
}

}  // namespace

LatencySummary Summarize(std::vector<int64_t>& samples_ns) {
  LatencySummary s;
  if (samples_ns.empty()) return s;
  std::sort(samples_ns.begin(), samples_ns.end());
  long double total = 0;
  for (int64_t v : samples_ns) total += static_cast<long double>(v);
  s.count = samples_ns.size();
  s.min = absl::Nanoseconds(samples_ns.front());
  s.max = absl::Nanoseconds(samples_ns.back());
  s.mean = absl::Nanoseconds(
      static_cast<int64_t>(total / static_cast<long double>(s.count)));
  s.p50 = absl::Nanoseconds(Percentile(samples_ns, 0.50));
  s.p90 = absl::Nanoseconds(Percentile(samples_ns, 0.90));
  s.p99 = absl::Nanoseconds(Percentile(samples_ns, 0.99));
  return s;
}

}  // namespace manifold::load
