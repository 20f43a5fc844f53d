// File: core/topic.h
// -----------------------------------------------------------------------------
//
// Topics, patterns and how they match.
//
// A topic is a `/`-separated list of one or more non-empty segments, e.g.
// "lobby/alice/status". A pattern may also hold wildcard segments: `*` matches
// exactly one segment and `**` matches zero or more, anywhere in the pattern
// and any number of times ("a/**/z", "**/status", "*/*/x").
//
// Wildcards are allowed in subscriptions and in publishes: a publish to
// "*/alice" reaches every subscription whose pattern matches some topic that
// "*/alice" also matches (`Intersects`). Serve and request topics are literal.
//
// Reserved topics: a topic whose first segment starts with '$' (the broker's
// "$sys/..." events) is matched only by patterns whose first segment is that
// same literal, never by a leading wildcard. So "**" does not see broker events
// and "$sys/**" does, as with '$' topics in MQTT.
//
// Segments are made of printable ASCII other than space and '/', or UTF-8
// encoded characters beyond ASCII. '*' may appear only as a whole `*` or `**`
// segment. Length and depth limits are options (`TopicLimits`).
//
// Example:
//
//   absl::Status s = ValidateTopic("a//b", TopicRole::kSubscription);
//   // s.message(): "invalid pattern 'a//b': segment 2 is empty"
//   Matches("room/*/status", "room/alice/status");   // true
//   Matches("room/**", "room");                      // true: ** matched zero
//   Intersects("*/alice", "lobby/**");               // true: "lobby/alice"
//   Covers("room/**", "room/*/status");              // true: a subset

#ifndef MANIFOLD_CORE_TOPIC_H_
#define MANIFOLD_CORE_TOPIC_H_

#include <cstddef>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace manifold {

// Limits on the size of a topic or pattern. Both are enforced by
// ValidateTopic() with an error that states the limit.
struct TopicLimits {
  // Longest topic or pattern in bytes, separators included.
  size_t max_length = 512;
  // Most segments in a topic or pattern.
  size_t max_depth = 32;
};

// What a topic string is used for, which decides whether wildcards are allowed
// and how errors name it.
enum class TopicRole {
  // A subscription pattern: wildcards allowed. Errors are INVALID_PATTERN.
  kSubscription,
  // A publish topic: wildcards allowed. Errors are INVALID_TOPIC.
  kPublish,
  // A serve or request topic: literal only. Errors are INVALID_TOPIC.
  kLiteral,
};

// The kind of one segment.
enum class SegmentKind {
  kLiteral,
  kAnyOne,   // "*"
  kAnyMany,  // "**"
};

// Returns the kind of `segment`: "*" and "**" are wildcards, anything else is
// treated as a literal (validation decides whether it is a legal one).
SegmentKind KindOf(absl::string_view segment);

// Returns OK if `topic` is well formed for `role` within `limits`. Otherwise
// returns an error carrying wire::INVALID_TOPIC or wire::INVALID_PATTERN whose
// message quotes the topic and names the bad segment and the reason: empty
// segment, illegal character (shown with its code), a wildcard mixed with other
// characters, a wildcard where only a literal is allowed, too long, too deep.
absl::Status ValidateTopic(absl::string_view topic, TopicRole role,
                           const TopicLimits& limits = TopicLimits());

// Returns true if `topic` holds a `*` or `**` segment.
// REQUIRES: `topic` passed ValidateTopic().
bool HasWildcard(absl::string_view topic);

// Returns true if `topic` is reserved for the broker: its first segment starts
// with '$'.
bool IsReserved(absl::string_view topic);

// A topic or pattern split into its segments. Views point into the string the
// segments came from, which must outlive them.
using Segments = absl::InlinedVector<absl::string_view, 8>;

// Returns the segments of `topic` ("a/b" -> {"a", "b"}).
Segments SplitTopic(absl::string_view topic);

// Returns true if `pattern` matches the literal `topic`.
// REQUIRES: both passed ValidateTopic(); `topic` has no wildcard.
bool Matches(absl::string_view pattern, absl::string_view topic);
bool Matches(const Segments& pattern, const Segments& topic);

// Returns true if some literal topic is matched by both patterns. Either side
// may be literal, in which case this is the same as Matches().
// REQUIRES: both passed ValidateTopic().
bool Intersects(absl::string_view a, absl::string_view b);
bool Intersects(const Segments& a, const Segments& b);

// Returns true if some literal topic is matched by every one of `patterns`
// (Intersects for any number of patterns; true for none). Costs up to
// (depth + 1)^n steps for n patterns: meant for two or three. Conservative
// in Intersects()'s corner: when every pattern starts with a wildcard it may
// say true although the only common topics start with '$' ("*/$x" and
// "**/$x/$x" share only "$x/$x"); never false when some topic is common.
// REQUIRES: each passed ValidateTopic().
bool IntersectAll(absl::Span<const Segments* const> patterns);

// Returns true if every literal topic `inner` matches is also matched by
// `outer` ("a/**" covers "a/*/b"; "a/*" does not cover "a/**"). Either may be
// literal. Never true when it is not so; in one corner it says false although
// it is so: a `**` in `inner` is covered only by a `**` in `outer` (so "*/**"
// is not found to cover "**", although no topic is empty).
// REQUIRES: both passed ValidateTopic().
bool Covers(absl::string_view outer, absl::string_view inner);
bool Covers(const Segments& outer, const Segments& inner);

}  // namespace manifold

#endif  // MANIFOLD_CORE_TOPIC_H_
