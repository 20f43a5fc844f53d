// File: broker/http/bayeux_json.h
// -----------------------------------------------------------------------------
//
// The JSON the Bayeux front end reads and writes, with RapidJSON: the
// bound on how deeply a Bayeux message may nest, and how message payloads
// become the `data` of Bayeux messages. A payload that is JSON (what a
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
//   AppendJsonString("a\"b", data);                        // "a\"b"

#ifndef MANIFOLD_BROKER_HTTP_BAYEUX_JSON_H_
#define MANIFOLD_BROKER_HTTP_BAYEUX_JSON_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace manifold {

// JSON nested deeper than this is refused in a Bayeux message and is not
// taken for JSON in a payload.
inline constexpr size_t kMaxBayeuxJsonDepth = 64;

// The parse flags the front end reads JSON with: strict JSON, no recursion
// however deep the text nests, numbers handed over as their text
// (rapidjson::kParseIterativeFlag | kParseNumbersAsStringsFlag). The reader
// does not check UTF-8 (checking the whole text first is faster than its
// check per character): callers do.
inline constexpr unsigned kBayeuxParseFlags = 4 | 64;

// True when `text` is one JSON value (white space around it allowed),
// strict JSON in UTF-8, nested at most kMaxBayeuxJsonDepth deep.
bool IsJson(absl::string_view text);

// Appends `payload` as a JSON value to `out`, as described above. Returns
// true when it was written in base64.
bool AppendPayloadAsJson(absl::string_view payload, std::string& out);

// Appends `text` to `out` as a JSON string (quotes included). Bytes that
// are not UTF-8 are written as U+FFFD.
void AppendJsonString(absl::string_view text, std::string& out);

}  // namespace manifold

#endif  // MANIFOLD_BROKER_HTTP_BAYEUX_JSON_H_
