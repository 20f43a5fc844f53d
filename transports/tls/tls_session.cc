#include "transports/tls/tls_session.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "transports/tls/internal/openssl_errors.h"
#include "transports/tls/internal/string_bios.h"

namespace manifold {
namespace {

// The first byte of every TLS connection: a handshake record (ClientHello).
constexpr unsigned char kHandshakeRecord = 0x16;
// The most plaintext one TLS record carries.
constexpr size_t kMaxRecordPlaintext = 16 * 1024;
// Taken ciphertext is dropped from the front of the buffer once this much
// has piled up (and is at least half of it), so consuming is not quadratic.
constexpr size_t kCompactAfter = 64 * 1024;

// What the first bytes of a plain-text peer look like, for the log line.
std::string DescribeFirstByte(unsigned char byte) {
  if (byte >= 0x20 && byte < 0x7f) {
    return absl::StrFormat("0x%02x '%c'", byte, byte);
  }
  return absl::StrFormat("0x%02x", byte);
}

bool IsUnknownIssuer(long verify_result) {
  switch (verify_result) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return true;
    default:
      return false;
  }
}

std::string Rfc2253(X509_NAME* name) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return std::string();
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string text(data, size > 0 ? static_cast<size_t>(size) : 0);
  BIO_free(bio);
  return text;
}

TlsPeerIdentity IdentityOf(X509* cert) {
  TlsPeerIdentity identity;
  identity.subject = Rfc2253(X509_get_subject_name(cert));
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return identity;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_DNS && name->type != GEN_EMAIL) continue;
    const ASN1_IA5STRING* text = name->d.ia5;
    std::string value(
        reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
        ASN1_STRING_length(text));
    (name->type == GEN_DNS ? identity.dns_names : identity.emails)
        .push_back(std::move(value));
  }
  GENERAL_NAMES_free(names);
  return identity;
}

}  // namespace

std::unique_ptr<TlsSession> TlsSession::ForServer(
    std::shared_ptr<const TlsServerContext> context,
    TlsSessionOptions options) {
  SSL* ssl = SSL_new(context->native());
  std::unique_ptr<TlsSession> session(
      new TlsSession(ssl, /*server=*/true, options));
  session->context_ = std::move(context);
  if (ssl == nullptr) {
    session->Fail(TlsFailureKind::kHandshake,
                  absl::InternalError(absl::StrCat(
                      "cannot start a TLS session: ", TakeOpenSslErrors())));
    return session;
  }
  SSL_set_accept_state(ssl);
  return session;
}

std::unique_ptr<TlsSession> TlsSession::ForClient(
    std::shared_ptr<const TlsClientContext> context,
    TlsSessionOptions options) {
  SSL* ssl = SSL_new(context->native());
  std::unique_ptr<TlsSession> session(
      new TlsSession(ssl, /*server=*/false, options));
  const std::string& name = context->settings().server_name;
  session->context_ = std::move(context);
  if (ssl == nullptr) {
    session->Fail(TlsFailureKind::kHandshake,
                  absl::InternalError(absl::StrCat(
                      "cannot start a TLS session: ", TakeOpenSslErrors())));
    return session;
  }
  if (!name.empty()) {
    SSL_set_tlsext_host_name(ssl, name.c_str());
    SSL_set1_host(ssl, name.c_str());
  }
  SSL_set_connect_state(ssl);
  session->Advance(nullptr);  // queues the ClientHello
  return session;
}

TlsSession::TlsSession(SSL* ssl, bool server, TlsSessionOptions options)
    : ssl_(ssl),
      buffers_(std::make_unique<StringBioBuffers>()),
      in_(nullptr),
      out_(nullptr),
      server_(server),
      options_(options) {
  if (ssl_ == nullptr) return;
  buffers_->output = &ciphertext_;
  // An empty input means "wait for more", not end of file.
  in_ = NewInputBio(buffers_.get());
  out_ = NewOutputBio(buffers_.get());
  if (in_ == nullptr || out_ == nullptr) {
    BIO_free(in_);
    BIO_free(out_);
    in_ = out_ = nullptr;
    Fail(TlsFailureKind::kHandshake,
         absl::InternalError(absl::StrCat("cannot start a TLS session: ",
                                          TakeOpenSslErrors())));
    return;
  }
  SSL_set_bio(ssl_, in_, out_);  // ssl_ owns both from here
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

absl::Status TlsSession::Feed(absl::string_view ciphertext,
                              std::string* plaintext) {
  if (failed()) return failure_;
  if (ciphertext.empty()) return absl::OkStatus();
  if (server_ && !saw_input_ &&
      static_cast<unsigned char>(ciphertext[0]) != kHandshakeRecord) {
    // OpenSSL would say "wrong version number" or "http request": say what
    // happened instead.
    Fail(TlsFailureKind::kPlainText,
         absl::InvalidArgumentError(absl::StrCat(
             "plain text on a TLS port: the first byte is ",
             DescribeFirstByte(static_cast<unsigned char>(ciphertext[0])),
             ", not a TLS handshake record")));
    return failure_;
  }
  saw_input_ = true;
  if (peer_closed_) return absl::OkStatus();  // nothing follows close_notify
  if (unread_.empty()) {
    buffers_->input = ciphertext;  // read in place
  } else {
    unread_.append(ciphertext.data(), ciphertext.size());
    buffers_->input = unread_;
  }
  Advance(plaintext);
  KeepUnread();
  return failure_;
}

void TlsSession::KeepUnread() {
  if (buffers_->input.empty()) {
    unread_.clear();
  } else {
    std::string rest(buffers_->input);
    unread_ = std::move(rest);
  }
  // The caller's bytes are not valid after Feed() returns.
  buffers_->input = unread_;
}

void TlsSession::Advance(std::string* plaintext) {
  if (!handshake_done_) {
    ERR_clear_error();
    const int result = SSL_do_handshake(ssl_);
    if (result == 1) {
      OnHandshakeDone();
    } else {
      const int error = SSL_get_error(ssl_, result);
      if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
        FailFromOpenSsl(error);
      }
      return;
    }
  }
  // Decrypt every complete record; a partial one waits in OpenSSL. Stop
  // when nothing is left to read, rather than make room for a record and
  // be told to wait.
  while (plaintext != nullptr && !peer_closed_ && !failed() &&
         (!buffers_->input.empty() || SSL_has_pending(ssl_) == 1)) {
    const size_t old_size = plaintext->size();
    plaintext->resize(old_size + kMaxRecordPlaintext);
    size_t read = 0;
    ERR_clear_error();
    const int ok = SSL_read_ex(ssl_, plaintext->data() + old_size,
                               kMaxRecordPlaintext, &read);
    plaintext->resize(old_size + (ok == 1 ? read : 0));
    if (ok == 1) continue;
    const int error = SSL_get_error(ssl_, 0);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) break;
    if (error == SSL_ERROR_ZERO_RETURN) {
      peer_closed_ = true;
      break;
    }
    FailFromOpenSsl(error);
  }
}

void TlsSession::OnHandshakeDone() {
  handshake_done_ = true;
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert != nullptr && SSL_get_verify_result(ssl_) == X509_V_OK) {
    identity_ = IdentityOf(cert);
  }
}

void TlsSession::Fail(TlsFailureKind kind, absl::Status status) {
  if (failed()) return;
  failure_kind_ = kind;
  failure_ = std::move(status);
}

void TlsSession::FailFromOpenSsl(int ssl_error) {
  const TlsFailureKind kind =
      handshake_done_ ? TlsFailureKind::kProtocol : TlsFailureKind::kHandshake;
  const absl::string_view stage =
      handshake_done_ ? "TLS error" : "TLS handshake failed";
  const absl::string_view peer_cert =
      server_ ? "client certificate" : "server certificate";
  const unsigned long first = ERR_peek_error();
  const long verify = SSL_get_verify_result(ssl_);
  if (ssl_error == SSL_ERROR_SSL &&
      ERR_GET_REASON(first) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
      verify != X509_V_OK) {
    ERR_clear_error();
    const std::string why = X509_verify_cert_error_string(verify);
    Fail(kind,
         absl::UnauthenticatedError(absl::StrCat(
             stage, ": ", peer_cert,
             IsUnknownIssuer(verify) ? " from an unknown CA" : " rejected",
             " (", why, ")")));
    return;
  }
  if (ssl_error == SSL_ERROR_SSL &&
      ERR_GET_REASON(first) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
    ERR_clear_error();
    Fail(kind, absl::UnauthenticatedError(
                   absl::StrCat(stage,
                                ": the client sent no certificate and one is "
                                "required")));
    return;
  }
  std::string reasons = TakeOpenSslErrors();
  if (ssl_error == SSL_ERROR_SYSCALL && reasons == "unknown error") {
    reasons = "unexpected end of the TLS stream";
  }
  Fail(kind, absl::InvalidArgumentError(absl::StrCat(stage, ": ", reasons)));
}

size_t TlsSession::Write(absl::string_view plaintext) {
  if (!handshake_done_ || failed() || shut_down_) return 0;
  size_t taken = 0;
  while (taken < plaintext.size() &&
         PendingCiphertext().size() < options_.max_pending_ciphertext) {
    const size_t chunk =
        std::min(plaintext.size() - taken, kMaxRecordPlaintext);
    size_t written = 0;
    ERR_clear_error();
    const int ok =
        SSL_write_ex(ssl_, plaintext.data() + taken, chunk, &written);
    if (ok != 1) {
      const int error = SSL_get_error(ssl_, 0);
      if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
        FailFromOpenSsl(error);
      }
      break;
    }
    taken += written;
  }
  return taken;
}

absl::string_view TlsSession::PendingCiphertext() const {
  return absl::string_view(ciphertext_).substr(ciphertext_start_);
}

void TlsSession::ConsumeCiphertext(size_t n) {
  ciphertext_start_ += n;
  if (ciphertext_start_ >= ciphertext_.size()) {
    ciphertext_.clear();
    ciphertext_start_ = 0;
  } else if (ciphertext_start_ >= kCompactAfter &&
             ciphertext_start_ * 2 >= ciphertext_.size()) {
    ciphertext_.erase(0, ciphertext_start_);
    ciphertext_start_ = 0;
  }
}

void TlsSession::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (!handshake_done_ || failed()) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

absl::Status TlsSession::FinishInput() const {
  if (failed()) return failure_;
  if (peer_closed_ || !saw_input_) return absl::OkStatus();
  if (BIO_ctrl_pending(in_) > 0 || SSL_has_pending(ssl_)) {
    return absl::DataLossError(
        "the TLS stream ended in the middle of a record");
  }
  if (!handshake_done_) {
    return absl::DataLossError("the TLS stream ended during the handshake");
  }
  return absl::DataLossError("the TLS stream ended without close_notify");
}

std::string TlsSession::protocol_version() const {
  if (!handshake_done_) return std::string();
  return SSL_get_version(ssl_);
}

}  // namespace manifold
