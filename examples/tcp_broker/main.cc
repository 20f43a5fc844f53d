// manifoldd: the Manifold broker over TCP and Unix-domain sockets.
//
//   manifoldd                                   # 127.0.0.1:24387, epoll
//   manifoldd --listen 127.0.0.1:0 --unix /tmp/manifold.sock
//   manifoldd --max_connections 1000 --slow_consumer_policy drop
//   manifoldd --nats 127.0.0.1:4222            # also speak NATS
//   manifoldd --record /tmp/session.textpb      # write a transcript on exit
//
// Prints one line saying where it listens, logs connections on stderr, and on
// SIGINT/SIGTERM tells every client Goodbye and exits 0. Errors (a bad flag,
// an address in use) are one line on stderr and a non-zero exit.

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "examples/tcp_broker/server_flags.h"
#include "examples/tcp_broker/shutdown_signals.h"
#include "transports/driver/recording_observer.h"
#include "transports/loops/event_loops.h"

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
  // Declared before the server, which uses it until it is destroyed.
  std::unique_ptr<manifold::RecordingObserver> recorder;
  if (!config->record_path.empty()) {
    recorder = std::make_unique<manifold::RecordingObserver>(
        "recorded live by manifoldd");
    config->options.driver.observer = recorder.get();
  }
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
  if (recorder != nullptr) {
    std::ofstream out(config->record_path, std::ios::trunc);
    out << recorder->ToText();
    out.close();
    if (!out) {
      return Fail(
          absl::StrCat("cannot write the transcript to ", config->record_path));
    }
    std::fprintf(stderr, "manifoldd: recorded %zu steps to %s\n",
                 recorder->steps(), config->record_path.c_str());
  }
  if (!done.ok()) return Fail(done.message());
  return 0;
}
