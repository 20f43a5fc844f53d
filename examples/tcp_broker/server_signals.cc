#include "examples/tcp_broker/server_signals.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

namespace manifold {
namespace {

sigset_t RoutedSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

// Ends the process by `signal_number`'s default action, as if it had never
// been blocked: the exit status says which signal ended it.
[[noreturn]] void DieOf(int signal_number) {
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  sigaction(signal_number, &action, nullptr);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signal_number);
  pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  raise(signal_number);
  _exit(128 + signal_number);  // not reached: the signal ends the process
}

}  // namespace

sigset_t ServerSignals::BlockRoutedSignals() {
  const sigset_t routed = RoutedSignals();
  pthread_sigmask(SIG_BLOCK, &routed, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGPIPE, &ignore, nullptr);
  return routed;
}

ServerSignals::ServerSignals() : thread_([this] { Take(); }) {}

ServerSignals::~ServerSignals() {
  stopping_.store(true);
  // Blocked in every thread, so it waits for this thread's sigwaitinfo()
  // even if the thread is busy with another signal.
  pthread_kill(thread_.native_handle(), SIGHUP);
  thread_.join();
}

void ServerSignals::Route(SocketServer* server) {
  std::lock_guard<std::mutex> lock(mu_);
  server_ = server;
  shutdown_requested_ = false;
}

bool ServerSignals::TakeReloadRequest() {
  return reload_requested_.exchange(false, std::memory_order_acquire);
}

void ServerSignals::Take() {
  while (true) {
    const int signal_number = sigwaitinfo(&routed_, nullptr);
    if (stopping_.load()) return;
    if (signal_number < 0) continue;  // EINTR: another signal's handler ran
    std::lock_guard<std::mutex> lock(mu_);
    if (server_ == nullptr) DieOf(signal_number);
    if (signal_number == SIGHUP) {
      reload_requested_.store(true, std::memory_order_release);
      server_->Wake();
      continue;
    }
    if (shutdown_requested_) DieOf(signal_number);
    shutdown_requested_ = true;
    server_->RequestShutdown();
  }
}

}  // namespace manifold
