#include "core/config/config_file.h"

#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/core/config/test_config.pb.h"

namespace manifold::config {
namespace {

using ::testing::HasSubstr;
using testing::TestConfig;

TEST(ConfigFileTest, TextFormatWithCommentsMergesIntoWhatWasThere) {
  TestConfig c;
  c.set_offset(5);
  ASSERT_TRUE(ParseConfigFile("# hello\naddress: \"x:1\"\n"
                              "limits { max_items: 3 }  # trailing\n"
                              "tags: \"a\" tags: \"b\"\n",
                              "f.textpb", c)
                  .ok());
  EXPECT_EQ(c.address(), "x:1");
  EXPECT_EQ(c.limits().max_items(), 3u);
  EXPECT_EQ(c.offset(), 5);
  EXPECT_EQ(c.tags_size(), 2);
}

TEST(ConfigFileTest, JsonIsReadWithProtobufsMapping) {
  TestConfig c;
  ASSERT_TRUE(ParseConfigFile(
                  "  {\"address\": \"y:2\", \"limits\": {\"waitMs\": \"20\"},"
                  " \"mode\": \"CAREFUL\"}",
                  "f.json", c)
                  .ok());
  EXPECT_EQ(c.address(), "y:2");
  EXPECT_EQ(c.limits().wait_ms(), 20u);
  EXPECT_EQ(c.mode(), TestConfig::CAREFUL);
}

// Each case parses into a fresh configuration.
std::string Error(absl::string_view text, absl::string_view filename) {
  TestConfig c;
  return std::string(ParseConfigFile(text, filename, c).message());
}

TEST(ConfigFileTest, ErrorsNameFileLineColumnAndField) {
  EXPECT_EQ(Error("address: \"a\"\nwhat: 1\n", "f.textpb"),
            "f.textpb:2:5: unknown field \"what\".");
  EXPECT_EQ(Error("limits {\n  max_items: 0\n}\n", "f.textpb"),
            "f.textpb:2:3: max_items must be at least 1");
  EXPECT_EQ(Error("small: 1", "f.textpb"),
            "f.textpb:1:1: small must be at least 2");
  EXPECT_EQ(Error("\nsmall: 200", "f.textpb"),
            "f.textpb:2:1: small must be at most 100");
  EXPECT_EQ(Error("limits { admit_by_hand: true }", "f.textpb"),
            "f.textpb:1:10: admit_by_hand is for programs that embed the "
            "broker; it cannot be set here");
  EXPECT_THAT((Error("limits {", "f.textpb")),
              ::testing::StartsWith("f.textpb:1:"));
  EXPECT_EQ(Error("{\n\"limits\": {\"maxItems\": 0}}", "f.json"),
            "f.json:2:12: max_items must be at least 1");
  EXPECT_EQ(Error("{\"address\": 1, \"x\": 2}", "f.json"),
            "f.json:1:16: x: Cannot find field.");
  const std::string broken = (Error("{\"address\": ", "f.json"));
  EXPECT_THAT(broken, ::testing::StartsWith("f.json:1:1: "));
  EXPECT_EQ(broken.find('\n'), std::string::npos);
}

TEST(ConfigFileTest, PrintedConfigurationHasEverySettingAndReadsBack) {
  TestConfig c;
  c.set_verbose(true);
  c.mutable_limits()->set_wait_ms(250);
  c.add_tags("t");
  const std::string printed = PrintConfig(c);
  EXPECT_THAT(printed,
              HasSubstr("# Where to listen.\naddress: \"localhost:1\"\n"));
  EXPECT_THAT(printed, HasSubstr("  wait_ms: 250  # 250ms\n"));
  EXPECT_THAT(printed, HasSubstr("mode: FAST\n"));
  EXPECT_THAT(printed, HasSubstr("tags: \"t\"\n"));
  EXPECT_THAT(printed, ::testing::Not(HasSubstr("admit_by_hand")));
  TestConfig again;
  ASSERT_TRUE(ParseConfigFile(printed, "printed", again).ok());
  TestConfig expected = c;
  EXPECT_EQ(again.address(), "localhost:1");
  EXPECT_TRUE(again.verbose());
  EXPECT_EQ(again.limits().wait_ms(), 250u);
  EXPECT_EQ(again.limits().max_items(), 10u);
  EXPECT_EQ(again.tags_size(), 1);
  // Nothing repeated printed as "none" comes back.
  TestConfig empty;
  TestConfig reread;
  ASSERT_TRUE(ParseConfigFile(PrintConfig(empty), "p", reread).ok());
  EXPECT_EQ(reread.tags_size(), 0);
}

}  // namespace
}  // namespace manifold::config
