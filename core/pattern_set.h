// File: core/pattern_set.h
// -----------------------------------------------------------------------------
//
// A set of topic patterns that answers "does any of them match this topic?"
// without trying them one by one: the patterns are kept in a trie keyed by
// segment, with separate edges for `*` and `**`, so asking about a literal
// topic walks only the branches that can match it. With a thousand patterns
// that share prefixes ("orders/eu/**", "orders/us/*", ...) a question costs a
// few steps per segment instead of a thousand comparisons. The questions
// about patterns (covers, intersects) go through the patterns in turn; they
// are asked once per subscription, not once per message.
//
// Matching follows core/topic.h exactly, the reserved-topic rule included: a
// "$..." topic is matched only by a pattern whose first segment is that same
// literal.
//
// Example:
//
//   PatternSet deny;
//   deny.Add("orders/*/secret");
//   deny.Add("audit/**");
//   deny.MatchesTopic("orders/eu/secret");   // true
//   deny.MatchesTopic("orders/eu/public");   // false
//   deny.CoversPattern("audit/2024/*");      // true: every such topic is in
//   deny.IntersectsPattern("orders/**");     // true: "orders/x/secret"

#ifndef MANIFOLD_CORE_PATTERN_SET_H_
#define MANIFOLD_CORE_PATTERN_SET_H_

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "core/topic.h"

namespace manifold {

class PatternSet {
 public:
  PatternSet();
  PatternSet(PatternSet&&) noexcept;
  PatternSet& operator=(PatternSet&&) noexcept;
  ~PatternSet();

  // Adds `pattern`. Adding one already present changes nothing.
  // REQUIRES: `pattern` passed ValidateTopic(TopicRole::kSubscription).
  void Add(absl::string_view pattern);

  bool empty() const { return patterns_.empty(); }
  size_t size() const { return patterns_.size(); }
  // The patterns, in the order they were first added.
  const std::vector<std::string>& patterns() const { return patterns_; }

  // True if some pattern matches the literal `topic`.
  // REQUIRES: `topic` passed ValidateTopic() and has no wildcard.
  bool MatchesTopic(absl::string_view topic) const;
  bool MatchesTopic(const Segments& topic) const;

  // True if some pattern covers `pattern`: matches every topic it matches
  // (Covers() in core/topic.h, with its one conservative corner). For a
  // literal `pattern` this is MatchesTopic().
  bool CoversPattern(absl::string_view pattern) const;

  // True if some pattern intersects `pattern` (matches a topic it matches).
  bool IntersectsPattern(absl::string_view pattern) const;

  // The patterns that intersect `pattern`, in the order they were added.
  std::vector<std::string> Intersecting(absl::string_view pattern) const;

  // True if some pattern shares a topic with both `a` and `b`
  // (IntersectAll() of the three, with its conservative corner).
  // REQUIRES: both passed ValidateTopic().
  bool IntersectsBoth(const Segments& a, const Segments& b) const;

 private:
  struct Node;
  bool Walk(const Node& node, const Segments& topic, size_t next) const;

  std::unique_ptr<Node> root_;
  std::vector<std::string> patterns_;
  // The patterns again, split once for the questions about patterns (the
  // deque keeps the strings the segments point into in place).
  std::deque<std::string> stable_;
  std::vector<Segments> split_;
};

}  // namespace manifold

#endif  // MANIFOLD_CORE_PATTERN_SET_H_
