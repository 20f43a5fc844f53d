#include "core/http/sse.h"

#include "absl/strings/str_cat.h"

namespace manifold::http {

void AppendSseEvent(absl::string_view event, absl::string_view id,
                    absl::string_view data, std::string& out) {
  absl::StrAppend(&out, "id: ", id.substr(0, id.find_first_of("\r\n")),
                  "\nevent: ", event.substr(0, event.find_first_of("\r\n")),
                  "\n");
  size_t start = 0;
  while (true) {
    const size_t end = data.find_first_of("\r\n", start);
    absl::StrAppend(&out, "data: ", data.substr(start, end - start), "\n");
    if (end == absl::string_view::npos) break;
    start = end + 1;
    if (data[end] == '\r' && start < data.size() && data[start] == '\n') {
      ++start;
    }
  }
  out += "\n";
}

void AppendSseComment(absl::string_view text, std::string& out) {
  absl::StrAppend(&out, ": ", text.substr(0, text.find_first_of("\r\n")),
                  "\n\n");
}

void AppendSseRetry(absl::Duration delay, std::string& out) {
  absl::StrAppend(&out, "retry: ", absl::ToInt64Milliseconds(delay), "\n\n");
}

}  // namespace manifold::http
