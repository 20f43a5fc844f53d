// File: bench/soak/rss_series.h
// -----------------------------------------------------------------------------
//
// The broker's memory over a soak run: resident set size samples (from
// transports/process/resident_memory.h), and the figures that say whether it
// stayed flat (first and last sample, lowest and highest, and the
// least-squares trend).
//
// Example:
//
//   RssSeries series;
//   series.Add(elapsed, *ReadResidentKib(broker_pid));   // every second
//   RssSeries::Summary s = series.Summarize(/*from=*/absl::Minutes(1));
//   // s.last - s.first, s.max, s.slope_kib_per_minute

#ifndef MANIFOLD_BENCH_SOAK_RSS_SERIES_H_
#define MANIFOLD_BENCH_SOAK_RSS_SERIES_H_

#include <cstdint>
#include <vector>

#include "absl/time/time.h"

namespace manifold::soak {

class RssSeries {
 public:
  struct Sample {
    absl::Duration at;  // since the run started
    int64_t kib = 0;
  };

  struct Summary {
    size_t samples = 0;
    int64_t first_kib = 0;
    int64_t last_kib = 0;
    int64_t min_kib = 0;
    int64_t max_kib = 0;
    // Least-squares slope over the summarized samples.
    double slope_kib_per_minute = 0;
    absl::Duration from;
    absl::Duration to;
  };

  // Samples must come in time order.
  void Add(absl::Duration at, int64_t kib) { samples_.push_back({at, kib}); }

  // Figures over the samples taken at `from` or later (all of them if none
  // is that late).
  Summary Summarize(absl::Duration from) const;

  const std::vector<Sample>& samples() const { return samples_; }

 private:
  std::vector<Sample> samples_;
};

}  // namespace manifold::soak

#endif  // MANIFOLD_BENCH_SOAK_RSS_SERIES_H_
