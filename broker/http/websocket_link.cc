#include "broker/http/websocket_link.h"

#include <wslay/wslay.h>

#include <algorithm>
#include <cstring>

namespace manifold {

struct WebSocketLink::Callbacks {
  static WebSocketLink& Self(void* user_data) {
    return *static_cast<WebSocketLink*>(user_data);
  }
  static ssize_t Recv(wslay_event_context_ptr ctx, uint8_t* buf, size_t len,
                      int flags, void* user_data) {
    WebSocketLink& self = Self(user_data);
    // wslay asks for bytes only once it has used all it was given: where
    // that leaves it between messages, whole binary frames skip it.
    self.input_.remove_prefix(
        self.ReceiveWholeBinaryFrames(self.input_, *self.data_));
    if (self.input_.empty()) {
      wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
      return -1;
    }
    const size_t n = std::min(len, self.input_.size());
    std::memcpy(buf, self.input_.data(), n);
    self.input_.remove_prefix(n);
    self.fed_ += n;
    return static_cast<ssize_t>(n);
  }
  // Both contexts write into the OutboundBuffer in sink_, which takes
  // everything: wslay never holds a half-sent frame between calls, so frames
  // from the two contexts cannot interleave.
  static ssize_t EventSend(wslay_event_context_ptr ctx, const uint8_t* data,
                           size_t len, int flags, void* user_data) {
    return Append(Self(user_data), data, len);
  }
  static ssize_t FrameSend(const uint8_t* data, size_t len, int flags,
                           void* user_data) {
    return Append(Self(user_data), data, len);
  }
  static ssize_t Append(WebSocketLink& self, const uint8_t* data, size_t len) {
    if (self.sink_ != nullptr && len > 0) {
      self.sink_->Append(
          absl::string_view(reinterpret_cast<const char*>(data), len));
    }
    return static_cast<ssize_t>(len);
  }
  static ssize_t FrameRecv(uint8_t* buf, size_t len, int flags,
                           void* user_data) {
    return -1;  // the sending context never receives
  }
  static int GenMask(uint8_t* buf, size_t len, void* user_data) {
    std::memset(buf, 0, len);  // servers do not mask
    return 0;
  }
  static void OnFrameStart(wslay_event_context_ptr ctx,
                           const wslay_event_on_frame_recv_start_arg* arg,
                           void* user_data) {
    WebSocketLink& self = Self(user_data);
    // wslay has read the header: 2 bytes, the extended length, the mask.
    const uint64_t length = arg->payload_length;
    self.settled_ += 2 + (length < 126 ? 0 : length <= 0xffff ? 2 : 8) + 4;
    self.frame_left_ = length;
    self.frame_is_data_ = !wslay_is_ctrl_frame(arg->opcode);
    if (self.frame_is_data_) self.fragmented_ = arg->fin == 0;
    if (self.frame_is_data_ &&
        self.message_size_ + length > self.max_message_bytes_) {
      wslay_event_queue_close(ctx, WSLAY_CODE_MESSAGE_TOO_BIG, nullptr, 0);
      wslay_event_shutdown_read(ctx);
      self.frame_is_data_ = false;  // take none of it
    }
  }
  static void OnFrameChunk(wslay_event_context_ptr ctx,
                           const wslay_event_on_frame_recv_chunk_arg* arg,
                           void* user_data) {
    WebSocketLink& self = Self(user_data);
    self.settled_ += arg->data_length;
    self.frame_left_ -= std::min<uint64_t>(self.frame_left_, arg->data_length);
    if (!self.frame_is_data_ || wslay_event_get_read_enabled(ctx) == 0) {
      return;
    }
    self.message_size_ += arg->data_length;
    self.data_->append(reinterpret_cast<const char*>(arg->data),
                       arg->data_length);
  }
  static void OnMessage(wslay_event_context_ptr ctx,
                        const wslay_event_on_msg_recv_arg* arg,
                        void* user_data) {
    WebSocketLink& self = Self(user_data);
    const auto opcode = static_cast<Opcode>(arg->opcode);
    if (opcode == Opcode::kPong) {
      ++self.pongs_;
    } else if (opcode == Opcode::kText || opcode == Opcode::kBinary) {
      self.message_ends_.push_back(self.data_->size());
      self.message_size_ = 0;
    }
  }
};

WebSocketLink::WebSocketLink(size_t max_message_bytes)
    : max_message_bytes_(max_message_bytes) {
  wslay_event_callbacks callbacks = {};
  callbacks.recv_callback = &Callbacks::Recv;
  callbacks.send_callback = &Callbacks::EventSend;
  callbacks.on_msg_recv_callback = &Callbacks::OnMessage;
  callbacks.on_frame_recv_start_callback = &Callbacks::OnFrameStart;
  callbacks.on_frame_recv_chunk_callback = &Callbacks::OnFrameChunk;
  wslay_event_context_server_init(&events_, &callbacks, this);
  // Payloads go straight to the caller's string, once: wslay buffers only
  // control frames.
  wslay_event_config_set_no_buffering(events_, 1);
  wslay_event_config_set_max_recv_msg_length(events_, max_message_bytes);
  wslay_frame_callbacks frame_callbacks = {};
  frame_callbacks.send_callback = &Callbacks::FrameSend;
  frame_callbacks.recv_callback = &Callbacks::FrameRecv;
  frame_callbacks.genmask_callback = &Callbacks::GenMask;
  wslay_frame_context_init(&frames_, &frame_callbacks, this);
}

WebSocketLink::~WebSocketLink() {
  if (events_ != nullptr) wslay_event_context_free(events_);
  if (frames_ != nullptr) wslay_frame_context_free(frames_);
}

namespace {

// `n` bytes of `src` XOR the client's 4-byte `mask` (RFC 6455 5.3), the
// first byte at mask position 0, appended to `out`: eight bytes at a time,
// where wslay takes one.
void AppendUnmasked(const char* src, size_t n, const char mask[4],
                    std::string& out) {
  const size_t at = out.size();
  out.resize(at + n);
  char* dst = out.data() + at;
  char mask8[8];
  std::memcpy(mask8, mask, 4);
  std::memcpy(mask8 + 4, mask, 4);
  uint64_t m = 0;
  std::memcpy(&m, mask8, 8);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word = 0;
    std::memcpy(&word, src + i, 8);
    word ^= m;
    std::memcpy(dst + i, &word, 8);
  }
  for (; i < n; ++i) dst[i] = static_cast<char>(src[i] ^ mask[i % 4]);
}

}  // namespace

size_t WebSocketLink::ReceiveWholeBinaryFrames(absl::string_view bytes,
                                               std::string& data) {
  // Only where wslay holds nothing and is between messages: then a frame
  // it has not seen cannot change what it expects next.
  if (fed_ != settled_ || frame_left_ != 0 || fragmented_ ||
      message_size_ != 0 || closed()) {
    return 0;
  }
  size_t taken = 0;
  while (bytes.size() - taken >= 6) {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data() + taken);
    // FIN, no reserved bits, binary; masked, as a client must.
    if (p[0] != 0x82 || (p[1] & 0x80) == 0) break;
    uint64_t length = p[1] & 0x7f;
    size_t header = 2;
    if (length == 126) {
      header = 4;
      if (bytes.size() - taken < header + 4) break;
      length = (uint64_t{p[2]} << 8) | p[3];
      if (length < 126) break;  // not the shortest form: wslay's to refuse
    } else if (length == 127) {
      header = 10;
      if (bytes.size() - taken < header + 4) break;
      length = 0;
      for (int i = 2; i < 10; ++i) length = (length << 8) | p[i];
      if (length <= 0xffff || (length >> 63) != 0) break;  // likewise
    }
    // Too large for a message: wslay closes with 1009.
    if (length > max_message_bytes_) break;
    if (bytes.size() - taken < header + 4 + length) break;  // not whole
    AppendUnmasked(reinterpret_cast<const char*>(p + header + 4), length,
                   reinterpret_cast<const char*>(p + header), data);
    message_ends_.push_back(data.size());
    taken += header + 4 + length;
  }
  fed_ += taken;
  settled_ += taken;
  return taken;
}

void WebSocketLink::Receive(absl::string_view bytes, std::string& data) {
  if (bytes.empty() || closed()) return;
  input_ = bytes;
  data_ = &data;
  wslay_event_recv(events_);
  data_ = nullptr;
  input_ = absl::string_view();
}

bool WebSocketLink::has_output() const {
  return wslay_event_want_write(events_) != 0;
}

void WebSocketLink::Flush(OutboundBuffer& out) {
  if (out.frame_open()) EndMessage(out);
  sink_ = &out;
  while (wslay_event_want_write(events_)) {
    if (wslay_event_send(events_) != 0) break;
  }
  sink_ = nullptr;
}

void WebSocketLink::SendMessage(Opcode opcode,
                                absl::Span<const absl::string_view> parts,
                                OutboundBuffer& out) {
  Flush(out);  // control frames queued earlier go first
  uint64_t length = 0;
  for (absl::string_view p : parts) length += p.size();
  sink_ = &out;
  wslay_frame_iocb iocb = {};
  iocb.fin = 1;
  iocb.opcode = static_cast<uint8_t>(opcode);
  iocb.payload_length = length;
  iocb.mask = 0;
  if (length == 0) {
    iocb.data = nullptr;
    iocb.data_length = 0;
    wslay_frame_send(frames_, &iocb);
  }
  for (absl::string_view p : parts) {
    if (p.empty()) continue;
    iocb.data = reinterpret_cast<const uint8_t*>(p.data());
    iocb.data_length = p.size();
    // The sink takes everything, so each call sends the whole part.
    wslay_frame_send(frames_, &iocb);
  }
  sink_ = nullptr;
}

void WebSocketLink::BeginMessage(Opcode opcode, OutboundBuffer& out) {
  open_opcode_ = opcode;
  // An unmasked header: 2 bytes, and 8 more for the longest lengths.
  out.OpenFrame(10);
}

void WebSocketLink::EndMessage(OutboundBuffer& out) {
  const uint64_t length = out.open_frame_payload_size();
  if (length == 0) {
    out.CloseFrame("");
    return;
  }
  // RFC 6455 5.2, unmasked, final: written here rather than by wslay, which
  // would want the payload handed through it again, piece by piece.
  char header[10];
  size_t size = 2;
  header[0] = static_cast<char>(0x80 | static_cast<uint8_t>(open_opcode_));
  if (length < 126) {
    header[1] = static_cast<char>(length);
  } else if (length < 65536) {
    header[1] = 126;
    header[2] = static_cast<char>(length >> 8);
    header[3] = static_cast<char>(length & 0xff);
    size = 4;
  } else {
    header[1] = 127;
    for (int i = 0; i < 8; ++i) {
      header[2 + i] = static_cast<char>((length >> (56 - 8 * i)) & 0xff);
    }
    size = 10;
  }
  out.CloseFrame(absl::string_view(header, size));
}

void WebSocketLink::SendPing(absl::string_view payload, OutboundBuffer& out) {
  wslay_event_msg msg = {};
  msg.opcode = WSLAY_PING;
  msg.msg = reinterpret_cast<const uint8_t*>(payload.data());
  msg.msg_length = std::min<size_t>(payload.size(), 125);
  wslay_event_queue_msg(events_, &msg);
  Flush(out);
}

void WebSocketLink::Close(uint16_t code, absl::string_view reason,
                          OutboundBuffer& out) {
  if (!close_sent_ && wslay_event_get_close_sent(events_) == 0) {
    close_sent_ = true;
    wslay_event_queue_close(events_, code,
                            reinterpret_cast<const uint8_t*>(reason.data()),
                            std::min<size_t>(reason.size(), 123));
  }
  wslay_event_shutdown_read(events_);
  Flush(out);
}

bool WebSocketLink::closed() const {
  // wslay stops reading once it queues a close, its own or an answer.
  return wslay_event_get_read_enabled(events_) == 0;
}

bool WebSocketLink::close_received() const {
  return wslay_event_get_close_received(events_) != 0;
}

uint16_t WebSocketLink::close_code_sent() const {
  return wslay_event_get_status_code_sent(events_);
}

}  // namespace manifold
