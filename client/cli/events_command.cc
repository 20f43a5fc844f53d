// manifold events [--count N]: watches the broker's events (connections,
// subscriptions, services, periodic statistics) on the reserved $sys topics
// and prints one line per event.

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "client/cli/command.h"
#include "client/cli/flags.h"
#include "client/cli/format.h"
#include "client/cli/json.h"
#include "core/manifold.pb.h"

namespace manifold::cli {
namespace {

constexpr absl::string_view kEventsPattern = "$sys/**";
constexpr absl::Duration kPollInterval = absl::Milliseconds(200);

absl::Status RunEvents(CommandContext& context) {
  if (absl::Status s = context.ExpectArgs(0, "no arguments"); !s.ok()) return s;
  const int64_t count = absl::GetFlag(FLAGS_count);
  if (count < 0) return UsageError("--count must be 0 or more");
  absl::StatusOr<std::unique_ptr<Client>> client = context.Connect();
  if (!client.ok()) return client.status();
  absl::StatusOr<std::unique_ptr<Client::Subscription>> sub =
      (*client)->Subscribe(kEventsPattern);
  if (!sub.ok()) return sub.status();
  for (int64_t received = 0; count == 0 || received < count;) {
    if (context.stop_requested()) return absl::OkStatus();
    absl::StatusOr<Message> m = (*sub)->Next(kPollInterval);
    if (absl::IsDeadlineExceeded(m.status())) continue;
    if (!m.ok()) return m.status();
    wire::BrokerEvent event;
    if (event.ParseFromString(m->payload)) {
      context.Print(FormatEvent(m->topic, event, context.json()));
    } else if (context.json()) {
      // Not an event after all; show it rather than drop it.
      context.Print(JsonObject()
                        .Add("topic", m->topic)
                        .Add("event", "unparsable")
                        .AddBytes("payload", m->payload)
                        .str());
    } else {
      context.Print(absl::StrCat(Printable(m->topic), " unparsable ",
                                 Printable(m->payload)));
    }
    ++received;
  }
  return absl::OkStatus();
}

}  // namespace

Command EventsCommand() {
  return {"events",
          "events [--count N]",
          "print the broker's events as they happen ($sys/**)",
          {"count"},
          RunEvents};
}

}  // namespace manifold::cli
