#include "examples/tcp_broker/manifoldd_config.h"

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "broker/nats/nats_codec.h"
#include "core/config/config_file.h"
#include "core/config/config_flags.h"
#include "examples/tcp_broker/admission.h"
#include "examples/tcp_broker/http_listener.h"
#include "transports/driver/log.h"
#include "transports/sockets/endpoint.h"
#ifdef MANIFOLD_HAVE_TLS
#include "transports/tls/tls_context.h"
#include "transports/tls/tls_link_security.h"
#endif

namespace manifold {
namespace {

config::ConfigFlags MakeFlags() {
  config::ConfigFlags flags(*ServerConfig::descriptor());
  flags.AddProgramFlag({"config", "FILE",
                        "Read settings from FILE (protobuf text format, or "
                        "JSON); flags override it."});
  flags.AddProgramFlag({"print_config", "",
                        "Print the effective configuration, in the format "
                        "--config reads, and exit."});
  flags.AddProgramFlag({"help", "", "Print this help and exit."});
  flags.AddProgramFlag({"helpfull", "", "The same as --help."});
  return flags;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot read the configuration file"));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot read the configuration file"));
  }
  return text.str();
}

LogLevel ToLogLevel(ServerConfig::LogLevel level) {
  switch (level) {
    case ServerConfig::ERROR:
      return LogLevel::kError;
    case ServerConfig::WARNING:
      return LogLevel::kWarning;
    case ServerConfig::DEBUG:
      return LogLevel::kDebug;
    case ServerConfig::INFO:
    default:
      return LogLevel::kInfo;
  }
}

absl::StatusOr<Endpoint> TcpEndpoint(absl::string_view setting,
                                     const std::string& address) {
  absl::StatusOr<Endpoint> endpoint = ParseTcpEndpoint(address);
  if (!endpoint.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(setting, ": ", endpoint.status().message()));
  }
  return endpoint;
}

// The tls section's contexts; null when TLS is off.
absl::StatusOr<std::shared_ptr<ReloadableTlsServerContext>> TlsContexts(
    const ServerTls& tls) {
  if (tls.tls_cert().empty() && tls.tls_key().empty()) return nullptr;
#ifdef MANIFOLD_HAVE_TLS
  TlsSettings settings;
  settings.cert_file = tls.tls_cert();
  settings.key_file = tls.tls_key();
  settings.ca_file = tls.tls_ca();
  switch (tls.tls_verify_clients()) {
    case ServerTls::REQUEST:
      settings.verify_clients = ClientVerification::kRequest;
      break;
    case ServerTls::REQUIRE:
      settings.verify_clients = ClientVerification::kRequire;
      break;
    case ServerTls::NONE:
    default:
      settings.verify_clients = ClientVerification::kNone;
      break;
  }
  absl::StatusOr<std::shared_ptr<ReloadableTlsServerContext>> contexts =
      ReloadableTlsServerContext::Create(std::move(settings));
  if (!contexts.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_cert: ", contexts.status().message()));
  }
  return contexts;
#else
  return absl::FailedPreconditionError(
      "--tls_cert: this manifoldd was built without OpenSSL (libssl-dev)");
#endif
}

// Makes every listener of `setup` speak TLS; the NATS one after its INFO.
void SecureListeners(ServerSetup& setup) {
#ifdef MANIFOLD_HAVE_TLS
  if (setup.tls == nullptr) return;
  for (ListenerConfig& listener : setup.listeners) {
    TlsLinkOptions options;
    options.clear_greeting = listener.label == "nats";
    listener.security = TlsLinkSecurityFactory(setup.tls, options);
  }
#endif
}

}  // namespace

absl::Status ReloadTls(const ServerSetup& setup) {
#ifdef MANIFOLD_HAVE_TLS
  if (setup.tls != nullptr) return setup.tls->Reload();
#endif
  return absl::OkStatus();
}

absl::StatusOr<ManifolddCommandLine> ParseManifolddCommandLine(
    absl::Span<const char* const> args) {
  const config::ConfigFlags flags = MakeFlags();
  absl::StatusOr<config::ConfigFlags::Parsed> parsed = flags.Parse(args);
  if (!parsed.ok()) return parsed.status();

  ManifolddCommandLine command_line;
  const auto& program = parsed->program_flags;
  command_line.help = program.contains("help") || program.contains("helpfull");
  command_line.print_config = program.contains("print_config");
  if (auto file = program.find("config"); file != program.end()) {
    absl::StatusOr<std::string> text = ReadFile(file->second);
    if (!text.ok()) return text.status();
    absl::Status s =
        config::ParseConfigFile(*text, file->second, command_line.config);
    if (!s.ok()) return s;
  }
  absl::Status applied = flags.Apply(*parsed, command_line.config);
  if (!applied.ok()) return applied;
  return command_line;
}

std::string ManifolddHelp() {
  return absl::StrCat(
      "manifoldd: the Manifold message broker.\n\n"
      "  manifoldd [--config FILE] [--listen HOST:PORT] [--unix PATH] "
      "[--nats HOST:PORT] [--http HOST:PORT] [--loop epoll] "
      "[settings...]\n\n"
      "Every setting is also a field of the configuration file "
      "(--print_config shows them all);\n"
      "flags override the file. Durations take a unit (250ms, 1.5s, 2m); in "
      "the file they are\nwhole milliseconds, in the field named for the "
      "flag with _ms added (--keepalive_interval=2s\nis keepalive_interval_ms: "
      "2000).\n\n"
      "Flags:\n",
      MakeFlags().Help(ServerConfig()));
}

absl::StatusOr<ServerSetup> MakeServerSetup(const ServerConfig& config) {
  ServerSetup setup;
  setup.loop = config.loop();
  setup.record_path = config.record();
  absl::StatusOr<std::shared_ptr<ReloadableTlsServerContext>> tls =
      TlsContexts(config.tls());
  if (!tls.ok()) return tls.status();
  setup.tls = *std::move(tls);
  setup.options.driver.tls_handshake_timeout =
      absl::Milliseconds(config.tls().tls_handshake_timeout_ms());
  setup.options.broker = config.broker();
  setup.options.driver.logger = Logger(ToLogLevel(config.log_level()));
  setup.options.shutdown_timeout =
      absl::Milliseconds(config.shutdown_timeout_ms());
  if (absl::Status s = CheckUserAndPass(config); !s.ok()) return s;
  // The node's name and the Redis address themselves are checked where the
  // cluster is set up (main.cc), which knows the cluster's rules.
  if (!config.cluster().empty() && config.node().empty()) {
    return absl::InvalidArgumentError(
        "--cluster needs --node NAME, unique in the cluster");
  }
  if (config.cluster().empty() && !config.redis_bridge().empty()) {
    return absl::InvalidArgumentError(
        "--redis_bridge maps channels of the cluster's Redis: give --cluster "
        "redis://HOST:PORT and --node NAME");
  }
  if (config.cluster().empty() && !config.node().empty()) {
    return absl::InvalidArgumentError(
        "--node names this broker in a cluster: give --cluster "
        "redis://HOST:PORT too");
  }
  setup.authenticate = AuthenticationConfigured(config);
  if (setup.authenticate) setup.options.broker.set_require_admission(true);

  if (!config.listen().empty()) {
    absl::StatusOr<Endpoint> endpoint =
        TcpEndpoint("--listen", config.listen());
    if (!endpoint.ok()) return endpoint.status();
    ListenerConfig tcp;
    tcp.endpoint = *std::move(endpoint);
    setup.listeners.push_back(std::move(tcp));
  }
  if (!config.unix().empty()) {
    ListenerConfig unix_socket;
    unix_socket.endpoint = Endpoint::Unix(config.unix());
    setup.listeners.push_back(std::move(unix_socket));
  }
  if (!config.nats().empty()) {
    absl::StatusOr<Endpoint> endpoint = TcpEndpoint("--nats", config.nats());
    if (!endpoint.ok()) return endpoint.status();
    NatsOptions nats_options;
    nats_options.server_id = config.broker().server_name();
    nats_options.version = config.nats_version();
    nats_options.tls_required = setup.tls != nullptr;
    nats_options.host = endpoint->host;
    nats_options.port = endpoint->port;
    nats_options.max_payload_bytes = config.broker().max_payload_bytes();
    nats_options.auth_required = setup.authenticate;
    ListenerConfig listener;
    listener.endpoint = *std::move(endpoint);
    listener.label = "nats";
    listener.codec_factory =
        [nats_options]() -> std::unique_ptr<ProtocolCodec> {
      return std::make_unique<NatsCodec>(nats_options);
    };
    setup.listeners.push_back(std::move(listener));
  }
  if (!config.http().empty()) {
    absl::StatusOr<ListenerConfig> listener = HttpListener(
        config.http(), config.broker(), config.web(), config.nats_version());
    if (!listener.ok()) return listener.status();
    setup.listeners.push_back(*std::move(listener));
    // The dashboard's chart wants a point a second; publishing statistics
    // costs nothing while nobody subscribes to them.
    if (!config.broker().has_statistics_interval_ms()) {
      setup.options.broker.set_statistics_interval_ms(1000);
    }
  }
  if (setup.listeners.empty()) {
    return absl::InvalidArgumentError(
        "nothing to listen on: give --listen HOST:PORT, --unix PATH, "
        "--nats HOST:PORT or --http HOST:PORT");
  }
  SecureListeners(setup);
  return setup;
}

}  // namespace manifold
