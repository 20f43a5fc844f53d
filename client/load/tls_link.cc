#include "client/load/tls_link.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "transports/sockets/socket_io.h"
#ifdef MANIFOLD_HAVE_TLS
#include "transports/tls/tls_context.h"
#include "transports/tls/tls_session.h"
#endif

namespace manifold::load {

#ifdef MANIFOLD_HAVE_TLS

namespace {

// What one handshake read takes: a server's whole first flight fits.
constexpr size_t kHandshakeRead = 16 * 1024;

// Waits until `fd` is ready for `events` or `deadline` passes.
absl::Status WaitFor(int fd, short events, absl::Time deadline) {
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          "the server did not answer the TLS handshake in time (is TLS on at "
          "this port?)");
    }
    pollfd p{fd, events, 0};
    const int ready = ::poll(&p, 1,
                             static_cast<int>(std::max<int64_t>(
                                 1, absl::ToInt64Milliseconds(left))));
    if (ready > 0) return absl::OkStatus();
    if (ready < 0 && errno != EINTR) return ErrnoStatus(errno, "poll");
  }
}

}  // namespace

absl::StatusOr<std::shared_ptr<const TlsClientContext>> LoadTlsContext(
    const LoadTlsOptions& tls, const std::string& default_server_name) {
  TlsClientSettings settings;
  settings.ca_file = tls.ca_file;
  settings.cert_file = tls.cert_file;
  settings.key_file = tls.key_file;
  settings.server_name =
      tls.server_name.empty() ? default_server_name : tls.server_name;
  absl::StatusOr<std::shared_ptr<const TlsClientContext>> context =
      TlsClientContext::Create(settings);
  if (!context.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls: ", context.status().message()));
  }
  return context;
}

absl::StatusOr<std::unique_ptr<TlsLink>> TlsLink::Handshake(
    int fd, std::shared_ptr<const TlsClientContext> context,
    absl::Time deadline, std::string* early_plaintext) {
  auto link = std::unique_ptr<TlsLink>(
      new TlsLink(fd, TlsSession::ForClient(std::move(context))));
  TlsSession& session = *link->session_;
  char buffer[kHandshakeRead];
  bool heard = false;
  while (true) {
    if (absl::Status s = link->WriteCiphertext(); !s.ok()) return s;
    if (session.handshake_done()) {
      // The client's Finished may still be queued.
      while (link->pending_ciphertext() > 0) {
        if (absl::Status s = WaitFor(fd, POLLOUT, deadline); !s.ok()) return s;
        if (absl::Status s = link->WriteCiphertext(); !s.ok()) return s;
      }
      return link;
    }
    if (absl::Status s = WaitFor(fd, POLLIN, deadline); !s.ok()) return s;
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n == 0) {
      return absl::UnavailableError(
          "the server closed the connection during the TLS handshake (is "
          "TLS on at this port? does it want a client certificate?)");
    }
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return ErrnoStatus(errno, "read during the TLS handshake");
    }
    // A TLS server's first record is a handshake (22) or an alert (21).
    if (!heard && buffer[0] != 22 && buffer[0] != 21) {
      return absl::UnavailableError(
          "the server answered the TLS handshake in plain text (is TLS on at "
          "this port?)");
    }
    heard = true;
    if (absl::Status s = session.Feed(
            absl::string_view(buffer, static_cast<size_t>(n)), early_plaintext);
        !s.ok()) {
      link->WriteCiphertext().IgnoreError();  // the alert, if it goes
      return s;
    }
  }
}

TlsLink::TlsLink(int fd, std::unique_ptr<TlsSession> session)
    : fd_(fd), session_(std::move(session)) {}

TlsLink::~TlsLink() = default;

size_t TlsLink::pending_ciphertext() const {
  return session_->PendingCiphertext().size();
}

absl::Status TlsLink::WriteCiphertext() {
  while (true) {
    const absl::string_view out = session_->PendingCiphertext();
    if (out.empty()) return absl::OkStatus();
    const ssize_t n = ::send(fd_, out.data(), out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      session_->ConsumeCiphertext(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return absl::OkStatus();
    }
    return ErrnoStatus(n < 0 ? errno : EPIPE, "send");
  }
}

absl::StatusOr<size_t> TlsLink::Send(absl::string_view plaintext) {
  size_t taken = 0;
  while (true) {
    if (absl::Status s = WriteCiphertext(); !s.ok()) return s;
    // The socket is full, or everything is out.
    if (pending_ciphertext() > 0 || taken == plaintext.size()) return taken;
    const size_t n = session_->Write(plaintext.substr(taken));
    if (n == 0) {
      if (session_->failed()) return session_->failure();
      return taken;
    }
    taken += n;
  }
}

absl::StatusOr<size_t> TlsLink::Receive(size_t max_ciphertext,
                                        std::string* plaintext) {
  if (scratch_size_ < max_ciphertext) {
    scratch_.reset(new char[max_ciphertext]);
    scratch_size_ = max_ciphertext;
  }
  while (true) {
    const ssize_t n = ::read(fd_, scratch_.get(), max_ciphertext);
    if (n > 0) {
      if (absl::Status s = session_->Feed(
              absl::string_view(scratch_.get(), static_cast<size_t>(n)),
              plaintext);
          !s.ok()) {
        return s;
      }
      if (session_->peer_closed()) {
        return absl::UnavailableError(
            "the server closed the connection (TLS close_notify)");
      }
      return static_cast<size_t>(n);
    }
    if (n == 0) {
      return absl::UnavailableError("the server closed the connection");
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return ErrnoStatus(errno, "read");
  }
}

#else  // A build without OpenSSL: no context, so no TlsLink is ever made.

}  // namespace manifold::load

// Only for ~TlsLink's member, which is always empty here.
class manifold::TlsSession {};

namespace manifold::load {

absl::StatusOr<std::shared_ptr<const TlsClientContext>> LoadTlsContext(
    const LoadTlsOptions&, const std::string&) {
  return absl::FailedPreconditionError(
      "--tls: this manifold was built without OpenSSL (libssl-dev)");
}

TlsLink::~TlsLink() = default;

#endif  // MANIFOLD_HAVE_TLS

}  // namespace manifold::load
