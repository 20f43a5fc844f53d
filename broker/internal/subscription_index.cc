#include "broker/internal/subscription_index.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "core/topic.h"

namespace manifold::internal {

SubscriptionIndex::SubscriptionIndex()
    : root_(std::make_unique<SubscriptionNode>()) {}

SubscriptionIndex::~SubscriptionIndex() = default;

SubscriptionNode* SubscriptionIndex::NewNode(SubscriptionNode* parent,
                                             absl::string_view segment) {
  auto node = std::make_unique<SubscriptionNode>();
  node->sequence_ = ++next_sequence_;
  node->parent_ = parent;
  node->segment_ = std::string(segment);
  SubscriptionNode* raw = node.get();
  switch (KindOf(segment)) {
    case SegmentKind::kAnyOne:
      parent->any_one_ = std::move(node);
      break;
    case SegmentKind::kAnyMany:
      raw->is_any_many_ = true;
      parent->any_many_ = std::move(node);
      break;
    case SegmentKind::kLiteral:
      parent->literal_.emplace(std::string(segment), std::move(node));
      break;
  }
  return raw;
}

Subscription& SubscriptionIndex::Add(SubscriptionId id,
                                     ConnectionCore* connection,
                                     absl::string_view pattern,
                                     absl::string_view queue_group) {
  Invalidate();
  SubscriptionNode* node = root_.get();
  for (absl::string_view segment : SplitTopic(pattern)) {
    SubscriptionNode* child = nullptr;
    switch (KindOf(segment)) {
      case SegmentKind::kAnyOne:
        child = node->any_one_.get();
        break;
      case SegmentKind::kAnyMany:
        child = node->any_many_.get();
        break;
      case SegmentKind::kLiteral: {
        auto it = node->literal_.find(segment);
        if (it != node->literal_.end()) child = it->second.get();
        break;
      }
    }
    node = child != nullptr ? child : NewNode(node, segment);
  }

  auto owned = std::make_unique<Subscription>();
  Subscription& sub = *owned;
  sub.id = id;
  sub.connection = connection;
  sub.pattern = std::string(pattern);
  sub.queue_group = std::string(queue_group);
  sub.node_ = node;
  if (queue_group.empty()) {
    sub.position_ = node->subscribers_.size();
    node->subscribers_.push_back(&sub);
  } else {
    QueueGroup* group = nullptr;
    for (auto& g : node->groups_) {
      if (g->name == queue_group) group = g.get();
    }
    if (group == nullptr) {
      node->groups_.push_back(std::make_unique<QueueGroup>());
      group = node->groups_.back().get();
      group->name = std::string(queue_group);
    }
    sub.group_ = group;
    sub.position_ = group->members.size();
    group->members.push_back(&sub);
  }
  by_id_.emplace(id, std::move(owned));
  return sub;
}

void SubscriptionIndex::Remove(Subscription& sub) {
  Invalidate();
  SubscriptionNode* node = sub.node_;
  // Swap-remove keeps removal O(1) even with 100k subscribers on one node.
  auto swap_remove = [](std::vector<Subscription*>& list, size_t position) {
    Subscription* last = list.back();
    list[position] = last;
    last->position_ = position;
    list.pop_back();
  };
  if (sub.group_ == nullptr) {
    swap_remove(node->subscribers_, sub.position_);
  } else {
    QueueGroup* group = sub.group_;
    swap_remove(group->members, sub.position_);
    if (group->members.empty()) {
      auto& groups = node->groups_;
      groups.erase(std::find_if(groups.begin(), groups.end(),
                                [&](auto& g) { return g.get() == group; }));
    } else if (group->next >= group->members.size()) {
      group->next = 0;
    }
  }
  by_id_.erase(sub.id);  // destroys `sub`
  PruneFrom(node);
}

void SubscriptionIndex::PruneFrom(SubscriptionNode* node) {
  while (node != root_.get() && node->empty() && node->literal_.empty() &&
         node->any_one_ == nullptr && node->any_many_ == nullptr) {
    SubscriptionNode* parent = node->parent_;
    switch (KindOf(node->segment_)) {
      case SegmentKind::kAnyOne:
        parent->any_one_.reset();
        break;
      case SegmentKind::kAnyMany:
        parent->any_many_.reset();
        break;
      case SegmentKind::kLiteral:
        parent->literal_.erase(node->segment_);
        break;
    }
    node = parent;
  }
}

Subscription* SubscriptionIndex::Find(SubscriptionId id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second.get();
}

absl::Span<SubscriptionNode* const> SubscriptionIndex::Match(
    absl::string_view topic) {
  if (auto it = cache_.find(topic); it != cache_.end()) return it->second;
  // First sighting: walk without caching, and remember the topic's hash.
  // (The hash only decides what is cached, never what matches.)
  const uint64_t hash = absl::Hash<absl::string_view>{}(topic);
  if (first_sightings_ == nullptr) {
    first_sightings_ = std::make_unique<uint64_t[]>(kFirstSightings);
  }
  uint64_t& sighting = first_sightings_[hash % kFirstSightings];
  if (sighting != hash) {
    sighting = hash;
    return MatchUncached(topic);
  }
  sighting = 0;
  std::vector<SubscriptionNode*> result;
  Walk(topic, result);
  if (cache_.size() >= kMaxCachedTopics) Invalidate();
  return cache_.emplace(std::string(topic), std::move(result)).first->second;
}

absl::Span<SubscriptionNode* const> SubscriptionIndex::MatchUncached(
    absl::string_view topic) {
  scratch_.clear();
  Walk(topic, scratch_);
  return scratch_;
}

void SubscriptionIndex::Walk(absl::string_view topic,
                             std::vector<SubscriptionNode*>& result) {
  const Segments segments = SplitTopic(topic);
  const uint32_t end = static_cast<uint32_t>(segments.size());
  const bool reserved = IsReserved(topic);
  // Depth-first over (node, next segment). `**` nodes loop on themselves, so
  // the same state can be reached twice; `seen` keeps each visited once.
  std::vector<WalkState>& stack = walk_stack_;
  absl::flat_hash_set<WalkState>& seen = walk_seen_;
  stack.clear();
  seen.clear();
  stack.push_back({root_.get(), 0});
  while (!stack.empty()) {
    const WalkState state = stack.back();
    stack.pop_back();
    SubscriptionNode* node = state.node;
    if (node->is_any_many_ || (node->any_many_ != nullptr)) {
      if (!seen.insert(state).second) continue;
    }
    // Pushed in reverse of the order they are explored: literal, *, **.
    if (node->any_many_ != nullptr && !(state.next == 0 && reserved)) {
      stack.push_back({node->any_many_.get(), state.next});
    }
    if (state.next == end) {
      if (!node->empty()) result.push_back(node);
      continue;
    }
    if (node->is_any_many_) stack.push_back({node, state.next + 1});
    const bool guard_reserved = state.next == 0 && reserved;
    if (node->any_one_ != nullptr && !guard_reserved) {
      stack.push_back({node->any_one_.get(), state.next + 1});
    }
    if (auto it = node->literal_.find(segments[state.next]);
        it != node->literal_.end()) {
      stack.push_back({it->second.get(), state.next + 1});
    }
  }
  // A node can be accepted through more than one path (e.g. "a/**/**").
  if (result.size() > 1) {
    absl::flat_hash_set<SubscriptionNode*> unique;
    result.erase(std::remove_if(result.begin(), result.end(),
                                [&](SubscriptionNode* n) {
                                  return !unique.insert(n).second;
                                }),
                 result.end());
  }
}

absl::Span<SubscriptionNode* const> SubscriptionIndex::MatchPattern(
    absl::string_view pattern) {
  const Segments p = SplitTopic(pattern);
  const uint32_t end = static_cast<uint32_t>(p.size());
  scratch_.clear();
  std::vector<WalkState> stack = {{root_.get(), 0}};
  absl::flat_hash_set<WalkState> seen;
  absl::flat_hash_set<SubscriptionNode*> accepted;
  // Reserved topics are reachable only through their literal first segment:
  // a subscription starting with a '$' literal is reached only by a publish
  // whose first segment is that same literal, never by a wildcard or by a
  // later segment (after a publish `**` matched nothing).
  SubscriptionNode* const root = root_.get();
  auto may_follow_literal = [&](SubscriptionNode* node,
                                absl::string_view segment) {
    return node != root || !IsReserved(segment);
  };
  // And a reserved publish topic is never reached by a leading wildcard.
  const bool reserved_publish =
      KindOf(p.front()) == SegmentKind::kLiteral && IsReserved(p.front());
  auto may_follow_wildcard = [&](uint32_t next) {
    return !(next == 0 && reserved_publish);
  };
  auto push = [&](SubscriptionNode* node, uint32_t next) {
    if (seen.insert({node, next}).second) stack.push_back({node, next});
  };
  seen.insert({root, 0});
  while (!stack.empty()) {
    const auto [node, next] = stack.back();
    stack.pop_back();
    // A subscription `**` edge may match nothing.
    if (node->any_many_ != nullptr && may_follow_wildcard(next)) {
      push(node->any_many_.get(), next);
    }
    if (next == end) {
      if (!node->empty() && accepted.insert(node).second) {
        scratch_.push_back(node);
      }
      continue;
    }
    // A subscription `**` node may absorb the next publish segment, whatever
    // it is (a `*` or `**` of the publish included).
    if (node->is_any_many_) push(node, next + 1);
    const SegmentKind kind = KindOf(p[next]);
    if (kind == SegmentKind::kAnyMany) {
      // The publish's `**` may match nothing...
      push(node, next + 1);
      // ...or absorb one more subscription segment and stay.
      if (node->any_one_ != nullptr) push(node->any_one_.get(), next);
      for (auto& [segment, child] : node->literal_) {
        if (may_follow_literal(node, segment)) push(child.get(), next);
      }
      continue;
    }
    if (node->any_one_ != nullptr && may_follow_wildcard(next)) {
      push(node->any_one_.get(), next + 1);
    }
    if (kind == SegmentKind::kAnyOne) {
      for (auto& [segment, child] : node->literal_) {
        if (may_follow_literal(node, segment)) push(child.get(), next + 1);
      }
    } else if (auto it = node->literal_.find(p[next]);
               it != node->literal_.end() &&
               (next == 0 || may_follow_literal(node, p[next]))) {
      push(it->second.get(), next + 1);
    }
  }
  std::sort(scratch_.begin(), scratch_.end(),
            [](const SubscriptionNode* a, const SubscriptionNode* b) {
              return a->sequence_ < b->sequence_;
            });
  return scratch_;
}

}  // namespace manifold::internal
