// manifold req TOPIC MESSAGE [--timeout 2s]: asks the server of TOPIC and
// prints its answer. No server, a timeout, a server that left or declined is
// an error that names which.

#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "client/cli/command.h"
#include "client/cli/flags.h"
#include "client/cli/format.h"

namespace manifold::cli {
namespace {

absl::Status RunReq(CommandContext& context) {
  if (absl::Status s = context.ExpectArgs(2, "TOPIC MESSAGE"); !s.ok()) {
    return s;
  }
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  if (timeout <= absl::ZeroDuration()) {
    return UsageError("--timeout must be positive, e.g. 500ms or 2s");
  }
  absl::StatusOr<std::unique_ptr<Client>> client = context.Connect();
  if (!client.ok()) return client.status();
  absl::StatusOr<Message> reply =
      (*client)->Request(context.args()[0], context.args()[1], timeout);
  if (!reply.ok()) return reply.status();
  if (context.json()) {
    context.Print(FormatMessage(*reply, /*json=*/true));
  } else {
    // The answer as it is, so that `manifold req ... > file` keeps it intact.
    absl::string_view payload = reply->payload;
    if (absl::EndsWith(payload, "\n")) payload.remove_suffix(1);
    context.Print(payload);
  }
  return absl::OkStatus();
}

}  // namespace

Command ReqCommand() {
  return {"req",
          "req TOPIC MESSAGE [--timeout 5s]",
          "ask the server of TOPIC and print its answer",
          {"timeout"},
          RunReq};
}

}  // namespace manifold::cli
