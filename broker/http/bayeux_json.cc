#include "broker/http/bayeux_json.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/http/json_messages.h"
#include "nlohmann/json.hpp"

namespace manifold {

size_t JsonNestingDepth(absl::string_view text) {
  size_t depth = 0;
  size_t deepest = 0;
  bool in_string = false;
  for (size_t k = 0; k < text.size(); ++k) {
    const char c = text[k];
    if (in_string) {
      if (c == '\\') {
        ++k;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        deepest = std::max(deepest, ++depth);
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return deepest;
}

bool AppendPayloadAsJson(absl::string_view payload, std::string& out) {
  if (!payload.empty() && JsonNestingDepth(payload) <= kMaxBayeuxJsonDepth &&
      nlohmann::json::accept(payload.begin(), payload.end())) {
    out.append(payload.data(), payload.size());
    return false;
  }
  if (http::IsUtf8(payload)) {
    out += nlohmann::json(std::string(payload)).dump();
    return false;
  }
  absl::StrAppend(&out, "\"", absl::Base64Escape(payload), "\"");
  return true;
}

}  // namespace manifold
