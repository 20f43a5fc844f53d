#include "client/cli/tls_flags.h"

#include <utility>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#ifdef MANIFOLD_HAVE_TLS
#include "client/tls_stream.h"
#include "transports/sockets/endpoint.h"
#include "transports/tls/tls_context.h"
#endif

ABSL_FLAG(bool, tls, false, "connect over TLS");
ABSL_FLAG(std::string, tls_ca, "",
          "with --tls: PEM file of the CAs the broker's certificate must "
          "chain to (default: the system's)");
ABSL_FLAG(std::string, tls_cert, "",
          "with --tls: PEM file of a client certificate (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "",
          "with --tls: PEM file of the client certificate's private key");
ABSL_FLAG(std::string, tls_server_name, "",
          "with --tls: the name the broker's certificate must carry "
          "(default: the host of --server)");

namespace manifold::cli {

absl::StatusOr<std::unique_ptr<Client>> ConnectPerTlsFlags(
    const std::string& server, ClientOptions options) {
  if (!absl::GetFlag(FLAGS_tls))
    return Client::Connect(server, std::move(options));
#ifdef MANIFOLD_HAVE_TLS
  TlsClientSettings settings;
  settings.ca_file = absl::GetFlag(FLAGS_tls_ca);
  settings.cert_file = absl::GetFlag(FLAGS_tls_cert);
  settings.key_file = absl::GetFlag(FLAGS_tls_key);
  settings.server_name = absl::GetFlag(FLAGS_tls_server_name);
  if (settings.server_name.empty()) {
    if (absl::StatusOr<Endpoint> endpoint = ParseTcpEndpoint(server);
        endpoint.ok()) {
      settings.server_name = endpoint->host;
    }
  }
  absl::StatusOr<std::shared_ptr<const TlsClientContext>> context =
      TlsClientContext::Create(settings);
  if (!context.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls: ", context.status().message()));
  }
  // Each link, the first and any a reconnect opens, is a new TLS session.
  return Client::Dial(
      [server, context = *std::move(context)](absl::Duration timeout) {
        return ConnectTls(server, context, timeout);
      },
      std::move(options));
#else
  return absl::FailedPreconditionError(
      "--tls: this manifold was built without OpenSSL (libssl-dev)");
#endif
}

}  // namespace manifold::cli
