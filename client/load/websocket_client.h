// File: client/load/websocket_client.h
// -----------------------------------------------------------------------------
//
// The client end of a WebSocket for the load tool, so `manifold bench` can
// load a server's WebSocket listener (manifoldd's /nats and /ws, nats-server's
// websocket {}) with the same roles and checks as over TCP. Framing is
// wslay's (libwslay) on the way out; this class does the opening handshake
// on a connected socket and turns the byte stream into frames and back:
//
//   - everything the tool sends in one flush goes out as one masked binary
//     message;
//   - data messages from the server are joined into one byte stream, as a
//     NATS client does (a NATS command may span messages); pings are
//     answered. The framing is taken out of the caller's input buffer in
//     place (Deframe()), so payload bytes are not copied again: a frame
//     header is removed by moving the stream bytes in front of it, which are
//     at most a part of one message when the caller parses before it
//     deframes more (or the raw bytes behind it, when they are fewer).
//
// Example:
//
//   absl::StatusOr<std::string> early = WebSocketHandshake(fd, "127.0.0.1",
//                                                         "/nats", "", dl);
//   WebSocketClient ws;
//   ws.Wrap(pending_bytes, wire_out);              // one masked frame
//   // buffer[start, ready): stream bytes; buffer[ready, end): raw input
//   absl::StatusOr<size_t> more =
//       ws.Deframe(buffer, start, ready, end, replies);

#ifndef MANIFOLD_CLIENT_LOAD_WEBSOCKET_CLIENT_H_
#define MANIFOLD_CLIENT_LOAD_WEBSOCKET_CLIENT_H_

#include <cstddef>
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

  // Makes more of the server's stream ready, in place. `buffer[start,
  // ready)` holds stream bytes (data payloads, framing removed) not yet
  // consumed and `buffer[ready, end)` raw bytes from the server not yet
  // looked at. Takes frame headers and whole control frames out of the raw
  // bytes, closing each gap by moving the shorter side: `buffer[start,
  // ready)` up (start and ready grow by the gap) or the raw bytes after it
  // down (end shrinks by it), until payload bytes follow: `ready` then grows
  // by as many as are there. Answers pings by appending pongs to `replies`.
  // Returns the stream bytes that became ready; 0 when the raw bytes end in
  // a partial frame header or control frame (or there are none), which
  // then stay where they are. Returns UNAVAILABLE when the server sent a
  // close frame, INVALID_ARGUMENT for a frame that breaks the protocol
  // (masked, reserved bits or opcodes, a bad control frame or
  // continuation).
  // REQUIRES: start <= ready <= end. Between calls the caller consumes
  // stream bytes from `start` and appends raw bytes at `end`; it may move
  // `buffer[start, end)` as a whole, shifting all three offsets alike.
  absl::StatusOr<size_t> Deframe(char* buffer, size_t& start, size_t& ready,
                                 size_t& end, std::string& replies);

 private:
  struct Callbacks;
  // Appends a masked pong carrying `payload` (at most 125 bytes) to `out`.
  void AppendPong(absl::string_view payload, std::string& out);

  wslay_frame_context* frames_ = nullptr;
  std::string* sink_ = nullptr;
  uint32_t mask_state_ = 0x9e3779b9;
  uint32_t pong_mask_state_ = 0x2545f491;
  // Payload bytes of the current data frame still to come.
  uint64_t payload_left_ = 0;
  // A data message was begun without its final frame: continuations come.
  bool in_message_ = false;
};

}  // namespace manifold::load

#endif  // MANIFOLD_CLIENT_LOAD_WEBSOCKET_CLIENT_H_
