#include "bench/soak/rss_series.h"

#include <algorithm>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace manifold::soak {

absl::StatusOr<int64_t> ReadResidentKib(pid_t pid) {
  std::ifstream file(absl::StrCat("/proc/", pid, "/status"));
  if (!file) return absl::NotFoundError(absl::StrCat("no process ", pid));
  std::string line;
  while (std::getline(file, line)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "VmRSS:")) continue;
    rest = absl::StripAsciiWhitespace(rest);
    absl::ConsumeSuffix(&rest, "kB");
    int64_t kib = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &kib)) return kib;
    break;
  }
  return absl::InternalError(
      absl::StrCat("no VmRSS line in /proc/", pid, "/status"));
}

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
