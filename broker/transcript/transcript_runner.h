// File: broker/transcript/transcript_runner.h
// -----------------------------------------------------------------------------
//
// Replays a transcript (broker/transcript/transcript.proto) against a fresh
// Broker with a fake clock and reports the first difference between what the
// transcript expects and what the broker did, as a readable report: the step
// number, the step itself, and the expected and received messages in text
// format with their differences.
//
// Reading files is left to the caller (the broker core does no I/O); the
// `manifold replay FILE` command and tests/transcripts do it.
//
// Example:
//
//   absl::StatusOr<transcript::Transcript> t = ParseTranscript(file_text);
//   if (!t.ok()) { /* t.status(): "line 7, column 3: ..." */ }
//   absl::Status result = ReplayTranscript(*t);
//   if (!result.ok()) std::cerr << result.message();  // the readable diff

#ifndef MANIFOLD_BROKER_TRANSCRIPT_TRANSCRIPT_RUNNER_H_
#define MANIFOLD_BROKER_TRANSCRIPT_TRANSCRIPT_RUNNER_H_

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/options.h"
#include "broker/protocol_codec.h"
#include "broker/transcript/transcript.pb.h"

namespace manifold {

// Parses transcript text. Errors name the line and column.
absl::StatusOr<transcript::Transcript> ParseTranscript(absl::string_view text);

// Prints a transcript in the text form ParseTranscript() reads, one step per
// line.
std::string TranscriptToText(const transcript::Transcript& t);

// The options a transcript's broker runs with: its `broker` block, with
// statistics_interval_ms 0 unless the transcript sets it.
BrokerOptions TranscriptBrokerOptions(const transcript::Transcript& t);

// The fake clock's starting time for `t`.
absl::Time TranscriptStartTime(const transcript::Transcript& t);

struct ReplayOptions {
  // Makes the codec for a `connect.protocol` other than "native", from the
  // protocol name and its recorded settings; returns an error for a protocol
  // or settings it does not know. Without one, such transcripts fail with an
  // error naming the protocol.
  std::function<absl::StatusOr<std::unique_ptr<ProtocolCodec>>(
      absl::string_view protocol, absl::string_view settings)>
      codec_factory;
};

// Replay options that know every protocol this build has ("native", "nats",
// and "http" where the web front end was built).
ReplayOptions StandardReplayOptions();

// Replays `t`. Returns OK when every step matched and no client was left with
// output the transcript did not expect; otherwise FAILED_PRECONDITION whose
// message is the report. A transcript that is itself malformed (a step naming
// an unknown client, a bad variable) is INVALID_ARGUMENT.
absl::Status ReplayTranscript(const transcript::Transcript& t,
                              const ReplayOptions& options = ReplayOptions());

}  // namespace manifold

#endif  // MANIFOLD_BROKER_TRANSCRIPT_TRANSCRIPT_RUNNER_H_
