// File: client/tls_stream.h
// -----------------------------------------------------------------------------
//
// A ByteStream (client/byte_stream.h) over TLS: a socket from
// client/socket_stream.h with a client TlsSession (transports/tls) on top,
// its handshake done before ConnectTls() returns. Hand it to
// Client::Connect(stream, options) to talk to a manifoldd whose listeners
// speak TLS.
//
// Example:
//
//   TlsClientSettings tls;
//   tls.ca_file = "ca.pem";          // the broker's CA
//   tls.server_name = "broker.example.com";
//   auto context = TlsClientContext::Create(tls);
//   if (!context.ok()) return context.status();   // names the file
//   absl::StatusOr<std::unique_ptr<ByteStream>> stream =
//       ConnectTls("broker.example.com:24387", *context, absl::Seconds(5));
//   if (!stream.ok()) return stream.status();  // e.g. "...unknown CA..."
//   auto client = Client::Connect(*std::move(stream));
//
// Reconnecting (ClientOptions::reconnect) needs Client::Connect(address),
// which dials plain sockets; a TLS client does not reconnect.
//
// Threading: as ByteStream says (one reader, one writer, Close from
// anywhere). Records go out in the order their bytes were written.

#ifndef MANIFOLD_CLIENT_TLS_STREAM_H_
#define MANIFOLD_CLIENT_TLS_STREAM_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/byte_stream.h"
#include "transports/tls/tls_context.h"

namespace manifold {

// Connects to `address` (as ConnectSocket) and completes a TLS handshake on
// `context`, all within `timeout`. Returns ConnectSocket's errors, the
// handshake's failure (UNAUTHENTICATED for a server certificate that does
// not verify, naming why), UNAVAILABLE if the broker closed the connection
// during the handshake (e.g. it wanted a client certificate), or
// DEADLINE_EXCEEDED. REQUIRES: context != nullptr.
absl::StatusOr<std::unique_ptr<ByteStream>> ConnectTls(
    absl::string_view address, std::shared_ptr<const TlsClientContext> context,
    absl::Duration timeout);

}  // namespace manifold

#endif  // MANIFOLD_CLIENT_TLS_STREAM_H_
