#include "transports/tls/tls_link_security.h"

#include <optional>
#include <utility>

namespace manifold {

LinkSecurityFailure LinkSecurityFailureOf(TlsFailureKind kind) {
  switch (kind) {
    case TlsFailureKind::kPlainText:
      return LinkSecurityFailure::kPlainText;
    case TlsFailureKind::kHandshake:
      return LinkSecurityFailure::kHandshake;
    case TlsFailureKind::kProtocol:
      return LinkSecurityFailure::kProtocol;
    case TlsFailureKind::kNone:
      break;
  }
  return LinkSecurityFailure::kNone;
}

namespace {

class TlsLinkSecurity final : public LinkSecurity {
 public:
  TlsLinkSecurity(std::shared_ptr<const TlsServerContext> context,
                  const TlsLinkOptions& options)
      : session_(TlsSession::ForServer(std::move(context), options.session)),
        clear_greeting_(options.clear_greeting) {}

  absl::Status Feed(absl::string_view bytes, std::string* plaintext) override {
    absl::Status status = session_->Feed(bytes, plaintext);
    if (!identity_ && session_->peer_identity() != nullptr) {
      const TlsPeerIdentity& tls = *session_->peer_identity();
      identity_ = PeerIdentity{tls.subject, tls.dns_names, tls.emails};
    }
    return status;
  }

  LinkSecurityFailure failure_kind() const override {
    return LinkSecurityFailureOf(session_->failure_kind());
  }

  size_t Write(absl::string_view plaintext) override {
    return session_->Write(plaintext);
  }
  absl::string_view PendingCiphertext() const override {
    return session_->PendingCiphertext();
  }
  void ConsumeCiphertext(size_t n) override { session_->ConsumeCiphertext(n); }
  void Shutdown() override { session_->Shutdown(); }
  bool handshake_done() const override { return session_->handshake_done(); }
  bool peer_closed() const override { return session_->peer_closed(); }
  const PeerIdentity* peer_identity() const override {
    return identity_ ? &*identity_ : nullptr;
  }
  bool clear_until_first_input() const override { return clear_greeting_; }

 private:
  std::unique_ptr<TlsSession> session_;
  const bool clear_greeting_;
  std::optional<PeerIdentity> identity_;
};

}  // namespace

std::unique_ptr<LinkSecurity> MakeTlsLinkSecurity(
    std::shared_ptr<const TlsServerContext> context, TlsLinkOptions options) {
  return std::make_unique<TlsLinkSecurity>(std::move(context), options);
}

LinkSecurityFactory TlsLinkSecurityFactory(
    std::shared_ptr<ReloadableTlsServerContext> contexts,
    TlsLinkOptions options) {
  return [contexts = std::move(contexts), options] {
    return MakeTlsLinkSecurity(contexts->current(), options);
  };
}

}  // namespace manifold
