#include "client/load/durable_roles.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/load/arrivals.h"

namespace manifold::load {
namespace {

// Bytes of publishes one Pump() appends at most: large enough to batch
// writes, small enough that the acks get read soon.
constexpr size_t kBatchBytes = 64 * 1024;
// How much of a bad answer an error message quotes.
constexpr size_t kQuoteBytes = 200;

// The digits of `text` from `at` on, as a number; false when there are none
// or too many. `end` is set to where they stop.
bool DigitsAt(absl::string_view text, size_t at, uint64_t& value, size_t& end) {
  end = at;
  while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
  if (end == at || end - at > 19) return false;
  return absl::SimpleAtoi(text.substr(at, end - at), &value);
}

}  // namespace

PubAck ReadPubAck(absl::string_view payload) {
  PubAck ack;
  // nats-server: {"error":{"code":503,"err_code":10077,"description":"..."}}
  if (absl::StrContains(payload, "\"error\"")) {
    const absl::string_view key = "\"description\":\"";
    const size_t at = payload.find(key);
    if (at != absl::string_view::npos) {
      const size_t start = at + key.size();
      const size_t end = payload.find('"', start);
      ack.error = std::string(payload.substr(
          start, end == absl::string_view::npos ? kQuoteBytes : end - start));
    } else {
      ack.error = std::string(payload.substr(0, kQuoteBytes));
    }
    return ack;
  }
  const absl::string_view key = "\"seq\":";
  size_t at = payload.find(key);
  if (at == absl::string_view::npos) {
    ack.error = absl::StrCat("an answer without \"seq\": ",
                             payload.substr(0, kQuoteBytes));
    return ack;
  }
  at += key.size();
  while (at < payload.size() && payload[at] == ' ') ++at;
  size_t end = 0;
  if (!DigitsAt(payload, at, ack.seq, end)) {
    ack.error = absl::StrCat("an answer whose \"seq\" is no number: ",
                             payload.substr(0, kQuoteBytes));
    return ack;
  }
  ack.ok = true;
  return ack;
}

// ---------------------------------------------------------------------------
// DurablePublisher

DurablePublisher::DurablePublisher(uint32_t index, std::string subject,
                                   std::string inbox, size_t payload_bytes,
                                   uint64_t window, uint64_t limit,
                                   RoundTrips& counters,
                                   const std::atomic<bool>& stop_sending)
    : index_(index),
      subject_(std::move(subject)),
      inbox_(std::move(inbox)),
      payload_(payload_bytes, 'd'),
      limit_(limit),
      counters_(counters),
      stop_sending_(stop_sending),
      slots_(static_cast<size_t>(std::max<uint64_t>(window, 1))),
      batch_(std::max<size_t>(1, kBatchBytes / (payload_bytes + 64))) {
  samples_.reserve(std::min<uint64_t>(limit, 1 << 24));
}

bool DurablePublisher::Pump(Link& link, int64_t now_ns) {
  const bool nats = link.wire().protocol() == Protocol::kNats;
  size_t n = 0;
  while (n < batch_ && sent_ < limit_ &&
         !stop_sending_.load(std::memory_order_relaxed)) {
    // Message `sent_` takes the slot of the one `window` before it: it goes
    // once that one is answered, so at most `window` wait at any time.
    Slot& slot = slots_[sent_ % slots_.size()];
    if (slot.waiting) break;
    const uint64_t seq = sent_++;
    WriteStamp(Stamp{seq, index_}, payload_.data());
    slot = Slot{seq, now_ns, true};
    ++outstanding_;
    if (nats) {
      reply_.clear();
      absl::StrAppend(&reply_, inbox_, ".", seq);
    }
    link.wire().AppendAckedPublish(subject_, reply_, seq + 1, payload_,
                                   link.output());
    ++n;
  }
  if (n > 0) {
    if (first_send_ns_ == 0) first_send_ns_ = now_ns;
    counters_.sent.store(sent_, std::memory_order_relaxed);
  }
  CheckDone();
  return n == batch_ && sent_ < limit_ &&
         !slots_[sent_ % slots_.size()].waiting;
}

void DurablePublisher::OnEvent(Link& link, const ServerEvent& event,
                               int64_t now_ns) {
  switch (event.kind) {
    case ServerEvent::Kind::kAck:
      if (event.id == 0) {
        ++unexpected_;
        return;
      }
      Settle(event.id - 1, true, "", false, now_ns);
      return;
    case ServerEvent::Kind::kError:
      // Native: the publish with this op id was refused (an error about no
      // operation is only counted by the loop).
      if (event.id != 0) Settle(event.id - 1, false, event.text, false, now_ns);
      return;
    case ServerEvent::Kind::kMessage: {
      // NATS: the PubAck for "<inbox>.<number>".
      uint64_t seq = 0;
      size_t end = 0;
      if (!absl::StartsWith(event.subject, inbox_) ||
          event.subject.size() <= inbox_.size() + 1 ||
          event.subject[inbox_.size()] != '.' ||
          !DigitsAt(event.subject, inbox_.size() + 1, seq, end) ||
          end != event.subject.size()) {
        ++unexpected_;
        return;
      }
      const PubAck ack = ReadPubAck(event.payload);
      Settle(seq, ack.ok, ack.error, true, now_ns);
      return;
    }
    default:
      return;
  }
}

void DurablePublisher::Settle(uint64_t seq, bool ok, absl::string_view why,
                              bool in_reply, int64_t now_ns) {
  Slot& slot = slots_[seq % slots_.size()];
  if (!slot.waiting || slot.seq != seq) {
    ++unexpected_;
    return;
  }
  slot.waiting = false;
  --outstanding_;
  last_ack_ns_ = now_ns;
  if (ok) {
    ++acked_;
    samples_.push_back(now_ns - slot.sent_ns);
  } else {
    ++refused_;
    if (in_reply) ++refused_in_replies_;
    if (first_refusal_.empty()) first_refusal_ = std::string(why);
  }
  counters_.answered.store(acked_ + refused_, std::memory_order_relaxed);
  CheckDone();
}

void DurablePublisher::CheckDone() {
  if (outstanding_ > 0) return;
  if (sent_ < limit_ && !stop_sending_.load(std::memory_order_relaxed)) return;
  counters_.done.store(true);
}

// ---------------------------------------------------------------------------
// ReplayReader

ReplayReader::ReplayReader(std::string subject, std::string stream,
                           uint64_t from_seq, uint64_t limit,
                           RoundTrips& counters)
    : subject_(std::move(subject)),
      stream_(std::move(stream)),
      from_seq_(from_seq),
      limit_(limit),
      counters_(counters),
      next_seq_(from_seq) {}

bool ReplayReader::Pump(Link& link, int64_t now_ns) {
  if (subscribed_) return false;
  subscribed_ = true;
  subscribe_ns_ = now_ns;
  if (!link.wire().AppendReplaySubscribe(subject_, stream_, from_seq_, kOpId,
                                         link.output())) {
    refused_ = true;  // a protocol without replays; options forbid it
    counters_.done.store(true);
    return false;
  }
  counters_.sent.store(1, std::memory_order_relaxed);
  if (limit_ == 0) counters_.done.store(true);
  return false;
}

void ReplayReader::OnEvent(Link& link, const ServerEvent& event,
                           int64_t now_ns) {
  if (event.kind == ServerEvent::Kind::kError && event.id == kOpId) {
    refused_ = true;
    counters_.done.store(true);
    return;
  }
  if (event.kind != ServerEvent::Kind::kMessage) return;
  if (event.stream_seq == 0) {
    ++live_;
    return;
  }
  if (received_ == limit_) return;
  if (event.stream_seq < next_seq_) {
    ++out_of_order_;
  } else {
    skipped_ += event.stream_seq - next_seq_;
    next_seq_ = event.stream_seq + 1;
  }
  ++received_;
  received_bytes_ += event.payload.size();
  last_arrival_ns_ = now_ns;
  counters_.answered.store(received_, std::memory_order_relaxed);
  if (received_ == limit_) counters_.done.store(true);
}

}  // namespace manifold::load
