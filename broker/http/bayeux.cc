#include "broker/http/bayeux.h"

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "broker/http/bayeux_json.h"
#include "broker/http/http_status.h"
#include "core/http/json_messages.h"
#include "core/status.h"
#include "rapidjson/reader.h"

namespace manifold {

namespace bayeux_internal {

// One Bayeux message as received. Views point into the batch's copy of the
// body.
struct ReceivedMessage {
  // A field as received. A string's value is kept decoded (replies write
  // it again as JSON); any other value as its JSON text.
  struct Field {
    bool present = false;
    bool is_string = false;
    std::string text;

    void Set(bool string, absl::string_view value) {
      present = true;
      is_string = string;
      text.assign(value.data(), value.size());
    }
  };
  Field id;
  Field channel;
  Field client_id;
  Field connection_type;
  Field subscription;
  bool subscription_ok = false;  // a string, or an array of strings
  std::vector<std::string> subscriptions;
  bool has_timeout = false;  // advice.timeout, a number >= 0
  double timeout_ms = 0;
  // `data` as JSON text: where it is in the body (an object or array, as a
  // client sends it), or in data_text (a string, written again as JSON, or
  // a number, true, false or null).
  bool has_data = false;
  bool data_in_body = false;
  size_t data_begin = 0;
  size_t data_end = 0;
  std::string data_text;
  // ext.auth: the credentials a handshake presents ({"user","password"} or
  // {"token"}).
  ClientCredentials auth;
  // ext.replay of a subscribe: channel and the JSON text of its value ("" for
  // a value that is not a number), in the order received.
  std::vector<std::pair<std::string, std::string>> replay;
};

}  // namespace bayeux_internal

using bayeux_internal::ReceivedMessage;

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

// The advice object's JSON text (keys in the order the JSON library would
// sort them).
std::string Advice(const BayeuxOptions& options, absl::string_view reconnect) {
  std::string advice = absl::StrCat(
      "{\"interval\":", absl::ToInt64Milliseconds(options.interval),
      ",\"reconnect\":\"", reconnect, "\"");
  if (reconnect == "retry") {
    absl::StrAppend(&advice, ",\"timeout\":",
                    absl::ToInt64Milliseconds(options.connect_timeout));
  }
  advice += '}';
  return advice;
}

// What TopicForChannel() accepts.
bool IsChannel(absl::string_view channel) {
  return channel.size() >= 2 && channel.front() == '/';
}

std::string JsonText(absl::string_view text) {
  std::string out;
  AppendJsonString(text, out);
  return out;
}

// ---------------------------------------------------------------------------
// Reading a batch.
//
// The body is read once, by the JSON library's event (SAX) parser, which
// checks that it is JSON. Nothing is built from it but what the front end
// uses: the few fields a Bayeux message has, and where in the body each
// field's value is written, so that replies can echo them and a publish can
// carry its data's JSON text without writing it again.

// RapidJSON's SAX events, turned into ReceivedMessages. The reader's
// stream says where it is when an object or array starts (at its '{' or
// '[') and ends (at its '}' or ']'): that is how a message's data is found
// in the body without being written again.
class BatchReader
    : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, BatchReader> {
 public:
  // REQUIRES: `body` is followed by a NUL (a std::string's data).
  explicit BatchReader(absl::string_view body)
      : body_(body), stream_(body.data()) {}

  // Reads the body. False when it is not JSON (or not UTF-8), or nests too
  // deeply (then too_deep()).
  bool Read() {
    if (!http::IsUtf8(body_)) return false;
    rapidjson::Reader reader;
    if (reader.Parse<kBayeuxParseFlags>(stream_, *this).IsError()) {
      return false;
    }
    // A NUL ends the reader's text early; whatever follows it is not JSON.
    return stream_.Tell() == body_.size();
  }

  std::vector<ReceivedMessage>& messages() { return messages_; }
  size_t elements() const { return elements_; }
  bool too_deep() const { return too_deep_; }
  bool top_is_array() const { return top_ == Top::kArray; }
  bool top_is_object() const { return top_ == Top::kObject; }
  // The JSON type of the first element that is not an object, or nullptr.
  const char* non_object() const { return non_object_; }

  // The reader's events.
  bool Default() { return true; }
  bool Null() { return Scalar("null", "null"); }
  bool Bool(bool value) { return Scalar("boolean", value ? "true" : "false"); }
  bool RawNumber(const char* text, rapidjson::SizeType length, bool) {
    const absl::string_view number(text, length);
    if (ReplayValue(number)) return true;
    if (in_message_ && depth_ == message_depth_ + 1 &&
        field_ == Field::kAdvice && advice_timeout_) {
      double value = 0;
      if (absl::SimpleAtod(number, &value) && value >= 0) {
        messages_.back().has_timeout = true;
        messages_.back().timeout_ms = value;
      }
    }
    return Scalar("number", number);
  }
  bool String(const char* text, rapidjson::SizeType length, bool) {
    const absl::string_view value(text, length);
    if (depth_ == 0) return SetTop(Top::kScalar);
    if (ReplayValue("")) return true;
    if (in_auth_ && depth_ == message_depth_ + 2) {
      ClientCredentials& auth = messages_.back().auth;
      if (auth_key_ == "user") auth.user = std::string(value);
      if (auth_key_ == "password") auth.password = std::string(value);
      if (auth_key_ == "token") auth.token = std::string(value);
      return true;
    }
    if (ArrayElement("string")) return true;
    if (in_message_ && depth_ == message_depth_) {
      ReceivedMessage& m = messages_.back();
      if (field_ == Field::kData) {
        m.has_data = true;
        m.data_in_body = false;
        m.data_text.clear();
        AppendJsonString(value, m.data_text);
      } else if (ReceivedMessage::Field* f = Target(); f != nullptr) {
        f->Set(/*string=*/true, value);
        if (field_ == Field::kSubscription) {
          m.subscription_ok = true;
          m.subscriptions.emplace_back(value);
        }
      }
      return true;
    }
    if (in_message_ && depth_ == message_depth_ + 1 &&
        field_ == Field::kSubscription) {
      messages_.back().subscriptions.emplace_back(value);
    }
    return true;
  }
  bool Key(const char* name, rapidjson::SizeType length, bool) {
    const absl::string_view key(name, length);
    if (in_message_ && depth_ == message_depth_) {
      field_ = FieldNamed(key);
      ResetField();
    } else if (in_message_ && depth_ == message_depth_ + 1 &&
               field_ == Field::kAdvice) {
      advice_timeout_ = key == "timeout";
      if (advice_timeout_) messages_.back().has_timeout = false;
    } else if (in_message_ && depth_ == message_depth_ + 1 &&
               field_ == Field::kExt) {
      ext_auth_ = key == "auth";
      ext_replay_ = key == "replay";
    } else if (in_auth_ && depth_ == message_depth_ + 2) {
      auth_key_.assign(key.data(), key.size());
    } else if (in_replay_ && depth_ == message_depth_ + 2) {
      replay_key_.assign(key.data(), key.size());
    }
    return true;
  }
  bool StartObject() { return Open(/*object=*/true); }
  bool StartArray() { return Open(/*object=*/false); }
  bool EndObject(rapidjson::SizeType) { return Close(); }
  bool EndArray(rapidjson::SizeType) { return Close(); }

 private:
  enum class Top { kNone, kArray, kObject, kScalar };
  enum class Field {
    kOther,
    kId,
    kChannel,
    kClientId,
    kConnectionType,
    kData,
    kSubscription,
    kAdvice,
    kExt,
  };

  static Field FieldNamed(absl::string_view name) {
    if (name == "channel") return Field::kChannel;
    if (name == "data") return Field::kData;
    if (name == "id") return Field::kId;
    if (name == "clientId") return Field::kClientId;
    if (name == "subscription") return Field::kSubscription;
    if (name == "connectionType") return Field::kConnectionType;
    if (name == "advice") return Field::kAdvice;
    if (name == "ext") return Field::kExt;
    return Field::kOther;
  }

  // Where the current message keeps the field being read (not data).
  ReceivedMessage::Field* Target() {
    ReceivedMessage& m = messages_.back();
    switch (field_) {
      case Field::kId:
        return &m.id;
      case Field::kChannel:
        return &m.channel;
      case Field::kClientId:
        return &m.client_id;
      case Field::kConnectionType:
        return &m.connection_type;
      case Field::kSubscription:
        return &m.subscription;
      default:
        return nullptr;
    }
  }

  // A field named again replaces what it said before (the last one counts).
  void ResetField() {
    ReceivedMessage& m = messages_.back();
    if (ReceivedMessage::Field* f = Target(); f != nullptr) {
      *f = ReceivedMessage::Field();
    }
    if (field_ == Field::kData) m.has_data = false;
    if (field_ == Field::kSubscription) {
      m.subscription_ok = false;
      m.subscriptions.clear();
    }
    if (field_ == Field::kAdvice) m.has_timeout = false;
    if (field_ == Field::kExt) {
      m.auth = ClientCredentials();
      m.replay.clear();
    }
  }

  // A value in ext.replay's object, `number` its text ("" when the value is
  // not a number). False when the reader is elsewhere.
  bool ReplayValue(absl::string_view number) {
    if (!in_replay_ || depth_ != message_depth_ + 2) return false;
    messages_.back().replay.emplace_back(replay_key_, std::string(number));
    return true;
  }

  bool SetTop(Top top) {
    top_ = top;
    return true;
  }

  // An element of the top-level array that is not an object.
  bool ArrayElement(const char* type) {
    if (top_ != Top::kArray || depth_ != 1) return false;
    ++elements_;
    if (non_object_ == nullptr) non_object_ = type;
    return true;
  }

  // A number, true, false or null, written `text`.
  bool Scalar(const char* type, absl::string_view text) {
    if (depth_ == 0) return SetTop(Top::kScalar);
    if (ReplayValue("")) return true;
    if (ArrayElement(type)) return true;
    if (in_message_ && depth_ == message_depth_) {
      ReceivedMessage& m = messages_.back();
      if (field_ == Field::kData) {
        m.has_data = true;
        m.data_in_body = false;
        m.data_text.assign(text.data(), text.size());
      } else if (ReceivedMessage::Field* f = Target(); f != nullptr) {
        f->Set(/*string=*/false, text);
      }
      return true;
    }
    if (in_message_ && depth_ == message_depth_ + 1 &&
        field_ == Field::kSubscription) {
      messages_.back().subscription_ok = false;
    }
    return true;
  }

  bool Open(bool object) {
    if (depth_ == kMaxBayeuxJsonDepth) {
      too_deep_ = true;
      return false;
    }
    if (depth_ == 0) {
      top_ = object ? Top::kObject : Top::kArray;
      depth_ = 1;
      if (object) StartMessage();
      return true;
    }
    if (top_ == Top::kArray && depth_ == 1) {
      ++elements_;
      ++depth_;
      if (object) {
        StartMessage();
      } else if (non_object_ == nullptr) {
        non_object_ = "array";
      }
      return true;
    }
    if (in_message_ && depth_ == message_depth_ + 1 && field_ == Field::kExt) {
      // ext.auth's object; anything else in ext is not the broker's.
      in_auth_ = object && ext_auth_;
      if (in_auth_) messages_.back().auth = ClientCredentials();
      auth_key_.clear();
      // ext.replay's object; another type (as a handshake's "replay":true)
      // says nothing about positions.
      in_replay_ = object && ext_replay_;
      if (in_replay_) messages_.back().replay.clear();
      replay_key_.clear();
    }
    ReplayValue("");  // an object or array is not a position
    if (in_message_ && depth_ == message_depth_) {
      value_start_ = stream_.Tell();  // at the '{' or '['
      advice_timeout_ = false;
      ext_auth_ = false;
      ext_replay_ = false;
      if (field_ == Field::kSubscription && !object) {
        messages_.back().subscription_ok = true;  // until a non-string
      }
    } else if (in_message_ && depth_ == message_depth_ + 1 &&
               field_ == Field::kSubscription) {
      messages_.back().subscription_ok = false;
    }
    ++depth_;
    return true;
  }

  bool Close() {
    --depth_;
    if (in_auth_ && depth_ == message_depth_ + 1) in_auth_ = false;
    if (in_replay_ && depth_ == message_depth_ + 1) in_replay_ = false;
    if (in_message_ && depth_ + 1 == message_depth_) {
      in_message_ = false;  // the message ends
    } else if (in_message_ && depth_ == message_depth_) {
      // A field's object or array ends, at the stream's '}' or ']'.
      const size_t end = stream_.Tell() + 1;
      ReceivedMessage& m = messages_.back();
      if (field_ == Field::kData) {
        m.has_data = true;
        m.data_in_body = true;
        m.data_begin = value_start_;
        m.data_end = end;
      } else if (ReceivedMessage::Field* f = Target(); f != nullptr) {
        f->Set(/*string=*/false,
               body_.substr(value_start_, end - value_start_));
        if (field_ == Field::kSubscription && f->text.front() == '{') {
          m.subscription_ok = false;
        }
      }
    }
    return true;
  }

  void StartMessage() {
    messages_.emplace_back();
    in_message_ = true;
    message_depth_ = depth_;
    field_ = Field::kOther;
  }

  absl::string_view body_;
  rapidjson::StringStream stream_;
  Top top_ = Top::kNone;
  size_t depth_ = 0;  // open objects and arrays
  bool too_deep_ = false;
  size_t elements_ = 0;  // of the top-level array
  const char* non_object_ = nullptr;
  std::vector<ReceivedMessage> messages_;
  bool in_message_ = false;
  size_t message_depth_ = 0;     // depth_ inside the current message
  Field field_ = Field::kOther;  // the message's field being read
  size_t value_start_ = 0;
  bool advice_timeout_ = false;  // reading advice.timeout
  bool ext_auth_ = false;        // ext's key being read is "auth"
  bool in_auth_ = false;         // inside ext.auth's object
  std::string auth_key_;         // the ext.auth key being read
  bool ext_replay_ = false;      // ext's key being read is "replay"
  bool in_replay_ = false;       // inside ext.replay's object
  std::string replay_key_;       // the ext.replay key (a channel) being read
};

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

absl::Status SetBayeuxTypePaths(absl::string_view text,
                                BayeuxOptions& options) {
  static constexpr absl::string_view kTypes[] = {"handshake", "connect",
                                                 "subscribe", "unsubscribe",
                                                 "publish",   "disconnect"};
  std::vector<std::pair<std::string, std::string>> paths;
  for (absl::string_view pair : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    pair = absl::StripAsciiWhitespace(pair);
    const size_t eq = pair.find('=');
    const absl::string_view type = pair.substr(0, eq);
    const absl::string_view path =
        eq == absl::string_view::npos ? "" : pair.substr(eq + 1);
    if (std::find(std::begin(kTypes), std::end(kTypes), type) ==
        std::end(kTypes)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Bayeux type path '", pair.substr(0, 128),
          "': the type must be one of handshake, connect, subscribe, "
          "unsubscribe, publish, disconnect (TYPE=PATH)"));
    }
    if (path.size() < 2 || path.front() != '/' ||
        path.find_first_of("; \t?#") != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Bayeux type path '", pair.substr(0, 128),
          "': the path must start with / and hold no ';', '?', '#' or "
          "white space (TYPE=PATH)"));
    }
    for (const auto& [seen, unused] : paths) {
      if (seen == type) {
        return absl::InvalidArgumentError(
            absl::StrCat("Bayeux type paths name '", type, "' more than once"));
      }
    }
    paths.emplace_back(std::string(type), std::string(path));
  }
  options.type_paths = std::move(paths);
  return absl::OkStatus();
}

std::string BayeuxTypePathsText(const BayeuxOptions& options) {
  std::string text;
  for (const auto& [type, path] : options.type_paths) {
    absl::StrAppend(&text, text.empty() ? "" : ",", type, "=", path);
  }
  return text;
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
  std::string out = "[{\"error\":";
  AppendJsonString(BayeuxError(absl::IsResourceExhausted(status) ? 413 : 400,
                               status.message()),
                   out);
  out += ",\"successful\":false}]";
  return out;
}

// ---------------------------------------------------------------------------

// The fields a reply may have, in the order they are written: by name, as
// the JSON library orders an object's keys.
enum BayeuxBatch::ReplyField : int {
  kAdvice,
  kChannel,
  kClientId,
  kData,
  kError,
  kExt,
  kId,
  kMinimumVersion,
  kSubscription,
  kSuccessful,
  kSupportedConnectionTypes,
  kVersion,
  kReplyFields,
};

namespace {
constexpr absl::string_view kReplyFieldNames[] = {
    "\"advice\":",
    "\"channel\":",
    "\"clientId\":",
    "\"data\":",
    "\"error\":",
    "\"ext\":",
    "\"id\":",
    "\"minimumVersion\":",
    "\"subscription\":",
    "\"successful\":",
    "\"supportedConnectionTypes\":",
    "\"version\":",
};
}  // namespace

// One field of a reply: JSON text, or a string to write as JSON. Views into
// the received messages, the batch's texts_ or constants.
struct BayeuxBatch::Slot {
  absl::string_view text;
  bool quote = false;
  bool present = false;

  static Slot Json(absl::string_view json) { return Slot{json, false, true}; }
  static Slot Quoted(absl::string_view string) {
    return Slot{string, true, true};
  }
  // A received field as it came.
  static Slot Echo(const ReceivedMessage::Field& f) {
    return f.present ? Slot{f.text, f.is_string, true} : Slot();
  }
};

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
  // The message's "subscription" as received, which its reply echoes.
  Slot subscription;
  // The reply's fields; absent ones are not written.
  Slot reply[kReplyFields];
  size_t waiting = 0;  // operations not answered yet
  bool failed = false;
  // A subscribe's positions from its Acks ("\"/log/*\":41,"), which its
  // reply says in ext.replay.
  std::string replay_positions;
};

struct BayeuxBatch::PlannedOp {
  size_t entry = 0;
  uint64_t op_id = 0;
  // Views into the batch's received messages and context.
  absl::string_view topic;    // pattern, topic or service topic
  absl::string_view channel;  // as the client wrote it
  absl::string_view payload;  // publish and request: the data's JSON text
  absl::string_view token;    // the clientId
  absl::string_view binding;
  absl::Duration timeout;
  // A subscribe with a position in ext.replay: the subscription replays its
  // stream after `replay_after` (kReplayNew: new messages; kReplayAll:
  // everything the stream holds).
  bool replay = false;
  int64_t replay_after = 0;
};

BayeuxBatch::BayeuxBatch(Context context) : context_(std::move(context)) {}
BayeuxBatch::~BayeuxBatch() = default;

size_t BayeuxBatch::operations() const { return ops_.size(); }

absl::string_view BayeuxBatch::Keep(std::string text) {
  texts_.push_back(std::move(text));
  return texts_.back();
}

void BayeuxBatch::Fail(Entry& e, absl::string_view error) {
  e.reply[kSuccessful] = Slot::Json("false");
  e.reply[kError] = Slot::Quoted(Keep(std::string(error)));
}

absl::string_view BayeuxBatch::DataOf(const ReceivedMessage& m) const {
  if (!m.has_data) return "";
  if (m.data_in_body) {
    return absl::string_view(body_).substr(m.data_begin,
                                           m.data_end - m.data_begin);
  }
  return m.data_text;
}

absl::StatusOr<std::unique_ptr<BayeuxBatch>> BayeuxBatch::Parse(
    absl::string_view body, Context context, uint64_t& last_op_id) {
  std::unique_ptr<BayeuxBatch> batch(new BayeuxBatch(std::move(context)));
  batch->body_.assign(body.data(), body.size());
  BatchReader reader(batch->body_);
  const bool json = reader.Read();
  if (reader.too_deep()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Bayeux message nests more than ", kMaxBayeuxJsonDepth,
                     " levels deep (the limit)"));
  }
  if (!json) {
    return absl::InvalidArgumentError(
        "Bayeux messages are not valid JSON (expected an array of message "
        "objects)");
  }
  if (!(reader.top_is_object() ||
        (reader.top_is_array() && reader.elements() > 0))) {
    return absl::InvalidArgumentError(
        "Bayeux messages must be a non-empty JSON array of message objects");
  }
  const size_t count = reader.top_is_object() ? 1 : reader.elements();
  if (count > batch->context_.options->max_batch_messages) {
    return absl::ResourceExhaustedError(
        absl::StrCat("batch of ", count, " Bayeux messages; the limit is ",
                     batch->context_.options->max_batch_messages));
  }
  if (reader.non_object() != nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a Bayeux message must be a JSON object, not ", reader.non_object()));
  }
  batch->received_ = std::move(reader.messages());
  batch->entries_.resize(batch->received_.size());
  batch->ops_.reserve(batch->received_.size());
  for (size_t k = 0; k < batch->received_.size(); ++k) {
    batch->Plan(k, last_op_id);
  }
  for (const ReceivedMessage& m : batch->received_) {
    if (m.channel.is_string && m.channel.text == "/meta/handshake" &&
        !m.auth.empty()) {
      batch->handshake_credentials_ = m.auth;
      break;
    }
  }
  return batch;
}

void BayeuxBatch::ClaimSession(ClientCredentials& claim) const {
  for (const PlannedOp& op : ops_) {
    if (entries_[op.entry].kind == Entry::Kind::kHandshake ||
        op.token.empty()) {
      continue;
    }
    claim.session_token.assign(op.token.data(), op.token.size());
    claim.session_binding.assign(op.binding.data(), op.binding.size());
    return;
  }
}

void BayeuxBatch::Plan(size_t index, uint64_t& last_op_id) {
  Entry& e = entries_[index];
  const ReceivedMessage& m = received_[index];
  e.reply[kId] = Slot::Echo(m.id);
  if (m.channel.is_string) e.reply[kChannel] = Slot::Echo(m.channel);
  if (m.client_id.is_string) e.reply[kClientId] = Slot::Echo(m.client_id);
  e.subscription = Slot::Echo(m.subscription);
  const BayeuxOptions& options = *context_.options;
  auto answer_now = [&](absl::string_view error,
                        absl::string_view reconnect = "") {
    Fail(e, error);
    if (!reconnect.empty())
      e.reply[kAdvice] = Slot::Json(Keep(Advice(options, reconnect)));
    e.kind = Entry::Kind::kAnswered;
  };
  if (!m.channel.is_string) {
    return answer_now(BayeuxError(400, "message without a channel"));
  }
  const absl::string_view channel = m.channel.text;
  auto plan = [&](Entry::Kind kind) {
    e.kind = kind;
    // pending_ counts messages waiting for their reply, however many
    // operations each waits for.
    if (e.waiting++ == 0) ++pending_;
    PlannedOp& op = ops_.emplace_back();
    op.entry = index;
    op.op_id = ++last_op_id;
    if (m.client_id.is_string) op.token = m.client_id.text;
    // HTTP clients present their browser cookie (none presents a value no
    // session has, so it fails as a CometD server fails it); WebSocket
    // clients are not checked.
    if (!context_.websocket) {
      op.binding = context_.browser.empty()
                       ? absl::string_view("-")
                       : absl::string_view(context_.browser);
    }
    return &op;
  };

  if (channel == "/meta/handshake") {
    PlannedOp* op = plan(Entry::Kind::kHandshake);
    op->token = {};
    op->binding = context_.websocket ? absl::string_view()
                                     : absl::string_view(context_.browser);
    return;
  }
  if (!m.client_id.is_string || m.client_id.text.empty()) {
    return answer_now("402::session_unknown", "handshake");
  }
  if (channel == "/meta/connect") {
    const ReceivedMessage::Field& type = m.connection_type;
    if (type.present && !(type.is_string && (type.text == "long-polling" ||
                                             type.text == "websocket"))) {
      const std::string written =
          type.is_string ? JsonText(type.text) : type.text;
      return answer_now(BayeuxError(
          400,
          absl::StrCat("unsupported connectionType ", written.substr(0, 64),
                       "; use long-polling or websocket")));
    }
    absl::Duration timeout = options.connect_timeout;
    if (m.has_timeout) {
      timeout = std::min(timeout, absl::Milliseconds(m.timeout_ms));
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
    if (!m.subscription_ok || m.subscriptions.empty()) {
      return answer_now(BayeuxError(
          400, "subscription must be a channel or an array of channels"));
    }
    for (const std::string& c : m.subscriptions) {
      if (absl::StartsWith(c, kMeta) || absl::StartsWith(c, kService)) {
        return answer_now(BayeuxError(
            403, absl::StrCat("cannot subscribe to ", c.substr(0, 128),
                              ": /meta and /service channels are not "
                              "broadcast")));
      }
      if (!IsChannel(c)) {
        return answer_now(BayeuxError(
            400, absl::StrCat("'", c.substr(0, 128),
                              "' is not a channel (channels start with /)")));
      }
    }
    // ext.replay: where each channel's subscription starts in the stream
    // that stores it (the last value given for a channel counts).
    std::vector<std::pair<bool, int64_t>> positions(m.subscriptions.size());
    for (const auto& [replayed, value] : m.replay) {
      if (!subscribe) break;
      const auto at =
          std::find(m.subscriptions.begin(), m.subscriptions.end(), replayed);
      if (at == m.subscriptions.end()) continue;  // another subscribe's
      int64_t after = 0;
      if (!absl::SimpleAtoi(value, &after) || after < kReplayAll) {
        return answer_now(BayeuxError(
            400, absl::StrCat(
                     "ext.replay for ", replayed.substr(0, 128),
                     " must be a replayId (0 or more), -1 (new messages) "
                     "or -2 (all the stream holds), not ",
                     value.empty() ? "a non-number" : value.substr(0, 32))));
      }
      positions[at - m.subscriptions.begin()] = {true, after};
    }
    for (size_t k = 0; k < m.subscriptions.size(); ++k) {
      PlannedOp* op =
          plan(subscribe ? Entry::Kind::kSubscribe : Entry::Kind::kUnsubscribe);
      op->channel = m.subscriptions[k];
      op->topic = op->channel.substr(1);
      op->replay = positions[k].first;
      op->replay_after = positions[k].second;
    }
    return;
  }
  if (absl::StartsWith(channel, kMeta)) {
    return answer_now(BayeuxError(
        400, absl::StrCat("unknown meta channel ", channel.substr(0, 128))));
  }
  if (!IsChannel(channel)) {
    return answer_now(
        BayeuxError(400, TopicForChannel(channel).status().message()));
  }
  if (absl::StartsWith(channel, kService)) {
    PlannedOp* op = plan(Entry::Kind::kService);
    op->topic = channel.substr(kService.size());
    op->channel = channel;
    op->payload = DataOf(m);  // empty when there is none
    op->timeout = options.service_timeout;
    return;
  }
  if (!m.has_data) {
    return answer_now(BayeuxError(400, "a publish needs data"));
  }
  PlannedOp* op = plan(Entry::Kind::kPublish);
  op->topic = channel.substr(1);
  op->channel = channel;
  op->payload = DataOf(m);
}

void BayeuxBatch::Emit(size_t k, Operation& op) {
  PlannedOp& planned = ops_[k];
  const Entry& e = entries_[planned.entry];
  // Field by field, so that the operation keeps its strings' storage from
  // one message of the batch to the next.
  SessionOp& session = op.session;
  session.kind = SessionOp::Kind::kNone;
  session.op_id = 0;
  session.token.assign(planned.token.data(), planned.token.size());
  session.binding.assign(planned.binding.data(), planned.binding.size());
  session.codec.reset();
  session.client_name.clear();
  session.headers.clear();
  session.timeout = absl::ZeroDuration();
  switch (e.kind) {
    case Entry::Kind::kHandshake:
      op.kind = Operation::Kind::kSession;
      session.kind = SessionOp::Kind::kOpen;
      session.op_id = planned.op_id;
      session.client_name = context_.client_name;
      session.headers = context_.headers;
      session.codec = context_.make_session_codec();
      break;
    case Entry::Kind::kConnect:
      op.kind = Operation::Kind::kSession;
      session.kind = SessionOp::Kind::kPoll;
      session.op_id = planned.op_id;
      session.timeout = planned.timeout;
      break;
    case Entry::Kind::kDisconnect:
      op.kind = Operation::Kind::kSession;
      session.kind = SessionOp::Kind::kClose;
      session.op_id = planned.op_id;
      break;
    case Entry::Kind::kSubscribe: {
      op.kind = Operation::Kind::kMessage;
      op.message.Clear();
      wire::Subscribe* s = op.message.mutable_subscribe();
      s->set_op_id(planned.op_id);
      s->set_pattern(std::string(planned.topic));
      s->set_spelling(std::string(planned.channel));
      if (planned.replay) {
        // A replay only where a stream stores the channel; elsewhere an
        // ordinary subscription, as without ext.replay.
        wire::Replay* replay = s->mutable_replay();
        replay->set_if_stored(true);
        if (planned.replay_after == kReplayAll) {
          replay->set_from_seq(1);
        } else if (planned.replay_after >= 0) {
          replay->set_from_seq(static_cast<uint64_t>(planned.replay_after) + 1);
        }
      }
      break;
    }
    case Entry::Kind::kUnsubscribe: {
      op.kind = Operation::Kind::kMessage;
      op.message.Clear();
      wire::Unsubscribe* u = op.message.mutable_unsubscribe();
      u->set_op_id(planned.op_id);
      u->set_pattern(std::string(planned.topic));
      break;
    }
    case Entry::Kind::kService: {
      op.kind = Operation::Kind::kMessage;
      op.message.Clear();
      wire::Request* r = op.message.mutable_request();
      r->set_op_id(planned.op_id);
      r->set_topic(std::string(planned.topic));
      r->set_payload(std::string(planned.payload));
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
      p.payload_is_json = true;  // the data's text, which Parse() read
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
  if (e.failed) return;
  e.reply[kSuccessful] = Slot::Json("true");
  if (!e.replay_positions.empty()) {
    e.replay_positions.back() = '}';  // the last position's ","
    e.reply[kExt] = Slot::Json(
        Keep(absl::StrCat("{\"replay\":{", e.replay_positions, "}")));
  }
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
        e.reply[kClientId] = Slot::Quoted(Keep(w.resume_token()));
        e.reply[kVersion] = Slot::Json("\"1.0\"");
        e.reply[kMinimumVersion] = Slot::Json("\"1.0\"");
        e.reply[kSupportedConnectionTypes] =
            Slot::Json("[\"long-polling\",\"websocket\"]");
        e.reply[kAdvice] = Slot::Json(Keep(Advice(*context_.options, "retry")));
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
      Fail(*e, BayeuxError(message.error()));
      if (message.error().code() == wire::SESSION_UNKNOWN) {
        e->reply[kAdvice] =
            Slot::Json(Keep(Advice(*context_.options, "handshake")));
      } else if (e->kind == Entry::Kind::kHandshake) {
        e->reply[kAdvice] = Slot::Json(Keep(Advice(*context_.options, "none")));
      }
    }
    if (e->kind == Entry::Kind::kSubscribe ||
        e->kind == Entry::Kind::kUnsubscribe) {
      e->reply[kSubscription] = e->subscription;
    }
    Finish(*e);
    return true;
  }
  switch (e->kind) {
    case Entry::Kind::kSubscribe:
      e->reply[kSubscription] = e->subscription;
      if (message.has_ack() && message.ack().has_stream_seq()) {
        // Where the replay starts: the client's position until a message
        // of the channel comes.
        AppendJsonString(planned->channel, e->replay_positions);
        absl::StrAppend(&e->replay_positions, ":", message.ack().stream_seq(),
                        ",");
      }
      break;
    case Entry::Kind::kUnsubscribe:
      e->reply[kSubscription] = e->subscription;
      break;
    case Entry::Kind::kService: {
      const wire::Response& r = message.response();
      if (r.status() != wire::REQUEST_OK) {
        e->failed = true;
        Fail(*e, BayeuxError(StatusForRequest(r.status()),
                             absl::StrCat(wire::RequestStatus_Name(r.status()),
                                          ": ", r.message())));
        break;
      }
      std::string data;
      const bool base64 = AppendPayloadAsJson(r.payload(), data);
      e->reply[kData] = Slot::Json(Keep(std::move(data)));
      if (base64) e->reply[kExt] = Slot::Json("{\"base64\":true}");
      break;
    }
    default:
      break;
  }
  Finish(*e);
  return true;
}

void BayeuxBatch::Refuse(absl::string_view reason) {
  const std::string error = BayeuxError(401, reason);
  for (Entry& e : entries_) {
    if (e.waiting == 0) continue;
    e.waiting = 0;
    e.failed = true;
    Fail(e, error);
    e.reply[kAdvice] = Slot::Json(Keep(Advice(*context_.options, "none")));
  }
  pending_ = 0;
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
      e->reply[kAdvice] = Slot::Json(Keep(Advice(*context_.options, "none")));
    } else {
      e->failed = true;
      Fail(*e, "402::session_unknown");
      e->reply[kAdvice] =
          Slot::Json(Keep(Advice(*context_.options, "handshake")));
    }
  } else {
    e->reply[kAdvice] = Slot::Json(Keep(Advice(*context_.options, "retry")));
  }
  Finish(*e);
  return true;
}

std::string BayeuxBatch::Render() const {
  size_t size = messages_.size() + 2;
  for (const Entry& e : entries_) {
    for (int f = 0; f < kReplyFields; ++f) {
      if (e.reply[f].present) {
        size += kReplyFieldNames[f].size() + e.reply[f].text.size() + 3;
      }
    }
    size += 2;
  }
  std::string out;
  out.reserve(size);
  out += '[';
  out += messages_;
  for (size_t k = 0; k < entries_.size(); ++k) {
    const Entry& e = entries_[k];
    out += '{';
    bool first = true;
    for (int f = 0; f < kReplyFields; ++f) {
      const Slot& slot = e.reply[f];
      if (!slot.present) continue;
      if (!first) out += ',';
      first = false;
      out.append(kReplyFieldNames[f].data(), kReplyFieldNames[f].size());
      if (slot.quote) {
        AppendJsonString(slot.text, out);
      } else {
        out.append(slot.text.data(), slot.text.size());
      }
    }
    out += '}';
    if (k + 1 < entries_.size()) out += ',';
  }
  out += ']';
  return out;
}

}  // namespace manifold
