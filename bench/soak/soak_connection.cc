#include "bench/soak/soak_connection.h"

#include <errno.h>
#include <sys/socket.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "transports/sockets/socket_io.h"

namespace manifold::soak {

absl::StatusOr<std::unique_ptr<SoakConnection>> SoakConnection::Start(
    const SocketAddress& address) {
  UniqueFd fd(
      ::socket(address.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  std::unique_ptr<SoakConnection> c(new SoakConnection(std::move(fd)));
  if (::connect(c->fd(), address.get(), address.length) == 0) {
    c->connected_ = true;
  } else if (errno != EINPROGRESS) {
    return ErrnoStatus(errno, "connect");
  }
  return c;
}

SoakConnection::SoakConnection(UniqueFd fd)
    : fd_(std::move(fd)),
      decoder_(FrameDecoder::Options{.max_frame_bytes = 2 << 20}) {}

absl::Status SoakConnection::FinishConnect() {
  if (connected_) return absl::OkStatus();
  int error = 0;
  socklen_t length = sizeof(error);
  if (::getsockopt(fd(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
    return ErrnoStatus(errno, "getsockopt(SO_ERROR)");
  }
  if (error != 0) return ErrnoStatus(error, "connect");
  connected_ = true;
  return absl::OkStatus();
}

absl::Status SoakConnection::Queue(const wire::ClientMessage& message) {
  return QueueRaw(EncodeFrame(message));
}

absl::Status SoakConnection::QueueRaw(absl::string_view bytes) {
  if (output_.size() - output_sent_ + bytes.size() > kMaxQueuedBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(output_.size() - output_sent_,
                     " bytes are waiting: the broker is not reading"));
  }
  output_.append(bytes.data(), bytes.size());
  return absl::OkStatus();
}

absl::Status SoakConnection::Flush() {
  while (connected_ && output_sent_ < output_.size()) {
    const absl::string_view rest =
        absl::string_view(output_).substr(output_sent_);
    absl::StatusOr<size_t> written = WriteSome(fd(), {&rest, 1});
    if (!written.ok()) return written.status();
    if (*written == 0) break;  // the socket is full; epoll says when not
    output_sent_ += *written;
  }
  if (output_sent_ == output_.size()) {
    output_.clear();
    output_sent_ = 0;
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> SoakConnection::Read(
    std::vector<wire::ServerMessage>& out) {
  char buffer[64 * 1024];
  bool open = true;
  while (open) {
    const ReadResult r = ReadSome(fd(), absl::MakeSpan(buffer));
    if (r.kind == ReadResult::kWouldBlock) break;
    if (r.kind == ReadResult::kData) {
      decoder_.Append(absl::string_view(buffer, r.bytes));
    } else {
      open = false;  // end of stream, or a reset after the last bytes
    }
    wire::ServerMessage message;
    while (true) {
      absl::StatusOr<bool> got = decoder_.Next(message);
      if (!got.ok()) return got.status();
      if (!*got) break;
      out.push_back(std::move(message));
    }
  }
  return open;
}

void SoakConnection::Reset() {
  const linger abort{1, 0};
  ::setsockopt(fd(), SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
  fd_.reset();
}

void SoakConnection::ShutdownWrite() { ::shutdown(fd(), SHUT_WR); }

}  // namespace manifold::soak
