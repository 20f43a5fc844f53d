#include "broker/transcript/transcript_recorder.h"

#include <algorithm>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "broker/transcript/transcript_runner.h"
#include "core/config/config_fields.h"
#include "core/framing.h"
#include "core/status.h"

namespace manifold {
namespace {

// A frame is recorded as a message only if protobuf writes it back the same
// way; anything else is recorded as raw bytes, which replays identically.
template <typename Message>
bool ParseCanonical(absl::string_view frame_body, Message& m) {
  return m.ParseFromArray(frame_body.data(),
                          static_cast<int>(frame_body.size())) &&
         m.SerializeAsString() == frame_body;
}

}  // namespace

TranscriptRecorder::TranscriptRecorder(const BrokerOptions& options,
                                       absl::Time start,
                                       absl::string_view description)
    : now_(start) {
  t_.set_description(std::string(description));
  // Every setting written out, so that the replay does not depend on
  // defaults that may change.
  *t_.mutable_broker() = options;
  config::SetDefaultsExplicitly(*t_.mutable_broker());
  t_.set_start_time_unix_micros(absl::ToUnixMicros(start));
  t_.set_recorded(true);
}

void TranscriptRecorder::SessionIdDrawn(absl::Span<const uint8_t> bytes) {
  t_.add_session_ids(absl::BytesToHexString(absl::string_view(
      reinterpret_cast<const char*>(bytes.data()), bytes.size())));
}

std::string TranscriptRecorder::ToText() const { return TranscriptToText(t_); }

void TranscriptRecorder::AdvanceTo(absl::Time now) {
  if (now <= now_) return;
  const int64_t micros = absl::ToInt64Microseconds(now - now_);
  now_ += absl::Microseconds(micros);
  transcript::Advance* advance = NewStep().mutable_advance();
  if (micros % 1000 == 0) {
    advance->set_millis(micros / 1000);
  } else {
    advance->set_micros(micros);
  }
}

void TranscriptRecorder::Accepted(const Connection& c, absl::Time now) {
  AdvanceTo(now);
  Peer& peer = peers_[c.id()];
  peer.client = absl::StrCat("c", c.id().value());
  peer.native = c.protocol() == "native";
  transcript::Connect* connect = NewStep().mutable_connect();
  connect->set_client(peer.client);
  connect->set_peer(c.peer().address);
  if (!peer.native) {
    connect->set_protocol(std::string(c.protocol()));
    connect->set_protocol_settings(c.codec_settings());
  }
}

void TranscriptRecorder::Received(ConnectionId id, absl::string_view bytes,
                                  absl::Time now) {
  auto it = peers_.find(id);
  if (it == peers_.end() || bytes.empty()) return;
  AdvanceTo(now);
  Peer& peer = it->second;
  // Readable steps when the bytes are whole frames that start on a frame
  // boundary; raw bytes otherwise (Receive() of the pieces is equivalent).
  if (peer.native && peer.partial_input.empty()) {
    std::vector<wire::ClientMessage> messages;
    absl::string_view rest = bytes;
    bool whole = true;
    while (!rest.empty()) {
      absl::StatusOr<std::optional<FrameView>> frame =
          LocateFrame(rest, 1 << 30);
      wire::ClientMessage m;
      if (!frame.ok() || !frame->has_value() ||
          !ParseCanonical((*frame)->body, m) ||
          m.kind_case() == wire::ClientMessage::KIND_NOT_SET) {
        whole = false;
        break;
      }
      messages.push_back(std::move(m));
      rest.remove_prefix((*frame)->size);
    }
    if (whole) {
      for (wire::ClientMessage& m : messages) {
        transcript::Send* send = NewStep().mutable_send();
        send->set_client(peer.client);
        *send->mutable_message() = std::move(m);
      }
      return;
    }
  }
  transcript::Send* send = NewStep().mutable_send();
  send->set_client(peer.client);
  send->set_raw(std::string(bytes));
  if (!peer.native) return;
  // Track where frames end, so later chunks can be recorded as messages
  // again once the stream is back on a boundary.
  peer.partial_input.append(bytes.data(), bytes.size());
  while (true) {
    absl::StatusOr<std::optional<FrameView>> frame =
        LocateFrame(peer.partial_input, 1 << 30);
    if (!frame.ok()) {
      // Malformed: the broker closes the connection; keep recording raw.
      peer.native = false;
      return;
    }
    if (!frame->has_value()) return;
    peer.partial_input.erase(0, (*frame)->size);
  }
}

void TranscriptRecorder::Processed(absl::Time now) {
  AdvanceTo(now);
  NewStep().mutable_process();
}

void TranscriptRecorder::Ticked(absl::Time now) {
  AdvanceTo(now);
  NewStep().mutable_tick();
}

void TranscriptRecorder::RecordOutput(Peer& peer, const Connection& c) {
  const uint64_t produced = c.output_total();
  if (produced <= peer.recorded_output) return;
  // The newest pending bytes, less any discarded unread meanwhile.
  const uint64_t fresh = std::min<uint64_t>(produced - peer.recorded_output,
                                            c.PendingOutputBytes());
  const std::string all = c.CopyPendingOutput();
  peer.partial_output.append(all, all.size() - fresh, fresh);
  peer.recorded_output = produced;
  if (!c.protocol().empty() && c.protocol() != "native") {
    transcript::Expect* expect = NewStep().mutable_expect();
    expect->set_client(peer.client);
    expect->set_raw(peer.partial_output);
    peer.partial_output.clear();
    return;
  }
  while (true) {
    absl::StatusOr<std::optional<FrameView>> frame =
        LocateFrame(peer.partial_output, 1 << 30);
    if (!frame.ok() || !frame->has_value()) return;
    transcript::Expect* expect = NewStep().mutable_expect();
    expect->set_client(peer.client);
    wire::ServerMessage m;
    const absl::string_view body = (*frame)->body;
    if (ParseCanonical(body, m)) {
      *expect->mutable_message() = std::move(m);
    } else {
      expect->set_raw(peer.partial_output.substr(0, (*frame)->size));
    }
    peer.partial_output.erase(0, (*frame)->size);
  }
}

void TranscriptRecorder::CaptureOutput(Broker& broker) {
  // Ordered by connection id, so recordings of the same run are identical.
  std::vector<ConnectionId> ids;
  ids.reserve(peers_.size());
  for (auto& [id, peer] : peers_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (ConnectionId id : ids) {
    if (const Connection* c = broker.FindConnection(id)) {
      RecordOutput(peers_[id], *c);
    }
  }
}

void TranscriptRecorder::Written(const Connection& c, size_t bytes) {
  auto it = peers_.find(c.id());
  if (it == peers_.end() || bytes == 0) return;
  // Output produced since the last capture (e.g. an event caused by another
  // connection closing) must be on record before any of it is consumed.
  RecordOutput(it->second, c);
  transcript::Written* written = NewStep().mutable_written();
  written->set_client(it->second.client);
  written->set_bytes(bytes);
}

void TranscriptRecorder::Closing(const Connection& c, absl::string_view reason,
                                 absl::Time now) {
  auto it = peers_.find(c.id());
  if (it == peers_.end()) return;
  AdvanceTo(now);
  RecordOutput(it->second, c);
  if (c.state() == ConnectionState::kClosing) {
    transcript::ExpectClosed* closed = NewStep().mutable_expect_closed();
    closed->set_client(it->second.client);
    closed->set_code(WireCode(c.close_reason()));
  }
  transcript::Disconnect* disconnect = NewStep().mutable_disconnect();
  disconnect->set_client(it->second.client);
  disconnect->set_reason(std::string(reason));
  peers_.erase(it);
}

void TranscriptRecorder::ShutDown(absl::Time now) {
  AdvanceTo(now);
  NewStep().mutable_shutdown();
}

}  // namespace manifold
