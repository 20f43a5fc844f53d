// File: broker/http/websocket_link.h
// -----------------------------------------------------------------------------
//
// The server end of one WebSocket connection after the handshake, on top of
// wslay (libwslay), sans-IO: bytes go in with Receive(), the payloads of data
// messages come out appended to a caller's string as they arrive (one copy,
// unmasked), with the offsets where messages end; frames go out into an
// OutboundBuffer. wslay parses and unmasks frames, checks text messages are
// UTF-8 (else it closes with 1007), refuses other violations (1002),
// answers pings with pongs and completes the closing handshake; this class
// bounds message size (1009) and moves bytes between wslay and the broker.
//
// A message can also be written payload first: BeginMessage() opens a frame
// in the OutboundBuffer (OutboundBuffer::OpenFrame), the caller appends the
// payload there directly, and EndMessage() writes the header in front of
// it. So the output of a whole turn can become one message with no
// copy, as nats-server writes everything pending for a client in one frame.
//
// Example:
//
//   WebSocketLink link(/*max_message_bytes=*/1 << 20);
//   link.Receive(bytes, stream);          // payloads appended to `stream`
//   for (size_t end : link.message_ends()) ...; link.clear_message_ends();
//   link.Flush(out);                       // pongs, close replies
//   link.SendMessage(kBinary, {payload}, out);
//   link.BeginMessage(kBinary, out);
//   out.Append("MSG a 1 2\r\nhi\r\n"); out.Append("PONG\r\n");
//   link.EndMessage(out);                  // one message with both
//   if (link.closed()) { ... close_code_sent() says why ... }

#ifndef MANIFOLD_BROKER_HTTP_WEBSOCKET_LINK_H_
#define MANIFOLD_BROKER_HTTP_WEBSOCKET_LINK_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "broker/outbound_buffer.h"

struct wslay_event_context;
struct wslay_frame_context;

namespace manifold {

class WebSocketLink {
 public:
  enum class Opcode : uint8_t {
    kText = 0x1,
    kBinary = 0x2,
    kClose = 0x8,
    kPing = 0x9,
    kPong = 0xa,
  };

  // `max_message_bytes` bounds one received message (after reassembly).
  explicit WebSocketLink(size_t max_message_bytes);
  ~WebSocketLink();
  WebSocketLink(const WebSocketLink&) = delete;
  WebSocketLink& operator=(const WebSocketLink&) = delete;

  // Takes all of `bytes` (a partial frame is kept until the rest arrives).
  // Data payloads are appended to `data` as they arrive; each time a data
  // message ends, data.size() is added to message_ends(). Pongs are counted;
  // pings and closes are answered through Flush().
  void Receive(absl::string_view bytes, std::string& data);

  // Where in `data` each data message received so far ended.
  const std::vector<size_t>& message_ends() const { return message_ends_; }
  void clear_message_ends() { message_ends_.clear(); }
  // Pongs received since the last call.
  size_t TakePongs() {
    const size_t n = pongs_;
    pongs_ = 0;
    return n;
  }

  // True when frames wslay wrote itself (pongs, close replies) wait for
  // Flush().
  bool has_output() const;
  // Appends those frames to `out`.
  void Flush(OutboundBuffer& out);

  // Every call below that writes frames to `out` first ends a message
  // BeginMessage() left open there, so frames never interleave.

  // Appends one unfragmented message made of `parts` (concatenated).
  void SendMessage(Opcode opcode, absl::Span<const absl::string_view> parts,
                   OutboundBuffer& out);
  // Opens a data message in `out`: what is appended to `out` until
  // EndMessage() is its payload. REQUIRES: opcode is kText or kBinary;
  // !out.frame_open(). For kText the caller appends UTF-8 only.
  void BeginMessage(Opcode opcode, OutboundBuffer& out);
  // Ends the message BeginMessage() opened in `out`: writes its header. A
  // message with an empty payload is dropped instead (there was nothing to
  // say). REQUIRES: out.frame_open() from BeginMessage().
  void EndMessage(OutboundBuffer& out);
  // Appends a ping with `payload` (at most 125 bytes).
  void SendPing(absl::string_view payload, OutboundBuffer& out);
  // Starts the closing handshake with `code` and `reason` (at most 123
  // bytes); nothing is received after it. Appends the close frame to `out`.
  void Close(uint16_t code, absl::string_view reason, OutboundBuffer& out);

  // True once no more messages will come: the peer closed, or wslay found a
  // violation and queued a close (see close_code_sent()).
  bool closed() const;
  // True when the peer sent a close frame.
  bool close_received() const;
  // Received bytes wslay holds and has not handed on: a partial frame
  // header, a control frame's payload so far, bytes read ahead.
  size_t unsettled_bytes() const { return fed_ - settled_; }

  // The code of the close frame sent so far (1002, 1007, 1009, or the
  // peer's own code echoed); 1006 before one was flushed.
  uint16_t close_code_sent() const;

 private:
  struct Callbacks;

  // The common case without wslay: whole, final, masked binary frames at
  // the front of `bytes`, while wslay is between messages, unmasked
  // straight into `data`. Returns the bytes taken; the rest (control
  // frames, text, fragments, partial or faulty frames) goes to wslay.
  size_t ReceiveWholeBinaryFrames(absl::string_view bytes, std::string& data);

  wslay_event_context* events_ = nullptr;  // receiving, control frames
  wslay_frame_context* frames_ = nullptr;  // sending data messages
  const size_t max_message_bytes_;
  absl::string_view input_;      // what Receive() is feeding
  std::string* data_ = nullptr;  // where Receive() puts payloads
  std::vector<size_t> message_ends_;
  size_t pongs_ = 0;
  size_t message_size_ = 0;               // the data message in progress
  OutboundBuffer* sink_ = nullptr;        // where frames go while sending
  Opcode open_opcode_ = Opcode::kBinary;  // of BeginMessage()'s message
  // Byte accounting for unsettled_bytes(): everything wslay has read, and
  // what of it has been handed on (frame headers, payloads).
  size_t fed_ = 0;
  size_t settled_ = 0;
  bool frame_is_data_ = false;
  bool close_sent_ = false;
  // What wslay expects: the rest of a frame's payload, the rest of a
  // fragmented data message (ReceiveWholeBinaryFrames() steps aside then).
  uint64_t frame_left_ = 0;
  bool fragmented_ = false;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_HTTP_WEBSOCKET_LINK_H_
