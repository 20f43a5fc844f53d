// File: client/cli/json.h
// -----------------------------------------------------------------------------
//
// Just enough JSON for `manifold --json`: one object per line, built field by
// field. Strings are escaped per RFC 8259; bytes that are not UTF-8 never
// reach a JSON string (callers use base64 for those, see IsUtf8()).
//
// Example:
//
//   JsonObject o;
//   o.Add("topic", "room/1").Add("bytes", uint64_t{5});
//   o.str();  // {"topic":"room/1","bytes":5}

#ifndef MANIFOLD_CLIENT_CLI_JSON_H_
#define MANIFOLD_CLIENT_CLI_JSON_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace manifold::cli {

// Returns `text` as a quoted JSON string. REQUIRES: IsUtf8(text).
std::string JsonString(absl::string_view text);

// Returns true if `bytes` is well-formed UTF-8.
bool IsUtf8(absl::string_view bytes);

class JsonObject {
 public:
  JsonObject& Add(absl::string_view key, absl::string_view value);
  JsonObject& Add(absl::string_view key, const char* value) {
    return Add(key, absl::string_view(value));
  }
  JsonObject& Add(absl::string_view key, uint64_t value);
  JsonObject& Add(absl::string_view key, int64_t value);
  JsonObject& Add(absl::string_view key, bool value);
  // Adds `json`, which must already be valid JSON (an object, an array).
  JsonObject& AddRaw(absl::string_view key, absl::string_view json);
  // Adds `bytes` under `key` when it is UTF-8, else base64-encoded under
  // `key` + "_base64", so no byte is lost either way.
  JsonObject& AddBytes(absl::string_view key, absl::string_view bytes);

  // The object, e.g. {"a":1}.
  std::string str() const { return "{" + body_ + "}"; }

 private:
  void Key(absl::string_view key);
  std::string body_;
};

}  // namespace manifold::cli

#endif  // MANIFOLD_CLIENT_CLI_JSON_H_
