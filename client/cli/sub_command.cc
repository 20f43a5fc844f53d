// manifold sub PATTERN [--queue G] [--count N] [--noreconnect]
//              [--stream S] [--from-seq N | --since D | --last N |
//               --last-per-topic]
// prints each message published on a topic that PATTERN matches, one per
// line, until interrupted or N messages have arrived. A lost connection is
// restored (ClientOptions::reconnect): a network blip loses nothing, and
// after a broker restart it subscribes again.
//
// With a replay flag it first prints what a durable stream stored (stream
// S, or the one stream that captures PATTERN) from that point, then the
// live messages, each with its stream sequence and time; after a broker
// restart it goes on after the last message it printed.
//
// With --consumer NAME it takes the messages of that durable consumer of the
// stream (created at the replay's start, by default the stream's first
// message, when it does not exist yet) and acknowledges each once printed:
// stopped and started again, it goes on where the consumer is, and messages
// printed but not acknowledged come again marked redelivered.

#include <cstdio>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/cli/command.h"
#include "client/cli/flags.h"
#include "client/cli/format.h"
#include "client/cli/stream_flags.h"

ABSL_FLAG(std::string, queue, "",
          "sub: join this queue group (each message goes to one member)");
ABSL_FLAG(std::string, stream, "",
          "sub: the durable stream to read (default with a flag below: the "
          "one stream that captures PATTERN); alone, its new messages with "
          "their sequences");
ABSL_FLAG(std::string, from_seq, "",
          "sub: replay the stream from this sequence on (1: all it holds)");
ABSL_FLAG(std::string, since, "",
          "sub: replay what the stream stored in the last DURATION (30s, "
          "10m, 2h, 7d) or since an RFC 3339 time");
ABSL_FLAG(std::string, last, "", "sub: replay the stream's last N messages");
ABSL_FLAG(bool, last_per_topic, false,
          "sub: replay the stream's last message of each topic");
ABSL_FLAG(std::string, consumer, "",
          "sub: take the messages of this durable consumer of the stream, "
          "acknowledging each once printed");
ABSL_FLAG(std::string, ack_wait, "",
          "sub --consumer: redeliver a message not acknowledged this long "
          "after it was sent (default: the broker's, 30s)");
ABSL_FLAG(std::string, max_in_flight, "",
          "sub --consumer: most messages sent and not yet acknowledged "
          "(default: the broker's, 1000)");
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
  ReplayFlags replay_flags;
  replay_flags.stream = absl::GetFlag(FLAGS_stream);
  replay_flags.from_seq = absl::GetFlag(FLAGS_from_seq);
  replay_flags.since = absl::GetFlag(FLAGS_since);
  replay_flags.last = absl::GetFlag(FLAGS_last);
  replay_flags.last_per_topic = absl::GetFlag(FLAGS_last_per_topic);
  SubscribeOptions subscribe;
  subscribe.queue_group = absl::GetFlag(FLAGS_queue);
  absl::StatusOr<std::optional<Replay>> replay =
      ParseReplayFlags(replay_flags, absl::Now());
  if (!replay.ok()) return replay.status();
  subscribe.replay = *std::move(replay);
  if (subscribe.replay.has_value() && !subscribe.queue_group.empty()) {
    return UsageError(
        "--queue does not go with a replay: a replaying subscription reads "
        "the whole stream by itself");
  }
  const std::string consumer = absl::GetFlag(FLAGS_consumer);
  if (!consumer.empty()) {
    if (!subscribe.queue_group.empty()) {
      return UsageError(
          "--queue does not go with --consumer: subscriptions of the same "
          "consumer already share its messages");
    }
    ConsumerOptions c;
    c.name = consumer;
    if (const std::string wait = absl::GetFlag(FLAGS_ack_wait); !wait.empty()) {
      absl::StatusOr<absl::Duration> d = ParseAge("--ack-wait", wait);
      if (!d.ok()) return d.status();
      c.ack_wait = *d;
    }
    if (const std::string n = absl::GetFlag(FLAGS_max_in_flight); !n.empty()) {
      absl::StatusOr<uint64_t> v = ParseCount("--max-in-flight", n, 1);
      if (!v.ok()) return v.status();
      c.max_in_flight = *v;
    }
    // With --count N no more than N are taken from the consumer: the rest
    // stay for its other subscribers (or the next run), not redelivered.
    if (count > 0 && (c.max_in_flight == 0 ||
                      c.max_in_flight > static_cast<uint64_t>(count))) {
      c.max_in_flight = static_cast<uint64_t>(count);
    }
    subscribe.consumer = std::move(c);
    // A new consumer starts at the stream's first message unless a replay
    // flag says where.
    if (replay_flags.from_seq.empty() && replay_flags.since.empty() &&
        replay_flags.last.empty() && !replay_flags.last_per_topic) {
      Replay from_start;
      from_start.stream = replay_flags.stream;
      from_start.start = Replay::FromSeq{1};
      subscribe.replay = std::move(from_start);
    }
  } else if (!absl::GetFlag(FLAGS_ack_wait).empty() ||
             !absl::GetFlag(FLAGS_max_in_flight).empty()) {
    return UsageError("--ack-wait and --max-in-flight go with --consumer");
  }
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
      (*client)->Subscribe(context.args()[0], subscribe);
  if (!sub.ok()) return sub.status();
  if (count > 0 && !subscribe.consumer.has_value()) {
    // The broker stops sending after N, even while we are still printing.
    // (A consumer's subscription instead takes no more than N in flight and
    // must stay until its last acknowledgement is in.)
    if (absl::Status s = (*sub)->AutoUnsubscribe(count); !s.ok()) return s;
  }
  for (int64_t received = 0; count == 0 || received < count;) {
    if (context.stop_requested()) return absl::OkStatus();
    absl::StatusOr<Message> m = (*sub)->Next(kPollInterval);
    if (absl::IsDeadlineExceeded(m.status())) continue;
    if (!m.ok()) return m.status();
    context.Print(FormatMessage(*m, context.json()));
    if (subscribe.consumer.has_value()) {
      // Printed: done with. Not waited for (a refusal goes to on_error),
      // but for the last one, so that it is in before we leave.
      const uint64_t seq = m->stream_seq;
      const bool last = count > 0 && received + 1 == count;
      if (absl::Status s = (*sub)->Ack({&seq, 1}, /*wait=*/last); !s.ok()) {
        return s;
      }
    }
    ++received;
  }
  return absl::OkStatus();
}

}  // namespace

Command SubCommand() {
  return {"sub",
          "sub PATTERN [--queue G] [--count N] [--noreconnect] [--stream S] "
          "[--from-seq N | --since D | --last N | --last-per-topic] "
          "[--consumer NAME [--ack-wait D] [--max-in-flight N]]",
          "print messages on topics matching PATTERN ('*' one segment, '**' "
          "any); a replay flag first prints what a durable stream stored",
          {"queue", "count", "reconnect", "stream", "from_seq", "since", "last",
           "last_per_topic", "consumer", "ack_wait", "max_in_flight"},
          RunSub};
}

}  // namespace manifold::cli
