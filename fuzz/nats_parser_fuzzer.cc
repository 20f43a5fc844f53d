// Fuzzes the NATS protocol parser and codec: arbitrary bytes parse into
// commands or one fatal error with a protocol code, never a crash; parsing is
// split-independent (the same commands whether the input arrives whole or in
// input-chosen pieces); and a whole NATS connection (codec + broker) survives
// any input with bounded output.

#include <cstdint>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "broker/nats/nats_codec.h"
#include "core/nats/parser.h"
#include "core/status.h"
#include "google/protobuf/stubs/logging.h"

namespace {

struct Parsed {
  std::vector<std::string> commands;  // kind and fields, flattened
  bool error = false;
};

// Parses `input`, revealing it `piece` bytes at a time, as a Connection would.
Parsed ParseAll(absl::string_view input, size_t piece,
                const manifold::nats::ParseLimits& limits) {
  Parsed out;
  size_t visible = 0, at = 0;
  while (at < input.size()) {
    visible = std::min(input.size(), visible + piece);
    while (true) {
      manifold::nats::Command command;
      absl::StatusOr<size_t> used = manifold::nats::ParseCommand(
          input.substr(at, visible - at), limits, command);
      if (!used.ok()) {
        const manifold::wire::Code code = manifold::WireCode(used.status());
        if (code == manifold::wire::OK || code == manifold::wire::INTERNAL) {
          __builtin_trap();  // errors must be specific
        }
        out.error = true;
        return out;
      }
      if (*used == 0) break;
      out.commands.push_back(absl::StrCat(
          manifold::nats::CommandName(command.kind), "|", command.subject, "|",
          command.reply_to, "|", command.queue_group, "|", command.sid, "|",
          command.max_messages, "|", command.header_block, "|", command.payload,
          "|", command.arguments));
      at += *used;
    }
    if (visible == input.size()) break;
  }
  return out;
}

}  // namespace

static const bool kQuietProtobuf = [] {
  google::protobuf::SetLogHandler(nullptr);
  return true;
}();

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = 1 + data[0] % 32;
  const absl::string_view input(reinterpret_cast<const char*>(data + 1),
                                size - 1);
  manifold::nats::ParseLimits limits;
  limits.max_control_line_bytes = 256;
  limits.max_payload_bytes = 1024;
  const Parsed whole = ParseAll(input, input.size() + 1, limits);
  const Parsed pieces = ParseAll(input, piece, limits);
  // The same commands, and the same verdict once all input is in.
  if (whole.commands != pieces.commands || whole.error != pieces.error) {
    __builtin_trap();
  }

  // A whole connection: the codec in front of a real broker.
  manifold::BrokerOptions options;
  options.set_max_outbound_bytes(4096);
  options.set_max_payload_bytes(1024);
  options.set_max_frame_bytes(4096);
  manifold::Broker broker(options);
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  manifold::NatsOptions nats;
  nats.max_control_line_bytes = 256;
  manifold::Connection& c =
      broker.Accept(manifold::PeerInfo{"fuzz"}, now,
                    std::make_unique<manifold::NatsCodec>(nats));
  const manifold::ConnectionId id = c.id();
  for (size_t at = 0; at < input.size(); at += piece) {
    manifold::Connection* conn = broker.FindConnection(id);
    if (conn == nullptr || !conn->WantsRead()) break;
    conn->Receive(input.substr(at, piece), now);
    broker.Process(now);
    if (conn->PendingOutputBytes() >
        options.max_outbound_bytes() + options.max_frame_bytes() + 1024) {
      __builtin_trap();
    }
    conn->Consume(conn->PendingOutputBytes());
  }
  return 0;
}
