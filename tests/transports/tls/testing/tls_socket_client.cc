#include "tests/transports/tls/testing/tls_socket_client.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "transports/sockets/socket_io.h"

namespace manifold::testing {

absl::StatusOr<TlsSocketClient> TlsSocketClient::Connect(
    const Endpoint& endpoint, std::shared_ptr<const TlsClientContext> context) {
  absl::StatusOr<UniqueFd> fd = ConnectStream(endpoint);
  if (!fd.ok()) return fd.status();
  return TlsSocketClient(*std::move(fd),
                         TlsSession::ForClient(std::move(context)));
}

TlsSocketClient::TlsSocketClient(UniqueFd fd,
                                 std::unique_ptr<TlsSession> session)
    : fd_(std::move(fd)), session_(std::move(session)) {}

absl::Status TlsSocketClient::ReadOnce(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError("nothing arrived in time");
  }
  pollfd p{fd_.get(), POLLIN, 0};
  const int ready = ::poll(&p, 1, absl::ToInt64Milliseconds(left) + 1);
  if (ready == 0) return absl::DeadlineExceededError("nothing arrived in time");
  if (ready < 0) return ErrnoStatus(errno, "poll");
  char buffer[16 * 1024];
  const ssize_t n = ::recv(fd_.get(), buffer, sizeof(buffer), 0);
  if (n == 0) return absl::UnavailableError("the server closed the connection");
  if (n < 0) {
    if (errno == ECONNRESET) {
      return absl::UnavailableError("the server reset the connection");
    }
    return ErrnoStatus(errno, "recv");
  }
  const absl::string_view bytes(buffer, static_cast<size_t>(n));
  if (!started_) {
    clear_.append(bytes.data(), bytes.size());
    return absl::OkStatus();
  }
  absl::Status fed = session_->Feed(bytes, &plain_);
  absl::Status flushed = Flush();  // an alert, or the handshake's next step
  if (!fed.ok()) return fed;
  return flushed;
}

absl::Status TlsSocketClient::Flush() {
  while (!session_->PendingCiphertext().empty()) {
    const absl::string_view out = session_->PendingCiphertext();
    const ssize_t n = ::send(fd_.get(), out.data(), out.size(), MSG_NOSIGNAL);
    if (n < 0) return ErrnoStatus(errno, "send");
    session_->ConsumeCiphertext(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> TlsSocketClient::ReadClearLine(
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (clear_.find("\r\n") == std::string::npos) {
    if (absl::Status s = ReadOnce(deadline); !s.ok()) return s;
  }
  const size_t end = clear_.find("\r\n") + 2;
  std::string line = clear_.substr(0, end);
  clear_.erase(0, end);
  return line;
}

absl::Status TlsSocketClient::Handshake(absl::Duration timeout) {
  started_ = true;
  if (!clear_.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("unread clear bytes before the handshake: ", clear_));
  }
  if (absl::Status s = Flush(); !s.ok()) return s;  // the ClientHello
  const absl::Time deadline = absl::Now() + timeout;
  while (!session_->handshake_done()) {
    if (absl::Status s = ReadOnce(deadline); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status TlsSocketClient::Send(absl::string_view plaintext) {
  while (!plaintext.empty()) {
    const size_t taken = session_->Write(plaintext);
    if (taken == 0) {
      return session_->failed() ? session_->failure()
                                : absl::FailedPreconditionError(
                                      "the TLS session takes no data");
    }
    plaintext.remove_prefix(taken);
    if (absl::Status s = Flush(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> TlsSocketClient::ReadAtLeast(
    size_t n, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (plain_.size() < n) {
    if (absl::Status s = ReadOnce(deadline); !s.ok()) return s;
  }
  return std::exchange(plain_, std::string());
}

absl::Status TlsSocketClient::WaitForClose(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::Status s = ReadOnce(deadline);
    if (absl::IsUnavailable(s)) return absl::OkStatus();
    if (absl::IsDeadlineExceeded(s)) return s;
    // Other failures (an alert) come before the close: keep reading.
  }
}

}  // namespace manifold::testing
