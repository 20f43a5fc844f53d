// File: client/backoff.h
// -----------------------------------------------------------------------------
//
// How long to wait before each attempt to reach the broker again:
// exponential backoff with jitter, so that many clients cut off at once do
// not all come back at the same instant. The n-th wait (from 0) is drawn
// uniformly from [d/2, d] with d = min(max, initial * 2^n). Randomness comes
// from a seed the caller gives (tests), or the operating system's random
// source when the seed is 0.
//
// Example:
//
//   Backoff backoff({.initial = absl::Milliseconds(100),
//                    .max = absl::Seconds(5)});
//   while (!Dial().ok()) absl::SleepFor(backoff.Next());
//   backoff.Reset();   // connected: the next loss starts small again

#ifndef MANIFOLD_CLIENT_BACKOFF_H_
#define MANIFOLD_CLIENT_BACKOFF_H_

#include <cstdint>
#include <random>

#include "absl/time/time.h"

namespace manifold {

class Backoff {
 public:
  struct Options {
    absl::Duration initial = absl::Milliseconds(100);
    absl::Duration max = absl::Seconds(5);
    // 0: seeded from std::random_device.
    uint64_t seed = 0;
  };

  // REQUIRES: 0 < options.initial <= options.max.
  explicit Backoff(Options options);

  // Returns the wait before the next attempt, in [d/2, d] (see above).
  absl::Duration Next();
  // The link is up again: the next wait starts from `initial`.
  void Reset() { attempt_ = 0; }

 private:
  const Options options_;
  std::mt19937_64 random_;
  int attempt_ = 0;
};

}  // namespace manifold

#endif  // MANIFOLD_CLIENT_BACKOFF_H_
