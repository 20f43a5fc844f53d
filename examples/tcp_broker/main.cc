// manifoldd: the Manifold broker over TCP and Unix-domain sockets.
//
//   manifoldd                                   # 127.0.0.1:24387, epoll
//   manifoldd --listen 127.0.0.1:0 --unix /tmp/manifold.sock
//   manifoldd --max_connections 1000 --slow_consumer_policy drop
//
// Prints one line saying where it listens, logs connections on stderr, and on
// SIGINT/SIGTERM tells every client Goodbye and exits 0. Errors (a bad flag,
// an address in use) are one line on stderr and a non-zero exit.

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "examples/tcp_broker/event_loops.h"
#include "examples/tcp_broker/server_flags.h"
#include "examples/tcp_broker/shutdown_signals.h"

namespace {

int Fail(absl::string_view message) {
  std::fprintf(stderr, "manifoldd: %.*s\n", static_cast<int>(message.size()),
               message.data());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "the Manifold message broker.\n"
      "  manifoldd [--listen HOST:PORT] [--unix PATH] [--loop epoll] "
      "[limits...]");
  const std::vector<char*> arguments = absl::ParseCommandLine(argc, argv);
  if (arguments.size() > 1) {
    return Fail(absl::StrCat("unexpected argument '", arguments[1],
                             "'; flags start with --"));
  }

  absl::StatusOr<manifold::ServerConfig> config =
      manifold::ServerConfigFromFlags();
  if (!config.ok()) return Fail(config.status().message());
  absl::StatusOr<std::unique_ptr<manifold::SocketServer>> server =
      manifold::MakeSocketServer(config->loop, std::move(config->options));
  if (!server.ok()) return Fail(server.status().message());

  std::vector<std::string> places;
  for (manifold::ListenerConfig& listener : config->listeners) {
    const std::string label(listener.display_label());
    absl::StatusOr<manifold::Endpoint> bound =
        (*server)->Listen(std::move(listener));
    if (!bound.ok()) return Fail(bound.status().message());
    places.push_back(absl::StrCat(bound->ToString(), " (", label, ")"));
  }

  manifold::InstallShutdownSignals(**server);
  std::printf("manifoldd listening on %s, loop %s\n",
              absl::StrJoin(places, ", ").c_str(), config->loop.c_str());
  std::fflush(stdout);

  const absl::Status done = (*server)->Run();
  if (!done.ok()) return Fail(done.message());
  return 0;
}
