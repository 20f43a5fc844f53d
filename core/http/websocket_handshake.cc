#include "core/http/websocket_handshake.h"

#include <openssl/sha.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace manifold::http {
namespace {

constexpr absl::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// True when the comma-separated header `value` has the token `token`,
// compared without case.
bool HasToken(const std::string* value, absl::string_view token) {
  if (value == nullptr) return false;
  for (absl::string_view part : absl::StrSplit(*value, ',')) {
    if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(part), token)) {
      return true;
    }
  }
  return false;
}

}  // namespace

bool UpgradeRequest::Offers(absl::string_view protocol) const {
  for (const std::string& p : protocols) {
    if (p == protocol) return true;
  }
  return false;
}

absl::StatusOr<UpgradeRequest> ParseUpgradeRequest(const HttpRequest& request) {
  if (request.method != "GET") {
    return absl::InvalidArgumentError(absl::StrCat(
        "a WebSocket handshake must be a GET, not ", request.method));
  }
  if (request.http_minor < 1) {
    return absl::InvalidArgumentError(
        "a WebSocket handshake needs HTTP/1.1 or later");
  }
  if (!HasToken(request.Header("upgrade"), "websocket")) {
    return absl::InvalidArgumentError(
        "not a WebSocket handshake: no 'Upgrade: websocket' header");
  }
  if (!HasToken(request.Header("connection"), "upgrade")) {
    return absl::InvalidArgumentError(
        "not a WebSocket handshake: no 'Connection: Upgrade' header");
  }
  const std::string* version = request.Header("sec-websocket-version");
  if (version == nullptr ||
      absl::StripAsciiWhitespace(*version) != absl::string_view("13")) {
    return absl::FailedPreconditionError(
        absl::StrCat("WebSocket version '", version == nullptr ? "" : *version,
                     "' is not supported; this server speaks version 13"));
  }
  const std::string* key = request.Header("sec-websocket-key");
  std::string decoded;
  if (key == nullptr ||
      !absl::Base64Unescape(absl::StripAsciiWhitespace(*key), &decoded) ||
      decoded.size() != 16) {
    return absl::InvalidArgumentError(
        "Sec-WebSocket-Key must be 16 bytes in base64");
  }
  UpgradeRequest upgrade;
  upgrade.key = std::string(absl::StripAsciiWhitespace(*key));
  for (const HttpHeader& h : request.headers) {
    if (h.name != "sec-websocket-protocol") continue;
    for (absl::string_view p : absl::StrSplit(h.value, ',')) {
      p = absl::StripAsciiWhitespace(p);
      if (!p.empty()) upgrade.protocols.emplace_back(p);
    }
  }
  return upgrade;
}

std::string WebSocketAccept(absl::string_view key) {
  const std::string input = absl::StrCat(key, kGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(),
       digest);
  return absl::Base64Escape(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

void AppendSwitchingProtocols(absl::string_view key, absl::string_view protocol,
                              std::string& out) {
  absl::StrAppend(&out,
                  "HTTP/1.1 101 Switching Protocols\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Accept: ",
                  WebSocketAccept(key), "\r\n");
  if (!protocol.empty()) {
    absl::StrAppend(&out, "Sec-WebSocket-Protocol: ", protocol, "\r\n");
  }
  out += "\r\n";
}

}  // namespace manifold::http
