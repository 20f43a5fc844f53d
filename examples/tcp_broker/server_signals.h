// File: examples/tcp_broker/server_signals.h
// -----------------------------------------------------------------------------
//
// manifoldd's signals. Once routed to a SocketServer, SIGINT and SIGTERM start
// its graceful shutdown (clients are told Goodbye and Run() returns once they
// are gone); a second one ends the process at once, for when the first is
// taking too long. SIGHUP asks for the configuration to be reloaded. SIGPIPE
// is ignored.
//
// The three signals are blocked in every thread and taken by a thread of
// their own with sigwaitinfo(), not caught by a handler. Nothing runs in
// signal context, and a signal cannot be lost to the way a handler is
// delivered: under ThreadSanitizer, which defers handlers to its own safe
// points, about one SIGTERM in fifty sent right after start (on a busy
// machine) never reached the handler, and manifoldd ran on.
//
// Example:
//
//   int main(int argc, char** argv) {
//     ServerSignals signals;  // first: before any other thread starts
//     options.driver.before_turn = [&](BrokerDriver& driver) {
//       if (signals.TakeReloadRequest()) Reload(driver);
//     };
//     ... create the server (a SIGTERM meanwhile ends the process) ...
//     signals.Route(server.get());
//     absl::Cleanup unroute = [&] { signals.Route(nullptr); };
//     absl::Status done = server->Run();  // returns after SIGTERM
//   }

#ifndef MANIFOLD_EXAMPLES_TCP_BROKER_SERVER_SIGNALS_H_
#define MANIFOLD_EXAMPLES_TCP_BROKER_SERVER_SIGNALS_H_

#include <signal.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "transports/sockets/socket_server.h"

namespace manifold {

class ServerSignals {
 public:
  // Blocks SIGINT, SIGTERM and SIGHUP in the calling thread, and so in every
  // thread started from it afterwards, ignores SIGPIPE, and starts the thread
  // that takes the three. Until Route() names a server, each of them ends the
  // process, as its default action would.
  // REQUIRES: no other thread runs yet (one that does would still die of
  // them), so construct it first thing in main(); one at a time.
  ServerSignals();
  ServerSignals(const ServerSignals&) = delete;
  ServerSignals& operator=(const ServerSignals&) = delete;
  // Stops the thread. The signals stay blocked: one that comes later waits,
  // pending, until the process exits.
  ~ServerSignals();

  // Routes the signals to `server` from now on; nullptr goes back to ending
  // the process. Returns once no signal is being routed to the server named
  // before. REQUIRES: `server` stays until it is replaced here or this
  // object is destroyed.
  void Route(SocketServer* server);

  // Whether a SIGHUP came since the last call; clears the request. The
  // server was woken when it came, so its next turn asks. Thread-safe.
  bool TakeReloadRequest();

 private:
  // Blocks the three signals in the calling thread and ignores SIGPIPE.
  // Returns the three.
  static sigset_t BlockRoutedSignals();
  void Take();

  // First: blocked before the thread starts, which inherits the mask.
  const sigset_t routed_ = BlockRoutedSignals();
  std::mutex mu_;  // held while a signal is routed to *server_
  SocketServer* server_ = nullptr;
  bool shutdown_requested_ = false;  // guarded by mu_
  std::atomic<bool> reload_requested_{false};
  std::atomic<bool> stopping_{false};
  std::thread thread_;  // last: starts once the rest is ready
};

}  // namespace manifold

#endif  // MANIFOLD_EXAMPLES_TCP_BROKER_SERVER_SIGNALS_H_
