// Fuzzes topic validation and matching: any string validates to OK or an
// error with a protocol code; valid topics and patterns never crash Matches
// or Intersects, and the two agree where they must.

#include <cstdint>
#include <string>

#include "core/status.h"
#include "core/topic.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  // Two strings separated by the first newline: a pattern and a topic.
  const size_t cut = input.find('\n');
  const absl::string_view a = input.substr(0, cut);
  const absl::string_view b = cut == absl::string_view::npos
                                  ? absl::string_view()
                                  : input.substr(cut + 1);
  const manifold::TopicLimits limits{.max_length = 256, .max_depth = 16};
  for (manifold::TopicRole role :
       {manifold::TopicRole::kSubscription, manifold::TopicRole::kPublish,
        manifold::TopicRole::kLiteral}) {
    absl::Status s = manifold::ValidateTopic(a, role, limits);
    if (!s.ok() && manifold::WireCode(s) != manifold::wire::INVALID_TOPIC &&
        manifold::WireCode(s) != manifold::wire::INVALID_PATTERN) {
      __builtin_trap();
    }
    if (s.message().size() > 400) __builtin_trap();  // errors stay short
  }
  const bool a_ok =
      manifold::ValidateTopic(a, manifold::TopicRole::kSubscription, limits)
          .ok();
  const bool b_ok =
      manifold::ValidateTopic(b, manifold::TopicRole::kSubscription, limits)
          .ok();
  if (!a_ok || !b_ok) return 0;
  const bool ab = manifold::Intersects(a, b);
  if (ab != manifold::Intersects(b, a)) __builtin_trap();  // symmetric
  if (!manifold::HasWildcard(b) && manifold::Matches(a, b) != ab) {
    __builtin_trap();  // for a literal, intersecting is matching
  }
  if (!manifold::HasWildcard(a) && !manifold::HasWildcard(b) &&
      ab != (a == b)) {
    __builtin_trap();  // two literals intersect only when equal
  }
  return 0;
}
