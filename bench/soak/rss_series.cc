#include "bench/soak/rss_series.h"

#include <algorithm>

namespace manifold::soak {

RssSeries::Summary RssSeries::Summarize(absl::Duration from) const {
  Summary s;
  auto begin = std::find_if(samples_.begin(), samples_.end(),
                            [&](const Sample& x) { return x.at >= from; });
  if (begin == samples_.end()) begin = samples_.begin();
  if (begin == samples_.end()) return s;
  s.samples = static_cast<size_t>(samples_.end() - begin);
  s.first_kib = begin->kib;
  s.last_kib = samples_.back().kib;
  s.min_kib = s.max_kib = begin->kib;
  s.from = begin->at;
  s.to = samples_.back().at;
  double sum_t = 0, sum_y = 0;
  for (auto it = begin; it != samples_.end(); ++it) {
    s.min_kib = std::min(s.min_kib, it->kib);
    s.max_kib = std::max(s.max_kib, it->kib);
    sum_t += absl::ToDoubleMinutes(it->at);
    sum_y += static_cast<double>(it->kib);
  }
  const double n = static_cast<double>(s.samples);
  const double mean_t = sum_t / n, mean_y = sum_y / n;
  double covariance = 0, variance = 0;
  for (auto it = begin; it != samples_.end(); ++it) {
    const double dt = absl::ToDoubleMinutes(it->at) - mean_t;
    covariance += dt * (static_cast<double>(it->kib) - mean_y);
    variance += dt * dt;
  }
  s.slope_kib_per_minute = variance > 0 ? covariance / variance : 0;
  return s;
}

}  // namespace manifold::soak
