#include "core/http/request_parser.h"

#include <string>

#include "gtest/gtest.h"

namespace manifold::http {
namespace {

TEST(RequestParserTest, ParsesARequestFedOneByteAtATime) {
  RequestParser parser(RequestLimits{});
  const std::string text =
      "POST /pub/a%2Fb?x=1&y=2 HTTP/1.1\r\nHost: h\r\nManifold-Header-K: v\r\n"
      "Content-Length: 5\r\n\r\nhello";
  for (size_t i = 0; i < text.size(); ++i) {
    ASSERT_FALSE(parser.complete()) << i;
    absl::StatusOr<size_t> used = parser.Feed(text.substr(i, 1));
    ASSERT_TRUE(used.ok()) << used.status();
    EXPECT_EQ(*used, 1u);
  }
  ASSERT_TRUE(parser.complete());
  const HttpRequest& r = parser.request();
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path, "/pub/a/b");
  EXPECT_EQ(r.query, "x=1&y=2");
  EXPECT_EQ(r.body, "hello");
  ASSERT_NE(r.Header("manifold-header-k"), nullptr);
  EXPECT_EQ(*r.Header("manifold-header-k"), "v");
  EXPECT_TRUE(r.keep_alive);
}

TEST(RequestParserTest, StopsAtTheEndOfEachPipelinedRequest) {
  RequestParser parser(RequestLimits{});
  const std::string first = "GET /a HTTP/1.1\r\n\r\n";
  const std::string second =
      "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  absl::StatusOr<size_t> used = parser.Feed(first + second);
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(*used, first.size());
  EXPECT_EQ(parser.request().path, "/a");
  parser.Next();
  used = parser.Feed(second);
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(*used, second.size());
  EXPECT_EQ(parser.request().body, "abcde");
}

TEST(RequestParserTest, ConnectionCloseAndHttp10AreNotKeepAlive) {
  RequestParser parser(RequestLimits{});
  ASSERT_TRUE(parser.Feed("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").ok());
  EXPECT_FALSE(parser.request().keep_alive);
  parser.Next();
  ASSERT_TRUE(parser.Feed("GET / HTTP/1.0\r\n\r\n").ok());
  EXPECT_FALSE(parser.request().keep_alive);
}

TEST(RequestParserTest, AnUpgradeStopsAfterTheHead) {
  RequestParser parser(RequestLimits{});
  const std::string head =
      "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  absl::StatusOr<size_t> used = parser.Feed(head + "\x81\x85");
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(*used, head.size());
  EXPECT_TRUE(parser.request().upgrade);
}

struct LimitCase {
  std::string request;
  int status;
};

class RequestLimitTest : public ::testing::TestWithParam<LimitCase> {};

TEST_P(RequestLimitTest, AnswersWithTheStatusNamingTheLimit) {
  RequestLimits limits;
  limits.max_header_bytes = 200;
  limits.max_headers = 3;
  limits.max_body_bytes = 10;
  RequestParser parser(limits);
  absl::StatusOr<size_t> used = parser.Feed(GetParam().request);
  EXPECT_FALSE(used.ok());
  EXPECT_EQ(parser.error_status(), GetParam().status) << used.status();
}

INSTANTIATE_TEST_SUITE_P(
    Limits, RequestLimitTest,
    ::testing::Values(
        LimitCase{"GET / HTTP/1.1\r\nX: " + std::string(300, 'a') + "\r\n\r\n",
                  431},
        LimitCase{"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",
                  431},
        LimitCase{"GET /" + std::string(300, 'a') + " HTTP/1.1\r\n\r\n", 414},
        LimitCase{"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 413},
        LimitCase{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "b\r\nhello world\r\n0\r\n\r\n",
                  413},
        LimitCase{"GET / HTTP/2.0\r\n\r\n", 505},
        LimitCase{"NOT HTTP\r\n\r\n", 400},
        LimitCase{"GET /%zz HTTP/1.1\r\n\r\n", 400}));

TEST(PercentDecodeTest, DecodesEscapesAndRejectsBadOnes) {
  std::string out;
  EXPECT_TRUE(PercentDecode("a%2Fb+c", /*plus_is_space=*/true, out));
  EXPECT_EQ(out, "a/b c");
  EXPECT_TRUE(PercentDecode("a+b", /*plus_is_space=*/false, out));
  EXPECT_EQ(out, "a+b");
  EXPECT_FALSE(PercentDecode("%4", false, out));
  EXPECT_FALSE(PercentDecode("%g0", false, out));
}

}  // namespace
}  // namespace manifold::http
