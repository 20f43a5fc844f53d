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

// nlohmann's SAX events, for the Collector: the parser of record, which
// takes any JSON and says precisely what is wrong with a body that is not.
class NlohmannEvents final : public nlohmann::json_sax<Json> {
 public:
  explicit NlohmannEvents(Collector& collector) : c_(collector) {}

  const std::string& error() const { return error_; }

  bool null() override { return true; }
  bool boolean(bool value) override {
    c_.Boolean(value);
    return true;
  }
  bool number_integer(number_integer_t value) override {
    if (value >= 0) c_.Unsigned(static_cast<uint64_t>(value));
    return true;
  }
  bool number_unsigned(number_unsigned_t value) override {
    c_.Unsigned(value);
    return true;
  }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t& value) override {
    c_.String(value);
    return true;
  }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    c_.StartObject();
    return true;
  }
  bool end_object() override {
    c_.EndObject();
    return true;
  }
  bool start_array(std::size_t) override {
    c_.StartArray();
    return true;
  }
  bool end_array() override {
    c_.EndArray();
    return true;
  }
  bool key(string_t& name) override {
    c_.Key(name);
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    error_ = absl::StrCat("at byte ", position, ": ", e.what());
    return false;
  }

 private:
  Collector& c_;
  std::string error_;
};

// A fast path for what servers write: JSON whose strings are printable ASCII
// without escapes, nested at most kMaxDepth deep, integers that fit 64 bits.
// Scan() returns false as soon as the body is anything else (or no JSON);
// the caller then parses it with nlohmann. Strings are passed as views of
// the body, so the scan copies nothing.
class FastScanner {
 public:
  FastScanner(absl::string_view body, Collector& collector)
      : p_(body.data()), end_(body.data() + body.size()), c_(collector) {}

  bool Scan() {
    if (!Value(0)) return false;
    SkipSpace();
    return p_ == end_;
  }

 private:
  static constexpr int kMaxDepth = 32;

  void SkipSpace() {
    while (p_ < end_ &&
           (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) {
      ++p_;
    }
  }

  bool Literal(absl::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() ||
        absl::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  // REQUIRES: *p_ == '"'.
  bool String(absl::string_view& out) {
    const char* start = ++p_;
    while (p_ < end_) {
      const unsigned char ch = static_cast<unsigned char>(*p_);
      if (ch == '"') {
        out = absl::string_view(start, static_cast<size_t>(p_ - start));
        ++p_;
        return true;
      }
      // Escapes, control characters and non-ASCII: nlohmann's to judge.
      if (ch == '\\' || ch < 0x20 || ch >= 0x80) return false;
      ++p_;
    }
    return false;
  }

  bool Number() {
    const bool negative = *p_ == '-';
    if (negative) ++p_;
    if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
    if (*p_ == '0' && p_ + 1 < end_ && p_[1] >= '0' && p_[1] <= '9') {
      return false;  // leading zeros
    }
    uint64_t value = 0;
    int digits = 0;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
      value = value * 10 + static_cast<uint64_t>(*p_ - '0');
      ++p_;
      if (++digits > 18) return false;  // might not fit: nlohmann's to read
    }
    bool integer = true;
    if (p_ < end_ && *p_ == '.') {
      integer = false;
      ++p_;
      if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    // Only non-negative integers matter (the stamp); -0 is 0.
    if (integer && (!negative || value == 0)) c_.Unsigned(value);
    return true;
  }

  bool Value(int depth) {
    SkipSpace();
    if (p_ == end_) return false;
    switch (*p_) {
      case '{':
        return depth < kMaxDepth && Object(depth + 1);
      case '[':
        return depth < kMaxDepth && Array(depth + 1);
      case '"': {
        absl::string_view text;
        if (!String(text)) return false;
        c_.String(text);
        return true;
      }
      case 't':
        if (!Literal("true")) return false;
        c_.Boolean(true);
        return true;
      case 'f':
        if (!Literal("false")) return false;
        c_.Boolean(false);
        return true;
      case 'n':
        return Literal("null");
      default:
        return Number();
    }
  }

  bool Object(int depth) {
    ++p_;
    c_.StartObject();
    SkipSpace();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      c_.EndObject();
      return true;
    }
    while (true) {
      SkipSpace();
      absl::string_view name;
      if (p_ == end_ || *p_ != '"' || !String(name)) return false;
      c_.Key(name);
      SkipSpace();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      if (!Value(depth)) return false;
      SkipSpace();
      if (p_ == end_) return false;
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != '}') return false;
      ++p_;
      c_.EndObject();
      return true;
    }
  }

  bool Array(int depth) {
    ++p_;
    c_.StartArray();
    SkipSpace();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      c_.EndArray();
      return true;
    }
    while (true) {
      if (!Value(depth)) return false;
      SkipSpace();
      if (p_ == end_) return false;
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != ']') return false;
      ++p_;
      c_.EndArray();
      return true;
    }
  }

  const char* p_;
  const char* const end_;
  Collector& c_;
};

}  // namespace

BayeuxReplyParser::BayeuxReplyParser(std::string data_channel)
    : data_channel_(std::move(data_channel)) {}

absl::Status BayeuxReplyParser::Parse(
    absl::string_view body, std::vector<BayeuxMessage>& messages) const {
  messages.clear();
  {
    Collector collector(data_channel_, messages);
    if (FastScanner(body, collector).Scan()) return absl::OkStatus();
  }
  messages.clear();
  Collector collector(data_channel_, messages);
  NlohmannEvents events(collector);
  bool parsed = false;
  try {
    parsed = Json::sax_parse(body.begin(), body.end(), &events);
  } catch (const std::exception& e) {
    parsed = false;
  }
  if (!parsed) {
    messages.clear();
    return absl::InvalidArgumentError(absl::StrCat(
        "the server's answer is not JSON (",
        events.error().empty() ? "unexpected input" : events.error(),
        "): ", body.substr(0, 200)));
  }
  return absl::OkStatus();
}

}  // namespace manifold::load
