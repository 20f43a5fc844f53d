// File: client/internal/await_mutex.h
// -----------------------------------------------------------------------------
//
// Not a public header: the lock under ClientCore. An AwaitMutex is a
// std::mutex with absl::Mutex's way of waiting: a thread that holds it waits
// until a condition on the guarded state is true (Await), and the condition
// is checked again whenever another thread may have changed that state.
//
// Why not absl::Mutex: Debian's Abseil is built without ThreadSanitizer, so
// TSan cannot see absl::Mutex lock and unlock, and reports every access it
// guards as a race. std::mutex and std::condition_variable are plain
// pthreads underneath, which TSan understands, so code that uses this class
// stays checkable (scripts/tsan.sh).
//
// The rule that makes waiting correct without a condition variable per
// condition: every release of the mutex by a thread that may have changed the
// guarded state wakes every waiter (notify_all), and each waiter checks its
// own condition again. A release happens in Unlock() and when Await() starts
// to sleep (the caller may have changed the state since it took the lock).
// Sleeping again after a condition turned out false does not wake anyone, so
// two waiters never wake each other in a loop. Waking is cheap when nobody
// waits, and a ClientCore has a handful of waiting threads at most.
//
// The class carries Clang's thread-safety attributes, so members marked
// ABSL_GUARDED_BY(mu_) are checked by -Wthread-safety as with absl::Mutex.
//
// Example:
//
//   AwaitMutex mu_;
//   bool ready_ ABSL_GUARDED_BY(mu_) = false;
//
//   AwaitMutexLock lock(&mu_);
//   auto is_ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
//     return ready_;
//   };
//   if (!mu_.AwaitWithTimeout(is_ready, absl::Seconds(1))) { ... timed out }

#ifndef MANIFOLD_CLIENT_INTERNAL_AWAIT_MUTEX_H_
#define MANIFOLD_CLIENT_INTERNAL_AWAIT_MUTEX_H_

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace manifold::client_internal {

class ABSL_LOCKABLE AwaitMutex {
 public:
  AwaitMutex() = default;
  AwaitMutex(const AwaitMutex&) = delete;
  AwaitMutex& operator=(const AwaitMutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }

  // Releases the mutex and wakes every waiter to check its condition again.
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    mu_.unlock();
    changed_.notify_all();
  }

  // Returns once `condition` is true. The mutex is released while waiting
  // and held again when this returns. REQUIRES: the mutex is held.
  void Await(absl::FunctionRef<bool()> condition)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    AwaitWithDeadline(condition, absl::InfiniteFuture());
  }

  // As Await(), but gives up at `deadline`. Returns the condition's value at
  // the end: false means the deadline passed first. REQUIRES: the mutex is
  // held.
  bool AwaitWithDeadline(absl::FunctionRef<bool()> condition,
                         absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    // The caller holds mu_; `held` borrows that ownership for the waits and
    // gives it back (release) without unlocking.
    std::unique_lock<std::mutex> held(mu_, std::adopt_lock);
    bool satisfied = condition();
    bool may_have_changed_state = true;
    while (!satisfied) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      if (may_have_changed_state) {
        // What the caller did since taking the lock may be what others wait
        // for (e.g. output for the writer to send).
        changed_.notify_all();
        may_have_changed_state = false;
      }
      if (left == absl::InfiniteDuration()) {
        changed_.wait(held);
      } else {
        // Capped so the conversion cannot overflow; the loop waits again.
        changed_.wait_for(held,
                          absl::ToChronoNanoseconds(std::min(left, kMaxWait)));
      }
      satisfied = condition();
    }
    held.release();
    return satisfied;
  }

  // As AwaitWithDeadline(condition, absl::Now() + timeout).
  bool AwaitWithTimeout(absl::FunctionRef<bool()> condition,
                        absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    return AwaitWithDeadline(condition, absl::Now() + timeout);
  }

 private:
  static constexpr absl::Duration kMaxWait = absl::Hours(1);

  std::mutex mu_;
  std::condition_variable changed_;
};

// Holds an AwaitMutex for the scope it lives in, like absl::MutexLock.
class ABSL_SCOPED_LOCKABLE AwaitMutexLock {
 public:
  explicit AwaitMutexLock(AwaitMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
      : mu_(mu) {
    mu_->Lock();
  }
  AwaitMutexLock(const AwaitMutexLock&) = delete;
  AwaitMutexLock& operator=(const AwaitMutexLock&) = delete;
  ~AwaitMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }

 private:
  AwaitMutex* const mu_;
};

}  // namespace manifold::client_internal

#endif  // MANIFOLD_CLIENT_INTERNAL_AWAIT_MUTEX_H_
