// File: broker/http/websocket_link.h
// -----------------------------------------------------------------------------
//
// The server end of one WebSocket connection after the handshake, on top of
// wslay (libwslay), sans-IO: bytes go in with Receive(), whole messages come
// out; frames go out into an OutboundBuffer. wslay reassembles fragmented
// messages, unmasks them, checks text messages are UTF-8 (else it closes
// with 1007), refuses messages over the size limit (1009) and other
// violations (1002), answers pings with pongs and completes the closing
// handshake; this class only moves bytes between it and the broker.
//
// Example:
//
//   WebSocketLink link(/*max_message_bytes=*/1 << 20);
//   link.Receive(bytes);
//   while (link.has_message()) { Handle(link.front()); link.Pop(); }
//   link.Flush(out);                       // pongs, close replies
//   link.SendMessage(kBinary, {payload}, out);
//   if (link.closed()) { ... close_code() says why ... }

#ifndef MANIFOLD_BROKER_HTTP_WEBSOCKET_LINK_H_
#define MANIFOLD_BROKER_HTTP_WEBSOCKET_LINK_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

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
  struct Message {
    Opcode opcode;
    std::string data;
  };

  // `max_message_bytes` bounds one received message (after reassembly).
  explicit WebSocketLink(size_t max_message_bytes);
  ~WebSocketLink();
  WebSocketLink(const WebSocketLink&) = delete;
  WebSocketLink& operator=(const WebSocketLink&) = delete;

  // Takes all of `bytes` (a partial frame is kept until the rest arrives).
  // Complete data messages and pongs queue up for front()/Pop(); pings and
  // closes are answered through Flush().
  void Receive(absl::string_view bytes);

  bool has_message() const { return !messages_.empty(); }
  // REQUIRES: has_message().
  Message& front() { return messages_.front(); }
  void Pop() { messages_.pop_front(); }

  // True when frames wslay wrote itself (pongs, close replies) wait for
  // Flush().
  bool has_output() const;
  // Appends those frames to `out`.
  void Flush(OutboundBuffer& out);

  // Appends one unfragmented message made of `parts` (concatenated).
  void SendMessage(Opcode opcode, absl::Span<const absl::string_view> parts,
                   OutboundBuffer& out);
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
  // Received bytes wslay holds that are not yet part of a finished message
  // (a partial frame, or the frames of a fragmented message so far).
  size_t unsettled_bytes() const { return fed_ - settled_; }

  // The code of the close frame sent so far (1002, 1007, 1009, or the
  // peer's own code echoed); 1006 before one was flushed.
  uint16_t close_code_sent() const;

 private:
  struct Callbacks;

  wslay_event_context* events_ = nullptr;  // receiving, control frames
  wslay_frame_context* frames_ = nullptr;  // sending data messages
  std::deque<Message> messages_;
  absl::string_view input_;         // what Receive() is feeding
  OutboundBuffer* sink_ = nullptr;  // where frames go while sending
  // Byte accounting for unsettled_bytes(): everything wslay has read, and
  // the bytes of control frames and of data messages it has finished.
  size_t fed_ = 0;
  size_t settled_ = 0;
  size_t message_bytes_ = 0;  // frames of the data message in progress
  size_t frame_bytes_ = 0;    // the frame in progress, header included
  bool frame_is_control_ = false;
  bool frame_is_final_ = false;
  bool close_sent_ = false;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_HTTP_WEBSOCKET_LINK_H_
