// File: examples/tcp_broker/http_listener.h
// -----------------------------------------------------------------------------
//
// manifoldd's web front end listener (`--http HOST:PORT`): a ListenerConfig
// whose connections speak HTTP through HttpCodec (broker/http/http_codec.h),
// with the limits of the configuration's WebSettings and /nats presenting
// itself as the broker is configured.
//
// Example:
//
//   absl::StatusOr<ListenerConfig> http =
//       HttpListener("127.0.0.1:24388", config.broker(), config.web(),
//                    config.nats_version());
//   if (http.ok()) setup.listeners.push_back(*std::move(http));

#ifndef MANIFOLD_EXAMPLES_TCP_BROKER_HTTP_LISTENER_H_
#define MANIFOLD_EXAMPLES_TCP_BROKER_HTTP_LISTENER_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "broker/options.h"
#include "examples/tcp_broker/server_config.pb.h"
#include "transports/sockets/socket_server.h"

namespace manifold {

// The listener on `address` (HOST:PORT). Returns INVALID_ARGUMENT naming
// --http for an address that does not parse, FAILED_PRECONDITION when
// manifoldd was built without the web libraries. `nats_version` is what
// /nats's INFO says ("": the broker's version).
absl::StatusOr<ListenerConfig> HttpListener(absl::string_view address,
                                            const BrokerOptions& broker,
                                            const WebSettings& web,
                                            absl::string_view nats_version);

}  // namespace manifold

#endif  // MANIFOLD_EXAMPLES_TCP_BROKER_HTTP_LISTENER_H_
