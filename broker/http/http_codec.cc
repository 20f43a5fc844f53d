#include "broker/http/http_codec.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "broker/http/bayeux_session_codec.h"
#include "broker/http/dashboard_assets.h"
#include "broker/http/http_credentials.h"
#include "broker/http/http_status.h"
#include "broker/http/json_codec.h"
#include "broker/internal/native_codec.h"
#include "broker/nats/nats_codec.h"
#include "broker/sys_topics.h"
#include "core/http/json_messages.h"
#include "core/http/prometheus.h"
#include "core/http/query.h"
#include "core/http/response.h"
#include "core/http/sse.h"
#include "core/http/websocket_handshake.h"
#include "core/nats/errors.h"
#include "core/status.h"
#include "core/topic.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace manifold {
namespace {

constexpr absl::string_view kJson = "application/json";
constexpr absl::string_view kHeaderPrefix = "manifold-header-";
// A WebSocket message that gathers a turn's output ends once it is this
// large, so a busy turn sends several (clients and proxies handle moderate
// messages best) rather than one without bound.
constexpr size_t kMaxGatheredMessageBytes = 64 * 1024;
// Longest client name taken from a User-Agent.
constexpr size_t kMaxClientName = 64;

http::RequestLimits Limits(const HttpOptions& options) {
  http::RequestLimits limits;
  limits.max_header_bytes = options.max_header_bytes;
  limits.max_headers = options.max_headers;
  return limits;
}

// The wire code for an HTTP status the codec itself answers a broken
// request with.
wire::Code CodeForStatus(int status) {
  switch (status) {
    case 408:
      return wire::HANDSHAKE_TIMEOUT;
    case 413:
      return wire::PAYLOAD_TOO_LARGE;
    case 414:
    case 431:
      return wire::FRAME_TOO_LARGE;
    case 429:
      return wire::TOO_MANY_PENDING_REQUESTS;
    default:
      return wire::MALFORMED_MESSAGE;
  }
}

// The close code that tells a WebSocket peer why the broker closes.
uint16_t CloseCodeFor(wire::Code code) {
  switch (code) {
    case wire::SHUTTING_DOWN:
      return 1001;
    case wire::FRAME_TOO_LARGE:
    case wire::PAYLOAD_TOO_LARGE:
      return 1009;
    case wire::INVALID_ARGUMENT:
      return 1007;
    case wire::INTERNAL:
      return 1011;
    default:
      return 1008;
  }
}

// The challenges a 401 answer carries: either kind of credentials would do.
std::vector<std::pair<std::string, std::string>> Challenges() {
  return {{"WWW-Authenticate", std::string(kBasicChallenge)},
          {"WWW-Authenticate", std::string(kBearerChallenge)}};
}

// The embedder's reason in a broker refusal ("connection refused: <reason>").
absl::string_view RefusalReason(absl::string_view message) {
  absl::ConsumePrefix(&message, "connection refused: ");
  return message;
}

std::string ClientNameFrom(const http::HttpRequest& request,
                           absl::string_view fallback) {
  const std::string* agent = request.Header("user-agent");
  std::string name;
  if (agent != nullptr) {
    for (char c : *agent) {
      if (name.size() == kMaxClientName) break;
      if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) {
        name.push_back(c);
      }
    }
  }
  return name.empty() ? std::string(fallback) : name;
}

// Copies every byte of `from` onto `to` and empties `from`.
void MoveBytes(OutboundBuffer& from, OutboundBuffer& to) {
  absl::string_view chunks[16];
  while (!from.empty()) {
    const size_t n = from.Peek(absl::MakeSpan(chunks));
    size_t moved = 0;
    for (size_t k = 0; k < n; ++k) {
      to.Append(chunks[k]);
      moved += chunks[k].size();
    }
    from.Consume(moved);
  }
}

// HttpOptions' fields in settings text (HttpSettingsText), by key; the
// keys are manifoldd's flags for them (examples/tcp_broker).
constexpr std::pair<absl::string_view, size_t HttpOptions::*> kCountSettings[] =
    {
        {"http_max_header_bytes", &HttpOptions::max_header_bytes},
        {"http_max_headers", &HttpOptions::max_headers},
        {"http_max_pipelined_requests", &HttpOptions::max_pipelined_requests},
        {"sse_max_topics", &HttpOptions::max_sse_topics},
};
constexpr std::pair<absl::string_view, absl::Duration BayeuxOptions::*>
    kBayeuxDurationSettings[] = {
        {"bayeux_connect_timeout_ms", &BayeuxOptions::connect_timeout},
        {"bayeux_interval_ms", &BayeuxOptions::interval},
        {"bayeux_service_timeout_ms", &BayeuxOptions::service_timeout},
};
constexpr std::pair<absl::string_view, absl::Duration HttpOptions::*>
    kDurationSettings[] = {
        {"http_request_timeout_ms", &HttpOptions::request_timeout},
        {"http_idle_timeout_ms", &HttpOptions::idle_timeout},
        {"sse_heartbeat_ms", &HttpOptions::sse_heartbeat},
        {"sse_retry_ms", &HttpOptions::sse_retry},
        {"http_tick_ms", &HttpOptions::tick},
};

}  // namespace

std::string HttpSettingsText(const HttpOptions& options) {
  std::string text = NatsSettingsText(options.nats);
  for (const auto& [key, field] : kCountSettings) {
    absl::StrAppend(&text, ";", key, "=", options.*field);
  }
  for (const auto& [key, field] : kDurationSettings) {
    absl::StrAppend(&text, ";", key, "=",
                    absl::ToInt64Milliseconds(options.*field));
  }
  absl::StrAppend(&text, ";dashboard=", options.dashboard ? 1 : 0);
  absl::StrAppend(&text, ";bayeux_path=", options.bayeux.path);
  for (const auto& [key, field] : kBayeuxDurationSettings) {
    absl::StrAppend(&text, ";", key, "=",
                    absl::ToInt64Milliseconds(options.bayeux.*field));
  }
  absl::StrAppend(
      &text, ";bayeux_max_batch_messages=", options.bayeux.max_batch_messages);
  if (!options.bayeux.type_paths.empty()) {
    absl::StrAppend(&text,
                    ";bayeux_type_paths=", BayeuxTypePathsText(options.bayeux));
  }
  return text;
}

absl::StatusOr<HttpOptions> ParseHttpSettings(absl::string_view text) {
  HttpOptions options;
  // The HTTP keys are read here; the rest are /nats's (NatsSettingsText).
  std::vector<absl::string_view> nats_pairs;
  for (absl::string_view pair : absl::StrSplit(text, ';', absl::SkipEmpty())) {
    const size_t eq = pair.find('=');
    const absl::string_view key = pair.substr(0, eq);
    const absl::string_view value =
        eq == absl::string_view::npos ? "" : pair.substr(eq + 1);
    bool known = false;
    bool ok = true;
    for (const auto& [name, field] : kCountSettings) {
      if (key != name) continue;
      known = true;
      ok = absl::SimpleAtoi(value, &(options.*field));
    }
    for (const auto& [name, field] : kDurationSettings) {
      if (key != name) continue;
      known = true;
      int64_t ms = 0;
      ok = absl::SimpleAtoi(value, &ms) && ms >= 0;
      options.*field = absl::Milliseconds(ms);
    }
    for (const auto& [name, field] : kBayeuxDurationSettings) {
      if (key != name) continue;
      known = true;
      int64_t ms = 0;
      ok = absl::SimpleAtoi(value, &ms) && ms >= 0;
      options.bayeux.*field = absl::Milliseconds(ms);
    }
    if (key == "bayeux_path") {
      known = true;
      ok = value.empty() || absl::StartsWith(value, "/");
      options.bayeux.path = std::string(value);
    }
    if (key == "bayeux_type_paths") {
      known = true;
      ok = SetBayeuxTypePaths(value, options.bayeux).ok();
    }
    if (key == "bayeux_max_batch_messages") {
      known = true;
      ok = absl::SimpleAtoi(value, &options.bayeux.max_batch_messages) &&
           options.bayeux.max_batch_messages > 0;
    }
    if (key == "dashboard") {
      known = true;
      ok = absl::SimpleAtob(value, &options.dashboard);
    }
    if (!known) {
      nats_pairs.push_back(pair);
    } else if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "HTTP setting '", key, "' has a bad value '", value, "'"));
    }
  }
  absl::StatusOr<NatsOptions> nats =
      ParseNatsSettings(absl::StrJoin(nats_pairs, ";"));
  if (!nats.ok()) return nats.status();
  options.nats = *std::move(nats);
  return options;
}

HttpCodec::HttpCodec(HttpOptions options)
    : options_(std::move(options)), parser_(Limits(options_)) {}

HttpCodec::~HttpCodec() = default;

void HttpCodec::Start(const ConnectionStart& start, OutboundBuffer& out) {
  start_ = start;
  http::RequestLimits limits = Limits(options_);
  if (start.max_payload_bytes != 0) {
    limits.max_body_bytes = start.max_payload_bytes;
  }
  parser_.set_limits(limits);
}

// ---------------------------------------------------------------------------
// Decode

absl::StatusOr<size_t> HttpCodec::Decode(absl::string_view input,
                                         size_t max_frame_bytes,
                                         Operation& op) {
  op.local_error = wire::OK;
  if (mode_ == Mode::kWebSocket && steps_.empty()) {
    return DecodeWebSocket(input, max_frame_bytes, op);
  }
  return DecodeHttp(input, op);
}

absl::Status HttpCodec::FatalHttp(int status, wire::Code code,
                                  std::string message) {
  fatal_status_ = status;
  return ProtocolError(code, message);
}

absl::StatusOr<size_t> HttpCodec::DecodeHttp(absl::string_view input,
                                             Operation& op) {
  if (!steps_.empty()) return EmitStep(op);
  if (mode_ == Mode::kSse) {
    // The stream is one-way: whatever the client sends now is ignored.
    absorbed_ = 0;
    op.kind = Operation::Kind::kLocal;
    return input.size();
  }
  const absl::string_view fresh = input.substr(absorbed_);
  if (fresh.empty()) return 0;
  input_since_tick_ = true;
  absl::StatusOr<size_t> used = parser_.Feed(fresh);
  if (!used.ok()) {
    return FatalHttp(parser_.error_status(),
                     CodeForStatus(parser_.error_status()),
                     absl::StrCat("HTTP ", parser_.error_status(), ": ",
                                  used.status().message()));
  }
  absorbed_ += *used;
  if (!parser_.complete()) return 0;
  request_seen_ = absl::InfiniteFuture();
  size_t unanswered = 0;
  for (const Answer& a : answers_) unanswered += a.done ? 0 : 1;
  if (unanswered >= options_.max_pipelined_requests) {
    return FatalHttp(
        429, wire::TOO_MANY_PENDING_REQUESTS,
        absl::StrCat("more than ", options_.max_pipelined_requests,
                     " HTTP requests pipelined ahead of their answers"));
  }
  request_ = std::move(parser_.mutable_request());
  const bool upgrade = request_.upgrade;
  PlanRequest();
  if (!upgrade) parser_.Next();
  return EmitStep(op);
}

absl::StatusOr<size_t> HttpCodec::EmitStep(Operation& op) {
  Step step = std::move(steps_.front());
  steps_.pop_front();
  // Every operation takes at least one byte of its request; the last one
  // takes the rest (the request has more bytes than operations). Over a
  // WebSocket the rest is what the messages still held leave (Charge()).
  size_t used = absorbed_;
  if (!steps_.empty()) {
    used = 1;
  } else if (step.charge_held) {
    used = Unheld();
  }
  if (used == 0 || used > absorbed_) {
    return ProtocolError(wire::INTERNAL,
                         "HTTP request has more operations than bytes");
  }
  absorbed_ -= used;
  step_topic_ = std::move(step.topic);
  switch (step.kind) {
    case Step::Kind::kHello: {
      op.kind = Operation::Kind::kMessage;
      op.message.Clear();
      wire::Hello* hello = op.message.mutable_hello();
      hello->set_protocol_version(wire::PROTOCOL_VERSION_1);
      hello->set_client_name(client_name_);
      hello_credentials_.FillHello(*hello);
      ForgetCredentials();
      break;
    }
    case Step::Kind::kPublish: {
      op.kind = Operation::Kind::kPublish;
      PublishOp& p = op.publish;
      p.Reset();
      p.op_id = step.op_id;
      p.topic = step_topic_;
      p.payload = request_.body;
      p.ack = true;
      for (const http::HttpHeader& h : request_.headers) {
        if (absl::StartsWith(h.name, kHeaderPrefix)) {
          p.headers.push_back(HeaderView{
              absl::string_view(h.name).substr(kHeaderPrefix.size()), h.value});
        }
      }
      break;
    }
    case Step::Kind::kRequest: {
      op.kind = Operation::Kind::kMessage;
      op.message.Clear();
      wire::Request* request = op.message.mutable_request();
      request->set_op_id(step.op_id);
      request->set_topic(step_topic_);
      request->set_payload(request_.body);
      request->set_timeout_ms(step.timeout_ms);
      for (const http::HttpHeader& h : request_.headers) {
        if (absl::StartsWith(h.name, kHeaderPrefix)) {
          wire::Header* header = request->add_headers();
          header->set_key(h.name.substr(kHeaderPrefix.size()));
          header->set_value(h.value);
        }
      }
      break;
    }
    case Step::Kind::kSubscribe: {
      op.kind = Operation::Kind::kMessage;
      op.message.Clear();
      wire::Subscribe* subscribe = op.message.mutable_subscribe();
      subscribe->set_op_id(step.op_id);
      subscribe->set_pattern(step_topic_);
      if (step.replay_if_stored) {
        wire::Replay* replay = subscribe->mutable_replay();
        replay->set_if_stored(true);
        if (step.from_seq > 0) replay->set_from_seq(step.from_seq);
      }
      break;
    }
    case Step::Kind::kLocal:
      op.kind = Operation::Kind::kLocal;
      op.local_error = step.error ? wire::INVALID_ARGUMENT : wire::OK;
      break;
    case Step::Kind::kBayeux:
      step.batch->Emit(step.index, op);
      break;
  }
  return used;
}

// ---------------------------------------------------------------------------
// Planning a request

void HttpCodec::AnswerLocally(
    int status, absl::string_view content_type, absl::string_view body,
    bool close, std::vector<std::pair<std::string, std::string>> headers) {
  Answer answer;
  answer.done = true;
  answer.close = close || !request_.keep_alive;
  http::ResponseOptions response;
  response.close = answer.close;
  response.headers = std::move(headers);
  http::AppendResponse(status, content_type, body, response, answer.bytes);
  answers_.push_back(std::move(answer));
  Step step(Step::Kind::kLocal);
  step.error = status >= 400;
  steps_.push_back(std::move(step));
}

void HttpCodec::AnswerError(int status, absl::string_view code,
                            absl::string_view message, bool close) {
  AnswerLocally(status, kJson, http::JsonErrorBody(code, status, message),
                close);
}

void HttpCodec::PlanRequest() {
  const std::string& path = request_.path;
  const std::string& method = request_.method;
  const auto wrong_method = [&](absl::string_view allowed) {
    AnswerLocally(
        405, kJson,
        http::JsonErrorBody(
            "METHOD_NOT_ALLOWED", 405,
            absl::StrCat(method, " ", path, " is not allowed; use ", allowed)),
        false, {{"Allow", std::string(allowed)}});
  };
  absl::StatusOr<ClientCredentials> credentials =
      CredentialsFromRequest(request_);
  if (!credentials.ok()) {
    AnswerError(400, "INVALID_ARGUMENT", credentials.status().message());
    return;
  }
  if (hello_sent_ && !credentials->empty() &&
      credentials->Digest() != hello_digest_) {
    // The connection acts with the grant its first credentials earned; a
    // request that presents others (a proxy reusing the connection for
    // another user) must not run with it.
    AnswerLocally(
        401, kJson,
        http::JsonErrorBody("REFUSED", 401,
                            "credentials differ from those this connection "
                            "was admitted with; send them on a new "
                            "connection"),
        /*close=*/true, Challenges());
    return;
  }
  request_credentials_ = *std::move(credentials);
  if (IsBayeuxPath(path)) {
    if (request_.upgrade) {
      PlanUpgrade(/*nats=*/false);
      return;
    }
    if (method != "POST") return wrong_method("POST");
    PlanBayeux();
    return;
  }
  if (path == "/ws" || path == "/nats") {
    if (!request_.upgrade) {
      AnswerError(400, "BAD_UPGRADE",
                  absl::StrCat(path,
                               " is a WebSocket endpoint: send a WebSocket "
                               "handshake (Upgrade: websocket)"));
      return;
    }
    PlanUpgrade(path == "/nats");
    return;
  }
  if (request_.upgrade) {
    AnswerError(400, "BAD_UPGRADE",
                absl::StrCat("no WebSocket at ", path, "; use /ws or /nats"),
                /*close=*/true);
    return;
  }
  if (path == "/sse") {
    if (method != "GET") return wrong_method("GET");
    PlanSse(request_.query);
    return;
  }
  const bool pub = absl::StartsWith(path, "/pub/");
  const bool req = absl::StartsWith(path, "/req/");
  if (pub || req) {
    if (method != "POST") return wrong_method("POST");
    std::string topic = path.substr(5);
    if (pub) {
      PlanBrokerRequest(Answer::Kind::kPublish, std::move(topic), 0);
      return;
    }
    absl::StatusOr<http::QueryParameters> query =
        http::ParseQuery(request_.query);
    if (!query.ok()) {
      AnswerError(400, "INVALID_ARGUMENT", query.status().message());
      return;
    }
    uint32_t timeout_ms = 0;
    if (std::optional<std::string> timeout =
            http::FirstValue(*query, "timeout")) {
      absl::Duration d;
      int64_t ms = 0;
      if (absl::ParseDuration(*timeout, &d) && d > absl::ZeroDuration()) {
        ms = absl::ToInt64Milliseconds(d);
      } else if (!absl::SimpleAtoi(*timeout, &ms) || ms <= 0) {
        AnswerError(400, "INVALID_ARGUMENT",
                    absl::StrCat("timeout '", timeout->substr(0, 32),
                                 "' is not a duration such as 2s or 500ms"));
        return;
      }
      timeout_ms = static_cast<uint32_t>(
          std::clamp<int64_t>(ms, 1, std::numeric_limits<uint32_t>::max()));
    }
    PlanBrokerRequest(Answer::Kind::kRequest, std::move(topic), timeout_ms);
    return;
  }
  struct Fixed {
    absl::string_view path;
    Answer::Kind kind;
    absl::string_view topic;
  };
  static constexpr Fixed kFixed[] = {
      {"/stats", Answer::Kind::kStats, sys_topics::kStatisticsTopic},
      {"/metrics", Answer::Kind::kMetrics, sys_topics::kStatisticsTopic},
      {"/connections", Answer::Kind::kConnections,
       sys_topics::kConnectionsTopic},
  };
  for (const Fixed& f : kFixed) {
    if (path != f.path) continue;
    if (method != "GET") return wrong_method("GET");
    PlanBrokerRequest(f.kind, std::string(f.topic), 0);
    return;
  }
  if (path == "/healthz") {
    if (method != "GET") return wrong_method("GET");
    AnswerLocally(200, kJson, "{\"status\":\"ok\"}\n");
    return;
  }
  if (options_.dashboard) {
    if (const DashboardAsset* asset = FindDashboardAsset(path)) {
      if (method != "GET") return wrong_method("GET");
      AnswerLocally(200, asset->content_type, asset->body, false,
                    {{"Cache-Control", "no-cache"}});
      return;
    }
  }
  AnswerError(404, "NOT_FOUND",
              absl::StrCat("no endpoint at ", path.substr(0, 128),
                           "; see docs/http.md"));
}

void HttpCodec::PlanBrokerRequest(Answer::Kind kind, std::string topic,
                                  uint32_t timeout_ms) {
  if (!hello_sent_) {
    hello_sent_ = true;
    name_ = "http";
    client_name_ = ClientNameFrom(request_, name_);
    hello_credentials_ = request_credentials_;
    steps_.push_back(Step(Step::Kind::kHello));
  }
  Answer answer;
  answer.kind = kind;
  answer.op_id = NextOpId();
  answer.close = !request_.keep_alive;
  Step step(kind == Answer::Kind::kPublish ? Step::Kind::kPublish
                                           : Step::Kind::kRequest);
  step.topic = std::move(topic);
  step.op_id = answer.op_id;
  step.timeout_ms = timeout_ms;
  answers_.push_back(std::move(answer));
  steps_.push_back(std::move(step));
}

void HttpCodec::PlanUpgrade(bool nats) {
  if (hello_sent_ || !answers_.empty()) {
    AnswerError(400, "BAD_UPGRADE",
                "a WebSocket upgrade must be the first request on its "
                "connection",
                /*close=*/true);
    return;
  }
  absl::StatusOr<http::UpgradeRequest> upgrade =
      http::ParseUpgradeRequest(request_);
  if (!upgrade.ok()) {
    if (absl::IsFailedPrecondition(upgrade.status())) {
      AnswerLocally(
          426, kJson,
          http::JsonErrorBody("BAD_UPGRADE", 426, upgrade.status().message()),
          /*close=*/true, {{"Sec-WebSocket-Version", "13"}});
    } else {
      AnswerError(400, "BAD_UPGRADE", upgrade.status().message(),
                  /*close=*/true);
    }
    return;
  }
  std::string protocol;
  const bool bayeux = IsBayeuxPath(request_.path);
  if (bayeux) {
    // Bayeux over WebSocket: one JSON array of messages per text message,
    // each way. CometD clients may offer the subprotocol "cometd".
    bayeux_ws_ = true;
    inner_takes_messages_ = true;
    inner_pings_as_frames_ = true;
    name_ = "bayeux-ws";
    if (upgrade->Offers("cometd")) protocol = "cometd";
  } else if (nats) {
    inner_ = std::make_unique<NatsCodec>(options_.nats);
    inner_is_stream_ = true;
    name_ = "nats-ws";
  } else if (upgrade->Offers("manifold.v1")) {
    inner_ = std::make_unique<internal::NativeCodec>();
    name_ = "ws";
    protocol = "manifold.v1";
  } else if (upgrade->Offers("manifold.json")) {
    inner_ = std::make_unique<JsonCodec>();
    inner_takes_messages_ = true;
    inner_pings_as_frames_ = true;
    name_ = "ws-json";
    protocol = "manifold.json";
  } else {
    AnswerError(400, "BAD_UPGRADE",
                "/ws needs the subprotocol manifold.v1 or manifold.json "
                "(Sec-WebSocket-Protocol)",
                /*close=*/true);
    return;
  }
  Answer answer;
  answer.done = true;
  http::AppendSwitchingProtocols(upgrade->key, protocol, answer.bytes);
  answers_.push_back(std::move(answer));
  steps_.push_back(Step(Step::Kind::kLocal));
  mode_ = Mode::kWebSocket;
  ws_ = std::make_unique<WebSocketLink>(start_.max_frame_bytes);
  // The upgrade's credentials, for a Hello that carries none of its own.
  hello_credentials_ = request_credentials_;
  if (bayeux) {
    // The link says Hello for itself, with its first message: a handshake
    // there may carry the credentials (ext.auth) that admission checks.
    hello_sent_ = true;
    bayeux_hello_due_ = true;
    client_name_ = ClientNameFrom(request_, name_);
    return;
  }
  // NATS greets first: its INFO goes out right after the 101.
  inner_->Start(start_, inner_greeting_);
}

void HttpCodec::PlanSse(const std::string& query_text) {
  if (!answers_.empty()) {
    AnswerError(400, "INVALID_ARGUMENT",
                "/sse must not be pipelined behind other requests",
                /*close=*/true);
    return;
  }
  absl::StatusOr<http::QueryParameters> query = http::ParseQuery(query_text);
  if (!query.ok()) {
    AnswerError(400, "INVALID_ARGUMENT", query.status().message());
    return;
  }
  std::vector<std::string> topics;
  for (const auto& [name, value] : *query) {
    if (name == "topic") topics.push_back(value);
  }
  if (topics.empty() || topics.size() > options_.max_sse_topics) {
    AnswerError(400, "INVALID_ARGUMENT",
                absl::StrCat("/sse needs 1 to ", options_.max_sse_topics,
                             " topic= parameters, not ", topics.size()));
    return;
  }
  for (const std::string& topic : topics) {
    if (absl::Status s =
            ValidateTopic(topic, TopicRole::kSubscription, TopicLimits());
        !s.ok()) {
      AnswerError(400, wire::Code_Name(WireCode(s)), s.message());
      return;
    }
  }
  const std::optional<std::string> format = http::FirstValue(*query, "format");
  if (format.has_value() && *format != "json" && *format != "text") {
    AnswerError(400, "INVALID_ARGUMENT",
                absl::StrCat("format '", format->substr(0, 32),
                             "' is not json or text"));
    return;
  }
  sse_json_ = format.has_value() && *format == "json";
  if (!hello_sent_) {
    hello_sent_ = true;
    name_ = "sse";
    client_name_ = ClientNameFrom(request_, name_);
    hello_credentials_ = request_credentials_;
    steps_.push_back(Step(Step::Kind::kHello));
  }
  Answer answer;
  answer.kind = Answer::Kind::kSse;
  answers_.push_back(std::move(answer));
  // Where the client was: "s:<position or ->,..." as the ids below say,
  // one per topic. Anything else starts afresh.
  std::vector<uint64_t> resume_from(topics.size(), 0);
  if (const std::string* last = request_.Header("last-event-id");
      last != nullptr && absl::StartsWith(*last, "s:")) {
    std::vector<absl::string_view> parts =
        absl::StrSplit(absl::string_view(*last).substr(2), ',');
    if (parts.size() == topics.size()) {
      for (size_t i = 0; i < parts.size(); ++i) {
        uint64_t position = 0;
        if (parts[i] != "-" && absl::SimpleAtoi(parts[i], &position)) {
          resume_from[i] = position + 1;
        }
      }
    }
  }
  sse_topics_.clear();
  for (size_t i = 0; i < topics.size(); ++i) {
    Step step(Step::Kind::kSubscribe);
    step.topic = std::move(topics[i]);
    step.op_id = NextOpId();
    step.replay_if_stored = true;
    step.from_seq = resume_from[i];
    sse_topics_.push_back({step.op_id, 0, false, 0});
    steps_.push_back(std::move(step));
    ++sse_pending_acks_;
  }
  mode_ = Mode::kSse;
}

// ---------------------------------------------------------------------------
// Bayeux

bool HttpCodec::IsBayeuxPath(absl::string_view path) const {
  const BayeuxOptions& bayeux = options_.bayeux;
  if (bayeux.path.empty()) return false;
  // A base, or a base and a message type (/cometd/connect).
  auto under = [path](absl::string_view base) {
    return absl::StartsWith(path, base) &&
           (path.size() == base.size() || path[base.size()] == '/');
  };
  if (under(bayeux.path)) return true;
  for (const auto& [type, base] : bayeux.type_paths) {
    if (under(base)) return true;
  }
  return false;
}

BayeuxBatch::Context HttpCodec::BayeuxContext(bool websocket) const {
  BayeuxBatch::Context context;
  context.options = &options_.bayeux;
  context.websocket = websocket;
  context.client_name = client_name_;
  context.make_session_codec = []() -> std::unique_ptr<ProtocolCodec> {
    return std::make_unique<BayeuxSessionCodec>();
  };
  if (!websocket) {
    if (const std::string* cookie = request_.Header("cookie")) {
      context.browser = FindCookie(*cookie, kBayeuxBrowserCookie);
    }
    for (const http::HttpHeader& h : request_.headers) {
      // Credentials stay out of events anyone may watch.
      if (h.name == "cookie" || h.name == "authorization") continue;
      context.headers.emplace_back(h.name, h.value);
    }
  }
  return context;
}

void HttpCodec::PlanBayeux() {
  const bool hello = !hello_sent_;
  if (hello) {
    hello_sent_ = true;
    name_ = "bayeux";
    client_name_ = ClientNameFrom(request_, name_);
  }
  absl::StatusOr<std::unique_ptr<BayeuxBatch>> batch = BayeuxBatch::Parse(
      request_.body, BayeuxContext(/*websocket=*/false), last_op_id_);
  if (hello) {
    // The link's Hello carries the request's credentials, or those of the
    // handshake it brings.
    hello_credentials_ = request_credentials_;
    if (hello_credentials_.empty() && batch.ok()) {
      hello_credentials_ = (*batch)->handshake_credentials();
      // A long-polling client's later requests come on new connections
      // without its handshake's credentials: they claim its session's.
      if (hello_credentials_.empty()) {
        (*batch)->ClaimSession(hello_credentials_);
      }
    }
    steps_.push_back(Step(Step::Kind::kHello));
  }
  if (!batch.ok()) {
    AnswerError(absl::IsResourceExhausted(batch.status()) ? 413 : 400,
                absl::IsResourceExhausted(batch.status()) ? "PAYLOAD_TOO_LARGE"
                                                          : "INVALID_ARGUMENT",
                batch.status().message());
    return;
  }
  Answer answer;
  answer.kind = Answer::Kind::kBayeux;
  answer.close = !request_.keep_alive;
  answer.bayeux = *std::move(batch);
  BayeuxBatch* b = answer.bayeux.get();
  answers_.push_back(std::move(answer));
  if (b->operations() == 0) {
    // Nothing for the broker (every message was refused): answer now.
    CompleteBayeuxAnswer(answers_.back());
    steps_.push_back(Step(Step::Kind::kLocal));
    return;
  }
  for (size_t k = 0; k < b->operations(); ++k) {
    Step step(Step::Kind::kBayeux);
    step.batch = b;
    step.index = k;
    steps_.push_back(std::move(step));
  }
}

void HttpCodec::CompleteBayeuxAnswer(Answer& answer) {
  http::ResponseOptions response;
  response.close = answer.close;
  response.headers = {{"Cache-Control", "no-cache"}};
  if (!answer.bayeux->set_cookie().empty()) {
    response.headers.emplace_back(
        "Set-Cookie",
        absl::StrCat(kBayeuxBrowserCookie, "=", answer.bayeux->set_cookie(),
                     "; Path=/; HttpOnly; SameSite=Lax"));
  }
  http::AppendResponse(200, kJson, answer.bayeux->Render(), response,
                       answer.bytes);
  answer.done = true;
  answer.bayeux.reset();
}

void HttpCodec::SendBayeuxFrame(absl::string_view json, OutboundBuffer& out) {
  MoveLocalOutput(out);
  const absl::string_view parts[] = {json};
  ws_->SendMessage(WebSocketLink::Opcode::kText, parts, out);
}

bool HttpCodec::TakeBayeux(const wire::ServerMessage& message,
                           OutboundBuffer& out) {
  if (bayeux_ws_) {
    for (auto it = bayeux_batches_.begin(); it != bayeux_batches_.end(); ++it) {
      if (!(*it)->Take(message)) continue;
      if ((*it)->done()) {
        SendBayeuxFrame((*it)->Render(), out);
        bayeux_batches_.erase(it);
      }
      return true;
    }
    return false;
  }
  for (Answer& a : answers_) {
    if (a.kind != Answer::Kind::kBayeux || a.done || a.bayeux == nullptr ||
        !a.bayeux->Take(message)) {
      continue;
    }
    if (a.bayeux->done()) {
      CompleteBayeuxAnswer(a);
      FlushAnswers(out);
    }
    return true;
  }
  return false;
}

bool HttpCodec::EncodePoll(const PollUpdate& update, OutboundBuffer& out) {
  bool keep = false;
  if (bayeux_ws_) {
    for (auto it = bayeux_batches_.begin(); it != bayeux_batches_.end(); ++it) {
      if (!(*it)->TakePoll(update, bayeux_text_, keep)) continue;
      if (keep && !bayeux_text_.empty()) SendBayeuxFrame(bayeux_text_, out);
      if ((*it)->done()) {
        SendBayeuxFrame((*it)->Render(), out);
        bayeux_batches_.erase(it);
      }
      return keep;
    }
    return false;
  }
  for (Answer& a : answers_) {
    if (a.kind != Answer::Kind::kBayeux || a.done || a.bayeux == nullptr ||
        !a.bayeux->TakePoll(update, bayeux_text_, keep)) {
      continue;
    }
    if (a.bayeux->done()) {
      CompleteBayeuxAnswer(a);
      FlushAnswers(out);
    }
    return keep;
  }
  return false;
}

absl::StatusOr<size_t> HttpCodec::DecodeBayeuxMessage(Operation& op) {
  text_ = std::move(inner_messages_.front());
  inner_messages_.pop_front();
  absl::StatusOr<std::unique_ptr<BayeuxBatch>> batch =
      BayeuxBatch::Parse(text_, BayeuxContext(/*websocket=*/true), last_op_id_);
  if (!batch.ok() || (*batch)->operations() == 0) {
    // Refused whole, or every message refused: answered at once, and the
    // connection goes on.
    // The reply outlives the view SendMessage() reads.
    const std::string reply =
        batch.ok() ? (*batch)->Render() : BayeuxRefusal(batch.status());
    const absl::string_view parts[] = {reply};
    ws_->SendMessage(WebSocketLink::Opcode::kText, parts, local_out_);
    op.kind = Operation::Kind::kLocal;
    op.local_error = batch.ok() ? wire::OK : wire::INVALID_ARGUMENT;
    const size_t charged = Charge(0);
    if (charged == 0) {
      return ProtocolError(wire::INTERNAL,
                           "WebSocket input has more operations than bytes");
    }
    return charged;
  }
  BayeuxBatch* b = batch->get();
  bayeux_batches_.push_back(*std::move(batch));
  if (bayeux_hello_due_) {
    bayeux_hello_due_ = false;
    if (hello_credentials_.empty()) {
      hello_credentials_ = b->handshake_credentials();
    }
    steps_.push_back(Step(Step::Kind::kHello));
  }
  for (size_t k = 0; k < b->operations(); ++k) {
    Step step(Step::Kind::kBayeux);
    step.batch = b;
    step.index = k;
    step.charge_held = true;
    steps_.push_back(std::move(step));
  }
  return EmitStep(op);
}

// ---------------------------------------------------------------------------
// Answers

HttpCodec::Answer* HttpCodec::FindAnswer(uint64_t op_id) {
  for (Answer& a : answers_) {
    if (!a.done && a.op_id == op_id && a.kind != Answer::Kind::kLocal &&
        a.kind != Answer::Kind::kBayeux) {
      return &a;
    }
  }
  return nullptr;
}

void HttpCodec::FlushAnswers(OutboundBuffer& out) {
  while (!answers_.empty() && answers_.front().done) {
    Answer& front = answers_.front();
    out.Append(front.bytes);
    if (front.close) {
      answers_.clear();
      steps_.clear();
      set_wants_close();
      return;
    }
    answers_.pop_front();
  }
}

void HttpCodec::FailPendingAnswers(int status, absl::string_view code,
                                   absl::string_view message) {
  std::vector<Answer*> failed;
  for (Answer& a : answers_) {
    if (!a.done) failed.push_back(&a);
  }
  // The request that broke a limit, or one cut short, has no answer yet.
  if (fatal_status_ != 0 || (failed.empty() && parser_.in_progress())) {
    answers_.emplace_back();
    failed.push_back(&answers_.back());
  }
  // Every waiting request gets the error, in order; the last one says the
  // connection closes.
  for (Answer* a : failed) {
    const bool last = a == failed.back();
    a->done = true;
    a->close = last;
    a->bytes.clear();
    http::ResponseOptions response;
    response.close = last;
    http::AppendResponse(status, kJson,
                         http::JsonErrorBody(code, status, message), response,
                         a->bytes);
  }
}

void HttpCodec::RefusePendingAnswers(absl::string_view message) {
  std::vector<Answer*> refused;
  for (Answer& a : answers_) {
    if (!a.done) refused.push_back(&a);
  }
  if (refused.empty()) {
    answers_.emplace_back();
    refused.push_back(&answers_.back());
  }
  for (Answer* a : refused) {
    a->close = a == refused.back();
    if (a->kind == Answer::Kind::kBayeux && a->bayeux != nullptr) {
      // Bayeux clients read the refusal from the reply, as any failed
      // handshake.
      a->bayeux->Refuse(RefusalReason(message));
      CompleteBayeuxAnswer(*a);
      continue;
    }
    a->done = true;
    a->bytes.clear();
    http::ResponseOptions response;
    response.close = a->close;
    response.headers = Challenges();
    http::AppendResponse(401, kJson,
                         http::JsonErrorBody("REFUSED", 401, message), response,
                         a->bytes);
  }
}

void HttpCodec::EncodeHttp(const wire::ServerMessage& message,
                           OutboundBuffer& out) {
  if (TakeBayeux(message, out)) return;
  switch (message.kind_case()) {
    case wire::ServerMessage::kAck: {
      const wire::Ack& ack = message.ack();
      if (Answer* a = FindAnswer(ack.op_id());
          a != nullptr && a->kind == Answer::Kind::kPublish) {
        http::ResponseOptions response;
        response.close = a->close;
        http::AppendResponse(
            200, kJson, absl::StrCat("{\"delivered\":", ack.delivered(), "}\n"),
            response, a->bytes);
        a->done = true;
      } else if (mode_ == Mode::kSse && sse_pending_acks_ > 0) {
        --sse_pending_acks_;
        for (SseTopic& topic : sse_topics_) {
          if (topic.op_id != ack.op_id()) continue;
          topic.subscription_id = ack.subscription_id();
          topic.stored = ack.has_stream_seq();
          topic.position = ack.stream_seq();
          sse_stored_ = sse_stored_ || topic.stored;
        }
        if (!sse_started_ && !answers_.empty() &&
            answers_.front().kind == Answer::Kind::kSse) {
          sse_started_ = true;
          Answer& sse = answers_.front();
          http::ResponseOptions response;
          response.headers = {{"Cache-Control", "no-cache"},
                              {"X-Accel-Buffering", "no"}};
          http::AppendStreamingResponseHead(200, "text/event-stream", response,
                                            sse.bytes);
          http::AppendSseRetry(options_.sse_retry, sse.bytes);
          sse.done = true;
        }
        if (sse_pending_acks_ == 0 && sse_stored_) {
          // An event with only an id: the client's Last-Event-ID is where
          // it starts, even if the broker goes before any message comes.
          std::string id = absl::StrCat("id: ", SseEventId(), "\n\n");
          if (!answers_.empty() &&
              answers_.front().kind == Answer::Kind::kSse) {
            answers_.front().bytes += id;
          } else {
            out.Append(id);
          }
        }
      }
      break;
    }
    case wire::ServerMessage::kError: {
      const wire::Error& error = message.error();
      if (error.fatal() && error.code() == wire::REFUSED) {
        RefusePendingAnswers(error.message());
        break;
      }
      if (error.fatal()) {
        const int status =
            fatal_status_ != 0 ? fatal_status_ : StatusForError(error.code());
        if (mode_ == Mode::kSse && sse_started_) {
          text_.clear();
          ++sse_sequence_;
          http::AppendSseEvent(
              "error", SseEventId(),
              http::JsonErrorBody(wire::Code_Name(error.code()), status,
                                  error.message()),
              text_);
          out.Append(text_);
          return;
        }
        FailPendingAnswers(status, wire::Code_Name(error.code()),
                           error.message());
        break;
      }
      const int status = StatusForError(error.code());
      if (Answer* a = FindAnswer(error.op_id())) {
        http::ResponseOptions response;
        response.close = a->close;
        http::AppendResponse(status, kJson,
                             http::JsonErrorBody(wire::Code_Name(error.code()),
                                                 status, error.message()),
                             response, a->bytes);
        a->done = true;
      } else if (mode_ == Mode::kSse) {
        // A topic the broker refused: say so and end the stream.
        if (sse_started_) {
          text_.clear();
          ++sse_sequence_;
          http::AppendSseEvent(
              "error", SseEventId(),
              http::JsonErrorBody(wire::Code_Name(error.code()), status,
                                  error.message()),
              text_);
          out.Append(text_);
          set_wants_close();
          return;
        }
        if (!answers_.empty()) {
          Answer& sse = answers_.front();
          http::ResponseOptions response;
          response.close = true;
          http::AppendResponse(
              status, kJson,
              http::JsonErrorBody(wire::Code_Name(error.code()), status,
                                  error.message()),
              response, sse.bytes);
          sse.done = true;
          sse.close = true;
        }
      }
      break;
    }
    case wire::ServerMessage::kResponse: {
      const wire::Response& r = message.response();
      Answer* a = FindAnswer(r.op_id());
      if (a == nullptr) break;
      http::ResponseOptions response;
      response.close = a->close;
      const int status = StatusForRequest(r.status());
      if (status != 200) {
        http::AppendResponse(
            status, kJson,
            http::JsonErrorBody(wire::RequestStatus_Name(r.status()), status,
                                r.message()),
            response, a->bytes);
      } else if (a->kind == Answer::Kind::kRequest) {
        std::string content_type = "application/octet-stream";
        for (const wire::Header& h : r.headers()) {
          if (h.value().find_first_of("\r\n") != std::string::npos) continue;
          if (absl::EqualsIgnoreCase(h.key(), "content-type")) {
            content_type = h.value();
          } else {
            response.headers.emplace_back(
                absl::StrCat("Manifold-Header-", h.key()), h.value());
          }
        }
        http::AppendResponse(200, content_type, r.payload(), response,
                             a->bytes);
      } else if (a->kind == Answer::Kind::kStats ||
                 a->kind == Answer::Kind::kMetrics) {
        wire::Statistics stats;
        stats.ParseFromString(r.payload());
        if (a->kind == Answer::Kind::kStats) {
          http::AppendResponse(200, kJson, http::MessageToJson(stats) + "\n",
                               response, a->bytes);
        } else {
          std::string text;
          http::AppendPrometheusText(stats, text);
          http::AppendResponse(200, http::kPrometheusContentType, text,
                               response, a->bytes);
        }
      } else if (a->kind == Answer::Kind::kConnections) {
        wire::ConnectionList list;
        list.ParseFromString(r.payload());
        http::AppendResponse(200, kJson, http::MessageToJson(list) + "\n",
                             response, a->bytes);
      }
      a->done = true;
      break;
    }
    case wire::ServerMessage::kGoodbye:
      if (mode_ == Mode::kSse && sse_started_) return;
      FailPendingAnswers(503, "SHUTTING_DOWN", message.goodbye().message());
      break;
    default:
      // Welcome: nothing to say in HTTP. Keepalive pings never come
      // (wants_keepalive() is false outside WebSockets).
      break;
  }
  FlushAnswers(out);
}

void HttpCodec::Encode(const wire::ServerMessage& message,
                       OutboundBuffer& out) {
  if (mode_ == Mode::kWebSocket && answers_.empty()) {
    if (bayeux_ws_ && TakeBayeux(message, out)) return;
    EncodeWebSocket(message, out);
    return;
  }
  EncodeHttp(message, out);
}

void HttpCodec::EncodeLocal(OutboundBuffer& out) {
  FlushAnswers(out);
  if (mode_ == Mode::kWebSocket) {
    MoveLocalOutput(out);
    if (!inner_greeting_.empty()) {  // NATS's INFO, after the 101
      BeginInnerOutput(out);
      MoveBytes(inner_greeting_, out);
      EndInnerOutput(out);
    }
  }
}

void HttpCodec::FinishTurn(OutboundBuffer& out) {
  if (out.frame_open()) ws_->EndMessage(out);
}

// ---------------------------------------------------------------------------
// Deliveries

void HttpCodec::EncodeDelivery(SharedMessage& message,
                               SubscriptionId subscription,
                               OutboundBuffer& out) {
  if (mode_ == Mode::kWebSocket) {
    // Most deliveries of a busy turn go into the message already open: no
    // call to open one.
    if (!gathers_turns_ || !out.frame_open() || !local_out_.empty()) {
      BeginInnerOutput(out);
    }
    inner_->EncodeDelivery(message, subscription, out);
    EndInnerOutput(out);
    return;
  }
  if (mode_ == Mode::kSse && sse_started_) {
    EncodeSseEvent(message.publish(), subscription, out);
  }
}

absl::string_view HttpCodec::SseEventId() {
  sse_id_.clear();
  if (!sse_stored_) {
    absl::StrAppend(&sse_id_, sse_sequence_);
    return sse_id_;
  }
  sse_id_ = "s:";
  for (size_t i = 0; i < sse_topics_.size(); ++i) {
    if (i > 0) sse_id_ += ',';
    if (sse_topics_[i].stored) {
      absl::StrAppend(&sse_id_, sse_topics_[i].position);
    } else {
      sse_id_ += '-';
    }
  }
  return sse_id_;
}

void HttpCodec::EncodeSseEvent(const PublishOp& publish,
                               SubscriptionId subscription,
                               OutboundBuffer& out) {
  ++sse_sequence_;
  if (publish.stream_seq != 0) {
    for (SseTopic& topic : sse_topics_) {
      if (topic.subscription_id == subscription.value()) {
        topic.position = publish.stream_seq;
      }
    }
  }
  std::string data;
  if (IsReserved(publish.topic)) {
    // Broker events: their JSON form, readable by any page.
    wire::BrokerEvent event;
    event.ParseFromArray(publish.payload.data(),
                         static_cast<int>(publish.payload.size()));
    data = http::MessageToJson(event);
  } else if (sse_json_) {
    google::protobuf::Struct object;
    auto& fields = *object.mutable_fields();
    fields["topic"].set_string_value(std::string(publish.topic));
    fields["sequence"].set_number_value(static_cast<double>(sse_sequence_));
    if (publish.stream_seq != 0) {
      fields["streamSeq"].set_number_value(
          static_cast<double>(publish.stream_seq));
    }
    google::protobuf::ListValue* headers =
        fields["headers"].mutable_list_value();
    for (const HeaderView& h : publish.headers) {
      auto& header =
          *headers->add_values()->mutable_struct_value()->mutable_fields();
      header["key"].set_string_value(std::string(h.key));
      header["value"].set_string_value(http::IsUtf8(h.value)
                                           ? std::string(h.value)
                                           : absl::Base64Escape(h.value));
    }
    if (http::IsUtf8(publish.payload)) {
      fields["payload"].set_string_value(std::string(publish.payload));
    } else {
      fields["payload"].set_string_value(absl::Base64Escape(publish.payload));
      fields["base64"].set_bool_value(true);
    }
    if (!publish.reply_to.empty()) {
      fields["replyTo"].set_string_value(std::string(publish.reply_to));
    }
    google::protobuf::Value value;
    *value.mutable_struct_value() = std::move(object);
    data = http::ValueToJson(value);
  } else if (http::IsUtf8(publish.payload)) {
    data = std::string(publish.payload);
  } else {
    data = absl::StrCat("base64:", absl::Base64Escape(publish.payload));
  }
  text_.clear();
  http::AppendSseEvent(publish.topic, SseEventId(), data, text_);
  out.Append(text_);
}

// ---------------------------------------------------------------------------
// WebSockets

size_t HttpCodec::Unheld() const {
  // Bytes that still back data the codec holds (inner bytes not decoded,
  // whole messages and pongs not handed over, frames wslay has not
  // finished) stay unreported, so every later operation has bytes to take.
  size_t held = inner_stream_.size() - inner_read_ + json_partial_.size() +
                pongs_received_ + (ws_->has_output() ? 1 : 0) +
                ws_->unsettled_bytes();
  for (const std::string& m : inner_messages_) held += m.size();
  return absorbed_ > held ? absorbed_ - held : 0;
}

size_t HttpCodec::Charge(size_t n) {
  const size_t used = Unheld();
  absorbed_ -= used;
  return used;
}

absl::StatusOr<size_t> HttpCodec::DecodeWebSocket(absl::string_view input,
                                                  size_t max_frame_bytes,
                                                  Operation& op) {
  while (true) {
    if (bayeux_ws_ && !inner_messages_.empty()) {
      return DecodeBayeuxMessage(op);
    }
    if (inner_takes_messages_ && !inner_messages_.empty()) {
      text_ = std::move(inner_messages_.front());
      inner_messages_.pop_front();
      absl::StatusOr<size_t> used = inner_->Decode(text_, max_frame_bytes, op);
      if (!used.ok()) return used.status();
      FillInnerHello(op);
      const size_t charged = Charge(text_.size());
      if (charged == 0) break;
      return charged;
    }
    if (!inner_takes_messages_ && inner_read_ < inner_stream_.size()) {
      absl::StatusOr<size_t> used =
          inner_->Decode(absl::string_view(inner_stream_).substr(inner_read_),
                         max_frame_bytes, op);
      if (!used.ok()) return used.status();
      if (*used > 0) {
        FillInnerHello(op);
        inner_read_ += *used;
        const size_t charged = Charge(*used);
        if (charged == 0) break;
        return charged;
      }
    }
    if (pongs_received_ > 0) {
      --pongs_received_;
      op.kind = Operation::Kind::kMessage;
      op.message.Clear();
      op.message.mutable_pong();
      const size_t charged = Charge(1);
      if (charged == 0) break;
      return charged;
    }
    if (ws_->closed()) {
      ws_->Flush(local_out_);
      ws_close_pending_ = true;
      if (ws_->close_received()) {
        return ProtocolError(wire::CONNECTION_CLOSED,
                             "the WebSocket client closed the connection");
      }
      switch (ws_->close_code_sent()) {
        case 1007:
          return ProtocolError(wire::INVALID_ARGUMENT,
                               "WebSocket text message is not valid UTF-8 "
                               "(closed with 1007)");
        case 1009:
          return ProtocolError(
              wire::FRAME_TOO_LARGE,
              absl::StrCat("WebSocket message larger than ", max_frame_bytes,
                           " bytes (closed with 1009)"));
        default:
          return ProtocolError(
              wire::MALFORMED_MESSAGE,
              absl::StrCat("WebSocket protocol violation (closed with ",
                           ws_->close_code_sent(), ")"));
      }
    }
    if (ws_->has_output()) {
      ws_->Flush(local_out_);
      op.kind = Operation::Kind::kLocal;
      const size_t charged = Charge(1);
      if (charged == 0) break;
      return charged;
    }
    if (inner_stream_.size() - inner_read_ > max_frame_bytes ||
        json_partial_.size() > max_frame_bytes ||
        absorbed_ > max_frame_bytes + 64 * 1024) {
      return ProtocolError(
          wire::FRAME_TOO_LARGE,
          absl::StrCat("an operation over WebSocket is larger than ",
                       max_frame_bytes, " bytes"));
    }
    const absl::string_view fresh = input.substr(absorbed_);
    if (fresh.empty()) return 0;
    input_since_tick_ = true;
    ws_->Receive(fresh, inner_takes_messages_ ? json_partial_ : inner_stream_);
    absorbed_ += fresh.size();
    if (inner_read_ == inner_stream_.size()) {
      inner_stream_.clear();
      inner_read_ = 0;
    } else if (inner_read_ >= 64 * 1024) {
      inner_stream_.erase(0, inner_read_);
      inner_read_ = 0;
    }
    if (inner_takes_messages_) {
      size_t start = 0;
      for (size_t end : ws_->message_ends()) {
        inner_messages_.push_back(json_partial_.substr(start, end - start));
        start = end;
      }
      ws_->clear_message_ends();
      json_partial_.erase(0, start);
    } else {
      ws_->clear_message_ends();
    }
    if (inner_pings_as_frames_) pongs_received_ += ws_->TakePongs();
  }
  return ProtocolError(wire::INTERNAL,
                       "WebSocket input has more operations than bytes");
}

void HttpCodec::FillInnerHello(Operation& op) {
  if (op.kind == Operation::Kind::kMessage && op.message.has_hello()) {
    hello_credentials_.FillHello(*op.message.mutable_hello());
    ForgetCredentials();
  }
}

void HttpCodec::ForgetCredentials() {
  hello_digest_ = hello_credentials_.Digest();
  hello_credentials_ = ClientCredentials();
  request_credentials_ = ClientCredentials();
}

void HttpCodec::MoveLocalOutput(OutboundBuffer& out) {
  if (local_out_.empty()) return;
  if (out.frame_open()) ws_->EndMessage(out);  // it came first
  MoveBytes(local_out_, out);
}

void HttpCodec::BeginInnerOutput(OutboundBuffer& out) {
  MoveLocalOutput(out);
  if (!out.frame_open()) {
    ws_->BeginMessage(inner_takes_messages_ ? WebSocketLink::Opcode::kText
                                            : WebSocketLink::Opcode::kBinary,
                      out);
  }
}

void HttpCodec::EndInnerOutput(OutboundBuffer& out) {
  // Gathering, the message stays open for the rest of the turn (the
  // broker's FinishTurn() ends it), unless it is large already.
  if (!gathers_turns_ ||
      out.open_frame_payload_size() >= kMaxGatheredMessageBytes) {
    ws_->EndMessage(out);
  }
}

void HttpCodec::EncodeWebSocket(const wire::ServerMessage& message,
                                OutboundBuffer& out) {
  MoveLocalOutput(out);
  if (inner_pings_as_frames_ && message.has_ping()) {
    ws_->SendPing(absl::StrCat(message.ping().op_id()), out);
    return;
  }
  const bool fatal = message.has_error() && message.error().fatal();
  if (bayeux_ws_) {
    // Everything Bayeux says went through TakeBayeux(); what is left is the
    // link's own Welcome and errors no batch waits for.
    if (!fatal && !message.has_goodbye()) return;
    const wire::Code code =
        fatal ? message.error().code() : wire::SHUTTING_DOWN;
    if (code == wire::REFUSED) {
      // The batch that said Hello learns why, then the link closes.
      for (std::unique_ptr<BayeuxBatch>& batch : bayeux_batches_) {
        batch->Refuse(RefusalReason(message.error().message()));
        SendBayeuxFrame(batch->Render(), out);
      }
      bayeux_batches_.clear();
    }
    ws_->Close(CloseCodeFor(code),
               fatal ? message.error().message() : message.goodbye().message(),
               out);
    return;
  }
  if (!fatal && !message.has_goodbye()) {
    BeginInnerOutput(out);
    inner_->Encode(message, out);
    // Welcomed: NATS, a byte stream, may now gather a turn's output into
    // one message. manifold.v1 promises a frame per message, JSON an
    // operation per message.
    if (message.has_welcome() && inner_is_stream_) {
      gathers_turns_ = true;
    }
    EndInnerOutput(out);
    return;
  }
  const wire::Code code = fatal ? message.error().code() : wire::SHUTTING_DOWN;
  // After a close frame (the peer's, or wslay's answer to a violation) no
  // message may follow.
  if (code != wire::CONNECTION_CLOSED && !ws_close_pending_) {
    BeginInnerOutput(out);
    inner_->Encode(message, out);  // the protocol's own last word
    ws_->EndMessage(out);
  }
  std::string reason =
      fatal ? message.error().message() : message.goodbye().message();
  if (code == wire::REFUSED && name_ == "nats-ws") {
    // As nats-server: the refusal's reason stays in the broker's logs.
    reason = std::string(nats::kAuthorizationViolation);
  }
  ws_->Close(CloseCodeFor(code), reason, out);
}

// ---------------------------------------------------------------------------
// Time

absl::Status HttpCodec::Tick(absl::Time now, OutboundBuffer& out) {
  if (last_input_ == absl::InfinitePast() || input_since_tick_) {
    last_input_ = now;
    input_since_tick_ = false;
  }
  switch (mode_) {
    case Mode::kHttp: {
      const bool partial =
          parser_.in_progress() || (absorbed_ > 0 && steps_.empty());
      if (partial) {
        if (request_seen_ == absl::InfiniteFuture()) {
          request_seen_ = now;
        } else if (now - request_seen_ >= options_.request_timeout) {
          return FatalHttp(
              408, wire::HANDSHAKE_TIMEOUT,
              absl::StrCat("HTTP request not received within ",
                           absl::FormatDuration(options_.request_timeout)));
        }
      } else {
        request_seen_ = absl::InfiniteFuture();
        if (answers_.empty() && now - last_input_ >= options_.idle_timeout) {
          return ProtocolError(
              wire::CONNECTION_CLOSED,
              absl::StrCat("idle HTTP connection closed after ",
                           absl::FormatDuration(options_.idle_timeout)));
        }
      }
      break;
    }
    case Mode::kSse:
      if (!sse_started_) break;
      if (last_heartbeat_ == absl::InfinitePast()) last_heartbeat_ = now;
      if (now - last_heartbeat_ >= options_.sse_heartbeat) {
        last_heartbeat_ = now;
        text_.clear();
        http::AppendSseComment("keepalive", text_);
        out.Append(text_);
      }
      break;
    case Mode::kWebSocket:
      break;  // the inner protocol's keepalive runs through the broker
  }
  return absl::OkStatus();
}

}  // namespace manifold
