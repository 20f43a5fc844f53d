#include "broker/http/bayeux.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "broker/http/bayeux_json.h"
#include "broker/http/http_status.h"
#include "core/status.h"
#include "nlohmann/json.hpp"

namespace manifold {

using Json = nlohmann::json;

namespace {

constexpr absl::string_view kMeta = "/meta/";
constexpr absl::string_view kService = "/service/";

// A Bayeux error string: "NNN::reason", NNN an HTTP-like status.
std::string BayeuxError(int status, absl::string_view reason) {
  return absl::StrCat(status, "::", reason);
}

std::string BayeuxError(const wire::Error& error) {
  if (error.code() == wire::SESSION_UNKNOWN) return "402::session_unknown";
  return BayeuxError(
      StatusForError(error.code()),
      absl::StrCat(wire::Code_Name(error.code()), ": ", error.message()));
}

Json Advice(const BayeuxOptions& options, absl::string_view reconnect) {
  Json advice = Json::object();
  advice["reconnect"] = std::string(reconnect);
  advice["interval"] = absl::ToInt64Milliseconds(options.interval);
  if (reconnect == "retry") {
    advice["timeout"] = absl::ToInt64Milliseconds(options.connect_timeout);
  }
  return advice;
}

// A reply's common fields: the request's id and channel, and its clientId.
Json ReplyTo(const Json& message) {
  Json reply = Json::object();
  if (auto id = message.find("id"); id != message.end()) reply["id"] = *id;
  if (auto channel = message.find("channel");
      channel != message.end() && channel->is_string()) {
    reply["channel"] = *channel;
  }
  if (auto client = message.find("clientId");
      client != message.end() && client->is_string()) {
    reply["clientId"] = *client;
  }
  return reply;
}

void Fail(Json& reply, std::string error) {
  reply["successful"] = false;
  reply["error"] = std::move(error);
}

// The channels of a (un)subscribe: "subscription" as a string or an array
// of strings. Empty when it is neither.
std::vector<std::string> SubscriptionChannels(const Json& message) {
  std::vector<std::string> channels;
  auto it = message.find("subscription");
  if (it == message.end()) return channels;
  if (it->is_string()) {
    channels.push_back(it->get<std::string>());
  } else if (it->is_array()) {
    for (const Json& c : *it) {
      if (!c.is_string()) return {};
      channels.push_back(c.get<std::string>());
    }
  }
  return channels;
}

}  // namespace

absl::StatusOr<std::string> TopicForChannel(absl::string_view channel) {
  if (!absl::StartsWith(channel, "/") || channel.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", channel.substr(0, 128),
                     "' is not a channel (channels start with /)"));
  }
  return std::string(channel.substr(1));
}

std::string ChannelForTopic(absl::string_view topic) {
  return absl::StrCat("/", topic);
}

std::string FindCookie(absl::string_view cookie_header,
                       absl::string_view name) {
  for (absl::string_view pair : absl::StrSplit(cookie_header, ';')) {
    pair = absl::StripAsciiWhitespace(pair);
    if (absl::ConsumePrefix(&pair, name) && absl::ConsumePrefix(&pair, "=")) {
      return std::string(pair);
    }
  }
  return "";
}

std::string BayeuxRefusal(const absl::Status& status) {
  Json reply = Json::object();
  reply["successful"] = false;
  reply["error"] = BayeuxError(absl::IsResourceExhausted(status) ? 413 : 400,
                               status.message());
  return Json::array({std::move(reply)})
      .dump(-1, ' ', false, Json::error_handler_t::replace);
}

// ---------------------------------------------------------------------------

struct BayeuxBatch::Entry {
  enum class Kind {
    kAnswered,  // answered while parsing (invalid)
    kHandshake,
    kConnect,
    kSubscribe,
    kUnsubscribe,
    kDisconnect,
    kPublish,
    kService,
  };
  Kind kind = Kind::kAnswered;
  Json message;  // as received
  Json reply;
  size_t waiting = 0;  // operations not answered yet
  bool failed = false;
};

struct BayeuxBatch::PlannedOp {
  size_t entry = 0;
  uint64_t op_id = 0;
  std::string topic;    // pattern, topic or service topic
  std::string channel;  // as the client wrote it
  std::string payload;  // publish and request: the data's JSON text
  std::string token;    // the clientId
  std::string binding;
  absl::Duration timeout;
};

BayeuxBatch::BayeuxBatch(Context context) : context_(std::move(context)) {}
BayeuxBatch::~BayeuxBatch() = default;

size_t BayeuxBatch::operations() const { return ops_.size(); }

absl::StatusOr<std::unique_ptr<BayeuxBatch>> BayeuxBatch::Parse(
    absl::string_view body, Context context, uint64_t& last_op_id) {
  if (size_t depth = JsonNestingDepth(body); depth > kMaxBayeuxJsonDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("Bayeux message nests ", depth,
                     " levels deep; the limit is ", kMaxBayeuxJsonDepth));
  }
  Json parsed = Json::parse(body.begin(), body.end(), nullptr,
                            /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InvalidArgumentError(
        "Bayeux messages are not valid JSON (expected an array of message "
        "objects)");
  }
  if (parsed.is_object()) parsed = Json::array({std::move(parsed)});
  if (!parsed.is_array() || parsed.empty()) {
    return absl::InvalidArgumentError(
        "Bayeux messages must be a non-empty JSON array of message objects");
  }
  if (parsed.size() > context.options->max_batch_messages) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "batch of ", parsed.size(), " Bayeux messages; the limit is ",
        context.options->max_batch_messages));
  }
  for (const Json& m : parsed) {
    if (!m.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a Bayeux message must be a JSON object, not ", m.type_name()));
    }
  }
  std::unique_ptr<BayeuxBatch> batch(new BayeuxBatch(std::move(context)));
  batch->entries_.resize(parsed.size());
  for (size_t k = 0; k < parsed.size(); ++k) {
    batch->entries_[k].message = std::move(parsed[k]);
    batch->Plan(k, last_op_id);
  }
  return batch;
}

void BayeuxBatch::Plan(size_t index, uint64_t& last_op_id) {
  Entry& e = entries_[index];
  const Json& m = e.message;
  e.reply = ReplyTo(m);
  const BayeuxOptions& options = *context_.options;
  auto answer_now = [&](std::string error, absl::string_view reconnect = "") {
    Fail(e.reply, std::move(error));
    if (!reconnect.empty()) e.reply["advice"] = Advice(options, reconnect);
    e.kind = Entry::Kind::kAnswered;
  };
  auto channel_it = m.find("channel");
  if (channel_it == m.end() || !channel_it->is_string()) {
    return answer_now(BayeuxError(400, "message without a channel"));
  }
  const std::string channel = channel_it->get<std::string>();
  auto plan = [&](Entry::Kind kind) {
    e.kind = kind;
    ++e.waiting;
    ++pending_;
    PlannedOp op;
    op.entry = index;
    op.op_id = ++last_op_id;
    if (auto c = m.find("clientId"); c != m.end() && c->is_string()) {
      op.token = c->get<std::string>();
    }
    // HTTP clients present their browser cookie (none presents a value no
    // session has, so it fails as a CometD server fails it); WebSocket
    // clients are not checked.
    if (!context_.websocket) {
      op.binding =
          context_.browser.empty() ? std::string("-") : context_.browser;
    }
    ops_.push_back(std::move(op));
    return &ops_.back();
  };

  if (channel == "/meta/handshake") {
    PlannedOp* op = plan(Entry::Kind::kHandshake);
    op->token.clear();
    op->binding = context_.websocket ? "" : context_.browser;
    return;
  }
  auto client = m.find("clientId");
  if (client == m.end() || !client->is_string() ||
      client->get_ref<const std::string&>().empty()) {
    return answer_now("402::session_unknown", "handshake");
  }
  if (channel == "/meta/connect") {
    if (auto type = m.find("connectionType");
        type != m.end() && !(type->is_string() && (*type == "long-polling" ||
                                                   *type == "websocket"))) {
      return answer_now(
          BayeuxError(400, absl::StrCat("unsupported connectionType ",
                                        type->dump().substr(0, 64),
                                        "; use long-polling or websocket")));
    }
    absl::Duration timeout = options.connect_timeout;
    if (auto advice = m.find("advice");
        advice != m.end() && advice->is_object()) {
      if (auto t = advice->find("timeout");
          t != advice->end() && t->is_number() && *t >= 0) {
        timeout = std::min(timeout, absl::Milliseconds(t->get<double>()));
      }
    }
    PlannedOp* op = plan(Entry::Kind::kConnect);
    op->timeout = timeout;
    return;
  }
  if (channel == "/meta/disconnect") {
    plan(Entry::Kind::kDisconnect);
    return;
  }
  if (channel == "/meta/subscribe" || channel == "/meta/unsubscribe") {
    const bool subscribe = channel == "/meta/subscribe";
    const std::vector<std::string> channels = SubscriptionChannels(m);
    if (channels.empty()) {
      return answer_now(BayeuxError(
          400, "subscription must be a channel or an array of channels"));
    }
    for (const std::string& c : channels) {
      if (absl::StartsWith(c, kMeta) || absl::StartsWith(c, kService)) {
        return answer_now(BayeuxError(
            403, absl::StrCat("cannot subscribe to ", c.substr(0, 128),
                              ": /meta and /service channels are not "
                              "broadcast")));
      }
      if (!TopicForChannel(c).ok()) {
        return answer_now(BayeuxError(
            400, absl::StrCat("'", c.substr(0, 128),
                              "' is not a channel (channels start with /)")));
      }
    }
    for (const std::string& c : channels) {
      PlannedOp* op =
          plan(subscribe ? Entry::Kind::kSubscribe : Entry::Kind::kUnsubscribe);
      op->topic = *TopicForChannel(c);
      op->channel = c;
    }
    return;
  }
  if (absl::StartsWith(channel, kMeta)) {
    return answer_now(BayeuxError(
        400, absl::StrCat("unknown meta channel ", channel.substr(0, 128))));
  }
  absl::StatusOr<std::string> topic = TopicForChannel(channel);
  if (!topic.ok())
    return answer_now(BayeuxError(400, topic.status().message()));
  auto data = m.find("data");
  if (absl::StartsWith(channel, kService)) {
    PlannedOp* op = plan(Entry::Kind::kService);
    op->topic = channel.substr(kService.size());
    op->channel = channel;
    op->payload = data == m.end() ? "" : data->dump();
    op->timeout = options.service_timeout;
    return;
  }
  if (data == m.end()) {
    return answer_now(BayeuxError(400, "a publish needs data"));
  }
  PlannedOp* op = plan(Entry::Kind::kPublish);
  op->topic = *std::move(topic);
  op->channel = channel;
  op->payload = data->dump();
}

void BayeuxBatch::Emit(size_t k, Operation& op) {
  PlannedOp& planned = ops_[k];
  const Entry& e = entries_[planned.entry];
  op.session = SessionOp();
  op.session.token = planned.token;
  op.session.binding = planned.binding;
  switch (e.kind) {
    case Entry::Kind::kHandshake:
      op.kind = Operation::Kind::kSession;
      op.session.kind = SessionOp::Kind::kOpen;
      op.session.op_id = planned.op_id;
      op.session.client_name = context_.client_name;
      op.session.headers = context_.headers;
      op.session.codec = context_.make_session_codec();
      break;
    case Entry::Kind::kConnect:
      op.kind = Operation::Kind::kSession;
      op.session.kind = SessionOp::Kind::kPoll;
      op.session.op_id = planned.op_id;
      op.session.timeout = planned.timeout;
      break;
    case Entry::Kind::kDisconnect:
      op.kind = Operation::Kind::kSession;
      op.session.kind = SessionOp::Kind::kClose;
      op.session.op_id = planned.op_id;
      break;
    case Entry::Kind::kSubscribe: {
      op.kind = Operation::Kind::kMessage;
      op.message.Clear();
      wire::Subscribe* s = op.message.mutable_subscribe();
      s->set_op_id(planned.op_id);
      s->set_pattern(planned.topic);
      s->set_spelling(planned.channel);
      break;
    }
    case Entry::Kind::kUnsubscribe: {
      op.kind = Operation::Kind::kMessage;
      op.message.Clear();
      wire::Unsubscribe* u = op.message.mutable_unsubscribe();
      u->set_op_id(planned.op_id);
      u->set_pattern(planned.topic);
      break;
    }
    case Entry::Kind::kService: {
      op.kind = Operation::Kind::kMessage;
      op.message.Clear();
      wire::Request* r = op.message.mutable_request();
      r->set_op_id(planned.op_id);
      r->set_topic(planned.topic);
      r->set_payload(planned.payload);
      r->set_timeout_ms(static_cast<uint32_t>(
          std::max<int64_t>(1, absl::ToInt64Milliseconds(planned.timeout))));
      break;
    }
    case Entry::Kind::kPublish: {
      op.kind = Operation::Kind::kPublish;
      PublishOp& p = op.publish;
      p.Reset();
      p.op_id = planned.op_id;
      p.topic = planned.topic;
      p.payload = planned.payload;
      p.ack = true;
      break;
    }
    case Entry::Kind::kAnswered:
      break;
  }
}

BayeuxBatch::Entry* BayeuxBatch::EntryFor(uint64_t op_id, PlannedOp** planned) {
  if (op_id == 0 || ops_.empty() || op_id < ops_.front().op_id ||
      op_id > ops_.back().op_id) {
    return nullptr;
  }
  PlannedOp& op = ops_[op_id - ops_.front().op_id];
  Entry& e = entries_[op.entry];
  if (e.waiting == 0) return nullptr;
  if (planned != nullptr) *planned = &op;
  return &e;
}

void BayeuxBatch::Finish(Entry& e) {
  if (--e.waiting > 0) return;
  --pending_;
  if (!e.failed) e.reply["successful"] = true;
}

bool BayeuxBatch::Take(const wire::ServerMessage& message) {
  uint64_t op_id = 0;
  switch (message.kind_case()) {
    case wire::ServerMessage::kAck:
      op_id = message.ack().op_id();
      break;
    case wire::ServerMessage::kError:
      op_id = message.error().op_id();
      break;
    case wire::ServerMessage::kResponse:
      op_id = message.response().op_id();
      break;
    case wire::ServerMessage::kWelcome:
      // A session's Welcome carries no op id: sessions open in the order
      // their handshakes were handed over. (The link's own Welcome carries
      // no token.)
      if (message.welcome().resume_token().empty()) return false;
      for (Entry& e : entries_) {
        if (e.kind != Entry::Kind::kHandshake || e.waiting == 0) continue;
        const wire::Welcome& w = message.welcome();
        e.reply["clientId"] = w.resume_token();
        e.reply["version"] = "1.0";
        e.reply["minimumVersion"] = "1.0";
        e.reply["supportedConnectionTypes"] = {"long-polling", "websocket"};
        e.reply["advice"] = Advice(*context_.options, "retry");
        if (!context_.websocket && context_.browser.empty()) {
          set_cookie_ = w.session_binding();
        }
        Finish(e);
        return true;
      }
      return false;
    default:
      return false;
  }
  PlannedOp* planned = nullptr;
  Entry* e = EntryFor(op_id, &planned);
  if (e == nullptr) return false;
  if (message.has_error()) {
    if (!e->failed) {
      e->failed = true;
      Fail(e->reply, BayeuxError(message.error()));
      if (message.error().code() == wire::SESSION_UNKNOWN) {
        e->reply["advice"] = Advice(*context_.options, "handshake");
      } else if (e->kind == Entry::Kind::kHandshake) {
        e->reply["advice"] = Advice(*context_.options, "none");
      }
    }
    if (e->kind == Entry::Kind::kSubscribe ||
        e->kind == Entry::Kind::kUnsubscribe) {
      e->reply["subscription"] = e->message["subscription"];
    }
    Finish(*e);
    return true;
  }
  switch (e->kind) {
    case Entry::Kind::kSubscribe:
    case Entry::Kind::kUnsubscribe:
      e->reply["subscription"] = e->message["subscription"];
      break;
    case Entry::Kind::kService: {
      const wire::Response& r = message.response();
      if (r.status() != wire::REQUEST_OK) {
        e->failed = true;
        Fail(e->reply,
             BayeuxError(StatusForRequest(r.status()),
                         absl::StrCat(wire::RequestStatus_Name(r.status()),
                                      ": ", r.message())));
        break;
      }
      std::string data;
      const bool base64 = AppendPayloadAsJson(r.payload(), data);
      e->reply["data"] = Json::parse(data, nullptr, /*allow_exceptions=*/false);
      if (base64) e->reply["ext"] = Json{{"base64", true}};
      break;
    }
    default:
      break;
  }
  Finish(*e);
  return true;
}

bool BayeuxBatch::TakePoll(const PollUpdate& update, std::string& stream_out,
                           bool& keep_polling) {
  Entry* e = EntryFor(update.op_id, nullptr);
  if (e == nullptr || e->kind != Entry::Kind::kConnect) return false;
  const bool over = update.timed_out || !update.ended.ok();
  keep_polling = context_.websocket && !over;
  std::vector<absl::string_view> chunks(update.output.size() + 1);
  const size_t n = update.output.Peek(absl::MakeSpan(chunks));
  if (keep_polling) {
    // A WebSocket gets messages as they come; the connect stays held.
    stream_out.clear();
    for (size_t k = 0; k < n; ++k) absl::StrAppend(&stream_out, chunks[k]);
    if (!stream_out.empty()) {
      stream_out.back() = ']';  // the last message's ","
      stream_out.insert(0, "[");
    }
    return true;
  }
  for (size_t k = 0; k < n; ++k) absl::StrAppend(&messages_, chunks[k]);
  if (!update.ended.ok()) {
    if (WireCode(update.ended) == wire::CONNECTION_CLOSED) {
      // The client disconnected: the held connect ends without a retry.
      e->reply["advice"] = Advice(*context_.options, "none");
    } else {
      e->failed = true;
      Fail(e->reply, "402::session_unknown");
      e->reply["advice"] = Advice(*context_.options, "handshake");
    }
  } else {
    e->reply["advice"] = Advice(*context_.options, "retry");
  }
  Finish(*e);
  return true;
}

std::string BayeuxBatch::Render() const {
  std::string out = "[";
  out += messages_;
  for (size_t k = 0; k < entries_.size(); ++k) {
    const Entry& e = entries_[k];
    out += e.reply.dump(-1, ' ', false, Json::error_handler_t::replace);
    if (k + 1 < entries_.size()) out += ',';
  }
  out += ']';
  return out;
}

}  // namespace manifold
