#include "examples/tcp_broker/shutdown_signals.h"

#include <signal.h>

#include <atomic>

namespace manifold {
namespace {

std::atomic<SocketServer*> shutdown_target{nullptr};

void Restore(int signal_number) {
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  sigaction(signal_number, &action, nullptr);
}

void OnShutdownSignal(int) {
  // Only async-signal-safe work here: RequestShutdown() stores a flag and
  // writes to an eventfd; sigaction() is safe too.
  if (SocketServer* server = shutdown_target.load()) server->RequestShutdown();
  Restore(SIGINT);
  Restore(SIGTERM);
}

}  // namespace

void InstallShutdownSignals(SocketServer& server) {
  shutdown_target.store(&server);
  struct sigaction action {};
  action.sa_handler = OnShutdownSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGPIPE, &ignore, nullptr);
}

}  // namespace manifold
