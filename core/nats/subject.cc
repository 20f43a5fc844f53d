#include "core/nats/subject.h"

#include "absl/strings/str_cat.h"
#include "core/manifold.pb.h"
#include "core/status.h"

namespace manifold::nats {
namespace {

absl::Status SubjectError(absl::string_view subject, SubjectUse use,
                          absl::string_view why) {
  return ProtocolError(
      use == SubjectUse::kSubscribe ? wire::INVALID_PATTERN
                                    : wire::INVALID_TOPIC,
      absl::StrCat("NATS subject '", subject.substr(0, 128), "' ", why));
}

bool AllStars(absl::string_view token) {
  return token.find_first_not_of('*') == absl::string_view::npos;
}

// The common case in one pass: tokens of plain characters (no '/', '*' or
// '>'), none empty, which map by turning each '.' into '/'. Returns false,
// having written nothing useful, for any other subject.
bool PlainSubjectToTopic(absl::string_view subject, std::string& topic) {
  const size_t n = subject.size();
  if (n == 0 || subject[0] == '.' || subject[n - 1] == '.') return false;
  topic.resize(n);
  char* out = topic.data();
  char previous = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = subject[i];
    if (c == '/' || c == '*' || c == '>' || (c == '.' && previous == '.')) {
      return false;
    }
    out[i] = c == '.' ? '/' : c;
    previous = c;
  }
  return true;
}

// True when `topic` has no '*' (so no wildcard segment) and no '.' (which
// NATS spells "//"): its subject is the topic with '/' turned into '.'.
bool IsPlainTopic(absl::string_view topic) {
  bool plain = true;
  for (char c : topic) plain &= (c != '*') & (c != '.');
  return plain;
}

}  // namespace

absl::Status SubjectToTopic(absl::string_view subject, SubjectUse use,
                            std::string& topic) {
  if (PlainSubjectToTopic(subject, topic)) return absl::OkStatus();
  topic.clear();
  if (subject.empty()) return SubjectError(subject, use, "is empty");
  const bool literal = use != SubjectUse::kSubscribe;
  size_t start = 0;
  size_t index = 1;
  while (true) {
    const size_t dot = subject.find('.', start);
    const absl::string_view token = subject.substr(
        start,
        dot == absl::string_view::npos ? absl::string_view::npos : dot - start);
    const bool last = dot == absl::string_view::npos;
    if (token.empty()) {
      return SubjectError(subject, use,
                          absl::StrCat("has an empty token at ", index));
    }
    if (!topic.empty()) topic.push_back('/');
    if (token == "*" || token == ">") {
      if (literal) {
        return SubjectError(
            subject, use,
            absl::StrCat("has the wildcard '", token, "' at token ", index,
                         "; a ",
                         use == SubjectUse::kReply ? "reply" : "publish",
                         " subject must be literal"));
      }
      if (token == ">" && !last) {
        return SubjectError(subject, use,
                            absl::StrCat("has '>' at token ", index,
                                         "; it may only be the last token"));
      }
      topic.append(token == "*" ? "*" : "*/**");
    } else if (AllStars(token)) {
      return SubjectError(subject, use,
                          absl::StrCat("has the token '", token, "' at ", index,
                                       ", which has no Manifold form"));
    } else {
      for (size_t i = 0; i < token.size(); ++i) {
        if (token[i] != '/') {
          topic.push_back(token[i]);
          continue;
        }
        if (i + 1 < token.size() && token[i + 1] == '/') {
          topic.push_back('.');  // "//" stands for a '.' inside a segment
          ++i;
          continue;
        }
        return SubjectError(
            subject, use,
            absl::StrCat("has a '/' in token ", index,
                         " that is not part of \"//\" (which stands for '.')"));
      }
    }
    if (last) return absl::OkStatus();
    start = dot + 1;
    ++index;
  }
}

size_t SubjectSizeForTopic(absl::string_view topic) {
  if (IsPlainTopic(topic)) return topic.size();
  size_t size = 0;
  size_t start = 0;
  while (true) {
    const size_t slash = topic.find('/', start);
    const absl::string_view segment = topic.substr(
        start, slash == absl::string_view::npos ? absl::string_view::npos
                                                : slash - start);
    if (start > 0) ++size;  // the '.'
    if (segment == "*" && slash != absl::string_view::npos &&
        topic.substr(slash + 1) == "**") {
      return size + 1;  // trailing "*/**" -> ">"
    }
    if (segment == "**") {
      size += 1;
    } else {
      for (char c : segment) size += c == '.' ? 2 : 1;
    }
    if (slash == absl::string_view::npos) return size;
    start = slash + 1;
  }
}

char* WriteSubjectForTopic(absl::string_view topic, char* out) {
  if (IsPlainTopic(topic)) {
    for (char c : topic) *out++ = c == '/' ? '.' : c;
    return out;
  }
  size_t start = 0;
  while (true) {
    const size_t slash = topic.find('/', start);
    const absl::string_view segment = topic.substr(
        start, slash == absl::string_view::npos ? absl::string_view::npos
                                                : slash - start);
    if (start > 0) *out++ = '.';
    if (segment == "*" && slash != absl::string_view::npos &&
        topic.substr(slash + 1) == "**") {
      *out++ = '>';  // a trailing "*/**" is NATS's ">"
      return out;
    }
    if (segment == "**") {
      *out++ = '>';
    } else {
      for (char c : segment) {
        if (c == '.') {
          *out++ = '/';
          *out++ = '/';
        } else {
          *out++ = c;
        }
      }
    }
    if (slash == absl::string_view::npos) return out;
    start = slash + 1;
  }
}

void AppendSubjectForTopic(absl::string_view topic, std::string& subject) {
  const size_t at = subject.size();
  subject.resize(at + SubjectSizeForTopic(topic));
  WriteSubjectForTopic(topic, subject.data() + at);
}

}  // namespace manifold::nats
