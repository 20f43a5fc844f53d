// manifold stream add NAME --topics P[,P...] [--max-msgs N]
//                          [--max-msgs-per-topic N] [--max-bytes B]
//                          [--max-age D] [--storage file|memory]
// manifold stream ls | info NAME | purge NAME | rm NAME [--consumer C]
//
// Manages the broker's durable streams with requests it answers itself
// ($sys/streams/..., see stream_requests.h). add, info and purge print the
// stream as the broker describes it after the change, ls a table of all
// (one JSON object per stream with --json), rm one line. rm with --consumer
// removes that durable consumer of the stream, not the stream.

#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "client/cli/command.h"
#include "client/cli/flags.h"
#include "client/cli/format.h"
#include "client/cli/json.h"
#include "client/cli/stream_flags.h"
#include "client/cli/stream_format.h"
#include "client/cli/stream_requests.h"

ABSL_FLAG(std::string, topics, "",
          "stream add: the patterns of the topics the stream stores, "
          "comma-separated, e.g. 'orders/**,refunds/*'");
ABSL_FLAG(std::string, max_msgs, "",
          "stream add: keep at most this many messages (default: no limit)");
ABSL_FLAG(std::string, max_msgs_per_topic, "",
          "stream add: keep at most this many messages of each topic; 1 "
          "keeps each topic's last value (default: no limit)");
ABSL_FLAG(std::string, max_bytes, "",
          "stream add: keep at most this many bytes, e.g. 512MB or 1GiB "
          "(default: no limit)");
ABSL_FLAG(std::string, max_age, "",
          "stream add: drop messages older than this, e.g. 24h or 7d "
          "(default: no limit)");
// Defined by `manifold sub`, which binds to a durable consumer by it.
ABSL_DECLARE_FLAG(std::string, consumer);

ABSL_FLAG(std::string, storage, "",
          "stream add: 'file' (on the broker's disk, the default) or "
          "'memory' (lost when the broker stops)");

namespace manifold::cli {
namespace {

constexpr absl::string_view kSynopsis =
    "stream add NAME --topics P[,P] [--max-msgs N] [--max-msgs-per-topic N] "
    "[--max-bytes B] [--max-age D] [--storage file|memory] | stream ls | "
    "stream info|purge|rm NAME | stream rm NAME --consumer C";

// The flags only `stream add` reads, dashed as people type them.
constexpr absl::string_view kAddFlags =
    "--topics, --max-msgs, --max-msgs-per-topic, --max-bytes, --max-age and "
    "--storage";

bool AddFlagsGiven() {
  return !absl::GetFlag(FLAGS_topics).empty() ||
         !absl::GetFlag(FLAGS_max_msgs).empty() ||
         !absl::GetFlag(FLAGS_max_msgs_per_topic).empty() ||
         !absl::GetFlag(FLAGS_max_bytes).empty() ||
         !absl::GetFlag(FLAGS_max_age).empty() ||
         !absl::GetFlag(FLAGS_storage).empty();
}

// Sends `request` and returns the broker's answer.
absl::StatusOr<Message> Ask(CommandContext& context,
                            const SysRequest& request) {
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  if (timeout <= absl::ZeroDuration()) {
    return UsageError("--timeout must be positive, e.g. 500ms or 2s");
  }
  absl::StatusOr<std::unique_ptr<Client>> client = context.Connect();
  if (!client.ok()) return client.status();
  absl::StatusOr<Message> reply =
      (*client)->Request(request.topic, request.payload, timeout);
  if (!reply.ok()) return StreamRequestFailed(request, reply.status());
  return reply;
}

// Sends `request` and prints the StreamInfo the broker answers with.
absl::Status AskAndPrintInfo(CommandContext& context,
                             const SysRequest& request) {
  absl::StatusOr<Message> reply = Ask(context, request);
  if (!reply.ok()) return reply.status();
  absl::StatusOr<wire::StreamInfo> info = ParseStreamInfo(request, *reply);
  if (!info.ok()) return info.status();
  context.Print(FormatStreamInfo(*info, context.json()));
  return absl::OkStatus();
}

absl::Status Add(CommandContext& context, const std::string& name) {
  StreamAddFlags flags;
  flags.topics = absl::GetFlag(FLAGS_topics);
  flags.max_msgs = absl::GetFlag(FLAGS_max_msgs);
  flags.max_msgs_per_topic = absl::GetFlag(FLAGS_max_msgs_per_topic);
  flags.max_bytes = absl::GetFlag(FLAGS_max_bytes);
  flags.max_age = absl::GetFlag(FLAGS_max_age);
  flags.storage = absl::GetFlag(FLAGS_storage);
  absl::StatusOr<wire::StreamConfig> config = ParseStreamConfig(name, flags);
  if (!config.ok()) return config.status();
  return AskAndPrintInfo(context, AddStreamRequest(*config));
}

absl::Status List(CommandContext& context) {
  const SysRequest request = ListStreamsRequest();
  absl::StatusOr<Message> reply = Ask(context, request);
  if (!reply.ok()) return reply.status();
  absl::StatusOr<wire::StreamList> list = ParseStreamList(request, *reply);
  if (!list.ok()) return list.status();
  // One JSON object per stream: an empty list prints nothing.
  if (context.json() && list->streams().empty()) return absl::OkStatus();
  context.Print(FormatStreamList(*list, context.json()));
  return absl::OkStatus();
}

absl::Status Remove(CommandContext& context, const std::string& name) {
  absl::StatusOr<Message> reply = Ask(context, RemoveStreamRequest(name));
  if (!reply.ok()) return reply.status();
  context.Print(context.json()
                    ? JsonObject().Add("removed", Printable(name)).str()
                    : absl::StrCat("removed stream ", Printable(name)));
  return absl::OkStatus();
}

absl::Status RemoveConsumer(CommandContext& context, const std::string& stream,
                            const std::string& consumer) {
  absl::StatusOr<Message> reply =
      Ask(context, RemoveConsumerRequest(stream, consumer));
  if (!reply.ok()) return reply.status();
  context.Print(context.json()
                    ? JsonObject()
                          .Add("stream", Printable(stream))
                          .Add("removed_consumer", Printable(consumer))
                          .str()
                    : absl::StrCat("removed consumer ", Printable(consumer),
                                   " of stream ", Printable(stream)));
  return absl::OkStatus();
}

absl::Status RunStream(CommandContext& context) {
  const std::vector<std::string>& args = context.args();
  const std::string verb = args.empty() ? "" : args[0];
  const bool takes_name =
      verb == "add" || verb == "info" || verb == "purge" || verb == "rm";
  if (!takes_name && verb != "ls") {
    return UsageError(absl::StrCat(
        args.empty() ? "expects an action"
                     : absl::StrCat("has no action '", Printable(verb), "'"),
        ": add, ls, info, purge or rm (usage: manifold ", kSynopsis, ")"));
  }
  if (AddFlagsGiven() && verb != "add") {
    return UsageError(absl::StrCat(
        kAddFlags, " apply to 'stream add' only, not 'stream ", verb, "'"));
  }
  const std::string consumer = absl::GetFlag(FLAGS_consumer);
  if (!consumer.empty() && verb != "rm") {
    return UsageError(absl::StrCat(
        "--consumer applies to 'stream rm' only, not 'stream ", verb, "'"));
  }
  if (takes_name && args.size() < 2) {
    return UsageError(absl::StrCat("'stream ", verb,
                                   "' expects the stream's NAME (usage: "
                                   "manifold ",
                                   kSynopsis, ")"));
  }
  if (args.size() > (takes_name ? 2u : 1u)) {
    return UsageError(absl::StrCat("'stream ", verb, "' takes ",
                                   takes_name ? "only NAME" : "no arguments",
                                   ", not '", Printable(args.back()),
                                   "' (usage: manifold ", kSynopsis, ")"));
  }
  if (verb == "ls") return List(context);
  const std::string& name = args[1];
  if (verb == "add") return Add(context, name);
  if (verb == "info") return AskAndPrintInfo(context, StreamInfoRequest(name));
  if (verb == "purge") {
    return AskAndPrintInfo(context, PurgeStreamRequest(name));
  }
  if (!consumer.empty()) return RemoveConsumer(context, name, consumer);
  return Remove(context, name);
}

}  // namespace

Command StreamCommand() {
  return {"stream",
          std::string(kSynopsis),
          "manage durable streams: add, list, describe, empty or remove "
          "one, or remove one of its durable consumers",
          {"topics", "max_msgs", "max_msgs_per_topic", "max_bytes", "max_age",
           "storage", "consumer", "timeout"},
          RunStream};
}

}  // namespace manifold::cli
