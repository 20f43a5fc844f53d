// File: transports/tls/tls_link_security.h
// -----------------------------------------------------------------------------
//
// TLS for the BrokerDriver: a LinkSecurity (transports/driver/link_security.h)
// made of a server TlsSession, and the factory a ListenerConfig takes. Each
// new link gets a session on the newest context of a
// ReloadableTlsServerContext, so a reload reaches new connections while open
// ones keep theirs.
//
// Example (a TLS listener, and NATS with its INFO greeting in clear):
//
//   auto tls = ReloadableTlsServerContext::Create(settings);
//   ListenerConfig native;
//   native.security = TlsLinkSecurityFactory(*tls);
//   ListenerConfig nats;
//   nats.codec_factory = ...;            // NatsOptions::tls_required = true
//   nats.security = TlsLinkSecurityFactory(*tls, {.clear_greeting = true});
//   // On SIGHUP: (*tls)->Reload();

#ifndef MANIFOLD_TRANSPORTS_TLS_TLS_LINK_SECURITY_H_
#define MANIFOLD_TRANSPORTS_TLS_TLS_LINK_SECURITY_H_

#include <memory>

#include "transports/driver/link_security.h"
#include "transports/tls/tls_context.h"
#include "transports/tls/tls_session.h"

namespace manifold {

struct TlsLinkOptions {
  // The connection's first output (its greeting) goes out in clear and the
  // TLS handshake starts when the client sends its first byte: NATS's
  // INFO-then-TLS upgrade, which nats-server and every NATS client use.
  bool clear_greeting = false;
  TlsSessionOptions session;
};

// The driver's name for a TlsSession's failure kind.
LinkSecurityFailure LinkSecurityFailureOf(TlsFailureKind kind);

// A server-side TLS layer for one link on `context`.
// REQUIRES: context != nullptr.
std::unique_ptr<LinkSecurity> MakeTlsLinkSecurity(
    std::shared_ptr<const TlsServerContext> context,
    TlsLinkOptions options = TlsLinkOptions());

// Makes a TLS layer per link on `contexts->current()`.
// REQUIRES: contexts != nullptr.
LinkSecurityFactory TlsLinkSecurityFactory(
    std::shared_ptr<ReloadableTlsServerContext> contexts,
    TlsLinkOptions options = TlsLinkOptions());

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_TLS_TLS_LINK_SECURITY_H_
