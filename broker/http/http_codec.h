// File: broker/http/http_codec.h
// -----------------------------------------------------------------------------
//
// The web front end: a ProtocolCodec for one HTTP/1.1 connection, so browsers
// and HTTP tools share topics, subscriptions and services with native and
// NATS clients. Hand one to Broker::Accept for every connection of an HTTP
// listener (manifoldd --http):
//
//   Connection& c = broker.Accept(PeerInfo{"127.0.0.1:50212"}, now,
//                                 std::make_unique<HttpCodec>(HttpOptions{}));
//
// Endpoints (docs/http.md has examples):
//
//   GET  /ws      WebSocket. Subprotocol manifold.v1: one native frame per
//                 binary message, the same session as over TCP;
//                 manifold.json: the same operations as JSON text messages.
//   GET  /nats    WebSocket carrying the NATS protocol as nats-server's
//                 websocket listener does (nats.ws works unchanged).
//   GET  /sse?topic=P[&topic=P...][&format=json]
//                 Server-Sent Events: one event per message.
//   POST /pub/TOPIC           publish the body; answers {"delivered":N}.
//   POST /req/TOPIC?timeout=2s  request; answers the service's reply.
//   GET  /stats, /metrics, /connections, /healthz, / (the dashboard).
//   POST /cometd[/TYPE]       Bayeux (CometD, Faye) long-polling: a JSON
//                 array of messages in, the replies out (broker/http/
//                 bayeux.h); GET /cometd with an upgrade: Bayeux over a
//                 WebSocket. HttpOptions::bayeux.path moves it.
//
// How HTTP maps onto the broker's operations. A connection says Hello for
// itself on its first request that needs the broker (named after the
// client's User-Agent); a WebSocket's client says its own Hello (or NATS
// CONNECT) after the upgrade. A request becomes one or more operations:
// /pub a Publish with ack, /req a Request, /sse one Subscribe per topic,
// /stats and /metrics a Request to "$sys/stats", /connections one to
// "$sys/connections"; everything else is answered by the codec itself
// (kLocal). Each operation is charged at least one byte of its request, the
// last one the rest, so Decode() keeps the ProtocolCodec contract.
//
// Credentials (http_credentials.h): the Authorization header (Bearer: the
// token; Basic: user and password) of the request that says the
// connection's Hello goes into it, for the embedder's admission; a WebSocket
// client's own Hello (or NATS CONNECT) keeps its credentials if it has any,
// and a Bayeux handshake's ext.auth stands in when there is no header. A
// malformed header is 400; other credentials later on the same connection
// are 401 and close. A refusal answers waiting requests with 401 and
// WWW-Authenticate challenges (Basic and Bearer), Bayeux requests with a
// "401::<reason>" reply, and a WebSocket with its protocol's refusal, then
// a close.
//
// Answers come back in request order (pipelining): a request answered early
// waits behind one still waiting for its service. Status codes: a bad topic
// or argument 400, refused credentials 401, a reserved topic 403, unknown path
// 404, wrong method 405 (with Allow), 413 over max_payload_bytes, 429 too many
// pipelined requests, 431 header block too large, 408 a request too slow to
// arrive, and for /req: NO_SERVER 503, TIMED_OUT 504, SERVER_GONE 502, REJECTED
// 422; each with a JSON body {"error":{"code":..., "status":...,
// "message":...}}. Errors that end the connection (400 unparsable, 408, 413,
// 429, 431) say "Connection: close". Upgrades and /sse must be the only request
// in flight on their connection, and an upgrade must come before any request
// that said Hello (a browser opens a fresh connection for each anyway).
//
// Server-Sent Events: "event:" the topic, "data:" the payload, "id:" a
// per-stream sequence from 1; but when a durable stream stores every topic a
// topic= parameter can match, that subscription replays the stream and the
// ids say where the client is in it: "s:" and one position per topic=
// parameter ("s:41,-": the last stream sequence sent, "-" for a topic no
// stream stores), starting with an event that has only an id. A client that
// reconnects with that Last-Event-ID (EventSource does by itself) gets what
// it missed, also across a broker restart, and nothing twice. A payload that is
// not UTF-8 is never sent raw: in the plain format its data is "base64:" and
// the payload in base64; with format=json each data is
// {"topic","sequence","headers","payload"} with "base64":true beside a base64
// payload. Events on "$sys/..." topics carry the broker event as JSON in both
// formats. Line breaks in a plain payload become separate data lines (a client
// joins them with LF). A comment line every HttpOptions::sse_heartbeat;
// "retry:" advice first. A Last-Event-ID of another form, or for another number
// of topics, starts afresh.
//
// WebSockets: wslay frames and checks them (broker/http/websocket_link.h):
// 1002 protocol error, 1007 text that is not UTF-8, 1009 a message over
// max_frame_bytes; a broker shutdown closes with 1001, other fatal errors
// with 1008 after the inner protocol's own error message. manifold.json
// connections get WebSocket pings for keepalive (browsers answer them).
//
// Thread safety: none; a codec belongs to its connection.

#ifndef MANIFOLD_BROKER_HTTP_HTTP_CODEC_H_
#define MANIFOLD_BROKER_HTTP_HTTP_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/http/bayeux.h"
#include "broker/http/http_credentials.h"
#include "broker/http/http_options.h"
#include "broker/http/websocket_link.h"
#include "broker/protocol_codec.h"
#include "core/http/request_parser.h"

namespace manifold {

// The options recorded transcripts keep (HttpCodec::settings()), so a
// replay answers as the live codec did: /nats's NatsOptions as
// NatsSettingsText() writes them, then the HTTP limits and timeouts
// (";http_max_headers=64;sse_retry_ms=2000;..."). And back: a key left out
// keeps HttpOptions' default; an unknown key or a bad value is
// INVALID_ARGUMENT naming it.
std::string HttpSettingsText(const HttpOptions& options);
absl::StatusOr<HttpOptions> ParseHttpSettings(absl::string_view text);

class HttpCodec final : public ProtocolCodec {
 public:
  explicit HttpCodec(HttpOptions options = HttpOptions());
  ~HttpCodec() override;

  // "http" for plain requests, "sse" for a connection opened by /sse, and
  // after an upgrade "ws" (manifold.v1), "ws-json" or "nats-ws".
  absl::string_view name() const override { return name_; }
  std::string settings() const override { return HttpSettingsText(options_); }
  void Start(const ConnectionStart& start, OutboundBuffer& out) override;
  absl::StatusOr<size_t> Decode(absl::string_view input, size_t max_frame_bytes,
                                Operation& op) override;
  void Encode(const wire::ServerMessage& message, OutboundBuffer& out) override;
  void EncodeDelivery(SharedMessage& message, SubscriptionId subscription,
                      OutboundBuffer& out) override;
  void EncodeLocal(OutboundBuffer& out) override;
  absl::Duration tick_interval() const override { return options_.tick; }
  absl::Status Tick(absl::Time now, OutboundBuffer& out) override;
  bool wants_keepalive() const override { return mode_ == Mode::kWebSocket; }
  // Answers a Bayeux /meta/connect: an HTTP response, or over a WebSocket
  // a message (the connect held on until it ends).
  bool EncodePoll(const PollUpdate& update, OutboundBuffer& out) override;
  // True once a WebSocket carrying NATS (/nats) is welcomed: what one turn
  // writes to it becomes one WebSocket message (FinishTurn() ends it; past
  // 64 KiB a new one begins), as nats-server writes everything pending for
  // a client in one. /ws keeps one native frame or JSON operation per
  // message, as its clients expect.
  bool gathers_output() const override { return gathers_turns_; }
  void FinishTurn(OutboundBuffer& out) override;

 private:
  enum class Mode { kHttp, kSse, kWebSocket };

  // What one request asks of the broker, in order.
  struct Step {
    enum class Kind { kHello, kPublish, kRequest, kSubscribe, kLocal, kBayeux };
    explicit Step(Kind k) : kind(k) {}
    Kind kind;
    std::string topic;  // publish, request, subscribe
    uint64_t op_id = 0;
    // kSubscribe for /sse: replays if a stream stores the topic, from
    // `from_seq` (0: new messages only).
    bool replay_if_stored = false;
    uint64_t from_seq = 0;
    uint32_t timeout_ms = 0;
    bool error = false;  // kLocal: the answer is an error (counted)
    // kBayeux: operation `index` of `batch`. Over a WebSocket the last one
    // is charged what the message's bytes left (Charge()).
    BayeuxBatch* batch = nullptr;
    size_t index = 0;
    bool charge_held = false;
  };
  // One request's answer, written when every earlier one has been.
  struct Answer {
    enum class Kind {
      kLocal,
      kPublish,
      kRequest,
      kStats,
      kMetrics,
      kConnections,
      kSse,
      kBayeux
    } kind = Kind::kLocal;
    uint64_t op_id = 0;  // the operation whose reply completes it
    bool done = false;
    bool close = false;  // "Connection: close" after it
    std::string bytes;
    std::unique_ptr<BayeuxBatch> bayeux;  // kBayeux until answered
  };

  // HTTP requests.
  absl::StatusOr<size_t> DecodeHttp(absl::string_view input, Operation& op);
  void PlanRequest();
  void PlanUpgrade(bool nats);
  void PlanSse(const std::string& query);
  bool IsBayeuxPath(absl::string_view path) const;
  void PlanBayeux();
  void PlanBrokerRequest(Answer::Kind kind, std::string topic,
                         uint32_t timeout_ms);
  void AnswerLocally(
      int status, absl::string_view content_type, absl::string_view body,
      bool close = false,
      std::vector<std::pair<std::string, std::string>> headers = {});
  void AnswerError(int status, absl::string_view code,
                   absl::string_view message, bool close = false);
  absl::StatusOr<size_t> EmitStep(Operation& op);
  Answer* FindAnswer(uint64_t op_id);
  void FlushAnswers(OutboundBuffer& out);
  // Fills the first unfinished answers with an error and says close.
  void FailPendingAnswers(int status, absl::string_view code,
                          absl::string_view message);
  absl::Status FatalHttp(int status, wire::Code code, std::string message);
  // Answers every waiting request as refused by admission: 401 with the
  // challenges, a Bayeux reply "401::<reason>" for Bayeux requests.
  void RefusePendingAnswers(absl::string_view message);
  void EncodeHttp(const wire::ServerMessage& message, OutboundBuffer& out);

  // Bayeux.
  BayeuxBatch::Context BayeuxContext(bool websocket) const;
  // Offers a broker answer to the Bayeux batches waiting; true if taken.
  bool TakeBayeux(const wire::ServerMessage& message, OutboundBuffer& out);
  void CompleteBayeuxAnswer(Answer& answer);
  absl::StatusOr<size_t> DecodeBayeuxMessage(Operation& op);
  void SendBayeuxFrame(absl::string_view json, OutboundBuffer& out);

  // Server-Sent Events.
  void EncodeSseEvent(const PublishOp& publish, SubscriptionId subscription,
                      OutboundBuffer& out);
  // The "id:" of the next event: the stream positions when a topic is
  // stored, else the event count. Valid until the next call.
  absl::string_view SseEventId();

  // WebSockets.
  absl::StatusOr<size_t> DecodeWebSocket(absl::string_view input,
                                         size_t max_frame_bytes, Operation& op);
  // Received bytes no held data needs (Charge() reports them as used).
  size_t Unheld() const;
  size_t Charge(size_t n);
  bool WebSocketIdle() const;
  void EncodeWebSocket(const wire::ServerMessage& message, OutboundBuffer& out);
  // The inner protocol writes straight into `out`, inside a WebSocket
  // message Begin opens (unless one is open) and End ends (unless the turn
  // is being gathered).
  void BeginInnerOutput(OutboundBuffer& out);
  void EndInnerOutput(OutboundBuffer& out);
  void MoveLocalOutput(OutboundBuffer& out);
  // Gives a Hello the inner protocol decoded the upgrade's credentials,
  // unless it carries its own.
  void FillInnerHello(Operation& op);
  // Once a Hello carries them: keeps only their digest, as the broker
  // keeps no credentials past admission.
  void ForgetCredentials();

  uint64_t NextOpId() { return ++last_op_id_; }

  const HttpOptions options_;
  ConnectionStart start_;
  std::string name_ = "http";
  Mode mode_ = Mode::kHttp;
  http::RequestParser parser_;
  // Bytes at the front of Decode()'s input already taken in (parsed, or fed
  // to wslay) and not yet reported as used.
  size_t absorbed_ = 0;
  uint64_t last_op_id_ = 0;

  // The request being turned into operations, and the topic of the
  // operation handed over last; PublishOp views point into them.
  http::HttpRequest request_;
  std::string step_topic_;
  std::deque<Step> steps_;
  std::deque<Answer> answers_;
  bool hello_sent_ = false;
  std::string client_name_;
  // The Authorization header of the request being planned, the credentials
  // the connection's Hello is to carry (http_credentials.h), and once it
  // has, only their digest.
  ClientCredentials request_credentials_;
  ClientCredentials hello_credentials_;
  std::string hello_digest_;
  // The HTTP status for the fatal error Decode() or Tick() just returned.
  int fatal_status_ = 0;

  // Server-Sent Events.
  bool sse_json_ = false;
  size_t sse_pending_acks_ = 0;
  bool sse_started_ = false;
  uint64_t sse_sequence_ = 0;
  // One per topic= parameter, in order. A topic a stream stores is replayed
  // from where the client's Last-Event-ID says it was; its position is the
  // sequence of the last message sent, and every event's id carries the
  // positions ("s:12,-,40": "-" for a topic no stream stores).
  struct SseTopic {
    uint64_t op_id = 0;
    uint64_t subscription_id = 0;
    bool stored = false;
    uint64_t position = 0;
  };
  std::vector<SseTopic> sse_topics_;
  bool sse_stored_ = false;  // some topic is stored
  std::string sse_id_;       // SseEventId()'s, reused

  // WebSockets: the link, the protocol inside it, and what it has received.
  std::unique_ptr<WebSocketLink> ws_;
  std::unique_ptr<ProtocolCodec> inner_;
  bool inner_takes_messages_ = false;   // manifold.json: one op per message
  bool inner_is_stream_ = false;        // NATS: messages split anywhere
  bool inner_pings_as_frames_ = false;  // manifold.json keepalive
  std::string inner_stream_;            // manifold.v1, NATS: a byte stream
  size_t inner_read_ = 0;
  std::deque<std::string> inner_messages_;
  std::string json_partial_;  // manifold.json: messages arriving
  size_t pongs_received_ = 0;
  bool ws_close_pending_ = false;
  bool gathers_turns_ = false;     // see gathers_output()
  OutboundBuffer inner_greeting_;  // the inner codec's Start(), to be framed
  OutboundBuffer local_out_;       // frames written while decoding

  // Time, as seen at ticks.
  absl::Time last_tick_ = absl::InfinitePast();
  bool input_since_tick_ = false;
  absl::Time last_input_ = absl::InfinitePast();
  absl::Time request_seen_ = absl::InfiniteFuture();
  absl::Time last_heartbeat_ = absl::InfinitePast();

  // Bayeux over a WebSocket: batches waiting for the broker, answered as
  // each completes (a held connect does not hold the others back).
  bool bayeux_ws_ = false;
  bool bayeux_hello_due_ = false;  // the link's Hello goes with its first batch
  std::deque<std::unique_ptr<BayeuxBatch>> bayeux_batches_;
  std::string bayeux_text_;

  // Scratch.
  PublishOp publish_scratch_;
  std::string text_;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_HTTP_HTTP_CODEC_H_
