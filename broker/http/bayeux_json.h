// File: broker/http/bayeux_json.h
// -----------------------------------------------------------------------------
//
// How message payloads become the `data` of Bayeux messages, and the bound
// on how deeply a Bayeux message may nest. A payload that is JSON (what a
// Bayeux client publishes is its data's JSON text) travels as that JSON; a
// payload in UTF-8 that is not JSON (a native or NATS client's text) as a
// JSON string; anything else as a JSON string in base64, which the message
// flags with ext.base64 = true.
//
// Example:
//
//   std::string data;
//   bool base64 = AppendPayloadAsJson("{\"n\":1}", data);  // {"n":1}, false
//   AppendPayloadAsJson("hello", data);                    // "hello"

#ifndef MANIFOLD_BROKER_HTTP_BAYEUX_JSON_H_
#define MANIFOLD_BROKER_HTTP_BAYEUX_JSON_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace manifold {

// JSON nested deeper than this is refused in a Bayeux message and is not
// taken for JSON in a payload (so no reader or writer recurses far).
inline constexpr size_t kMaxBayeuxJsonDepth = 64;

// The deepest nesting of arrays and objects in `text` (brackets inside JSON
// strings do not count). Scans without parsing; `text` need not be JSON.
size_t JsonNestingDepth(absl::string_view text);

// Appends `payload` as a JSON value to `out`, as described above. Returns
// true when it was written in base64.
bool AppendPayloadAsJson(absl::string_view payload, std::string& out);

}  // namespace manifold

#endif  // MANIFOLD_BROKER_HTTP_BAYEUX_JSON_H_
