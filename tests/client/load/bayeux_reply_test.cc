// BayeuxReplyParser: the fields of handshake, connect, subscribe and publish
// answers and of deliveries, as Manifold and Faye write them, and bodies
// that are no JSON.

#include "client/load/bayeux_reply.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace manifold::load {
namespace {

TEST(BayeuxReplyParserTest, ReadsAHandshakeAnswer) {
  BayeuxReplyParser parser("/bench/r1");
  std::vector<BayeuxMessage> messages;
  ASSERT_TRUE(parser
                  .Parse(R"([{"channel":"/meta/handshake","version":"1.0",)"
                         R"("supportedConnectionTypes":["long-polling"],)"
                         R"("clientId":"abc","successful":true,"id":"1",)"
                         R"("advice":{"reconnect":"retry","interval":0}}])",
                         messages)
                  .ok());
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].channel, BayeuxChannel::kHandshake);
  EXPECT_TRUE(messages[0].has_successful);
  EXPECT_TRUE(messages[0].successful);
  EXPECT_EQ(messages[0].client_id, "abc");
  EXPECT_EQ(messages[0].reconnect, "retry");
  EXPECT_FALSE(messages[0].has_data);
}

TEST(BayeuxReplyParserTest, ReadsDeliveriesAndTheConnectAnswerTogether) {
  BayeuxReplyParser parser("/bench/r1");
  std::vector<BayeuxMessage> messages;
  ASSERT_TRUE(
      parser
          .Parse(R"([{"channel":"/bench/r1","data":{"l":3,"s":41,"p":"xx"},)"
                 R"("id":"9"},)"
                 R"({"id":"10","data":{"p":{"l":9},"s":42,"l":3},)"
                 R"("channel":"/bench/r1"},)"
                 R"({"channel":"/meta/connect","successful":true,"id":"2"}])",
                 messages)
          .ok());
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].channel, BayeuxChannel::kData);
  EXPECT_TRUE(messages[0].has_stamp);
  EXPECT_EQ(messages[0].lane, 3u);
  EXPECT_EQ(messages[0].seq, 41u);
  EXPECT_FALSE(messages[0].has_successful);
  // Fields nested deeper than data's own are not the stamp.
  EXPECT_TRUE(messages[1].has_stamp);
  EXPECT_EQ(messages[1].lane, 3u);
  EXPECT_EQ(messages[1].seq, 42u);
  EXPECT_EQ(messages[2].channel, BayeuxChannel::kConnect);
  EXPECT_TRUE(messages[2].successful);
}

TEST(BayeuxReplyParserTest, DataWithoutBothStampFieldsHasNoStamp) {
  BayeuxReplyParser parser("/bench/r1");
  std::vector<BayeuxMessage> messages;
  ASSERT_TRUE(parser
                  .Parse(R"([{"channel":"/bench/r1","data":{"l":1}},)"
                         R"({"channel":"/bench/r1","data":{"l":-1,"s":2}},)"
                         R"({"channel":"/bench/r1","data":"text"}])",
                         messages)
                  .ok());
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_TRUE(messages[0].has_data);
  EXPECT_FALSE(messages[0].has_stamp);
  EXPECT_FALSE(messages[1].has_stamp);
  EXPECT_FALSE(messages[2].has_stamp);
}

TEST(BayeuxReplyParserTest, ReadsPublishAnswersAndRefusals) {
  BayeuxReplyParser parser("/bench/r1");
  std::vector<BayeuxMessage> messages;
  ASSERT_TRUE(
      parser
          .Parse(R"([{"channel":"/bench/r1","successful":true,"id":"5"},)"
                 R"({"channel":"/bench/r1","successful":false,)"
                 R"("error":"407::too big"},)"
                 R"({"channel":"/meta/connect","successful":false,)"
                 R"("error":"402::Unknown client",)"
                 R"("advice":{"reconnect":"handshake","interval":0}},)"
                 R"({"channel":"/meta/subscribe","successful":true},)"
                 R"({"channel":"/meta/disconnect","successful":true},)"
                 R"({"channel":"/elsewhere","data":{"l":1,"s":1}}])",
                 messages)
          .ok());
  ASSERT_EQ(messages.size(), 6u);
  EXPECT_TRUE(messages[0].successful);
  EXPECT_FALSE(messages[0].has_data);
  EXPECT_FALSE(messages[1].successful);
  EXPECT_EQ(messages[1].error, "407::too big");
  EXPECT_EQ(messages[2].reconnect, "handshake");
  EXPECT_EQ(messages[2].error, "402::Unknown client");
  EXPECT_EQ(messages[3].channel, BayeuxChannel::kSubscribe);
  EXPECT_EQ(messages[4].channel, BayeuxChannel::kDisconnect);
  EXPECT_EQ(messages[5].channel, BayeuxChannel::kOther);
}

TEST(BayeuxReplyParserTest, ReadsOneMessageWithoutAnArray) {
  BayeuxReplyParser parser("/bench/r1");
  std::vector<BayeuxMessage> messages;
  ASSERT_TRUE(
      parser.Parse(R"({"channel":"/meta/connect","successful":true})", messages)
          .ok());
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].channel, BayeuxChannel::kConnect);
}

// Escapes, non-ASCII text, floats and huge numbers do not change the fields
// read.
TEST(BayeuxReplyParserTest, ReadsEscapesTextAndNumbersOfAnyKindTheSameWay) {
  BayeuxReplyParser parser("/bench/r1");
  std::vector<BayeuxMessage> plain;
  ASSERT_TRUE(parser
                  .Parse(R"([{"channel":"/bench/r1","data":{"l":2,"s":7}},)"
                         R"({"channel":"/meta/handshake","successful":true,)"
                         R"("clientId":"ab"}])",
                         plain)
                  .ok());
  for (const char* body : {
           R"([{"channel":"\/bench\/r1","data":{"l":2,"s":7}},)"
           R"({"channel":"/meta/handshake","successful":true,)"
           R"("clientId":"a\u0062"}])",
           "[{\"channel\":\"/bench/r1\",\"data\":{\"l\":2,\"s\":7,"
           "\"p\":\"caf\xc3\xa9\"}},"
           "{\"channel\":\"/meta/handshake\",\"successful\":true,"
           "\"clientId\":\"ab\"}]",
           R"([{"channel":"/bench/r1","x":[1.5e3,-2,123456789012345678901],)"
           R"("data":{"l":2,"s":7}},)"
           R"({"channel":"/meta/handshake","successful":true,)"
           R"("clientId":"ab"}])",
       }) {
    std::vector<BayeuxMessage> messages;
    ASSERT_TRUE(parser.Parse(body, messages).ok()) << body;
    ASSERT_EQ(messages.size(), 2u) << body;
    EXPECT_EQ(messages[0].channel, BayeuxChannel::kData) << body;
    EXPECT_TRUE(messages[0].has_stamp) << body;
    EXPECT_EQ(messages[0].lane, plain[0].lane) << body;
    EXPECT_EQ(messages[0].seq, plain[0].seq) << body;
    EXPECT_EQ(messages[1].client_id, "ab") << body;
    EXPECT_TRUE(messages[1].successful) << body;
  }
}

TEST(BayeuxReplyParserTest, ABodyThatIsNoJsonIsAnError) {
  BayeuxReplyParser parser("/bench/r1");
  std::vector<BayeuxMessage> messages;
  for (const char* body :
       {"", "<html>busy</html>", R"([{"channel":)", R"([{"a":1}] x)",
        R"([{"a":01}])", R"([{"a":1,}])", R"([{"a":"\q"}])"}) {
    absl::Status parsed = parser.Parse(body, messages);
    EXPECT_TRUE(absl::IsInvalidArgument(parsed)) << body;
    EXPECT_NE(parsed.message().find("not JSON"), absl::string_view::npos);
    EXPECT_TRUE(messages.empty());
  }
}

}  // namespace
}  // namespace manifold::load
