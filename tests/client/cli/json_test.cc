#include "client/cli/json.h"

#include "gtest/gtest.h"

namespace manifold::cli {
namespace {

TEST(JsonStringTest, EscapesWhatJsonRequires) {
  EXPECT_EQ(JsonString("plain"), "\"plain\"");
  EXPECT_EQ(JsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonString("line\nbreak\ttab\r"), "\"line\\nbreak\\ttab\\r\"");
  EXPECT_EQ(JsonString(std::string("nul\0x", 5)), "\"nul\\u0000x\"");
  EXPECT_EQ(JsonString("\x1f"), "\"\\u001f\"");
  EXPECT_EQ(JsonString("caf\xc3\xa9"), "\"caf\xc3\xa9\"");  // UTF-8 as is
}

TEST(IsUtf8Test, AcceptsWellFormedUtf8Only) {
  EXPECT_TRUE(IsUtf8(""));
  EXPECT_TRUE(IsUtf8("ascii"));
  EXPECT_TRUE(IsUtf8("caf\xc3\xa9"));        // 2 bytes
  EXPECT_TRUE(IsUtf8("\xe2\x82\xac"));       // 3 bytes: euro sign
  EXPECT_TRUE(IsUtf8("\xf0\x9f\x98\x80"));   // 4 bytes: emoji
  EXPECT_FALSE(IsUtf8("\xff\xfe"));          // not UTF-8 at all
  EXPECT_FALSE(IsUtf8("\xc3"));              // cut short
  EXPECT_FALSE(IsUtf8("\xe2\x82"));          // cut short
  EXPECT_FALSE(IsUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsUtf8("\xed\xa0\x80"));      // UTF-16 surrogate
  EXPECT_FALSE(IsUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsUtf8("\xc3\x28"));          // bad continuation
}

TEST(JsonObjectTest, BuildsOneObjectFieldByField) {
  JsonObject o;
  o.Add("topic", "room/1")
      .Add("bytes", uint64_t{5})
      .Add("offset", int64_t{-2})
      .Add("ok", true)
      .AddRaw("headers", "{}");
  EXPECT_EQ(o.str(),
            "{\"topic\":\"room/1\",\"bytes\":5,\"offset\":-2,\"ok\":true,"
            "\"headers\":{}}");
  EXPECT_EQ(JsonObject().str(), "{}");
}

TEST(JsonObjectTest, BytesThatAreNotUtf8AreBase64) {
  EXPECT_EQ(JsonObject().AddBytes("payload", "hi").str(),
            "{\"payload\":\"hi\"}");
  EXPECT_EQ(JsonObject().AddBytes("payload", "\xff\xfe").str(),
            "{\"payload_base64\":\"//4=\"}");
}

}  // namespace
}  // namespace manifold::cli
