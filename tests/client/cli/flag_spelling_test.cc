#include "client/cli/flag_spelling.h"

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold::cli {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> Spell(std::vector<std::string> args) {
  static const absl::flat_hash_set<std::string> kFlags = {
      "from_seq", "last_per_topic", "max_bytes", "reconnect", "json"};
  return AcceptDashedFlagNames(std::move(args), [](absl::string_view name) {
    return kFlags.contains(name);
  });
}

TEST(AcceptDashedFlagNamesTest, RenamesDashedFlagsThatExistWithUnderscores) {
  EXPECT_THAT(Spell({"manifold", "sub", "t", "--from-seq", "5",
                     "--last-per-topic", "-max-bytes=1GiB"}),
              ElementsAre("manifold", "sub", "t", "--from_seq", "5",
                          "--last_per_topic", "-max_bytes=1GiB"));
}

TEST(AcceptDashedFlagNamesTest, NegatedBooleansTakeEitherSpelling) {
  EXPECT_THAT(Spell({"manifold", "--no-reconnect", "--no_reconnect",
                     "--no-last-per-topic"}),
              ElementsAre("manifold", "--noreconnect", "--noreconnect",
                          "--nolast_per_topic"));
}

TEST(AcceptDashedFlagNamesTest, LeavesValuesUnknownFlagsAndPositionalsAlone) {
  EXPECT_THAT(Spell({"manifold", "pub", "a-b/c-d", "-", "--max-bytes=a-b",
                     "--json", "--not-a-flag", "--", "--from-seq"}),
              ElementsAre("manifold", "pub", "a-b/c-d", "-", "--max_bytes=a-b",
                          "--json", "--not-a-flag", "--", "--from-seq"));
  // The program's own name is not a flag, however it is spelled.
  EXPECT_THAT(Spell({"--from-seq"}), ElementsAre("--from-seq"));
}

}  // namespace
}  // namespace manifold::cli
