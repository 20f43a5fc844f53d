#include "client/cli/stream_flags.h"

#include <optional>
#include <variant>

#include "absl/time/time.h"
#include "client/cli/command.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1764768300);

// Expects `status` to be a usage error whose message holds `words`.
void ExpectUsageError(const absl::Status& status, absl::string_view words) {
  EXPECT_TRUE(IsUsageError(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr(words));
}

TEST(ParseCountTest, TakesWholeNumbersFromTheMinimum) {
  EXPECT_EQ(*ParseCount("--last", "12", 1), 12u);
  EXPECT_EQ(*ParseCount("--max-msgs", "0", 0), 0u);
  ExpectUsageError(ParseCount("--last", "0", 1).status(),
                   "--last must be at least 1, not 0");
  for (const char* bad :
       {"", "-1", "+3", " 3", "3x", "1.5", "99999999999999999999"}) {
    ExpectUsageError(ParseCount("--last", bad, 1).status(),
                     "--last takes a whole number");
  }
}

TEST(ParseByteSizeTest, TakesDecimalAndBinaryUnits) {
  EXPECT_EQ(*ParseByteSize("--max-bytes", "512"), 512u);
  EXPECT_EQ(*ParseByteSize("--max-bytes", "512B"), 512u);
  EXPECT_EQ(*ParseByteSize("--max-bytes", "10MB"), 10'000'000u);
  EXPECT_EQ(*ParseByteSize("--max-bytes", "10mb"), 10'000'000u);
  EXPECT_EQ(*ParseByteSize("--max-bytes", "64k"), 65'536u);
  EXPECT_EQ(*ParseByteSize("--max-bytes", "1GiB"), uint64_t{1} << 30);
  EXPECT_EQ(*ParseByteSize("--max-bytes", "2TB"), 2'000'000'000'000u);
  ExpectUsageError(ParseByteSize("--max-bytes", "10QB").status(),
                   "--max-bytes takes a whole number of bytes");
  ExpectUsageError(ParseByteSize("--max-bytes", "MB").status(), "not 'MB'");
  ExpectUsageError(ParseByteSize("--max-bytes", "1.5GB").status(),
                   "not '1.5GB'");
  ExpectUsageError(ParseByteSize("--max-bytes", "20000000TiB").status(),
                   "--max-bytes 20000000TiB is too large");
}

TEST(ParseAgeTest, TakesDurationsAndDays) {
  EXPECT_EQ(*ParseAge("--max-age", "30s"), absl::Seconds(30));
  EXPECT_EQ(*ParseAge("--max-age", "1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseAge("--max-age", "7d"), absl::Hours(7 * 24));
  ExpectUsageError(ParseAge("--max-age", "0s").status(),
                   "--max-age must be a positive, finite duration");
  ExpectUsageError(ParseAge("--max-age", "-5m").status(), "positive");
  ExpectUsageError(ParseAge("--max-age", "inf").status(), "finite");
  ExpectUsageError(ParseAge("--max-age", "soon").status(),
                   "--max-age takes a duration such as 30s");
}

TEST(ParseReplayFlagsTest, NoFlagsMeanNoReplay) {
  absl::StatusOr<std::optional<Replay>> replay =
      ParseReplayFlags(ReplayFlags(), kNow);
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_FALSE(replay->has_value());
}

TEST(ParseReplayFlagsTest, EachStartFlagGivesItsStart) {
  ReplayFlags flags;
  flags.stream = "orders";
  flags.from_seq = "42";
  absl::StatusOr<std::optional<Replay>> replay = ParseReplayFlags(flags, kNow);
  ASSERT_TRUE(replay.ok() && replay->has_value()) << replay.status();
  EXPECT_EQ((*replay)->stream, "orders");
  ASSERT_TRUE(std::holds_alternative<Replay::FromSeq>((*replay)->start));
  EXPECT_EQ(std::get<Replay::FromSeq>((*replay)->start).seq, 42u);

  flags = ReplayFlags();
  flags.last = "2";
  replay = ParseReplayFlags(flags, kNow);
  ASSERT_TRUE(replay.ok() && replay->has_value());
  EXPECT_EQ((*replay)->stream, "");
  EXPECT_EQ(std::get<Replay::Last>((*replay)->start).count, 2u);

  flags = ReplayFlags();
  flags.last_per_topic = true;
  replay = ParseReplayFlags(flags, kNow);
  ASSERT_TRUE(replay.ok() && replay->has_value());
  EXPECT_TRUE(std::holds_alternative<Replay::LastPerTopic>((*replay)->start));
}

TEST(ParseReplayFlagsTest, SinceIsADurationBackFromNowOrAnAbsoluteTime) {
  ReplayFlags flags;
  flags.since = "10m";
  absl::StatusOr<std::optional<Replay>> replay = ParseReplayFlags(flags, kNow);
  ASSERT_TRUE(replay.ok() && replay->has_value()) << replay.status();
  EXPECT_EQ(std::get<Replay::Since>((*replay)->start).time,
            kNow - absl::Minutes(10));

  flags.since = "2d";
  replay = ParseReplayFlags(flags, kNow);
  ASSERT_TRUE(replay.ok() && replay->has_value());
  EXPECT_EQ(std::get<Replay::Since>((*replay)->start).time,
            kNow - absl::Hours(48));

  flags.since = "2025-12-03T10:00:00.5Z";
  replay = ParseReplayFlags(flags, kNow);
  ASSERT_TRUE(replay.ok() && replay->has_value());
  EXPECT_EQ(std::get<Replay::Since>((*replay)->start).time,
            absl::FromUnixMillis(1764756000500));

  flags.since = "yesterday";
  ExpectUsageError(ParseReplayFlags(flags, kNow).status(),
                   "--since takes a duration back from now");
  flags.since = "-10m";
  ExpectUsageError(ParseReplayFlags(flags, kNow).status(), "not '-10m'");
}

TEST(ParseReplayFlagsTest, StartsAreMutuallyExclusive) {
  ReplayFlags flags;
  flags.from_seq = "1";
  flags.last = "3";
  flags.last_per_topic = true;
  ExpectUsageError(ParseReplayFlags(flags, kNow).status(),
                   "give one of --from-seq, --since, --last and "
                   "--last-per-topic, not --from-seq and --last and "
                   "--last-per-topic");
}

TEST(ParseReplayFlagsTest, AStreamAloneMeansItsNewMessages) {
  ReplayFlags flags;
  flags.stream = "orders";
  absl::StatusOr<std::optional<Replay>> replay = ParseReplayFlags(flags, kNow);
  ASSERT_TRUE(replay.ok() && replay->has_value()) << replay.status();
  EXPECT_EQ((*replay)->stream, "orders");
  EXPECT_TRUE(std::holds_alternative<Replay::New>((*replay)->start));
}

TEST(ParseReplayFlagsTest, BadNumbersAreNamed) {
  ReplayFlags flags;
  flags.from_seq = "0";
  ExpectUsageError(ParseReplayFlags(flags, kNow).status(),
                   "--from-seq must be at least 1");
  flags = ReplayFlags();
  flags.last = "many";
  ExpectUsageError(ParseReplayFlags(flags, kNow).status(),
                   "--last takes a whole number, not 'many'");
}

TEST(ParseStreamConfigTest, BuildsTheConfigFromTheFlags) {
  StreamAddFlags flags;
  flags.topics = "orders/**, refunds/*";
  flags.max_msgs = "1000";
  flags.max_msgs_per_topic = "1";
  flags.max_bytes = "1GiB";
  flags.max_age = "7d";
  flags.storage = "memory";
  absl::StatusOr<wire::StreamConfig> config =
      ParseStreamConfig("orders", flags);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name(), "orders");
  EXPECT_THAT(config->topics(), ElementsAre("orders/**", "refunds/*"));
  EXPECT_EQ(config->max_msgs(), 1000u);
  EXPECT_EQ(config->max_msgs_per_topic(), 1u);
  EXPECT_EQ(config->max_bytes(), uint64_t{1} << 30);
  EXPECT_EQ(config->max_age_ms(), uint64_t{7} * 24 * 3600 * 1000);
  EXPECT_EQ(config->storage(), wire::STORAGE_MEMORY);
}

TEST(ParseStreamConfigTest, LimitsDefaultToNoneAndStorageToFile) {
  StreamAddFlags flags;
  flags.topics = "a/*";
  absl::StatusOr<wire::StreamConfig> config = ParseStreamConfig("a", flags);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->max_msgs(), 0u);
  EXPECT_EQ(config->max_msgs_per_topic(), 0u);
  EXPECT_EQ(config->max_bytes(), 0u);
  EXPECT_EQ(config->max_age_ms(), 0u);
  EXPECT_EQ(config->storage(), wire::STORAGE_FILE);
  // 0 says "no limit" explicitly.
  flags.max_msgs = "0";
  flags.max_bytes = "0";
  flags.max_age = "0";
  config = ParseStreamConfig("a", flags);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->max_age_ms(), 0u);
}

TEST(ParseStreamConfigTest, NamesTheFlagAtFault) {
  StreamAddFlags flags;
  ExpectUsageError(ParseStreamConfig("a", flags).status(),
                   "a stream needs --topics");
  flags.topics = "a/*,,b";
  ExpectUsageError(ParseStreamConfig("a", flags).status(),
                   "--topics 'a/*,,b' holds an empty pattern");
  flags.topics = "a/*";
  flags.storage = "disk";
  ExpectUsageError(ParseStreamConfig("a", flags).status(),
                   "--storage is 'file' or 'memory', not 'disk'");
  flags.storage = "";
  flags.max_age = "500us";
  ExpectUsageError(ParseStreamConfig("a", flags).status(),
                   "--max-age must be at least 1ms");
  flags.max_age = "";
  flags.max_msgs = "lots";
  ExpectUsageError(ParseStreamConfig("a", flags).status(), "--max-msgs");
  flags.max_msgs = "";
  flags.max_msgs_per_topic = "-1";
  ExpectUsageError(ParseStreamConfig("a", flags).status(),
                   "--max-msgs-per-topic");
}

}  // namespace
}  // namespace manifold::cli
