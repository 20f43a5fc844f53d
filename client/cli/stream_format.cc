#include "client/cli/stream_format.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/cli/format.h"
#include "client/cli/json.h"

namespace manifold::cli {
namespace {

// `text` as a JSON string; shown escaped when it is not UTF-8.
std::string TextJson(absl::string_view text) {
  return JsonString(IsUtf8(text) ? std::string(text) : Printable(text));
}

std::string TimeJson(int64_t unix_ms) {
  return unix_ms == 0
             ? "null"
             : JsonString(FormatTimestamp(absl::FromUnixMillis(unix_ms)));
}

std::string TimeText(int64_t unix_ms) {
  return unix_ms == 0 ? "-" : FormatTimestamp(absl::FromUnixMillis(unix_ms));
}

std::string TopicsText(const wire::StreamConfig& config) {
  std::vector<std::string> topics;
  for (const std::string& t : config.topics()) topics.push_back(Printable(t));
  return absl::StrJoin(topics, ",");
}

std::string LimitText(uint64_t limit) {
  return limit == 0 ? "none" : absl::StrCat(limit);
}

std::string ConsumerJson(const wire::ConsumerState& c) {
  return JsonObject()
      .AddRaw("name", TextJson(c.name()))
      .AddRaw("pattern", TextJson(c.pattern()))
      .Add("ack_wait_ms", uint64_t{c.ack_wait_ms()})
      .Add("max_in_flight", uint64_t{c.max_in_flight()})
      .Add("ack_floor", uint64_t{c.ack_floor()})
      .Add("delivered_high", uint64_t{c.delivered_high()})
      .Add("in_flight", uint64_t{c.in_flight()})
      .Add("members", uint64_t{c.members()})
      .AddRaw("deliver_topic", TextJson(c.deliver_topic()))
      .AddRaw("deliver_group", TextJson(c.deliver_group()))
      .Add("ack_all", c.ack_all())
      .Add("ack_none", c.ack_none())
      .Add("idle_heartbeat_ms", uint64_t{c.idle_heartbeat_ms()})
      .Add("flow_control", c.flow_control())
      .Add("inactive_threshold_ms", uint64_t{c.inactive_threshold_ms()})
      .str();
}

std::string ConsumerText(const wire::ConsumerState& c) {
  std::string text = absl::StrCat(
      Printable(c.name()), " pattern=", Printable(c.pattern()),
      " ack_floor=", c.ack_floor(), " delivered_high=", c.delivered_high(),
      " in_flight=", c.in_flight(), " members=", c.members());
  // A NATS push consumer: where it delivers.
  if (!c.deliver_topic().empty()) {
    absl::StrAppend(&text, " deliver_topic=", Printable(c.deliver_topic()));
  }
  if (!c.deliver_group().empty()) {
    absl::StrAppend(&text, " deliver_group=", Printable(c.deliver_group()));
  }
  if (c.ack_all()) absl::StrAppend(&text, " ack_all");
  if (c.ack_none()) absl::StrAppend(&text, " ack_none");
  if (c.idle_heartbeat_ms() > 0) {
    absl::StrAppend(&text, " idle_heartbeat_ms=", c.idle_heartbeat_ms());
  }
  if (c.flow_control()) absl::StrAppend(&text, " flow_control");
  // An ephemeral consumer: how long it stays unused.
  if (c.inactive_threshold_ms() > 0) {
    absl::StrAppend(&text,
                    " inactive_threshold_ms=", c.inactive_threshold_ms());
  }
  return text;
}

std::string InfoJson(const wire::StreamInfo& info) {
  const wire::StreamConfig& config = info.config();
  std::vector<std::string> topics;
  for (const std::string& t : config.topics()) topics.push_back(TextJson(t));
  JsonObject o;
  o.AddRaw("name", TextJson(config.name()))
      .Add("storage", StorageName(config.storage()))
      .AddRaw("topics", absl::StrCat("[", absl::StrJoin(topics, ","), "]"))
      .Add("max_msgs", uint64_t{config.max_msgs()})
      .Add("max_msgs_per_topic", uint64_t{config.max_msgs_per_topic()})
      .Add("max_bytes", uint64_t{config.max_bytes()})
      .Add("max_age_ms", uint64_t{config.max_age_ms()})
      .Add("messages", uint64_t{info.messages()})
      .Add("bytes", uint64_t{info.bytes()})
      .Add("first_seq", uint64_t{info.first_seq()})
      .Add("last_seq", uint64_t{info.last_seq()})
      .AddRaw("first_time", TimeJson(info.first_time_unix_ms()))
      .AddRaw("last_time", TimeJson(info.last_time_unix_ms()))
      .Add("expired", uint64_t{info.expired()});
  std::vector<std::string> consumers;
  for (const wire::ConsumerState& c : info.consumers()) {
    consumers.push_back(ConsumerJson(c));
  }
  o.AddRaw("consumers", absl::StrCat("[", absl::StrJoin(consumers, ","), "]"));
  return o.str();
}

// Lines of `rows` with each column as wide as its widest cell plus two
// spaces (none after the last); columns from `first_numeric` on are aligned
// right.
std::string Table(const std::vector<std::vector<std::string>>& rows,
                  size_t first_numeric) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::vector<std::string> lines;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      const std::string pad(widths[i] - row[i].size(), ' ');
      if (i > 0) line += "  ";
      if (i >= first_numeric) {
        absl::StrAppend(&line, pad, row[i]);
      } else if (i + 1 < row.size()) {
        absl::StrAppend(&line, row[i], pad);
      } else {
        line += row[i];
      }
    }
    lines.push_back(std::move(line));
  }
  return absl::StrJoin(lines, "\n");
}

}  // namespace

std::string StorageName(wire::StorageKind storage) {
  switch (storage) {
    case wire::STORAGE_FILE:
      return "file";
    case wire::STORAGE_MEMORY:
      return "memory";
    default:
      return absl::StrCat("STORAGE_", static_cast<int>(storage));
  }
}

std::string FormatStreamInfo(const wire::StreamInfo& info, bool json) {
  if (json) return InfoJson(info);
  const wire::StreamConfig& config = info.config();
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"name", Printable(config.name())},
      {"storage", StorageName(config.storage())},
      {"topics", TopicsText(config)},
      {"max_msgs", LimitText(config.max_msgs())},
      {"max_msgs_per_topic", LimitText(config.max_msgs_per_topic())},
      {"max_bytes", LimitText(config.max_bytes())},
      {"max_age", config.max_age_ms() == 0
                      ? std::string("none")
                      : absl::FormatDuration(absl::Milliseconds(
                            static_cast<int64_t>(config.max_age_ms())))},
      {"messages", absl::StrCat(info.messages())},
      {"bytes", absl::StrCat(info.bytes())},
      {"first_seq", absl::StrCat(info.first_seq())},
      {"last_seq", absl::StrCat(info.last_seq())},
      {"first_time", TimeText(info.first_time_unix_ms())},
      {"last_time", TimeText(info.last_time_unix_ms())},
      {"expired", absl::StrCat(info.expired())},
  };
  std::vector<std::vector<std::string>> rows;
  for (const auto& [key, value] : fields) rows.push_back({key, value});
  for (const wire::ConsumerState& c : info.consumers()) {
    rows.push_back({"consumer", ConsumerText(c)});
  }
  return Table(rows, /*first_numeric=*/2);
}

std::string FormatStreamList(const wire::StreamList& list, bool json) {
  if (json) {
    std::vector<std::string> lines;
    for (const wire::StreamInfo& info : list.streams()) {
      lines.push_back(InfoJson(info));
    }
    return absl::StrJoin(lines, "\n");
  }
  if (list.streams().empty()) return "no streams";
  std::vector<std::vector<std::string>> rows = {{"NAME", "STORAGE", "TOPICS",
                                                 "MESSAGES", "BYTES",
                                                 "FIRST_SEQ", "LAST_SEQ"}};
  for (const wire::StreamInfo& info : list.streams()) {
    rows.push_back({Printable(info.config().name()),
                    StorageName(info.config().storage()),
                    TopicsText(info.config()), absl::StrCat(info.messages()),
                    absl::StrCat(info.bytes()), absl::StrCat(info.first_seq()),
                    absl::StrCat(info.last_seq())});
  }
  return Table(rows, /*first_numeric=*/3);
}

}  // namespace manifold::cli
