// What a NATS server writes: INFO, -ERR, header blocks and message tails.

#include "core/nats/writer.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/nats/errors.h"
#include "core/nats/parser.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold::nats {
namespace {

struct Header {
  absl::string_view key;
  absl::string_view value;
};

TEST(NatsWriterTest, InfoHasWhatClientsNeedToConnect) {
  ServerInfo info;
  info.server_id = "id-1";
  info.server_name = "edge \"1\"";
  info.version = "0.1.0";
  info.host = "127.0.0.1";
  info.port = 4222;
  info.max_payload = 1048576;
  info.client_id = 7;
  info.client_ip = "127.0.0.1";
  std::string out;
  AppendInfo(info, out);
  EXPECT_EQ(out,
            "INFO {\"server_id\":\"id-1\",\"server_name\":\"edge \\\"1\\\"\","
            "\"version\":\"0.1.0\",\"proto\":1,\"host\":\"127.0.0.1\","
            "\"port\":4222,\"headers\":true,\"max_payload\":1048576,"
            "\"client_id\":7,\"client_ip\":\"127.0.0.1\"} \r\n");
}

TEST(NatsWriterTest, InfoLeavesOutWhatIsUnknownAndSaysWhenAuthIsRequired) {
  ServerInfo info;
  info.server_id = "s";
  info.server_name = "s";
  info.version = "1";
  info.auth_required = true;
  info.max_payload = 10;
  std::string out;
  AppendInfo(info, out);
  EXPECT_EQ(out,
            "INFO {\"server_id\":\"s\",\"server_name\":\"s\",\"version\":\"1\","
            "\"proto\":1,\"headers\":true,\"auth_required\":true,"
            "\"max_payload\":10,\"client_id\":0} \r\n");
}

TEST(NatsWriterTest, JsonStringsAreEscaped) {
  std::string out;
  AppendJsonString("a\"b\\c\n\x01", out);
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u0001\"");
}

TEST(NatsWriterTest, ErrQuotesASanitizedText) {
  std::string out;
  AppendErr(kInvalidSubject, out);
  EXPECT_EQ(out, "-ERR 'Invalid Subject'\r\n");
  out.clear();
  AppendErr("it's\r\nbad", out);
  EXPECT_EQ(out, "-ERR 'it\"s  bad'\r\n");
  EXPECT_EQ(SanitizeErrorText(std::string(300, 'x')).size(), 256u);
}

TEST(NatsWriterTest, HeaderBlockWritesOneLinePerHeader) {
  std::vector<Header> headers = {{"A", "1"}, {"B", "two words"}, {"A", "3"}};
  std::string out;
  AppendHeaderBlock(headers, out);
  EXPECT_EQ(out, "NATS/1.0\r\nA: 1\r\nB: two words\r\nA: 3\r\n\r\n");
  out.clear();
  AppendHeaderBlock(std::vector<Header>{}, out);
  EXPECT_EQ(out, "NATS/1.0\r\n\r\n");
}

TEST(NatsWriterTest, StatusAndDescriptionGoOnTheStatusLine) {
  std::string out;
  AppendHeaderBlock(std::vector<Header>{{"Status", "503"}}, out);
  EXPECT_EQ(out, "NATS/1.0 503\r\n\r\n");  // what nats-server sends
  out.clear();
  AppendHeaderBlock(
      std::vector<Header>{
          {"K", "v"}, {"Description", "No Responders"}, {"Status", "503"}},
      out);
  EXPECT_EQ(out, "NATS/1.0 503 No Responders\r\nK: v\r\n\r\n");
  // A Status that is not a 3-digit code stays an ordinary header, and so
  // does a Description without a status.
  out.clear();
  AppendHeaderBlock(
      std::vector<Header>{{"Status", "ok"}, {"Description", "fine"}}, out);
  EXPECT_EQ(out, "NATS/1.0\r\nStatus: ok\r\nDescription: fine\r\n\r\n");
}

TEST(NatsWriterTest, HeaderBlocksRoundTripThroughTheParser) {
  for (const std::vector<Header>& headers : std::vector<std::vector<Header>>{
           {},
           {{"A", "1"}},
           {{"Status", "503"}},
           {{"Status", "408"}, {"Description", "Request Timeout"}, {"X", "y"}},
           {{"Trace", "a b"}, {"Trace", "c"}, {"Empty", ""}}}) {
    std::string block;
    AppendHeaderBlock(headers, block);
    std::vector<std::string> parsed;
    ASSERT_TRUE(ParseHeaderBlock(block,
                                 [&](absl::string_view k, absl::string_view v) {
                                   parsed.push_back(absl::StrCat(k, "=", v));
                                 })
                    .ok())
        << block;
    std::vector<std::string> expected;
    for (const Header& h : headers) {
      expected.push_back(absl::StrCat(h.key, "=", h.value));
    }
    EXPECT_EQ(parsed, expected) << block;
  }
}

TEST(NatsWriterTest, MessageTails) {
  std::string out;
  MessageTail{"", false, "", "hello"}.AppendTo(out);
  EXPECT_EQ(out, " 5\r\nhello\r\n");
  out.clear();
  MessageTail{"_INBOX.a.1", false, "", ""}.AppendTo(out);
  EXPECT_EQ(out, " _INBOX.a.1 0\r\n\r\n");
  out.clear();
  MessageTail{"r", true, "NATS/1.0\r\n\r\n", "hi"}.AppendTo(out);
  EXPECT_EQ(out, " r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
  const MessageTail tail{"reply", true, "NATS/1.0 503\r\n\r\n", ""};
  EXPECT_EQ(tail.size(),
            std::string(" reply 16 16\r\nNATS/1.0 503\r\n\r\n\r\n").size());
}

TEST(NatsErrorsTest, StatusCarriesBothTheDetailAndTheNatsText) {
  absl::Status s = NatsError(wire::PAYLOAD_TOO_LARGE, kMaximumPayloadViolation,
                             "PUB announces 9 bytes; the limit is 8");
  EXPECT_EQ(WireCode(s), wire::PAYLOAD_TOO_LARGE);
  EXPECT_EQ(NatsErrorText(s), "Maximum Payload Violation");
  EXPECT_EQ(s.message(), "PUB announces 9 bytes; the limit is 8");
  EXPECT_EQ(NatsErrorText(absl::InternalError("x")), "");
}

TEST(NatsErrorsTest, BrokerErrorsHaveTheStringsNatsClientsExpect) {
  EXPECT_EQ(FatalErrorText(wire::REFUSED), "Authorization Violation");
  EXPECT_EQ(FatalErrorText(wire::HANDSHAKE_TIMEOUT), "Authentication Timeout");
  EXPECT_EQ(FatalErrorText(wire::KEEPALIVE_TIMEOUT), "Stale Connection");
  EXPECT_EQ(FatalErrorText(wire::SLOW_CONSUMER), "Slow Consumer");
  EXPECT_EQ(FatalErrorText(wire::TOO_MANY_CONNECTIONS),
            "Maximum Connections Exceeded");
  EXPECT_EQ(FatalErrorText(wire::INPUT_OVERFLOW), "");
  EXPECT_EQ(PublishPermissionsViolation("$sys.x"),
            "Permissions Violation for Publish to \"$sys.x\"");
}

}  // namespace
}  // namespace manifold::nats
