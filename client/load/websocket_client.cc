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
  static ssize_t Recv(uint8_t* buf, size_t len, int flags, void* user_data) {
    WebSocketClient& self = Self(user_data);
    if (self.input_.empty()) return -1;  // wslay then says WANT_READ
    const size_t n = std::min(len, self.input_.size());
    std::memcpy(buf, self.input_.data(), n);
    self.input_.remove_prefix(n);
    return static_cast<ssize_t>(n);
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
  callbacks.recv_callback = &Callbacks::Recv;
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

absl::Status WebSocketClient::Unwrap(absl::string_view raw, std::string& stream,
                                     std::string& replies) {
  input_ = raw;
  while (true) {
    wslay_frame_iocb iocb = {};
    const ssize_t n = wslay_frame_recv(frames_, &iocb);
    if (n == WSLAY_ERR_WANT_READ) break;
    if (n < 0) {
      return absl::InvalidArgumentError(
          "the server sent a bad WebSocket frame");
    }
    const absl::string_view data(reinterpret_cast<const char*>(iocb.data),
                                 iocb.data_length);
    if (!wslay_is_ctrl_frame(iocb.opcode)) {
      stream.append(data.data(), data.size());
      continue;
    }
    control_payload_.append(data.data(), data.size());
    if (control_payload_.size() < iocb.payload_length) continue;
    if (iocb.opcode == WSLAY_CONNECTION_CLOSE) {
      return absl::UnavailableError("the server closed the WebSocket");
    }
    if (iocb.opcode == WSLAY_PING) {
      sink_ = &replies;
      wslay_frame_iocb pong = {};
      pong.fin = 1;
      pong.opcode = WSLAY_PONG;
      pong.mask = 1;
      pong.payload_length = control_payload_.size();
      pong.data = reinterpret_cast<const uint8_t*>(control_payload_.data());
      pong.data_length = control_payload_.size();
      wslay_frame_send(frames_, &pong);
      sink_ = nullptr;
    }
    control_payload_.clear();
  }
  input_ = absl::string_view();
  return absl::OkStatus();
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
absl::Status WebSocketClient::Unwrap(absl::string_view, std::string&,
                                     std::string&) {
  return absl::FailedPreconditionError("built without libwslay");
}

#endif  // MANIFOLD_HAVE_WSLAY

}  // namespace manifold::load
