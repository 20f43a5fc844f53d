#include "core/http/request_parser.h"

#include <http_parser.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace manifold::http {

struct RequestParser::ParserState {
  http_parser parser;
  http_parser_settings settings;
};

// http-parser calls these with the RequestParser in parser->data. A non-zero
// return stops the parser with an error; the callback has noted which.
struct RequestParser::Callbacks {
  static RequestParser& Self(http_parser* p) {
    return *static_cast<RequestParser*>(p->data);
  }
  static int OnMessageBegin(http_parser* p) {
    Self(p).started_ = true;
    return 0;
  }
  static int OnUrl(http_parser* p, const char* at, size_t length) {
    RequestParser& self = Self(p);
    self.request_.target.append(at, length);
    self.header_bytes_ += length;
    if (self.request_.target.size() > self.limits_.max_header_bytes) {
      self.Fail(414, absl::StrCat("request target is longer than ",
                                  self.limits_.max_header_bytes, " bytes"))
          .IgnoreError();
      return -1;
    }
    return 0;
  }
  static int CountHeaderBytes(RequestParser& self, size_t length) {
    self.header_bytes_ += length;
    if (self.header_bytes_ > self.limits_.max_header_bytes) {
      self.Fail(431, absl::StrCat("request header block is larger than ",
                                  self.limits_.max_header_bytes, " bytes"))
          .IgnoreError();
      return -1;
    }
    return 0;
  }
  static int OnHeaderField(http_parser* p, const char* at, size_t length) {
    RequestParser& self = Self(p);
    if (CountHeaderBytes(self, length) != 0) return -1;
    std::vector<HttpHeader>& headers = self.request_.headers;
    if (headers.empty() || self.last_was_value_) {
      if (headers.size() == self.limits_.max_headers) {
        self.Fail(431, absl::StrCat("request has more than ",
                                    self.limits_.max_headers, " headers"))
            .IgnoreError();
        return -1;
      }
      headers.emplace_back();
    }
    self.last_was_value_ = false;
    std::string lower(at, length);
    absl::AsciiStrToLower(&lower);
    headers.back().name += lower;
    return 0;
  }
  static int OnHeaderValue(http_parser* p, const char* at, size_t length) {
    RequestParser& self = Self(p);
    if (CountHeaderBytes(self, length) != 0) return -1;
    self.last_was_value_ = true;
    self.request_.headers.back().value.append(at, length);
    return 0;
  }
  static int OnHeadersComplete(http_parser* p) {
    RequestParser& self = Self(p);
    HttpRequest& r = self.request_;
    r.method = http_method_str(static_cast<http_method>(p->method));
    r.http_major = p->http_major;
    r.http_minor = p->http_minor;
    r.keep_alive = http_should_keep_alive(p) != 0;
    r.upgrade = p->upgrade != 0;
    if (p->http_major != 1) {
      self.Fail(505, absl::StrCat("HTTP/", p->http_major, ".", p->http_minor,
                                  " is not supported; use HTTP/1.1"))
          .IgnoreError();
      return -1;
    }
    if (p->content_length != ULLONG_MAX &&
        p->content_length > self.limits_.max_body_bytes) {
      self.Fail(413, absl::StrCat("request body of ", p->content_length,
                                  " bytes is larger than the limit of ",
                                  self.limits_.max_body_bytes, " bytes"))
          .IgnoreError();
      return -1;
    }
    http_parser_url url;
    http_parser_url_init(&url);
    if (http_parser_parse_url(r.target.data(), r.target.size(),
                              p->method == HTTP_CONNECT, &url) != 0) {
      self.Fail(400, "request target is not a valid URL").IgnoreError();
      return -1;
    }
    std::string raw_path = "/";
    if (url.field_set & (1 << UF_PATH)) {
      raw_path = r.target.substr(url.field_data[UF_PATH].off,
                                 url.field_data[UF_PATH].len);
    }
    if (url.field_set & (1 << UF_QUERY)) {
      r.query = r.target.substr(url.field_data[UF_QUERY].off,
                                url.field_data[UF_QUERY].len);
    }
    if (!PercentDecode(raw_path, /*plus_is_space=*/false, r.path)) {
      self.Fail(400, "request path has a bad percent-escape").IgnoreError();
      return -1;
    }
    return 0;
  }
  static int OnBody(http_parser* p, const char* at, size_t length) {
    RequestParser& self = Self(p);
    if (self.request_.body.size() + length > self.limits_.max_body_bytes) {
      self.Fail(413, absl::StrCat("request body is larger than the limit of ",
                                  self.limits_.max_body_bytes, " bytes"))
          .IgnoreError();
      return -1;
    }
    self.request_.body.append(at, length);
    return 0;
  }
  static int OnMessageComplete(http_parser* p) {
    Self(p).complete_ = true;
    // Stop here: the next request waits until this one is answered.
    http_parser_pause(p, 1);
    return 0;
  }
};

RequestParser::RequestParser(RequestLimits limits)
    : limits_(limits), state_(std::make_unique<ParserState>()) {
  http_parser_init(&state_->parser, HTTP_REQUEST);
  state_->parser.data = this;
  http_parser_settings_init(&state_->settings);
  state_->settings.on_message_begin = &Callbacks::OnMessageBegin;
  state_->settings.on_url = &Callbacks::OnUrl;
  state_->settings.on_header_field = &Callbacks::OnHeaderField;
  state_->settings.on_header_value = &Callbacks::OnHeaderValue;
  state_->settings.on_headers_complete = &Callbacks::OnHeadersComplete;
  state_->settings.on_body = &Callbacks::OnBody;
  state_->settings.on_message_complete = &Callbacks::OnMessageComplete;
}

RequestParser::~RequestParser() = default;

absl::Status RequestParser::Fail(int status, absl::string_view message) {
  if (error_status_ == 0) {
    error_status_ = status;
    error_message_ = std::string(message);
  }
  return absl::InvalidArgumentError(error_message_);
}

absl::StatusOr<size_t> RequestParser::Feed(absl::string_view bytes) {
  if (bytes.empty()) return 0;  // http-parser takes 0 bytes as end of input
  if (error_status_ != 0) return Fail(error_status_, error_message_);
  http_parser& p = state_->parser;
  const size_t used =
      http_parser_execute(&p, &state_->settings, bytes.data(), bytes.size());
  const http_errno error = HTTP_PARSER_ERRNO(&p);
  if (error == HPE_PAUSED || (error == HPE_OK && complete_)) return used;
  if (error == HPE_OK) return used;
  if (error_status_ != 0) return Fail(error_status_, error_message_);
  if (error == HPE_HEADER_OVERFLOW) {
    return Fail(431, "request header block is too large");
  }
  return Fail(400, absl::StrCat("malformed HTTP request: ",
                                http_errno_description(error)));
}

void RequestParser::Next() {
  request_ = HttpRequest();
  started_ = false;
  complete_ = false;
  header_bytes_ = 0;
  last_was_value_ = false;
  http_parser_pause(&state_->parser, 0);
}

const std::string* HttpRequest::Header(absl::string_view lowercase_name) const {
  for (const HttpHeader& h : headers) {
    if (h.name == lowercase_name) return &h.value;
  }
  return nullptr;
}

bool PercentDecode(absl::string_view text, bool plus_is_space,
                   std::string& out) {
  out.clear();
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= text.size()) return false;
      const char hi = text[i + 1];
      const char lo = text[i + 2];
      if (!absl::ascii_isxdigit(hi) || !absl::ascii_isxdigit(lo)) return false;
      const auto value = [](char h) {
        return absl::ascii_isdigit(h) ? h - '0'
                                      : absl::ascii_tolower(h) - 'a' + 10;
      };
      out.push_back(static_cast<char>(value(hi) * 16 + value(lo)));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return true;
}

absl::string_view ReasonPhrase(int status) {
  switch (status) {
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

}  // namespace manifold::http
