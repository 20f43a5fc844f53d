#include "client/cli/stream_flags.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/cli/command.h"

namespace manifold::cli {
namespace {

// Parses a whole decimal number with nothing around it (SimpleAtoi would
// also take "+5" and " 5").
bool ParseDecimal(absl::string_view text, uint64_t* value) {
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), absl::ascii_isdigit)) {
    return false;
  }
  return absl::SimpleAtoi(text, value);
}

struct Unit {
  absl::string_view name;
  uint64_t bytes;
};

constexpr uint64_t kKi = uint64_t{1} << 10;
constexpr Unit kUnits[] = {
    {"", 1},
    {"b", 1},
    {"k", kKi},
    {"kb", 1000},
    {"kib", kKi},
    {"m", kKi* kKi},
    {"mb", 1000 * 1000},
    {"mib", kKi* kKi},
    {"g", kKi* kKi* kKi},
    {"gb", 1000 * 1000 * 1000},
    {"gib", kKi* kKi* kKi},
    {"t", kKi* kKi* kKi* kKi},
    {"tb", uint64_t{1000} * 1000 * 1000 * 1000},
    {"tib", kKi* kKi* kKi* kKi},
};

}  // namespace

absl::StatusOr<uint64_t> ParseCount(absl::string_view flag,
                                    absl::string_view text, uint64_t min) {
  uint64_t value = 0;
  if (!ParseDecimal(text, &value)) {
    return UsageError(
        absl::StrCat(flag, " takes a whole number, not '", text, "'"));
  }
  if (value < min) {
    return UsageError(
        absl::StrCat(flag, " must be at least ", min, ", not ", value));
  }
  return value;
}

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view flag,
                                       absl::string_view text) {
  const size_t digits =
      std::find_if_not(text.begin(), text.end(), absl::ascii_isdigit) -
      text.begin();
  const absl::string_view number = text.substr(0, digits);
  const std::string unit = absl::AsciiStrToLower(text.substr(digits));
  uint64_t value = 0;
  const Unit* found = nullptr;
  for (const Unit& u : kUnits) {
    if (u.name == unit) found = &u;
  }
  if (!ParseDecimal(number, &value) || found == nullptr) {
    return UsageError(absl::StrCat(
        flag,
        " takes a whole number of bytes with an optional unit (B, KB, "
        "MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 512, 10MB or 1GiB; not '",
        text, "'"));
  }
  if (value > std::numeric_limits<uint64_t>::max() / found->bytes) {
    return UsageError(absl::StrCat(flag, " ", text, " is too large"));
  }
  return value * found->bytes;
}

absl::StatusOr<absl::Duration> ParseAge(absl::string_view flag,
                                        absl::string_view text) {
  absl::Duration age;
  uint64_t days = 0;
  absl::string_view day_count = text;
  if (absl::ConsumeSuffix(&day_count, "d") && ParseDecimal(day_count, &days) &&
      days <= 365 * 1000) {
    age = absl::Hours(24) * static_cast<int64_t>(days);
  } else if (!absl::ParseDuration(text, &age)) {
    return UsageError(absl::StrCat(
        flag, " takes a duration such as 30s, 10m, 2h, 1h30m or 7d; not '",
        text, "'"));
  }
  if (age <= absl::ZeroDuration() || age == absl::InfiniteDuration()) {
    return UsageError(absl::StrCat(flag,
                                   " must be a positive, finite "
                                   "duration, not '",
                                   text, "'"));
  }
  return age;
}

absl::StatusOr<std::optional<Replay>> ParseReplayFlags(const ReplayFlags& flags,
                                                       absl::Time now) {
  std::vector<std::string> starts;
  if (!flags.from_seq.empty()) starts.push_back("--from-seq");
  if (!flags.since.empty()) starts.push_back("--since");
  if (!flags.last.empty()) starts.push_back("--last");
  if (flags.last_per_topic) starts.push_back("--last-per-topic");
  if (starts.size() > 1) {
    return UsageError(absl::StrCat(
        "give one of --from-seq, --since, --last and --last-per-topic, not ",
        absl::StrJoin(starts, " and ")));
  }
  if (starts.empty() && flags.stream.empty()) return std::nullopt;
  Replay replay;
  replay.stream = flags.stream;
  if (starts.empty()) {
    replay.start = Replay::New{};
  } else if (!flags.from_seq.empty()) {
    absl::StatusOr<uint64_t> seq = ParseCount("--from-seq", flags.from_seq, 1);
    if (!seq.ok()) return seq.status();
    replay.start = Replay::FromSeq{*seq};
  } else if (!flags.last.empty()) {
    absl::StatusOr<uint64_t> count = ParseCount("--last", flags.last, 1);
    if (!count.ok()) return count.status();
    replay.start = Replay::Last{*count};
  } else if (flags.last_per_topic) {
    replay.start = Replay::LastPerTopic{};
  } else {
    absl::Time since;
    std::string why;
    if (absl::ParseTime(absl::RFC3339_full, flags.since, &since, &why)) {
      replay.start = Replay::Since{since};
    } else {
      absl::StatusOr<absl::Duration> ago = ParseAge("--since", flags.since);
      if (!ago.ok()) {
        return UsageError(absl::StrCat(
            "--since takes a duration back from now (30s, 10m, 2h, 7d) or an "
            "RFC 3339 time (2026-12-03T10:00:00Z); not '",
            flags.since, "'"));
      }
      replay.start = Replay::Since{now - *ago};
    }
  }
  return replay;
}

absl::StatusOr<wire::StreamConfig> ParseStreamConfig(
    absl::string_view name, const StreamAddFlags& flags) {
  wire::StreamConfig config;
  config.set_name(std::string(name));
  if (flags.topics.empty()) {
    return UsageError(
        "a stream needs --topics: the patterns of the topics it stores, "
        "comma-separated, e.g. --topics 'orders/**,refunds/*'");
  }
  for (absl::string_view pattern : absl::StrSplit(flags.topics, ',')) {
    pattern = absl::StripAsciiWhitespace(pattern);
    if (pattern.empty()) {
      return UsageError(
          absl::StrCat("--topics '", flags.topics, "' holds an empty pattern"));
    }
    config.add_topics(std::string(pattern));
  }
  if (!flags.max_msgs.empty()) {
    absl::StatusOr<uint64_t> n = ParseCount("--max-msgs", flags.max_msgs, 0);
    if (!n.ok()) return n.status();
    config.set_max_msgs(*n);
  }
  if (!flags.max_msgs_per_topic.empty()) {
    absl::StatusOr<uint64_t> n =
        ParseCount("--max-msgs-per-topic", flags.max_msgs_per_topic, 0);
    if (!n.ok()) return n.status();
    config.set_max_msgs_per_topic(*n);
  }
  if (!flags.max_bytes.empty()) {
    absl::StatusOr<uint64_t> n = ParseByteSize("--max-bytes", flags.max_bytes);
    if (!n.ok()) return n.status();
    config.set_max_bytes(*n);
  }
  if (!flags.max_age.empty() && flags.max_age != "0") {
    absl::StatusOr<absl::Duration> age = ParseAge("--max-age", flags.max_age);
    if (!age.ok()) return age.status();
    if (*age < absl::Milliseconds(1)) {
      return UsageError("--max-age must be at least 1ms");
    }
    config.set_max_age_ms(
        static_cast<uint64_t>(absl::ToInt64Milliseconds(*age)));
  }
  if (flags.storage.empty() || flags.storage == "file") {
    config.set_storage(wire::STORAGE_FILE);
  } else if (flags.storage == "memory") {
    config.set_storage(wire::STORAGE_MEMORY);
  } else {
    return UsageError(absl::StrCat("--storage is 'file' or 'memory', not '",
                                   flags.storage, "'"));
  }
  return config;
}

}  // namespace manifold::cli
