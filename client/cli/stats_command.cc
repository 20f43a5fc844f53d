// manifold stats [--timeout 5s]: asks the broker for its statistics (a
// request to $sys/stats, which the broker answers itself) and prints them.

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "broker/sys_topics.h"
#include "client/cli/command.h"
#include "client/cli/flags.h"
#include "client/cli/format.h"
#include "core/manifold.pb.h"

namespace manifold::cli {
namespace {

absl::Status RunStats(CommandContext& context) {
  if (absl::Status s = context.ExpectArgs(0, "no arguments"); !s.ok()) return s;
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  if (timeout <= absl::ZeroDuration()) {
    return UsageError("--timeout must be positive, e.g. 500ms or 2s");
  }
  absl::StatusOr<std::unique_ptr<Client>> client = context.Connect();
  if (!client.ok()) return client.status();
  absl::StatusOr<Message> reply =
      (*client)->Request(sys_topics::kStatisticsTopic, "", timeout);
  if (!reply.ok()) return reply.status();
  wire::Statistics stats;
  if (!stats.ParseFromString(reply->payload)) {
    return absl::DataLossError(absl::StrCat(
        "the broker's answer on ", sys_topics::kStatisticsTopic,
        " is not a Statistics message (", reply->payload.size(), " bytes)"));
  }
  context.Print(FormatStatistics(stats, context.json()));
  return absl::OkStatus();
}

}  // namespace

Command StatsCommand() {
  return {"stats",
          "stats [--timeout 5s]",
          "print the broker's counters and gauges",
          {"timeout"},
          RunStats};
}

}  // namespace manifold::cli
