#include "client/load/roles.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"

namespace manifold::load {
namespace {

// Bytes of messages one Pump() appends at most: large enough to batch
// writes, small enough that the receivers get a turn soon.
constexpr size_t kBatchBytes = 64 * 1024;

}  // namespace

// ---------------------------------------------------------------------------
// ReceiveTally

ReceiveTally::ReceiveTally(Kind kind, int subscribers,
                           std::vector<SendStream*> streams, uint64_t capacity)
    : kind_(kind),
      subscribers_(subscribers),
      publishers_(static_cast<int>(streams.size())),
      streams_(std::move(streams)),
      counts_(static_cast<size_t>(subscribers) * publishers_, 0) {
  const size_t logs = kind == Kind::kBroadcast
                          ? static_cast<size_t>(subscribers) * publishers_
                          : static_cast<size_t>(publishers_);
  logs_.reserve(logs);
  for (size_t i = 0; i < logs; ++i) logs_.emplace_back(capacity);
  if (kind == Kind::kQueueGroup) next_.assign(counts_.size(), 0);
}

void ReceiveTally::Record(int subscriber, absl::string_view payload,
                          int64_t now_ns) {
  ++received_;
  dirty_ = true;
  if (first_arrival_ns_ == 0) first_arrival_ns_ = now_ns;
  last_arrival_ns_ = now_ns;
  Stamp stamp;
  if (!ReadStamp(payload.data(), payload.size(), stamp) ||
      stamp.publisher >= static_cast<uint32_t>(publishers_)) {
    ++corrupt_;
    return;
  }
  received_bytes_ += payload.size();
  const size_t at =
      static_cast<size_t>(subscriber) * publishers_ + stamp.publisher;
  ++counts_[at];
  if (kind_ == Kind::kBroadcast) {
    logs_[at].Record(stamp.seq);  // counts late arrivals and duplicates
    return;
  }
  logs_[stamp.publisher].Record(stamp.seq);
  // Members see interleaved parts of one stream; each part must be in order.
  uint64_t& next = next_[at];
  if (stamp.seq < next) {
    ++reordered_;
  } else {
    next = stamp.seq + 1;
  }
}

void ReceiveTally::Publish() {
  if (!dirty_) return;
  dirty_ = false;
  received_total_.store(received_, std::memory_order_relaxed);
  for (int p = 0; p < publishers_; ++p) {
    uint64_t progress = kind_ == Kind::kBroadcast ? SendStream::kNever : 0;
    for (int s = 0; s < subscribers_; ++s) {
      const uint64_t count = counts_[static_cast<size_t>(s) * publishers_ + p];
      progress = kind_ == Kind::kBroadcast ? std::min(progress, count)
                                           : progress + count;
    }
    SendStream& stream = *streams_[p];
    stream.progress.store(progress);
    if (progress >= stream.wake_at.load() &&
        stream.wake_at.exchange(SendStream::kNever) != SendStream::kNever &&
        stream.loop != nullptr) {
      stream.loop->Wake();
    }
  }
}

ReceiveTally::Totals ReceiveTally::Finish(
    const std::vector<uint64_t>& sent) const {
  Totals t;
  t.received = received_;
  t.received_bytes = received_bytes_;
  t.corrupt = corrupt_;
  t.first_arrival_ns = first_arrival_ns_;
  t.last_arrival_ns = last_arrival_ns_;
  for (int p = 0; p < publishers_; ++p) {
    const uint64_t n = p < static_cast<int>(sent.size()) ? sent[p] : 0;
    if (kind_ == Kind::kBroadcast) {
      t.expected += n * static_cast<uint64_t>(subscribers_);
      for (int s = 0; s < subscribers_; ++s) {
        const ArrivalLog& log = logs_[static_cast<size_t>(s) * publishers_ + p];
        t.lost += log.Missing(n);
        t.duplicates += log.duplicates();
        t.reordered += log.late();
        t.corrupt += log.out_of_range();
      }
    } else {
      t.expected += n;
      const ArrivalLog& log = logs_[p];
      t.lost += log.Missing(n);
      t.duplicates += log.duplicates();
      t.corrupt += log.out_of_range();
    }
  }
  if (kind_ == Kind::kQueueGroup) t.reordered = reordered_;
  return t;
}

// ---------------------------------------------------------------------------
// Publisher

Publisher::Publisher(uint32_t index, std::vector<MessageTemplate> templates,
                     uint64_t limit, uint64_t window, SendStream& stream,
                     const std::atomic<bool>& stop_sending)
    : index_(index),
      templates_(std::move(templates)),
      limit_(limit),
      window_(std::max<uint64_t>(window, 1)),
      stream_(stream),
      stop_sending_(stop_sending) {
  size_t largest = 1;
  for (const MessageTemplate& t : templates_) {
    largest = std::max(largest, t.bytes.size());
  }
  batch_ = std::max<size_t>(1, kBatchBytes / largest);
}

void Publisher::Finish() {
  done_ = true;
  stream_.sent.store(sent_);
  stream_.done.store(true);
}

bool Publisher::Pump(Link& link, int64_t now_ns) {
  if (done_) return false;
  if (sent_ == limit_ || stop_sending_.load(std::memory_order_relaxed)) {
    Finish();
    return false;
  }
  uint64_t progress = stream_.progress.load(std::memory_order_acquire);
  uint64_t in_flight = sent_ > progress ? sent_ - progress : 0;
  if (in_flight >= window_) {
    // Sleep until half the window has arrived; the receivers wake us. Check
    // again after asking, in case they got there in between.
    const uint64_t resume = sent_ - window_ / 2;
    stream_.wake_at.store(resume);
    progress = stream_.progress.load();
    if (progress < resume) return false;
    stream_.wake_at.store(SendStream::kNever);
    in_flight = sent_ > progress ? sent_ - progress : 0;
  }
  const uint64_t n =
      std::min<uint64_t>({window_ - in_flight, batch_, limit_ - sent_});
  std::string& out = link.output();
  for (uint64_t i = 0; i < n; ++i) {
    const MessageTemplate& t = templates_[sent_ % templates_.size()];
    const size_t at = out.size();
    out.append(t.bytes);
    WriteStamp(Stamp{sent_, index_}, out.data() + at + t.payload_offset);
    ++sent_;
  }
  if (first_send_ns_ == 0) first_send_ns_ = now_ns;
  last_send_ns_ = now_ns;
  stream_.sent.store(sent_, std::memory_order_release);
  return sent_ < limit_;
}

// ---------------------------------------------------------------------------
// Subscriber

void Subscriber::OnEvent(Link& link, const ServerEvent& event, int64_t now_ns) {
  if (event.kind != ServerEvent::Kind::kMessage) return;
  tally_.Record(index_, event.payload, now_ns);
  if (read_bytes_per_second_ > 0) {
    bytes_read_ += event.payload.size();
    Throttle(now_ns);
  }
}

void Subscriber::Throttle(int64_t loop_now_ns) {
  // The loop's time is read once per batch of events: take a fresh one.
  const int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::steady_clock::now().time_since_epoch())
          .count();
  if (first_read_ns_ == 0) first_read_ns_ = now_ns;
  // When the bytes read so far may have been read at the rate.
  const int64_t due_ns =
      first_read_ns_ + static_cast<int64_t>(static_cast<double>(bytes_read_) *
                                            1e9 / read_bytes_per_second_);
  // Sleep in steps of at least a millisecond: the socket fills meanwhile,
  // which is what a slow reader does to the server.
  if (due_ns - now_ns >= 1'000'000) {
    std::this_thread::sleep_for(std::chrono::nanoseconds(due_ns - now_ns));
  }
}

// ---------------------------------------------------------------------------
// Requester

Requester::Requester(uint32_t index, std::string subject, std::string inbox,
                     size_t payload_bytes, int inflight, uint64_t limit,
                     RoundTrips& counters,
                     const std::atomic<bool>& stop_sending)
    : index_(index),
      subject_(std::move(subject)),
      inbox_(std::move(inbox)),
      payload_(payload_bytes, 'r'),
      limit_(limit),
      counters_(counters),
      stop_sending_(stop_sending),
      slots_(static_cast<size_t>(inflight)) {
  samples_.reserve(std::min<uint64_t>(limit, 1 << 24));
}

void Requester::Send(Link& link, size_t slot, int64_t now_ns) {
  const uint64_t seq = sent_++;
  WriteStamp(Stamp{seq, index_}, payload_.data());
  slots_[slot] = Slot{seq, now_ns, true};
  if (link.wire().protocol() == Protocol::kNats) {
    reply_.clear();
    absl::StrAppend(&reply_, inbox_, ".", seq);
    link.wire().AppendPublish(subject_, reply_, payload_, link.output());
  } else {
    link.wire().AppendRequest(subject_, seq + 1, payload_, link.output());
  }
  if (first_send_ns_ == 0) first_send_ns_ = now_ns;
  counters_.sent.store(sent_, std::memory_order_relaxed);
}

void Requester::CheckDone() {
  if (sent_ < limit_ && !stop_sending_.load(std::memory_order_relaxed)) return;
  for (const Slot& s : slots_) {
    if (s.waiting) return;
  }
  counters_.done.store(true);
}

bool Requester::Pump(Link& link, int64_t now_ns) {
  if (!started_) {
    started_ = true;
    for (size_t slot = 0; slot < slots_.size() && sent_ < limit_; ++slot) {
      Send(link, slot, now_ns);
    }
  }
  CheckDone();
  return false;
}

void Requester::OnEvent(Link& link, const ServerEvent& event, int64_t now_ns) {
  uint64_t seq = 0;
  if (event.kind == ServerEvent::Kind::kResponse) {
    if (event.id == 0) {
      ++unexpected_;
      return;
    }
    seq = event.id - 1;
    if (!event.ok) ++failed_;
  } else if (event.kind == ServerEvent::Kind::kMessage) {
    Stamp stamp;
    if (!ReadStamp(event.payload.data(), event.payload.size(), stamp) ||
        stamp.publisher != index_) {
      ++unexpected_;
      return;
    }
    seq = stamp.seq;
  } else {
    return;
  }
  const size_t slot = static_cast<size_t>(seq % slots_.size());
  Slot& s = slots_[slot];
  if (!s.waiting || s.seq != seq) {
    ++unexpected_;
    return;
  }
  s.waiting = false;
  samples_.push_back(now_ns - s.sent_ns);
  ++answered_;
  last_answer_ns_ = now_ns;
  counters_.answered.store(answered_, std::memory_order_relaxed);
  if (sent_ < limit_ && !stop_sending_.load(std::memory_order_relaxed)) {
    Send(link, slot, now_ns);
  }
  CheckDone();
}

// ---------------------------------------------------------------------------
// Responder

void Responder::OnEvent(Link& link, const ServerEvent& event, int64_t now_ns) {
  if (event.kind == ServerEvent::Kind::kMessage && !event.reply_to.empty()) {
    link.wire().AppendPublish(event.reply_to, "", event.payload, link.output(),
                              /*raw_subject=*/true);
    ++answered_;
  } else if (event.kind == ServerEvent::Kind::kRequest) {
    link.wire().AppendRespond(event.id, event.payload, link.output());
    ++answered_;
  }
}

// ---------------------------------------------------------------------------
// Pinger

Pinger::Pinger(uint64_t limit, RoundTrips& counters,
               const std::atomic<bool>& stop_sending)
    : limit_(limit), counters_(counters), stop_sending_(stop_sending) {
  samples_.reserve(std::min<uint64_t>(limit, 1 << 24));
}

bool Pinger::Pump(Link& link, int64_t now_ns) {
  if (waiting_) return false;
  if (sent_ == limit_ || stop_sending_.load(std::memory_order_relaxed)) {
    counters_.done.store(true);
    return false;
  }
  link.wire().AppendPing(++sent_, link.output());
  waiting_ = true;
  sent_ns_ = now_ns;
  if (first_send_ns_ == 0) first_send_ns_ = now_ns;
  counters_.sent.store(sent_, std::memory_order_relaxed);
  return false;
}

void Pinger::OnEvent(Link& link, const ServerEvent& event, int64_t now_ns) {
  if (event.kind != ServerEvent::Kind::kPong) return;
  const bool ours =
      link.wire().protocol() == Protocol::kNats || event.id == sent_;
  if (!waiting_ || !ours) {
    ++unexpected_;
    return;
  }
  waiting_ = false;
  samples_.push_back(now_ns - sent_ns_);
  last_answer_ns_ = now_ns;
  counters_.answered.store(samples_.size(), std::memory_order_relaxed);
}

}  // namespace manifold::load
