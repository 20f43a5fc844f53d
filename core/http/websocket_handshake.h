// File: core/http/websocket_handshake.h
// -----------------------------------------------------------------------------
//
// The server side of the WebSocket opening handshake (RFC 6455 section 4.2):
// checks that a request asks for a WebSocket properly, picks a subprotocol,
// and writes the "101 Switching Protocols" answer with its
// Sec-WebSocket-Accept.
//
// Example:
//
//   absl::StatusOr<UpgradeRequest> upgrade = ParseUpgradeRequest(request);
//   if (!upgrade.ok()) { /* 400 (or 426 for a wrong version) */ }
//   if (upgrade->Offers("manifold.v1")) ...
//   std::string out;
//   AppendSwitchingProtocols(upgrade->key, "manifold.v1", out);

#ifndef MANIFOLD_CORE_HTTP_WEBSOCKET_HANDSHAKE_H_
#define MANIFOLD_CORE_HTTP_WEBSOCKET_HANDSHAKE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/http/request_parser.h"

namespace manifold::http {

struct UpgradeRequest {
  // Sec-WebSocket-Key, as sent.
  std::string key;
  // Sec-WebSocket-Protocol's entries, in the client's order of preference.
  std::vector<std::string> protocols;

  bool Offers(absl::string_view protocol) const;
};

// Checks `request` as a WebSocket opening handshake: GET, HTTP/1.1,
// "Upgrade: websocket", "Connection: upgrade", a Sec-WebSocket-Key of 16
// base64-encoded bytes, Sec-WebSocket-Version 13. Returns what the answer
// needs, or INVALID_ARGUMENT naming what is wrong (FAILED_PRECONDITION for a
// version other than 13, which is answered 426 with the version we speak).
absl::StatusOr<UpgradeRequest> ParseUpgradeRequest(const HttpRequest& request);

// Sec-WebSocket-Accept for `key`: base64(SHA-1(key + the RFC's GUID)).
std::string WebSocketAccept(absl::string_view key);

// Appends the 101 answer; `protocol` empty means no Sec-WebSocket-Protocol.
void AppendSwitchingProtocols(absl::string_view key, absl::string_view protocol,
                              std::string& out);

}  // namespace manifold::http

#endif  // MANIFOLD_CORE_HTTP_WEBSOCKET_HANDSHAKE_H_
