#include "core/http/response.h"

#include "absl/strings/str_cat.h"
#include "core/http/request_parser.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace manifold::http {
namespace {

void AppendHead(int status, absl::string_view content_type,
                const ResponseOptions& options, std::string& out) {
  absl::StrAppend(&out, "HTTP/1.1 ", status, " ", ReasonPhrase(status),
                  "\r\nServer: manifold\r\n");
  if (!content_type.empty()) {
    absl::StrAppend(&out, "Content-Type: ", content_type, "\r\n");
  }
  for (const auto& [name, value] : options.headers) {
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  if (options.close) out += "Connection: close\r\n";
}

}  // namespace

void AppendResponse(int status, absl::string_view content_type,
                    absl::string_view body, const ResponseOptions& options,
                    std::string& out) {
  AppendHead(status, content_type, options, out);
  absl::StrAppend(&out, "Content-Length: ", body.size(), "\r\n\r\n", body);
}

void AppendStreamingResponseHead(int status, absl::string_view content_type,
                                 const ResponseOptions& options,
                                 std::string& out) {
  AppendHead(status, content_type, options, out);
  out += "\r\n";
}

std::string JsonString(absl::string_view text) {
  // protobuf's JSON printer does the escaping: one source of JSON rules.
  google::protobuf::Value value;
  value.set_string_value(std::string(text));
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(value, &json).ok()) {
    return "\"\"";  // only for text that is not UTF-8; callers check first
  }
  return json;
}

std::string JsonErrorBody(absl::string_view code, int status,
                          absl::string_view message) {
  return absl::StrCat("{\"error\":{\"code\":", JsonString(code),
                      ",\"status\":", status,
                      ",\"message\":", JsonString(message), "}}\n");
}

}  // namespace manifold::http
