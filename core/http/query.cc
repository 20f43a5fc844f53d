#include "core/http/query.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/http/request_parser.h"

namespace manifold::http {

absl::StatusOr<QueryParameters> ParseQuery(absl::string_view query) {
  QueryParameters parameters;
  for (absl::string_view part : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const size_t eq = part.find('=');
    const absl::string_view raw_name = part.substr(0, eq);
    const absl::string_view raw_value = eq == absl::string_view::npos
                                            ? absl::string_view()
                                            : part.substr(eq + 1);
    std::string name;
    std::string value;
    if (!PercentDecode(raw_name, /*plus_is_space=*/true, name) ||
        !PercentDecode(raw_value, /*plus_is_space=*/true, value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "query parameter '", part.substr(0, 64), "' has a bad %-escape"));
    }
    parameters.emplace_back(std::move(name), std::move(value));
  }
  return parameters;
}

std::optional<std::string> FirstValue(const QueryParameters& parameters,
                                      absl::string_view name) {
  for (const auto& [n, v] : parameters) {
    if (n == name) return v;
  }
  return std::nullopt;
}

}  // namespace manifold::http
