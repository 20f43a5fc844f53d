#include "core/config/config_fields.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/config/test_config.pb.h"

namespace manifold::config {
namespace {

using testing::TestConfig;

const ConfigField& Field(const std::vector<ConfigField>& fields,
                         absl::string_view name) {
  for (const ConfigField& f : fields) {
    if (f.name == name) return f;
  }
  ADD_FAILURE() << "no field " << name;
  return fields.front();
}

TEST(ConfigFieldsTest, ListsScalarsFlattenedAndLeavesOutRepeatedAndFileOnly) {
  std::vector<std::string> names;
  for (const ConfigField& f : ListConfigFields(*TestConfig::descriptor())) {
    names.push_back(f.name);
  }
  EXPECT_THAT(names, ::testing::ElementsAre(
                         "address", "verbose", "mode", "offset", "ratio",
                         "small", "max_items", "wait", "admit_by_hand"));
}

TEST(ConfigFieldsTest, SetsEachKindFromText) {
  const auto fields = ListConfigFields(*TestConfig::descriptor());
  TestConfig c;
  ASSERT_TRUE(SetFromText(c, Field(fields, "address"), "0.0.0.0:9").ok());
  ASSERT_TRUE(SetFromText(c, Field(fields, "verbose"), "yes").ok());
  ASSERT_TRUE(SetFromText(c, Field(fields, "mode"), "careful").ok());
  ASSERT_TRUE(SetFromText(c, Field(fields, "offset"), "-12").ok());
  ASSERT_TRUE(SetFromText(c, Field(fields, "ratio"), "0.25").ok());
  ASSERT_TRUE(SetFromText(c, Field(fields, "small"), "3").ok());
  ASSERT_TRUE(SetFromText(c, Field(fields, "max_items"), "99").ok());
  ASSERT_TRUE(SetFromText(c, Field(fields, "wait"), "2.5s").ok());
  EXPECT_EQ(c.address(), "0.0.0.0:9");
  EXPECT_TRUE(c.verbose());
  EXPECT_EQ(c.mode(), TestConfig::CAREFUL);
  EXPECT_EQ(c.offset(), -12);
  EXPECT_DOUBLE_EQ(c.ratio(), 0.25);
  EXPECT_EQ(c.small(), 3u);
  EXPECT_EQ(c.limits().max_items(), 99u);
  EXPECT_EQ(c.limits().wait_ms(), 2500u);
  ASSERT_TRUE(SetFromText(c, Field(fields, "wait"), "40").ok());
  EXPECT_EQ(c.limits().wait_ms(), 40u);
}

TEST(ConfigFieldsTest, BadTextIsRefusedAndChangesNothing) {
  const auto fields = ListConfigFields(*TestConfig::descriptor());
  TestConfig c;
  EXPECT_EQ(SetFromText(c, Field(fields, "verbose"), "maybe").message(),
            "verbose: expected true or false, got 'maybe'");
  EXPECT_EQ(SetFromText(c, Field(fields, "mode"), "slow").message(),
            "mode: expected fast|careful, got 'slow'");
  EXPECT_EQ(SetFromText(c, Field(fields, "small"), "1").message(),
            "small must be at least 2");
  EXPECT_EQ(SetFromText(c, Field(fields, "small"), "101").message(),
            "small must be at most 100");
  EXPECT_EQ(SetFromText(c, Field(fields, "small"), "5000000000").message(),
            "small: expected a whole number, got '5000000000'");
  EXPECT_EQ(SetFromText(c, Field(fields, "offset"), "1.5").message(),
            "offset: expected a whole number, got '1.5'");
  EXPECT_EQ(SetFromText(c, Field(fields, "max_items"), "0").message(),
            "max_items must be at least 1");
  EXPECT_EQ(SetFromText(c, Field(fields, "wait"), "soon").message(),
            "wait: expected a duration such as 250ms, 1.5s or 2m, got "
            "'soon'");
  EXPECT_EQ(c.ByteSizeLong(), 0u);
}

TEST(ConfigFieldsTest, ValuesPrintAsTheyAreWritten) {
  const auto fields = ListConfigFields(*TestConfig::descriptor());
  TestConfig c;
  EXPECT_EQ(ValueAsText(c, Field(fields, "address")), "localhost:1");
  EXPECT_EQ(ValueAsText(c, Field(fields, "mode")), "fast");
  EXPECT_EQ(ValueAsText(c, Field(fields, "wait")), "1.5s");
  EXPECT_EQ(ValueAsText(c, Field(fields, "offset")), "-3");
  EXPECT_EQ(Field(fields, "address").value_name(), "HOST:PORT");
  EXPECT_EQ(Field(fields, "wait").value_name(), "DURATION");
  EXPECT_EQ(Field(fields, "mode").value_name(), "fast|careful");
  EXPECT_EQ(Field(fields, "max_items").help(), "Most items.");
  EXPECT_TRUE(Field(fields, "admit_by_hand").embedder_only());
}

TEST(ConfigFieldsTest, DefaultsCanBeWrittenOut) {
  TestConfig c;
  c.set_offset(4);
  SetDefaultsExplicitly(c);
  EXPECT_TRUE(c.has_address());
  EXPECT_TRUE(c.has_mode());
  EXPECT_TRUE(c.limits().has_wait_ms());
  EXPECT_EQ(c.limits().wait_ms(), 1500u);
  EXPECT_EQ(c.offset(), 4);
  EXPECT_EQ(c.tags_size(), 0);
}

TEST(ConfigFieldsTest, MinimumsAreCheckedWhereverTheFieldIs) {
  TestConfig c;
  EXPECT_TRUE(CheckMinimums(c).ok());
  c.mutable_limits()->set_max_items(0);
  EXPECT_EQ(CheckMinimums(c).message(), "limits.max_items must be at least 1");
  c.mutable_limits()->set_max_items(1);
  c.mutable_limits()->set_admit_by_hand(true);
  EXPECT_TRUE(CheckMinimums(c).ok());
  std::optional<ConfigViolation> v = FindViolation(c, true);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->path.back().first->name(), "admit_by_hand");
}

}  // namespace
}  // namespace manifold::config
