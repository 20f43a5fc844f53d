// Recording and replaying the broker's session tokens: what a live source
// draws is reported as it is handed out, and a replay hands the same bytes
// back in order, then carries on from the seeded source.

#include "broker/transcript/recorded_session_ids.h"

#include <array>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "broker/transcript/transcript_runner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Hex(absl::Span<const uint8_t> bytes) {
  return absl::BytesToHexString(absl::string_view(
      reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

google::protobuf::RepeatedPtrField<std::string> Draws(
    std::vector<std::string> hex) {
  return google::protobuf::RepeatedPtrField<std::string>(hex.begin(),
                                                         hex.end());
}

TEST(RecordSessionIdsTest, HandsOutTheLiveBytesAndReportsEachDraw) {
  std::vector<std::string> reported;
  std::unique_ptr<SessionIdSource> source = RecordSessionIds(
      SeededSessionIdSource(7),
      [&](absl::Span<const uint8_t> bytes) { reported.push_back(Hex(bytes)); });
  std::unique_ptr<SessionIdSource> same = SeededSessionIdSource(7);
  const std::string first = NewSessionToken(*source);
  const std::string second = NewSessionToken(*source);
  EXPECT_EQ(first, NewSessionToken(*same));
  EXPECT_EQ(second, NewSessionToken(*same));
  EXPECT_THAT(reported, ElementsAre(first, second));
}

TEST(ReplayedSessionIdsTest, HandsOutTheRecordedDrawsThenSeededBytes) {
  const std::string a(40, 'a');
  const std::string b = "0123456789abcdef0123456789abcdef01234567";
  ReplayedSessionIds ids(Draws({a, b}), 3);
  ASSERT_TRUE(ids.Check().ok());
  std::unique_ptr<SessionIdSource> seeded = SeededSessionIdSource(3);
  EXPECT_EQ(NewSessionToken(ids), a);
  EXPECT_EQ(NewSessionToken(ids), b);
  EXPECT_EQ(NewSessionToken(ids), NewSessionToken(*seeded));
  EXPECT_EQ(NewSessionToken(ids), NewSessionToken(*seeded));
  EXPECT_EQ(ids.divergence(), "");
}

TEST(ReplayedSessionIdsTest, ADrawOfAnotherSizeIsADivergence) {
  ReplayedSessionIds ids(Draws({"abcd"}), 0);
  std::array<uint8_t, 3> out;
  ids.Fill(absl::MakeSpan(out));
  EXPECT_THAT(ids.divergence(), HasSubstr("drew 3 bytes"));
  EXPECT_THAT(ids.divergence(), HasSubstr("has 2 (session_ids[0])"));
}

TEST(ReplayedSessionIdsTest, DrawsThatAreNotHexadecimalAreRefused) {
  EXPECT_THAT(ReplayedSessionIds(Draws({"abcd", "xyz1"}), 0).Check().message(),
              HasSubstr("session_ids[1] \"xyz1\" is not hexadecimal"));
  EXPECT_FALSE(ReplayedSessionIds(Draws({"abc"}), 0).Check().ok());
}

TEST(ReplayedSessionIdsTest, ATranscriptWithBadSessionIdsIsInvalid) {
  absl::StatusOr<transcript::Transcript> t = ParseTranscript(
      "session_ids: \"not hex\"\n"
      "step { connect { client: \"a\" handshake: true } }\n");
  ASSERT_TRUE(t.ok()) << t.status();
  absl::Status replay = ReplayTranscript(*t);
  EXPECT_TRUE(absl::IsInvalidArgument(replay)) << replay;
  EXPECT_THAT(replay.message(), HasSubstr("not hexadecimal"));
}

TEST(ReplayedSessionIdsTest, AReplayThatDrawsDifferentlyFromItsRecordingFails) {
  // A resumable Hello draws a 20-byte token; the recording says 2 bytes.
  absl::StatusOr<transcript::Transcript> t = ParseTranscript(R"(
    session_ids: "abcd"
    step { connect { client: "a" } }
    step { send { client: "a" message { hello { protocol_version: 1 resumable: true } } } }
  )");
  ASSERT_TRUE(t.ok()) << t.status();
  absl::Status replay = ReplayTranscript(*t);
  EXPECT_TRUE(absl::IsFailedPrecondition(replay)) << replay;
  EXPECT_THAT(replay.message(), HasSubstr("drew 20 bytes of session id"));
}

}  // namespace
}  // namespace manifold
