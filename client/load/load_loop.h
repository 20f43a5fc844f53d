// File: client/load/load_loop.h
// -----------------------------------------------------------------------------
//
// The load tool's event loop: one thread, one epoll instance, any number of
// links, each driven by a Role (publisher, subscriber, requester, responder,
// pinger; client/load/roles.h). Every turn, roles that send on their own get
// to append output (Pump), the loop writes what it can, waits for I/O, reads
// every readable link to the end and hands each decoded server message to
// the link's role. Pings from the server are answered here; server errors are
// counted in an ErrorLog, and a fatal one (or a closed connection) ends the
// loop with an error.
//
// Another thread can Wake() a loop that waits (a publisher whose window
// opened) and stop it by setting the flag Run() watches, then Wake().
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<LoadLoop>> loop = LoadLoop::Create(errors);
//   (*loop)->Add(*link, publisher);
//   std::atomic<bool> stop{false};
//   std::thread t([&] { status = (*loop)->Run(stop); });
//   ...
//   stop = true; (*loop)->Wake(); t.join();

#ifndef MANIFOLD_CLIENT_LOAD_LOAD_LOOP_H_
#define MANIFOLD_CLIENT_LOAD_LOAD_LOOP_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/load/link.h"
#include "client/load/load_wire.h"
#include "transports/epoll/wakeable_epoll.h"

namespace manifold::load {

// Monotonic nanoseconds, for latencies and rates.
int64_t NowNanos();

// What a link does in the measured phase.
class Role {
 public:
  virtual ~Role() = default;
  // Appends whatever the role wants to send now to `link.output()`. Returns
  // true when it could send more right away (the loop then does not sleep).
  virtual bool Pump(Link& link, int64_t now_ns) { return false; }
  // Handles one message from the server: anything but pings and fatal
  // errors (non-fatal ones are also counted in the loop's ErrorLog).
  virtual void OnEvent(Link& link, const ServerEvent& event,
                       int64_t now_ns) = 0;
};

// Non-fatal server errors, from any loop.
class ErrorLog {
 public:
  void Add(const std::string& link, const std::string& text);
  uint64_t count() const;
  std::string first() const;

 private:
  mutable absl::Mutex mutex_;
  uint64_t count_ ABSL_GUARDED_BY(mutex_) = 0;
  std::string first_ ABSL_GUARDED_BY(mutex_);
};

class LoadLoop {
 public:
  // `errors` is not owned and must outlive the loop.
  static absl::StatusOr<std::unique_ptr<LoadLoop>> Create(ErrorLog& errors);

  // Adds `link`, driven by `role`. Neither is owned; both must outlive the
  // loop. REQUIRES: Run() is not running.
  void Add(Link& link, Role& role);
  // Runs `hook` at the end of every turn, after the reads (receivers
  // publish their progress there).
  void AddTurnHook(std::function<void()> hook);

  // Runs turns until `stop` is true (checked at least every 20 ms and after
  // every Wake()). Returns an error when a link fails or the server reports
  // a fatal error.
  absl::Status Run(const std::atomic<bool>& stop);

  // Ends a wait for I/O now. Thread-safe.
  void Wake();

 private:
  struct Member {
    Link* link;
    Role* role;
    bool want_write = false;
  };

  LoadLoop(WakeableEpoll epoll, ErrorLog& errors);
  absl::Status Flush(size_t index);
  absl::Status ReadAll(size_t index, int64_t now_ns);

  WakeableEpoll epoll_;
  ErrorLog& errors_;
  std::vector<Member> members_;
  std::vector<std::function<void()>> hooks_;
};

}  // namespace manifold::load

#endif  // MANIFOLD_CLIENT_LOAD_LOAD_LOOP_H_
