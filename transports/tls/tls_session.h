// File: transports/tls/tls_session.h
// -----------------------------------------------------------------------------
//
// One connection's TLS, without a socket: bytes in, bytes out. The caller
// feeds it the ciphertext it read from the peer and gets the plaintext back;
// hands it plaintext to send and takes the ciphertext to write. OpenSSL works
// on two BIOs over the session's buffers (it reads the caller's ciphertext
// in place and writes records straight into its outgoing string), so the
// session fits any event loop (and a test can connect a client session to a
// server session through strings).
//
//   Feed(ciphertext, &plaintext)   peer -> application (also drives the
//                                  handshake)
//   Write(plaintext)               application -> peer; returns how much it
//                                  took
//   PendingCiphertext() /
//   ConsumeCiphertext(n)           what to write to the peer now (handshake
//                                  messages, records, alerts)
//
// A failure is final: Feed() returns it, failure() keeps it, and the
// connection should be closed once the pending ciphertext (an alert) is
// written or dropped. Failure messages name the reason precisely: "plain text
// on a TLS port" (checked before OpenSSL sees the first byte), an unknown CA,
// an expired certificate, a missing client certificate, an unsupported
// protocol version.
//
// Bounds: PendingCiphertext() never grows past max_pending_ciphertext plus one
// record's worth by Write() (Write takes less, or nothing, when it is full);
// the handshake's own output is small. Unread input is at most one
// incomplete record (OpenSSL buffers no more: every complete record is
// decrypted into the caller's string at once), so the caller bounds the
// plaintext by how much ciphertext it feeds per call.
//
// Example (a server over a socket-less loop):
//
//   std::unique_ptr<TlsSession> tls = TlsSession::ForServer(context);
//   std::string plain;
//   if (absl::Status s = tls->Feed(bytes_read, &plain); !s.ok()) {
//     Log(peer, s.message());   // e.g. "plain text on a TLS port"
//     CloseAfterWriting(tls->PendingCiphertext());
//   }
//   codec.Receive(plain);
//   size_t taken = tls->Write(codec_output);
//   size_t n = send(fd, tls->PendingCiphertext());
//   tls->ConsumeCiphertext(n);
//   if (tls->handshake_done() && tls->peer_identity())
//   Map(*tls->peer_identity());
//
// Thread safety: none; one session belongs to one connection's thread.

#ifndef MANIFOLD_TRANSPORTS_TLS_TLS_SESSION_H_
#define MANIFOLD_TRANSPORTS_TLS_TLS_SESSION_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "transports/tls/tls_context.h"

struct ssl_st;  // OpenSSL's SSL
struct bio_st;  // OpenSSL's BIO

namespace manifold {

struct StringBioBuffers;

// The verified certificate a peer presented: what the authentication layer
// maps to a user.
struct TlsPeerIdentity {
  // The subject's distinguished name, RFC 2253 ("CN=alice,O=Example").
  std::string subject;
  // The subjectAltName entries of type DNS and email, in certificate order.
  std::vector<std::string> dns_names;
  std::vector<std::string> emails;
};

// Why a session failed, for counting failures by kind.
enum class TlsFailureKind {
  kNone,
  // The peer's first byte was not a TLS handshake record.
  kPlainText,
  // The handshake failed: certificates, versions, ciphers, malformed
  // handshake messages.
  kHandshake,
  // A record after the handshake was malformed, or an alert ended it.
  kProtocol,
};

struct TlsSessionOptions {
  // Write() stops taking plaintext while this much ciphertext waits to be
  // written.
  size_t max_pending_ciphertext = 256 * 1024;
};

class TlsSession {
 public:
  // A server session on `context`, waiting for the client's hello.
  // REQUIRES: context != nullptr.
  static std::unique_ptr<TlsSession> ForServer(
      std::shared_ptr<const TlsServerContext> context,
      TlsSessionOptions options = TlsSessionOptions());

  // A client session on `context`; its hello is pending ciphertext at once.
  // REQUIRES: context != nullptr.
  static std::unique_ptr<TlsSession> ForClient(
      std::shared_ptr<const TlsClientContext> context,
      TlsSessionOptions options = TlsSessionOptions());

  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;
  ~TlsSession();

  // Takes `ciphertext` from the peer, advances the handshake, and appends the
  // plaintext of every complete record to `*plaintext`. Returns OK (perhaps
  // with nothing appended), or the failure, which is final: later calls
  // return it again and take nothing. May queue ciphertext (handshake
  // messages, an alert, a reply to close_notify): check PendingCiphertext()
  // after each call.
  absl::Status Feed(absl::string_view ciphertext, std::string* plaintext);

  // Encrypts a prefix of `plaintext` and queues it as ciphertext. Returns
  // how many bytes it took: 0 before the handshake is done, after a failure
  // or Shutdown(), or while max_pending_ciphertext is reached.
  size_t Write(absl::string_view plaintext);

  // Ciphertext to write to the peer, oldest first. Valid until the next
  // non-const call.
  absl::string_view PendingCiphertext() const;
  // Drops the first `n` bytes of PendingCiphertext(), which were written.
  // REQUIRES: n <= PendingCiphertext().size().
  void ConsumeCiphertext(size_t n);

  // Queues close_notify; Write() takes nothing afterwards. Idempotent.
  void Shutdown();

  // The peer has read EOF on the transport. Returns OK if the peer closed
  // with close_notify (or nothing had started), and an error saying the
  // stream was truncated otherwise (mid-record, or without close_notify).
  absl::Status FinishInput() const;

  bool handshake_done() const { return handshake_done_; }
  // The peer sent close_notify: it will send nothing more.
  bool peer_closed() const { return peer_closed_; }
  bool failed() const { return !failure_.ok(); }
  const absl::Status& failure() const { return failure_; }
  TlsFailureKind failure_kind() const { return failure_kind_; }

  // The peer's certificate, once the handshake is done and only if the peer
  // presented one that verified; nullptr otherwise.
  const TlsPeerIdentity* peer_identity() const {
    return identity_ ? &*identity_ : nullptr;
  }

  // The negotiated protocol ("TLSv1.3"), empty before the handshake is done.
  std::string protocol_version() const;

 private:
  TlsSession(ssl_st* ssl, bool server, TlsSessionOptions options);
  void Advance(std::string* plaintext);
  void Fail(TlsFailureKind kind, absl::Status status);
  void FailFromOpenSsl(int ssl_error);
  // Keeps the input OpenSSL left unread (part of a record) for the next
  // Feed().
  void KeepUnread();
  void OnHandshakeDone();

  std::shared_ptr<const void> context_;  // keeps the SSL_CTX alive
  ssl_st* ssl_;
  // What the BIOs read the caller's ciphertext from (in place) and append
  // records to (ciphertext_): internal/string_bios.h. Outlives the BIOs,
  // which SSL_free() frees in the destructor's body.
  std::unique_ptr<StringBioBuffers> buffers_;
  bio_st* in_;   // ciphertext from the peer; owned by ssl_
  bio_st* out_;  // ciphertext to the peer; owned by ssl_
  const bool server_;
  const TlsSessionOptions options_;
  // Ciphertext out_ wrote, [ciphertext_start_, size) not yet taken.
  std::string ciphertext_;
  // Input OpenSSL has not read yet (rare: the rest of a record it stopped
  // short of after a failure or close_notify).
  std::string unread_;
  size_t ciphertext_start_ = 0;
  bool saw_input_ = false;
  bool handshake_done_ = false;
  bool peer_closed_ = false;
  bool shut_down_ = false;
  absl::Status failure_;
  TlsFailureKind failure_kind_ = TlsFailureKind::kNone;
  std::optional<TlsPeerIdentity> identity_;
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_TLS_TLS_SESSION_H_
