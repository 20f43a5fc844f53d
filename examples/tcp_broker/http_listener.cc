#include "examples/tcp_broker/http_listener.h"

#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "transports/sockets/endpoint.h"
#ifdef MANIFOLD_HAVE_HTTP
#include "broker/http/bayeux.h"
#include "broker/http/http_codec.h"
#endif

namespace manifold {

absl::StatusOr<ListenerConfig> HttpListener(absl::string_view address,
                                            const BrokerOptions& broker,
                                            const WebSettings& web,
                                            absl::string_view nats_version) {
#ifdef MANIFOLD_HAVE_HTTP
  absl::StatusOr<Endpoint> endpoint = ParseTcpEndpoint(address);
  if (!endpoint.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http: ", endpoint.status().message()));
  }
  HttpOptions http;
  http.max_header_bytes = web.http_max_header_bytes();
  http.max_headers = web.http_max_headers();
  http.max_pipelined_requests = web.http_max_pipelined_requests();
  http.request_timeout = absl::Milliseconds(web.http_request_timeout_ms());
  http.idle_timeout = absl::Milliseconds(web.http_idle_timeout_ms());
  http.max_sse_topics = web.sse_max_topics();
  http.sse_heartbeat = absl::Milliseconds(web.sse_heartbeat_ms());
  http.sse_retry = absl::Milliseconds(web.sse_retry_ms());
  http.tick = absl::Milliseconds(web.http_tick_ms());
  http.dashboard = web.dashboard();
  http.bayeux.path = web.bayeux_path();
  http.bayeux.connect_timeout =
      absl::Milliseconds(web.bayeux_connect_timeout_ms());
  http.bayeux.interval = absl::Milliseconds(web.bayeux_interval_ms());
  http.bayeux.service_timeout =
      absl::Milliseconds(web.bayeux_service_timeout_ms());
  http.bayeux.max_batch_messages = web.bayeux_max_batch_messages();
  if (absl::Status paths =
          SetBayeuxTypePaths(web.bayeux_type_paths(), http.bayeux);
      !paths.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--bayeux_type_paths: ", paths.message()));
  }
  http.nats.server_id = broker.server_name();
  http.nats.version = std::string(nats_version);
  http.nats.host = endpoint->host;
  http.nats.port = endpoint->port;
  http.nats.max_payload_bytes = broker.max_payload_bytes();
  ListenerConfig listener;
  listener.endpoint = *std::move(endpoint);
  listener.label = "http";
  listener.codec_factory = [http]() -> std::unique_ptr<ProtocolCodec> {
    return std::make_unique<HttpCodec>(http);
  };
  return listener;
#else
  return absl::FailedPreconditionError(
      "--http: this manifoldd was built without the web front end (it needs "
      "libhttp-parser-dev, libwslay-dev and libssl-dev)");
#endif
}

}  // namespace manifold
