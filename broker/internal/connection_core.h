// File: broker/internal/connection_core.h
// -----------------------------------------------------------------------------
//
// What the broker keeps for one connection: its two channels (the inbound
// bytes not yet handled, the outbound buffer), its codec, its session
// (name, echo), what it holds (subscriptions, services, requests) and its
// timers. The public `Connection` (broker/connection.h) is the face a
// transport sees; every Connection is a ConnectionCore, owned by the broker's
// BrokerCore, which reads and writes these fields directly on the hot path.
//
// Not API: include broker/connection.h instead.

#ifndef MANIFOLD_BROKER_INTERNAL_CONNECTION_CORE_H_
#define MANIFOLD_BROKER_INTERNAL_CONNECTION_CORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "broker/connection.h"
#include "broker/internal/subscription_index.h"
#include "broker/internal/timer_queue.h"
#include "broker/outbound_buffer.h"
#include "broker/permissions.h"
#include "broker/protocol_codec.h"
#include "core/ids.h"

namespace manifold::internal {

class BrokerCore;

class ConnectionCore final : public Connection {
 public:
  ConnectionCore(BrokerCore& broker, ConnectionId id, PeerInfo peer,
                 std::unique_ptr<ProtocolCodec> codec, absl::Time now);
  ~ConnectionCore();

  // The public Connection's calls, implemented here.
  void Receive(absl::string_view bytes, absl::Time now);
  bool WantsRead() const;
  void Consume(size_t n);
  std::string Describe() const;
  std::string CopyPendingOutput() const;

 private:
  friend class BrokerCore;
  friend class ::manifold::Connection;

  absl::string_view unread_input() const {
    return absl::string_view(inbound_).substr(inbound_read_);
  }
  void DropReadInput();

  // Touched for every delivery; kept together at the front so that fan-out to
  // many connections costs as few cache lines as possible.
  ConnectionState state_ = ConnectionState::kAwaitingHello;
  bool echo_ = true;
  // codec_ is the broker's NativeCodec: deliveries skip the virtual call.
  bool native_ = false;
  bool in_ready_list_ = false;
  bool in_changed_list_ = false;
  // The codec gathers output (ProtocolCodec::gathers_output()): once
  // welcomed, it is listed for FinishTurns() whenever it is changed.
  bool gathers_output_ = false;
  // A session whose link was lost, waiting to be resumed: it has no reader,
  // so deliveries past outbound_limit_ end it instead of stalling anyone.
  bool detached_ = false;
  // Where the slow-consumer policy (or, detached, the overflow rule) starts:
  // max_outbound_bytes, or session_buffer_bytes while detached.
  size_t outbound_limit_ = 0;
  OutboundBuffer outbound_;
  std::unique_ptr<ProtocolCodec> codec_;

  BrokerCore& broker_;
  const ConnectionId id_;
  const PeerInfo peer_;
  absl::Status close_reason_;

  // Inbound channel: bytes received, [inbound_read_, size) not yet handled.
  std::string inbound_;
  size_t inbound_read_ = 0;
  // Process() stopped because the unread input is one incomplete operation;
  // reading must go on until it is complete even past max_inbound_bytes.
  bool awaiting_rest_of_frame_ = false;
  bool read_paused_ = false;  // WantsRead() was reported false

  // The last topic this connection published to and its routing result, valid
  // while the index's cache epoch is unchanged (see BrokerCore::HandlePublish).
  std::string last_topic_;
  absl::Span<SubscriptionNode* const> last_topic_nodes_;
  uint64_t last_topic_epoch_ = 0;

  // Session, from Hello (echo_ is with the hot fields above).
  std::string client_name_;
  std::string auth_token_;  // kept only until admission
  // Set by a delayed Broker::Refuse: the reason sent when the handshake
  // timer fires.
  std::optional<std::string> refusal_;
  // Who the embedder admitted it as, and what it may do (nullptr: anything,
  // unchecked). Shared with the other connections of that user.
  std::string user_;
  std::shared_ptr<const PermissionSet> permissions_;
  // The last topic it was allowed to publish to: publishers mostly repeat
  // their topic, and a PermissionSet never changes.
  std::string last_permitted_topic_;
  bool announced_ = false;  // ConnectionAdded or ConnectionPending was emitted
  bool live_ = false;       // counted in BrokerCore::live_connections_

  // What this connection holds, ordered so cleanup is deterministic.
  absl::btree_set<SubscriptionId> subscriptions_;
  absl::btree_set<std::string> served_topics_;
  absl::btree_set<RequestId> awaiting_;  // requests it made
  absl::btree_set<RequestId> serving_;   // requests it must answer

  // Timers.
  TimerQueue::Key handshake_timer_;
  TimerQueue::Key keepalive_timer_;
  TimerQueue::Key linger_timer_;
  TimerQueue::Key codec_timer_;  // ProtocolCodec::Tick, for codecs that ask
  absl::Duration codec_tick_interval_ = absl::InfiniteDuration();
  absl::Time last_input_;
  uint64_t output_consumed_ = 0;
  uint64_t output_discarded_ = 0;
  uint32_t pings_outstanding_ = 0;
  uint64_t pings_sent_ = 0;

  // Flow control (the backpressure policy). As a publisher: how many
  // connections it waits on (its input is neither handled nor read while
  // any), and since when.
  uint32_t stalled_on_ = 0;
  absl::Time stalled_since_;
  // As a subscriber: the connections waiting for its output to drain below
  // the low-water mark, in the order they stalled (one entry per stall);
  // since when the first has waited, and the max_stall timer.
  std::vector<ConnectionId> waiting_publishers_;
  absl::Time holding_since_;
  TimerQueue::Key stall_timer_;
  // Past max_stall with drop_after_max_stall: deliveries to it are dropped
  // while it is over max_outbound_bytes, until it drains.
  bool dropping_ = false;

  // --- Sessions (broker/internal/sessions.cc) --------------------------------
  // A connection is a link and, until its session moves elsewhere, the
  // session it carries. A session that outlives its link (resumable, or a
  // Bayeux session) moves into a ConnectionCore without a link (linked_
  // false), which the transport never sees, and from there into the link
  // that resumes it.

  // A transport holds this connection.
  bool linked_ = true;
  // The id events and the Welcome give the session: the id of the
  // connection it began on, kept when it moves.
  uint64_t session_id_ = 0;
  // Non-empty for a session that outlives links: its token (in
  // BrokerCore::sessions_), and the value that must come with it (a Bayeux
  // browser cookie; empty: none).
  std::string session_token_;
  std::string session_binding_;
  // A native session that detaches instead of ending when its link is lost,
  // and keeps the stream of frames that a resume continues.
  bool resumable_ = false;
  // A session without a link that links poll (Bayeux).
  bool polled_ = false;
  // The Hello asked to resume this session (handled at Welcome, after
  // admission).
  std::string resume_token_;
  uint64_t resume_received_frames_ = 0;
  // The client's frames this session has handled (all of them, over every
  // link), for Welcome.received_frames.
  uint64_t frames_in_ = 0;
  // The broker's stream of frames to a resumable session: [0, stream_
  // consumed_) was written to its links, of which the part from
  // replay_start_ (the first byte of frame replay_start_frame_) is kept in
  // replay_ in case it did not arrive; the rest is pending in outbound_,
  // after link_prefix_ bytes that belong to the link alone (the Welcome of
  // a resume).
  std::string replay_;
  size_t replay_skip_ = 0;  // bytes at the front of replay_ already dropped
  uint64_t replay_start_ = 0;
  uint64_t replay_start_frame_ = 0;
  uint64_t stream_consumed_ = 0;
  size_t link_prefix_ = 0;
  // When a session without a link ends (session_timeout).
  TimerQueue::Key expiry_timer_;
  // A polled session: the link polling it (invalid: none), that poll's op
  // id, and when it times out. A link: the session it polls.
  ConnectionId poller_;
  uint64_t poll_op_id_ = 0;
  TimerQueue::Key poll_timer_;
  ConnectionId polling_;
  // This link's session moved to a session without a link, which waits to
  // be resumed (ConnectionRemoved says `detached`).
  bool session_detached_ = false;
};

// The core behind a public Connection. REQUIRES: `c` came from a Broker
// (every Connection does).
inline ConnectionCore& Core(Connection& c) {
  return static_cast<ConnectionCore&>(c);
}
inline const ConnectionCore& Core(const Connection& c) {
  return static_cast<const ConnectionCore&>(c);
}

}  // namespace manifold::internal

#endif  // MANIFOLD_BROKER_INTERNAL_CONNECTION_CORE_H_
