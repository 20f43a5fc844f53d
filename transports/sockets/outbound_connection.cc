#include "transports/sockets/outbound_connection.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "transports/sockets/socket_io.h"

namespace manifold {
namespace {

constexpr size_t kReadPiece = 64 * 1024;
// Input handed to the handler per loop iteration: the rule the Broker's own
// links follow (BrokerDriver::kReadBudgetBytes), so a busy server cannot
// hold the loop.
constexpr size_t kReadBudget = 256 * 1024;

}  // namespace

absl::StatusOr<std::unique_ptr<OutboundConnection>> OutboundConnection::Connect(
    SocketServer& server, const SocketAddress& address,
    OutboundHandler& handler) {
  UniqueFd fd(
      ::socket(address.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  if (address.family != AF_UNIX) {
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  std::unique_ptr<OutboundConnection> connection(
      new OutboundConnection(server, handler, std::move(fd)));
  connection->read_buffer_.reset(new char[kReadPiece]);
  if (::connect(connection->fd_.get(), address.get(), address.length) != 0 &&
      errno != EINPROGRESS && errno != EAGAIN) {
    // Refused at once (a local port nobody listens on may say so here):
    // reported from the loop through OnClosed, like a refusal that comes
    // later, never from inside Connect().
    connection->connect_error_ = errno;
  }
  // Writable means the connect is over, either way (SO_ERROR tells).
  absl::StatusOr<WatchId> watch = server.Watch(
      connection->fd_.get(), /*read=*/false, /*write=*/true, *connection);
  if (!watch.ok()) return watch.status();
  connection->watch_ = *watch;
  return connection;
}

OutboundConnection::~OutboundConnection() { Close(); }

void OutboundConnection::Close() {
  if (watch_) {
    server_.Unwatch(*watch_);
    watch_.reset();
  }
  fd_.reset();
  state_ = State::kClosed;
}

void OutboundConnection::Fail(absl::Status why) {
  if (state_ == State::kClosed) return;
  Close();
  handler_.OnClosed(std::move(why));
}

void OutboundConnection::OnReady(bool readable, bool writable) {
  if (state_ == State::kConnecting) {
    if (writable || readable) FinishConnect();
    return;
  }
  if (state_ != State::kConnected) return;
  if (writable) {
    blocked_ = false;
    Flush();
  }
  if (readable && state_ == State::kConnected) ReadAvailable();
}

void OutboundConnection::FinishConnect() {
  int error = connect_error_;
  socklen_t length = sizeof(error);
  if (error == 0 &&
      ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
    error = errno;
  }
  if (error == 0) {
    // Ready without an error but not connected (a hang-up): refused.
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof(peer);
    if (::getpeername(fd_.get(), reinterpret_cast<sockaddr*>(&peer),
                      &peer_length) != 0) {
      error = errno == ENOTCONN ? ECONNREFUSED : errno;
    }
  }
  if (error != 0) {
    Fail(ErrnoStatus(error, "connect"));
    return;
  }
  state_ = State::kConnected;
  UpdateInterest();
  handler_.OnConnected();
  Flush();
}

void OutboundConnection::ReadAvailable() {
  size_t budget = kReadBudget;
  while (state_ == State::kConnected && budget > 0) {
    const ReadResult read =
        ReadSome(fd_.get(), absl::MakeSpan(read_buffer_.get(), kReadPiece));
    switch (read.kind) {
      case ReadResult::kData: {
        budget -= std::min(budget, read.bytes);
        absl::Status s =
            handler_.OnBytes(absl::string_view(read_buffer_.get(), read.bytes));
        if (!s.ok()) {
          Fail(std::move(s));
          return;
        }
        if (read.bytes < kReadPiece) return;  // drained for now
        break;
      }
      case ReadResult::kWouldBlock:
        return;
      case ReadResult::kEnd:
        Fail(absl::UnavailableError("closed by the peer"));
        return;
      case ReadResult::kError:
        Fail(read.error);
        return;
    }
  }
}

void OutboundConnection::Flush() {
  if (state_ != State::kConnected || blocked_) return;
  while (true) {
    const absl::string_view pending = handler_.PendingOutput();
    if (pending.empty()) break;
    absl::StatusOr<size_t> written = WriteSome(fd_.get(), {&pending, 1});
    if (!written.ok()) {
      Fail(written.status());
      return;
    }
    if (*written == 0) {
      blocked_ = true;
      break;
    }
    handler_.Consume(*written);
    if (*written < pending.size()) {
      blocked_ = true;
      break;
    }
  }
  UpdateInterest();
}

void OutboundConnection::UpdateInterest() {
  if (!watch_) return;
  // Reading always; writing only while output waits for room.
  const bool want_write = state_ == State::kConnecting || blocked_;
  server_.UpdateWatch(*watch_, /*read=*/state_ == State::kConnected,
                      want_write);
}

}  // namespace manifold
