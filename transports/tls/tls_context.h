// File: transports/tls/tls_context.h
// -----------------------------------------------------------------------------
//
// The configuration half of TLS: an OpenSSL SSL_CTX built once from PEM files
// and shared by every connection that uses it. A server context holds the
// broker's certificate chain and private key, and optionally the CAs that
// client certificates must chain to (mutual TLS); a client context holds the
// CAs that the server's certificate must chain to, the name the server must
// carry, and optionally the client's own certificate and key.
//
// Both refuse anything older than TLS 1.2. TLS 1.3 uses OpenSSL's cipher
// suites; TLS 1.2 is limited to ECDHE key exchange with AEAD ciphers
// (AES-GCM, ChaCha20-Poly1305). Renegotiation is off.
//
// A context is immutable once built. To pick up new files (a renewed
// certificate), build a new context and hand that to new connections; the
// ones already open keep the context they started with (they hold a
// shared_ptr). ReloadableTlsServerContext does exactly that.
//
// Example:
//
//   TlsSettings settings;
//   settings.cert_file = "/etc/manifold/server.pem";
//   settings.key_file = "/etc/manifold/server.key";
//   settings.ca_file = "/etc/manifold/clients-ca.pem";
//   settings.verify_clients = ClientVerification::kRequire;
//   absl::StatusOr<std::shared_ptr<const TlsServerContext>> context =
//       TlsServerContext::Create(settings);
//   if (!context.ok()) return context.status();  // names the file and why
//   auto session = TlsSession::ForServer(*context);  // tls_session.h
//
// Thread safety: a built context may be shared by sessions on any thread.
// ReloadableTlsServerContext is thread-safe.

#ifndef MANIFOLD_TRANSPORTS_TLS_TLS_CONTEXT_H_
#define MANIFOLD_TRANSPORTS_TLS_TLS_CONTEXT_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace manifold {

// Whether a server asks its clients for a certificate.
enum class ClientVerification {
  // Clients are not asked for a certificate.
  kNone,
  // Clients are asked; one that sends none is accepted (and has no verified
  // identity), one that sends a certificate that does not verify is refused.
  kRequest,
  // Clients must send a certificate that verifies against the CA file.
  kRequire,
};

// Parses "none", "request" or "require" (the config file's spelling).
absl::StatusOr<ClientVerification> ParseClientVerification(
    absl::string_view text);
absl::string_view ClientVerificationName(ClientVerification verification);

// What a server context is built from. Files are PEM.
struct TlsSettings {
  // The server's certificate, followed by any intermediate certificates.
  std::string cert_file;
  // The private key of that certificate (unencrypted).
  std::string key_file;
  // CAs that client certificates must chain to. Required unless
  // verify_clients is kNone.
  std::string ca_file;
  ClientVerification verify_clients = ClientVerification::kNone;
};

class TlsServerContext {
 public:
  // Builds a context from `settings`. Returns INVALID_ARGUMENT when a setting
  // is missing or contradicts another, or an error naming the file and
  // OpenSSL's reason when a file cannot be read or parsed, or the key does
  // not match the certificate.
  static absl::StatusOr<std::shared_ptr<const TlsServerContext>> Create(
      const TlsSettings& settings);

  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;
  ~TlsServerContext();

  const TlsSettings& settings() const { return settings_; }

  // The OpenSSL context, for TlsSession. Owned by this object.
  ssl_ctx_st* native() const { return ctx_; }

 private:
  TlsServerContext(ssl_ctx_st* ctx, TlsSettings settings);
  ssl_ctx_st* ctx_;
  const TlsSettings settings_;
};

// What a client context is built from. Files are PEM.
struct TlsClientSettings {
  // CAs the server's certificate must chain to; empty means the system's
  // default trust store.
  std::string ca_file;
  // The client's certificate chain and key, for servers that require one.
  // Both or neither.
  std::string cert_file;
  std::string key_file;
  // The host name the server's certificate must carry (also sent as SNI).
  // Empty: the certificate's chain is verified but not its name.
  std::string server_name;
};

class TlsClientContext {
 public:
  // Builds a context from `settings`; errors as TlsServerContext::Create.
  static absl::StatusOr<std::shared_ptr<const TlsClientContext>> Create(
      const TlsClientSettings& settings);

  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;
  ~TlsClientContext();

  const TlsClientSettings& settings() const { return settings_; }
  ssl_ctx_st* native() const { return ctx_; }

 private:
  TlsClientContext(ssl_ctx_st* ctx, TlsClientSettings settings);
  ssl_ctx_st* ctx_;
  const TlsClientSettings settings_;
};

// A server context that can be rebuilt from its files while connections use
// it: current() hands out the newest context, Reload() builds a new one from
// the same settings and, only if that succeeds, makes it the current one.
// Connections already open keep the context they were given.
class ReloadableTlsServerContext {
 public:
  // Builds the first context; errors as TlsServerContext::Create.
  static absl::StatusOr<std::shared_ptr<ReloadableTlsServerContext>> Create(
      TlsSettings settings);

  // The context for a new connection. Never null.
  std::shared_ptr<const TlsServerContext> current() const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Re-reads the files. On error the current context stays and the error
  // (naming the file) is returned.
  absl::Status Reload() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  ReloadableTlsServerContext(TlsSettings settings,
                             std::shared_ptr<const TlsServerContext> context);
  const TlsSettings settings_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const TlsServerContext> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_TLS_TLS_CONTEXT_H_
