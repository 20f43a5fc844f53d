#include "core/nats/parser.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/manifold.pb.h"
#include "core/nats/connect.pb.h"
#include "core/nats/errors.h"
#include "google/protobuf/util/json_util.h"

namespace manifold::nats {
namespace {

constexpr absl::string_view kHeaderVersion = "NATS/1.0";
// Most fields any command has (HPUB: subject, reply, header size, size).
constexpr size_t kMaxFields = 4;

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

absl::string_view TrimBlanks(absl::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

// Shows at most 64 bytes of client input in a message, control characters
// escaped, so a message stays one short line.
std::string Quote(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s.substr(0, 64)) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (s.size() > 64) out.append("...");
  out.push_back('"');
  return out;
}

absl::Status ParserError(absl::string_view detail) {
  return NatsError(wire::INVALID_ARGUMENT, kParserError,
                   absl::StrCat("NATS ", detail));
}

// The fields after an operation name, split at runs of blanks.
struct Fields {
  std::array<absl::string_view, kMaxFields> field;
  size_t count = 0;
  bool too_many = false;
};

Fields SplitFields(absl::string_view rest) {
  Fields fields;
  size_t i = 0;
  while (true) {
    while (i < rest.size() && IsBlank(rest[i])) ++i;
    if (i == rest.size()) return fields;
    size_t end = i;
    while (end < rest.size() && !IsBlank(rest[end])) ++end;
    if (fields.count == kMaxFields) {
      fields.too_many = true;
      return fields;
    }
    fields.field[fields.count++] = rest.substr(i, end - i);
    i = end;
  }
}

// Parses a decimal size or count: digits only (leading zeros allowed, as in
// nats-server), no sign, at most 18 digits so it cannot overflow.
bool ParseDecimal(absl::string_view s, uint64_t& value) {
  if (s.empty() || s.size() > 18) return false;
  value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

absl::Status WrongFieldCount(CommandKind kind, const Fields& fields,
                             absl::string_view expected) {
  return ParserError(
      absl::StrCat(CommandName(kind), " takes ", expected, "; got ",
                   fields.too_many ? absl::StrCat("more than ", kMaxFields)
                                   : absl::StrCat(fields.count),
                   " fields"));
}

absl::Status ReadSize(CommandKind kind, absl::string_view what,
                      absl::string_view field, uint64_t& value) {
  if (!ParseDecimal(field, value)) {
    return ParserError(absl::StrCat(CommandName(kind), " ", what, " ",
                                    Quote(field), " is not a decimal number"));
  }
  return absl::OkStatus();
}

bool MatchOperation(absl::string_view name, CommandKind& kind) {
  struct Entry {
    absl::string_view name;
    CommandKind kind;
  };
  static constexpr Entry kOperations[] = {
      {"PUB", CommandKind::kPub},         {"HPUB", CommandKind::kHpub},
      {"SUB", CommandKind::kSub},         {"UNSUB", CommandKind::kUnsub},
      {"PING", CommandKind::kPing},       {"PONG", CommandKind::kPong},
      {"CONNECT", CommandKind::kConnect}, {"INFO", CommandKind::kInfo},
  };
  for (const Entry& e : kOperations) {
    if (absl::EqualsIgnoreCase(name, e.name)) {
      kind = e.kind;
      return true;
    }
  }
  return false;
}

// Completes a PUB or HPUB once its sizes are known: checks the limits, waits
// for the payload and checks the "\r\n" after it. Returns the bytes used.
absl::StatusOr<size_t> ReadMessageBody(absl::string_view input,
                                       size_t line_bytes,
                                       const ParseLimits& limits,
                                       uint64_t header_bytes,
                                       uint64_t total_bytes, Command& command) {
  if (total_bytes > limits.max_payload_bytes) {
    return NatsError(
        wire::PAYLOAD_TOO_LARGE, kMaximumPayloadViolation,
        absl::StrCat("NATS ", CommandName(command.kind), " announces ",
                     total_bytes, " bytes; the limit is ",
                     limits.max_payload_bytes));
  }
  const size_t needed = line_bytes + static_cast<size_t>(total_bytes) + 2;
  if (limits.max_command_bytes != 0 && needed > limits.max_command_bytes) {
    return NatsError(
        wire::PAYLOAD_TOO_LARGE, kMaximumPayloadViolation,
        absl::StrCat("NATS ", CommandName(command.kind), " of ", needed,
                     " bytes exceeds the limit of ", limits.max_command_bytes,
                     " bytes for one operation"));
  }
  if (input.size() < needed) return 0;
  const absl::string_view body =
      input.substr(line_bytes, static_cast<size_t>(total_bytes));
  if (input.substr(line_bytes + total_bytes, 2) != "\r\n") {
    return NatsError(
        wire::MALFORMED_MESSAGE, kUnknownProtocolOperation,
        absl::StrCat("NATS ", CommandName(command.kind), " payload of ",
                     total_bytes, " bytes is followed by ",
                     Quote(input.substr(line_bytes + total_bytes, 2)),
                     " instead of \"\\r\\n\""));
  }
  command.header_block = body.substr(0, static_cast<size_t>(header_bytes));
  command.payload = body.substr(static_cast<size_t>(header_bytes));
  return needed;
}

// Returns every field of `command` to its default. Field by field: copying
// a fresh Command over it stores and reloads the same bytes in different
// widths, which stalls store forwarding on the publish path.
void ClearCommand(Command& command) {
  command.kind = CommandKind::kPing;
  command.subject = absl::string_view();
  command.reply_to = absl::string_view();
  command.queue_group = absl::string_view();
  command.sid = absl::string_view();
  command.has_max_messages = false;
  command.max_messages = 0;
  command.header_block = absl::string_view();
  command.payload = absl::string_view();
  command.arguments = absl::string_view();
}

// The common case, PUB with single spaces between fields, parsed in one
// pass. Returns false for anything else (other commands, unusual spacing,
// an incomplete or overlong line, a bad size), which the general parser then
// handles, errors included; for what it accepts, it yields exactly what the
// general parser would.
bool ParsePlainPub(absl::string_view input, const ParseLimits& limits,
                   Command& command, size_t& line_bytes, uint64_t& size) {
  if (input.size() < 4 || (input[0] | 0x20) != 'p' ||
      (input[1] | 0x20) != 'u' || (input[2] | 0x20) != 'b' || input[3] != ' ') {
    return false;
  }
  const size_t window =
      std::min(input.size(), limits.max_control_line_bytes + 2);
  const char* begin = input.data();
  const char* newline =
      static_cast<const char*>(std::memchr(begin, '\n', window));
  if (newline == nullptr) return false;
  const char* end = newline;
  if (end > begin && end[-1] == '\r') --end;
  if (static_cast<size_t>(end - begin) > limits.max_control_line_bytes) {
    return false;
  }
  // Up to three fields, each preceded by exactly one space. Kept as
  // pointers and sizes, not string_views: copying views that were just
  // stored half by half stalls store forwarding.
  const char* field_start[3];
  size_t field_size[3];
  size_t count = 0;
  // Fields stop at a byte <= ' ': a space, or the '\r' or '\n' that ends
  // the line, so the scan needs no bounds check. Any other such byte (a tab,
  // a control character inside a field) is left to the general parser.
  const char* p = begin + 3;
  while (p < end) {
    if (*p != ' ' || count == 3) return false;
    const char* start = ++p;
    while (static_cast<unsigned char>(*p) > ' ') ++p;
    if (p == start || (p < end && *p != ' ') || p > end) return false;
    field_start[count] = start;
    field_size[count] = static_cast<size_t>(p - start);
    ++count;
  }
  if (count < 2 || !ParseDecimal(absl::string_view(field_start[count - 1],
                                                   field_size[count - 1]),
                                 size)) {
    return false;
  }
  ClearCommand(command);
  command.kind = CommandKind::kPub;
  command.subject = absl::string_view(field_start[0], field_size[0]);
  if (count == 3) {
    command.reply_to = absl::string_view(field_start[1], field_size[1]);
  }
  line_bytes = static_cast<size_t>(newline - begin) + 1;
  return true;
}

}  // namespace

absl::string_view CommandName(CommandKind kind) {
  switch (kind) {
    case CommandKind::kConnect:
      return "CONNECT";
    case CommandKind::kInfo:
      return "INFO";
    case CommandKind::kPub:
      return "PUB";
    case CommandKind::kHpub:
      return "HPUB";
    case CommandKind::kSub:
      return "SUB";
    case CommandKind::kUnsub:
      return "UNSUB";
    case CommandKind::kPing:
      return "PING";
    case CommandKind::kPong:
      return "PONG";
  }
  return "?";
}

absl::StatusOr<size_t> ParseCommand(absl::string_view input,
                                    const ParseLimits& limits,
                                    Command& command) {
  {
    size_t line_bytes = 0;
    uint64_t size = 0;
    if (ParsePlainPub(input, limits, command, line_bytes, size)) {
      return ReadMessageBody(input, line_bytes, limits, 0, size, command);
    }
  }
  ClearCommand(command);
  // The line may end with "\r\n": look two bytes past the limit.
  const size_t window = limits.max_control_line_bytes + 2;
  const size_t newline = input.substr(0, window).find('\n');
  if (newline == absl::string_view::npos) {
    if (input.size() < window) return 0;
    return NatsError(
        wire::FRAME_TOO_LARGE, kMaximumControlLineExceeded,
        absl::StrCat("NATS control line ", Quote(input.substr(0, 32)),
                     " has no end within ", limits.max_control_line_bytes,
                     " bytes"));
  }
  absl::string_view line = input.substr(0, newline);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > limits.max_control_line_bytes) {
    return NatsError(wire::FRAME_TOO_LARGE, kMaximumControlLineExceeded,
                     absl::StrCat("NATS control line of ", line.size(),
                                  " bytes exceeds the limit of ",
                                  limits.max_control_line_bytes));
  }
  const size_t line_bytes = newline + 1;

  size_t name_end = 0;
  while (name_end < line.size() && !IsBlank(line[name_end])) ++name_end;
  const absl::string_view name = line.substr(0, name_end);
  if (!MatchOperation(name, command.kind)) {
    return NatsError(
        wire::MALFORMED_MESSAGE, kUnknownProtocolOperation,
        absl::StrCat("NATS operation ", Quote(name), " is unknown"));
  }
  const absl::string_view rest = line.substr(name_end);

  switch (command.kind) {
    case CommandKind::kConnect:
    case CommandKind::kInfo:
      command.arguments = TrimBlanks(rest);
      if (command.arguments.empty()) {
        return ParserError(
            absl::StrCat(CommandName(command.kind), " has no JSON argument"));
      }
      return line_bytes;
    case CommandKind::kPing:
    case CommandKind::kPong:
      if (!TrimBlanks(rest).empty()) {
        return ParserError(absl::StrCat(CommandName(command.kind),
                                        " takes no fields; got ",
                                        Quote(TrimBlanks(rest))));
      }
      return line_bytes;
    case CommandKind::kSub: {
      const Fields f = SplitFields(rest);
      if (f.too_many || f.count < 2 || f.count > 3) {
        return WrongFieldCount(command.kind, f,
                               "<subject> [queue group] <sid>");
      }
      command.subject = f.field[0];
      if (f.count == 3) command.queue_group = f.field[1];
      command.sid = f.field[f.count - 1];
      return line_bytes;
    }
    case CommandKind::kUnsub: {
      const Fields f = SplitFields(rest);
      if (f.too_many || f.count < 1 || f.count > 2) {
        return WrongFieldCount(command.kind, f, "<sid> [max messages]");
      }
      command.sid = f.field[0];
      if (f.count == 2) {
        if (absl::Status s = ReadSize(command.kind, "max messages", f.field[1],
                                      command.max_messages);
            !s.ok()) {
          return s;
        }
        command.has_max_messages = true;
      }
      return line_bytes;
    }
    case CommandKind::kPub: {
      const Fields f = SplitFields(rest);
      if (f.too_many || f.count < 2 || f.count > 3) {
        return WrongFieldCount(command.kind, f,
                               "<subject> [reply-to] <#bytes>");
      }
      command.subject = f.field[0];
      if (f.count == 3) command.reply_to = f.field[1];
      uint64_t size = 0;
      if (absl::Status s =
              ReadSize(command.kind, "size", f.field[f.count - 1], size);
          !s.ok()) {
        return s;
      }
      return ReadMessageBody(input, line_bytes, limits, 0, size, command);
    }
    case CommandKind::kHpub: {
      const Fields f = SplitFields(rest);
      if (f.too_many || f.count < 3 || f.count > 4) {
        return WrongFieldCount(
            command.kind, f,
            "<subject> [reply-to] <#header bytes> <#total bytes>");
      }
      command.subject = f.field[0];
      if (f.count == 4) command.reply_to = f.field[1];
      uint64_t header_bytes = 0;
      uint64_t total_bytes = 0;
      if (absl::Status s = ReadSize(command.kind, "header size",
                                    f.field[f.count - 2], header_bytes);
          !s.ok()) {
        return s;
      }
      if (absl::Status s = ReadSize(command.kind, "total size",
                                    f.field[f.count - 1], total_bytes);
          !s.ok()) {
        return s;
      }
      if (header_bytes > total_bytes) {
        return ParserError(absl::StrCat("HPUB header size ", header_bytes,
                                        " exceeds its total size ",
                                        total_bytes));
      }
      return ReadMessageBody(input, line_bytes, limits, header_bytes,
                             total_bytes, command);
    }
  }
  return ParserError("command could not be parsed");
}

absl::Status ParseHeaderBlock(
    absl::string_view block,
    absl::FunctionRef<void(absl::string_view key, absl::string_view value)>
        on_header) {
  // An HPUB with a header size of 0 carries no headers (nats.js sends one
  // from jetstream().publish() without options); nats-server takes it.
  if (block.empty()) return absl::OkStatus();
  if (!absl::StartsWith(block, kHeaderVersion)) {
    return ParserError(absl::StrCat("header block does not start with \"",
                                    kHeaderVersion,
                                    "\": ", Quote(block.substr(0, 16))));
  }
  if (!absl::EndsWith(block, "\r\n\r\n")) {
    return ParserError("header block does not end with an empty line");
  }
  // Every line, the status line included, ends with "\r\n"; the last line is
  // the empty one.
  size_t start = 0;
  bool first = true;
  while (true) {
    const size_t end = block.find("\r\n", start);
    const absl::string_view line = block.substr(start, end - start);
    start = end + 2;
    if (first) {
      first = false;
      const absl::string_view status =
          TrimBlanks(line.substr(kHeaderVersion.size()));
      if (!status.empty()) {
        const bool blank_after_version = IsBlank(line[kHeaderVersion.size()]);
        const absl::string_view code = status.substr(0, 3);
        const bool digits = code.size() == 3 && absl::ascii_isdigit(code[0]) &&
                            absl::ascii_isdigit(code[1]) &&
                            absl::ascii_isdigit(code[2]);
        if (!blank_after_version || !digits ||
            (status.size() > 3 && !IsBlank(status[3]))) {
          return ParserError(absl::StrCat(
              "header status line ", Quote(line),
              " is not \"NATS/1.0 <3-digit status> [description]\""));
        }
        on_header(kStatusHeader, code);
        const absl::string_view description = TrimBlanks(status.substr(3));
        if (!description.empty()) on_header(kDescriptionHeader, description);
      }
      continue;
    }
    if (line.empty()) {
      if (start != block.size()) {
        return ParserError("header block has an empty line before its end");
      }
      return absl::OkStatus();
    }
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos || colon == 0) {
      return ParserError(absl::StrCat("header line ", Quote(line),
                                      " is not \"<key>: <value>\""));
    }
    on_header(line.substr(0, colon), TrimBlanks(line.substr(colon + 1)));
  }
}

absl::StatusOr<ConnectOptions> ParseConnectOptions(absl::string_view json) {
  ConnectJson parsed;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &parsed,
      options);
  if (!status.ok()) {
    return ParserError(
        absl::StrCat("CONNECT options ", Quote(json),
                     " do not parse: ", std::string(status.message())));
  }
  ConnectOptions out;
  if (parsed.has_verbose()) out.verbose = parsed.verbose();
  if (parsed.has_pedantic()) out.pedantic = parsed.pedantic();
  if (parsed.has_echo()) out.echo = parsed.echo();
  out.headers = parsed.headers();
  out.no_responders = parsed.no_responders();
  out.tls_required = parsed.tls_required();
  out.protocol = parsed.protocol();
  out.name = parsed.name();
  out.lang = parsed.lang();
  out.version = parsed.version();
  out.auth_token = parsed.auth_token();
  out.user = parsed.user();
  out.pass = parsed.pass();
  return out;
}

}  // namespace manifold::nats
