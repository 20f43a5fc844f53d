#include "core/pattern_set.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "core/topic.h"
#include "gtest/gtest.h"

namespace manifold {
namespace {

// Every sequence of 1..max_depth segments drawn from `alphabet`, joined.
std::vector<std::string> AllTopics(const std::vector<std::string>& alphabet,
                                   size_t max_depth) {
  std::vector<std::string> out;
  std::vector<std::vector<std::string>> level = {{}};
  for (size_t depth = 1; depth <= max_depth; ++depth) {
    std::vector<std::vector<std::string>> next;
    for (const auto& prefix : level) {
      for (const std::string& s : alphabet) {
        std::vector<std::string> longer = prefix;
        longer.push_back(s);
        out.push_back(absl::StrJoin(longer, "/"));
        next.push_back(std::move(longer));
      }
    }
    level = std::move(next);
  }
  return out;
}

const std::vector<std::string>& Topics() {
  static const auto* topics =
      new std::vector<std::string>(AllTopics({"a", "b", "$s"}, 4));
  return *topics;
}

const std::vector<std::string>& Patterns() {
  static const auto* patterns =
      new std::vector<std::string>(AllTopics({"a", "$s", "*", "**"}, 3));
  return *patterns;
}

TEST(PatternSetTest, EmptySetMatchesNothing) {
  PatternSet set;
  EXPECT_TRUE(set.empty());
  EXPECT_FALSE(set.MatchesTopic("a"));
  EXPECT_FALSE(set.CoversPattern("a/*"));
  EXPECT_FALSE(set.IntersectsPattern("**"));
  EXPECT_TRUE(set.Intersecting("**").empty());
}

TEST(PatternSetTest, AddingAPatternTwiceKeepsOne) {
  PatternSet set;
  set.Add("orders/*");
  set.Add("orders/*");
  set.Add("audit/**");
  EXPECT_EQ(set.size(), 2u);
  EXPECT_EQ(set.patterns(), (std::vector<std::string>{"orders/*", "audit/**"}));
}

TEST(PatternSetTest, AnswersTheHeaderExample) {
  PatternSet deny;
  deny.Add("orders/*/secret");
  deny.Add("audit/**");
  EXPECT_TRUE(deny.MatchesTopic("orders/eu/secret"));
  EXPECT_FALSE(deny.MatchesTopic("orders/eu/public"));
  EXPECT_TRUE(deny.CoversPattern("audit/2024/*"));
  EXPECT_FALSE(deny.CoversPattern("orders/**"));
  EXPECT_TRUE(deny.IntersectsPattern("orders/**"));
  EXPECT_EQ(deny.Intersecting("orders/**"),
            std::vector<std::string>{"orders/*/secret"});
}

TEST(PatternSetTest, IntersectsBothNeedsOneTopicSharedByAllThree) {
  PatternSet deny;
  deny.Add("orders/*/audit");
  const Segments sub = SplitTopic("orders/**");
  EXPECT_TRUE(deny.IntersectsBoth(SplitTopic("orders/eu/*"), sub));
  EXPECT_FALSE(deny.IntersectsBoth(SplitTopic("orders/*/new"), sub));
  EXPECT_FALSE(deny.IntersectsBoth(SplitTopic("orders/eu/audit"),
                                   SplitTopic("invoices/**")));
}

PatternSet MovedAway() {
  PatternSet set;
  for (int i = 0; i < 100; ++i) set.Add("a/" + std::to_string(i) + "/**");
  PatternSet moved(std::move(set));
  return moved;
}

TEST(PatternSetTest, StillAnswersAfterBeingMoved) {
  PatternSet set = MovedAway();
  EXPECT_TRUE(set.CoversPattern("a/42/*"));
  EXPECT_TRUE(set.IntersectsPattern("*/99"));
  EXPECT_FALSE(set.IntersectsPattern("b/**"));
}

TEST(PatternSetTest, ReservedTopicsNeedTheirLiteralFirstSegment) {
  PatternSet set;
  set.Add("**");
  set.Add("*/stats");
  EXPECT_FALSE(set.MatchesTopic("$sys/stats"));
  set.Add("$sys/**");
  EXPECT_TRUE(set.MatchesTopic("$sys/stats"));
}

// The trie answers exactly what trying every pattern with Matches() would.
TEST(PatternSetTest, MatchesTopicAgreesWithMatchesOnRandomSets) {
  std::mt19937 random(7);
  const std::vector<std::string>& patterns = Patterns();
  for (int round = 0; round < 200; ++round) {
    PatternSet set;
    std::vector<std::string> chosen;
    const int n = 1 + static_cast<int>(random() % 6);
    for (int i = 0; i < n; ++i) {
      chosen.push_back(patterns[random() % patterns.size()]);
      set.Add(chosen.back());
    }
    for (const std::string& topic : Topics()) {
      bool expected = false;
      for (const std::string& p : chosen) expected |= Matches(p, topic);
      ASSERT_EQ(set.MatchesTopic(topic), expected)
          << "topic " << topic << " set " << absl::StrJoin(chosen, " ");
    }
  }
}

// Covers() never claims a cover that a topic contradicts, and finds every
// cover whose inner pattern has no `**` (its one conservative corner is
// `**` inside the inner pattern).
TEST(TopicCoversTest, AgreesWithEveryTopicUpToDepthFour) {
  for (const std::string& outer : Patterns()) {
    for (const std::string& inner : Patterns()) {
      bool covered = true;
      for (const std::string& topic : Topics()) {
        if (Matches(inner, topic) && !Matches(outer, topic)) {
          covered = false;
          break;
        }
      }
      const bool said = Covers(outer, inner);
      if (said) {
        EXPECT_TRUE(covered) << outer << " said to cover " << inner;
      } else if (inner.find("**") == std::string::npos) {
        EXPECT_FALSE(covered) << outer << " covers " << inner;
      }
    }
  }
}

TEST(TopicCoversTest, KnownCases) {
  EXPECT_TRUE(Covers("room/**", "room/*/status"));
  EXPECT_TRUE(Covers("room/**", "room/**"));
  EXPECT_TRUE(Covers("**", "a/**"));
  EXPECT_FALSE(Covers("a/*", "a/**"));
  EXPECT_FALSE(Covers("**", "$sys/stats"));
  EXPECT_TRUE(Covers("$sys/**", "$sys/stats"));
  EXPECT_TRUE(Covers("a/b", "a/b"));
  EXPECT_FALSE(Covers("a/b", "a/*"));
}

// "$s" spelled as an ordinary segment, so the reserved-topic rule no longer
// applies to it.
std::string Unreserved(const std::string& s) {
  std::string out = s;
  for (size_t at; (at = out.find("$s")) != std::string::npos;) {
    out.replace(at, 2, "c");
  }
  return out;
}

// IntersectAll() of three patterns is true when some topic matches all
// three. It is conservative in one corner, as Intersects() is: when every
// pattern starts with a wildcard, it does not apply the reserved-topic rule,
// so it may also say true when the only common topics start with '$'.
TEST(TopicIntersectAllTest, AgreesWithEveryTopicUpToDepthFour) {
  std::mt19937 random(11);
  const std::vector<std::string>& patterns = Patterns();
  for (int round = 0; round < 20000; ++round) {
    const std::string& a = patterns[random() % patterns.size()];
    const std::string& b = patterns[random() % patterns.size()];
    const std::string& c = patterns[random() % patterns.size()];
    bool expected = false;
    bool reserved_witness = false;
    for (const std::string& topic : Topics()) {
      if (Matches(a, topic) && Matches(b, topic) && Matches(c, topic)) {
        expected = true;
      }
      const std::string t = Unreserved(topic);
      if (IsReserved(topic) && Matches(Unreserved(a), t) &&
          Matches(Unreserved(b), t) && Matches(Unreserved(c), t)) {
        reserved_witness = true;
      }
    }
    const Segments sa = SplitTopic(a), sb = SplitTopic(b), sc = SplitTopic(c);
    const Segments* all[] = {&sa, &sb, &sc};
    if (expected) {
      ASSERT_TRUE(IntersectAll(all)) << a << " " << b << " " << c;
    } else if (!reserved_witness) {
      ASSERT_FALSE(IntersectAll(all)) << a << " " << b << " " << c;
    }
  }
}

TEST(TopicIntersectAllTest, OfTwoIsIntersects) {
  for (const std::string& a : Patterns()) {
    for (const std::string& b : Patterns()) {
      const Segments sa = SplitTopic(a), sb = SplitTopic(b);
      const Segments* both[] = {&sa, &sb};
      ASSERT_EQ(IntersectAll(both), Intersects(a, b)) << a << " " << b;
    }
  }
}

}  // namespace
}  // namespace manifold
