// File: examples/tcp_broker/password_checker.h
// -----------------------------------------------------------------------------
//
// manifoldd's worker thread for the slow part of logins: the PasswordChecks
// (broker/auth/password_check.h) an Authenticator hands out run here, one
// after another, so that the event loop goes on serving everyone else while
// a yescrypt hash takes its milliseconds. Each finished check wakes the loop
// (SocketServer::Wake), which takes it back with TakeFinished() on its own
// thread and finishes the login there.
//
//   PasswordChecker checker(/*max_waiting=*/256, [&] { server->Wake(); });
//   if (!checker.Submit(tag, *std::move(login.check))) { /* refuse: busy */ }
//   ...
//   // On the loop's thread, e.g. in DriverOptions::before_turn:
//   for (PasswordChecker::Finished& done : checker.TakeFinished()) {
//     absl::StatusOr<Grant> grant = authenticator.Finish(done.check);
//   }
//
// Bounded: at most `max_waiting` checks wait or run at once; Submit()
// refuses more, and the caller refuses that login (a flood of logins cannot
// queue work without limit). Finished checks wait for TakeFinished(), at
// most `max_waiting` of them too, since each was one submitted.
//
// Thread safety: Submit() and TakeFinished() may be called from any thread;
// `wake` is called on the worker thread.

#ifndef MANIFOLD_EXAMPLES_TCP_BROKER_PASSWORD_CHECKER_H_
#define MANIFOLD_EXAMPLES_TCP_BROKER_PASSWORD_CHECKER_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "broker/auth/password_check.h"

namespace manifold {

class PasswordChecker {
 public:
  struct Finished {
    uint64_t tag = 0;  // as given to Submit()
    PasswordCheck check;
  };

  // Starts the worker. `wake` is called (on the worker) after each check
  // finishes. REQUIRES: max_waiting > 0.
  PasswordChecker(size_t max_waiting, std::function<void()> wake);
  // Stops the worker after the check it is running, if any; checks not
  // started are dropped (their secrets wiped).
  ~PasswordChecker();

  PasswordChecker(const PasswordChecker&) = delete;
  PasswordChecker& operator=(const PasswordChecker&) = delete;

  // Queues `check` to run; its result comes back from TakeFinished() with
  // `tag`. Returns false, and drops the check, when max_waiting checks are
  // already waiting, running or unclaimed.
  bool Submit(uint64_t tag, PasswordCheck check);

  // The checks that have run since the last call, in the order they
  // finished.
  std::vector<Finished> TakeFinished();

  // Checks submitted and not yet taken back.
  size_t outstanding() const;

 private:
  void Work();

  const size_t max_waiting_;
  const std::function<void()> wake_;
  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  std::deque<Finished> waiting_;    // guarded by mutex_
  std::vector<Finished> finished_;  // guarded by mutex_
  size_t outstanding_ = 0;          // guarded by mutex_
  bool stopping_ = false;           // guarded by mutex_
  std::thread worker_;              // last: starts once the rest is ready
};

}  // namespace manifold

#endif  // MANIFOLD_EXAMPLES_TCP_BROKER_PASSWORD_CHECKER_H_
