// File: client/cli/stream_flags.h
// -----------------------------------------------------------------------------
//
// What the stream flags of `manifold` mean, as pure functions of their text
// (so they are tested without a broker):
//
//   manifold sub 'orders/**' --stream orders --last 10
//   manifold sub 'orders/**' --since 2h          (or --from-seq N,
//                                                 --last-per-topic)
//   manifold stream add orders --topics 'orders/**,refunds/*'
//       --max-msgs 1000000 --max-bytes 1GiB --max-age 7d --storage file
//
// Example:
//
//   ReplayFlags flags;
//   flags.last = "10";
//   absl::StatusOr<std::optional<Replay>> replay =
//       ParseReplayFlags(flags, absl::Now());  // Replay{.start = Last{10}}

#ifndef MANIFOLD_CLIENT_CLI_STREAM_FLAGS_H_
#define MANIFOLD_CLIENT_CLI_STREAM_FLAGS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/session.h"
#include "core/manifold.pb.h"

namespace manifold::cli {

// A count such as --from-seq or --max-msgs: a decimal number, at least
// `min`. Errors name `flag` (e.g. "--last").
absl::StatusOr<uint64_t> ParseCount(absl::string_view flag,
                                    absl::string_view text, uint64_t min);

// A size in bytes: a whole number with an optional unit, B, KB/MB/GB/TB
// (powers of 1000), KiB/MiB/GiB/TiB (powers of 1024); K/M/G/T alone are
// the binary ones. Units are case-insensitive: "512", "10MB", "1GiB", "64k".
absl::StatusOr<uint64_t> ParseByteSize(absl::string_view flag,
                                       absl::string_view text);

// A positive duration as absl::ParseDuration reads it ("90s", "10m",
// "1h30m"), or a whole number of days ("7d"). Errors name `flag`.
absl::StatusOr<absl::Duration> ParseAge(absl::string_view flag,
                                        absl::string_view text);

// The replay flags of `manifold sub`, as given (empty: not given).
struct ReplayFlags {
  std::string stream;
  std::string from_seq;
  // A duration back from now ("10m", "2h", "30s", "7d") or an RFC 3339
  // time ("2026-12-03T10:00:00Z").
  std::string since;
  std::string last;
  bool last_per_topic = false;
};

// Returns the Replay the flags ask for, nullopt when they ask for none, or
// a usage error: more than one start, a value that does not parse. --stream
// alone is Replay::New (the stream's new messages, with their sequences).
// `now` turns --since DURATION into a time.
absl::StatusOr<std::optional<Replay>> ParseReplayFlags(const ReplayFlags& flags,
                                                       absl::Time now);

// The flags of `manifold stream add`, as given (empty: not given). For the
// four limits, 0 means none, as when not given.
struct StreamAddFlags {
  // Comma-separated patterns; required.
  std::string topics;
  std::string max_msgs;
  std::string max_msgs_per_topic;
  std::string max_bytes;
  std::string max_age;
  // "file" (the default) or "memory".
  std::string storage;
};

// Returns the StreamConfig of `manifold stream add NAME` with `flags`, or a
// usage error naming the flag at fault. The broker checks the name and the
// patterns themselves and says what is wrong with them.
absl::StatusOr<wire::StreamConfig> ParseStreamConfig(
    absl::string_view name, const StreamAddFlags& flags);

}  // namespace manifold::cli

#endif  // MANIFOLD_CLIENT_CLI_STREAM_FLAGS_H_
