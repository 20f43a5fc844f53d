// File: client/load/durable_roles.h
// -----------------------------------------------------------------------------
//
// The roles of the durable-stream scenarios (client/load/load_options.h):
//
//   DurablePublisher  publishes numbered messages to a subject a stream
//                     captures, keeping at most `window` of them waiting for
//                     the server's durable acknowledgement, and times each
//                     one from publish to ack. NATS: each publish carries the
//                     reply subject "<inbox>.<number>" (the link subscribes to
//                     "<inbox>.*", as nats.js does) and the answer there is a
//                     JetStream PubAck, {"stream":"S","seq":N}, from manifoldd
//                     and nats-server -js alike. Native: Publish with ack and
//                     op id number + 1, answered by Ack or Error.
//   ReplayReader      subscribes once with a replay of a stream (native
//                     Subscribe.replay) and counts the stored messages that
//                     arrive, checking their stream sequences follow one
//                     another from the first one asked for.
//
// Every acknowledgement is accounted for: acked, refused (with the server's
// reason), unexpected (no publish waits for it) or, when the run ends
// first, lost.
//
// Example (what RunLoad does, simplified):
//
//   RoundTrips counters;
//   DurablePublisher pub(0, "bench.r1.data", "_INBOX.benchr1.0", 16,
//                        /*window=*/4000, /*limit=*/100000, counters, stop);
//   loop.Add(*link, pub);   // the link subscribed to "_INBOX.benchr1.0.*"
//   ...
//   Summarize(pub.samples());

#ifndef MANIFOLD_CLIENT_LOAD_DURABLE_ROLES_H_
#define MANIFOLD_CLIENT_LOAD_DURABLE_ROLES_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "client/load/link.h"
#include "client/load/load_loop.h"
#include "client/load/load_wire.h"
#include "client/load/roles.h"

namespace manifold::load {

// What a JetStream PubAck payload says.
struct PubAck {
  // True for {"stream":...,"seq":N}; false for an {"error":...} answer or
  // anything without a "seq".
  bool ok = false;
  uint64_t seq = 0;
  // When !ok: the server's description, or what was wrong with the answer.
  std::string error;
};

// Reads the answer to a NATS publish to a stored subject.
PubAck ReadPubAck(absl::string_view payload);

class DurablePublisher final : public Role {
 public:
  // Publishes `limit` messages of `payload_bytes` (fewer if `stop_sending`
  // is set first) on `subject` (NATS form), at most `window` unacknowledged.
  // NATS answers come to "<inbox>.<number>". REQUIRES: window >= 1.
  DurablePublisher(uint32_t index, std::string subject, std::string inbox,
                   size_t payload_bytes, uint64_t window, uint64_t limit,
                   RoundTrips& counters, const std::atomic<bool>& stop_sending);

  bool Pump(Link& link, int64_t now_ns) override;
  void OnEvent(Link& link, const ServerEvent& event, int64_t now_ns) override;

  // Publish-to-ack times of the acknowledged messages, in ns.
  std::vector<int64_t>& samples() { return samples_; }
  uint64_t sent() const { return sent_; }
  uint64_t acked() const { return acked_; }
  // Publishes the server refused: an Error frame (native, also counted by the
  // loop's ErrorLog) or a PubAck with an error (NATS, counted only here).
  uint64_t refused() const { return refused_; }
  uint64_t refused_in_replies() const { return refused_in_replies_; }
  const std::string& first_refusal() const { return first_refusal_; }
  // Answers no publish was waiting for, and answers that were no PubAck.
  uint64_t unexpected() const { return unexpected_; }
  int64_t first_send_ns() const { return first_send_ns_; }
  int64_t last_ack_ns() const { return last_ack_ns_; }

 private:
  struct Slot {
    uint64_t seq = 0;
    int64_t sent_ns = 0;
    bool waiting = false;
  };
  // The publish numbered `seq` is answered (ok or not).
  void Settle(uint64_t seq, bool ok, absl::string_view why, bool in_reply,
              int64_t now_ns);
  void CheckDone();

  const uint32_t index_;
  const std::string subject_;
  const std::string inbox_;
  std::string payload_;
  const uint64_t limit_;
  RoundTrips& counters_;
  const std::atomic<bool>& stop_sending_;
  std::vector<Slot> slots_;
  size_t batch_ = 1;  // publishes per Pump at most (about 64 KiB)
  uint64_t sent_ = 0;
  uint64_t outstanding_ = 0;
  uint64_t acked_ = 0;
  uint64_t refused_ = 0;
  uint64_t refused_in_replies_ = 0;
  std::string first_refusal_;
  uint64_t unexpected_ = 0;
  std::string reply_;
  std::vector<int64_t> samples_;
  int64_t first_send_ns_ = 0;
  int64_t last_ack_ns_ = 0;
};

class ReplayReader final : public Role {
 public:
  // Subscribes to `subject` (NATS form) replaying stream `stream` (empty:
  // the one the subject belongs to) from `from_seq`, and reads `limit`
  // stored messages. REQUIRES: a native link.
  ReplayReader(std::string subject, std::string stream, uint64_t from_seq,
               uint64_t limit, RoundTrips& counters);

  bool Pump(Link& link, int64_t now_ns) override;
  void OnEvent(Link& link, const ServerEvent& event, int64_t now_ns) override;

  uint64_t received() const { return received_; }
  uint64_t received_bytes() const { return received_bytes_; }
  // Sequences skipped (a gap before the next one that came), and messages
  // whose sequence was not after the previous one's.
  uint64_t skipped() const { return skipped_; }
  uint64_t out_of_order() const { return out_of_order_; }
  // Deliveries without a stream sequence (live messages, not stored ones).
  uint64_t live() const { return live_; }
  // The server refused the subscription (e.g. UNKNOWN_STREAM).
  bool refused() const { return refused_; }
  int64_t subscribe_ns() const { return subscribe_ns_; }
  int64_t last_arrival_ns() const { return last_arrival_ns_; }

  // The op id of the subscription.
  static constexpr uint64_t kOpId = 1;

 private:
  const std::string subject_;
  const std::string stream_;
  const uint64_t from_seq_;
  const uint64_t limit_;
  RoundTrips& counters_;
  bool subscribed_ = false;
  bool refused_ = false;
  uint64_t next_seq_ = 0;
  uint64_t received_ = 0;
  uint64_t received_bytes_ = 0;
  uint64_t skipped_ = 0;
  uint64_t out_of_order_ = 0;
  uint64_t live_ = 0;
  int64_t subscribe_ns_ = 0;
  int64_t last_arrival_ns_ = 0;
};

}  // namespace manifold::load

#endif  // MANIFOLD_CLIENT_LOAD_DURABLE_ROLES_H_
