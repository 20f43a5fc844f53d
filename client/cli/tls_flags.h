// File: client/cli/tls_flags.h
// -----------------------------------------------------------------------------
//
// The `manifold` tool's TLS flags and the connection they shape:
//
//   manifold --tls --tls_ca ca.pem sub 'room/*'
//   manifold --tls --tls_ca ca.pem --tls_cert me.pem --tls_key me.key pub a hi
//
// --tls turns TLS on; --tls_ca names the CAs the broker's certificate must
// chain to (default: the system's); --tls_cert and --tls_key present a client
// certificate (mutual TLS); --tls_server_name is the name the certificate
// must carry (default: the host of --server).

#ifndef MANIFOLD_CLIENT_CLI_TLS_FLAGS_H_
#define MANIFOLD_CLIENT_CLI_TLS_FLAGS_H_

#include <memory>
#include <string>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "client/client.h"

ABSL_DECLARE_FLAG(bool, tls);
ABSL_DECLARE_FLAG(std::string, tls_ca);
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, tls_server_name);

namespace manifold::cli {

// Connects to `server` as Client::Connect(address, options) does, or over
// TLS when --tls is given (then without reconnecting). Returns a usage-style
// INVALID_ARGUMENT naming the flag for unusable TLS files, and
// FAILED_PRECONDITION when this build has no TLS.
absl::StatusOr<std::unique_ptr<Client>> ConnectPerTlsFlags(
    const std::string& server, ClientOptions options);

}  // namespace manifold::cli

#endif  // MANIFOLD_CLIENT_CLI_TLS_FLAGS_H_
