// File: broker/http/bayeux_session_codec.h
// -----------------------------------------------------------------------------
//
// The codec of a Bayeux client's session (a broker session without a link of
// its own, opened by /meta/handshake): it writes each message delivered to
// the session as one Bayeux message object followed by a comma into the
// session's output, which the link that polls the session (/meta/connect)
// sends as part of a JSON array (BayeuxBatch::TakePoll).
//
//   {"channel":"/chat/room1","data":{"text":"hi"}},
//
// The topic becomes the channel ("/" and the topic); the payload becomes
// `data` as bayeux_json.h describes; headers, a reply topic and a base64
// payload are said in `ext` ({"headers":{...},"replyTo":"...",
// "base64":true}), and so is the stream sequence of a message a replaying
// subscription delivers ({"replayId":41}, see bayeux.h). A message reaches the
// session once however many of its subscriptions match it, as Bayeux promises.
// A message a replaying subscription matches comes from the stream, stored and
// with its replayId, even when another subscription of the session matches it
// too: the live copy is passed over. Of two replaying subscriptions that
// match a message, the one that reaches it first brings it and the other
// passes it over, although each replays from its own position; a replay
// subscribed later still brings what the others brought before it existed,
// as the client asked for that history. Broker events ($sys topics) arrive as
// their JSON form.
//
// Example:
//
//   op.session.codec = std::make_unique<BayeuxSessionCodec>();
//
// Thread safety: none; the codec belongs to its session.

#ifndef MANIFOLD_BROKER_HTTP_BAYEUX_SESSION_CODEC_H_
#define MANIFOLD_BROKER_HTTP_BAYEUX_SESSION_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "broker/protocol_codec.h"

namespace manifold {

class BayeuxSessionCodec final : public ProtocolCodec {
 public:
  absl::string_view name() const override { return "bayeux"; }
  // A session without a link receives no bytes: always INTERNAL.
  absl::StatusOr<size_t> Decode(absl::string_view input, size_t max_frame_bytes,
                                Operation& op) override;
  // Deliveries reach a Bayeux client, and so does the end of a
  // subscription the broker ended (an Error with its subscription_id: the
  // stream it replayed was removed or could not be read, or permissions no
  // longer allow it), as an unsuccessful /meta/unsubscribe message:
  //
  //   {"channel":"/meta/unsubscribe","subscription":"/log/*",
  //    "successful":false,"error":"404::UNKNOWN_STREAM: ..."},
  //
  // which CometD hands to its /meta/unsubscribe and /meta/unsuccessful
  // listeners. The answers to a client's operations go to the links that
  // made them, and a session's end reaches its poller as the poll's end;
  // other messages are dropped.
  void Encode(const wire::ServerMessage& message, OutboundBuffer& out) override;
  void EncodeDelivery(SharedMessage& message, SubscriptionId subscription,
                      OutboundBuffer& out) override;
  bool wants_keepalive() const override { return false; }
  void StartedReplay(SubscriptionId subscription,
                     absl::string_view pattern) override;
  void EndedReplay(SubscriptionId subscription) override;

 private:
  // A subscription of the session replaying a stream.
  struct Replay {
    SubscriptionId subscription;
    std::string pattern;
    // When it started and ended, in the order of StartedReplay() and
    // EndedReplay() calls (ended 0: it goes on).
    uint64_t started = 0;
    uint64_t ended = 0;
    // The stream sequences of the first and the last stored message it
    // brought (delivered, or passed over as another replay had brought it);
    // 0: none yet. A replay brings the stored messages its pattern matches
    // from its start on, ascending (Bayeux replays from a sequence), so it
    // brought every one between them.
    uint64_t first = 0;
    uint64_t last = 0;
    // For each replay that went on when this one started: the last it had
    // brought then. That much is history this one still brings.
    std::vector<std::pair<SubscriptionId, uint64_t>> before;
  };
  // Ended replays kept for others to check against, at most: beyond, the
  // oldest goes, and a message it brought may come twice (never not at all).
  static constexpr size_t kMaxEndedReplays = 16;

  // Whether a replaying subscription matches `topic`: it delivers the
  // message once stored.
  bool ReplayDelivers(absl::string_view topic) const;
  // Whether `subscription` is to bring stored message `seq` of `topic`:
  // false when another replay brought it while both went on. Notes it as
  // brought by `subscription` either way.
  bool FirstToBring(SubscriptionId subscription, uint64_t seq,
                    absl::string_view topic);

  uint64_t last_message_id_ = 0;
  // The session's replaying subscriptions, in the order they started (few:
  // one per channel subscribed with ext.replay).
  std::vector<Replay> replaying_;
  // Those that ended while one that started before them was behind what
  // they brought, oldest first.
  std::vector<Replay> ended_;
  // Counts StartedReplay() and EndedReplay() calls (Replay::started, ended).
  uint64_t replay_events_ = 0;
};

// Writes `publish` as one Bayeux message object and a comma (see above) to
// `out`.
void AppendBayeuxMessage(const PublishOp& publish, std::string& out);

}  // namespace manifold

#endif  // MANIFOLD_BROKER_HTTP_BAYEUX_SESSION_CODEC_H_
