#include "client/load/http_response_reader.h"

#include <http_parser.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace manifold::load {

struct HttpResponseReader::Parser {
  http_parser parser;
  http_parser_settings settings;

  static HttpResponseReader& Of(http_parser* p) {
    return *static_cast<HttpResponseReader*>(p->data);
  }

  static int OnHeaderField(http_parser* p, const char* at, size_t n) {
    HttpResponseReader& r = Of(p);
    if (r.in_value_) {
      r.field_.clear();
      r.in_value_ = false;
    }
    r.field_.append(at, n);
    return 0;
  }

  static int OnHeaderValue(http_parser* p, const char* at, size_t n) {
    HttpResponseReader& r = Of(p);
    if (!r.in_value_) {
      r.in_value_ = true;
      // Only the first Set-Cookie counts: one cookie is all Bayeux servers
      // set.
      r.cookie_value_ = r.set_cookie_.empty() &&
                        absl::EqualsIgnoreCase(r.field_, "set-cookie");
    }
    if (r.cookie_value_) r.set_cookie_.append(at, n);
    return 0;
  }

  static int OnHeadersComplete(http_parser* p) {
    HttpResponseReader& r = Of(p);
    r.status_ = static_cast<int>(p->status_code);
    // "name=value; Path=/; HttpOnly" is sent back as "name=value".
    const size_t semicolon = r.set_cookie_.find(';');
    if (semicolon != std::string::npos) r.set_cookie_.resize(semicolon);
    absl::StripAsciiWhitespace(&r.set_cookie_);
    return 0;
  }

  static int OnBody(http_parser* p, const char* at, size_t n) {
    Of(p).body_.append(at, n);
    return 0;
  }

  static int OnMessageComplete(http_parser* p) {
    HttpResponseReader& r = Of(p);
    r.complete_ = true;
    r.keep_alive_ = http_should_keep_alive(p) != 0;
    // Stop here: what follows belongs to the next response.
    http_parser_pause(p, 1);
    return 0;
  }

  explicit Parser(HttpResponseReader* owner) {
    http_parser_settings_init(&settings);
    settings.on_header_field = OnHeaderField;
    settings.on_header_value = OnHeaderValue;
    settings.on_headers_complete = OnHeadersComplete;
    settings.on_body = OnBody;
    settings.on_message_complete = OnMessageComplete;
    Reset(owner);
  }

  void Reset(HttpResponseReader* owner) {
    http_parser_init(&parser, HTTP_RESPONSE);
    parser.data = owner;
  }
};

HttpResponseReader::HttpResponseReader()
    : parser_(std::make_unique<Parser>(this)) {}

HttpResponseReader::~HttpResponseReader() = default;

absl::Status HttpResponseReader::Feed(absl::string_view bytes) {
  if (complete_) {
    rest_.append(bytes.data(), bytes.size());
    return absl::OkStatus();
  }
  const size_t used = http_parser_execute(&parser_->parser, &parser_->settings,
                                          bytes.data(), bytes.size());
  const http_errno error = HTTP_PARSER_ERRNO(&parser_->parser);
  if (error == HPE_PAUSED) {
    http_parser_pause(&parser_->parser, 0);
    // `used` counts the bytes of the complete response, the rest is the
    // next one's.
    rest_.append(bytes.data() + used, bytes.size() - used);
    return absl::OkStatus();
  }
  if (error != HPE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an HTTP response: ", http_errno_name(error), " (",
                     http_errno_description(error), ")"));
  }
  return absl::OkStatus();
}

absl::Status HttpResponseReader::End() {
  if (complete_) return absl::OkStatus();
  http_parser_execute(&parser_->parser, &parser_->settings, nullptr, 0);
  if (!complete_) {
    return absl::UnavailableError(
        "the server closed the connection before the response was whole");
  }
  return absl::OkStatus();
}

absl::Status HttpResponseReader::Next() {
  complete_ = false;
  status_ = 0;
  keep_alive_ = true;
  body_.clear();
  set_cookie_.clear();
  field_.clear();
  in_value_ = false;
  cookie_value_ = false;
  parser_->Reset(this);
  if (rest_.empty()) return absl::OkStatus();
  std::string rest = std::move(rest_);
  rest_.clear();
  return Feed(rest);
}

}  // namespace manifold::load
