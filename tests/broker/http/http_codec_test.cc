// HttpCodec against a real Broker with a fake clock: REST, pipelining,
// Server-Sent Events, WebSockets (native, JSON and NATS inside) and the
// timeouts, with native clients from the broker harness on the same bus.
#include "broker/http/http_codec.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/http/bayeux.h"
#include "core/framing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/broker/http/http_test_link.h"
#include "tests/testing/broker_harness.h"

namespace manifold {
namespace {

using testing::BrokerHarness;
using testing::ClientFrame;
using testing::Get;
using ::testing::HasSubstr;
using testing::HttpLink;
using testing::Post;
using testing::ServerPayloads;
using testing::Statuses;
using testing::TestClient;
using testing::Upgrade;

std::string NativeFrame(const wire::ClientMessage& m) { return EncodeFrame(m); }

wire::ServerMessage ParseNative(absl::string_view frame) {
  FrameDecoder decoder(FrameDecoder::Options{.max_frame_bytes = 1 << 20});
  decoder.Append(frame);
  wire::ServerMessage m;
  absl::StatusOr<bool> got = decoder.Next(m);
  EXPECT_TRUE(got.ok() && *got);
  return m;
}

TEST(HttpSettingsTest, EveryLimitRoundTripsThroughTheSettingsText) {
  HttpOptions options;
  options.max_header_bytes = 2048;
  options.max_headers = 10;
  options.max_pipelined_requests = 3;
  options.request_timeout = absl::Milliseconds(500);
  options.idle_timeout = absl::Seconds(5);
  options.max_sse_topics = 4;
  options.sse_heartbeat = absl::Seconds(3);
  options.sse_retry = absl::Seconds(1);
  options.tick = absl::Milliseconds(50);
  options.dashboard = false;
  options.nats.server_id = "edge";
  options.nats.port = 4333;
  options.bayeux.path = "/bayeux";
  options.bayeux.connect_timeout = absl::Seconds(25);
  options.bayeux.interval = absl::Milliseconds(100);
  options.bayeux.service_timeout = absl::Seconds(3);
  options.bayeux.max_batch_messages = 7;
  ASSERT_TRUE(
      SetBayeuxTypePaths("handshake=/auth/hs, connect=/poll", options.bayeux)
          .ok());
  absl::StatusOr<HttpOptions> back =
      ParseHttpSettings(HttpSettingsText(options));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->max_header_bytes, 2048u);
  EXPECT_EQ(back->max_headers, 10u);
  EXPECT_EQ(back->max_pipelined_requests, 3u);
  EXPECT_EQ(back->request_timeout, absl::Milliseconds(500));
  EXPECT_EQ(back->idle_timeout, absl::Seconds(5));
  EXPECT_EQ(back->max_sse_topics, 4u);
  EXPECT_EQ(back->sse_heartbeat, absl::Seconds(3));
  EXPECT_EQ(back->sse_retry, absl::Seconds(1));
  EXPECT_EQ(back->tick, absl::Milliseconds(50));
  EXPECT_FALSE(back->dashboard);
  EXPECT_EQ(back->nats.server_id, "edge");
  EXPECT_EQ(back->nats.port, 4333);
  EXPECT_EQ(back->bayeux.path, "/bayeux");
  EXPECT_EQ(back->bayeux.connect_timeout, absl::Seconds(25));
  EXPECT_EQ(back->bayeux.interval, absl::Milliseconds(100));
  EXPECT_EQ(back->bayeux.service_timeout, absl::Seconds(3));
  EXPECT_EQ(back->bayeux.max_batch_messages, 7u);
  EXPECT_EQ(BayeuxTypePathsText(back->bayeux),
            "handshake=/auth/hs,connect=/poll");
}

TEST(HttpSettingsTest, OlderTextKeepsTheDefaultsAndBadValuesAreNamed) {
  // Recorded before the HTTP limits were kept: /nats's settings only.
  absl::StatusOr<HttpOptions> old =
      ParseHttpSettings("server_id=s;version=2.9.0;port=1");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->max_header_bytes, HttpOptions().max_header_bytes);
  EXPECT_EQ(old->request_timeout, HttpOptions().request_timeout);
  EXPECT_EQ(old->nats.server_id, "s");

  absl::StatusOr<HttpOptions> bad = ParseHttpSettings("http_max_headers=many");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "HTTP setting 'http_max_headers' has a bad value 'many'");
  bad = ParseHttpSettings("http_tick_ms=-5");
  EXPECT_EQ(bad.status().message(),
            "HTTP setting 'http_tick_ms' has a bad value '-5'");
  bad = ParseHttpSettings("mystery=1");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("mystery"));
}

TEST(HttpCodecTest, PublishAnswersTheDeliveryCountAndReachesNativeClients) {
  BrokerHarness h;
  TestClient& native = h.Connect("native");
  native.Subscribe("rooms/*");
  HttpLink http(h);
  http.Send(Post("/pub/rooms/a", "hi", "Manifold-Header-Trace: t1\r\n"));
  const std::string out = http.Take();
  EXPECT_THAT(out, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(out, HasSubstr("{\"delivered\":1}"));
  wire::ServerMessage m = native.Next();
  EXPECT_EQ(m.deliver().payload(), "hi");
  ASSERT_EQ(m.deliver().headers_size(), 1);
  EXPECT_EQ(m.deliver().headers(0).key(), "trace");
}

TEST(HttpCodecTest, PipelinedAnswersWaitForAnEarlierRequestsService) {
  BrokerHarness h;
  TestClient& server = h.Connect("server");
  server.Serve("svc");
  HttpLink http(h);
  // One byte at a time: every operation must still find its bytes.
  http.Send(
      Post("/req/svc?timeout=5s", "q") + Get("/healthz") + Post("/pub/x", "y"),
      1);
  EXPECT_EQ(http.Take(), "");  // the first answer is not there yet
  wire::ServerMessage request = server.Next();
  ASSERT_TRUE(request.has_request());
  server.Respond(request.request().request_id(), "answer");
  const std::string out = http.Take();
  EXPECT_THAT(Statuses(out), ::testing::ElementsAre(200, 200, 200));
  EXPECT_LT(out.find("answer"), out.find("\"status\":\"ok\""));
}

TEST(HttpCodecTest, RequestOutcomesMapToStatusCodes) {
  BrokerHarness h;
  HttpLink http(h);
  http.Send(Post("/req/none", ""));
  EXPECT_THAT(http.Take(), HasSubstr("HTTP/1.1 503"));
  TestClient& server = h.Connect("server");
  server.Serve("slow");
  http.Send(Post("/req/slow?timeout=100ms", ""));
  h.Advance(absl::Milliseconds(200));
  const std::string timed_out = http.Take();
  EXPECT_THAT(timed_out, HasSubstr("HTTP/1.1 504"));
  EXPECT_THAT(timed_out, HasSubstr("\"code\":\"TIMED_OUT\""));
  server.Next();
  http.Send(Post("/req/slow?timeout=5s", ""));
  server.Disconnect();
  EXPECT_THAT(http.Take(), HasSubstr("HTTP/1.1 502"));
  http.Send(Post("/req/a//b", ""));
  EXPECT_THAT(http.Take(), HasSubstr("HTTP/1.1 400"));
  http.Send(Post("/pub/$sys/x", ""));
  EXPECT_THAT(http.Take(), HasSubstr("HTTP/1.1 403"));
  http.Send(Get("/nowhere"));
  EXPECT_THAT(http.Take(), HasSubstr("HTTP/1.1 404"));
  http.Send("DELETE /stats HTTP/1.1\r\n\r\n");
  const std::string wrong = http.Take();
  EXPECT_THAT(wrong, HasSubstr("HTTP/1.1 405"));
  EXPECT_THAT(wrong, HasSubstr("Allow: GET\r\n"));
  // 400, 403, 404 and 405; a request's outcome is not an operation error.
  EXPECT_GE(h.broker().statistics().operation_errors, 4u);
}

TEST(HttpCodecTest, ASlowRequestGets408AndAnIdleConnectionCloses) {
  BrokerHarness h;
  HttpLink slow(h);
  slow.Send(Get("/healthz"));
  slow.Take();
  slow.Send("GET /healthz HTTP/1.1\r\nHo");
  for (int i = 0; i < 12; ++i) h.Advance(absl::Seconds(1));
  EXPECT_THAT(slow.Take(), HasSubstr("HTTP/1.1 408"));
  EXPECT_TRUE(slow.closed());

  HttpLink idle(h);
  idle.Send(Post("/pub/a", "x"));
  idle.Take();
  for (int i = 0; i < 59; ++i) h.Advance(absl::Seconds(1));
  EXPECT_FALSE(idle.closed());
  for (int i = 0; i < 3; ++i) h.Advance(absl::Seconds(1));
  EXPECT_EQ(idle.Take(), "");
  EXPECT_TRUE(idle.closed());
  EXPECT_EQ(h.broker().statistics().keepalive_disconnects, 0u);
}

TEST(HttpCodecTest, ServerSentEventsCarryMessagesAndHeartbeats) {
  BrokerHarness h;
  HttpLink sse(h);
  sse.Send(Get("/sse?topic=feed/*&topic=other"));
  const std::string head = sse.Take();
  EXPECT_THAT(head, HasSubstr("Content-Type: text/event-stream"));
  EXPECT_THAT(head, HasSubstr("retry: 2000\n\n"));
  TestClient& pub = h.Connect("pub");
  pub.Publish("feed/a", "one\ntwo");
  pub.Publish("other", std::string("\xff\x01", 2));
  EXPECT_EQ(sse.Take(),
            "id: 1\nevent: feed/a\ndata: one\ndata: two\n\n"
            "id: 2\nevent: other\ndata: base64:/wE=\n\n");
  // No keepalive pings for a one-way stream: it stays open, with comments.
  for (int i = 0; i < 100; ++i) h.Advance(absl::Seconds(1));
  const std::string beats = sse.Take();
  EXPECT_THAT(beats, HasSubstr(": keepalive\n\n"));
  EXPECT_FALSE(sse.closed());
  EXPECT_EQ(h.broker().statistics().connections_by_protocol.at("sse"), 1u);
}

// A topic= a stream stores replays the stream: the ids say where the client
// is ("s:<seq>" per topic, "-" for one no stream stores), and a reconnect
// with that Last-Event-ID gets what it missed, once.
TEST(HttpCodecTest, ServerSentEventsOfAStoredTopicResumeFromLastEventId) {
  BrokerHarness h;
  TestClient& admin = h.Connect("admin");
  testing::AddMemoryStream(admin, "log", "log/**");
  TestClient& pub = h.Connect("pub");
  pub.Publish("log/a", "before");  // stored before anyone listens: seq 1

  {
    HttpLink sse(h);
    sse.Send(Get("/sse?topic=log/*&topic=chat"));
    // The position comes first, in an event with only an id.
    EXPECT_THAT(sse.Take(), HasSubstr("retry: 2000\n\nid: s:1,-\n\n"));
    pub.Publish("log/a", "one");
    pub.Publish("chat", "hi");
    pub.Publish("log/b", "two");
    EXPECT_EQ(sse.Take(),
              "id: s:2,-\nevent: log/a\ndata: one\n\n"
              "id: s:2,-\nevent: chat\ndata: hi\n\n"
              "id: s:3,-\nevent: log/b\ndata: two\n\n");
  }
  pub.Publish("log/a", "missed");
  pub.Publish("chat", "gone");  // not stored: nothing brings it back

  HttpLink again(h);
  again.Send(Get("/sse?topic=log/*&topic=chat", "Last-Event-ID: s:2,-\r\n"));
  std::string replayed = again.Take();
  EXPECT_THAT(replayed, HasSubstr("id: s:2,-\n\n"));
  EXPECT_THAT(replayed, HasSubstr("id: s:3,-\nevent: log/b\ndata: two\n\n"
                                  "id: s:4,-\nevent: log/a\ndata: missed\n\n"));
  EXPECT_THAT(replayed, ::testing::Not(HasSubstr("data: one")));
  EXPECT_THAT(replayed, ::testing::Not(HasSubstr("gone")));
  pub.Publish("log/c", "live");
  EXPECT_EQ(again.Take(), "id: s:5,-\nevent: log/c\ndata: live\n\n");

  // An id of another shape, or for other topics, starts afresh.
  HttpLink fresh(h);
  fresh.Send(Get("/sse?topic=log/*", "Last-Event-ID: 17\r\n"));
  EXPECT_THAT(fresh.Take(), HasSubstr("id: s:5\n\n"));
  HttpLink other(h);
  other.Send(Get("/sse?topic=log/*", "Last-Event-ID: s:1,-\r\n"));
  EXPECT_THAT(other.Take(), HasSubstr("id: s:5\n\n"));
  pub.Publish("log/a", "new");
  EXPECT_EQ(fresh.Take(), "id: s:6\nevent: log/a\ndata: new\n\n");
}

TEST(HttpCodecTest, NativeFramesTravelOverAWebSocketSplitAnyway) {
  BrokerHarness h;
  HttpLink ws(h);
  ws.Send(Upgrade("/ws", "other, manifold.v1"));
  const std::string head = ws.Take();
  EXPECT_THAT(head, HasSubstr("HTTP/1.1 101 Switching Protocols"));
  EXPECT_THAT(head,
              HasSubstr("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
  EXPECT_THAT(head, HasSubstr("Sec-WebSocket-Protocol: manifold.v1"));

  wire::ClientMessage hello;
  hello.mutable_hello()->set_protocol_version(1);
  hello.mutable_hello()->set_client_name("browser");
  wire::ClientMessage subscribe;
  subscribe.mutable_subscribe()->set_op_id(1);
  subscribe.mutable_subscribe()->set_pattern("a/*");
  // Hello in a message of two fragments, and a ping between them; then the
  // subscribe; all fed one byte at a time.
  const std::string hello_bytes = NativeFrame(hello);
  ws.Send(ClientFrame(0x2, hello_bytes.substr(0, 3), /*fin=*/false) +
              ClientFrame(0x9, "p") + ClientFrame(0x0, hello_bytes.substr(3)) +
              ClientFrame(0x2, NativeFrame(subscribe)),
          1);
  std::vector<int> opcodes;
  std::vector<std::string> frames = ServerPayloads(ws.Take(), &opcodes);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(opcodes[0], 0xa);  // the pong
  EXPECT_TRUE(ParseNative(frames[1]).has_welcome());
  EXPECT_TRUE(ParseNative(frames[2]).has_ack());

  TestClient& pub = h.Connect("pub");
  pub.Publish("a/b", std::string("\0bin", 4));
  frames = ServerPayloads(ws.Take());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(ParseNative(frames[0]).deliver().payload(),
            std::string("\0bin", 4));
  EXPECT_EQ(h.broker().statistics().connections_by_protocol.at("ws"), 1u);
}

TEST(HttpCodecTest, NatsOverWebSocketSpeaksFirstAndParsesAcrossMessages) {
  BrokerHarness h;
  TestClient& native = h.Connect("native");
  native.Subscribe("orders/*");
  HttpLink ws(h);
  ws.Send(Upgrade("/nats", ""));
  const std::string out = ws.Take();
  const size_t end = out.find("\r\n\r\n") + 4;
  std::vector<std::string> frames = ServerPayloads(out.substr(end));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(frames[0], "INFO {"));
  // Commands split across messages and several in one message.
  ws.Send(ClientFrame(0x2, "CONNECT {\"verbose\":false}\r\nPU") +
          ClientFrame(
              0x2, "B orders.1 2\r\nhi\r\nPUB orders.2 2\r\nho\r\nPING\r\n"));
  EXPECT_EQ(ServerPayloads(ws.Take()), std::vector<std::string>{"PONG\r\n"});
  EXPECT_EQ(native.Next().deliver().payload(), "hi");
  EXPECT_EQ(native.Next().deliver().payload(), "ho");
}

// Publishes `count` messages of `size` bytes to `topic` from a native
// client in one burst, so the broker routes them in one turn.
void Burst(TestClient& pub, absl::string_view topic, int count, size_t size) {
  std::string frames;
  for (int i = 0; i < count; ++i) {
    wire::ClientMessage m;
    m.mutable_publish()->set_topic(std::string(topic));
    std::string payload = absl::StrCat(i, ":");
    payload.resize(size, 'p');
    m.mutable_publish()->set_payload(payload);
    AppendFrame(m, &frames);
  }
  pub.SendRaw(frames);
}

// A /nats WebSocket past CONNECT, subscribed to `subject` with sid 1.
void OpenNatsWebSocket(HttpLink& ws, absl::string_view subject) {
  ws.Send(Upgrade("/nats", ""));
  ws.Take();
  ws.Send(ClientFrame(0x2, absl::StrCat("CONNECT {\"verbose\":false}\r\nSUB ",
                                        subject, " 1\r\nPING\r\n")));
  ASSERT_EQ(ServerPayloads(ws.Take()), std::vector<std::string>{"PONG\r\n"});
}

TEST(HttpCodecTest, NatsOverWebSocketSendsATurnsMessagesInOneWebSocketMessage) {
  BrokerHarness h;
  HttpLink ws(h);
  OpenNatsWebSocket(ws, "t.*");
  TestClient& pub = h.Connect("pub");
  Burst(pub, "t/x", 100, 8);  // routed in one turn
  const std::vector<std::string> frames = ServerPayloads(ws.Take());
  ASSERT_EQ(frames.size(), 1u);
  std::string expected;
  for (int i = 0; i < 100; ++i) {
    std::string payload = absl::StrCat(i, ":");
    payload.resize(8, 'p');
    absl::StrAppend(&expected, "MSG t.x 1 8\r\n", payload, "\r\n");
  }
  EXPECT_EQ(frames[0], expected);
}

TEST(HttpCodecTest, AGatheredWebSocketMessageEndsPast64KiB) {
  BrokerHarness h;
  HttpLink ws(h);
  OpenNatsWebSocket(ws, "big");
  TestClient& pub = h.Connect("pub");
  Burst(pub, "big", 200, 1000);  // about 200 KiB in one turn
  const std::vector<std::string> frames = ServerPayloads(ws.Take());
  ASSERT_GE(frames.size(), 3u);
  std::string stream;
  for (const std::string& f : frames) {
    EXPECT_LT(f.size(), 64u * 1024 + 1024);
    stream += f;
  }
  EXPECT_EQ(stream.size(),
            200u * (std::string("MSG big 1 1000\r\n").size() + 1000 + 2));
  EXPECT_TRUE(absl::StartsWith(stream, "MSG big 1 1000\r\n0:ppp"));
}

TEST(HttpCodecTest, APongDuringAGatheredTurnEndsTheMessageBeforeIt) {
  BrokerHarness h;
  HttpLink ws(h);
  OpenNatsWebSocket(ws, "t");
  // One input: a NATS PUB to itself, a WebSocket ping, another PUB.
  ws.Send(ClientFrame(0x2, "PUB t 1\r\na\r\n") + ClientFrame(0x9, "p") +
          ClientFrame(0x2, "PUB t 1\r\nb\r\n"));
  std::vector<int> opcodes;
  const std::vector<std::string> frames = ServerPayloads(ws.Take(), &opcodes);
  std::string stream;
  for (size_t i = 0; i < frames.size(); ++i) {
    if (opcodes[i] == 0x2) stream += frames[i];
  }
  // Whole WebSocket frames, in order, the pong among them; the NATS stream
  // inside the data messages is intact.
  EXPECT_THAT(opcodes, ::testing::Contains(0xa));
  EXPECT_EQ(stream, "MSG t 1 1\r\na\r\nMSG t 1 1\r\nb\r\n");
}

TEST(HttpCodecTest, NativeWebSocketKeepsOneFramePerMessageInABusyTurn) {
  BrokerHarness h;
  HttpLink ws(h);
  ws.Send(Upgrade("/ws", "manifold.v1"));
  ws.Take();
  wire::ClientMessage hello;
  hello.mutable_hello()->set_protocol_version(1);
  wire::ClientMessage subscribe;
  subscribe.mutable_subscribe()->set_op_id(1);
  subscribe.mutable_subscribe()->set_pattern("t");
  ws.Send(ClientFrame(0x2, NativeFrame(hello) + NativeFrame(subscribe)));
  ASSERT_EQ(ServerPayloads(ws.Take()).size(), 2u);  // welcome, ack
  TestClient& pub = h.Connect("pub");
  Burst(pub, "t", 50, 8);  // routed in one turn
  const std::vector<std::string> frames = ServerPayloads(ws.Take());
  ASSERT_EQ(frames.size(), 50u);  // manifold.v1: a native frame per message
  for (int i = 0; i < 50; ++i) {
    std::string payload = absl::StrCat(i, ":");
    payload.resize(8, 'p');
    EXPECT_EQ(ParseNative(frames[i]).deliver().payload(), payload);
  }
}

TEST(HttpCodecTest, JsonWebSocketKeepsOneOperationPerMessageInABusyTurn) {
  BrokerHarness h;
  HttpLink ws(h);
  ws.Send(Upgrade("/ws", "manifold.json"));
  ws.Take();
  ws.Send(
      ClientFrame(0x1, R"({"hello":{"protocolVersion":1,"clientName":"j"}})") +
      ClientFrame(0x1, R"({"subscribe":{"opId":"1","pattern":"t"}})"));
  ASSERT_EQ(ServerPayloads(ws.Take()).size(), 2u);
  TestClient& pub = h.Connect("pub");
  Burst(pub, "t", 20, 8);
  const std::vector<std::string> frames = ServerPayloads(ws.Take());
  ASSERT_EQ(frames.size(), 20u);
  for (const std::string& f : frames) EXPECT_THAT(f, HasSubstr("\"deliver\""));
}

TEST(HttpCodecTest, JsonSubprotocolAndItsErrors) {
  BrokerHarness h;
  HttpLink ws(h);
  ws.Send(Upgrade("/ws", "manifold.json"));
  ws.Take();
  ws.Send(
      ClientFrame(0x1, R"({"hello":{"protocolVersion":1,"clientName":"j"}})") +
      ClientFrame(0x1, R"({"subscribe":{"opId":"1","pattern":"t"}})") +
      ClientFrame(0x1, R"({"publish":{"topic":"t","payload":"x"}})"));
  std::vector<std::string> frames = ServerPayloads(ws.Take());
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_THAT(frames[0], HasSubstr("\"welcome\""));
  EXPECT_THAT(frames[2], HasSubstr("\"payload\":\"x\""));
  // Broker keepalive pings are WebSocket pings here; browsers answer them.
  h.Advance(absl::Seconds(31));
  std::vector<int> opcodes;
  ServerPayloads(ws.Take(), &opcodes);
  EXPECT_THAT(opcodes, ::testing::Contains(0x9));
  ws.Send(ClientFrame(0xa, "1"));
  h.Advance(absl::Seconds(31));
  h.Advance(absl::Seconds(31));
  EXPECT_FALSE(ws.closed());
  ws.Send(ClientFrame(0x1, "\xff"));
  opcodes.clear();
  frames = ServerPayloads(ws.Take(), &opcodes);
  ASSERT_FALSE(opcodes.empty());
  EXPECT_EQ(opcodes.back(), 0x8);
  EXPECT_EQ(static_cast<uint8_t>(frames.back()[0]) << 8 |
                static_cast<uint8_t>(frames.back()[1]),
            1007);
  EXPECT_TRUE(ws.closed());
}

TEST(HttpCodecTest, BadUpgradesAndUpgradesAfterHelloAre400) {
  BrokerHarness h;
  HttpLink none(h);
  none.Send(Upgrade("/ws", ""));
  EXPECT_THAT(none.Take(), HasSubstr("HTTP/1.1 400"));
  EXPECT_TRUE(none.closed());
  HttpLink late(h);
  late.Send(Post("/pub/a", "x") + Upgrade("/ws", "manifold.v1"));
  EXPECT_THAT(Statuses(late.Take()), ::testing::ElementsAre(200, 400));
  HttpLink version(h);
  version.Send(Get("/ws",
                   "Upgrade: websocket\r\nConnection: upgrade\r\n"
                   "Sec-WebSocket-Version: 7\r\n"));
  const std::string out = version.Take();
  EXPECT_THAT(out, HasSubstr("HTTP/1.1 426"));
  EXPECT_THAT(out, HasSubstr("Sec-WebSocket-Version: 13"));
}

TEST(HttpCodecTest, TooManyPipelinedRequestsEachGet429) {
  BrokerHarness h;
  TestClient& server = h.Connect("server");
  server.Serve("svc");
  HttpOptions options;
  options.max_pipelined_requests = 2;
  HttpLink http(h, options);
  std::string requests;
  for (int i = 0; i < 3; ++i) requests += Post("/req/svc", "");
  http.Send(requests);
  EXPECT_THAT(Statuses(http.Take()), ::testing::ElementsAre(429, 429, 429));
  EXPECT_TRUE(http.closed());
}

TEST(HttpCodecTest, StatsMetricsAndConnectionsComeFromTheBroker) {
  BrokerHarness h;
  TestClient& native = h.Connect("native");
  native.Subscribe("x/**");
  HttpLink http(h);
  http.Send(Get("/stats") + Get("/metrics") + Get("/connections"));
  const std::string out = http.Take();
  EXPECT_THAT(Statuses(out), ::testing::ElementsAre(200, 200, 200));
  EXPECT_THAT(out, HasSubstr("\"subscriptions\":\"1\""));
  EXPECT_THAT(
      out,
      HasSubstr("manifold_connections_by_protocol{protocol=\"native\"} 1"));
  EXPECT_THAT(out, HasSubstr("\"pattern\":\"x/**\""));
}

}  // namespace
}  // namespace manifold
