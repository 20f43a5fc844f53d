// File: tests/e2e/testing/removal_watcher.h
// -----------------------------------------------------------------------------
//
// For end-to-end tests: watches the broker's "$sys/connection/removed" events
// from a client of its own (on a thread that also answers keepalive pings),
// so a test can check the exact code and reason with which the broker closed
// a connection, even one that can no longer read its own error frame (a
// vanished peer, a client that never reads).
//
//   absl::StatusOr<std::unique_ptr<RemovalWatcher>> watcher =
//       RemovalWatcher::Start(broker.tcp());
//   ... a client named "hog" misbehaves ...
//   absl::StatusOr<wire::ConnectionRemoved> removed =
//       (*watcher)->WaitForClient("hog", absl::Seconds(5));
//   EXPECT_EQ(removed->code(), wire::SLOW_CONSUMER);

#ifndef MANIFOLD_TESTS_E2E_TESTING_REMOVAL_WATCHER_H_
#define MANIFOLD_TESTS_E2E_TESTING_REMOVAL_WATCHER_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/manifold.pb.h"
#include "tests/transports/testing/wire_client.h"
#include "transports/sockets/endpoint.h"

namespace manifold::testing {

class RemovalWatcher {
 public:
  // Connects as "removal-watcher" and subscribes to the removal events.
  static absl::StatusOr<std::unique_ptr<RemovalWatcher>> Start(
      const Endpoint& endpoint);

  RemovalWatcher(const RemovalWatcher&) = delete;
  RemovalWatcher& operator=(const RemovalWatcher&) = delete;
  ~RemovalWatcher();

  // Returns the first removal (seen so far or within `timeout`) of a
  // connection whose Hello named it `client_name`, or DEADLINE_EXCEEDED.
  absl::StatusOr<wire::ConnectionRemoved> WaitForClient(
      absl::string_view client_name, absl::Duration timeout);

  // Waits until at least `count` removals satisfy `match`; returns them all,
  // or DEADLINE_EXCEEDED saying how many there were.
  absl::StatusOr<std::vector<wire::ConnectionRemoved>> WaitForCount(
      size_t count,
      const std::function<bool(const wire::ConnectionRemoved&)>& match,
      absl::Duration timeout);

  // Every removal seen so far.
  std::vector<wire::ConnectionRemoved> removals();

  // OK unless the watcher's own connection failed.
  absl::Status status();

  // Stops the thread and closes the connection. Idempotent.
  void Stop();

 private:
  explicit RemovalWatcher(WireClient client);
  void Run();

  WireClient client_;  // used only by thread_ once it runs
  std::atomic<bool> stop_{false};

  std::mutex mu_;  // guards removals_ and status_
  std::condition_variable changed_;
  std::vector<wire::ConnectionRemoved> removals_;
  absl::Status status_;

  std::thread thread_;
};

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_E2E_TESTING_REMOVAL_WATCHER_H_
