#include "core/pattern_set.h"

#include <algorithm>
#include <utility>

namespace manifold {

struct PatternSet::Node {
  absl::flat_hash_map<std::string, std::unique_ptr<Node>> literal;
  std::unique_ptr<Node> any_one;   // the edge for "*"
  std::unique_ptr<Node> any_many;  // the edge for "**"
  bool terminal = false;           // a pattern ends here
};

namespace {

// True when `a` and `b` start with literal segments that differ before
// either has a wildcard ("tenant/7/**" and "tenant/8/*"): then no topic
// matches both, and neither covers the other. Most rule sets are spread over
// such prefixes, so this spares most of the full comparisons.
bool LiteralPrefixesDiffer(const Segments& a, const Segments& b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (KindOf(a[i]) != SegmentKind::kLiteral ||
        KindOf(b[i]) != SegmentKind::kLiteral) {
      return false;
    }
    if (a[i] != b[i]) return true;
  }
  return false;
}

}  // namespace

PatternSet::PatternSet() : root_(std::make_unique<Node>()) {}
PatternSet::PatternSet(PatternSet&&) noexcept = default;
PatternSet& PatternSet::operator=(PatternSet&&) noexcept = default;
PatternSet::~PatternSet() = default;

void PatternSet::Add(absl::string_view pattern) {
  Node* node = root_.get();
  for (absl::string_view segment : SplitTopic(pattern)) {
    std::unique_ptr<Node>* edge = nullptr;
    switch (KindOf(segment)) {
      case SegmentKind::kAnyOne:
        edge = &node->any_one;
        break;
      case SegmentKind::kAnyMany:
        edge = &node->any_many;
        break;
      case SegmentKind::kLiteral:
        edge = &node->literal[std::string(segment)];
        break;
    }
    if (*edge == nullptr) *edge = std::make_unique<Node>();
    node = edge->get();
  }
  if (node->terminal) return;
  node->terminal = true;
  patterns_.emplace_back(pattern);
  stable_.emplace_back(pattern);
  split_.push_back(SplitTopic(stable_.back()));
}

bool PatternSet::MatchesTopic(absl::string_view topic) const {
  return MatchesTopic(SplitTopic(topic));
}

bool PatternSet::MatchesTopic(const Segments& topic) const {
  if (patterns_.empty() || topic.empty()) return false;
  if (IsReserved(topic.front())) {
    // Only a literal first segment reaches a '$' topic.
    auto it = root_->literal.find(topic.front());
    return it != root_->literal.end() && Walk(*it->second, topic, 1);
  }
  return Walk(*root_, topic, 0);
}

bool PatternSet::Walk(const Node& node, const Segments& topic,
                      size_t next) const {
  if (node.any_many != nullptr) {
    // "**" takes zero or more of the remaining segments.
    for (size_t k = next; k <= topic.size(); ++k) {
      if (Walk(*node.any_many, topic, k)) return true;
    }
  }
  if (next == topic.size()) return node.terminal;
  if (auto it = node.literal.find(topic[next]); it != node.literal.end()) {
    if (Walk(*it->second, topic, next + 1)) return true;
  }
  return node.any_one != nullptr && Walk(*node.any_one, topic, next + 1);
}

bool PatternSet::CoversPattern(absl::string_view pattern) const {
  const Segments inner = SplitTopic(pattern);
  bool wildcard = false;
  for (absl::string_view s : inner) {
    wildcard = wildcard || KindOf(s) != SegmentKind::kLiteral;
  }
  if (!wildcard) return MatchesTopic(inner);
  for (const Segments& p : split_) {
    if (!LiteralPrefixesDiffer(p, inner) && Covers(p, inner)) return true;
  }
  return false;
}

bool PatternSet::IntersectsPattern(absl::string_view pattern) const {
  const Segments other = SplitTopic(pattern);
  bool wildcard = false;
  for (absl::string_view s : other) {
    wildcard = wildcard || KindOf(s) != SegmentKind::kLiteral;
  }
  if (!wildcard) return MatchesTopic(other);
  for (const Segments& p : split_) {
    if (!LiteralPrefixesDiffer(p, other) && Intersects(p, other)) return true;
  }
  return false;
}

std::vector<std::string> PatternSet::Intersecting(
    absl::string_view pattern) const {
  const Segments other = SplitTopic(pattern);
  std::vector<std::string> out;
  for (size_t i = 0; i < split_.size(); ++i) {
    if (!LiteralPrefixesDiffer(split_[i], other) &&
        Intersects(split_[i], other)) {
      out.push_back(patterns_[i]);
    }
  }
  return out;
}

bool PatternSet::IntersectsBoth(const Segments& a, const Segments& b) const {
  for (const Segments& p : split_) {
    const Segments* all[] = {&a, &b, &p};
    if (IntersectAll(all)) return true;
  }
  return false;
}

}  // namespace manifold
