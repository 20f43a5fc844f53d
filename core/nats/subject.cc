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

}  // namespace

absl::Status SubjectToTopic(absl::string_view subject, SubjectUse use,
                            std::string& topic) {
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
