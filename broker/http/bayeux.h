// File: broker/http/bayeux.h
// -----------------------------------------------------------------------------
//
// Bayeux 1.0 (the protocol of CometD and Faye) on the broker's sessions,
// sans-IO: one `BayeuxBatch` is one array of Bayeux messages a client sent
// (an HTTP POST body, a WebSocket text message). It turns them into broker
// operations, collects the broker's answers to them, and writes the array of
// replies. HttpCodec drives it for the listener's Bayeux path (default
// /cometd); docs/bayeux.md describes what clients see.
//
// How Bayeux maps onto the broker:
//
//   /meta/handshake    SessionOp::kOpen: the clientId is the session's
//                      token (40 hexadecimal digits), and the session
//                      outlives HTTP connections (BrokerOptions::
//                      session_timeout_ms without a poll ends it).
//                      Credentials in ext.auth ({"user","password"} or
//                      {"token"}) are the batch's handshake_credentials(),
//                      which the HTTP front end hands to admission.
//   /meta/connect      SessionOp::kPoll, held until messages arrive or
//                      advice.timeout passes.
//   /meta/subscribe    a Subscribe per channel for the session. A channel
//                      named in the message's ext.replay ({"/log/*": 41})
//                      replays the stream that stores it, after that
//                      replayId (kReplayNew, kReplayAll); its messages then
//                      carry ext.replayId, and the reply's ext.replay says
//                      where each such subscription starts. A channel no
//                      stream stores is subscribed as without ext.replay.
//   /meta/unsubscribe  an Unsubscribe by pattern for the session.
//   /meta/disconnect   SessionOp::kClose.
//   /service/X/Y       a Request to topic "X/Y" (a Manifold service, served
//                      by native or NATS clients); the reply carries the
//                      service's answer as `data`.
//   any other channel  a publish to the topic: the channel without its
//                      leading "/" ("/chat/room1" is "chat/room1"; "*"
//                      and "**" keep their meaning). `data` travels as its
//                      JSON text.
//
// Sessions of HTTP clients are bound to the BAYEUX_BROWSER cookie, as a
// CometD server binds them: the handshake adopts the browser's cookie or
// has the broker make one (set_cookie() says which to send); later
// messages must present it, or get 402::session_unknown. WebSocket
// clients carry no cookie and are not checked.
//
// Example (what HttpCodec does with a POST body):
//
//   absl::StatusOr<std::unique_ptr<BayeuxBatch>> batch =
//       BayeuxBatch::Parse(body, context, last_op_id);
//   for (size_t k = 0; k < (*batch)->operations(); ++k) {
//     (*batch)->Emit(k, op);  // hand op to the broker
//   }
//   (*batch)->Take(message);  // each broker answer, until done()
//   std::string reply = (*batch)->Render();
//
// Thread safety: none; a batch belongs to its connection's codec.

#ifndef MANIFOLD_BROKER_HTTP_BAYEUX_H_
#define MANIFOLD_BROKER_HTTP_BAYEUX_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/http/http_credentials.h"
#include "broker/http/http_options.h"
#include "broker/protocol_codec.h"
#include "core/manifold.pb.h"

namespace manifold {

namespace bayeux_internal {
struct ReceivedMessage;
}  // namespace bayeux_internal

// Values of a subscribe's ext.replay besides a replayId (a stream sequence,
// 0 or more, after which the subscription starts): new messages only, or
// everything the stream holds.
inline constexpr int64_t kReplayNew = -1;
inline constexpr int64_t kReplayAll = -2;

// The name of the cookie that binds HTTP sessions to a browser.
inline constexpr absl::string_view kBayeuxBrowserCookie = "BAYEUX_BROWSER";

// The topic a Bayeux channel names: the channel without its leading "/".
// INVALID_ARGUMENT for names that are not channels ("", no leading "/").
absl::StatusOr<std::string> TopicForChannel(absl::string_view channel);
// The channel for a topic: "/" and the topic.
std::string ChannelForTopic(absl::string_view topic);

// Sets options.type_paths from `text`: TYPE=PATH pairs separated by commas
// ("handshake=/auth/handshake,connect=/poll"; "" clears them). TYPE is a
// Bayeux message type (handshake, connect, subscribe, unsubscribe, publish,
// disconnect), named once; PATH starts with "/". Returns INVALID_ARGUMENT
// naming the pair at fault, and leaves `options` as it was.
absl::Status SetBayeuxTypePaths(absl::string_view text, BayeuxOptions& options);
// The type paths as SetBayeuxTypePaths() reads them.
std::string BayeuxTypePathsText(const BayeuxOptions& options);

// The value of cookie `name` in a Cookie header, or "".
std::string FindCookie(absl::string_view cookie_header, absl::string_view name);

// The reply to a batch refused whole (BayeuxBatch::Parse() failed): a JSON
// array holding one unsuccessful message whose error names the problem.
std::string BayeuxRefusal(const absl::Status& status);

class BayeuxBatch {
 public:
  // Where the batch came from.
  struct Context {
    const BayeuxOptions* options = nullptr;  // required; outlives the batch
    // A WebSocket message: no cookie, and a connect answers as a stream.
    bool websocket = false;
    // The BAYEUX_BROWSER cookie the request carried ("" none).
    std::string browser;
    // For a handshake: the client's name (its User-Agent) and the request's
    // headers (for the SessionAdded event).
    std::string client_name;
    std::vector<std::pair<std::string, std::string>> headers;
    // For a handshake: makes the session's codec (required then).
    std::unique_ptr<ProtocolCodec> (*make_session_codec)() = nullptr;
  };

  // Parses `body`: a JSON array of Bayeux messages, or one message object.
  // Op ids are drawn by incrementing `last_op_id`. Returns INVALID_ARGUMENT
  // naming the problem when `body` is not JSON or holds something other
  // than message objects, RESOURCE_EXHAUSTED past max_batch_messages.
  // Messages that are objects but not valid Bayeux (no channel, no
  // clientId, an unknown meta channel) are answered in the batch with an
  // unsuccessful reply, and need no operation.
  static absl::StatusOr<std::unique_ptr<BayeuxBatch>> Parse(
      absl::string_view body, Context context, uint64_t& last_op_id);

  ~BayeuxBatch();
  BayeuxBatch(const BayeuxBatch&) = delete;
  BayeuxBatch& operator=(const BayeuxBatch&) = delete;

  // The broker operations the batch needs, in order.
  size_t operations() const;
  // Writes operation `k` into `op`. Views in `op` point into the batch,
  // which must outlive the operation's handling. REQUIRES: k <
  // operations(), each k emitted once.
  void Emit(size_t k, Operation& op);

  // Offers a broker answer (Welcome, Ack, Error, Response). Returns true
  // when it answers one of the batch's operations (then it is taken).
  bool Take(const wire::ServerMessage& message);
  // Offers a poll update. Returns false when the poll is not this batch's.
  // Otherwise the session's messages in `update` are taken: over a
  // WebSocket they are written to `stream_out` as a JSON array (to be sent
  // at once, the connect still held) unless the poll ended; over HTTP they
  // wait for Render(). `keep_polling` says whether the poll goes on.
  bool TakePoll(const PollUpdate& update, std::string& stream_out,
                bool& keep_polling);

  // The credentials of the batch's first handshake that carries ext.auth;
  // empty when none does.
  const ClientCredentials& handshake_credentials() const {
    return handshake_credentials_;
  }
  // Writes the session the batch's first message that acts for one names
  // (its clientId, and the browser binding it presents) into `claim`'s
  // session_token and session_binding; leaves `claim` alone when no
  // message does (a batch of handshakes).
  void ClaimSession(ClientCredentials& claim) const;
  // Answers every message still waiting as refused by admission: not
  // successful, error "401::<reason>", advice reconnect "none". done()
  // afterwards.
  void Refuse(absl::string_view reason);

  // True when every message has its reply.
  bool done() const { return pending_ == 0; }
  // The replies as a JSON array, the session's messages first.
  // REQUIRES: done().
  std::string Render() const;
  // The BAYEUX_BROWSER value to set in the response ("" none): the one the
  // broker made at a handshake that came without the cookie.
  const std::string& set_cookie() const { return set_cookie_; }

 private:
  enum ReplyField : int;
  struct Slot;
  struct Entry;
  struct PlannedOp;

  explicit BayeuxBatch(Context context);
  void Plan(size_t entry, uint64_t& last_op_id);
  Entry* EntryFor(uint64_t op_id, PlannedOp** planned);
  void Finish(Entry& entry);
  void Fail(Entry& entry, absl::string_view error);
  // A received message's data as JSON text ("" when it has none).
  absl::string_view DataOf(const bayeux_internal::ReceivedMessage& m) const;
  // Keeps `text` for as long as the batch lives; returns a view of it.
  absl::string_view Keep(std::string text);

  Context context_;
  std::string body_;  // what the client sent; received_ points into it
  std::vector<bayeux_internal::ReceivedMessage> received_;
  std::deque<std::string> texts_;  // reply fields written by the batch
  std::vector<Entry> entries_;
  std::vector<PlannedOp> ops_;
  size_t pending_ = 0;
  std::string set_cookie_;
  ClientCredentials handshake_credentials_;
  std::string messages_;  // the session's messages, HTTP: "{...},{...},"
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_HTTP_BAYEUX_H_
