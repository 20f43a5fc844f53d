#include "core/topic.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold {
namespace {

using ::testing::HasSubstr;

struct MatchCase {
  const char* pattern;
  const char* topic;
  bool matches;
};

// Matches(pattern, literal topic). Each row states one behaviour.
const MatchCase kMatchCases[] = {
    // Literals.
    {"a", "a", true},
    {"a", "b", false},
    {"a/b", "a/b", true},
    {"a/b", "a/c", false},
    {"a/b", "a", false},
    {"a", "a/b", false},
    {"a/b/c", "a/b/c", true},
    {"ab", "a", false},
    {"a", "ab", false},
    {"A", "a", false},
    // `*` matches exactly one segment.
    {"*", "a", true},
    {"*", "a/b", false},
    {"a/*", "a/b", true},
    {"a/*", "a", false},
    {"a/*", "a/b/c", false},
    {"*/b", "a/b", true},
    {"*/b", "a/c", false},
    {"*/*", "a/b", true},
    {"*/*", "a", false},
    {"*/*", "a/b/c", false},
    {"a/*/c", "a/b/c", true},
    {"a/*/c", "a/c", false},
    {"a/*/c", "a/b/b/c", false},
    // `**` matches zero or more segments.
    {"**", "a", true},
    {"**", "a/b/c", true},
    {"a/**", "a", true},
    {"a/**", "a/b", true},
    {"a/**", "a/b/c/d", true},
    {"a/**", "b", false},
    {"a/**", "b/a", false},
    {"**/z", "z", true},
    {"**/z", "a/z", true},
    {"**/z", "a/b/c/z", true},
    {"**/z", "z/a", false},
    // `**` in the middle.
    {"a/**/z", "a/z", true},
    {"a/**/z", "a/b/z", true},
    {"a/**/z", "a/b/c/z", true},
    {"a/**/z", "a/b/c", false},
    {"a/**/z", "b/z", false},
    {"a/**/z", "a/z/z", true},
    {"a/**/z", "a/z/y", false},
    // `**` repeated.
    {"**/**", "a", true},
    {"a/**/**/z", "a/z", true},
    {"a/**/b/**/c", "a/b/c", true},
    {"a/**/b/**/c", "a/x/b/y/c", true},
    {"a/**/b/**/c", "a/x/y/c", false},
    {"**/b/**", "b", true},
    {"**/b/**", "a/b/c", true},
    {"**/b/**", "a/c", false},
    {"**/a/**/a", "a/a", true},
    {"**/a/**/a", "a", false},
    // `*` and `**` together.
    {"*/**", "a", true},
    {"*/**", "a/b/c", true},
    {"**/*", "a", true},
    {"*/**/*", "a", false},
    {"*/**/*", "a/b", true},
    {"*/**/*", "a/b/c/d", true},
    {"a/*/**", "a", false},
    {"a/*/**", "a/b", true},
    {"**/*/c", "c", false},
    {"**/*/c", "b/c", true},
    // Backtracking: the first `**` choice is not always the right one.
    {"**/a/b", "a/a/b", true},
    {"**/a/b", "a/b/a/b", true},
    {"**/a/b", "a/b/a", false},
    // Reserved '$' topics are reached only through their literal first segment.
    {"**", "$sys/stats", false},
    {"*/stats", "$sys/stats", false},
    {"**/stats", "$sys/stats", false},
    {"$sys/**", "$sys/stats", true},
    {"$sys/*", "$sys/stats", true},
    {"$sys/stats", "$sys/stats", true},
    {"a/**", "a/$sys", true},
    {"a/*", "a/$x", true},
    // Characters beyond the separator are plain.
    {"a.b/c", "a.b/c", true},
    {"a.b/*", "a.c/x", false},
    {"caf\xc3\xa9/*", "caf\xc3\xa9/x", true},
};

TEST(TopicTest, MatchesTable) {
  for (const MatchCase& c : kMatchCases) {
    ASSERT_TRUE(ValidateTopic(c.pattern, TopicRole::kSubscription).ok())
        << c.pattern;
    ASSERT_TRUE(ValidateTopic(c.topic, TopicRole::kLiteral).ok()) << c.topic;
    EXPECT_EQ(Matches(c.pattern, c.topic), c.matches)
        << "Matches('" << c.pattern << "', '" << c.topic << "')";
    // A literal topic intersects a pattern exactly when the pattern matches it.
    EXPECT_EQ(Intersects(c.pattern, c.topic), c.matches)
        << "Intersects('" << c.pattern << "', '" << c.topic << "')";
    EXPECT_EQ(Intersects(c.topic, c.pattern), c.matches)
        << "Intersects('" << c.topic << "', '" << c.pattern << "')";
  }
  EXPECT_GE(std::size(kMatchCases), 60u);
}

struct IntersectCase {
  const char* a;
  const char* b;
  bool intersects;
};

// Publish-side wildcards: does a publish to `a` reach a subscription to `b`?
const IntersectCase kIntersectCases[] = {
    {"*/alice", "lobby/alice", true},
    {"*/alice", "lobby/bob", false},
    {"*/alice", "lobby/*", true},
    {"*/alice", "**", true},
    {"*/alice", "a/b/alice", false},
    {"**/alice", "a/b/alice", true},
    {"**", "a/b/c", true},
    {"**", "**", true},
    {"*", "**", true},
    {"*", "*/*", false},
    {"*/*", "**/x/**", true},
    {"a/**", "**/z", true},
    {"a/**", "b/**", false},
    {"a/*/c", "*/b/*", true},
    {"a/*/c", "*/b/d", false},
    {"a/**/z", "*/q/**", true},
    {"a/**/z", "b/**", false},
    {"**/x", "**/y", false},
    {"**/x/**", "**/y/**", true},
    {"*/*/*", "**/a/**/b/**/c/**", true},
    {"*/*", "**/a/**/b/**/c/**", false},
    {"*/*/*/*/*", "**/a/**/b/**/c/**", true},
    {"$sys/**", "**", false},
    {"$sys/**", "$sys/stats", true},
    {"$sys/*", "*/stats", false},
    {"*/stats", "**/stats", true},
};

TEST(TopicTest, IntersectsTable) {
  for (const IntersectCase& c : kIntersectCases) {
    EXPECT_EQ(Intersects(c.a, c.b), c.intersects)
        << "Intersects('" << c.a << "', '" << c.b << "')";
    EXPECT_EQ(Intersects(c.b, c.a), c.intersects)
        << "Intersects('" << c.b << "', '" << c.a << "')";
  }
}

struct InvalidCase {
  const char* topic;
  TopicRole role;
  const char* message_part;
};

const InvalidCase kInvalidCases[] = {
    {"", TopicRole::kPublish, "topic is empty"},
    {"a//b", TopicRole::kPublish, "segment 2 is empty"},
    {"/a", TopicRole::kPublish, "segment 1 is empty"},
    {"a/", TopicRole::kPublish, "segment 2 is empty"},
    {"a/b/", TopicRole::kSubscription, "invalid pattern 'a/b/': segment 3"},
    {"a b", TopicRole::kPublish,
     "segment 1 'a b' contains illegal character 0x20"},
    {"a/\tb", TopicRole::kPublish, "illegal character 0x09"},
    {"a/b\x7f", TopicRole::kPublish, "illegal character 0x7f"},
    {"a/b*", TopicRole::kSubscription, "segment 2 'b*' mixes a wildcard"},
    {"***", TopicRole::kSubscription, "mixes a wildcard"},
    {"a/*", TopicRole::kLiteral, "segment 2 '*' is a wildcard"},
    {"**", TopicRole::kLiteral, "only a literal topic is allowed"},
    {"a/\xff", TopicRole::kPublish, "is not valid UTF-8"},
};

TEST(TopicTest, ValidationNamesTheBadSegmentAndWhy) {
  for (const InvalidCase& c : kInvalidCases) {
    absl::Status status = ValidateTopic(c.topic, c.role);
    EXPECT_FALSE(status.ok()) << c.topic;
    EXPECT_THAT(status.message(), HasSubstr(c.message_part)) << c.topic;
    EXPECT_EQ(WireCode(status), c.role == TopicRole::kSubscription
                                    ? wire::INVALID_PATTERN
                                    : wire::INVALID_TOPIC);
  }
}

TEST(TopicTest, LimitsAreEnforcedWithTheLimitInTheMessage) {
  TopicLimits limits{.max_length = 10, .max_depth = 3};
  EXPECT_TRUE(ValidateTopic("a/b/c", TopicRole::kPublish, limits).ok());
  EXPECT_THAT(ValidateTopic("a/b/c/d", TopicRole::kPublish, limits).message(),
              HasSubstr("the limit is 3"));
  EXPECT_THAT(
      ValidateTopic("abcdefghijk", TopicRole::kPublish, limits).message(),
      HasSubstr("11 bytes long; the limit is 10"));
}

TEST(TopicTest, ErrorMessagesShortenHugeTopics) {
  std::string huge(5000, 'x');
  huge += " ";
  absl::Status status = ValidateTopic(huge, TopicRole::kPublish,
                                      TopicLimits{.max_length = 10000});
  EXPECT_LT(status.message().size(), 300u);
}

TEST(TopicTest, WildcardsAndReservedTopicsAreRecognised) {
  EXPECT_TRUE(HasWildcard("a/*"));
  EXPECT_TRUE(HasWildcard("**"));
  EXPECT_FALSE(HasWildcard("a/b"));
  EXPECT_TRUE(IsReserved("$sys/stats"));
  EXPECT_FALSE(IsReserved("sys/$stats"));
}

// ---------------------------------------------------------------------------
// Cross-check against a deliberately naive reference.

// Naive, exponential matcher: tries every way for `**` to split the topic.
bool NaiveMatchesFrom(const std::vector<std::string>& p, size_t i,
                      const std::vector<std::string>& t, size_t j) {
  if (i == p.size()) return j == t.size();
  if (p[i] == "**") {
    for (size_t k = j; k <= t.size(); ++k) {
      if (NaiveMatchesFrom(p, i + 1, t, k)) return true;
    }
    return false;
  }
  if (j == t.size()) return false;
  if (p[i] == "*" || p[i] == t[j]) return NaiveMatchesFrom(p, i + 1, t, j + 1);
  return false;
}

bool NaiveMatches(const std::vector<std::string>& p,
                  const std::vector<std::string>& t) {
  if (!t.empty() && t[0][0] == '$' && (p[0] == "*" || p[0] == "**")) {
    return false;
  }
  return NaiveMatchesFrom(p, 0, t, 0);
}

// Every literal topic over `alphabet` with 1..max_depth segments.
void AllTopics(const std::vector<std::string>& alphabet, size_t max_depth,
               std::vector<std::vector<std::string>>* out) {
  std::vector<std::vector<std::string>> layer = {{}};
  for (size_t depth = 1; depth <= max_depth; ++depth) {
    std::vector<std::vector<std::string>> next;
    for (const auto& prefix : layer) {
      for (const std::string& segment : alphabet) {
        next.push_back(prefix);
        next.back().push_back(segment);
      }
    }
    out->insert(out->end(), next.begin(), next.end());
    layer = std::move(next);
  }
}

std::vector<std::string> RandomPattern(std::mt19937& rng,
                                       const std::vector<std::string>& tokens,
                                       size_t max_depth) {
  std::uniform_int_distribution<size_t> depth(1, max_depth);
  std::uniform_int_distribution<size_t> token(0, tokens.size() - 1);
  std::vector<std::string> pattern(depth(rng));
  for (std::string& segment : pattern) segment = tokens[token(rng)];
  return pattern;
}

TEST(TopicTest, MatchesAndIntersectsAgreeWithNaiveReference) {
  const uint32_t seed = 20261121;
  std::mt19937 rng(seed);
  // The literals patterns use, plus "q" that they never use, so a wildcard can
  // match something no pattern names.
  const std::vector<std::string> alphabet = {"a", "b", "$s", "q"};
  const std::vector<std::string> tokens = {"a", "b", "$s", "*", "**"};
  // Two patterns of at most 4 segments that intersect share a topic of at most
  // 6 segments: only single-segment tokens consume segments, and a pattern
  // with a `**` has at most 3 of them.
  std::vector<std::vector<std::string>> topics;
  AllTopics(alphabet, 6, &topics);
  for (int round = 0; round < 400; ++round) {
    const auto a = RandomPattern(rng, tokens, 4);
    const auto b = RandomPattern(rng, tokens, 4);
    const std::string a_text = absl::StrJoin(a, "/");
    const std::string b_text = absl::StrJoin(b, "/");
    bool naive_intersects = false;
    for (const auto& topic : topics) {
      const std::string topic_text = absl::StrJoin(topic, "/");
      const bool naive_a = NaiveMatches(a, topic);
      ASSERT_EQ(Matches(a_text, topic_text), naive_a)
          << "seed " << seed << " round " << round << ": Matches('" << a_text
          << "', '" << topic_text << "')";
      if (naive_a && NaiveMatches(b, topic)) naive_intersects = true;
    }
    ASSERT_EQ(Intersects(a_text, b_text), naive_intersects)
        << "seed " << seed << " round " << round << ": Intersects('" << a_text
        << "', '" << b_text << "')";
    ASSERT_EQ(Intersects(b_text, a_text), naive_intersects);
  }
}

}  // namespace
}  // namespace manifold
