#include "core/topic.h"

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_set.h"
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

bool IntersectAll(absl::Span<const Segments* const> patterns) {
  const size_t n = patterns.size();
  if (n == 0) return true;
  // A '$' first segment is reached only by that same literal, so if any
  // pattern starts with one, every pattern must start with it.
  for (const Segments* p : patterns) {
    if (p->empty()) return false;
    const absl::string_view front = p->front();
    if (KindOf(front) != SegmentKind::kLiteral || !IsReserved(front)) continue;
    for (const Segments* q : patterns) {
      if (q->front() != front) return false;
    }
    break;
  }
  // A walk over the product of the patterns' positions: one step consumes
  // one segment of the common topic (every pattern agrees on it: literals
  // must be equal, `*` takes anything, `**` takes it and stays); a `**` may
  // also be passed over without taking a segment. The patterns intersect if
  // every one can reach its end together.
  using State = std::vector<uint32_t>;
  std::vector<State> stack = {State(n, 0)};
  absl::flat_hash_set<State> seen = {stack.front()};
  const auto push = [&](State s) {
    if (seen.insert(s).second) stack.push_back(std::move(s));
  };
  while (!stack.empty()) {
    const State s = std::move(stack.back());
    stack.pop_back();
    bool all_done = true;
    bool can_step = true;
    absl::string_view literal;
    for (size_t i = 0; i < n; ++i) {
      const Segments& p = *patterns[i];
      if (s[i] == p.size()) {
        can_step = false;
        continue;
      }
      all_done = false;
      const absl::string_view segment = p[s[i]];
      const SegmentKind kind = KindOf(segment);
      if (kind == SegmentKind::kAnyMany) {
        State skip = s;
        ++skip[i];
        push(std::move(skip));
      } else if (kind == SegmentKind::kLiteral) {
        if (literal.empty()) {
          literal = segment;
        } else if (literal != segment) {
          can_step = false;
        }
      }
    }
    if (all_done) return true;
    if (!can_step) continue;
    State next = s;
    for (size_t i = 0; i < n; ++i) {
      if (KindOf((*patterns[i])[s[i]]) != SegmentKind::kAnyMany) ++next[i];
    }
    push(std::move(next));
  }
  return false;
}

bool Covers(absl::string_view outer, absl::string_view inner) {
  return Covers(SplitTopic(outer), SplitTopic(inner));
}

bool Covers(const Segments& outer, const Segments& inner) {
  if (outer.empty() || inner.empty()) return outer.empty() && inner.empty();
  // A '$' topic is matched only by a pattern that starts with the same
  // literal.
  if (KindOf(inner.front()) == SegmentKind::kLiteral &&
      IsReserved(inner.front()) &&
      KindOf(outer.front()) != SegmentKind::kLiteral) {
    return false;
  }
  // covers[i][j]: outer[i..] matches every sequence inner[j..] can stand
  // for. Filled from the back, as Intersects is.
  const size_t n = outer.size(), m = inner.size();
  std::vector<uint8_t> covers((n + 1) * (m + 1), 0);
  auto at = [&](size_t i, size_t j) -> uint8_t& {
    return covers[i * (m + 1) + j];
  };
  at(n, m) = 1;
  for (size_t i = n + 1; i-- > 0;) {
    for (size_t j = m + 1; j-- > 0;) {
      if (i == n) {
        at(i, j) = j == m;
        continue;
      }
      const SegmentKind o = KindOf(outer[i]);
      if (o == SegmentKind::kAnyMany) {
        // Outer's `**` takes nothing more, or whatever inner[j] stands for.
        at(i, j) = at(i + 1, j) || (j < m && at(i, j + 1));
        continue;
      }
      if (j == m) {
        at(i, j) = 0;  // outer needs a segment that inner does not have
        continue;
      }
      const SegmentKind k = KindOf(inner[j]);
      bool one_segment_covered = false;
      if (o == SegmentKind::kAnyOne) {
        // Any one segment, but not the zero or many of inner's `**`.
        one_segment_covered = k != SegmentKind::kAnyMany;
      } else {
        one_segment_covered =
            k == SegmentKind::kLiteral && outer[i] == inner[j];
      }
      at(i, j) = one_segment_covered && at(i + 1, j + 1);
    }
  }
  return at(0, 0);
}

}  // namespace manifold
