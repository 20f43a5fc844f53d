#include "client/load/bayeux_reply.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rapidjson/error/en.h"
#include "rapidjson/reader.h"

namespace manifold::load {
namespace {

// Which field of a message (or of its "data" / "advice") a value belongs to.
enum class Field {
  kIgnored,
  kChannel,
  kSuccessful,
  kClientId,
  kError,
  kData,
  kAdvice,
  kLane,
  kSeq,
  kReconnect
};

// Collects the fields BayeuxMessage keeps from a stream of JSON events.
// Messages are the objects at `message_depth_`: 1 when the body is one
// object, 2 inside the top-level array; their "data" and "advice" objects
// are one level deeper.
class Collector {
 public:
  Collector(const std::string& data_channel,
            std::vector<BayeuxMessage>& messages)
      : data_channel_(data_channel), messages_(messages) {}

  void Boolean(bool value) {
    if (depth_ == message_depth_ && field_ == Field::kSuccessful) {
      Current().has_successful = true;
      Current().successful = value;
    }
  }
  void Unsigned(uint64_t value) {
    if (depth_ != message_depth_ + 1 || section_ != Field::kData) return;
    if (inner_ == Field::kLane) {
      Current().lane = value;
      seen_lane_ = true;
    } else if (inner_ == Field::kSeq) {
      Current().seq = value;
      seen_seq_ = true;
    }
  }
  void String(absl::string_view value) {
    if (depth_ == message_depth_) {
      switch (field_) {
        case Field::kChannel:
          Current().channel = Classify(value);
          break;
        case Field::kClientId:
          Current().client_id.assign(value.data(), value.size());
          break;
        case Field::kError:
          Current().error.assign(value.data(), value.size());
          break;
        default:
          break;
      }
    } else if (depth_ == message_depth_ + 1 && inner_ == Field::kReconnect &&
               section_ == Field::kAdvice) {
      Current().reconnect.assign(value.data(), value.size());
    }
  }
  void StartObject() {
    ++depth_;
    if (message_depth_ == 0) message_depth_ = 1;
    if (depth_ == message_depth_) {
      messages_.emplace_back();
      seen_lane_ = seen_seq_ = false;
    } else if (depth_ == message_depth_ + 1) {
      section_ = field_;
      if (section_ == Field::kData) Current().has_data = true;
    }
  }
  void EndObject() {
    if (depth_ == message_depth_) {
      Current().has_stamp = Current().has_data && seen_lane_ && seen_seq_;
    } else if (depth_ == message_depth_ + 1) {
      section_ = Field::kIgnored;
    }
    --depth_;
  }
  void StartArray() {
    ++depth_;
    if (message_depth_ == 0) {
      message_depth_ = 2;
    } else if (depth_ == message_depth_ + 1) {
      section_ = Field::kIgnored;
    }
  }
  void EndArray() { --depth_; }
  void Key(absl::string_view name) {
    if (depth_ == message_depth_) {
      field_ = name == "channel"      ? Field::kChannel
               : name == "successful" ? Field::kSuccessful
               : name == "clientId"   ? Field::kClientId
               : name == "error"      ? Field::kError
               : name == "data"       ? Field::kData
               : name == "advice"     ? Field::kAdvice
                                      : Field::kIgnored;
    } else if (depth_ == message_depth_ + 1) {
      inner_ = name == "l"           ? Field::kLane
               : name == "s"         ? Field::kSeq
               : name == "reconnect" ? Field::kReconnect
                                     : Field::kIgnored;
    }
  }

 private:
  BayeuxMessage& Current() { return messages_.back(); }

  BayeuxChannel Classify(absl::string_view channel) const {
    if (channel == data_channel_) return BayeuxChannel::kData;
    if (channel == "/meta/connect") return BayeuxChannel::kConnect;
    if (channel == "/meta/handshake") return BayeuxChannel::kHandshake;
    if (channel == "/meta/subscribe") return BayeuxChannel::kSubscribe;
    if (channel == "/meta/disconnect") return BayeuxChannel::kDisconnect;
    return BayeuxChannel::kOther;
  }

  const std::string& data_channel_;
  std::vector<BayeuxMessage>& messages_;
  int depth_ = 0;
  int message_depth_ = 0;
  Field field_ = Field::kIgnored;    // the message's key being read
  Field section_ = Field::kIgnored;  // kData or kAdvice inside those
  Field inner_ = Field::kIgnored;    // the key inside data or advice
  bool seen_lane_ = false;
  bool seen_seq_ = false;
};

// RapidJSON's SAX events, for the Collector. Strings come as views of the
// reader's copy, valid during the call.
class Events : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Events> {
 public:
  explicit Events(Collector& collector) : c_(collector) {}

  bool Default() { return true; }  // null, doubles
  bool Bool(bool value) {
    c_.Boolean(value);
    return true;
  }
  bool Int(int value) { return Int64(value); }
  bool Uint(unsigned value) { return Uint64(value); }
  bool Int64(int64_t value) {
    if (value >= 0) c_.Unsigned(static_cast<uint64_t>(value));
    return true;
  }
  bool Uint64(uint64_t value) {
    c_.Unsigned(value);
    return true;
  }
  bool String(const char* text, rapidjson::SizeType length, bool) {
    c_.String(absl::string_view(text, length));
    return true;
  }
  bool Key(const char* text, rapidjson::SizeType length, bool) {
    c_.Key(absl::string_view(text, length));
    return true;
  }
  bool StartObject() {
    c_.StartObject();
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    c_.EndObject();
    return true;
  }
  bool StartArray() {
    c_.StartArray();
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    c_.EndArray();
    return true;
  }

 private:
  Collector& c_;
};

}  // namespace

BayeuxReplyParser::BayeuxReplyParser(std::string data_channel)
    : data_channel_(std::move(data_channel)) {}

absl::Status BayeuxReplyParser::Parse(
    absl::string_view body, std::vector<BayeuxMessage>& messages) const {
  messages.clear();
  Collector collector(data_channel_, messages);
  Events events(collector);
  // Read in place, from a copy (strings then are views of it, nothing is
  // copied per string), iteratively: a server's answer, however deeply it
  // nests, costs no stack. The copy ends with a NUL, as in-place reading
  // needs; a NUL inside the body ends the text early, which is caught below.
  std::string text(body.data(), body.size());
  rapidjson::InsituStringStream stream(text.data());
  rapidjson::Reader reader;
  const rapidjson::ParseResult parsed =
      reader
          .Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseInsituFlag>(
              stream, events);
  if (parsed.IsError() || stream.Tell() != body.size()) {
    messages.clear();
    return absl::InvalidArgumentError(absl::StrCat(
        "the server's answer is not JSON (at byte ",
        parsed.IsError() ? parsed.Offset() : stream.Tell(), ": ",
        parsed.IsError() ? rapidjson::GetParseError_En(parsed.Code())
                         : "a NUL byte",
        "): ", body.substr(0, 200)));
  }
  return absl::OkStatus();
}

}  // namespace manifold::load
