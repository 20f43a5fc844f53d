#include "client/backoff.h"

#include <algorithm>

namespace manifold {
namespace {

uint64_t SeedFrom(uint64_t seed) {
  if (seed != 0) return seed;
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

}  // namespace

Backoff::Backoff(Options options)
    : options_(options), random_(SeedFrom(options.seed)) {}

absl::Duration Backoff::Next() {
  // initial * 2^attempt, without overflowing: stop doubling at the cap.
  absl::Duration ceiling = options_.initial;
  for (int k = 0; k < attempt_ && ceiling < options_.max; ++k) ceiling *= 2;
  ceiling = std::min(ceiling, options_.max);
  ++attempt_;
  const int64_t high = absl::ToInt64Microseconds(ceiling);
  std::uniform_int_distribution<int64_t> pick(high / 2, high);
  return absl::Microseconds(pick(random_));
}

}  // namespace manifold
