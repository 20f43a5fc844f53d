// manifold replay FILE: replays a transcript (tests/transcripts/README.md)
// against a fresh in-process broker with a fake clock, and reports whether
// the broker's output matched the transcript, or the first difference.
// Needs no broker running: it is how a recorded session
// (`manifoldd --record FILE`) is checked before it becomes a test.

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "broker/transcript/transcript_runner.h"
#include "client/cli/command.h"
#include "client/cli/json.h"

namespace manifold::cli {
namespace {

absl::Status RunReplay(CommandContext& context) {
  if (absl::Status s = context.ExpectArgs(1, "FILE"); !s.ok()) return s;
  const std::string& path = context.args()[0];
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<transcript::Transcript> t = ParseTranscript(text.str());
  if (!t.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", t.status().message()));
  }
  const absl::Status result = ReplayTranscript(*t, StandardReplayOptions());
  if (!result.ok()) {
    if (context.json()) {
      context.Print(absl::StrCat("{\"file\":", JsonString(path),
                                 ",\"ok\":false,\"steps\":", t->step_size(),
                                 ",\"report\":", JsonString(result.message()),
                                 "}"));
    }
    return absl::Status(result.code(), absl::StrCat(path, ": replay differs\n",
                                                    result.message()));
  }
  if (context.json()) {
    context.Print(absl::StrCat("{\"file\":", JsonString(path),
                               ",\"ok\":true,\"steps\":", t->step_size(), "}"));
  } else {
    context.Print(absl::StrCat(path, ": ", t->step_size(),
                               " steps replayed; the broker's output matched"));
  }
  return absl::OkStatus();
}

}  // namespace

Command ReplayCommand() {
  return {"replay",
          "replay FILE",
          "replay a transcript against an in-process broker and compare",
          {},
          RunReplay};
}

}  // namespace manifold::cli
