// File: core/ids.h
// -----------------------------------------------------------------------------
//
// Strong id types for the things a broker hands out: connections,
// subscriptions and requests. Each is a distinct type wrapping a uint64, so a
// subscription id can never be passed where a connection id is expected.
//
// Ids are allocated from counters (see `IdAllocator`), never from a random
// source, so the same inputs always produce the same ids. The value 0 means
// "no id"; allocated ids start at 1.
//
// Example:
//
//   IdAllocator<ConnectionId> connection_ids;
//   ConnectionId a = connection_ids.Next();   // a.value() == 1
//   SubscriptionId s(42);
//   // a == s;                                // does not compile
//   absl::flat_hash_map<ConnectionId, int> by_connection;
//   by_connection[a] = 3;

#ifndef MANIFOLD_CORE_IDS_H_
#define MANIFOLD_CORE_IDS_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/strings/str_cat.h"

namespace manifold {

// An id of kind `Tag`. Cheap to copy, hashable with absl::Hash, ordered.
template <typename Tag>
class StrongId {
 public:
  // The "no id" value.
  constexpr StrongId() = default;
  constexpr explicit StrongId(uint64_t value) : value_(value) {}

  constexpr uint64_t value() const { return value_; }
  // Returns true for every id except the "no id" value 0.
  constexpr bool valid() const { return value_ != 0; }

  friend constexpr bool operator==(StrongId a, StrongId b) {
    return a.value_ == b.value_;
  }
  friend constexpr bool operator!=(StrongId a, StrongId b) {
    return a.value_ != b.value_;
  }
  friend constexpr bool operator<(StrongId a, StrongId b) {
    return a.value_ < b.value_;
  }
  friend constexpr bool operator>(StrongId a, StrongId b) {
    return a.value_ > b.value_;
  }
  friend constexpr bool operator<=(StrongId a, StrongId b) {
    return a.value_ <= b.value_;
  }
  friend constexpr bool operator>=(StrongId a, StrongId b) {
    return a.value_ >= b.value_;
  }

  template <typename H>
  friend H AbslHashValue(H h, StrongId id) {
    return H::combine(std::move(h), id.value_);
  }

  friend std::ostream& operator<<(std::ostream& os, StrongId id) {
    return os << Tag::kPrefix << id.value_;
  }

  // Returns e.g. "conn#7": the form used in logs and error messages.
  std::string ToString() const { return absl::StrCat(Tag::kPrefix, value_); }

 private:
  uint64_t value_ = 0;
};

struct ConnectionIdTag {
  static constexpr char kPrefix[] = "conn#";
};
struct SubscriptionIdTag {
  static constexpr char kPrefix[] = "sub#";
};
struct RequestIdTag {
  static constexpr char kPrefix[] = "req#";
};

// A connection (also the session id sent to the client in Welcome).
using ConnectionId = StrongId<ConnectionIdTag>;
// A subscription; unique across the broker, never reused.
using SubscriptionId = StrongId<SubscriptionIdTag>;
// A request routed to a server; unique across the broker, never reused.
using RequestId = StrongId<RequestIdTag>;

// Hands out ids of one kind in increasing order, starting at 1.
template <typename Id>
class IdAllocator {
 public:
  // Returns a fresh id, greater than every id returned before.
  Id Next() { return Id(++last_); }
  // Returns the most recently allocated id, or the "no id" value.
  Id last() const { return Id(last_); }

 private:
  uint64_t last_ = 0;
};

}  // namespace manifold

#endif  // MANIFOLD_CORE_IDS_H_
