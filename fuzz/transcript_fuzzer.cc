// Fuzzes the transcript parser and runner: arbitrary text either fails to
// parse with a line-numbered error or replays to OK, a mismatch report, or an
// invalid-transcript error, never a crash.

#include <cstdint>
#include <string>

#include "broker/transcript/transcript_runner.h"
#include "google/protobuf/stubs/logging.h"

// Protobuf logs every string field with invalid UTF-8 it rejects; fuzzing
// produces millions of them.
static const bool kQuietProtobuf = [] {
  google::protobuf::SetLogHandler(nullptr);
  return true;
}();

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<manifold::transcript::Transcript> t =
      manifold::ParseTranscript(text);
  if (!t.ok()) return 0;
  // Keep replays bounded: huge steps or clock jumps are not interesting.
  if (t->step_size() > 200) return 0;
  for (const auto& step : t->step()) {
    if (step.has_advance() &&
        (step.advance().millis() > 1'000'000 || step.advance().millis() < 0 ||
         step.advance().micros() < 0 ||
         step.advance().micros() > 1'000'000'000)) {
      return 0;
    }
  }
  absl::Status s = manifold::ReplayTranscript(*t);
  if (!s.ok() && s.code() != absl::StatusCode::kFailedPrecondition &&
      s.code() != absl::StatusCode::kInvalidArgument) {
    __builtin_trap();
  }
  return 0;
}
