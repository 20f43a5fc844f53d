// File: core/nats/parser.h
// -----------------------------------------------------------------------------
//
// A parser for the client side of the NATS core protocol: CONNECT, PUB, HPUB,
// SUB, UNSUB, PING, PONG (and INFO, which servers ignore from clients).
//
// The parser is a pure function of its input: it looks at the front of a
// buffer and either finds one whole command there, reports that the buffer
// holds only part of one, or reports an error. It keeps no state, so feeding
// a stream byte by byte or in any other split gives the same commands, and a
// caller can keep unparsed bytes in its own buffer (as a broker Connection
// does). Everything it returns points into the input: no copy, no
// allocation.
//
// The grammar, as nats-server accepts it:
//   - A control line ends with "\r\n" (a bare "\n" is accepted too). Fields
//     are separated by runs of spaces and tabs. Operation names are
//     case-insensitive.
//   - PUB <subject> [reply-to] <#bytes>\r\n<payload>\r\n
//   - HPUB <subject> [reply-to] <#header bytes> <#total bytes>\r\n
//       <headers><payload>\r\n            (headers: see ParseHeaderBlock)
//   - SUB <subject> [queue group] <sid>\r\n
//   - UNSUB <sid> [max messages]\r\n
//   - CONNECT <json>\r\n, INFO <json>\r\n, PING\r\n, PONG\r\n
//
// Limits (ParseLimits) are checked as early as possible: a control line that
// has not ended within max_control_line_bytes is an error before its end
// arrives, and a payload larger than max_payload_bytes is an error as soon as
// its size is read, before the payload arrives. So the parser never needs
// more than max_control_line_bytes + max_payload_bytes + 4 bytes buffered.
//
// Errors carry a wire::Code, a message naming the problem, and the NATS text
// for -ERR (core/nats/errors.h):
//   MALFORMED_MESSAGE  "Unknown Protocol Operation": an unknown operation, or a
//                      payload not followed by "\r\n"
//   INVALID_ARGUMENT   "Parser Error": wrong number of fields, a size that is
//                      not a decimal number, header size > total size
//   FRAME_TOO_LARGE    "Maximum Control Line Exceeded"
//   PAYLOAD_TOO_LARGE  "Maximum Payload Violation"
// All of them are fatal for the connection, as in nats-server.
//
// Example:
//
//   Command command;
//   absl::StatusOr<size_t> used = ParseCommand(buffer, ParseLimits(), command);
//   if (!used.ok()) { /* send -ERR NatsErrorText(used.status()) and close */ }
//   else if (*used == 0) { /* wait for more bytes */ }
//   else { Handle(command); buffer.remove_prefix(*used); }

#ifndef MANIFOLD_CORE_NATS_PARSER_H_
#define MANIFOLD_CORE_NATS_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace manifold::nats {

// NATS's default limits.
inline constexpr size_t kDefaultMaxControlLineBytes = 4096;
inline constexpr size_t kDefaultMaxPayloadBytes = 1 << 20;

struct ParseLimits {
  // Longest control line, without its line end.
  size_t max_control_line_bytes = kDefaultMaxControlLineBytes;
  // Largest message: HPUB's total size (headers and payload), PUB's payload.
  size_t max_payload_bytes = kDefaultMaxPayloadBytes;
  // Largest whole command (control line, payload and line ends); 0 for no
  // limit besides the two above. A command over it is a payload violation.
  size_t max_command_bytes = 0;
};

enum class CommandKind {
  kConnect,
  kInfo,
  kPub,
  kHpub,
  kSub,
  kUnsub,
  kPing,
  kPong,
};

// Returns "CONNECT", "PUB", ... for messages.
absl::string_view CommandName(CommandKind kind);

// One parsed command. Views point into the parsed input; fields a command
// does not have are empty.
struct Command {
  CommandKind kind = CommandKind::kPing;
  absl::string_view subject;       // PUB, HPUB, SUB
  absl::string_view reply_to;      // PUB, HPUB; empty when absent
  absl::string_view queue_group;   // SUB; empty when absent
  absl::string_view sid;           // SUB, UNSUB
  bool has_max_messages = false;   // UNSUB
  uint64_t max_messages = 0;       // UNSUB, when has_max_messages
  absl::string_view header_block;  // HPUB: "NATS/1.0...\r\n\r\n"
  absl::string_view payload;       // PUB, HPUB (after the headers)
  absl::string_view arguments;     // CONNECT, INFO: the JSON text
};

// Parses the command at the front of `input` into `command`. Returns the
// number of bytes it takes (> 0), 0 when `input` holds only part of a command
// (and no limit is exceeded yet), or an error described above.
absl::StatusOr<size_t> ParseCommand(absl::string_view input,
                                    const ParseLimits& limits,
                                    Command& command);

// Header keys under which a header block's status line is reported.
inline constexpr absl::string_view kStatusHeader = "Status";
inline constexpr absl::string_view kDescriptionHeader = "Description";

// Parses an HPUB/HMSG header block:
//   "NATS/1.0[ <3-digit status>[ <description>]]\r\n"
//   ("<key>:<value>\r\n")*
//   "\r\n"
// and calls `on_header(key, value)` for each header, in order: first
// Status and Description from the status line when present, then each line
// (keys as written; values with surrounding spaces and tabs trimmed). Views
// point into `block`. An empty block (an HPUB whose header size is 0) holds
// no headers. Returns INVALID_ARGUMENT (NATS text "Parser Error") naming the
// problem when the block is not of that form.
absl::Status ParseHeaderBlock(
    absl::string_view block,
    absl::FunctionRef<void(absl::string_view key, absl::string_view value)>
        on_header);

// The options a client sends in CONNECT that a server acts on. Flags the
// client leaves out take nats-server's defaults.
struct ConnectOptions {
  bool verbose = true;
  bool pedantic = true;
  bool echo = true;
  bool headers = false;
  bool no_responders = false;
  bool tls_required = false;
  int protocol = 0;
  std::string name;
  std::string lang;
  std::string version;
  std::string auth_token;
  std::string user;
  std::string pass;
};

// Parses CONNECT's JSON object. Unknown fields are ignored. Returns
// INVALID_ARGUMENT (NATS text "Parser Error") when `json` is not a JSON object
// or a known field has the wrong type.
absl::StatusOr<ConnectOptions> ParseConnectOptions(absl::string_view json);

}  // namespace manifold::nats

#endif  // MANIFOLD_CORE_NATS_PARSER_H_
