// File: client/load/websocket_client.h
// -----------------------------------------------------------------------------
//
// The client end of a WebSocket for the load tool, so `manifold bench` can
// load a server's WebSocket listener (manifoldd's /nats and /ws, nats-server's
// websocket {}) with the same roles and checks as over TCP. Framing is
// wslay's (libwslay); this class does the opening handshake on a connected
// socket and turns the byte stream into frames and back:
//
//   - everything the tool sends in one flush goes out as one masked binary
//     message;
//   - data messages from the server are joined into one byte stream, as a
//     NATS client does (a NATS command may span messages); pings are
//     answered.
//
// Example:
//
//   absl::StatusOr<std::string> early = WebSocketHandshake(fd, "127.0.0.1",
//                                                         "/nats", "", dl);
//   WebSocketClient ws;
//   ws.Wrap(pending_bytes, wire_out);             // one masked frame
//   ws.Unwrap(read_bytes, stream, replies);        // payloads -> stream

#ifndef MANIFOLD_CLIENT_LOAD_WEBSOCKET_CLIENT_H_
#define MANIFOLD_CLIENT_LOAD_WEBSOCKET_CLIENT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

struct wslay_frame_context;

namespace manifold::load {

// Sends the opening handshake for `path` (with Sec-WebSocket-Protocol
// `protocol` unless empty) on the connected socket `fd` and reads the
// answer, waiting until `deadline`. Returns the bytes that came after the
// 101 answer (the server may speak first), or an error naming the status
// the server answered with.
absl::StatusOr<std::string> WebSocketHandshake(int fd, absl::string_view host,
                                               absl::string_view path,
                                               absl::string_view protocol,
                                               absl::Time deadline);

class WebSocketClient {
 public:
  WebSocketClient();
  ~WebSocketClient();
  WebSocketClient(const WebSocketClient&) = delete;
  WebSocketClient& operator=(const WebSocketClient&) = delete;

  // Appends `payload` to `out` as one masked binary message.
  void Wrap(absl::string_view payload, std::string& out);

  // Takes all of `raw` (bytes read from the server): appends the payloads of
  // data messages to `stream`, and the answers to pings to `replies`.
  // Returns UNAVAILABLE when the server sent a close frame, INVALID_ARGUMENT
  // for a frame that breaks the protocol.
  absl::Status Unwrap(absl::string_view raw, std::string& stream,
                      std::string& replies);

 private:
  struct Callbacks;
  wslay_frame_context* frames_ = nullptr;
  absl::string_view input_;
  std::string* sink_ = nullptr;
  uint32_t mask_state_ = 0x9e3779b9;
  // The control frame being received (pings are answered once whole).
  std::string control_payload_;
};

}  // namespace manifold::load

#endif  // MANIFOLD_CLIENT_LOAD_WEBSOCKET_CLIENT_H_
