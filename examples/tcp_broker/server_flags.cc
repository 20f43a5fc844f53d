#include "examples/tcp_broker/server_flags.h"

#include <utility>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "broker/nats/nats_codec.h"
#include "examples/tcp_broker/broker_flags.h"
#include "transports/driver/log.h"
#include "transports/sockets/endpoint.h"

// With GNU extensions `unix` is a predefined macro; the flag needs the name.
#ifdef unix
#undef unix
#endif

ABSL_FLAG(std::string, listen, "127.0.0.1:24387",
          "TCP address to listen on for the native protocol: HOST:PORT, or "
          "[IPv6]:PORT; port 0 picks a free port; empty disables TCP.");
ABSL_FLAG(std::string, unix, "",
          "Unix-domain socket path to listen on for the native protocol; a "
          "stale socket file is replaced.");
ABSL_FLAG(std::string, loop, "epoll",
          "Event loop to run the broker on: epoll, io_uring (Linux 6.0+, "
          "built with liburing) or uv (built with libuv); every loop serves "
          "the same listeners alike.");
ABSL_FLAG(manifold::LogLevel, log_level, manifold::LogLevel::kInfo,
          "What to log on stderr: error, warning, info (connections) or debug "
          "(subscriptions, services).");
ABSL_FLAG(absl::Duration, shutdown_timeout, absl::Seconds(5),
          "On SIGINT/SIGTERM: how long to wait for clients to get Goodbye "
          "before closing their connections anyway.");
ABSL_FLAG(std::string, nats, "",
          "TCP address for a NATS-protocol listener (e.g. 127.0.0.1:4222), "
          "so that existing NATS clients can connect; empty: off.");
ABSL_FLAG(std::string, record, "",
          "Record the session as a transcript in this file, written when "
          "manifoldd exits; replay it with `manifold replay FILE`.");

namespace manifold {

absl::StatusOr<ServerConfig> ServerConfigFromFlags() {
  ServerConfig config;
  config.loop = absl::GetFlag(FLAGS_loop);

  absl::StatusOr<BrokerOptions> broker = BrokerOptionsFromFlags();
  if (!broker.ok()) return broker.status();
  config.options.broker = *std::move(broker);
  config.options.driver.logger = Logger(absl::GetFlag(FLAGS_log_level));
  config.options.shutdown_timeout = absl::GetFlag(FLAGS_shutdown_timeout);
  if (config.options.shutdown_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--shutdown_timeout must not be negative");
  }

  const std::string listen = absl::GetFlag(FLAGS_listen);
  if (!listen.empty()) {
    absl::StatusOr<Endpoint> endpoint = ParseTcpEndpoint(listen);
    if (!endpoint.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--listen: ", endpoint.status().message()));
    }
    ListenerConfig tcp;
    tcp.endpoint = *std::move(endpoint);
    config.listeners.push_back(std::move(tcp));
  }
  const std::string unix_path = absl::GetFlag(FLAGS_unix);
  if (!unix_path.empty()) {
    ListenerConfig unix_socket;
    unix_socket.endpoint = Endpoint::Unix(unix_path);
    config.listeners.push_back(std::move(unix_socket));
  }
  const std::string nats = absl::GetFlag(FLAGS_nats);
  if (!nats.empty()) {
    absl::StatusOr<Endpoint> endpoint = ParseTcpEndpoint(nats);
    if (!endpoint.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--nats: ", endpoint.status().message()));
    }
    NatsOptions nats_options;
    nats_options.server_id = config.options.broker.server_name;
    nats_options.host = endpoint->host;
    nats_options.port = endpoint->port;
    nats_options.max_payload_bytes = config.options.broker.max_payload_bytes;
    ListenerConfig listener;
    listener.endpoint = *std::move(endpoint);
    listener.label = "nats";
    listener.codec_factory =
        [nats_options]() -> std::unique_ptr<ProtocolCodec> {
      return std::make_unique<NatsCodec>(nats_options);
    };
    config.listeners.push_back(std::move(listener));
  }
  if (config.listeners.empty()) {
    return absl::InvalidArgumentError(
        "nothing to listen on: give --listen HOST:PORT, --unix PATH or "
        "--nats HOST:PORT");
  }
  config.record_path = absl::GetFlag(FLAGS_record);
  return config;
}

}  // namespace manifold
