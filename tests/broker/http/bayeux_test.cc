// Bayeux at /cometd against a real Broker with a fake clock: sessions that
// outlive HTTP connections, held connects and their timeouts, delivery once
// per message, payload mapping, the browser cookie, /service requests to a
// native service, disconnect, expiry, and Bayeux over a WebSocket.
#include "broker/http/bayeux.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/http/bayeux_json.h"
#include "broker/http/bayeux_session_codec.h"
#include "broker/http/http_codec.h"
#include "broker/sys_topics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/broker/http/http_test_link.h"
#include "tests/testing/broker_harness.h"

namespace manifold {
namespace {

using Json = nlohmann::json;
using testing::AddMemoryStream;
using testing::BrokerHarness;
using testing::ClientFrame;
using ::testing::HasSubstr;
using testing::HttpLink;
using testing::Post;
using testing::ServerPayloads;
using testing::TestClient;
using testing::Upgrade;

// The body of the one response in `text` as JSON ("null" when there is
// none yet).
Json Body(absl::string_view text) {
  const size_t end = text.find("\r\n\r\n");
  if (end == absl::string_view::npos) return Json();
  return Json::parse(text.substr(end + 4), nullptr, false);
}

// The value of the Set-Cookie header in `text`, or "".
std::string SetCookie(absl::string_view text) {
  const size_t at = text.find("Set-Cookie: ");
  if (at == absl::string_view::npos) return "";
  const absl::string_view rest = text.substr(at + 12);
  return std::string(rest.substr(0, rest.find(';')));
}

// A Bayeux client over long-polling: each call is one POST on a fresh
// connection (as a browser uses several), carrying the browser's cookie.
class LongPollClient {
 public:
  explicit LongPollClient(BrokerHarness& h) : h_(h) {}

  // Handshakes; remembers the clientId and the cookie.
  Json Handshake() {
    HttpLink link(h_);
    link.Send(
        Post("/cometd/handshake",
             R"([{"channel":"/meta/handshake","version":"1.0","id":"h"}])",
             CookieHeader()));
    const std::string text = link.Take();
    if (cookie_.empty()) cookie_ = SetCookie(text);
    Json reply = Body(text)[0];
    client_id_ = reply.value("clientId", "");
    return reply;
  }

  // Sends `messages` (the clientId is added to each) on a new connection
  // and returns it, so a held answer can be taken later.
  std::unique_ptr<HttpLink> Start(Json messages) {
    for (Json& m : messages) m["clientId"] = client_id_;
    auto link = std::make_unique<HttpLink>(h_);
    link->Send(Post("/cometd", messages.dump(), CookieHeader()));
    return link;
  }
  // Sends `messages` and returns the answer (null when it is held).
  Json Exchange(Json messages) {
    return Body(Start(std::move(messages))->Take());
  }

  std::unique_ptr<HttpLink> Connect(int timeout_ms = -1) {
    Json connect = {{"channel", "/meta/connect"},
                    {"connectionType", "long-polling"}};
    if (timeout_ms >= 0) connect["advice"] = {{"timeout", timeout_ms}};
    return Start(Json::array({connect}));
  }
  Json Subscribe(absl::string_view channel) {
    return Exchange(Json::array(
        {{{"channel", "/meta/subscribe"}, {"subscription", channel}}}))[0];
  }

  const std::string& client_id() const { return client_id_; }
  std::string& cookie() { return cookie_; }

 private:
  std::string CookieHeader() const {
    return cookie_.empty() ? "" : absl::StrCat("Cookie: ", cookie_, "\r\n");
  }

  BrokerHarness& h_;
  std::string client_id_;
  std::string cookie_;
};

BrokerOptions Options() {
  BrokerOptions options;
  options.set_session_timeout_ms(20'000);
  return options;
}

TEST(BayeuxTest, HandshakeOpensASessionAndSetsTheBrowserCookie) {
  BrokerHarness h(Options());
  LongPollClient c(h);
  Json reply = c.Handshake();
  EXPECT_EQ(reply["successful"], true);
  EXPECT_EQ(reply["id"], "h");
  EXPECT_EQ(reply["version"], "1.0");
  EXPECT_THAT(reply["supportedConnectionTypes"].dump(),
              HasSubstr("long-polling"));
  EXPECT_EQ(reply["advice"]["reconnect"], "retry");
  EXPECT_EQ(reply["advice"]["timeout"], 30000);
  EXPECT_EQ(c.client_id().size(), 40u);
  EXPECT_EQ(c.client_id().find_first_not_of("0123456789abcdef"),
            std::string::npos);
  EXPECT_TRUE(absl::StartsWith(c.cookie(), "BAYEUX_BROWSER="));
  bool added = false;
  for (const wire::BrokerEvent& e : h.TakeEvents()) {
    if (e.has_session_added()) {
      added = true;
      EXPECT_EQ(e.session_added().protocol(), "bayeux");
    }
  }
  EXPECT_TRUE(added);
}

TEST(BayeuxTest, AHeldConnectAnswersWhenAMessageArrivesOrItsTimeoutPasses) {
  BrokerHarness h(Options());
  TestClient& native = h.Connect("native");
  LongPollClient c(h);
  c.Handshake();
  ASSERT_EQ(c.Subscribe("/feed/*")["successful"], true);

  std::unique_ptr<HttpLink> held = c.Connect();
  EXPECT_TRUE(Body(held->Take()).is_null()) << "held until something comes";
  native.Publish("feed/a", R"({"n":1})");
  Json answer = Body(held->Take());
  ASSERT_EQ(answer.size(), 2u) << answer.dump();
  EXPECT_EQ(answer[0], Json({{"channel", "/feed/a"}, {"data", {{"n", 1}}}}));
  EXPECT_EQ(answer[1]["channel"], "/meta/connect");
  EXPECT_EQ(answer[1]["successful"], true);

  // Nothing comes: the connect answers after advice.timeout (30 s).
  held = c.Connect();
  h.Advance(absl::Seconds(29));
  EXPECT_TRUE(Body(held->Take()).is_null());
  h.Advance(absl::Seconds(2));
  answer = Body(held->Take());
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0]["successful"], true);
  EXPECT_EQ(answer[0]["advice"]["reconnect"], "retry");
}

TEST(BayeuxTest, MessagesWaitInTheSessionBetweenConnects) {
  BrokerHarness h(Options());
  TestClient& native = h.Connect("native");
  LongPollClient c(h);
  c.Handshake();
  c.Subscribe("/q/**");
  native.Publish("q/1", "one");
  native.Publish("q/2/3", "two");
  Json answer = Body(c.Connect(0)->Take());
  ASSERT_EQ(answer.size(), 3u) << answer.dump();
  EXPECT_EQ(answer[0]["data"], "one");
  EXPECT_EQ(answer[1]["channel"], "/q/2/3");
}

TEST(BayeuxTest, AMessageArrivesOnceHoweverManySubscriptionsMatch) {
  BrokerHarness h(Options());
  TestClient& native = h.Connect("native");
  LongPollClient c(h);
  c.Handshake();
  c.Subscribe("/m/*");
  c.Subscribe("/m/**");
  c.Subscribe("/m/x");
  native.Publish("m/x", "once");
  Json answer = Body(c.Connect(0)->Take());
  ASSERT_EQ(answer.size(), 2u) << answer.dump();
  EXPECT_EQ(answer[0]["data"], "once");
}

TEST(BayeuxTest, ASubscribeToSeveralChannelsIsAnsweredOnceAllAreTaken) {
  BrokerHarness h(Options());
  TestClient& native = h.Connect("native");
  LongPollClient c(h);
  c.Handshake();
  Json reply = c.Exchange(Json::array(
      {{{"channel", "/meta/subscribe"},
        {"subscription", {"/s/a", "/s/b/**"}},
        {"id", "s"}},
       {{"channel", "/meta/unsubscribe"}, {"subscription", "/s/a"}}}));
  ASSERT_EQ(reply.size(), 2u) << reply.dump();
  EXPECT_EQ(reply[0]["successful"], true);
  EXPECT_EQ(reply[0]["subscription"], Json::array({"/s/a", "/s/b/**"}));
  EXPECT_EQ(reply[1]["successful"], true);
  native.Publish("s/a", "gone");
  native.Publish("s/b/1", "kept");
  Json answer = Body(c.Connect(0)->Take());
  ASSERT_EQ(answer.size(), 2u) << answer.dump();
  EXPECT_EQ(answer[0]["data"], "kept");
}

TEST(BayeuxTest, DataTravelsAsTheClientWroteItAndScalarsAsJson) {
  BrokerHarness h(Options());
  TestClient& native = h.Connect("native");
  native.Subscribe("d/*");
  LongPollClient c(h);
  c.Handshake();
  // Written by hand, white space and escapes included, as a client may.
  auto link = std::make_unique<HttpLink>(h);
  link->Send(Post(
      "/cometd",
      absl::StrCat(
          R"([{"clientId":")", c.client_id(),
          R"(","channel":"/d/1","data": { "t" : "a\u00e9\"" , "n":[1, 2.5e3] } },)",
          R"({"clientId":")", c.client_id(),
          R"(","channel":"/d/2","data":"say \"hi\""},)", R"({"clientId":")",
          c.client_id(), R"(","channel":"/d/3","data":-1.5E2,"id":17}])"),
      absl::StrCat("Cookie: ", c.cookie(), "\r\n")));
  Json reply = Body(link->Take());
  ASSERT_EQ(reply.size(), 3u) << reply.dump();
  EXPECT_EQ(reply[2]["id"], 17);
  EXPECT_EQ(native.Next().deliver().payload(),
            R"({ "t" : "a\u00e9\"" , "n":[1, 2.5e3] })");
  EXPECT_EQ(native.Next().deliver().payload(), R"("say \"hi\"")");
  EXPECT_EQ(native.Next().deliver().payload(), "-1.5E2");
}

TEST(BayeuxTest, TypePathsAreCheckedAndNamed) {
  BayeuxOptions options;
  EXPECT_TRUE(SetBayeuxTypePaths("", options).ok());
  EXPECT_TRUE(options.type_paths.empty());
  absl::Status bad = SetBayeuxTypePaths("handshake=/h,poll=/p", options);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), HasSubstr("'poll=/p'"));
  EXPECT_THAT(bad.message(), HasSubstr("handshake, connect, subscribe"));
  EXPECT_THAT(SetBayeuxTypePaths("connect=poll", options).message(),
              HasSubstr("must start with /"));
  EXPECT_THAT(SetBayeuxTypePaths("connect=/a;b", options).message(),
              HasSubstr("no ';'"));
  EXPECT_THAT(SetBayeuxTypePaths("connect=/a,connect=/b", options).message(),
              HasSubstr("'connect' more than once"));
  EXPECT_TRUE(options.type_paths.empty());  // unchanged by the failures
}

TEST(BayeuxTest, EachMessageTypeCanHaveABasePathOfItsOwn) {
  BrokerHarness h(Options());
  TestClient& native = h.Connect("native");
  HttpOptions http;
  ASSERT_TRUE(
      SetBayeuxTypePaths("handshake=/auth/handshake,connect=/poll,publish=/in",
                         http.bayeux)
          .ok());
  HttpLink link(h, http);
  link.Send(Post("/auth/handshake",
                 R"([{"channel":"/meta/handshake","version":"1.0"}])"));
  const std::string handshake = link.Take();
  Json reply = Body(handshake)[0];
  ASSERT_EQ(reply["successful"], true) << handshake;
  const std::string id = reply["clientId"];
  const std::string cookie = SetCookie(handshake);
  const std::string cookie_header = absl::StrCat("Cookie: ", cookie, "\r\n");
  // A client may append the type to a type path too, and the base path
  // keeps working.
  link.Send(Post("/cometd/subscribe",
                 absl::StrCat(R"([{"channel":"/meta/subscribe","clientId":")",
                              id, R"(","subscription":"/t/*"}])"),
                 cookie_header));
  EXPECT_EQ(Body(link.Take())[0]["successful"], true);
  native.Publish("t/1", "hello");
  link.Send(Post("/poll/connect",
                 absl::StrCat(R"([{"channel":"/meta/connect","clientId":")", id,
                              R"(","connectionType":"long-polling",)"
                              R"("advice":{"timeout":0}}])"),
                 cookie_header));
  Json answer = Body(link.Take());
  ASSERT_EQ(answer.size(), 2u) << answer.dump();
  EXPECT_EQ(answer[0]["data"], "hello");
  // Paths that are not Bayeux's stay 404.
  link.Send(Post("/polling", "[]"));
  EXPECT_THAT(link.Take(), HasSubstr("HTTP/1.1 404"));
}

TEST(BayeuxTest, PayloadsBecomeJsonTextOrBase64AndHeadersGoInExt) {
  std::string out;
  PublishOp p;
  p.topic = "t/1";
  p.payload = R"({"a":[1,2]})";
  AppendBayeuxMessage(p, out);
  EXPECT_EQ(out, R"({"channel":"/t/1","data":{"a":[1,2]}},)");
  out.clear();
  p.payload = "plain \"text\"";
  p.headers.push_back(HeaderView{"trace", "42"});
  AppendBayeuxMessage(p, out);
  EXPECT_EQ(
      out,
      R"({"channel":"/t/1","data":"plain \"text\"","ext":{"headers":{"trace":"42"}}},)");
  out.clear();
  p.headers.clear();
  p.payload = absl::string_view("\xff\x00\x01", 3);
  AppendBayeuxMessage(p, out);
  EXPECT_EQ(out, R"({"channel":"/t/1","data":"/wAB","ext":{"base64":true}},)");
  // A message a replaying subscription delivers carries its position.
  out.clear();
  p.stream_seq = 41;
  p.reply_to = "r/1";
  AppendBayeuxMessage(p, out);
  EXPECT_EQ(
      out,
      R"({"channel":"/t/1","data":"/wAB","ext":{"base64":true,"replayId":41,"replyTo":"r/1"}},)");
  p.stream_seq = 0;
  p.reply_to = {};
  // Too deep to be taken for JSON: sent as text.
  out.clear();
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  p.payload = deep;
  AppendBayeuxMessage(p, out);
  EXPECT_THAT(out, HasSubstr(R"("data":"[[[)"));
}

TEST(BayeuxTest, APublishReachesNativeSubscribersAsItsDataJson) {
  BrokerHarness h(Options());
  TestClient& native = h.Connect("native");
  native.Subscribe("chat/*");
  LongPollClient c(h);
  c.Handshake();
  Json reply = c.Exchange(Json::array(
      {{{"channel", "/chat/room"}, {"data", {{"text", "hi"}}}, {"id", "7"}}}));
  EXPECT_EQ(reply[0]["successful"], true);
  EXPECT_EQ(reply[0]["id"], "7");
  wire::ServerMessage m = native.Next();
  EXPECT_EQ(m.deliver().topic(), "chat/room");
  EXPECT_EQ(m.deliver().payload(), R"({"text":"hi"})");
}

TEST(BayeuxTest, ServiceChannelsAreRequestsToTheTopicsService) {
  BrokerHarness h(Options());
  TestClient& server = h.Connect("server");
  server.Serve("prices/quote");
  LongPollClient c(h);
  c.Handshake();
  std::unique_ptr<HttpLink> call =
      c.Start(Json::array({{{"channel", "/service/prices/quote"},
                            {"data", {{"s", "ACME"}}},
                            {"id", "r1"}}}));
  wire::ServerMessage request = server.Next();
  ASSERT_TRUE(request.has_request()) << request.DebugString();
  EXPECT_EQ(request.request().payload(), R"({"s":"ACME"})");
  EXPECT_TRUE(Body(call->Take()).is_null()) << "waits for the service";
  server.Respond(request.request().request_id(), R"({"price":12.5})");
  Json reply = Body(call->Take());
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_EQ(reply[0]["id"], "r1");
  EXPECT_EQ(reply[0]["successful"], true);
  EXPECT_EQ(reply[0]["data"], Json({{"price", 12.5}}));

  reply = c.Exchange(Json::array({{{"channel", "/service/nobody"}}}));
  EXPECT_EQ(reply[0]["successful"], false);
  EXPECT_THAT(reply[0]["error"].get<std::string>(),
              HasSubstr("503::NO_SERVER"));
}

TEST(BayeuxTest, TheBrowserCookieIsCheckedOnHttpMessages) {
  BrokerHarness h(Options());
  LongPollClient c(h);
  c.Handshake();
  ASSERT_EQ(Body(c.Connect(0)->Take())[0]["successful"], true);
  const std::string own = c.cookie();
  c.cookie() = "BAYEUX_BROWSER=0123456789012345678901234567890123456789";
  Json refused = Body(c.Connect(0)->Take());
  EXPECT_EQ(refused[0]["error"], "402::session_unknown");
  EXPECT_EQ(refused[0]["advice"]["reconnect"], "handshake");
  c.cookie() = "";
  EXPECT_EQ(Body(c.Connect(0)->Take())[0]["error"], "402::session_unknown");
  c.cookie() = own;
  EXPECT_EQ(Body(c.Connect(0)->Take())[0]["successful"], true);
}

TEST(BayeuxTest, DisconnectEndsTheSessionAndAnswersItsHeldConnect) {
  BrokerHarness h(Options());
  LongPollClient c(h);
  c.Handshake();
  std::unique_ptr<HttpLink> held = c.Connect();
  Json bye = c.Exchange(Json::array({{{"channel", "/meta/disconnect"}}}));
  EXPECT_EQ(bye[0]["successful"], true);
  Json answer = Body(held->Take());
  ASSERT_EQ(answer.size(), 1u) << answer.dump();
  EXPECT_EQ(answer[0]["successful"], true);
  EXPECT_EQ(answer[0]["advice"]["reconnect"], "none");
  EXPECT_EQ(Body(c.Connect(0)->Take())[0]["error"], "402::session_unknown");
}

TEST(BayeuxTest, ASessionNobodyPollsExpires) {
  BrokerHarness h(Options());
  LongPollClient c(h);
  c.Handshake();
  h.TakeEvents();
  h.Advance(absl::Seconds(21));
  bool removed = false;
  for (const wire::BrokerEvent& e : h.TakeEvents()) {
    removed |= e.has_session_removed();
  }
  EXPECT_TRUE(removed);
  Json answer = Body(c.Connect(0)->Take());
  EXPECT_EQ(answer[0]["error"], "402::session_unknown");
  EXPECT_EQ(answer[0]["advice"]["reconnect"], "handshake");
}

TEST(BayeuxTest, UnsubscribeEndsTheChannelsSubscriptions) {
  BrokerHarness h(Options());
  TestClient& native = h.Connect("native");
  LongPollClient c(h);
  c.Handshake();
  c.Subscribe("/u/*");
  Json reply = c.Exchange(Json::array(
      {{{"channel", "/meta/unsubscribe"}, {"subscription", "/u/*"}}}));
  EXPECT_EQ(reply[0]["successful"], true);
  EXPECT_EQ(reply[0]["subscription"], "/u/*");
  native.Publish("u/1", "gone");
  Json answer = Body(c.Connect(0)->Take());
  EXPECT_EQ(answer.size(), 1u) << answer.dump();
}

TEST(BayeuxTest, BadBatchesAreRefusedWholeAndBadMessagesOneByOne) {
  BrokerHarness h(Options());
  HttpLink link(h);
  link.Send(Post("/cometd", "{not json"));
  std::string text = link.Take();
  EXPECT_THAT(text, HasSubstr("HTTP/1.1 400"));
  EXPECT_THAT(text, HasSubstr("not valid JSON"));
  link.Send(Post("/cometd", std::string(100, '[') + std::string(100, ']')));
  EXPECT_THAT(link.Take(), HasSubstr("nests more than 64 levels deep"));
  Json many = Json::array();
  for (int i = 0; i < 101; ++i) many.push_back({{"channel", "/x"}});
  link.Send(Post("/cometd", many.dump()));
  EXPECT_THAT(link.Take(), HasSubstr("HTTP/1.1 413"));
  link.Send(Post(
      "/cometd",
      R"([{"channel":"/meta/subscribe","clientId":"c","subscription":"/meta/x"},)"
      R"({"channel":"/meta/subscribe","clientId":"c","subscription":7}])"));
  Json replies = Body(link.Take());
  EXPECT_THAT(replies[0]["error"].get<std::string>(), HasSubstr("403::"));
  EXPECT_THAT(replies[1]["error"].get<std::string>(), HasSubstr("400::"));
  EXPECT_FALSE(link.closed()) << "the connection goes on";
}

// A broker with memory stream "log" on log/**, the client that made it,
// and a native publisher.
class BayeuxReplayTest : public ::testing::Test {
 protected:
  BayeuxReplayTest() { AddMemoryStream(admin_, "log", "log/**"); }

  BrokerHarness h_{Options()};
  TestClient& admin_ = h_.Connect("admin");
  TestClient& pub_ = h_.Connect("pub");
};

// A subscribe with ext.replay replays the stream after the replayId, its
// messages carry theirs, and its reply says where it starts: what a client
// needs to resume after a broker restart.
TEST_F(BayeuxReplayTest, AChannelAStreamStoresReplaysAfterTheReplayIdInExt) {
  pub_.Publish("log/a", "one");  // seq 1
  pub_.Publish("log/b", "two");  // seq 2

  LongPollClient c(h_);
  c.Handshake();
  Json reply = c.Exchange(Json::array(
      {{{"channel", "/meta/subscribe"},
        {"subscription", {"/log/*", "/plain"}},
        {"ext",
         {{"replay", {{"/log/*", 1}, {"/plain", 5}, {"/other", 9}}}}}}}));
  ASSERT_EQ(reply.size(), 1u) << reply.dump();
  EXPECT_EQ(reply[0]["successful"], true) << reply.dump();
  // No stream stores /plain: an ordinary subscription, with no position.
  EXPECT_EQ(reply[0]["ext"], Json({{"replay", {{"/log/*", 1}}}}));
  pub_.Publish("log/a", "three");  // seq 3
  pub_.Publish("plain", "live");
  Json answer = Body(c.Connect(0)->Take());
  ASSERT_EQ(answer.size(), 4u) << answer.dump();
  EXPECT_EQ(answer[0], Json({{"channel", "/log/b"},
                             {"data", "two"},
                             {"ext", {{"replayId", 2}}}}));
  EXPECT_EQ(answer[1], Json({{"channel", "/log/a"},
                             {"data", "three"},
                             {"ext", {{"replayId", 3}}}}));
  EXPECT_EQ(answer[2], Json({{"channel", "/plain"}, {"data", "live"}}));
  EXPECT_EQ(answer[3]["channel"], "/meta/connect");

  // -1: new messages, from the position the reply names; -2: all held.
  LongPollClient fresh(h_);
  fresh.Handshake();
  reply = fresh.Exchange(
      Json::array({{{"channel", "/meta/subscribe"},
                    {"subscription", "/log/**"},
                    {"ext", {{"replay", {{"/log/**", kReplayNew}}}}}},
                   {{"channel", "/meta/subscribe"},
                    {"subscription", "/log/a"},
                    {"ext", {{"replay", {{"/log/a", kReplayAll}}}}}}}));
  ASSERT_EQ(reply.size(), 2u) << reply.dump();
  EXPECT_EQ(reply[0]["ext"], Json({{"replay", {{"/log/**", 3}}}}));
  EXPECT_EQ(reply[1]["ext"], Json({{"replay", {{"/log/a", 0}}}}));
  pub_.Publish("log/c", "four");  // seq 4
  answer = Body(fresh.Connect(0)->Take());
  std::vector<std::pair<std::string, int>> got;
  for (const Json& m : answer) {
    if (m["channel"] == "/meta/connect") continue;
    got.emplace_back(m["data"], m["ext"]["replayId"]);
  }
  EXPECT_THAT(got, ::testing::UnorderedElementsAre(
                       std::pair<std::string, int>{"one", 1},
                       std::pair<std::string, int>{"three", 3},
                       std::pair<std::string, int>{"four", 4}));
}

// A message a replaying subscription matches reaches the session once, from
// the stream with its replayId, however many of the session's subscriptions
// match it; once the replay ends, the other subscriptions bring it live again.
TEST_F(BayeuxReplayTest, AMessageAReplayDeliversIsNotAlsoDeliveredLive) {
  pub_.Publish("log/a", "one");  // seq 1

  LongPollClient c(h_);
  c.Handshake();
  ASSERT_EQ(c.Subscribe("/log/*")["successful"], true);
  ASSERT_EQ(c.Subscribe("/log/**")["successful"], true);
  Json reply = c.Exchange(
      Json::array({{{"channel", "/meta/subscribe"},
                    {"subscription", "/log/a"},
                    {"ext", {{"replay", {{"/log/a", kReplayAll}}}}}}}));
  ASSERT_EQ(reply[0]["successful"], true) << reply.dump();
  pub_.Publish("log/a", "two");    // seq 2: the replay and both others match
  pub_.Publish("log/b", "three");  // seq 3: only the ordinary ones
  pub_.Publish("log/a", "four");   // seq 4
  std::vector<std::string> got;
  std::vector<std::string> ids;
  for (int polls = 0; polls < 3 && got.size() < 4; ++polls) {
    for (const Json& m : Body(c.Connect(0)->Take())) {
      if (m["channel"] == "/meta/connect") continue;
      got.push_back(m["data"]);
      ids.push_back(m.contains("ext") ? m["ext"]["replayId"].dump() : "live");
    }
  }
  // Each once; log/a's from the stream, in its order.
  EXPECT_THAT(got,
              ::testing::UnorderedElementsAre("one", "two", "three", "four"));
  std::vector<std::string> replayed;
  for (size_t k = 0; k < got.size(); ++k) {
    if (got[k] == "three") {
      EXPECT_EQ(ids[k], "live");
    } else {
      replayed.push_back(absl::StrCat(got[k], "@", ids[k]));
    }
  }
  EXPECT_THAT(replayed, ::testing::ElementsAre("one@1", "two@2", "four@4"));

  // Unsubscribed, the replay no longer delivers: the others do, once.
  ASSERT_EQ(
      c.Exchange(Json::array({{{"channel", "/meta/unsubscribe"},
                               {"subscription", "/log/a"}}}))[0]["successful"],
      true);
  pub_.Publish("log/a", "five");
  Json answer = Body(c.Connect(0)->Take());
  ASSERT_EQ(answer.size(), 2u) << answer.dump();
  EXPECT_EQ(answer[0], Json({{"channel", "/log/a"}, {"data", "five"}}));
}

// "data@replayId" of each message the session `c` gets in three polls
// ("data@live" for one without a replayId).
std::vector<std::string> Brought(LongPollClient& c) {
  std::vector<std::string> got;
  for (int polls = 0; polls < 3; ++polls) {
    for (const Json& m : Body(c.Connect(0)->Take())) {
      if (m["channel"] == "/meta/connect") continue;
      got.push_back(absl::StrCat(
          m["data"].get<std::string>(), "@",
          m.contains("ext") ? m["ext"]["replayId"].dump() : "live"));
    }
  }
  return got;
}

// Of two replaying subscriptions that match a message, the one that reaches
// it first brings it and the other passes it over. A replay subscribed later
// still brings the history it asks for, although the others brought it.
TEST_F(BayeuxReplayTest, TwoReplaysThatOverlapBringAMessageOnce) {
  pub_.Publish("log/a", "one");    // seq 1
  pub_.Publish("log/b", "two");    // seq 2
  pub_.Publish("log/a", "three");  // seq 3

  LongPollClient c(h_);
  c.Handshake();
  Json reply =
      c.Exchange(Json::array({{{"channel", "/meta/subscribe"},
                               {"subscription", "/log/*"},
                               {"ext", {{"replay", {{"/log/*", kReplayAll}}}}}},
                              {{"channel", "/meta/subscribe"},
                               {"subscription", "/log/a"},
                               {"ext", {{"replay", {{"/log/a", 1}}}}}}}));
  ASSERT_EQ(reply.size(), 2u) << reply.dump();
  pub_.Publish("log/a", "four");  // seq 4: both match
  pub_.Publish("log/b", "five");  // seq 5
  EXPECT_THAT(Brought(c), ::testing::UnorderedElementsAre(
                              "one@1", "two@2", "three@3", "four@4", "five@5"));

  ASSERT_EQ(
      c.Exchange(Json::array({{{"channel", "/meta/unsubscribe"},
                               {"subscription", "/log/*"}}}))[0]["successful"],
      true);
  pub_.Publish("log/a", "six");  // seq 6
  EXPECT_THAT(Brought(c), ::testing::ElementsAre("six@6"));

  // A new replay of what /log/a brought: that history comes again, and
  // what comes next once.
  reply = c.Exchange(Json::array({{{"channel", "/meta/subscribe"},
                                   {"subscription", "/log/**"},
                                   {"ext", {{"replay", {{"/log/**", 3}}}}}}}));
  ASSERT_EQ(reply[0]["successful"], true) << reply.dump();
  pub_.Publish("log/a", "seven");  // seq 7
  EXPECT_THAT(Brought(c), ::testing::UnorderedElementsAre("four@4", "five@5",
                                                          "six@6", "seven@7"));
}

// The session's codec, given stored messages one at a time: which
// deliveries it writes.
class ReplayingSession {
 public:
  void Start(uint64_t subscription, absl::string_view pattern) {
    codec_.StartedReplay(SubscriptionId(subscription), pattern);
  }
  void End(uint64_t subscription) {
    codec_.EndedReplay(SubscriptionId(subscription));
  }
  // Whether `subscription`'s delivery of `topic`'s message `seq` (0: live)
  // is written.
  bool Brings(uint64_t subscription, uint64_t seq, absl::string_view topic) {
    PublishOp publish;
    publish.topic = topic;
    publish.payload = "x";
    publish.stream_seq = seq;
    SharedMessage::Scratch scratch;
    SharedMessage message(publish, scratch);
    const size_t before = out_.size();
    codec_.EncodeDelivery(message, SubscriptionId(subscription), out_);
    return out_.size() > before;
  }

 private:
  BayeuxSessionCodec codec_;
  OutboundBuffer out_;
};

// A replay that lags keeps passing over what another brought while both
// went on, also after that one ended; what one brought before the other
// started is history the other still brings.
TEST(BayeuxSessionCodecTest, AReplayPassesOverWhatAnotherBroughtMeanwhile) {
  ReplayingSession s;
  s.Start(1, "log/*");
  EXPECT_TRUE(s.Brings(1, 1, "log/a"));
  s.Start(2, "log/a");  // after subscription 1 brought seq 1
  EXPECT_TRUE(s.Brings(1, 2, "log/b"));
  EXPECT_TRUE(s.Brings(1, 3, "log/a"));
  EXPECT_TRUE(s.Brings(1, 4, "log/a"));
  EXPECT_FALSE(s.Brings(1, 0, "log/a")) << "a live copy a replay brings";
  EXPECT_TRUE(s.Brings(1, 0, "other")) << "a live copy no replay brings";
  s.End(1);
  EXPECT_TRUE(s.Brings(2, 1, "log/a")) << "history before it started";
  EXPECT_FALSE(s.Brings(2, 3, "log/a"));
  EXPECT_FALSE(s.Brings(2, 4, "log/a"));
  EXPECT_TRUE(s.Brings(2, 5, "log/a"));
  // The other way round: the one ahead brings, the lagging one passes over.
  s.Start(3, "log/**");
  EXPECT_TRUE(s.Brings(2, 6, "log/a"));
  EXPECT_TRUE(s.Brings(3, 5, "log/a")) << "brought before 3 started";
  EXPECT_FALSE(s.Brings(3, 6, "log/a"));
  EXPECT_TRUE(s.Brings(3, 7, "log/c"));
}

// Ended replays are kept for the lagging ones only up to a bound: beyond
// it, the oldest goes, and what it brought comes again (twice, never not at
// all).
TEST(BayeuxSessionCodecTest, EndedReplaysAreKeptUpToABound) {
  ReplayingSession s;
  s.Start(1, "log/*");  // lags
  for (uint64_t k = 0; k < 17; ++k) {
    s.Start(10 + k, "log/*");
    EXPECT_TRUE(s.Brings(10 + k, 1 + k, "log/a"));
    s.End(10 + k);
  }
  EXPECT_TRUE(s.Brings(1, 1, "log/a")) << "the oldest ended replay's";
  for (uint64_t seq = 2; seq <= 17; ++seq) {
    EXPECT_FALSE(s.Brings(1, seq, "log/a")) << seq;
  }
  EXPECT_TRUE(s.Brings(1, 18, "log/a"));
}

// A subscription the broker ends (here: its stream is removed) reaches the
// client as an unsuccessful /meta/unsubscribe that names the channel and
// why, rather than going quiet.
TEST_F(BayeuxReplayTest,
       ASubscriptionTheBrokerEndsIsSaidAsAnUnsuccessfulUnsubscribe) {
  LongPollClient c(h_);
  c.Handshake();
  Json reply = c.Exchange(
      Json::array({{{"channel", "/meta/subscribe"},
                    {"subscription", "/log/*"},
                    {"ext", {{"replay", {{"/log/*", kReplayNew}}}}}}}));
  ASSERT_EQ(reply[0]["successful"], true) << reply.dump();
  std::unique_ptr<HttpLink> held = c.Connect();
  admin_.Request(sys_topics::kStreamRemove, "log");
  wire::ServerMessage removed = admin_.Next();
  ASSERT_EQ(removed.response().status(), wire::REQUEST_OK)
      << removed.DebugString();
  Json answer = Body(held->Take());
  ASSERT_EQ(answer.size(), 2u) << answer.dump();
  EXPECT_EQ(answer[0]["channel"], "/meta/unsubscribe");
  EXPECT_EQ(answer[0]["subscription"], "/log/*");
  EXPECT_EQ(answer[0]["successful"], false);
  EXPECT_THAT(answer[0]["error"].get<std::string>(),
              HasSubstr("::UNKNOWN_STREAM: "));
  EXPECT_EQ(answer[1]["channel"], "/meta/connect");
  // The session goes on; the channel can be subscribed to again.
  EXPECT_EQ(c.Subscribe("/log/*")["successful"], true);
}

TEST(BayeuxTest, AReplayIdThatIsNotOneIsRefusedByName) {
  BrokerHarness h(Options());
  LongPollClient c(h);
  // A handshake's "replay":true (as some clients send) is no position.
  EXPECT_EQ(
      c.Exchange(Json::array({{{"channel", "/meta/handshake"},
                               {"version", "1.0"},
                               {"ext", {{"replay", true}}}}}))[0]["successful"],
      true);
  c.Handshake();
  for (const Json& bad : {Json("7"), Json(-3), Json(1.5), Json::object()}) {
    Json reply = c.Exchange(
        Json::array({{{"channel", "/meta/subscribe"},
                      {"subscription", "/log/*"},
                      {"ext", {{"replay", {{"/log/*", bad}}}}}}}))[0];
    EXPECT_EQ(reply["successful"], false) << bad.dump();
    EXPECT_THAT(reply["error"].get<std::string>(),
                HasSubstr("400::ext.replay for /log/* must be a replayId"))
        << bad.dump();
  }
}

TEST(BayeuxTest,
     WebSocketCarriesBatchesAndStreamsMessagesWhileTheConnectIsHeld) {
  BrokerHarness h(Options());
  TestClient& native = h.Connect("native");
  HttpLink ws(h);
  ws.Send(Upgrade("/cometd", ""));
  EXPECT_THAT(ws.Take(), HasSubstr("101 Switching Protocols"));
  auto send = [&](const Json& messages) {
    ws.Send(ClientFrame(0x1, messages.dump()));
    std::vector<Json> out;
    for (const std::string& p : ServerPayloads(ws.Take())) {
      out.push_back(Json::parse(p));
    }
    return out;
  };
  std::vector<Json> got =
      send(Json::array({{{"channel", "/meta/handshake"}, {"version", "1.0"}}}));
  ASSERT_EQ(got.size(), 1u);
  const std::string id = got[0][0]["clientId"];
  got = send(Json::array({{{"channel", "/meta/subscribe"},
                           {"clientId", id},
                           {"subscription", "/w/*"}}}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0][0]["successful"], true);
  got = send(Json::array({{{"channel", "/meta/connect"},
                           {"clientId", id},
                           {"connectionType", "websocket"}}}));
  EXPECT_TRUE(got.empty()) << "the connect is held";
  native.Publish("w/1", "streamed");
  std::vector<std::string> frames = ServerPayloads(ws.Take());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(Json::parse(frames[0]),
            Json::array({{{"channel", "/w/1"}, {"data", "streamed"}}}));
  // A publish on the same WebSocket is answered while the connect is held.
  got = send(Json::array(
      {{{"channel", "/w/2"}, {"clientId", id}, {"data", 1}, {"id", "p"}}}));
  ASSERT_GE(got.size(), 1u);
  bool acked = false;
  for (const Json& batch : got) {
    for (const Json& m : batch) acked |= m.value("id", "") == "p";
  }
  EXPECT_TRUE(acked);
  h.Advance(absl::Seconds(31));
  frames = ServerPayloads(ws.Take());
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(Json::parse(frames.back())[0]["channel"], "/meta/connect");
}

// Over a WebSocket, a batch whose every message is refused is answered at
// once, in one text frame that names each refusal, and the WebSocket goes on.
TEST(BayeuxTest, AWebSocketBatchRefusedMessageByMessageIsAnsweredAndGoesOn) {
  BrokerHarness h(Options());
  HttpLink ws(h);
  ws.Send(Upgrade("/cometd", ""));
  EXPECT_THAT(ws.Take(), HasSubstr("101 Switching Protocols"));
  ws.Send(ClientFrame(
      0x1,
      R"([{"channel":"/meta/subscribe","clientId":"c","subscription":"/meta/x"},)"
      R"({"channel":"/meta/subscribe","clientId":"c","subscription":7}])"));
  std::vector<std::string> frames = ServerPayloads(ws.Take());
  ASSERT_EQ(frames.size(), 1u);
  const Json replies = Json::parse(frames[0], nullptr, false);
  ASSERT_EQ(replies.size(), 2u) << frames[0];
  EXPECT_THAT(replies[0]["error"].get<std::string>(), HasSubstr("403::"));
  EXPECT_THAT(replies[1]["error"].get<std::string>(), HasSubstr("400::"));
  ws.Send(ClientFrame(
      0x1, R"([{"channel":"/meta/handshake","version":"1.0","id":"h"}])"));
  frames = ServerPayloads(ws.Take());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(Json::parse(frames[0])[0]["successful"], true);
  EXPECT_FALSE(ws.closed()) << "the WebSocket goes on";
}

}  // namespace
}  // namespace manifold
