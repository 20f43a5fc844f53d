#include "client/load/bayeux_reply.h"

#include <cstddef>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace manifold::load {
namespace {

using Json = nlohmann::json;

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

// Collects the fields BayeuxMessage keeps. Messages are the objects at
// `message_depth_`: 1 when the body is one object, 2 inside the top-level
// array; their "data" and "advice" objects are one level deeper.
class Collector : public nlohmann::json_sax<Json> {
 public:
  Collector(const std::string& data_channel,
            std::vector<BayeuxMessage>& messages)
      : data_channel_(data_channel), messages_(messages) {}

  const std::string& error() const { return error_; }

  bool null() override { return true; }
  bool boolean(bool value) override {
    if (depth_ == message_depth_ && field_ == Field::kSuccessful) {
      Current().has_successful = true;
      Current().successful = value;
    }
    return true;
  }
  bool number_integer(number_integer_t value) override {
    if (value >= 0) Number(static_cast<uint64_t>(value));
    return true;
  }
  bool number_unsigned(number_unsigned_t value) override {
    Number(value);
    return true;
  }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t& value) override {
    if (depth_ == message_depth_) {
      switch (field_) {
        case Field::kChannel:
          Current().channel = Classify(value);
          break;
        case Field::kClientId:
          Current().client_id = std::move(value);
          break;
        case Field::kError:
          Current().error = std::move(value);
          break;
        default:
          break;
      }
    } else if (depth_ == message_depth_ + 1 && inner_ == Field::kReconnect &&
               section_ == Field::kAdvice) {
      Current().reconnect = std::move(value);
    }
    return true;
  }
  bool binary(binary_t&) override { return true; }

  bool start_object(std::size_t) override {
    ++depth_;
    if (message_depth_ == 0) message_depth_ = 1;
    if (depth_ == message_depth_) {
      messages_.emplace_back();
      seen_lane_ = seen_seq_ = false;
    } else if (depth_ == message_depth_ + 1) {
      section_ = field_;
      if (section_ == Field::kData) Current().has_data = true;
    }
    return true;
  }
  bool end_object() override {
    if (depth_ == message_depth_) {
      Current().has_stamp = Current().has_data && seen_lane_ && seen_seq_;
    } else if (depth_ == message_depth_ + 1) {
      section_ = Field::kIgnored;
    }
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    ++depth_;
    if (message_depth_ == 0) {
      message_depth_ = 2;
    } else if (depth_ == message_depth_ + 1) {
      section_ = Field::kIgnored;
    }
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool key(string_t& name) override {
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
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    error_ = absl::StrCat("at byte ", position, ": ", e.what());
    return false;
  }

 private:
  BayeuxMessage& Current() { return messages_.back(); }

  BayeuxChannel Classify(const std::string& channel) const {
    if (channel == data_channel_) return BayeuxChannel::kData;
    if (channel == "/meta/connect") return BayeuxChannel::kConnect;
    if (channel == "/meta/handshake") return BayeuxChannel::kHandshake;
    if (channel == "/meta/subscribe") return BayeuxChannel::kSubscribe;
    if (channel == "/meta/disconnect") return BayeuxChannel::kDisconnect;
    return BayeuxChannel::kOther;
  }

  void Number(uint64_t value) {
    if (depth_ != message_depth_ + 1 || section_ != Field::kData) return;
    if (inner_ == Field::kLane) {
      Current().lane = value;
      seen_lane_ = true;
    } else if (inner_ == Field::kSeq) {
      Current().seq = value;
      seen_seq_ = true;
    }
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
  std::string error_;
};

}  // namespace

BayeuxReplyParser::BayeuxReplyParser(std::string data_channel)
    : data_channel_(std::move(data_channel)) {}

absl::Status BayeuxReplyParser::Parse(
    absl::string_view body, std::vector<BayeuxMessage>& messages) const {
  messages.clear();
  Collector collector(data_channel_, messages);
  bool parsed = false;
  try {
    parsed = Json::sax_parse(body.begin(), body.end(), &collector);
  } catch (const std::exception& e) {
    parsed = false;
  }
  if (!parsed) {
    messages.clear();
    return absl::InvalidArgumentError(absl::StrCat(
        "the server's answer is not JSON (",
        collector.error().empty() ? "unexpected input" : collector.error(),
        "): ", body.substr(0, 200)));
  }
  return absl::OkStatus();
}

}  // namespace manifold::load
