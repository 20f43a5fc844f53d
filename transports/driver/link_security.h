// File: transports/driver/link_security.h
// -----------------------------------------------------------------------------
//
// A security layer between a link's bytes and its connection's codec: TLS
// (transports/tls/tls_link_security.h). The BrokerDriver owns one per secured
// link; it feeds it what the adapter read and hands the connection the
// plaintext, and writes the ciphertext it produces instead of the
// connection's output. Every event loop gets it from the driver, so a loop
// adapter knows nothing about it; the driver knows nothing of OpenSSL.
//
// Example (what the driver does, in essence):
//
//   std::string plain;
//   if (absl::Status s = security->Feed(bytes_read, &plain); !s.ok()) {
//     Count(security->failure_kind()); Close(link, s);
//   }
//   connection.Receive(plain, now);
//   connection.Consume(security->Write(connection_output));
//   size_t n = io.WriteSome(id, {security->PendingCiphertext()});
//   security->ConsumeCiphertext(n);
//
// Thread safety: none; a LinkSecurity belongs to its driver's thread.

#ifndef MANIFOLD_TRANSPORTS_DRIVER_LINK_SECURITY_H_
#define MANIFOLD_TRANSPORTS_DRIVER_LINK_SECURITY_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace manifold {

// Who the peer proved to be with a verified certificate: what the
// authentication layer maps to a user.
struct PeerIdentity {
  // The certificate subject's distinguished name in RFC 2253 form
  // ("CN=alice,O=Example").
  std::string subject;
  // subjectAltName entries of type DNS and email, in certificate order.
  std::vector<std::string> dns_names;
  std::vector<std::string> emails;
};

// Why a security layer failed, for DriverStatistics. May grow: keep a
// default in switch statements.
enum class LinkSecurityFailure {
  kNone,
  // The peer's first bytes were not the security protocol's (plain text on
  // a TLS port).
  kPlainText,
  // The handshake failed (certificates, protocol versions, ciphers).
  kHandshake,
  // A malformed or forged record after the handshake.
  kProtocol,
};

class LinkSecurity {
 public:
  virtual ~LinkSecurity() = default;

  // Takes bytes read from the peer and appends the plaintext they complete
  // to `*plaintext`. Returns the failure, which is final (the driver closes
  // the link, after writing any alert PendingCiphertext() holds if the link
  // takes it at once).
  virtual absl::Status Feed(absl::string_view bytes,
                            std::string* plaintext) = 0;
  // Valid after Feed() failed.
  virtual LinkSecurityFailure failure_kind() const = 0;

  // Protects a prefix of `plaintext` for the peer; returns how much it took
  // (0 before the handshake is done or while it holds enough ciphertext).
  virtual size_t Write(absl::string_view plaintext) = 0;

  // Bytes to write to the peer; valid until the next non-const call.
  virtual absl::string_view PendingCiphertext() const = 0;
  virtual void ConsumeCiphertext(size_t n) = 0;

  // Queues the protocol's end-of-stream message (TLS close_notify).
  virtual void Shutdown() = 0;

  virtual bool handshake_done() const = 0;
  // The peer ended its stream cleanly (close_notify).
  virtual bool peer_closed() const = 0;
  // The peer's verified certificate; nullptr before the handshake is done
  // or when it presented none.
  virtual const PeerIdentity* peer_identity() const = 0;

  // True for protocols whose greeting is sent in clear before the peer
  // starts the handshake (NATS: INFO, then TLS). The driver then writes the
  // connection's output in clear until the peer's first byte arrives.
  virtual bool clear_until_first_input() const { return false; }
};

// Makes the security layer of one new link; see ListenerConfig.
using LinkSecurityFactory = std::function<std::unique_ptr<LinkSecurity>()>;

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_DRIVER_LINK_SECURITY_H_
