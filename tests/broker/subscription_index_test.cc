#include "broker/internal/subscription_index.h"

#include <algorithm>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "core/topic.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold::internal {
namespace {

// The ids of every subscription on the returned nodes.
std::set<uint64_t> Ids(absl::Span<SubscriptionNode* const> nodes) {
  std::set<uint64_t> ids;
  for (SubscriptionNode* node : nodes) {
    for (Subscription* s : node->subscribers()) ids.insert(s->id.value());
    for (auto& g : node->groups()) {
      for (Subscription* s : g->members) ids.insert(s->id.value());
    }
  }
  return ids;
}

std::string RandomPattern(std::mt19937& rng, bool wildcards) {
  static const char* kTokens[] = {"a", "b", "$s", "*", "**"};
  const int depth = 1 + rng() % 4;
  std::string p;
  for (int i = 0; i < depth; ++i) {
    if (i) p += "/";
    p += kTokens[rng() % (wildcards ? 5 : 3)];
  }
  return p;
}

TEST(SubscriptionIndexTest, MatchAgreesWithMatchesAndIntersectsOverRandomSets) {
  const uint32_t seed = 99;
  std::mt19937 rng(seed);
  for (int round = 0; round < 30; ++round) {
    SubscriptionIndex index;
    std::map<uint64_t, std::string> patterns;
    for (uint64_t id = 1; id <= 40; ++id) {
      const std::string p = RandomPattern(rng, true);
      index.Add(SubscriptionId(id), nullptr, p, rng() % 4 == 0 ? "g" : "");
      patterns[id] = p;
    }
    // Remove a few to exercise pruning.
    for (uint64_t id = 1; id <= 40; id += 7) {
      index.Remove(*index.Find(SubscriptionId(id)));
      patterns.erase(id);
    }
    for (int q = 0; q < 50; ++q) {
      const bool wildcard = q % 2 == 1;
      const std::string topic = RandomPattern(rng, wildcard);
      std::set<uint64_t> expected;
      for (auto& [id, p] : patterns) {
        if (wildcard ? Intersects(p, topic) : Matches(p, topic)) {
          expected.insert(id);
        }
      }
      const std::set<uint64_t> got = Ids(
          HasWildcard(topic) ? index.MatchPattern(topic) : index.Match(topic));
      ASSERT_EQ(got, expected)
          << "seed " << seed << " round " << round << " topic " << topic;
      if (!HasWildcard(topic)) {
        // A topic is cached from its second sighting on, with the same
        // answer.
        ASSERT_EQ(Ids(index.Match(topic)), expected);
        EXPECT_TRUE(index.IsCached(topic));
        ASSERT_EQ(Ids(index.Match(topic)), expected);
      }
    }
  }
}

TEST(SubscriptionIndexTest, EachNodeIsReturnedOnceEvenWithRepeatedDoubleStars) {
  SubscriptionIndex index;
  index.Add(SubscriptionId(1), nullptr, "a/**/**/**", "");
  index.Add(SubscriptionId(2), nullptr, "**/**", "");
  auto nodes = index.Match("a/b/c/d/e/f");
  std::set<SubscriptionNode*> unique(nodes.begin(), nodes.end());
  EXPECT_EQ(unique.size(), nodes.size());
  EXPECT_EQ(Ids(nodes), (std::set<uint64_t>{1, 2}));
}

TEST(SubscriptionIndexTest, QueueGroupsShareANodeByName) {
  SubscriptionIndex index;
  index.Add(SubscriptionId(1), nullptr, "jobs", "g");
  index.Add(SubscriptionId(2), nullptr, "jobs", "g");
  index.Add(SubscriptionId(3), nullptr, "jobs", "h");
  index.Add(SubscriptionId(4), nullptr, "jobs", "");
  auto nodes = index.Match("jobs");
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0]->subscribers().size(), 1u);
  ASSERT_EQ(nodes[0]->groups().size(), 2u);
  EXPECT_EQ(nodes[0]->groups()[0]->members.size(), 2u);
}

TEST(SubscriptionIndexTest, RemovingEverythingPrunesTheTrie) {
  SubscriptionIndex index;
  for (uint64_t id = 1; id <= 100; ++id) {
    index.Add(SubscriptionId(id), nullptr, absl::StrCat("x/", id, "/**"), "");
  }
  for (uint64_t id = 1; id <= 100; ++id)
    index.Remove(*index.Find(SubscriptionId(id)));
  EXPECT_EQ(index.size(), 0u);
  EXPECT_TRUE(index.Match("x/5/y").empty());
  EXPECT_TRUE(index.MatchPattern("**").empty());
}

TEST(SubscriptionIndexTest, ManySubscribersOnOneNodeRemoveInConstantTime) {
  SubscriptionIndex index;
  const uint64_t n = 100000;
  for (uint64_t id = 1; id <= n; ++id)
    index.Add(SubscriptionId(id), nullptr, "hot", "");
  for (uint64_t id = 1; id <= n; id += 2)
    index.Remove(*index.Find(SubscriptionId(id)));
  auto nodes = index.Match("hot");
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0]->subscribers().size(), n / 2);
}

TEST(SubscriptionIndexTest,
     TopicsSeenOnceDoNotPushRepeatedTopicsOutOfTheCache) {
  SubscriptionIndex index;
  index.Add(SubscriptionId(1), nullptr, "_inbox/**", "");
  index.Add(SubscriptionId(2), nullptr, "orders/*", "");
  index.Match("orders/new");
  EXPECT_FALSE(index.IsCached("orders/new"));
  index.Match("orders/new");
  EXPECT_TRUE(index.IsCached("orders/new"));
  // A fresh reply topic per request, more of them than the cache holds.
  for (size_t i = 0; i < 2 * SubscriptionIndex::kMaxCachedTopics; ++i) {
    EXPECT_EQ(Ids(index.Match(absl::StrCat("_inbox/", i))),
              (std::set<uint64_t>{1}));
  }
  EXPECT_TRUE(index.IsCached("orders/new"));
  EXPECT_EQ(Ids(index.Match("orders/new")), (std::set<uint64_t>{2}));
}

TEST(SubscriptionIndexTest, ReservedTopicsOnlyMatchTheirLiteralPrefix) {
  SubscriptionIndex index;
  index.Add(SubscriptionId(1), nullptr, "**", "");
  index.Add(SubscriptionId(2), nullptr, "$sys/**", "");
  index.Add(SubscriptionId(3), nullptr, "*/stats", "");
  EXPECT_EQ(Ids(index.Match("$sys/stats")), (std::set<uint64_t>{2}));
  EXPECT_EQ(Ids(index.MatchPattern("*/stats")), (std::set<uint64_t>{1, 3}));
}

}  // namespace
}  // namespace manifold::internal
