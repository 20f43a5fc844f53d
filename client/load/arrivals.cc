#include "client/load/arrivals.h"

#include <cstring>

namespace manifold::load {

ArrivalLog::ArrivalLog(uint64_t capacity)
    : seen_((capacity + 63) / 64, 0), capacity_(capacity) {}

Arrival ArrivalLog::Record(uint64_t seq) {
  ++received_;
  if (seq >= capacity_) {
    ++out_of_range_;
    return Arrival::kOutOfRange;
  }
  uint64_t& word = seen_[seq >> 6];
  const uint64_t bit = uint64_t{1} << (seq & 63);
  if (word & bit) {
    ++duplicates_;
    return Arrival::kDuplicate;
  }
  word |= bit;
  ++distinct_;
  if (seq < next_) {
    ++late_;
    return Arrival::kLate;
  }
  next_ = seq + 1;
  return Arrival::kInOrder;
}

uint64_t ArrivalLog::Missing(uint64_t sent) const {
  if (sent > capacity_) sent = capacity_;
  uint64_t present = 0;
  const uint64_t full_words = sent / 64;
  for (uint64_t i = 0; i < full_words; ++i) {
    present += static_cast<uint64_t>(__builtin_popcountll(seen_[i]));
  }
  if (const uint64_t rest = sent % 64; rest != 0) {
    present += static_cast<uint64_t>(
        __builtin_popcountll(seen_[full_words] & ((uint64_t{1} << rest) - 1)));
  }
  return sent - present;
}

void WriteStamp(const Stamp& stamp, char* payload) {
  std::memcpy(payload, &stamp.seq, sizeof(stamp.seq));
  std::memcpy(payload + sizeof(stamp.seq), &stamp.publisher,
              sizeof(stamp.publisher));
}

bool ReadStamp(const char* payload, size_t size, Stamp& stamp) {
  if (size < kStampBytes) return false;
  std::memcpy(&stamp.seq, payload, sizeof(stamp.seq));
  std::memcpy(&stamp.publisher, payload + sizeof(stamp.seq),
              sizeof(stamp.publisher));
  return true;
}

}  // namespace manifold::load
