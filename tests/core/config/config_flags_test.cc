#include "core/config/config_flags.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/config/test_config.pb.h"

namespace manifold::config {
namespace {

using ::testing::HasSubstr;
using testing::TestConfig;

absl::StatusOr<ConfigFlags::Parsed> Parse(const ConfigFlags& flags,
                                          std::vector<const char*> args) {
  return flags.Parse(args);
}

ConfigFlags MakeFlags() {
  ConfigFlags flags(*TestConfig::descriptor());
  flags.AddProgramFlag({"config", "FILE", "Read FILE."});
  flags.AddProgramFlag({"dump", "", "Dump and exit."});
  return flags;
}

TEST(ConfigFlagsTest, FlagsTakeValuesWithEqualsOrAsTheNextArgument) {
  const ConfigFlags flags = MakeFlags();
  auto parsed = Parse(flags, {"--address", "a:1", "--max_items=4", "--verbose",
                              "--config=x.textpb", "--dump", "-mode=careful"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->program_flags.at("config"), "x.textpb");
  EXPECT_EQ(parsed->program_flags.at("dump"), "");
  TestConfig c;
  ASSERT_TRUE(flags.Apply(*parsed, c).ok());
  EXPECT_EQ(c.address(), "a:1");
  EXPECT_EQ(c.limits().max_items(), 4u);
  EXPECT_TRUE(c.verbose());
  EXPECT_EQ(c.mode(), TestConfig::CAREFUL);
}

TEST(ConfigFlagsTest, DurationsAreNamedWithoutTheirUnitOrWithIt) {
  const ConfigFlags flags = MakeFlags();
  auto parsed = Parse(flags, {"--wait=2s"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  TestConfig c;
  ASSERT_TRUE(flags.Apply(*parsed, c).ok());
  EXPECT_EQ(c.limits().wait_ms(), 2000u);
  parsed = Parse(flags, {"--wait_ms", "30"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_TRUE(flags.Apply(*parsed, c).ok());
  EXPECT_EQ(c.limits().wait_ms(), 30u);
}

TEST(ConfigFlagsTest, BooleansTakeNoPrefixAndLaterFlagsWin) {
  const ConfigFlags flags = MakeFlags();
  auto parsed =
      Parse(flags, {"--verbose", "--noverbose", "--small=3", "--small=4"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  TestConfig c;
  ASSERT_TRUE(flags.Apply(*parsed, c).ok());
  EXPECT_TRUE(c.has_verbose());
  EXPECT_FALSE(c.verbose());
  EXPECT_EQ(c.small(), 4u);
}

TEST(ConfigFlagsTest, MistakesAreNamed) {
  const ConfigFlags flags = MakeFlags();
  EXPECT_EQ(Parse(flags, {"--nope=1"}).status().message(),
            "unknown flag --nope (--help lists them)");
  EXPECT_EQ(Parse(flags, {"--noaddress"}).status().message(),
            "unknown flag --noaddress (--help lists them)");
  EXPECT_EQ(Parse(flags, {"--address"}).status().message(),
            "--address needs a value");
  EXPECT_EQ(Parse(flags, {"--dump=yes"}).status().message(),
            "--dump takes no value");
  EXPECT_EQ(Parse(flags, {"file.txt"}).status().message(),
            "unexpected argument 'file.txt'; flags start with --");
  EXPECT_EQ(Parse(flags, {"--admit_by_hand"}).status().message(),
            "unknown flag --admit_by_hand (--help lists them)");
  auto parsed = Parse(flags, {"--max_items=0"});
  ASSERT_TRUE(parsed.ok());
  TestConfig c;
  EXPECT_EQ(flags.Apply(*parsed, c).message(),
            "--max_items must be at least 1");
}

TEST(ConfigFlagsTest, HelpShowsEveryFlagWithValueNameDefaultAndHelp) {
  const std::string help = MakeFlags().Help(TestConfig());
  EXPECT_THAT(help, HasSubstr("  --config=FILE\n      Read FILE.\n"));
  EXPECT_THAT(help, HasSubstr("  --dump\n      Dump and exit.\n"));
  EXPECT_THAT(help, HasSubstr("  --address=HOST:PORT  (default: "
                              "\"localhost:1\")\n      Where to listen.\n"));
  EXPECT_THAT(help, HasSubstr("  --wait=DURATION  (default: 1.5s)\n"));
  EXPECT_THAT(help, HasSubstr("  --mode=fast|careful  (default: fast)\n"));
  EXPECT_THAT(help, ::testing::Not(HasSubstr("admit_by_hand")));
  EXPECT_THAT(help, ::testing::Not(HasSubstr("tags")));
}

}  // namespace
}  // namespace manifold::config
