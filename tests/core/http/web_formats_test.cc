// The small formats of core/http: the WebSocket handshake, Server-Sent
// Events, query strings, JSON messages and Prometheus text.
#include <string>

#include "core/http/json_messages.h"
#include "core/http/prometheus.h"
#include "core/http/query.h"
#include "core/http/request_parser.h"
#include "core/http/sse.h"
#include "core/http/websocket_handshake.h"
#include "gtest/gtest.h"

namespace manifold::http {
namespace {

HttpRequest Parse(const std::string& text) {
  RequestParser parser(RequestLimits{});
  EXPECT_TRUE(parser.Feed(text).ok());
  return parser.request();
}

TEST(WebSocketHandshakeTest, AcceptKeyIsTheOneInRfc6455) {
  EXPECT_EQ(WebSocketAccept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocketHandshakeTest, ReadsKeyAndSubprotocols) {
  absl::StatusOr<UpgradeRequest> u = ParseUpgradeRequest(Parse(
      "GET /ws HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: keep-alive, "
      "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a, manifold.v1\r\n"
      "\r\n"));
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_TRUE(u->Offers("manifold.v1"));
  EXPECT_FALSE(u->Offers("manifold.json"));
  std::string out;
  AppendSwitchingProtocols(u->key, "manifold.v1", out);
  EXPECT_NE(out.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            std::string::npos);
  EXPECT_NE(out.find("Sec-WebSocket-Protocol: manifold.v1\r\n"),
            std::string::npos);
}

TEST(WebSocketHandshakeTest, RejectsWhatIsNotAHandshake) {
  const std::string base =
      "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseUpgradeRequest(Parse(base + "Sec-WebSocket-Version: 13\r\n\r\n"))
          .status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      ParseUpgradeRequest(
          Parse(base + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 8\r\n\r\n"))
          .status()));
}

TEST(SseTest, EventsSplitPayloadLinesAndCommentsAreOneLine) {
  std::string out;
  AppendSseEvent("a/b", "7", "one\r\ntwo\rthree\nfour", out);
  EXPECT_EQ(out,
            "id: 7\nevent: a/b\ndata: one\ndata: two\ndata: three\ndata: "
            "four\n\n");
  out.clear();
  AppendSseComment("keepalive", out);
  AppendSseRetry(absl::Seconds(2), out);
  EXPECT_EQ(out, ": keepalive\n\nretry: 2000\n\n");
}

TEST(QueryTest, DecodesRepeatedNames) {
  absl::StatusOr<QueryParameters> q =
      ParseQuery("topic=a%2Fb&topic=c+d&format=json&flag");
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->size(), 4u);
  EXPECT_EQ((*q)[0].second, "a/b");
  EXPECT_EQ((*q)[1].second, "c d");
  EXPECT_EQ(FirstValue(*q, "format"), "json");
  EXPECT_EQ(FirstValue(*q, "flag"), "");
  EXPECT_FALSE(FirstValue(*q, "none").has_value());
  EXPECT_FALSE(ParseQuery("a=%zz").ok());
}

TEST(JsonMessagesTest, TextPayloadsStayTextAndBinaryOnesAreFlagged) {
  absl::StatusOr<wire::ClientMessage> m = ClientMessageFromJson(
      R"({"publish":{"topic":"a","payload":"héllo","opId":"3"}})");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->publish().payload(), "héllo");
  EXPECT_EQ(m->publish().op_id(), 3u);
  m = ClientMessageFromJson(
      R"({"publish":{"topic":"a","payload":"/wA=","base64":true}})");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->publish().payload(), std::string("\xff\0", 2));

  wire::ServerMessage out;
  out.mutable_deliver()->set_topic("a");
  out.mutable_deliver()->set_payload(std::string("\xff\0", 2));
  const std::string json = ServerMessageToJson(out);
  EXPECT_NE(json.find(R"("base64":true)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("payload":"/wA=")"), std::string::npos) << json;
  // The same message prints the same bytes every time.
  EXPECT_EQ(json, ServerMessageToJson(out));
}

TEST(JsonMessagesTest, RejectsWhatIsNotAClientMessage) {
  EXPECT_FALSE(ClientMessageFromJson("{oops").ok());
  EXPECT_FALSE(ClientMessageFromJson(R"({"publish":{"nope":1}})").ok());
  EXPECT_FALSE(ClientMessageFromJson(R"([1,2])").ok());
  EXPECT_FALSE(
      ClientMessageFromJson(R"({"publish":{"payload":"x","base64":"yes"}})")
          .ok());
}

TEST(PrometheusTest, GaugesCountersAndProtocolsHaveHelpAndType) {
  wire::Statistics s;
  s.set_connections(3);
  s.set_deliveries(42);
  wire::ProtocolConnections* p = s.add_connections_by_protocol();
  p->set_protocol("ws");
  p->set_connections(2);
  std::string text;
  AppendPrometheusText(s, text);
  EXPECT_NE(text.find("# TYPE manifold_connections gauge\nmanifold_connections "
                      "3\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE manifold_deliveries_total counter\n"
                      "manifold_deliveries_total 42\n"),
            std::string::npos);
  EXPECT_NE(text.find("manifold_connections_by_protocol{protocol=\"ws\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("# HELP manifold_deliveries_total "), std::string::npos);
}

TEST(PrometheusTest, ClusterFiguresOnlyInACluster) {
  wire::Statistics s;
  s.mutable_cluster()->set_nodes(2);
  s.mutable_cluster()->set_redis_connected(true);
  s.mutable_cluster()->set_messages_out(41);
  std::string text;
  AppendPrometheusText(s, text);
  EXPECT_NE(text.find("# TYPE manifold_cluster_nodes gauge\n"
                      "manifold_cluster_nodes 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("manifold_cluster_redis_connected 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE manifold_cluster_messages_out_total counter\n"
                      "manifold_cluster_messages_out_total 41\n"),
            std::string::npos);
  std::string without;
  AppendPrometheusText(wire::Statistics(), without);
  EXPECT_EQ(without.find("manifold_cluster_"), std::string::npos);
}

TEST(PrometheusTest, TlsFailuresAreOneCounterLabelledByReason) {
  wire::Statistics s;
  s.set_tls_handshakes(7);
  wire::TlsFailures* f = s.add_tls_failures();
  f->set_reason("plain_text");
  f->set_count(2);
  std::string text;
  AppendPrometheusText(s, text);
  EXPECT_NE(text.find("# HELP manifold_tls_handshakes_total TLS handshakes "
                      "completed.\n# TYPE manifold_tls_handshakes_total "
                      "counter\nmanifold_tls_handshakes_total 7\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE manifold_tls_failures_total counter\n"
                      "manifold_tls_failures_total{reason=\"plain_text\"} 2\n"),
            std::string::npos);
  std::string without;
  AppendPrometheusText(wire::Statistics(), without);
  EXPECT_EQ(without.find("manifold_tls_failures_total"), std::string::npos);
}

}  // namespace
}  // namespace manifold::http
