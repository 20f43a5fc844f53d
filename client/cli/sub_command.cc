// manifold sub PATTERN [--queue G] [--count N] [--noreconnect]: prints each
// message published on a topic that PATTERN matches, one per line, until
// interrupted or N messages have arrived. A lost connection is restored
// (ClientOptions::reconnect): a network blip loses nothing, and after a
// broker restart it subscribes again.

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "client/cli/command.h"
#include "client/cli/flags.h"
#include "client/cli/format.h"

ABSL_FLAG(std::string, queue, "",
          "sub: join this queue group (each message goes to one member)");
ABSL_FLAG(bool, reconnect, true,
          "sub: when the connection is lost, connect again and go on "
          "(nothing is lost; after a broker restart, subscribe again); "
          "--noreconnect exits instead");

namespace manifold::cli {
namespace {

constexpr absl::Duration kPollInterval = absl::Milliseconds(200);

absl::Status RunSub(CommandContext& context) {
  if (absl::Status s = context.ExpectArgs(1, "PATTERN"); !s.ok()) return s;
  const int64_t count = absl::GetFlag(FLAGS_count);
  if (count < 0) return UsageError("--count must be 0 or more");
  ClientOptions options;
  options.reconnect.enabled = absl::GetFlag(FLAGS_reconnect);
  options.on_error = [](const absl::Status& error) {
    std::fprintf(stderr, "manifold sub: %s\n",
                 std::string(error.message()).c_str());
  };
  absl::StatusOr<std::unique_ptr<Client>> client =
      context.Connect(std::move(options));
  if (!client.ok()) return client.status();
  absl::StatusOr<std::unique_ptr<Client::Subscription>> sub =
      (*client)->QueueSubscribe(context.args()[0], absl::GetFlag(FLAGS_queue));
  if (!sub.ok()) return sub.status();
  if (count > 0) {
    // The broker stops sending after N, even while we are still printing.
    if (absl::Status s = (*sub)->AutoUnsubscribe(count); !s.ok()) return s;
  }
  for (int64_t received = 0; count == 0 || received < count;) {
    if (context.stop_requested()) return absl::OkStatus();
    absl::StatusOr<Message> m = (*sub)->Next(kPollInterval);
    if (absl::IsDeadlineExceeded(m.status())) continue;
    if (!m.ok()) return m.status();
    context.Print(FormatMessage(*m, context.json()));
    ++received;
  }
  return absl::OkStatus();
}

}  // namespace

Command SubCommand() {
  return {"sub",
          "sub PATTERN [--queue G] [--count N] [--noreconnect]",
          "print messages on topics matching PATTERN ('*' one segment, '**' "
          "any)",
          {"queue", "count", "reconnect"},
          RunSub};
}

}  // namespace manifold::cli
