// File: client/load/roles.h
// -----------------------------------------------------------------------------
//
// What each connection of a load run does in the measured phase, and the
// bookkeeping that lets the run check every message:
//
//   Publisher   sends numbered messages as fast as its window allows: at most
//               `window` of its messages may be on their way (sent, not yet
//               received by every subscriber, or by the queue group). The
//               window keeps both servers inside their buffers, so a run
//               measures routing, not slow-consumer handling.
//   Subscriber  records each arrival in the run's ReceiveTally.
//   Requester   keeps `inflight` requests outstanding and times each answer.
//   Responder   echoes every request to its reply subject (NATS) or answers
//               it with Respond (native).
//   Pinger      one ping at a time, timed: the round-trip floor.
//
// Publishers and receivers may run on different threads: a SendStream is
// what they share (atomics), and a publisher whose window is full sleeps until
// the receivers' loop sees enough of its messages and wakes it.
//
// Example (what RunLoad does, simplified):
//
//   SendStream stream;
//   ReceiveTally tally(ReceiveTally::Kind::kBroadcast, 1, {&stream}, 1000);
//   Publisher pub(0, templates, 1000, 256, stream, stop_sending);
//   Subscriber sub(tally, 0);
//   sending_loop.Add(*pub_link, pub);
//   receiving_loop.Add(*sub_link, sub);
//   receiving_loop.AddTurnHook([&] { tally.Publish(); });

#ifndef MANIFOLD_CLIENT_LOAD_ROLES_H_
#define MANIFOLD_CLIENT_LOAD_ROLES_H_

#include <atomic>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "client/load/arrivals.h"
#include "client/load/link.h"
#include "client/load/load_loop.h"
#include "client/load/load_wire.h"

namespace manifold::load {

// One publisher's progress, shared with the receivers.
struct SendStream {
  static constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
  // Messages sent so far (written by the publisher).
  std::atomic<uint64_t> sent{0};
  // Set once the publisher will send no more.
  std::atomic<bool> done{false};
  // Messages every receiver has (broadcast: the slowest subscriber's count;
  // queue group: the group's total). Written by the receivers.
  std::atomic<uint64_t> progress{0};
  // When progress reaches this, wake `loop` (the publisher waits).
  std::atomic<uint64_t> wake_at{kNever};
  LoadLoop* loop = nullptr;
};

// Every arrival of a run's subscribers, checked against the numbers the
// publishers sent. Used from the receiving loop's thread only; Publish()
// shares the progress.
class ReceiveTally {
 public:
  enum class Kind {
    kBroadcast,   // every subscriber gets every message
    kQueueGroup,  // the subscribers form one queue group
  };

  // `streams` (one per publisher, not owned) must outlive the tally.
  // Publishers number their messages below `capacity`.
  ReceiveTally(Kind kind, int subscribers, std::vector<SendStream*> streams,
               uint64_t capacity);

  // Subscriber `subscriber` received `payload`.
  void Record(int subscriber, absl::string_view payload, int64_t now_ns);
  // Shares progress with the publishers (waking those that wait) and the
  // total with the runner. Cheap when nothing arrived since the last call.
  void Publish();

  // Thread-safe: arrivals so far.
  uint64_t received_total() const {
    return received_total_.load(std::memory_order_relaxed);
  }

  // After the run (from any thread once the loop has stopped).
  struct Totals {
    uint64_t expected = 0;
    uint64_t received = 0;
    uint64_t received_bytes = 0;
    uint64_t lost = 0;
    uint64_t duplicates = 0;
    uint64_t reordered = 0;
    uint64_t corrupt = 0;
    int64_t first_arrival_ns = 0;
    int64_t last_arrival_ns = 0;
  };
  // `sent[p]` is what publisher p sent in the end.
  Totals Finish(const std::vector<uint64_t>& sent) const;

 private:
  const Kind kind_;
  const int subscribers_;
  const int publishers_;
  std::vector<SendStream*> streams_;
  // Broadcast: one log per (subscriber, publisher), at s * P + p. Queue
  // group: one per publisher.
  std::vector<ArrivalLog> logs_;
  // Arrivals per (subscriber, publisher), at s * P + p.
  std::vector<uint64_t> counts_;
  // Queue group: one past the last number each member got from each
  // publisher, to check order per member.
  std::vector<uint64_t> next_;
  uint64_t reordered_ = 0;
  uint64_t corrupt_ = 0;
  uint64_t received_ = 0;
  uint64_t received_bytes_ = 0;
  int64_t first_arrival_ns_ = 0;
  int64_t last_arrival_ns_ = 0;
  bool dirty_ = false;
  std::atomic<uint64_t> received_total_{0};
};

class Publisher final : public Role {
 public:
  // Sends `limit` messages (fewer if `stop_sending` is set first), cycling
  // through `templates` (one per subject), stamping each payload with its
  // number and `index`.
  Publisher(uint32_t index, std::vector<MessageTemplate> templates,
            uint64_t limit, uint64_t window, SendStream& stream,
            const std::atomic<bool>& stop_sending);

  bool Pump(Link& link, int64_t now_ns) override;
  void OnEvent(Link& link, const ServerEvent& event, int64_t now_ns) override {}

  int64_t first_send_ns() const { return first_send_ns_; }
  int64_t last_send_ns() const { return last_send_ns_; }

 private:
  void Finish();

  const uint32_t index_;
  const std::vector<MessageTemplate> templates_;
  const uint64_t limit_;
  const uint64_t window_;
  SendStream& stream_;
  const std::atomic<bool>& stop_sending_;
  size_t batch_ = 1;  // messages per Pump at most (about 64 KiB)
  uint64_t sent_ = 0;
  bool done_ = false;
  int64_t first_send_ns_ = 0;
  int64_t last_send_ns_ = 0;
};

class Subscriber final : public Role {
 public:
  // Reads at most `read_bytes_per_second` payload bytes per second (0: as
  // fast as it can), by sleeping on its loop's thread: a slow reader.
  Subscriber(ReceiveTally& tally, int index, uint64_t read_bytes_per_second = 0)
      : tally_(tally),
        index_(index),
        read_bytes_per_second_(read_bytes_per_second) {}
  void OnEvent(Link& link, const ServerEvent& event, int64_t now_ns) override;

 private:
  // Sleeps until `bytes_read_` is no more than the rate allows.
  void Throttle(int64_t loop_now_ns);

  ReceiveTally& tally_;
  const int index_;
  const uint64_t read_bytes_per_second_;
  uint64_t bytes_read_ = 0;
  int64_t first_read_ns_ = 0;
};

// Counters a round-trip role shares with the runner.
struct RoundTrips {
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> answered{0};
  std::atomic<bool> done{false};
};

class Requester final : public Role {
 public:
  // Sends `limit` requests (fewer if `stop_sending` is set first) on
  // `subject`, keeping `inflight` outstanding. NATS: answers come to
  // "<inbox>.<number>", which the link is subscribed to as "<inbox>.*".
  Requester(uint32_t index, std::string subject, std::string inbox,
            size_t payload_bytes, int inflight, uint64_t limit,
            RoundTrips& counters, const std::atomic<bool>& stop_sending);

  bool Pump(Link& link, int64_t now_ns) override;
  void OnEvent(Link& link, const ServerEvent& event, int64_t now_ns) override;

  std::vector<int64_t>& samples() { return samples_; }
  uint64_t unexpected() const { return unexpected_; }
  uint64_t failed() const { return failed_; }
  int64_t first_send_ns() const { return first_send_ns_; }
  int64_t last_answer_ns() const { return last_answer_ns_; }

 private:
  struct Slot {
    uint64_t seq = 0;
    int64_t sent_ns = 0;
    bool waiting = false;
  };
  void Send(Link& link, size_t slot, int64_t now_ns);
  void CheckDone();

  const uint32_t index_;
  const std::string subject_;
  const std::string inbox_;
  std::string payload_;
  const uint64_t limit_;
  RoundTrips& counters_;
  const std::atomic<bool>& stop_sending_;
  std::vector<Slot> slots_;
  bool started_ = false;
  uint64_t sent_ = 0;
  uint64_t answered_ = 0;
  uint64_t unexpected_ = 0;
  uint64_t failed_ = 0;
  std::string reply_;
  std::vector<int64_t> samples_;
  int64_t first_send_ns_ = 0;
  int64_t last_answer_ns_ = 0;
};

class Responder final : public Role {
 public:
  void OnEvent(Link& link, const ServerEvent& event, int64_t now_ns) override;
  uint64_t answered() const { return answered_; }

 private:
  uint64_t answered_ = 0;
};

class Pinger final : public Role {
 public:
  Pinger(uint64_t limit, RoundTrips& counters,
         const std::atomic<bool>& stop_sending);
  bool Pump(Link& link, int64_t now_ns) override;
  void OnEvent(Link& link, const ServerEvent& event, int64_t now_ns) override;

  std::vector<int64_t>& samples() { return samples_; }
  uint64_t unexpected() const { return unexpected_; }
  int64_t first_send_ns() const { return first_send_ns_; }
  int64_t last_answer_ns() const { return last_answer_ns_; }

 private:
  const uint64_t limit_;
  RoundTrips& counters_;
  const std::atomic<bool>& stop_sending_;
  uint64_t sent_ = 0;
  bool waiting_ = false;
  int64_t sent_ns_ = 0;
  uint64_t unexpected_ = 0;
  std::vector<int64_t> samples_;
  int64_t first_send_ns_ = 0;
  int64_t last_answer_ns_ = 0;
};

}  // namespace manifold::load

#endif  // MANIFOLD_CLIENT_LOAD_ROLES_H_
