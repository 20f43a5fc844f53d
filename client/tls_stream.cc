#include "client/tls_stream.h"

#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/socket_stream.h"
#include "transports/tls/tls_session.h"

namespace manifold {
namespace {

class TlsStream final : public ByteStream {
 public:
  TlsStream(std::unique_ptr<ByteStream> socket,
            std::unique_ptr<TlsSession> session)
      : socket_(std::move(socket)), session_(std::move(session)) {}

  // Runs the handshake until it is done or `deadline` passes.
  absl::Status Handshake(absl::Time deadline) {
    if (absl::Status s = SendPending(); !s.ok()) return s;  // ClientHello
    while (true) {
      {
        absl::MutexLock lock(&session_mu_);
        if (session_->handshake_done()) return absl::OkStatus();
      }
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat(
            "TLS handshake with ", socket_->peer(), " took too long"));
      }
      absl::StatusOr<std::string> bytes = socket_->Read(deadline);
      if (!bytes.ok()) {
        return absl::UnavailableError(
            absl::StrCat("TLS handshake with ", socket_->peer(),
                         ": the broker closed the connection (",
                         bytes.status().message(), ")"));
      }
      std::string ignored;
      absl::Status fed;
      {
        absl::MutexLock lock(&session_mu_);
        fed = session_->Feed(*bytes, &ignored);
        early_plaintext_ += ignored;
      }
      SendPending().IgnoreError();  // the next flight, or an alert
      if (!fed.ok()) {
        return absl::Status(
            fed.code(),
            absl::StrCat("TLS with ", socket_->peer(), ": ", fed.message()));
      }
    }
  }

  absl::Status Write(absl::string_view bytes) override {
    absl::MutexLock write_lock(&write_mu_);
    while (!bytes.empty()) {
      std::string ciphertext;
      {
        absl::MutexLock lock(&session_mu_);
        const size_t taken = session_->Write(bytes);
        if (taken == 0) {
          return absl::UnavailableError(absl::StrCat(
              "TLS with ", socket_->peer(), ": ",
              session_->failed() ? session_->failure().message()
                                 : absl::string_view("the stream is closed")));
        }
        bytes.remove_prefix(taken);
        ciphertext = TakeCiphertextLocked();
      }
      if (absl::Status s = socket_->Write(ciphertext); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Read(absl::Time deadline) override {
    {
      absl::MutexLock lock(&session_mu_);
      if (!early_plaintext_.empty()) return std::exchange(early_plaintext_, "");
    }
    while (true) {
      absl::StatusOr<std::string> bytes = socket_->Read(deadline);
      if (!bytes.ok()) return bytes.status();
      if (bytes->empty()) return std::string();  // the deadline passed
      std::string plain;
      absl::Status fed;
      bool closed = false;
      {
        absl::MutexLock lock(&session_mu_);
        fed = session_->Feed(*bytes, &plain);
        closed = session_->peer_closed();
      }
      SendPending().IgnoreError();
      if (!fed.ok()) {
        return absl::UnavailableError(
            absl::StrCat("TLS with ", socket_->peer(), ": ", fed.message()));
      }
      if (!plain.empty()) return plain;
      if (closed) {
        return absl::UnavailableError(absl::StrCat(
            "TLS with ", socket_->peer(), ": the broker closed the stream"));
      }
    }
  }

  void Close() override { socket_->Close(); }
  std::string peer() const override { return socket_->peer(); }

 private:
  // Sends whatever ciphertext the session holds, in order with Write().
  absl::Status SendPending() {
    absl::MutexLock write_lock(&write_mu_);
    std::string ciphertext;
    {
      absl::MutexLock lock(&session_mu_);
      ciphertext = TakeCiphertextLocked();
    }
    if (ciphertext.empty()) return absl::OkStatus();
    return socket_->Write(ciphertext);
  }

  std::string TakeCiphertextLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(session_mu_) {
    std::string ciphertext(session_->PendingCiphertext());
    session_->ConsumeCiphertext(ciphertext.size());
    return ciphertext;
  }

  const std::unique_ptr<ByteStream> socket_;
  // Ciphertext is taken from the session and sent under write_mu_, so
  // records reach the socket in sequence; session_mu_ guards the session
  // between the reader and the writer.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(session_mu_);
  absl::Mutex session_mu_;
  const std::unique_ptr<TlsSession> session_ ABSL_PT_GUARDED_BY(session_mu_);
  // Application data that arrived with the end of the handshake.
  std::string early_plaintext_ ABSL_GUARDED_BY(session_mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<ByteStream>> ConnectTls(
    absl::string_view address, std::shared_ptr<const TlsClientContext> context,
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<std::unique_ptr<ByteStream>> socket =
      ConnectSocket(address, timeout);
  if (!socket.ok()) return socket.status();
  auto stream = std::make_unique<TlsStream>(
      *std::move(socket), TlsSession::ForClient(std::move(context)));
  if (absl::Status s = stream->Handshake(deadline); !s.ok()) {
    stream->Close();
    return s;
  }
  return stream;
}

}  // namespace manifold
