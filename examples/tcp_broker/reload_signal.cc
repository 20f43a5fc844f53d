// File: examples/tcp_broker/reload_signal.cc

#include "examples/tcp_broker/reload_signal.h"

#include <signal.h>

#include <atomic>

namespace manifold {
namespace {

std::atomic<SocketServer*> reload_target{nullptr};
std::atomic<bool> reload_requested{false};

void OnReloadSignal(int) {
  // Only async-signal-safe work: a lock-free store and a write().
  reload_requested.store(true, std::memory_order_relaxed);
  if (SocketServer* server = reload_target.load()) server->Wake();
}

}  // namespace

void InstallReloadSignal(SocketServer& server) {
  reload_target.store(&server);
  struct sigaction action {};
  action.sa_handler = OnReloadSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGHUP, &action, nullptr);
}

bool TakeReloadRequest() {
  return reload_requested.exchange(false, std::memory_order_relaxed);
}

}  // namespace manifold
