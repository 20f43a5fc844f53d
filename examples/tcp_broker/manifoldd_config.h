// File: examples/tcp_broker/manifoldd_config.h
// -----------------------------------------------------------------------------
//
// manifoldd's configuration, from its command line and configuration file to
// the server it runs. The settings are the ServerConfig message
// (server_config.proto); this file only layers their sources and turns the
// result into listeners and server options:
//
//   defaults  <  --config FILE (text format or JSON)  <  flags
//
// Example:
//
//   absl::StatusOr<ManifolddCommandLine> command_line =
//       ParseManifolddCommandLine(args);   // args: argv without argv[0]
//   if (!command_line.ok()) Fail(command_line.status());  // exit status 2
//   if (command_line->help) std::cout << ManifolddHelp();
//   absl::StatusOr<ServerSetup> setup = MakeServerSetup(command_line->config);

#ifndef MANIFOLD_EXAMPLES_TCP_BROKER_MANIFOLDD_CONFIG_H_
#define MANIFOLD_EXAMPLES_TCP_BROKER_MANIFOLDD_CONFIG_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "examples/tcp_broker/server_config.pb.h"
#include "transports/sockets/socket_server.h"

namespace manifold {
class ReloadableTlsServerContext;  // transports/tls/tls_context.h
}  // namespace manifold

namespace manifold {

// What the command line asked for.
struct ManifolddCommandLine {
  // The effective configuration.
  ServerConfig config;
  // --help (or --helpfull): print ManifolddHelp() and exit.
  bool help = false;
  // --print_config: print the effective configuration and exit.
  bool print_config = false;
};

// Reads `args` (the arguments after the program's name): --config FILE is
// read first, then every flag is applied over it, in order. Returns
// INVALID_ARGUMENT with one line naming what is wrong: the flag, or the
// file, line, column and field (an unknown field, a bad value, a value below
// its minimum, an unreadable file).
absl::StatusOr<ManifolddCommandLine> ParseManifolddCommandLine(
    absl::Span<const char* const> args);

// Usage and every flag with its default and help line.
std::string ManifolddHelp();

// What manifoldd runs.
struct ServerSetup {
  // The event loop's name (--loop).
  std::string loop;
  // What to listen on, in the order the "listening on" line names them.
  std::vector<ListenerConfig> listeners;
  SocketServerOptions options;
  // The TLS contexts every listener uses (the tls section); null when TLS
  // is off. Shared with the listeners: see ReloadTls().
  std::shared_ptr<ReloadableTlsServerContext> tls;
  // Where to write the session's transcript; empty: not recorded.
  std::string record_path;
  // Connections must log in (--user, --token, auth users): the broker runs
  // with require_admission and NATS listeners advertise auth_required. The
  // program then admits them (examples/tcp_broker/admission.h).
  bool authenticate = false;
};

// Turns a configuration into listeners and server options. Returns
// INVALID_ARGUMENT naming the setting at fault: an address that does not
// parse, or nothing to listen on.
absl::StatusOr<ServerSetup> MakeServerSetup(const ServerConfig& config);

// Reads the TLS certificate, key and CA files of `setup` again (e.g. on
// SIGHUP): connections accepted afterwards use the new files, open ones keep
// theirs. Returns OK when TLS is off; on error (naming the file) the files
// in use stay in use. Thread-safe: may be called while the server runs.
absl::Status ReloadTls(const ServerSetup& setup);

}  // namespace manifold

#endif  // MANIFOLD_EXAMPLES_TCP_BROKER_MANIFOLDD_CONFIG_H_
