// File: tests/e2e/testing/healthy_pair.h
// -----------------------------------------------------------------------------
//
// For end-to-end tests of a broker under attack: a well-behaved publisher and
// subscriber that keep talking through the broker, each on a thread of its
// own, while a test misbehaves on other connections. The publisher sends
// numbered messages at a steady rate; the subscriber checks that every number
// arrives once and in order, and answers the broker's keepalive pings. Stop()
// says whether anything was lost, so a test can show that an attack on one
// connection did not touch another.
//
//   absl::StatusOr<std::unique_ptr<HealthyPair>> pair =
//       HealthyPair::Start(broker.tcp(), "healthy/0");
//   ... attack the broker ...
//   EXPECT_TRUE((*pair)->WaitForProgress(50, absl::Seconds(5)));
//   HealthyPair::Report report = (*pair)->Stop();
//   EXPECT_TRUE(report.ok()) << report.ToString();

#ifndef MANIFOLD_TESTS_E2E_TESTING_HEALTHY_PAIR_H_
#define MANIFOLD_TESTS_E2E_TESTING_HEALTHY_PAIR_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/transports/testing/wire_client.h"
#include "transports/sockets/endpoint.h"

namespace manifold::testing {

class HealthyPair {
 public:
  struct Report {
    uint64_t published = 0;
    uint64_t received = 0;
    // Messages that arrived with a number other than the next one expected.
    uint64_t out_of_order = 0;
    // The longest time from publish to delivery.
    absl::Duration max_latency;
    // The first thing that went wrong (a gap, a connection error), if any.
    std::string problem;

    bool ok() const {
      return problem.empty() && out_of_order == 0 && received == published;
    }
    std::string ToString() const;
  };

  // Connects both clients to `endpoint`, subscribes to `topic` and starts
  // publishing one message every `interval`.
  static absl::StatusOr<std::unique_ptr<HealthyPair>> Start(
      const Endpoint& endpoint, absl::string_view topic,
      absl::Duration interval = absl::Milliseconds(2));

  HealthyPair(const HealthyPair&) = delete;
  HealthyPair& operator=(const HealthyPair&) = delete;
  // Stops the threads if Stop() was not called.
  ~HealthyPair();

  // Returns true once `count` more messages than now have arrived, false if
  // they did not within `timeout`.
  bool WaitForProgress(uint64_t count, absl::Duration timeout);

  // Stops publishing, waits (a few seconds at most) for the subscriber to
  // receive everything published, stops both threads and reports.
  // Idempotent: later calls return the same report.
  Report Stop();

 private:
  HealthyPair(WireClient publisher, WireClient subscriber, std::string topic,
              absl::Duration interval);
  void Publish();
  void Subscribe();
  void NoteProblem(std::string problem);

  const std::string topic_;
  const absl::Duration interval_;
  WireClient publisher_;   // used only by publish_thread_
  WireClient subscriber_;  // used only by subscribe_thread_

  std::atomic<bool> stop_publishing_{false};
  std::atomic<bool> stop_subscribing_{false};

  // Guards everything below it but the threads; progress_ is signalled on
  // each delivery and each problem.
  std::mutex mu_;
  std::condition_variable progress_;
  uint64_t published_ = 0;
  uint64_t received_ = 0;
  uint64_t out_of_order_ = 0;
  absl::Duration max_latency_;
  std::string problem_;
  bool stopped_ = false;
  Report report_;

  std::thread publish_thread_;
  std::thread subscribe_thread_;
};

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_E2E_TESTING_HEALTHY_PAIR_H_
