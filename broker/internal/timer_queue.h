// File: broker/internal/timer_queue.h
// -----------------------------------------------------------------------------
//
// The broker's timers (handshake deadlines, keepalive checks, request
// timeouts, close lingers, statistics), ordered by due time. The broker reads
// no clock: callers pass `now`, and Broker::NextDeadline() reports the earliest
// due time so the embedder can arm its own timer.
//
// Timers that tie at the same instant fire in the order they were scheduled,
// so a run is deterministic. Cancelling is O(log n) and leaves nothing behind,
// so the queue holds only live timers.
//
// Example:
//
//   TimerQueue timers;
//   TimerQueue::Key key = timers.Schedule(now + absl::Seconds(5),
//                                         TimerKind::kRequest,
//                                         request.value());
//   timers.Cancel(key);                         // the response arrived
//   while (auto due = timers.PopDue(now)) Fire(*due);

#ifndef MANIFOLD_BROKER_INTERNAL_TIMER_QUEUE_H_
#define MANIFOLD_BROKER_INTERNAL_TIMER_QUEUE_H_

#include <cstdint>
#include <optional>

#include "absl/container/btree_map.h"
#include "absl/time/time.h"

namespace manifold::internal {

enum class TimerKind : uint8_t {
  kHandshake,      // target: connection id
  kKeepalive,      // target: connection id
  kLinger,         // target: connection id
  kRequest,        // target: request id
  kStatistics,     // target: unused
  kStall,          // target: connection id (others wait on its output)
  kCodecTick,      // target: connection id (ProtocolCodec::Tick)
  kSessionExpiry,  // target: connection id of a session without a link
  kPoll,           // target: connection id of a polled session
  kStreams,        // target: unused (stream retention by age, syncs)
  kConsumer,       // target: Consumer::id (acknowledgement deadlines)
};

class TimerQueue {
 public:
  // Identifies one scheduled timer. A default Key refers to no timer.
  struct Key {
    absl::Time when = absl::InfinitePast();
    uint64_t sequence = 0;
    bool valid() const { return sequence != 0; }
    friend bool operator<(const Key& a, const Key& b) {
      return a.when != b.when ? a.when < b.when : a.sequence < b.sequence;
    }
  };

  struct Timer {
    Key key;
    TimerKind kind;
    uint64_t target;
  };

  // Schedules a timer and returns its key.
  Key Schedule(absl::Time when, TimerKind kind, uint64_t target) {
    const Key key{when, ++last_sequence_};
    timers_.emplace(key, Entry{kind, target});
    return key;
  }

  // Cancels the timer `key` if it is still scheduled; sets `key` to no timer.
  void Cancel(Key& key) {
    if (key.valid()) timers_.erase(key);
    key = Key();
  }

  // The earliest due time, or nullopt when nothing is scheduled.
  std::optional<absl::Time> Next() const {
    if (timers_.empty()) return std::nullopt;
    return timers_.begin()->first.when;
  }

  // Removes and returns the earliest timer due at or before `now`.
  std::optional<Timer> PopDue(absl::Time now) {
    if (timers_.empty() || timers_.begin()->first.when > now) {
      return std::nullopt;
    }
    auto it = timers_.begin();
    Timer timer{it->first, it->second.kind, it->second.target};
    timers_.erase(it);
    return timer;
  }

  size_t size() const { return timers_.size(); }

 private:
  struct Entry {
    TimerKind kind;
    uint64_t target;
  };
  absl::btree_map<Key, Entry> timers_;
  uint64_t last_sequence_ = 0;
};

}  // namespace manifold::internal

#endif  // MANIFOLD_BROKER_INTERNAL_TIMER_QUEUE_H_
