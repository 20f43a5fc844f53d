// File: core/http/query.h
// -----------------------------------------------------------------------------
//
// A request's query string as name/value pairs, percent-decoded, in order
// (a name may repeat: /sse?topic=a&topic=b).
//
// Example:
//
//   absl::StatusOr<QueryParameters> q = ParseQuery("topic=a%2Fb&format=json");
//   // (*q)[0] == {"topic", "a/b"}; FirstValue(*q, "format") == "json"

#ifndef MANIFOLD_CORE_HTTP_QUERY_H_
#define MANIFOLD_CORE_HTTP_QUERY_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace manifold::http {

using QueryParameters = std::vector<std::pair<std::string, std::string>>;

// Splits at '&' and the first '=' of each part, and decodes both sides
// ("+" is a space). Returns INVALID_ARGUMENT naming a bad percent-escape.
absl::StatusOr<QueryParameters> ParseQuery(absl::string_view query);

// The first value of `name`, or nullopt.
std::optional<std::string> FirstValue(const QueryParameters& parameters,
                                      absl::string_view name);

}  // namespace manifold::http

#endif  // MANIFOLD_CORE_HTTP_QUERY_H_
