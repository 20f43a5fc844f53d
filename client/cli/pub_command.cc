// manifold pub TOPIC MESSAGE: publishes one message and waits until the broker
// has routed it, so a refusal (a reserved or invalid topic, a payload over the
// limit) is reported as an error. MESSAGE "-" reads the payload from stdin.

#include <iostream>
#include <iterator>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/cli/command.h"
#include "client/cli/format.h"
#include "client/cli/json.h"

namespace manifold::cli {
namespace {

absl::Status RunPub(CommandContext& context) {
  if (absl::Status s = context.ExpectArgs(2, "TOPIC MESSAGE"); !s.ok()) {
    return s;
  }
  const std::string& topic = context.args()[0];
  std::string payload = context.args()[1];
  if (payload == "-") {
    payload.assign(std::istreambuf_iterator<char>(std::cin),
                   std::istreambuf_iterator<char>());
  }
  absl::StatusOr<std::unique_ptr<Client>> client = context.Connect();
  if (!client.ok()) return client.status();
  absl::StatusOr<uint64_t> delivered =
      (*client)->PublishConfirmed(topic, payload);
  if (!delivered.ok()) return delivered.status();
  if (context.json()) {
    context.Print(JsonObject()
                      .Add("topic", topic)
                      .Add("bytes", uint64_t{payload.size()})
                      .Add("delivered", *delivered)
                      .str());
  } else {
    context.Print(absl::StrCat(
        "published ", payload.size(), " bytes to ", Printable(topic), " (",
        *delivered, *delivered == 1 ? " subscription)" : " subscriptions)"));
  }
  return absl::OkStatus();
}

}  // namespace

Command PubCommand() {
  return {"pub",
          "pub TOPIC MESSAGE",
          "publish MESSAGE on TOPIC (\"-\" reads it from stdin)",
          {},
          RunPub};
}

}  // namespace manifold::cli
