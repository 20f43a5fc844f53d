// File: client/load/arrivals.h
// -----------------------------------------------------------------------------
//
// Accounting for numbered messages, so the load tool can say exactly what
// arrived: every publisher numbers its messages 0, 1, 2, ... and each stream
// (one publisher as seen by one subscriber, or by a whole queue group) keeps
// an ArrivalLog. A bitmap remembers which numbers came, so duplicates are told
// apart from late arrivals and nothing is guessed: at the end, what did not
// come is missing.
//
// Example:
//
//   ArrivalLog log(/*capacity=*/1'000'000);
//   for (uint64_t seq : arrivals) log.Record(seq);
//   uint64_t lost = log.Missing(/*sent=*/publisher_sent);
//   uint64_t late = log.late();   // arrived after a higher number

#ifndef MANIFOLD_CLIENT_LOAD_ARRIVALS_H_
#define MANIFOLD_CLIENT_LOAD_ARRIVALS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace manifold::load {

// What one arrival was.
enum class Arrival {
  kInOrder,     // first time, and higher than every number before it
  kLate,        // first time, but a higher number came before it
  kDuplicate,   // this number came before
  kOutOfRange,  // not a number the publisher can have sent
};

class ArrivalLog {
 public:
  // Numbers 0 .. capacity-1 can be recorded. Takes capacity/8 bytes.
  explicit ArrivalLog(uint64_t capacity);

  Arrival Record(uint64_t seq);

  // Arrivals of every kind.
  uint64_t received() const { return received_; }
  // Numbers that came at least once.
  uint64_t distinct() const { return distinct_; }
  uint64_t late() const { return late_; }
  uint64_t duplicates() const { return duplicates_; }
  uint64_t out_of_range() const { return out_of_range_; }
  // Of the first `sent` numbers, how many never came.
  uint64_t Missing(uint64_t sent) const;

 private:
  std::vector<uint64_t> seen_;
  uint64_t capacity_;
  uint64_t next_ = 0;  // one past the highest number seen
  uint64_t received_ = 0;
  uint64_t distinct_ = 0;
  uint64_t late_ = 0;
  uint64_t duplicates_ = 0;
  uint64_t out_of_range_ = 0;
};

// The numbers a message carries in its first 12 payload bytes (the rest is
// filler): its sequence number and its publisher's index.
inline constexpr size_t kStampBytes = 12;
struct Stamp {
  uint64_t seq = 0;
  uint32_t publisher = 0;
};
// REQUIRES: `payload` has room for kStampBytes.
void WriteStamp(const Stamp& stamp, char* payload);
// Returns false when `size` < kStampBytes.
bool ReadStamp(const char* payload, size_t size, Stamp& stamp);

}  // namespace manifold::load

#endif  // MANIFOLD_CLIENT_LOAD_ARRIVALS_H_
