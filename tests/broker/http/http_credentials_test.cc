// Credentials on the web front end against a real Broker that requires
// admission: what each way in (REST, Server-Sent Events, WebSockets with
// native, JSON or NATS inside, Bayeux over long-polling and WebSocket)
// hands to the embedder, and what each client sees when it is refused.
#include "broker/http/http_credentials.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "broker/http/bayeux.h"
#include "broker/http/http_codec.h"
#include "core/framing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/broker/http/http_test_link.h"
#include "tests/testing/broker_harness.h"

namespace manifold {
namespace {

using Json = nlohmann::json;
using testing::BrokerHarness;
using testing::ClientFrame;
using testing::Get;
using ::testing::HasSubstr;
using testing::HttpLink;
using testing::Post;
using testing::ServerPayloads;
using testing::Statuses;
using testing::Upgrade;

BrokerOptions AdmissionRequired() {
  BrokerOptions options;
  options.set_require_admission(true);
  return options;
}

std::string Basic(absl::string_view user, absl::string_view password) {
  return absl::StrCat("Authorization: Basic ",
                      absl::Base64Escape(absl::StrCat(user, ":", password)),
                      "\r\n");
}

// The ConnectionPending events the broker emitted since the last call.
std::vector<wire::ConnectionPending> Pending(BrokerHarness& h) {
  std::vector<wire::ConnectionPending> out;
  for (const wire::BrokerEvent& e : h.TakeEvents()) {
    if (e.has_connection_pending()) out.push_back(e.connection_pending());
  }
  return out;
}

ConnectionId IdOf(const wire::ConnectionPending& pending) {
  return ConnectionId(pending.session_id());
}

// The body of the one response in `text`.
std::string BodyOf(absl::string_view text) {
  const size_t end = text.find("\r\n\r\n");
  return end == absl::string_view::npos ? ""
                                        : std::string(text.substr(end + 4));
}

// The close code of a WebSocket close frame's payload.
int CloseCode(absl::string_view payload) {
  return payload.size() < 2 ? 0
                            : static_cast<uint8_t>(payload[0]) << 8 |
                                  static_cast<uint8_t>(payload[1]);
}

// --- The Authorization header
// -------------------------------------------------

TEST(ParseAuthorizationTest, BearerIsATokenAndBasicAUserAndPassword) {
  absl::StatusOr<ClientCredentials> bearer = ParseAuthorization("Bearer t0k");
  ASSERT_TRUE(bearer.ok());
  EXPECT_EQ(bearer->token, "t0k");
  EXPECT_EQ(bearer->user, "");
  absl::StatusOr<ClientCredentials> basic =
      ParseAuthorization(absl::StrCat("basic ", absl::Base64Escape("al:i:ce")));
  ASSERT_TRUE(basic.ok());
  EXPECT_EQ(basic->user, "al");
  EXPECT_EQ(basic->password, "i:ce");  // split at the first ':'
  EXPECT_EQ(basic->token, "");
}

TEST(ParseAuthorizationTest, MalformedHeadersNameTheirProblem) {
  EXPECT_THAT(ParseAuthorization("Digest x").status().message(),
              HasSubstr("'Digest' is not supported"));
  EXPECT_THAT(ParseAuthorization("Bearer").status().message(),
              HasSubstr("no token"));
  EXPECT_THAT(ParseAuthorization("Basic !!!").status().message(),
              HasSubstr("not base64"));
  EXPECT_THAT(
      ParseAuthorization(absl::StrCat("Basic ", absl::Base64Escape("nocolon")))
          .status()
          .message(),
      HasSubstr("not user:password"));
}

TEST(ClientCredentialsTest, AHellosOwnCredentialsWin) {
  ClientCredentials header;
  header.user = "u";
  header.password = "p";
  wire::Hello own;
  own.set_auth_token("mine");
  header.FillHello(own);
  EXPECT_EQ(own.auth_token(), "mine");
  EXPECT_EQ(own.user(), "");
  wire::Hello none;
  header.FillHello(none);
  EXPECT_EQ(none.user(), "u");
  EXPECT_EQ(none.password(), "p");
}

// --- Bayeux ext.auth
// ------------------------------------------------------------

ClientCredentials HandshakeCredentials(absl::string_view body) {
  static const BayeuxOptions options;
  BayeuxBatch::Context context;
  context.options = &options;
  context.make_session_codec = []() -> std::unique_ptr<ProtocolCodec> {
    return nullptr;
  };
  uint64_t last_op_id = 0;
  absl::StatusOr<std::unique_ptr<BayeuxBatch>> batch =
      BayeuxBatch::Parse(body, std::move(context), last_op_id);
  EXPECT_TRUE(batch.ok()) << batch.status();
  return batch.ok() ? (*batch)->handshake_credentials() : ClientCredentials();
}

TEST(BayeuxCredentialsTest, OnlyStringsDirectlyInAHandshakesExtAuthCount) {
  const ClientCredentials c = HandshakeCredentials(
      R"([{"channel":"/meta/handshake","ext":{"auth":{"user":1,)"
      R"("password":"p","more":{"token":"x"}},"token":"y"}}])");
  EXPECT_EQ(c.user, "");
  EXPECT_EQ(c.password, "p");
  EXPECT_EQ(c.token, "");
  EXPECT_TRUE(HandshakeCredentials(
                  R"([{"channel":"/meta/handshake","ext":{"auth":"t"}}])")
                  .empty());
  // Other messages' ext is not the handshake's.
  EXPECT_TRUE(
      HandshakeCredentials(R"([{"channel":"/meta/connect","clientId":"c",)"
                           R"("ext":{"auth":{"token":"t"}}}])")
          .empty());
  EXPECT_EQ(HandshakeCredentials(R"({"channel":"/meta/handshake",)"
                                 R"("ext":{"auth":{"token":"t"}}})")
                .token,
            "t");
}

// --- REST and Server-Sent Events
// ----------------------------------------------

TEST(HttpCredentialsTest, BasicCredentialsOfAPublishReachAdmission) {
  BrokerHarness h(AdmissionRequired());
  HttpLink link(h);
  link.Send(Post("/pub/a", "hi", Basic("alice", "s3cret")));
  std::vector<wire::ConnectionPending> pending = Pending(h);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].user(), "alice");
  EXPECT_EQ(pending[0].password(), "s3cret");
  EXPECT_EQ(pending[0].auth_token(), "");
  EXPECT_EQ(link.Take(), "");  // the publish waits for admission
  ASSERT_TRUE(h.broker().Admit(IdOf(pending[0]), h.now()).ok());
  h.Pump();
  EXPECT_THAT(link.Take(), HasSubstr("{\"delivered\":0}"));
}

TEST(HttpCredentialsTest, ARefusedRequestGets401WithChallengesAndTheReason) {
  BrokerHarness h(AdmissionRequired());
  HttpLink link(h);
  link.Send(Post("/req/svc", "q", "Authorization: Bearer nope\r\n"));
  std::vector<wire::ConnectionPending> pending = Pending(h);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].auth_token(), "nope");
  ASSERT_TRUE(
      h.broker().Refuse(IdOf(pending[0]), "unknown token", h.now()).ok());
  h.Pump();
  const std::string out = link.Take();
  EXPECT_EQ(Statuses(out), std::vector<int>{401});
  EXPECT_THAT(out, HasSubstr("WWW-Authenticate: Basic realm=\"manifold\""));
  EXPECT_THAT(out, HasSubstr("WWW-Authenticate: Bearer realm=\"manifold\""));
  EXPECT_THAT(BodyOf(out), HasSubstr("connection refused: unknown token"));
  EXPECT_TRUE(link.closed());
}

TEST(HttpCredentialsTest, AMalformedAuthorizationIs400AndAsksNoAdmission) {
  BrokerHarness h(AdmissionRequired());
  HttpLink link(h);
  link.Send(Post("/pub/a", "hi", "Authorization: Basic %%%\r\n"));
  const std::string out = link.Take();
  EXPECT_EQ(Statuses(out), std::vector<int>{400});
  EXPECT_THAT(BodyOf(out), HasSubstr("not base64"));
  EXPECT_TRUE(Pending(h).empty());
}

TEST(HttpCredentialsTest, OtherCredentialsLaterOnTheConnectionAre401) {
  BrokerHarness h(AdmissionRequired());
  HttpLink link(h);
  link.Send(Post("/pub/a", "1", Basic("alice", "pw")));
  std::vector<wire::ConnectionPending> pending = Pending(h);
  ASSERT_EQ(pending.size(), 1u);
  ASSERT_TRUE(h.broker().Admit(IdOf(pending[0]), h.now()).ok());
  h.Pump();
  EXPECT_EQ(Statuses(link.Take()), std::vector<int>{200});
  link.Send(Post("/pub/a", "2", Basic("alice", "pw")));
  EXPECT_EQ(Statuses(link.Take()), std::vector<int>{200});
  link.Send(Post("/pub/a", "3", Basic("mallory", "pw")));
  const std::string out = link.Take();
  EXPECT_EQ(Statuses(out), std::vector<int>{401});
  EXPECT_THAT(BodyOf(out), HasSubstr("credentials differ"));
  EXPECT_TRUE(link.closed());
}

TEST(HttpCredentialsTest,
     AnEventStreamsCredentialsReachAdmissionAndARefusalIs401) {
  BrokerHarness h(AdmissionRequired());
  HttpLink sse(h);
  sse.Send(Get("/sse?topic=feed", "Authorization: Bearer abc\r\n"));
  std::vector<wire::ConnectionPending> pending = Pending(h);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].auth_token(), "abc");
  ASSERT_TRUE(h.broker().Refuse(IdOf(pending[0]), "expired", h.now()).ok());
  h.Pump();
  const std::string out = sse.Take();
  EXPECT_EQ(Statuses(out), std::vector<int>{401});
  EXPECT_THAT(out, HasSubstr("WWW-Authenticate: Basic"));
  EXPECT_THAT(BodyOf(out), HasSubstr("expired"));
}

// --- WebSockets
// ----------------------------------------------------------------

TEST(HttpCredentialsTest, TheUpgradesCredentialsGoToANativeHelloWithoutAny) {
  BrokerHarness h(AdmissionRequired());
  HttpLink ws(h);
  ws.Send(absl::StrCat(Upgrade("/ws", "manifold.v1")
                           .substr(0, Upgrade("/ws", "manifold.v1").size() - 2),
                       Basic("bob", "pw"), "\r\n"));
  EXPECT_THAT(ws.Take(), HasSubstr("101 Switching Protocols"));
  wire::ClientMessage hello;
  hello.mutable_hello()->set_protocol_version(1);
  ws.Send(ClientFrame(0x2, EncodeFrame(hello)));
  std::vector<wire::ConnectionPending> pending = Pending(h);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].user(), "bob");
  EXPECT_EQ(pending[0].password(), "pw");
  ASSERT_TRUE(h.broker().Refuse(IdOf(pending[0]), "no", h.now()).ok());
  h.Pump();
  std::vector<int> opcodes;
  std::vector<std::string> frames = ServerPayloads(ws.Take(), &opcodes);
  ASSERT_EQ(frames.size(), 2u);
  // The native refusal, then the close.
  FrameDecoder decoder(FrameDecoder::Options{.max_frame_bytes = 1 << 20});
  decoder.Append(frames[0]);
  wire::ServerMessage refusal;
  ASSERT_TRUE(decoder.Next(refusal).ok());
  EXPECT_EQ(refusal.error().code(), wire::REFUSED);
  EXPECT_EQ(opcodes[1], 0x8);
  EXPECT_EQ(CloseCode(frames[1]), 1008);
}

TEST(HttpCredentialsTest, AJsonHellosOwnTokenWinsOverTheUpgrades) {
  BrokerHarness h(AdmissionRequired());
  HttpLink ws(h);
  const std::string upgrade = Upgrade("/ws", "manifold.json");
  ws.Send(absl::StrCat(upgrade.substr(0, upgrade.size() - 2),
                       Basic("bob", "pw"), "\r\n"));
  ws.Take();
  ws.Send(
      ClientFrame(0x1, R"({"hello":{"protocolVersion":1,"authToken":"own"}})"));
  std::vector<wire::ConnectionPending> pending = Pending(h);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].auth_token(), "own");
  EXPECT_EQ(pending[0].user(), "");
}

TEST(HttpCredentialsTest, NatsConnectCredentialsWinAndARefusalIsNatsServers) {
  BrokerHarness h(AdmissionRequired());
  HttpLink ws(h);
  const std::string upgrade = Upgrade("/nats", "");
  ws.Send(absl::StrCat(upgrade.substr(0, upgrade.size() - 2),
                       "Authorization: Bearer from-header\r\n\r\n"));
  ws.Take();  // 101 and INFO
  ws.Send(ClientFrame(
      0x2,
      "CONNECT {\"verbose\":false,\"user\":\"n\",\"pass\":\"p\"}\r\n"
      "PING\r\n"));
  std::vector<wire::ConnectionPending> pending = Pending(h);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].user(), "n");
  EXPECT_EQ(pending[0].password(), "p");
  EXPECT_EQ(pending[0].auth_token(), "");
  ASSERT_TRUE(h.broker().Refuse(IdOf(pending[0]), "bad pass", h.now()).ok());
  h.Pump();
  std::vector<int> opcodes;
  std::vector<std::string> frames = ServerPayloads(ws.Take(), &opcodes);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0], "-ERR 'Authorization Violation'\r\n");
  EXPECT_EQ(opcodes[1], 0x8);
  EXPECT_EQ(frames[1].substr(2), "Authorization Violation");
}

TEST(HttpCredentialsTest, ANatsConnectWithoutCredentialsTakesTheUpgrades) {
  BrokerHarness h(AdmissionRequired());
  HttpLink ws(h);
  const std::string upgrade = Upgrade("/nats", "");
  ws.Send(absl::StrCat(upgrade.substr(0, upgrade.size() - 2),
                       "Authorization: Bearer from-header\r\n\r\n"));
  ws.Take();
  ws.Send(ClientFrame(0x2, "CONNECT {\"verbose\":false}\r\nPING\r\n"));
  std::vector<wire::ConnectionPending> pending = Pending(h);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].auth_token(), "from-header");
  ASSERT_TRUE(h.broker().Admit(IdOf(pending[0]), h.now()).ok());
  h.Pump();
  EXPECT_EQ(ServerPayloads(ws.Take()), std::vector<std::string>{"PONG\r\n"});
}

// --- Bayeux
// ----------------------------------------------------------------------

TEST(HttpCredentialsTest, BayeuxHandshakeExtAuthReachesAdmission) {
  BrokerHarness h(AdmissionRequired());
  HttpLink link(h);
  link.Send(Post("/cometd", R"([{"channel":"/meta/handshake","version":"1.0",)"
                            R"("ext":{"other":{"user":"x"},)"
                            R"("auth":{"user":"carol","password":"pw"}}}])"));
  std::vector<wire::ConnectionPending> pending = Pending(h);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].user(), "carol");
  EXPECT_EQ(pending[0].password(), "pw");
  ASSERT_TRUE(h.broker().Admit(IdOf(pending[0]), h.now()).ok());
  h.Pump();
  const Json reply = Json::parse(BodyOf(link.Take()));
  EXPECT_EQ(reply[0]["successful"], true);
  EXPECT_EQ(reply[0]["clientId"].get<std::string>().size(), 40u);
}

TEST(HttpCredentialsTest, ARefusedBayeuxHandshakeSays401AndNotToReconnect) {
  BrokerHarness h(AdmissionRequired());
  HttpLink link(h);
  link.Send(Post("/cometd", R"([{"channel":"/meta/handshake","version":"1.0",)"
                            R"("id":"1","ext":{"auth":{"token":"t"}}}])"));
  std::vector<wire::ConnectionPending> pending = Pending(h);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].auth_token(), "t");
  ASSERT_TRUE(
      h.broker().Refuse(IdOf(pending[0]), "token revoked", h.now()).ok());
  h.Pump();
  const std::string out = link.Take();
  EXPECT_EQ(Statuses(out), std::vector<int>{200});
  const Json reply = Json::parse(BodyOf(out));
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_EQ(reply[0]["channel"], "/meta/handshake");
  EXPECT_EQ(reply[0]["id"], "1");
  EXPECT_EQ(reply[0]["successful"], false);
  EXPECT_EQ(reply[0]["error"], "401::token revoked");
  EXPECT_EQ(reply[0]["advice"]["reconnect"], "none");
  EXPECT_TRUE(link.closed());
}

// The BAYEUX_BROWSER cookie a response sets ("" none).
std::string BrowserCookieOf(absl::string_view response) {
  const absl::string_view name = "BAYEUX_BROWSER=";
  const size_t at = response.find(name);
  if (at == absl::string_view::npos) return "";
  const size_t start = at + name.size();
  const size_t end = response.find_first_of(";\r", start);
  return std::string(response.substr(start, end - start));
}

// Opens a long-polling Bayeux session logged in as `user` (admitted with
// that name); returns its clientId and browser cookie.
std::pair<std::string, std::string> LoggedInSession(BrokerHarness& h,
                                                    absl::string_view user) {
  HttpLink link(h);
  link.Send(
      Post("/cometd", absl::StrCat(R"([{"channel":"/meta/handshake",)",
                                   R"("version":"1.0","ext":{"auth":{"user":")",
                                   user, R"(","password":"pw"}}}])")));
  std::vector<wire::ConnectionPending> pending = Pending(h);
  EXPECT_EQ(pending.size(), 1u);
  if (pending.empty()) return {};
  EXPECT_TRUE(
      h.broker()
          .Admit(IdOf(pending[0]), Grant{std::string(user), nullptr}, h.now())
          .ok());
  h.Pump();
  const std::string out = link.Take();
  const Json reply = Json::parse(BodyOf(out));
  return {reply[0]["clientId"].get<std::string>(), BrowserCookieOf(out)};
}

TEST(HttpCredentialsTest, ALaterLongPollWithoutCredentialsClaimsItsSession) {
  BrokerHarness h(AdmissionRequired());
  const auto [client_id, cookie] = LoggedInSession(h, "carol");
  ASSERT_EQ(client_id.size(), 40u);
  ASSERT_FALSE(cookie.empty());
  // A new connection, as long-polling opens now and then, with the
  // session's clientId and cookie but no credentials.
  HttpLink next(h);
  next.Send(
      Post("/cometd",
           absl::StrCat(R"([{"channel":"/meta/connect","clientId":")",
                        client_id, R"(","connectionType":"long-polling",)",
                        R"("advice":{"timeout":0}}])"),
           absl::StrCat("Cookie: BAYEUX_BROWSER=", cookie, "\r\n")));
  std::vector<wire::ConnectionPending> pending = Pending(h);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].session_user(), "carol");
  EXPECT_EQ(pending[0].user(), "");
  EXPECT_EQ(pending[0].auth_token(), "");
  ASSERT_TRUE(h.broker()
                  .Admit(IdOf(pending[0]), Grant{"carol", nullptr}, h.now())
                  .ok());
  h.Pump();
  const Json reply = Json::parse(BodyOf(next.Take()));
  EXPECT_EQ(reply[0]["channel"], "/meta/connect");
  EXPECT_EQ(reply[0]["successful"], true);
}

TEST(HttpCredentialsTest, AClaimWithAWrongCookieOrUnknownClientIdNamesNobody) {
  BrokerHarness h(AdmissionRequired());
  const auto [client_id, cookie] = LoggedInSession(h, "carol");
  ASSERT_EQ(client_id.size(), 40u);
  const std::string connect =
      absl::StrCat(R"([{"channel":"/meta/connect","clientId":")", client_id,
                   R"(","connectionType":"long-polling"}])");
  HttpLink wrong_cookie(h);
  wrong_cookie.Send(
      Post("/cometd", connect, "Cookie: BAYEUX_BROWSER=0123456789\r\n"));
  HttpLink no_cookie(h);
  no_cookie.Send(Post("/cometd", connect));
  HttpLink unknown(h);
  unknown.Send(Post("/cometd",
                    R"([{"channel":"/meta/connect","clientId":")" +
                        std::string(40, 'a') +
                        R"(","connectionType":"long-polling"}])",
                    absl::StrCat("Cookie: BAYEUX_BROWSER=", cookie, "\r\n")));
  std::vector<wire::ConnectionPending> pending = Pending(h);
  ASSERT_EQ(pending.size(), 3u);
  for (const wire::ConnectionPending& p : pending) {
    EXPECT_EQ(p.session_user(), "") << p.ShortDebugString();
  }
}

TEST(HttpCredentialsTest, AnAnonymousSessionVouchesForNobody) {
  BrokerHarness h(AdmissionRequired());
  const auto [client_id, cookie] = LoggedInSession(h, "");
  ASSERT_EQ(client_id.size(), 40u);
  HttpLink next(h);
  next.Send(
      Post("/cometd",
           absl::StrCat(R"([{"channel":"/meta/connect","clientId":")",
                        client_id, R"(","connectionType":"long-polling"}])"),
           absl::StrCat("Cookie: BAYEUX_BROWSER=", cookie, "\r\n")));
  std::vector<wire::ConnectionPending> pending = Pending(h);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].session_user(), "");
}

TEST(HttpCredentialsTest, BayeuxOverWebSocketSaysHelloWithItsFirstHandshake) {
  BrokerHarness h(AdmissionRequired());
  HttpLink ws(h);
  ws.Send(Upgrade("/cometd", ""));
  EXPECT_THAT(ws.Take(), HasSubstr("101 Switching Protocols"));
  EXPECT_TRUE(Pending(h).empty());
  ws.Send(ClientFrame(0x1,
                      R"([{"channel":"/meta/handshake","version":"1.0",)"
                      R"("ext":{"auth":{"user":"dave","password":"x"}}}])"));
  std::vector<wire::ConnectionPending> pending = Pending(h);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].user(), "dave");
  ASSERT_TRUE(h.broker().Refuse(IdOf(pending[0]), "wrong", h.now()).ok());
  h.Pump();
  std::vector<int> opcodes;
  std::vector<std::string> frames = ServerPayloads(ws.Take(), &opcodes);
  ASSERT_EQ(frames.size(), 2u);
  const Json reply = Json::parse(frames[0]);
  EXPECT_EQ(reply[0]["successful"], false);
  EXPECT_EQ(reply[0]["error"], "401::wrong");
  EXPECT_EQ(reply[0]["advice"]["reconnect"], "none");
  EXPECT_EQ(opcodes[1], 0x8);
  EXPECT_EQ(CloseCode(frames[1]), 1008);
}

}  // namespace
}  // namespace manifold
