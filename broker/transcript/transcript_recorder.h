// File: broker/transcript/transcript_recorder.h
// -----------------------------------------------------------------------------
//
// Records a live broker session as a transcript that replays to the same
// output, byte for byte (see transcript.proto, `recorded: true`). The transport
// that drives the broker calls one method for each thing it does to the
// broker, in the same order and with the same times:
//
//   Broker::Accept   -> Accepted(conn, now)
//   Connection::Receive -> Received(id, bytes, now)
//   Broker::Process  -> Processed(now)      (only when something was received)
//   Broker::Tick     -> Ticked(now)         (only when a deadline was due)
//   after Process/Tick, before writing  -> CaptureOutput(broker)
//   Connection::Consume -> Written(conn, n), before Consume
//   Broker::Close    -> Closing(conn, reason, now), then Broker::Close
//   Broker::Shutdown -> ShutDown(now)
//   SessionIdSource::Fill -> SessionIdDrawn(bytes)  (RecordSessionIds() in
//                        recorded_session_ids.h wraps the live source)
//
// A transport keeps a null recorder pointer when not recording, so recording
// costs nothing when it is off. The recorder does no I/O: write ToText() to a
// file when the session ends (or periodically).
//
// Example:
//
//   // `start` is the transport's clock reading when the broker started.
//   TranscriptRecorder recorder(options, start, "session on edge-1");
//   ... drive the broker, calling the hooks ...
//   WriteFile(path, recorder.ToText());

#ifndef MANIFOLD_BROKER_TRANSCRIPT_TRANSCRIPT_RECORDER_H_
#define MANIFOLD_BROKER_TRANSCRIPT_TRANSCRIPT_RECORDER_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "broker/broker.h"
#include "broker/options.h"
#include "broker/transcript/transcript.pb.h"

namespace manifold {

class TranscriptRecorder {
 public:
  // `start` becomes the transcript's clock start; `description` its
  // description line.
  TranscriptRecorder(const BrokerOptions& options, absl::Time start,
                     absl::string_view description);
  TranscriptRecorder(const TranscriptRecorder&) = delete;
  TranscriptRecorder& operator=(const TranscriptRecorder&) = delete;

  void Accepted(const Connection& c, absl::Time now);
  void Received(ConnectionId id, absl::string_view bytes, absl::Time now);
  void Processed(absl::Time now);
  void Ticked(absl::Time now);
  // Records, as expect steps, what the broker has produced for its
  // connections since the last call. Call it after Process/Tick/Accept/Close,
  // before the transport consumes output.
  void CaptureOutput(Broker& broker);
  // The transport is about to call c.Consume(bytes).
  void Written(const Connection& c, size_t bytes);
  // The transport is about to call Broker::Close(c.id(), reason, now).
  void Closing(const Connection& c, absl::string_view reason, absl::Time now);
  void ShutDown(absl::Time now);
  // The broker's SessionIdSource handed out `bytes` (see
  // recorded_session_ids.h: the live source is wrapped to call this).
  void SessionIdDrawn(absl::Span<const uint8_t> bytes);

  const transcript::Transcript& transcript() const { return t_; }
  // The transcript in the text form tests/transcripts uses.
  std::string ToText() const;
  // Steps recorded so far.
  size_t steps() const { return static_cast<size_t>(t_.step_size()); }

 private:
  struct Peer {
    std::string client;
    bool native = true;
    // Received bytes that do not yet end on a frame boundary.
    std::string partial_input;
    // Connection::output_total() when output was last recorded.
    uint64_t recorded_output = 0;
    // Recorded output not yet turned into expect steps (a partial frame).
    std::string partial_output;
  };

  void AdvanceTo(absl::Time now);
  void RecordOutput(Peer& peer, const Connection& c);
  transcript::Step& NewStep() { return *t_.add_step(); }

  transcript::Transcript t_;
  absl::Time now_;
  absl::flat_hash_map<ConnectionId, Peer> peers_;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_TRANSCRIPT_TRANSCRIPT_RECORDER_H_
