#include "tests/transports/testing/scripted_links.h"

#include <algorithm>

#include "core/framing.h"

namespace manifold::testing {

absl::StatusOr<size_t> ScriptedLinks::WriteSome(
    ConnectionId id, absl::Span<const absl::string_view> chunks) {
  if (!fail_writes.ok()) return fail_writes;
  size_t taken = 0;
  for (absl::string_view chunk : chunks) {
    const size_t n = std::min({chunk.size(), per_write - taken, budget});
    written[id].append(chunk.data(), n);
    taken += n;
    budget -= n;
    if (n < chunk.size()) break;
  }
  return taken;
}

void ScriptedLinks::StartWrite(ConnectionId id, absl::string_view bytes) {
  submitted[id].push_back(std::string(bytes));
}

void ScriptedLinks::SetReading(ConnectionId id, bool reading) {
  reading_changes.emplace_back(id, reading);
}

void ScriptedLinks::Close(ConnectionId id) { closed.insert(id); }

std::vector<wire::ServerMessage> ScriptedLinks::Messages(ConnectionId id) {
  return Decode(written[id]);
}

std::vector<wire::ServerMessage> ScriptedLinks::Decode(
    absl::string_view bytes) {
  FrameDecoder decoder(FrameDecoder::Options{.max_frame_bytes = 1 << 24});
  decoder.Append(bytes);
  std::vector<wire::ServerMessage> messages;
  wire::ServerMessage m;
  while (decoder.Next(m).value_or(false)) messages.push_back(m);
  return messages;
}

}  // namespace manifold::testing
