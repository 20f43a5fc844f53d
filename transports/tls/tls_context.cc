#include "transports/tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "transports/tls/internal/openssl_errors.h"

namespace manifold {
namespace {

// TLS 1.2's suites: forward secrecy (ECDHE) and authenticated encryption
// only.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// TLS 1.3's suites are all of that kind: OpenSSL's three, with AES-128-GCM
// first instead of AES-256-GCM. It is the suite Go's and BoringSSL's servers
// (nats-server among them) pick and Mozilla's recommended configurations
// list first; with 10 AES rounds instead of 14 it costs both ends about a
// quarter less CPU per byte, which is most of a TLS connection's CPU.
constexpr char kTls13Suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
    "TLS_CHACHA20_POLY1305_SHA256";

struct CtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxDeleter>;

absl::StatusOr<CtxPtr> NewContext(const SSL_METHOD* method) {
  CtxPtr ctx(SSL_CTX_new(method));
  if (ctx == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot create a TLS context: ", TakeOpenSslErrors()));
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION |
                                     SSL_OP_CIPHER_SERVER_PREFERENCE |
                                     SSL_OP_NO_COMPRESSION);
  // Partial writes let a session hand out ciphertext record by record; a
  // retried write may come from a different (moved) buffer.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_set_cipher_list(ctx.get(), kTls12Ciphers) != 1) {
    return absl::InternalError(absl::StrCat(
        "cannot set the TLS 1.2 cipher list: ", TakeOpenSslErrors()));
  }
  if (SSL_CTX_set_ciphersuites(ctx.get(), kTls13Suites) != 1) {
    return absl::InternalError(absl::StrCat(
        "cannot set the TLS 1.3 cipher suites: ", TakeOpenSslErrors()));
  }
  return ctx;
}

absl::Status LoadChainAndKey(SSL_CTX* ctx, const std::string& cert_file,
                             const std::string& key_file) {
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load the certificate chain from '", cert_file,
                     "': ", TakeOpenSslErrors()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) !=
      1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      return absl::InvalidArgumentError(absl::StrCat(
          "the private key in '", key_file,
          "' does not match the certificate in '", cert_file, "'"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load the private key from '", key_file,
                     "': ", TakeOpenSslErrors()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the private key in '", key_file,
                     "' does not match the certificate in '", cert_file,
                     "': ", TakeOpenSslErrors()));
  }
  return absl::OkStatus();
}

absl::Status LoadCa(SSL_CTX* ctx, const std::string& ca_file) {
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load CA certificates from '", ca_file,
                     "': ", TakeOpenSslErrors()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ClientVerification> ParseClientVerification(
    absl::string_view text) {
  if (text == "none" || text.empty()) return ClientVerification::kNone;
  if (text == "request") return ClientVerification::kRequest;
  if (text == "require") return ClientVerification::kRequire;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown client verification '", text,
                   "': expected none, request or require"));
}

absl::string_view ClientVerificationName(ClientVerification verification) {
  switch (verification) {
    case ClientVerification::kNone:
      return "none";
    case ClientVerification::kRequest:
      return "request";
    case ClientVerification::kRequire:
      return "require";
  }
  return "none";
}

// ---------------------------------------------------------------------------
// Server

absl::StatusOr<std::shared_ptr<const TlsServerContext>>
TlsServerContext::Create(const TlsSettings& settings) {
  if (settings.cert_file.empty() || settings.key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both a certificate file and a key file");
  }
  if (settings.verify_clients != ClientVerification::kNone &&
      settings.ca_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "verifying client certificates (",
        ClientVerificationName(settings.verify_clients), ") needs a CA file"));
  }
  absl::StatusOr<CtxPtr> ctx = NewContext(TLS_server_method());
  if (!ctx.ok()) return ctx.status();
  if (absl::Status s =
          LoadChainAndKey(ctx->get(), settings.cert_file, settings.key_file);
      !s.ok()) {
    return s;
  }
  if (!settings.ca_file.empty()) {
    if (absl::Status s = LoadCa(ctx->get(), settings.ca_file); !s.ok()) {
      return s;
    }
    // Tell clients which CAs are accepted, so one with several certificates
    // picks the right one.
    STACK_OF(X509_NAME)* names =
        SSL_load_client_CA_file(settings.ca_file.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(ctx->get(), names);
  }
  int mode = SSL_VERIFY_NONE;
  if (settings.verify_clients == ClientVerification::kRequest) {
    mode = SSL_VERIFY_PEER;
  } else if (settings.verify_clients == ClientVerification::kRequire) {
    mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  SSL_CTX_set_verify(ctx->get(), mode, nullptr);
  // Sessions are not resumed: every connection proves itself afresh, and no
  // ticket key has to be shared or rotated.
  SSL_CTX_set_session_cache_mode(ctx->get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx->get(), SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx->get(), 0);
  return std::shared_ptr<const TlsServerContext>(
      new TlsServerContext(ctx->release(), settings));
}

TlsServerContext::TlsServerContext(SSL_CTX* ctx, TlsSettings settings)
    : ctx_(ctx), settings_(std::move(settings)) {}

TlsServerContext::~TlsServerContext() { SSL_CTX_free(ctx_); }

// ---------------------------------------------------------------------------
// Client

absl::StatusOr<std::shared_ptr<const TlsClientContext>>
TlsClientContext::Create(const TlsClientSettings& settings) {
  if (settings.cert_file.empty() != settings.key_file.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate needs both a certificate file and a key file");
  }
  absl::StatusOr<CtxPtr> ctx = NewContext(TLS_client_method());
  if (!ctx.ok()) return ctx.status();
  if (!settings.cert_file.empty()) {
    if (absl::Status s =
            LoadChainAndKey(ctx->get(), settings.cert_file, settings.key_file);
        !s.ok()) {
      return s;
    }
  }
  if (settings.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx->get()) != 1) {
      return absl::InternalError(absl::StrCat(
          "cannot load the system's CA certificates: ", TakeOpenSslErrors()));
    }
  } else if (absl::Status s = LoadCa(ctx->get(), settings.ca_file); !s.ok()) {
    return s;
  }
  SSL_CTX_set_verify(ctx->get(), SSL_VERIFY_PEER, nullptr);
  return std::shared_ptr<const TlsClientContext>(
      new TlsClientContext(ctx->release(), settings));
}

TlsClientContext::TlsClientContext(SSL_CTX* ctx, TlsClientSettings settings)
    : ctx_(ctx), settings_(std::move(settings)) {}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

// ---------------------------------------------------------------------------
// Reloading

absl::StatusOr<std::shared_ptr<ReloadableTlsServerContext>>
ReloadableTlsServerContext::Create(TlsSettings settings) {
  absl::StatusOr<std::shared_ptr<const TlsServerContext>> first =
      TlsServerContext::Create(settings);
  if (!first.ok()) return first.status();
  return std::shared_ptr<ReloadableTlsServerContext>(
      new ReloadableTlsServerContext(std::move(settings), *std::move(first)));
}

ReloadableTlsServerContext::ReloadableTlsServerContext(
    TlsSettings settings, std::shared_ptr<const TlsServerContext> context)
    : settings_(std::move(settings)), current_(std::move(context)) {}

std::shared_ptr<const TlsServerContext> ReloadableTlsServerContext::current()
    const {
  absl::MutexLock lock(&mu_);
  return current_;
}

absl::Status ReloadableTlsServerContext::Reload() {
  absl::StatusOr<std::shared_ptr<const TlsServerContext>> next =
      TlsServerContext::Create(settings_);
  if (!next.ok()) return next.status();
  absl::MutexLock lock(&mu_);
  current_ = *std::move(next);
  return absl::OkStatus();
}

}  // namespace manifold
