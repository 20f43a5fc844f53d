// File: broker/internal/streams.h
// -----------------------------------------------------------------------------
//
// The broker's view of its durable streams (docs/streams.md): what each stream
// captures and holds, the batches on their way to a storage, the
// subscriptions replaying a stream, and its durable consumers with the NATS
// pull requests waiting on them. The logic is in streams.cc, as part of
// BrokerCore; the messages themselves live in the storage
// (broker/storage/stream_storage.h), never here beyond one batch and one
// read per replaying subscription.
//
// Not API: include broker/broker.h instead.

#ifndef MANIFOLD_BROKER_INTERNAL_STREAMS_H_
#define MANIFOLD_BROKER_INTERNAL_STREAMS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/internal/timer_queue.h"
#include "broker/storage/stream_storage.h"
#include "core/ids.h"
#include "core/manifold.pb.h"
#include "core/pattern_set.h"
#include "core/topic.h"

namespace manifold::internal {

// Whether a stored message on `topic` (a pattern, when it was published to
// one) belongs to a subscription on `pattern`.
inline bool StoredTopicReaches(absl::string_view pattern,
                               absl::string_view topic) {
  return HasWildcard(topic) ? Intersects(pattern, topic)
                            : Matches(pattern, topic);
}

// OK when `name` may name a durable consumer: 1 to 64 letters, digits, '-'
// or '_'; otherwise INVALID_ARGUMENT saying so.
absl::Status CheckConsumerName(absl::string_view name);

// Where a replay, or a new durable consumer, starts in a stream: the first
// sequence to read, and what the first read asks the storage for besides
// (a time; or, for a stream with max_msgs_per_topic, whose sequences have
// holes, the last N held up to last_through: only the storage knows which
// are held). Later reads go on from where the first stopped.
struct ReplayStart {
  uint64_t next_seq = 1;
  int64_t since_unix_ms = 0;
  uint64_t last = 0;
  uint64_t last_through = 0;

  // Puts what the first read asks for into `read`.
  void AddTo(ReadRequest& read) const {
    read.since_unix_ms = since_unix_ms;
    read.last = last;
    read.last_through = last_through;
  }
  // The first read is done: later ones ask for sequences only.
  void FirstReadDone() {
    since_unix_ms = 0;
    last = 0;
  }
};

// A subscription that replays a stream: it gets the stream's messages from
// the storage, from `next_seq` on, and only through here (never by live
// routing), so stored and live messages meet with no gap and no duplicate.
struct ReplayCursor {
  ConnectionId connection;
  SubscriptionId subscription;
  std::string pattern;
  // The next sequence to deliver.
  uint64_t next_seq = 1;
  // What the first read asks for besides next_seq.
  ReplayStart first_read;
  // For a "last per topic" replay: the sequences still to read, ascending;
  // after them the cursor goes on from next_seq.
  std::deque<uint64_t> seqs;
  // A read for this cursor is in flight.
  bool reading = false;
  // Read and not yet delivered (the connection had no room): at most one
  // read's worth.
  std::deque<StoredRecord> ready;
};

// A NATS JetStream pull request ($JS.API.CONSUMER.MSG.NEXT, docs/nats.md):
// up to `remaining` messages for the requester's subscription that receives
// its reply subject, until it expires.
struct PullRequest {
  // The requester's subscription matching `reply_to` (its inbox).
  SubscriptionId subscription;
  // The reply subject as a topic: where status messages (no messages,
  // timeout, heartbeat) go.
  std::string reply_to;
  uint64_t remaining = 1;
  uint64_t delivered = 0;
  absl::Time expires = absl::InfiniteFuture();
  // Answered at once: what the consumer has now, then "404 No Messages"
  // (nothing) or "408 Request Timeout".
  bool no_wait = false;
  // Idle heartbeats ("100 Idle Heartbeat") while it waits; zero: none.
  absl::Duration heartbeat = absl::ZeroDuration();
  absl::Time next_heartbeat = absl::InfiniteFuture();
};

// The answer to a JetStream API request (jetstream.cc): its JSON (none for
// a pull request, which is answered with messages), and whether it is an
// error.
struct JetStreamAnswer {
  std::string json;
  bool failed = false;
};

// What a request names a consumer for: $JS.API.CONSUMER.INFO, .DELETE or
// .MSG.NEXT.
enum class JetStreamVerb { kInfo, kDelete, kNext };

// A durable consumer (docs/streams.md): a position in a stream that is kept
// in the storage, messages delivered and awaiting acknowledgement, and the
// subscriptions sharing it: bound ones, NATS pull requests' inboxes, and for
// a NATS push consumer those of its deliver topic (found when it delivers).
struct Consumer {
  // As nats-server's default max_waiting.
  static constexpr size_t kMaxPullRequests = 512;

  // What is kept: ack_floor, delivered_high, the options.
  wire::ConsumerState state;
  // The next sequence to read for a first delivery.
  uint64_t next_seq = 1;
  // Bound subscriptions, served round-robin.
  std::vector<SubscriptionId> members;
  size_t next_member = 0;
  // A push consumer's turn among the subscriptions of its deliver topic.
  size_t next_push = 0;
  // NATS pull requests waiting, oldest first (served after the members);
  // at most kMaxPullRequests.
  std::deque<PullRequest> pulls;
  // Deliveries since the broker started: NATS's consumer sequence.
  uint64_t deliveries = 0;
  struct InFlight {
    // None for a message delivered to a pull request: it waits for its ack
    // or its ack_wait, whatever becomes of the request's subscription.
    SubscriptionId member;
    absl::Time deadline;
  };
  // Delivered and not acknowledged, by sequence.
  absl::btree_map<uint64_t, InFlight> in_flight;
  // Acknowledged above ack_floor.
  absl::btree_set<uint64_t> acked;
  // Ranges [first, end) above ack_floor that a read found the stream does
  // not hold (retention or max_msgs_per_topic dropped them): nothing there
  // to acknowledge, so the floor passes them.
  absl::btree_map<uint64_t, uint64_t> not_held;
  // Where the first-delivery read in flight started.
  uint64_t reading_from = 0;
  // For a new consumer: what its first read asks for besides next_seq.
  // What that read passes over goes into not_held: nothing before the start
  // is to be acknowledged.
  ReplayStart first_read;
  // Due to be delivered again (their ack_wait passed or their member left),
  // ascending.
  absl::btree_set<uint64_t> redeliver;
  // A read for it is in flight; what was read and not yet delivered.
  bool reading = false;
  std::deque<StoredRecord> ready;
  // The sequences the read in flight redelivers (empty for a first read).
  std::vector<uint64_t> rereading;
  // A push consumer with an idle heartbeat: when the next one is due (each
  // message it pushes puts it off).
  absl::Time next_push_heartbeat = absl::InfiniteFuture();
  // A push consumer with flow control (state.flow_control()): the record
  // bytes pushed that its subscriber has not yet vouched for by answering a
  // flow-control request, and the request awaiting an answer (its reply
  // topic; empty: none) with the bytes pushed when it went out and the
  // subscription it went to. A request goes out once half of
  // kFlowControlWindow is unanswered; pushing stops at all of it. A restart
  // starts afresh, with nothing unanswered.
  static constexpr uint64_t kFlowControlWindow = 4 << 20;
  uint64_t unanswered_bytes = 0;
  std::string flow_request;
  uint64_t flow_request_bytes = 0;
  SubscriptionId flow_request_to;
  uint64_t flow_requests = 0;  // sent, to number the next
  // An ephemeral consumer (NATS JetStream's, created without a durable
  // name) is removed once nobody has used it for its inactive threshold
  // (checked every half of it, from `next_interest_check`; unused since
  // `unused_since`). A restart gives it the whole threshold again.
  bool ephemeral() const { return state.inactive_threshold_ms() > 0; }
  absl::Duration inactive_threshold() const {
    return absl::Milliseconds(state.inactive_threshold_ms());
  }
  absl::Time next_interest_check = absl::InfiniteFuture();
  absl::Time unused_since = absl::InfiniteFuture();
  // Created with JetStream's `mem_storage`: never written to the storage,
  // so a restart ends it (nats.js's ordered consumers ask for this).
  bool memory_only = false;
  // The state changed since it was last written.
  bool dirty = false;
  TimerQueue::Key timer;
  // The key of its timer (TimerKind::kConsumer).
  uint64_t id = 0;
};

struct Stream {
  wire::StreamConfig config;
  // What the storage reported last: durable.
  StreamState state;
  // The last sequence given to a batch written to the storage (it is
  // state.last_seq when nothing is in flight).
  uint64_t assigned_last = 0;
  // The latest stored time, so times never go backwards in a stream.
  int64_t last_time_unix_ms = 0;
  PatternSet topics;
  StreamStorage* storage = nullptr;
  // The newest durable sequence of each topic; entries older than the
  // stream's first message are pruned as it grows.
  absl::flat_hash_map<std::string, uint64_t> last_per_topic;
  size_t last_per_topic_pruned_size = 0;
  // Messages retention dropped since the broker started.
  uint64_t expired = 0;
  std::vector<std::unique_ptr<ReplayCursor>> cursors;
  // Durable consumers, by name.
  absl::flat_hash_map<std::string, std::unique_ptr<Consumer>> consumers;
};

// Where `replay` starts in `stream` (a from_seq, a time or the last N; with
// no start, at the stream's next message). A "last per topic" start is the
// caller's: it gets the next message.
inline ReplayStart StartOf(const Stream& stream, const wire::Replay& replay) {
  const StreamState& st = stream.state;
  ReplayStart start;
  start.next_seq = stream.assigned_last + 1;  // new messages only
  switch (replay.start_case()) {
    case wire::Replay::kFromSeq:
      start.next_seq = std::max<uint64_t>(replay.from_seq(), 1);
      break;
    case wire::Replay::kSinceUnixMs:
      start.next_seq = std::max<uint64_t>(st.first_seq, 1);
      start.since_unix_ms = replay.since_unix_ms();
      break;
    case wire::Replay::kLast:
      if (stream.config.max_msgs_per_topic() > 0) {
        start.next_seq = std::max<uint64_t>(st.first_seq, 1);
        start.last = replay.last();
        start.last_through = st.last_seq;
      } else {
        start.next_seq =
            replay.last() >= st.last_seq ? 1 : st.last_seq - replay.last() + 1;
      }
      break;
    default:
      break;
  }
  return start;
}

// A publisher waiting for its message to be durable in every stream that
// captured it.
struct PendingAck {
  ConnectionId connection;
  uint64_t op_id = 0;
  bool ack = false;  // a native Ack is due
  uint64_t delivered = 0;
  // Lanes whose batch must still finish.
  int waiting = 0;
  absl::Status failure;
  // A NATS publish with a reply subject: the JetStream-style answer
  // ({"stream":S,"seq":N}) goes there. Its topic and its spelling, one after
  // the other: inline for inbox subjects of the usual length, so that a
  // stored publish allocates nothing for them.
  absl::InlinedVector<char, 80> reply;
  uint32_t reply_topic_size = 0;
  uint8_t reply_spelling = 0;  // CodecSlot

  void SetReply(absl::string_view topic, absl::string_view spelled,
                uint8_t spelling) {
    reply.assign(topic.begin(), topic.end());
    reply.insert(reply.end(), spelled.begin(), spelled.end());
    reply_topic_size = static_cast<uint32_t>(topic.size());
    reply_spelling = spelling;
  }
  absl::string_view reply_to() const {
    return absl::string_view(reply.data(), reply_topic_size);
  }
  absl::string_view spelled_reply_to() const {
    return absl::string_view(reply.data() + reply_topic_size,
                             reply.size() - reply_topic_size);
  }
  std::string stream;
  uint64_t seq = 0;
};

// A $sys/streams request answered once its batch is durable.
struct PendingAnswer {
  // RequesterKind of BrokerCore, as an integer to keep this header light.
  int requester_kind = 0;
  ConnectionId requester;
  uint64_t op_id = 0;
  wire::Response response;
  // For a request that created a stream: its name, so that a failed batch
  // takes the stream away again.
  std::string created;
};

// What a batch in flight wrote, to settle when it finishes.
struct WrittenBatch {
  // Its records' bytes (StorageLane::in_flight_bytes).
  size_t bytes = 0;
  // (ack id, index into the batch's appends) for each append with a waiter.
  std::vector<std::pair<uint64_t, size_t>> acks;
  std::vector<PendingAnswer> answers;
  // Per stream, how many messages it appended (in order); and each run's
  // stream, topic and last sequence (for last_per_topic).
  std::vector<std::pair<std::string, uint64_t>> streams;
  std::vector<std::tuple<std::string, std::string, uint64_t>> topics;
};

// The batches of one storage: up to kMaxBatchesInFlight written and not
// finished; what arrives meanwhile gathers into the next (group commit).
struct StorageLane {
  // A storage that syncs apart from writing (RocksDbStreamStorage) writes
  // batches while earlier ones wait for their sync, and one sync covers all
  // written before it. With few slots they all held batches waiting for a
  // sync, the next batch gathered everything that arrived meanwhile, and
  // the loop, the storage thread and the sync took turns on one large batch
  // instead of working side by side on small ones (with 3, 1 KiB messages
  // were stored a fifth slower than with 16; 32 did no better). The bytes
  // in flight count against max_stream_pending_bytes with those gathering.
  static constexpr size_t kMaxBatchesInFlight = 16;

  StreamStorage* storage = nullptr;
  StorageBatch gathering;
  size_t gathering_bytes = 0;
  // The records' bytes of the batches in flight.
  size_t in_flight_bytes = 0;
  // (ack id, index into gathering.appends) for each append with a waiter.
  std::vector<std::pair<uint64_t, size_t>> gathering_acks;
  std::vector<PendingAnswer> gathering_answers;
  // Oldest first; batches finish in the order they were written.
  std::deque<WrittenBatch> in_flight;
  // Set when a batch failed while later ones were in flight, until they
  // have finished: their sequences follow the failed batch's, so they fail
  // too (for this reason), and no batch is written meanwhile.
  absl::Status draining;

  // Whether a batch may be written now.
  bool can_write() const {
    return storage != nullptr && in_flight.size() < kMaxBatchesInFlight &&
           draining.ok();
  }
  // Reads in flight, by ReadRequest::id: the stream and the subscription
  // whose cursor asked (SubscriptionId() with consumer_reads for a
  // consumer's).
  absl::flat_hash_map<uint64_t, std::pair<std::string, SubscriptionId>> reads;
  // Reads in flight for durable consumers: the stream and the consumer.
  absl::flat_hash_map<uint64_t, std::pair<std::string, std::string>>
      consumer_reads;
  bool unsynced = false;
};

}  // namespace manifold::internal

#endif  // MANIFOLD_BROKER_INTERNAL_STREAMS_H_
