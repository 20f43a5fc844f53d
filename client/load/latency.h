// File: client/load/latency.h
// -----------------------------------------------------------------------------
//
// Round-trip times, kept exactly (one sample per request; the load tool's
// runs are bounded in count) and summarised as percentiles by nearest rank.
//
// Example:
//
//   std::vector<int64_t> samples = {120'000, 95'000, 410'000};  // ns
//   LatencySummary s = Summarize(samples);
//   s.p50;  // absl::Nanoseconds(120'000)

#ifndef MANIFOLD_CLIENT_LOAD_LATENCY_H_
#define MANIFOLD_CLIENT_LOAD_LATENCY_H_

#include <cstdint>
#include <vector>

#include "absl/time/time.h"

namespace manifold::load {

struct LatencySummary {
  uint64_t count = 0;
  absl::Duration min;
  absl::Duration mean;
  absl::Duration p50;
  absl::Duration p90;
  absl::Duration p99;
  absl::Duration max;
};

// Summarises `samples_ns` (sorting it in place). All zero when empty.
LatencySummary Summarize(std::vector<int64_t>& samples_ns);

}  // namespace manifold::load

#endif  // MANIFOLD_CLIENT_LOAD_LATENCY_H_
