// HttpResponseReader: responses with Content-Length and chunked bodies, split
// anywhere across reads, the first Set-Cookie, keep-alive, and bytes that are
// no HTTP.

#include "client/load/http_response_reader.h"

#include <string>

#include "gtest/gtest.h"

namespace manifold::load {
namespace {

constexpr char kLengthResponse[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Set-Cookie: BAYEUX_BROWSER=abc123; Path=/; HttpOnly\r\n"
    "Set-Cookie: other=1\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "[{\"a\":\"bc\"}]\n";

constexpr char kChunkedResponse[] =
    "HTTP/1.1 200 OK\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "5\r\n[{\"a\"\r\n"
    "7\r\n:\"bc\"}]\r\n"
    "0\r\n\r\n";

TEST(HttpResponseReaderTest, ReadsABodyWithContentLengthAndTheFirstCookie) {
  HttpResponseReader reader;
  ASSERT_TRUE(reader.Feed(kLengthResponse).ok());
  ASSERT_TRUE(reader.complete());
  EXPECT_EQ(reader.status(), 200);
  EXPECT_EQ(reader.body(), "[{\"a\":\"bc\"}]\n");
  EXPECT_EQ(reader.set_cookie(), "BAYEUX_BROWSER=abc123");
  EXPECT_TRUE(reader.keep_alive());
}

TEST(HttpResponseReaderTest, TakesTheChunkingOutOfAChunkedBody) {
  HttpResponseReader reader;
  ASSERT_TRUE(reader.Feed(kChunkedResponse).ok());
  ASSERT_TRUE(reader.complete());
  EXPECT_EQ(reader.body(), "[{\"a\":\"bc\"}]");
  EXPECT_EQ(reader.set_cookie(), "");
}

TEST(HttpResponseReaderTest, CompletesOnlyWithTheLastByteWhateverTheSplit) {
  for (const std::string response : {kLengthResponse, kChunkedResponse}) {
    for (size_t cut = 1; cut < response.size(); ++cut) {
      HttpResponseReader reader;
      ASSERT_TRUE(reader.Feed(response.substr(0, cut)).ok()) << cut;
      EXPECT_FALSE(reader.complete()) << cut;
      ASSERT_TRUE(reader.Feed(response.substr(cut)).ok()) << cut;
      ASSERT_TRUE(reader.complete()) << cut;
      EXPECT_EQ(reader.body(),
                "[{\"a\":\"bc\"}]" +
                    std::string(response == kLengthResponse ? "\n" : ""))
          << cut;
    }
  }
}

TEST(HttpResponseReaderTest, KeepsWhatFollowsAResponseForNext) {
  HttpResponseReader reader;
  ASSERT_TRUE(
      reader.Feed(std::string(kChunkedResponse) + kLengthResponse).ok());
  ASSERT_TRUE(reader.complete());
  EXPECT_EQ(reader.body(), "[{\"a\":\"bc\"}]");
  ASSERT_TRUE(reader.Next().ok());
  ASSERT_TRUE(reader.complete());
  EXPECT_EQ(reader.set_cookie(), "BAYEUX_BROWSER=abc123");
  ASSERT_TRUE(reader.Next().ok());
  EXPECT_FALSE(reader.complete());
}

TEST(HttpResponseReaderTest, ReportsStatusAndConnectionClose) {
  HttpResponseReader reader;
  ASSERT_TRUE(reader
                  .Feed("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                        "Content-Length: 2\r\n\r\nno")
                  .ok());
  ASSERT_TRUE(reader.complete());
  EXPECT_EQ(reader.status(), 400);
  EXPECT_EQ(reader.body(), "no");
  EXPECT_FALSE(reader.keep_alive());
}

TEST(HttpResponseReaderTest, ABodyThatRunsToTheEndCompletesAtEnd) {
  HttpResponseReader reader;
  ASSERT_TRUE(reader.Feed("HTTP/1.0 200 OK\r\n\r\n[1,2]").ok());
  EXPECT_FALSE(reader.complete());
  ASSERT_TRUE(reader.End().ok());
  ASSERT_TRUE(reader.complete());
  EXPECT_EQ(reader.body(), "[1,2]");
  EXPECT_FALSE(reader.keep_alive());
}

TEST(HttpResponseReaderTest, AResponseCutShortIsAnError) {
  HttpResponseReader reader;
  ASSERT_TRUE(
      reader.Feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").ok());
  EXPECT_TRUE(absl::IsUnavailable(reader.End()));
}

TEST(HttpResponseReaderTest, BytesThatAreNoHttpAreAnError) {
  HttpResponseReader reader;
  absl::Status fed = reader.Feed("SSH-2.0-OpenSSH_9.2\r\n");
  EXPECT_TRUE(absl::IsInvalidArgument(fed)) << fed;
  EXPECT_NE(fed.message().find("not an HTTP response"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace manifold::load
