// File: broker/internal/subscription_index.h
// -----------------------------------------------------------------------------
//
// Finds the subscriptions a published message must reach.
//
// Subscriptions live in a trie keyed by pattern segments, with separate edges
// for `*` and `**`. Routing a literal topic walks only the branches that can
// match it (never every subscription), and the result for each literal topic
// is cached until the set of subscriptions changes. A publish to a pattern
// ("*/alice") walks the trie against the pattern, finding every subscription
// whose pattern intersects it (see core/topic.h).
//
// The result is a list of trie nodes; each holds the broadcast subscriptions
// for its pattern and the queue groups formed on it. A queue group is the set
// of subscriptions with the same pattern and the same group name (as in NATS).
//
// Order is deterministic: for a literal topic the walk visits branches in a
// fixed order; for a pattern, nodes are sorted by creation order. Hash-map
// iteration order never leaks into routing.
//
// Example:
//
//   SubscriptionIndex index;
//   Subscription& s = index.Add(SubscriptionId(1), conn, "room/*", "");
//   for (SubscriptionNode* node : index.Match("room/a")) {
//     for (Subscription* sub : node->subscribers()) Deliver(*sub);
//     for (QueueGroup& group : node->groups()) Deliver(*group.members[...]);
//   }
//   index.Remove(s);

#ifndef MANIFOLD_BROKER_INTERNAL_SUBSCRIPTION_INDEX_H_
#define MANIFOLD_BROKER_INTERNAL_SUBSCRIPTION_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "broker/permissions.h"
#include "core/ids.h"

namespace manifold::internal {

class ConnectionCore;
class SubscriptionNode;
struct QueueGroup;

// One subscription. Owned by the SubscriptionIndex.
struct Subscription {
  // The fields routing touches come first.
  // The subscribing connection; the index never dereferences it.
  ConnectionCore* connection = nullptr;
  SubscriptionId id;
  // Messages delivered so far.
  uint64_t delivered = 0;
  // When non-zero, the subscription ends once `delivered` reaches it.
  uint64_t max_messages = 0;
  // Set when the subscriber's permissions deny some of the topics this
  // subscription matches: only what it allows is delivered
  // (PermissionSet::FilterFor in broker/permissions.h).
  std::shared_ptr<const PermissionSet::ReceiveFilter> filter;
  // Set for a subscription that replays a stream: it gets that stream's
  // messages from the storage, in order, never by live routing
  // (broker/internal/streams.h). Like `filter`, it puts routing on the
  // checked path.
  bool stream_only = false;
  std::string pattern;
  // Empty for a broadcast subscription.
  std::string queue_group;

 private:
  friend class SubscriptionIndex;
  SubscriptionNode* node_ = nullptr;
  QueueGroup* group_ = nullptr;
  size_t position_ = 0;  // index in node_->subscribers_ or group_->members
};

// Subscriptions sharing one pattern and one group name. Each message routed
// to the group goes to exactly one member.
struct QueueGroup {
  std::string name;
  std::vector<Subscription*> members;
  // Round-robin position: the member to try first for the next message.
  size_t next = 0;
};

// A trie node: one pattern, reached by its segments.
class SubscriptionNode {
 public:
  absl::Span<Subscription* const> subscribers() const { return subscribers_; }
  std::vector<std::unique_ptr<QueueGroup>>& groups() { return groups_; }
  bool empty() const { return subscribers_.empty() && groups_.empty(); }

 private:
  friend class SubscriptionIndex;
  uint64_t sequence_ = 0;  // creation order, for deterministic sorting
  SubscriptionNode* parent_ = nullptr;
  std::string segment_;  // the edge from parent_ ("*" and "**" included)
  absl::flat_hash_map<std::string, std::unique_ptr<SubscriptionNode>> literal_;
  std::unique_ptr<SubscriptionNode> any_one_;
  std::unique_ptr<SubscriptionNode> any_many_;
  bool is_any_many_ = false;  // this node's own segment is "**"
  std::vector<Subscription*> subscribers_;
  std::vector<std::unique_ptr<QueueGroup>> groups_;
};

class SubscriptionIndex {
 public:
  SubscriptionIndex();
  SubscriptionIndex(const SubscriptionIndex&) = delete;
  SubscriptionIndex& operator=(const SubscriptionIndex&) = delete;
  ~SubscriptionIndex();

  // Adds a subscription and returns it; the index owns it.
  // REQUIRES: `pattern` passed ValidateTopic(kSubscription); `id` is new.
  Subscription& Add(SubscriptionId id, ConnectionCore* connection,
                    absl::string_view pattern, absl::string_view queue_group);

  // Removes and destroys `subscription`.
  void Remove(Subscription& subscription);

  // Returns the subscription with `id`, or nullptr.
  Subscription* Find(SubscriptionId id) const;

  // Number of subscriptions.
  size_t size() const { return by_id_.size(); }

  // Calls `f(const Subscription&)` for every subscription, in no order.
  template <typename F>
  void ForEach(F f) const {
    for (const auto& [id, sub] : by_id_) f(*sub);
  }

  // Returns the nodes whose patterns match the literal `topic` and hold at
  // least one subscription, each once. The span is valid until the next call
  // to any non-const method.
  // REQUIRES: `topic` passed ValidateTopic() and has no wildcard.
  absl::Span<SubscriptionNode* const> Match(absl::string_view topic);

  // Match() without the cache: walks the trie every time. For tests and
  // benchmarks. Same validity as Match().
  absl::Span<SubscriptionNode* const> MatchUncached(absl::string_view topic);

  // Returns the cached result of Match(topic), or nullptr if `topic` is not
  // cached. Only valid literal topics are ever cached, so a hit also says that
  // `topic` is valid. The pointer is valid until the next non-const call.
  const std::vector<SubscriptionNode*>* FindCached(
      absl::string_view topic) const {
    auto it = cache_.find(topic);
    return it == cache_.end() ? nullptr : &it->second;
  }
  bool IsCached(absl::string_view topic) const {
    return FindCached(topic) != nullptr;
  }

  // Changes whenever cached results may have been dropped. A result obtained
  // from Match() or FindCached() stays valid while the epoch is unchanged.
  // Starts at 1, so 0 never matches.
  uint64_t cache_epoch() const { return cache_epoch_; }

  // Returns the nodes whose patterns intersect `pattern` (which may hold
  // wildcards), sorted by creation order. Same validity as Match().
  absl::Span<SubscriptionNode* const> MatchPattern(absl::string_view pattern);

  // Most literal topics whose results are cached; when full the cache starts
  // over.
  static constexpr size_t kMaxCachedTopics = 8192;
  // A topic is cached the second time Match() sees it, unless a topic seen
  // once in between took its place among this many (by hash): topics used
  // once, such as the fresh reply subject of every request, would otherwise
  // fill the cache, make it start over every kMaxCachedTopics requests and
  // push out the topics that do repeat.
  static constexpr size_t kFirstSightings = 8192;

 private:
  // A state of the trie walk: at `node`, with segments [next..] still to
  // match.
  struct WalkState {
    SubscriptionNode* node;
    uint32_t next;
    bool operator==(const WalkState& o) const {
      return node == o.node && next == o.next;
    }
    template <typename H>
    friend H AbslHashValue(H h, const WalkState& s) {
      return H::combine(std::move(h), s.node, s.next);
    }
  };

  SubscriptionNode* NewNode(SubscriptionNode* parent,
                            absl::string_view segment);
  void PruneFrom(SubscriptionNode* node);
  void Invalidate() {
    cache_.clear();
    ++cache_epoch_;
  }
  // Fills `out` with the nodes matching the literal `topic`.
  void Walk(absl::string_view topic, std::vector<SubscriptionNode*>& out);

  std::unique_ptr<SubscriptionNode> root_;
  uint64_t next_sequence_ = 0;
  absl::flat_hash_map<SubscriptionId, std::unique_ptr<Subscription>> by_id_;
  absl::flat_hash_map<std::string, std::vector<SubscriptionNode*>> cache_;
  uint64_t cache_epoch_ = 1;
  std::vector<SubscriptionNode*> scratch_;
  // Hashes of topics Match() saw once and did not cache, each at its hash
  // modulo kFirstSightings (0: none): a fixed table, so that topics seen
  // only once cost no allocation or rehashing (allocated at first use).
  std::unique_ptr<uint64_t[]> first_sightings_;
  // Reused by Walk() so that a walk allocates nothing.
  std::vector<WalkState> walk_stack_;
  absl::flat_hash_set<WalkState> walk_seen_;
};

}  // namespace manifold::internal

#endif  // MANIFOLD_BROKER_INTERNAL_SUBSCRIPTION_INDEX_H_
