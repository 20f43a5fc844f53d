#include "client/load/websocket_client.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef MANIFOLD_HAVE_WSLAY
#include <wslay/wslay.h>
#endif

#include <algorithm>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace manifold::load {

#ifdef MANIFOLD_HAVE_WSLAY

absl::StatusOr<std::string> WebSocketHandshake(int fd, absl::string_view host,
                                               absl::string_view path,
                                               absl::string_view protocol,
                                               absl::Time deadline) {
  std::string request =
      absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", host,
                   "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: ",
                   absl::Base64Escape("manifold-bench-1"),
                   "\r\nSec-WebSocket-Version: 13\r\n");
  if (!protocol.empty()) {
    absl::StrAppend(&request, "Sec-WebSocket-Protocol: ", protocol, "\r\n");
  }
  request += "\r\n";
  size_t sent = 0;
  std::string answer;
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat("no WebSocket handshake answer from ", host, path));
    }
    pollfd p{fd, static_cast<short>(sent < request.size() ? POLLOUT : POLLIN),
             0};
    if (::poll(&p, 1,
               static_cast<int>(std::max<int64_t>(
                   1, absl::ToInt64Milliseconds(left)))) <= 0) {
      continue;
    }
    if (sent < request.size()) {
      const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent,
                               MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        return absl::UnavailableError("WebSocket handshake: send failed");
      }
      if (n > 0) sent += static_cast<size_t>(n);
      continue;
    }
    char buffer[4096];
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n == 0) {
      return absl::UnavailableError(
          "WebSocket handshake: the server closed the connection");
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return absl::UnavailableError("WebSocket handshake: read failed");
    }
    answer.append(buffer, static_cast<size_t>(n));
    const size_t end = answer.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (answer.size() > 64 * 1024) {
        return absl::InvalidArgumentError(
            "WebSocket handshake answer too long");
      }
      continue;
    }
    if (!absl::StartsWith(answer, "HTTP/1.1 101")) {
      return absl::FailedPreconditionError(
          absl::StrCat("WebSocket handshake refused: ",
                       answer.substr(0, answer.find("\r\n"))));
    }
    return answer.substr(end + 4);
  }
}

struct WebSocketClient::Callbacks {
  static WebSocketClient& Self(void* user_data) {
    return *static_cast<WebSocketClient*>(user_data);
  }
  static ssize_t Send(const uint8_t* data, size_t len, int flags,
                      void* user_data) {
    Self(user_data).sink_->append(reinterpret_cast<const char*>(data), len);
    return static_cast<ssize_t>(len);
  }
  static int GenMask(uint8_t* buf, size_t len, void* user_data) {
    // Masks need not be secret in a benchmark on loopback; xorshift keeps
    // them varied without a random source.
    uint32_t& x = Self(user_data).mask_state_;
    for (size_t i = 0; i < len; ++i) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      buf[i] = static_cast<uint8_t>(x);
    }
    return 0;
  }
};

WebSocketClient::WebSocketClient() {
  wslay_frame_callbacks callbacks = {};
  callbacks.send_callback = &Callbacks::Send;
  callbacks.genmask_callback = &Callbacks::GenMask;
  wslay_frame_context_init(&frames_, &callbacks, this);
}

WebSocketClient::~WebSocketClient() { wslay_frame_context_free(frames_); }

void WebSocketClient::Wrap(absl::string_view payload, std::string& out) {
  sink_ = &out;
  wslay_frame_iocb iocb = {};
  iocb.fin = 1;
  iocb.opcode = WSLAY_BINARY_FRAME;
  iocb.mask = 1;
  iocb.payload_length = payload.size();
  iocb.data = reinterpret_cast<const uint8_t*>(payload.data());
  iocb.data_length = payload.size();
  // The sink takes everything; wslay masks in chunks, so loop until sent.
  while (true) {
    const ssize_t n = wslay_frame_send(frames_, &iocb);
    if (n < 0) break;
    iocb.data += n;
    iocb.data_length -= static_cast<size_t>(n);
    if (iocb.data_length == 0) break;
  }
  if (payload.empty()) wslay_frame_send(frames_, &iocb);
  sink_ = nullptr;
}

#else  // A build without wslay: Link::Open refuses WebSocket links.

absl::StatusOr<std::string> WebSocketHandshake(int, absl::string_view,
                                               absl::string_view,
                                               absl::string_view, absl::Time) {
  return absl::FailedPreconditionError("built without libwslay");
}
WebSocketClient::WebSocketClient() = default;
WebSocketClient::~WebSocketClient() = default;
void WebSocketClient::Wrap(absl::string_view, std::string&) {}

#endif  // MANIFOLD_HAVE_WSLAY

void WebSocketClient::AppendPong(absl::string_view payload, std::string& out) {
  // A client's frames are masked (xorshift, as for Wrap()); a pong's
  // payload is short (<= 125 bytes).
  uint8_t mask[4];
  for (uint8_t& m : mask) {
    pong_mask_state_ ^= pong_mask_state_ << 13;
    pong_mask_state_ ^= pong_mask_state_ >> 17;
    pong_mask_state_ ^= pong_mask_state_ << 5;
    m = static_cast<uint8_t>(pong_mask_state_);
  }
  out.push_back(static_cast<char>(0x8a));  // final pong
  out.push_back(static_cast<char>(0x80 | payload.size()));
  out.append(reinterpret_cast<const char*>(mask), sizeof(mask));
  for (size_t i = 0; i < payload.size(); ++i) {
    out.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  }
}

// Reading needs no wslay: a server's frames are unmasked, so taking them
// apart is reading a header and skipping it.
absl::StatusOr<size_t> WebSocketClient::Deframe(char* buffer, size_t& start,
                                                size_t& ready, size_t& end,
                                                std::string& replies) {
  while (ready < end) {
    if (payload_left_ > 0) {
      const size_t n =
          static_cast<size_t>(std::min<uint64_t>(payload_left_, end - ready));
      ready += n;
      payload_left_ -= n;
      return n;
    }
    const auto* h = reinterpret_cast<const uint8_t*>(buffer + ready);
    const size_t raw = end - ready;
    if (raw < 2) return 0;
    const bool fin = (h[0] & 0x80) != 0;
    const uint8_t opcode = h[0] & 0x0f;
    if ((h[0] & 0x70) != 0) {
      return absl::InvalidArgumentError(
          "the server sent a WebSocket frame with reserved bits set");
    }
    if ((h[1] & 0x80) != 0) {
      return absl::InvalidArgumentError(
          "the server sent a masked WebSocket frame");
    }
    uint64_t length = h[1] & 0x7f;
    size_t header = 2;
    if (length == 126) {
      header = 4;
      if (raw < header) return 0;
      length = (uint64_t{h[2]} << 8) | h[3];
    } else if (length == 127) {
      header = 10;
      if (raw < header) return 0;
      length = 0;
      for (int i = 2; i < 10; ++i) length = (length << 8) | h[i];
      if (length >> 63) {
        return absl::InvalidArgumentError(
            "the server sent a WebSocket frame longer than 2^63 bytes");
      }
    }
    size_t skip = header;
    switch (opcode) {
      case 0x0:  // continuation
        if (!in_message_) {
          return absl::InvalidArgumentError(
              "the server sent a WebSocket continuation outside a message");
        }
        in_message_ = !fin;
        payload_left_ = length;
        break;
      case 0x1:  // text
      case 0x2:  // binary
        if (in_message_) {
          return absl::InvalidArgumentError(
              "the server began a WebSocket message inside another");
        }
        in_message_ = !fin;
        payload_left_ = length;
        break;
      case 0x8:  // close
      case 0x9:  // ping
      case 0xa:  // pong
        if (!fin || length > 125) {
          return absl::InvalidArgumentError(
              "the server sent a fragmented or long WebSocket control frame");
        }
        if (raw < header + length) return 0;
        if (opcode == 0x8) {
          return absl::UnavailableError("the server closed the WebSocket");
        }
        if (opcode == 0x9) {
          AppendPong(absl::string_view(buffer + ready + header,
                                       static_cast<size_t>(length)),
                     replies);
        }
        skip += static_cast<size_t>(length);
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("the server sent a WebSocket frame with opcode ",
                         static_cast<int>(opcode)));
    }
    // Close the gap by moving the shorter side: the unconsumed stream in
    // front of it (usually part of one small message) or the raw bytes
    // after it (when a large message spans frames).
    if (ready - start <= end - ready - skip) {
      std::memmove(buffer + start + skip, buffer + start, ready - start);
      start += skip;
      ready += skip;
    } else {
      std::memmove(buffer + ready, buffer + ready + skip, end - ready - skip);
      end -= skip;
    }
  }
  return 0;
}

}  // namespace manifold::load
