// File: broker/transcript/recorded_session_ids.h
// -----------------------------------------------------------------------------
//
// Session tokens in recorded transcripts. A live broker draws the tokens that
// name its sessions (resume tokens, Bayeux clientIds, BAYEUX_BROWSER cookies)
// from an unpredictable SessionIdSource, so a replay cannot make them up
// again: the recorder writes each draw down (Transcript.session_ids) and the
// replay hands the same bytes back to its broker, in the same order.
//
//   // Recording: wrap the live source; each draw is also reported.
//   std::unique_ptr<SessionIdSource> live = RecordSessionIds(
//       OsSessionIdSource(),
//       [&](absl::Span<const uint8_t> b) { recorder.SessionIdDrawn(b); });
//
//   // Replaying: the recorded draws, then the transcript's seeded source.
//   auto ids = std::make_unique<ReplayedSessionIds>(
//       t.session_ids(), t.broker().session_id_seed());
//
// Thread safety: none; each source belongs to one broker.

#ifndef MANIFOLD_BROKER_TRANSCRIPT_RECORDED_SESSION_IDS_H_
#define MANIFOLD_BROKER_TRANSCRIPT_RECORDED_SESSION_IDS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "broker/session_id_source.h"
#include "google/protobuf/repeated_field.h"

namespace manifold {

// Returns a source that takes its bytes from `live` and passes each draw to
// `on_draw` before handing it to the broker. REQUIRES: `live` not null.
std::unique_ptr<SessionIdSource> RecordSessionIds(
    std::unique_ptr<SessionIdSource> live,
    std::function<void(absl::Span<const uint8_t>)> on_draw);

// Hands out recorded draws (lowercase hexadecimal, one per Fill), in order;
// past the last one, bytes from SeededSessionIdSource(seed).
class ReplayedSessionIds final : public SessionIdSource {
 public:
  ReplayedSessionIds(
      const google::protobuf::RepeatedPtrField<std::string>& recorded,
      uint64_t seed);

  // INVALID_ARGUMENT naming the first recorded draw that is not hexadecimal;
  // such a transcript cannot replay.
  absl::Status Check() const;

  void Fill(absl::Span<uint8_t> out) override;

  // Empty while every draw the broker made had the size recorded for it;
  // otherwise says which draw differed (the replay has diverged from the
  // live run). The bytes handed out then came from the seeded source.
  const std::string& divergence() const { return divergence_; }

 private:
  std::vector<std::string> recorded_;  // hexadecimal, as in the transcript
  size_t next_ = 0;
  std::unique_ptr<SessionIdSource> seeded_;
  std::string divergence_;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_TRANSCRIPT_RECORDED_SESSION_IDS_H_
