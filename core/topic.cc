#include "core/topic.h"

#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/manifold.pb.h"
#include "core/status.h"
#include "google/protobuf/stubs/common.h"

namespace manifold {
namespace {

constexpr absl::string_view kAnyOne = "*";
constexpr absl::string_view kAnyMany = "**";

absl::string_view RoleNoun(TopicRole role) {
  return role == TopicRole::kSubscription ? "pattern" : "topic";
}

wire::Code RoleCode(TopicRole role) {
  return role == TopicRole::kSubscription ? wire::INVALID_PATTERN
                                          : wire::INVALID_TOPIC;
}

// Quotes a topic for an error message, shortened so that a hostile multi-KiB
// topic does not produce a multi-KiB error.
std::string Quote(absl::string_view text) {
  constexpr size_t kMaxShown = 64;
  if (text.size() <= kMaxShown) return absl::StrCat("'", text, "'");
  return absl::StrCat("'", text.substr(0, kMaxShown), "...'");
}

// Returns an empty string if `segment` is a legal literal segment, else why
// not.
std::string LiteralSegmentProblem(absl::string_view segment) {
  bool has_non_ascii = false;
  for (unsigned char c : segment) {
    if (c >= 0x80) {
      has_non_ascii = true;
    } else if (c <= 0x20 || c == 0x7f) {
      return absl::StrFormat("contains illegal character 0x%02x", c);
    } else if (c == '*') {
      return "mixes a wildcard '*' with other characters";
    }
  }
  // The same check protobuf applies to proto3 string fields, so the native
  // parser and the fast publish path accept exactly the same topics.
  if (has_non_ascii && !google::protobuf::internal::IsStructurallyValidUTF8(
                           segment.data(), static_cast<int>(segment.size()))) {
    return "is not valid UTF-8";
  }
  return "";
}

// The common case in one pass: a topic within the limits whose segments are
// all non-empty runs of printable ASCII other than '*'. Such a topic is valid
// in every role. Returns false for anything else, which the full check
// handles (wildcards, UTF-8, and every error).
bool IsPlainLiteralTopic(absl::string_view topic, const TopicLimits& limits) {
  if (topic.empty() || topic.size() > limits.max_length) return false;
  size_t segments = 1;
  char previous = '/';  // a leading '/' would start with an empty segment
  for (const char c : topic) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '*') return false;
    if (c == '/') {
      if (previous == '/') return false;  // an empty segment
      ++segments;
    }
    previous = c;
  }
  return previous != '/' && segments <= limits.max_depth;
}

}  // namespace

SegmentKind KindOf(absl::string_view segment) {
  if (segment == kAnyOne) return SegmentKind::kAnyOne;
  if (segment == kAnyMany) return SegmentKind::kAnyMany;
  return SegmentKind::kLiteral;
}

absl::Status ValidateTopic(absl::string_view topic, TopicRole role,
                           const TopicLimits& limits) {
  if (IsPlainLiteralTopic(topic, limits)) return absl::OkStatus();
  const absl::string_view noun = RoleNoun(role);
  const wire::Code code = RoleCode(role);
  if (topic.empty()) {
    return ProtocolError(code, absl::StrCat(noun, " is empty"));
  }
  if (topic.size() > limits.max_length) {
    return ProtocolError(
        code,
        absl::StrCat("invalid ", noun, " ", Quote(topic), ": ", topic.size(),
                     " bytes long; the limit is ", limits.max_length));
  }
  size_t index = 0;
  for (absl::string_view segment : absl::StrSplit(topic, '/')) {
    ++index;
    if (index > limits.max_depth) {
      return ProtocolError(
          code, absl::StrCat("invalid ", noun, " ", Quote(topic),
                             ": more than ", limits.max_depth,
                             " segments; the limit is ", limits.max_depth));
    }
    if (segment.empty()) {
      return ProtocolError(
          code, absl::StrCat("invalid ", noun, " ", Quote(topic), ": segment ",
                             index, " is empty"));
    }
    if (KindOf(segment) != SegmentKind::kLiteral) {
      if (role == TopicRole::kLiteral) {
        return ProtocolError(
            code, absl::StrCat("invalid ", noun, " ", Quote(topic),
                               ": segment ", index, " '", segment,
                               "' is a wildcard; only a literal topic is "
                               "allowed here"));
      }
      continue;
    }
    std::string problem = LiteralSegmentProblem(segment);
    if (!problem.empty()) {
      return ProtocolError(
          code, absl::StrCat("invalid ", noun, " ", Quote(topic), ": segment ",
                             index, " ", Quote(segment), " ", problem));
    }
  }
  return absl::OkStatus();
}

bool HasWildcard(absl::string_view topic) {
  for (absl::string_view segment : absl::StrSplit(topic, '/')) {
    if (KindOf(segment) != SegmentKind::kLiteral) return true;
  }
  return false;
}

bool IsReserved(absl::string_view topic) {
  return !topic.empty() && topic.front() == '$';
}

Segments SplitTopic(absl::string_view topic) {
  // As absl::StrSplit(topic, '/') would (an empty topic is one empty
  // segment), without its iterator machinery: routing splits every topic.
  Segments segments;
  size_t start = 0;
  for (size_t i = 0; i < topic.size(); ++i) {
    if (topic[i] == '/') {
      segments.push_back(topic.substr(start, i - start));
      start = i + 1;
    }
  }
  segments.push_back(topic.substr(start));
  return segments;
}

bool Matches(absl::string_view pattern, absl::string_view topic) {
  return Matches(SplitTopic(pattern), SplitTopic(topic));
}

bool Matches(const Segments& pattern, const Segments& topic) {
  if (!topic.empty() && IsReserved(topic.front()) && !pattern.empty() &&
      KindOf(pattern.front()) != SegmentKind::kLiteral) {
    return false;
  }
  // Glob matching over segments: `**` is the glob star, `*` the single-item
  // wildcard. Remembering only the most recent `**` suffices: a later `**` can
  // absorb anything an earlier one could.
  size_t p = 0, t = 0;
  size_t star_p = pattern.size(), star_t = 0;
  while (t < topic.size()) {
    if (p < pattern.size()) {
      SegmentKind kind = KindOf(pattern[p]);
      if (kind == SegmentKind::kAnyMany) {
        star_p = p++;
        star_t = t;
        continue;
      }
      if (kind == SegmentKind::kAnyOne || pattern[p] == topic[t]) {
        ++p;
        ++t;
        continue;
      }
    }
    if (star_p == pattern.size()) return false;
    p = star_p + 1;
    t = ++star_t;
  }
  while (p < pattern.size() && KindOf(pattern[p]) == SegmentKind::kAnyMany) ++p;
  return p == pattern.size();
}

bool Intersects(absl::string_view a, absl::string_view b) {
  return Intersects(SplitTopic(a), SplitTopic(b));
}

bool Intersects(const Segments& a, const Segments& b) {
  if (a.empty() || b.empty()) return a.empty() && b.empty();
  // The reserved-topic rule: a '$' first segment is reached only by the same
  // literal. When both sides start with wildcards, a non-'$' topic serves as
  // the witness, so the rule never removes the whole intersection.
  auto reserved_front = [](const Segments& s) {
    return KindOf(s.front()) == SegmentKind::kLiteral && IsReserved(s.front());
  };
  if ((reserved_front(a) && KindOf(b.front()) != SegmentKind::kLiteral) ||
      (reserved_front(b) && KindOf(a.front()) != SegmentKind::kLiteral)) {
    return false;
  }
  // can[i][j]: a[i..] and b[j..] match a common sequence of segments. Filled
  // from the back; O(|a|·|b|), at most depth² cells.
  const size_t n = a.size(), m = b.size();
  std::vector<uint8_t> can((n + 1) * (m + 1), 0);
  auto at = [&](size_t i, size_t j) -> uint8_t& {
    return can[i * (m + 1) + j];
  };
  at(n, m) = 1;
  for (size_t i = n + 1; i-- > 0;) {
    for (size_t j = m + 1; j-- > 0;) {
      if (i == n && j == m) continue;
      const bool a_many = i < n && KindOf(a[i]) == SegmentKind::kAnyMany;
      const bool b_many = j < m && KindOf(b[j]) == SegmentKind::kAnyMany;
      bool result = false;
      if (a_many) {
        // a's `**` matches nothing, or absorbs what b[j] stands for.
        result = at(i + 1, j) || (j < m && at(i, j + 1));
      }
      if (!result && b_many) {
        result = at(i, j + 1) || (i < n && at(i + 1, j));
      }
      if (!result && !a_many && !b_many && i < n && j < m) {
        const bool one_segment_agrees = KindOf(a[i]) == SegmentKind::kAnyOne ||
                                        KindOf(b[j]) == SegmentKind::kAnyOne ||
                                        a[i] == b[j];
        result = one_segment_agrees && at(i + 1, j + 1);
      }
      at(i, j) = result;
    }
  }
  return at(0, 0);
}

}  // namespace manifold
