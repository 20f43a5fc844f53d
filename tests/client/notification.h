// File: tests/client/notification.h
// -----------------------------------------------------------------------------
//
// For tests: a one-shot event between threads, like absl::Notification, but
// built on std::mutex and std::condition_variable. Debian's Abseil is not
// built with ThreadSanitizer, so TSan cannot see absl::Notification hand
// anything over and would report whatever it guards as a race
// (scripts/tsan.sh runs these tests under TSan).
//
//   Notification done;
//   std::thread worker([&] { result = Work(); done.Notify(); });
//   ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
//   Use(result);   // written before Notify(): visible here

#ifndef MANIFOLD_TESTS_CLIENT_NOTIFICATION_H_
#define MANIFOLD_TESTS_CLIENT_NOTIFICATION_H_

#include <condition_variable>
#include <mutex>

#include "absl/time/time.h"

namespace manifold::testing {

class Notification {
 public:
  // Marks the event as happened and wakes every waiter. Call it once.
  void Notify() {
    std::lock_guard<std::mutex> lock(mu_);
    notified_ = true;
    notified_changed_.notify_all();
  }

  bool HasBeenNotified() {
    std::lock_guard<std::mutex> lock(mu_);
    return notified_;
  }

  // Returns true once Notify() has been called, false if it was not within
  // `timeout`.
  bool WaitForNotificationWithTimeout(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return notified_changed_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                                      [this] { return notified_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable notified_changed_;
  bool notified_ = false;
};

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_CLIENT_NOTIFICATION_H_
