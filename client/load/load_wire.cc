#include "client/load/load_wire.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "core/nats/subject.h"

namespace manifold::load {
namespace {

// The longest NATS control line the tool accepts from a server (INFO lines
// carry JSON and can be long).
constexpr size_t kMaxNatsLineBytes = 64 * 1024;
// The largest native frame the tool accepts.
constexpr size_t kMaxNativeFrameBytes = 64 << 20;
// Fills blank payloads: rare in topics, so a template's payload is easy to
// find (and is found exactly once, which PublishTemplate checks).
constexpr char kBlank = '\xa5';

// --- Protobuf's wire format, read by hand on the hot path -------------------

// Reads a varint at `p` (before `end`) into `value`. Returns the position
// after it, or nullptr when the input ends first or it is too long.
const char* ReadVarint(const char* p, const char* end, uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    const uint8_t byte = static_cast<uint8_t>(*p++);
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return p;
  }
  return nullptr;
}

// Walks the fields of one message body; calls on_varint(field, value) and
// on_bytes(field, view). Returns false when the body is malformed.
template <typename OnVarint, typename OnBytes>
bool ReadFields(absl::string_view body, OnVarint on_varint, OnBytes on_bytes) {
  const char* p = body.data();
  const char* const end = p + body.size();
  while (p < end) {
    uint64_t tag = 0;
    if ((p = ReadVarint(p, end, tag)) == nullptr) return false;
    const uint32_t field = static_cast<uint32_t>(tag >> 3);
    switch (tag & 7) {
      case 0: {
        uint64_t value = 0;
        if ((p = ReadVarint(p, end, value)) == nullptr) return false;
        on_varint(field, value);
        break;
      }
      case 1:
        if (end - p < 8) return false;
        p += 8;
        break;
      case 2: {
        uint64_t length = 0;
        if ((p = ReadVarint(p, end, length)) == nullptr) return false;
        if (length > static_cast<uint64_t>(end - p)) return false;
        on_bytes(field, absl::string_view(p, length));
        p += length;
        break;
      }
      case 5:
        if (end - p < 4) return false;
        p += 4;
        break;
      default:
        return false;
    }
  }
  return true;
}

// A decimal count of at most 18 digits (so it cannot overflow).
bool ParseCount(absl::string_view digits, uint64_t& value) {
  if (digits.empty() || digits.size() > 18) return false;
  value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

absl::Status Malformed(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("server sent ", what));
}

// --- Native ------------------------------------------------------------------

class NativeWire final : public LoadWire {
 public:
  Protocol protocol() const override { return Protocol::kNative; }

  std::string Subject(absl::string_view nats_subject) const override {
    std::string topic;
    // Wildcards are allowed here; a subject with no topic form is the tool's
    // own mistake and shows up as the broker's error when used.
    if (!nats::SubjectToTopic(nats_subject, nats::SubjectUse::kSubscribe, topic)
             .ok()) {
      topic = std::string(nats_subject);
    }
    return topic;
  }

  void AppendConnect(absl::string_view name, std::string& out) const override {
    wire::ClientMessage m;
    m.mutable_hello()->set_protocol_version(wire::PROTOCOL_VERSION_1);
    m.mutable_hello()->set_client_name(std::string(name));
    AppendFrame(m, &out);
  }

  void AppendPing(uint64_t op_id, std::string& out) const override {
    wire::ClientMessage m;
    m.mutable_ping()->set_op_id(op_id);
    AppendFrame(m, &out);
  }

  void AppendPong(const ServerEvent& ping, std::string& out) const override {
    wire::ClientMessage m;
    m.mutable_pong()->set_op_id(ping.id);
    AppendFrame(m, &out);
  }

  void AppendSubscribe(absl::string_view subject, absl::string_view group,
                       uint64_t id, std::string& out) const override {
    wire::ClientMessage m;
    m.mutable_subscribe()->set_op_id(id);
    m.mutable_subscribe()->set_pattern(Subject(subject));
    m.mutable_subscribe()->set_queue_group(std::string(group));
    AppendFrame(m, &out);
  }

  void AppendPublish(absl::string_view subject, absl::string_view reply_to,
                     absl::string_view payload, std::string& out,
                     bool raw_subject) const override {
    wire::ClientMessage m;
    wire::Publish* publish = m.mutable_publish();
    publish->set_topic(raw_subject ? std::string(subject) : Subject(subject));
    publish->set_payload(std::string(payload));
    if (!reply_to.empty()) {
      publish->set_reply_to(raw_subject ? std::string(reply_to)
                                        : Subject(reply_to));
    }
    AppendFrame(m, &out);
  }

  MessageTemplate PublishTemplate(absl::string_view subject,
                                  absl::string_view reply_to,
                                  size_t payload_size) const override {
    MessageTemplate t;
    const std::string blank(payload_size, kBlank);
    AppendPublish(subject, reply_to, blank, t.bytes, /*raw_subject=*/false);
    // The payload field is written whole, so its bytes are one run.
    t.payload_offset = payload_size == 0 ? t.bytes.size() : t.bytes.find(blank);
    t.payload_size = payload_size;
    return t;
  }

  void AppendAckedPublish(absl::string_view subject, absl::string_view,
                          uint64_t op_id, absl::string_view payload,
                          std::string& out) const override {
    wire::ClientMessage m;
    wire::Publish* publish = m.mutable_publish();
    publish->set_op_id(op_id);
    publish->set_topic(Subject(subject));
    publish->set_payload(std::string(payload));
    publish->set_ack(true);
    AppendFrame(m, &out);
  }

  bool AppendReplaySubscribe(absl::string_view subject,
                             absl::string_view stream, uint64_t from_seq,
                             uint64_t op_id, std::string& out) const override {
    wire::ClientMessage m;
    wire::Subscribe* subscribe = m.mutable_subscribe();
    subscribe->set_op_id(op_id);
    subscribe->set_pattern(Subject(subject));
    subscribe->mutable_replay()->set_stream(std::string(stream));
    subscribe->mutable_replay()->set_from_seq(from_seq);
    AppendFrame(m, &out);
    return true;
  }

  bool AppendServe(absl::string_view subject, uint64_t op_id,
                   std::string& out) const override {
    wire::ClientMessage m;
    m.mutable_serve()->set_op_id(op_id);
    m.mutable_serve()->set_topic(Subject(subject));
    AppendFrame(m, &out);
    return true;
  }

  bool AppendRequest(absl::string_view subject, uint64_t op_id,
                     absl::string_view payload,
                     std::string& out) const override {
    wire::ClientMessage m;
    m.mutable_request()->set_op_id(op_id);
    m.mutable_request()->set_topic(Subject(subject));
    m.mutable_request()->set_payload(std::string(payload));
    AppendFrame(m, &out);
    return true;
  }

  bool AppendRespond(uint64_t request_id, absl::string_view payload,
                     std::string& out) const override {
    wire::ClientMessage m;
    m.mutable_respond()->set_request_id(request_id);
    m.mutable_respond()->set_payload(std::string(payload));
    AppendFrame(m, &out);
    return true;
  }

  absl::StatusOr<size_t> Parse(absl::string_view input,
                               ServerEvent& event) const override {
    uint64_t length = 0;
    const char* const begin = input.data();
    const char* const end = begin + input.size();
    const char* body = ReadVarint(begin, end, length);
    if (body == nullptr) {
      if (input.size() >= 10) return Malformed("a bad native length prefix");
      return 0;
    }
    if (length > kMaxNativeFrameBytes) {
      return Malformed(absl::StrCat("a native frame of ", length, " bytes"));
    }
    if (static_cast<uint64_t>(end - body) < length) return 0;
    const size_t used = static_cast<size_t>(body - begin) + length;
    const absl::string_view frame(body, length);

    // ServerMessage has one field, the oneof member.
    uint32_t kind = 0;
    absl::string_view inner;
    int fields = 0;
    if (!ReadFields(
            frame, [&](uint32_t, uint64_t) { fields += 2; },
            [&](uint32_t field, absl::string_view bytes) {
              kind = field;
              inner = bytes;
              ++fields;
            }) ||
        fields != 1) {
      return Malformed("a frame that is not one manifold.wire.ServerMessage");
    }
    event = ServerEvent();
    bool ok = true;
    switch (kind) {
      case wire::ServerMessage::kDeliverFieldNumber:
        event.kind = ServerEvent::Kind::kMessage;
        ok = ReadFields(
            inner,
            [&](uint32_t field, uint64_t value) {
              if (field == wire::Deliver::kSubscriptionIdFieldNumber) {
                event.id = value;
              } else if (field == wire::Deliver::kStreamSeqFieldNumber) {
                event.stream_seq = value;
              }
            },
            [&](uint32_t field, absl::string_view bytes) {
              if (field == wire::Deliver::kTopicFieldNumber) {
                event.subject = bytes;
              } else if (field == wire::Deliver::kPayloadFieldNumber) {
                event.payload = bytes;
              } else if (field == wire::Deliver::kReplyToFieldNumber) {
                event.reply_to = bytes;
              }
            });
        break;
      case wire::ServerMessage::kRequestFieldNumber:
        event.kind = ServerEvent::Kind::kRequest;
        ok = ReadFields(
            inner,
            [&](uint32_t field, uint64_t value) {
              if (field == wire::ServedRequest::kRequestIdFieldNumber) {
                event.id = value;
              }
            },
            [&](uint32_t field, absl::string_view bytes) {
              if (field == wire::ServedRequest::kTopicFieldNumber) {
                event.subject = bytes;
              } else if (field == wire::ServedRequest::kPayloadFieldNumber) {
                event.payload = bytes;
              }
            });
        break;
      case wire::ServerMessage::kResponseFieldNumber:
        event.kind = ServerEvent::Kind::kResponse;
        ok = ReadFields(
            inner,
            [&](uint32_t field, uint64_t value) {
              if (field == wire::Response::kOpIdFieldNumber) event.id = value;
              if (field == wire::Response::kStatusFieldNumber) {
                event.ok = value == wire::REQUEST_OK;
              }
            },
            [&](uint32_t field, absl::string_view bytes) {
              if (field == wire::Response::kPayloadFieldNumber) {
                event.payload = bytes;
              } else if (field == wire::Response::kMessageFieldNumber) {
                event.text = std::string(bytes);
              }
            });
        break;
      case wire::ServerMessage::kPongFieldNumber:
      case wire::ServerMessage::kPingFieldNumber:
      case wire::ServerMessage::kAckFieldNumber:
        event.kind = kind == wire::ServerMessage::kPongFieldNumber
                         ? ServerEvent::Kind::kPong
                     : kind == wire::ServerMessage::kPingFieldNumber
                         ? ServerEvent::Kind::kPing
                         : ServerEvent::Kind::kAck;
        // op_id is field 1 in Pong, Ping and Ack.
        ok = ReadFields(
            inner,
            [&](uint32_t field, uint64_t value) {
              if (field == 1) event.id = value;
            },
            [](uint32_t, absl::string_view) {});
        break;
      case wire::ServerMessage::kErrorFieldNumber:
      case wire::ServerMessage::kGoodbyeFieldNumber: {
        wire::ServerMessage m;
        if (!m.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) {
          return Malformed("an Error frame that does not parse");
        }
        event.kind = ServerEvent::Kind::kError;
        if (m.has_error()) {
          event.id = m.error().op_id();
          event.fatal = m.error().fatal();
          event.text = absl::StrCat(wire::Code_Name(m.error().code()), ": ",
                                    m.error().message());
        } else {
          event.fatal = true;
          event.text = absl::StrCat("goodbye: ", m.goodbye().message());
        }
        break;
      }
      default:
        event.kind = ServerEvent::Kind::kOther;  // Welcome
        break;
    }
    if (!ok) return Malformed("a malformed native message");
    return used;
  }
};

// --- NATS --------------------------------------------------------------------

class NatsWire final : public LoadWire {
 public:
  Protocol protocol() const override { return Protocol::kNats; }

  std::string Subject(absl::string_view nats_subject) const override {
    return std::string(nats_subject);
  }

  void AppendConnect(absl::string_view name, std::string& out) const override {
    absl::StrAppend(&out,
                    "CONNECT {\"verbose\":false,\"pedantic\":false,"
                    "\"echo\":true,\"headers\":false,\"protocol\":1,"
                    "\"lang\":\"manifold-bench\",\"version\":\"1\","
                    "\"name\":\"",
                    name, "\"}\r\n");
  }

  void AppendPing(uint64_t, std::string& out) const override {
    out.append("PING\r\n");
  }

  void AppendPong(const ServerEvent&, std::string& out) const override {
    out.append("PONG\r\n");
  }

  void AppendSubscribe(absl::string_view subject, absl::string_view group,
                       uint64_t id, std::string& out) const override {
    absl::StrAppend(&out, "SUB ", subject, group.empty() ? "" : " ", group, " ",
                    id, "\r\n");
  }

  void AppendPublish(absl::string_view subject, absl::string_view reply_to,
                     absl::string_view payload, std::string& out,
                     bool) const override {
    absl::StrAppend(&out, "PUB ", subject, reply_to.empty() ? "" : " ",
                    reply_to, " ", payload.size(), "\r\n");
    out.append(payload.data(), payload.size());
    out.append("\r\n");
  }

  void AppendAckedPublish(absl::string_view subject, absl::string_view reply_to,
                          uint64_t, absl::string_view payload,
                          std::string& out) const override {
    AppendPublish(subject, reply_to, payload, out, false);
  }

  MessageTemplate PublishTemplate(absl::string_view subject,
                                  absl::string_view reply_to,
                                  size_t payload_size) const override {
    MessageTemplate t;
    AppendPublish(subject, reply_to, std::string(payload_size, kBlank), t.bytes,
                  false);
    t.payload_offset = t.bytes.size() - 2 - payload_size;
    t.payload_size = payload_size;
    return t;
  }

  absl::StatusOr<size_t> Parse(absl::string_view input,
                               ServerEvent& event) const override {
    if (input.size() > 4 && std::memcmp(input.data(), "MSG ", 4) == 0) {
      if (const size_t used = ParseWellFormedMsg(input, event); used > 0) {
        return used;
      }
    }
    return ParseAny(input, event);
  }

 private:
  // The hot path: a whole MSG line written as servers write it, "MSG
  // <subject> <sid> [<reply>] <#bytes>\r\n" with single spaces, and its
  // payload, read in one pass. Returns the bytes used, or 0 for anything
  // else (a partial message, a line it does not expect) so that ParseAny()
  // decides. REQUIRES: `input` starts with "MSG ".
  static size_t ParseWellFormedMsg(absl::string_view input,
                                   ServerEvent& event) {
    const char* const begin = input.data();
    const char* const newline = static_cast<const char*>(
        std::memchr(begin, '\n', std::min(input.size(), kMaxNatsLineBytes)));
    if (newline == nullptr || newline[-1] != '\r') return 0;
    const char* const line_end = newline - 1;  // at the '\r'
    // The byte count: digits back from the end of the line to a space.
    const char* count = line_end;
    while (count > begin + 4 && count[-1] >= '0' && count[-1] <= '9') --count;
    if (count == line_end || line_end - count > 18 || count[-1] != ' ' ||
        count - 1 <= begin + 4) {
      return 0;
    }
    uint64_t total = 0;
    for (const char* d = count; d < line_end; ++d) {
      total = total * 10 + static_cast<uint64_t>(*d - '0');
    }
    // The subject, up to the first space (the one before the count at the
    // latest, so the line has one).
    const char* const subject = begin + 4;
    const char* const subject_end = static_cast<const char*>(
        std::memchr(subject, ' ', static_cast<size_t>(count - 1 - subject)));
    if (subject_end == nullptr || subject_end == subject) return 0;
    // The sid: digits, then the space before the count or before a reply
    // subject.
    const char* p = subject_end + 1;
    const char* const sid = p;
    uint64_t id = 0;
    while (*p >= '0' && *p <= '9') {  // stops at the space before the count
      id = id * 10 + static_cast<uint64_t>(*p - '0');
      ++p;
    }
    if (p == sid || p - sid > 18 || *p != ' ') return 0;
    absl::string_view reply;
    if (p != count - 1) {
      const char* const reply_start = p + 1;
      const size_t reply_size = static_cast<size_t>(count - 1 - reply_start);
      if (reply_size == 0 ||
          std::memchr(reply_start, ' ', reply_size) != nullptr) {
        return 0;
      }
      reply = absl::string_view(reply_start, reply_size);
    }
    const size_t line_bytes = static_cast<size_t>(newline + 1 - begin);
    if (input.size() - line_bytes < total + 2) return 0;
    event.kind = ServerEvent::Kind::kMessage;
    event.id = id;
    event.ok = true;
    event.fatal = false;
    event.subject =
        absl::string_view(subject, static_cast<size_t>(subject_end - subject));
    event.reply_to = reply;
    event.payload = absl::string_view(begin + line_bytes, total);
    return line_bytes + total + 2;
  }

  // Any server line or message, slowly; errors for what no server sends.
  static absl::StatusOr<size_t> ParseAny(absl::string_view input,
                                         ServerEvent& event) {
    const size_t newline = input.substr(0, kMaxNatsLineBytes).find('\n');
    if (newline == absl::string_view::npos) {
      if (input.size() >= kMaxNatsLineBytes) {
        return Malformed("a NATS control line without an end");
      }
      return 0;
    }
    absl::string_view line = input.substr(0, newline);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t line_bytes = newline + 1;
    event.kind = ServerEvent::Kind::kOther;
    event.id = 0;
    event.ok = true;
    event.fatal = false;
    event.reply_to = absl::string_view();

    const bool msg =
        line.size() > 4 && std::memcmp(line.data(), "MSG ", 4) == 0;
    if (msg || absl::StartsWith(line, "HMSG ")) {
      // Fields: subject sid [reply] [#header bytes] #total bytes. Kept as
      // offsets: this runs for every message a subscriber gets.
      size_t start[5];
      size_t size[5];
      size_t count = 0;
      size_t i = msg ? 4 : 5;
      while (i < line.size()) {
        while (i < line.size() && line[i] == ' ') ++i;
        if (i == line.size()) break;
        size_t j = i;
        while (j < line.size() && line[j] != ' ') ++j;
        if (count == 5) return Malformed(absl::StrCat("'", line, "'"));
        start[count] = i;
        size[count] = j - i;
        ++count;
        i = j;
      }
      const size_t minimum = msg ? 3 : 4;
      if (count < minimum || count > minimum + 1) {
        return Malformed(absl::StrCat("'", line, "'"));
      }
      auto field = [&](size_t k) { return line.substr(start[k], size[k]); };
      uint64_t total = 0;
      uint64_t header = 0;
      if (!ParseCount(field(count - 1), total) ||
          !ParseCount(field(1), event.id) ||
          (!msg && (!ParseCount(field(count - 2), header) || header > total))) {
        return Malformed(absl::StrCat("'", line, "'"));
      }
      const size_t needed = line_bytes + total + 2;
      if (input.size() < needed) return 0;
      event.kind = ServerEvent::Kind::kMessage;
      event.subject = field(0);
      if (count == minimum + 1) event.reply_to = field(2);
      event.payload = input.substr(line_bytes + header, total - header);
      return needed;
    }
    if (line == "PING") {
      event.kind = ServerEvent::Kind::kPing;
    } else if (line == "PONG") {
      event.kind = ServerEvent::Kind::kPong;
    } else if (absl::StartsWith(line, "-ERR")) {
      event.kind = ServerEvent::Kind::kError;
      event.text = std::string(absl::StripAsciiWhitespace(line.substr(4)));
      // nats-server closes the connection after every error but these.
      event.fatal = !absl::StrContains(line, "Invalid Subject") &&
                    !absl::StrContains(line, "Invalid Publish Subject") &&
                    !absl::StrContains(line, "Permissions Violation");
    } else if (!absl::StartsWith(line, "INFO") && line != "+OK") {
      return Malformed(
          absl::StrCat("an unknown NATS line '", line.substr(0, 64), "'"));
    }
    return line_bytes;
  }
};

}  // namespace

absl::string_view ProtocolName(Protocol protocol) {
  return protocol == Protocol::kNative ? "native" : "nats";
}

absl::StatusOr<Protocol> ParseProtocol(absl::string_view name) {
  if (name == "native") return Protocol::kNative;
  if (name == "nats") return Protocol::kNats;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown protocol '", name, "'; expected native or nats"));
}

std::unique_ptr<LoadWire> LoadWire::For(Protocol protocol) {
  if (protocol == Protocol::kNative) return std::make_unique<NativeWire>();
  return std::make_unique<NatsWire>();
}

}  // namespace manifold::load
