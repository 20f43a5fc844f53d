// The NATS front end against a real Broker: NATS clients and native clients
// sharing topics, subscriptions and messages.

#include "broker/nats/nats_codec.h"

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/broker.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/broker/nats/nats_test_client.h"

namespace manifold {
namespace {

using ::manifold::testing::NatsClient;
using ::manifold::testing::NatsHarness;
using ::manifold::testing::ServerOp;
using ::manifold::testing::TestClient;
using ::testing::HasSubstr;

constexpr absl::string_view kVerbose =
    R"({"verbose":true,"pedantic":false,"headers":true,"no_responders":true})";
constexpr absl::string_view kNoHeaders =
    R"({"verbose":false,"pedantic":false,"headers":false})";

// Broker options that let NATS clients publish NATS's full 1 MiB.
BrokerOptions NatsSizedBroker() {
  BrokerOptions options;
  options.set_max_frame_bytes((1 << 20) + 4096 + 4);
  return options;
}

void ExpectMsg(const ServerOp& op, absl::string_view subject,
               absl::string_view sid, absl::string_view payload,
               absl::string_view reply = "") {
  EXPECT_EQ(op.op, "MSG") << op.raw;
  EXPECT_EQ(op.subject, subject) << op.raw;
  EXPECT_EQ(op.sid, sid) << op.raw;
  EXPECT_EQ(op.reply, reply) << op.raw;
  EXPECT_EQ(op.payload, payload) << op.raw;
}

void ExpectErr(const ServerOp& op, absl::string_view text) {
  EXPECT_EQ(op.op, "-ERR") << op.raw;
  EXPECT_EQ(op.text, text) << op.raw;
}

// --- Connecting
// ----------------------------------------------------------------

TEST(NatsCodecTest, InfoIsTheGreetingAndDescribesTheServer) {
  BrokerOptions options = NatsSizedBroker();
  options.set_server_name("edge-1");
  NatsOptions nats;
  nats.host = "127.0.0.1";
  nats.port = 4222;
  NatsHarness h(options, nats);
  NatsClient& c = h.Accept("127.0.0.1:50212");
  ServerOp info = c.Next();
  ASSERT_EQ(info.op, "INFO");
  EXPECT_EQ(info.text,
            absl::StrCat("{\"server_id\":\"edge-1\",\"server_name\":\"edge-1\","
                         "\"version\":\"",
                         kBrokerVersion,
                         "\",\"proto\":1,\"host\":\"127.0.0.1\",\"port\":4222,"
                         "\"headers\":true,\"max_payload\":1048576,"
                         "\"client_id\":",
                         c.id().value(), ",\"client_ip\":\"127.0.0.1\"}"));
  EXPECT_TRUE(info.raw.size() > 3 &&
              info.raw.substr(info.raw.size() - 3) == " \r\n");
}

TEST(NatsCodecTest, OptionsOverrideTheAdvertisedIdentity) {
  NatsOptions nats;
  nats.server_id = "NCXYZ";
  nats.version = "2.10.0";
  nats.auth_required = true;
  nats.max_payload_bytes = 1000;
  NatsHarness h(NatsSizedBroker(), nats);
  ServerOp info = h.Accept("unix:/run/m.sock").Next();
  EXPECT_THAT(info.text, HasSubstr("\"server_id\":\"NCXYZ\""));
  EXPECT_THAT(info.text, HasSubstr("\"version\":\"2.10.0\""));
  EXPECT_THAT(info.text, HasSubstr("\"auth_required\":true"));
  EXPECT_THAT(info.text, HasSubstr("\"max_payload\":1000,"));
  EXPECT_THAT(info.text, ::testing::Not(HasSubstr("client_ip")));
}

TEST(NatsCodecTest, AdvertisedPayloadLimitFitsTheBrokersLimits) {
  {
    // Default broker: the frame limit leaves room for a full 1 MiB payload
    // behind a maximal control line.
    NatsHarness h;
    ServerOp info = h.Accept().Next();
    EXPECT_THAT(info.text, HasSubstr("\"max_payload\":1048576,"));
  }
  {
    // A frame limit of exactly 1 MiB: the control line must fit too.
    BrokerOptions options;
    options.set_max_frame_bytes(1 << 20);
    NatsHarness h(options);
    ServerOp info = h.Accept().Next();
    EXPECT_THAT(info.text, HasSubstr(absl::StrCat(
                               "\"max_payload\":", (1 << 20) - 4096 - 4, ",")));
  }
  {
    BrokerOptions options = NatsSizedBroker();
    options.set_max_payload_bytes(64 * 1024);
    NatsHarness h(options);
    EXPECT_THAT(h.Accept().Next().text, HasSubstr("\"max_payload\":65536,"));
  }
}

TEST(NatsCodecTest, ConnectThenPingGetsPong) {
  NatsHarness h;
  NatsClient& c = h.Accept();
  EXPECT_EQ(c.Next().op, "INFO");
  c.Send(
      "CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"svc\","
      "\"lang\":\"nats.js\",\"version\":\"2.19.0\",\"protocol\":1,"
      "\"headers\":true,\"no_responders\":true}\r\nPING\r\n");
  EXPECT_EQ(c.TakeRaw(), "PONG\r\n");
  // The broker knows the connection by its name and protocol.
  bool added = false;
  for (const wire::BrokerEvent& e : h.native().TakeEvents()) {
    if (e.has_connection_added()) {
      EXPECT_EQ(e.connection_added().client_name(), "svc");
      EXPECT_EQ(e.connection_added().protocol(), "nats");
      added = true;
    }
  }
  EXPECT_TRUE(added);
}

TEST(NatsCodecTest, VerboseConnectIsAcknowledged) {
  NatsHarness h;
  NatsClient& c = h.Accept();
  c.Next();
  c.Send(absl::StrCat("CONNECT ", kVerbose, "\r\nPING\r\n"));
  EXPECT_EQ(c.TakeRaw(), "+OK\r\nPONG\r\n");
}

TEST(NatsCodecTest, AnythingBeforeConnectIsAnAuthorizationViolation) {
  NatsHarness h;
  NatsClient& c = h.Accept();
  c.Next();
  c.Send("SUB a 1\r\n");
  ExpectErr(c.Next(), "Authorization Violation");
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(WireCode(c.close_reason()), wire::HANDSHAKE_REQUIRED);
  EXPECT_THAT(c.close_reason().message(), HasSubstr("SUB before CONNECT"));
}

// The ConnectionPending event the broker emitted for `id`; fails the test
// when there is none.
wire::ConnectionPending PendingFor(NatsHarness& h, ConnectionId id) {
  for (const wire::BrokerEvent& e : h.native().TakeEvents()) {
    if (e.has_connection_pending() &&
        e.connection_pending().session_id() == id.value()) {
      return e.connection_pending();
    }
  }
  ADD_FAILURE() << "no ConnectionPending for " << id.ToString();
  return wire::ConnectionPending();
}

BrokerOptions AdmissionRequired() {
  BrokerOptions options;
  options.set_require_admission(true);
  return options;
}

TEST(NatsCodecTest, UserAndPassReachAdmissionAsUserAndPassword) {
  NatsHarness h(AdmissionRequired());
  NatsClient& c = h.Accept();
  c.Next();
  c.Send(
      "CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"s3:cret\"}"
      "\r\nPING\r\n");
  const wire::ConnectionPending pending = PendingFor(h, c.id());
  EXPECT_EQ(pending.user(), "alice");
  EXPECT_EQ(pending.password(), "s3:cret");
  EXPECT_EQ(pending.auth_token(), "");
  EXPECT_TRUE(c.Idle());  // the PING waits for admission
  ASSERT_TRUE(h.broker().Admit(c.id(), h.native().now()).ok());
  EXPECT_EQ(c.Next().op, "PONG");
  EXPECT_FALSE(c.closed());
}

TEST(NatsCodecTest, AuthTokenReachesAdmissionAsTheToken) {
  NatsHarness h(AdmissionRequired());
  NatsClient& c = h.Accept();
  c.Next();
  c.Send("CONNECT {\"verbose\":false,\"auth_token\":\"tok\"}\r\nPING\r\n");
  const wire::ConnectionPending pending = PendingFor(h, c.id());
  EXPECT_EQ(pending.auth_token(), "tok");
  EXPECT_EQ(pending.user(), "");
  EXPECT_EQ(pending.password(), "");
  ASSERT_TRUE(h.broker().Admit(c.id(), h.native().now()).ok());
  EXPECT_EQ(c.Next().op, "PONG");
}

TEST(NatsCodecTest, ConnectWithoutCredentialsStillAsksAdmission) {
  NatsHarness h(AdmissionRequired());
  NatsClient& c = h.Accept();
  c.Next();
  c.Send("CONNECT {\"verbose\":false}\r\nPING\r\n");
  const wire::ConnectionPending pending = PendingFor(h, c.id());
  EXPECT_EQ(pending.auth_token(), "");
  EXPECT_EQ(pending.user(), "");
  EXPECT_EQ(pending.password(), "");
  EXPECT_TRUE(c.Idle());
}

// nats-server 2.9 answers a wrong password, a wrong token and a CONNECT
// without credentials alike: exactly this line, then it closes.
TEST(NatsCodecTest, RefusalIsExactlyNatsServersAuthorizationViolation) {
  NatsHarness h(AdmissionRequired());
  NatsClient& c = h.Accept();
  c.Next();
  c.Send(
      "CONNECT {\"verbose\":true,\"user\":\"alice\",\"pass\":\"wrong\"}"
      "\r\nPING\r\n");
  PendingFor(h, c.id());
  ASSERT_TRUE(h.broker().Refuse(c.id(), "bad password", h.native().now()).ok());
  EXPECT_EQ(c.TakeRaw(), "-ERR 'Authorization Violation'\r\n");
  EXPECT_TRUE(c.closed());
  // The broker's own reason stays with the broker, for its logs.
  EXPECT_EQ(WireCode(c.close_reason()), wire::REFUSED);
  EXPECT_THAT(c.close_reason().message(), HasSubstr("bad password"));
}

TEST(NatsCodecTest, HandshakeTimeoutIsAnAuthenticationTimeout) {
  NatsHarness h;
  NatsClient& c = h.Accept();
  c.Next();
  h.Advance(absl::Milliseconds(h.broker().options().handshake_timeout_ms()));
  ExpectErr(c.Next(), "Authentication Timeout");
  EXPECT_TRUE(c.closed());
}

// --- Publish and subscribe across protocols
// -----------------------------------

TEST(NatsCodecTest, NatsPublishReachesNativeSubscriber) {
  NatsHarness h;
  TestClient& native = h.native().Connect("native");
  const SubscriptionId id = native.Subscribe("orders/eu/*");
  NatsClient& nats = h.ConnectNats();
  nats.Pub("orders.eu.42", "{\"qty\":1}", "_INBOX.abc.1");
  wire::ServerMessage m = native.Next();
  ASSERT_TRUE(m.has_deliver()) << m.DebugString();
  EXPECT_EQ(m.deliver().subscription_id(), id.value());
  EXPECT_EQ(m.deliver().topic(), "orders/eu/42");
  EXPECT_EQ(m.deliver().payload(), "{\"qty\":1}");
  EXPECT_EQ(m.deliver().reply_to(), "_INBOX/abc/1");
  EXPECT_EQ(m.deliver().headers_size(), 0);
}

TEST(NatsCodecTest, NativePublishReachesNatsSubscriber) {
  NatsHarness h;
  NatsClient& nats = h.ConnectNats();
  nats.Sub("orders.eu.*", "sub-7");
  nats.Flush();
  TestClient& native = h.native().Connect("native");
  wire::ClientMessage m;
  m.mutable_publish()->set_topic("orders/eu/42");
  m.mutable_publish()->set_payload("hello");
  m.mutable_publish()->set_reply_to("replies/native/1");
  native.Send(m);
  ExpectMsg(nats.Next(), "orders.eu.42", "sub-7", "hello", "replies.native.1");
  native.Publish("orders/us/1", "not for eu");
  EXPECT_TRUE(nats.Idle());
}

TEST(NatsCodecTest, NatsClientsTalkToEachOther) {
  NatsHarness h;
  NatsClient& a = h.ConnectNats();
  NatsClient& b = h.ConnectNats();
  b.Sub("chat.room1", "1");
  b.Flush();
  a.Pub("chat.room1", "hi b");
  EXPECT_EQ(b.TakeRaw(), "MSG chat.room1 1 4\r\nhi b\r\n");
  a.Pub("chat.room1", "");
  EXPECT_EQ(b.TakeRaw(), "MSG chat.room1 1 0\r\n\r\n");
}

TEST(NatsCodecTest, NatsWildcardsMatchLikeNats) {
  NatsHarness h;
  NatsClient& nats = h.ConnectNats();
  nats.Sub("room.*.status", "star");
  nats.Sub("room.>", "gt");
  nats.Flush();
  TestClient& native = h.native().Connect("native");
  native.Publish("room/alice/status", "1");
  native.Publish("room/alice/x/y", "2");
  native.Publish("room", "3");  // '>' needs at least one more token
  std::multiset<std::string> got;
  for (const ServerOp& op : nats.TakeAll()) {
    got.insert(absl::StrCat(op.sid, " ", op.subject, " ", op.payload));
  }
  EXPECT_THAT(got, ::testing::UnorderedElementsAre("star room.alice.status 1",
                                                   "gt room.alice.status 1",
                                                   "gt room.alice.x.y 2"));
}

TEST(NatsCodecTest, NativeWildcardsSeeNatsPublishes) {
  NatsHarness h;
  TestClient& native = h.native().Connect("native");
  native.Subscribe("sensors/**");
  NatsClient& nats = h.ConnectNats();
  nats.Pub("sensors.hall.temp", "21");
  EXPECT_EQ(native.Next().deliver().topic(), "sensors/hall/temp");
}

TEST(NatsCodecTest, DotsInsideNativeSegmentsAreDoubleSlashesInNats) {
  NatsHarness h;
  NatsClient& nats = h.ConnectNats();
  nats.Sub("spBv1//0.*", "1");
  nats.Flush();
  TestClient& native = h.native().Connect("native");
  native.Publish("spBv1.0/plant", "x");
  ExpectMsg(nats.Next(), "spBv1//0.plant", "1", "x");
  // And back: a NATS publish to that subject reaches the native topic.
  native.Subscribe("spBv1.0/*");
  nats.Pub("spBv1//0.line", "y");
  EXPECT_EQ(native.Next().deliver().topic(), "spBv1.0/line");
}

TEST(NatsCodecTest, QueueGroupsAreSharedByNatsAndNativeMembers) {
  NatsHarness h;
  NatsClient& n1 = h.ConnectNats();
  NatsClient& n2 = h.ConnectNats();
  n1.Sub("jobs.*", "1", "workers");
  n1.Flush();
  n2.Sub("jobs.*", "2", "workers");
  n2.Flush();
  TestClient& native = h.native().Connect("native");
  native.Subscribe("jobs/*", "workers");
  NatsClient& publisher = h.ConnectNats();
  for (int i = 0; i < 30; ++i) publisher.Pub("jobs.run", absl::StrCat(i));
  const size_t a = n1.TakeAll().size();
  const size_t b = n2.TakeAll().size();
  const size_t c = native.TakeAll().size();
  EXPECT_EQ(a + b + c, 30u);  // each message exactly once
  EXPECT_EQ(a, 10u);          // round-robin
  EXPECT_EQ(b, 10u);
  EXPECT_EQ(c, 10u);
}

TEST(NatsCodecTest, EchoFalseKeepsOwnMessagesAway) {
  NatsHarness h;
  NatsClient& c =
      h.ConnectNats(R"({"verbose":false,"echo":false,"headers":true})");
  c.Sub("t", "1");
  c.Pub("t", "mine");
  c.Flush();
  EXPECT_TRUE(c.Idle());
  NatsClient& other = h.ConnectNats();
  other.Pub("t", "theirs");
  ExpectMsg(c.Next(), "t", "1", "theirs");
}

TEST(NatsCodecTest,
     OneMessageToManySubscribersIsFormattedOnceAndSharedByReference) {
  NatsHarness h(NatsSizedBroker());
  std::vector<NatsClient*> subs;
  for (int i = 0; i < 5; ++i) {
    subs.push_back(&h.ConnectNats());
    subs.back()->Sub("big", absl::StrCat("s", i));
    subs.back()->Flush();
  }
  TestClient& native = h.native().Connect("native");
  native.Subscribe("big");
  const std::string payload(100 * 1024, 'x');
  NatsClient& publisher = h.ConnectNats();
  publisher.Pub("big", payload, "reply.1");
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(
        subs[i]->TakeRaw(),
        absl::StrCat("MSG big s", i, " reply.1 102400\r\n", payload, "\r\n"));
  }
  EXPECT_EQ(native.Next().deliver().payload(), payload);
  EXPECT_EQ(h.broker().statistics().deliveries, 6u);
}

// --- UNSUB
// ---------------------------------------------------------------------

TEST(NatsCodecTest, UnsubscribeStopsDeliveries) {
  NatsHarness h;
  NatsClient& c = h.ConnectNats();
  c.Sub("t", "1");
  c.Send("UNSUB 1\r\n");
  c.Pub("t", "x");
  c.Flush();
  EXPECT_TRUE(c.Idle());
  EXPECT_EQ(h.broker().statistics().subscriptions, 0u);
}

TEST(NatsCodecTest, UnsubscribeWithMaxDeliversExactlyThatMany) {
  NatsHarness h;
  NatsClient& c = h.ConnectNats();
  c.Sub("t", "1");
  c.Send("UNSUB 1 3\r\n");
  TestClient& native = h.native().Connect("native");
  for (int i = 0; i < 5; ++i) native.Publish("t", absl::StrCat(i));
  std::vector<ServerOp> got = c.TakeAll();
  ASSERT_EQ(got.size(), 3u);
  ExpectMsg(got[2], "t", "1", "2");
  EXPECT_EQ(h.broker().statistics().subscriptions, 0u);
  // The sid is free again.
  c.Sub("t", "1");
  native.Publish("t", "again");
  ExpectMsg(c.Next(), "t", "1", "again");
}

TEST(NatsCodecTest, UnsubscribeWithMaxAlreadyReachedEndsAtOnce) {
  NatsHarness h;
  NatsClient& c = h.ConnectNats();
  c.Sub("t", "1");
  c.Pub("t", "a");
  c.Pub("t", "b");
  EXPECT_EQ(c.TakeAll().size(), 2u);
  c.Send("UNSUB 1 2\r\n");
  c.Pub("t", "c");
  c.Flush();
  EXPECT_TRUE(c.Idle());
  EXPECT_EQ(h.broker().statistics().subscriptions, 0u);
}

TEST(NatsCodecTest, UnknownSidsAndReusedSidsAreIgnoredAsByNatsServer) {
  NatsHarness h;
  NatsClient& c = h.ConnectNats();
  c.Send("UNSUB 99\r\n");
  c.Sub("a", "1");
  c.Sub("b", "1");  // ignored: sid 1 is taken
  c.Flush();
  EXPECT_EQ(h.broker().statistics().subscriptions, 1u);
  c.Pub("b", "x");
  c.Pub("a", "y");
  ExpectMsg(c.Next(), "a", "1", "y");
  EXPECT_TRUE(c.Idle());
}

// --- Verbose mode
// --------------------------------------------------------------

TEST(NatsCodecTest, VerboseModeAcknowledgesEveryOperationButPing) {
  NatsHarness h;
  NatsClient& c = h.Accept();
  c.Next();
  c.Send(absl::StrCat("CONNECT ", kVerbose, "\r\n"));
  EXPECT_EQ(c.TakeRaw(), "+OK\r\n");
  c.Send("SUB t 1\r\n");
  EXPECT_EQ(c.TakeRaw(), "+OK\r\n");
  c.Send("PUB t 2\r\nhi\r\n");
  EXPECT_EQ(c.TakeRaw(), "MSG t 1 2\r\nhi\r\n+OK\r\n");
  c.Send("UNSUB 1 5\r\n");
  EXPECT_EQ(c.TakeRaw(), "+OK\r\n");
  c.Send("UNSUB 42\r\n");  // unknown sid: still +OK, as nats-server
  EXPECT_EQ(c.TakeRaw(), "+OK\r\n");
  c.Send("PING\r\n");
  EXPECT_EQ(c.TakeRaw(), "PONG\r\n");
  c.Send("SUB a..b 2\r\n");  // an error instead of +OK
  EXPECT_EQ(c.TakeRaw(), "-ERR 'Invalid Subject'\r\n");
}

TEST(NatsCodecTest, SecondConnectChangesVerbosity) {
  NatsHarness h;
  NatsClient& c = h.ConnectNats();
  c.Send(absl::StrCat("CONNECT ", kVerbose, "\r\n"));
  EXPECT_EQ(c.TakeRaw(), "+OK\r\n");
  c.Send("SUB t 1\r\n");
  EXPECT_EQ(c.TakeRaw(), "+OK\r\n");
  c.Send("CONNECT {\"verbose\":false}\r\nSUB u 2\r\nPING\r\n");
  EXPECT_EQ(c.TakeRaw(), "PONG\r\n");
}

// --- Headers
// -------------------------------------------------------------------

TEST(NatsCodecTest, HpubHeadersReachNativeSubscribers) {
  NatsHarness h;
  TestClient& native = h.native().Connect("native");
  native.Subscribe("t");
  NatsClient& c = h.ConnectNats();
  c.Hpub("t",
         "NATS/1.0\r\nTrace: abc\r\nTrace: def\r\nContent-Type: json\r\n\r\n",
         "{}");
  wire::ServerMessage m = native.Next();
  ASSERT_EQ(m.deliver().headers_size(), 3) << m.DebugString();
  EXPECT_EQ(m.deliver().headers(0).key(), "Trace");
  EXPECT_EQ(m.deliver().headers(0).value(), "abc");
  EXPECT_EQ(m.deliver().headers(1).value(), "def");
  EXPECT_EQ(m.deliver().headers(2).key(), "Content-Type");
  EXPECT_EQ(m.deliver().payload(), "{}");
}

TEST(NatsCodecTest, NativeHeadersBecomeHmsg) {
  NatsHarness h;
  NatsClient& c = h.ConnectNats();
  c.Sub("t", "9");
  c.Flush();
  TestClient& native = h.native().Connect("native");
  wire::ClientMessage m;
  wire::Publish* p = m.mutable_publish();
  p->set_topic("t");
  p->set_payload("body");
  p->set_reply_to("r/1");
  wire::Header* header = p->add_headers();
  header->set_key("Trace");
  header->set_value("abc");
  native.Send(m);
  const std::string block = "NATS/1.0\r\nTrace: abc\r\n\r\n";
  EXPECT_EQ(c.TakeRaw(),
            absl::StrCat("HMSG t 9 r.1 ", block.size(), " ", block.size() + 4,
                         "\r\n", block, "body\r\n"));
}

TEST(NatsCodecTest, HeadersTravelBetweenNatsClients) {
  NatsHarness h;
  NatsClient& a = h.ConnectNats();
  NatsClient& b = h.ConnectNats();
  b.Sub("t", "1");
  b.Flush();
  const std::string block = "NATS/1.0\r\nK: v\r\nK: w\r\n\r\n";
  a.Hpub("t", block, "hi", "re");
  EXPECT_EQ(b.TakeRaw(),
            absl::StrCat("HMSG t 1 re ", block.size(), " ", block.size() + 2,
                         "\r\n", block, "hi\r\n"));
  // An empty header block is still a header block.
  a.Hpub("t", "NATS/1.0\r\n\r\n", "");
  EXPECT_EQ(b.TakeRaw(), "HMSG t 1 12 12\r\nNATS/1.0\r\n\r\n\r\n");
  // A header size of 0 is no header block at all (nats.js sends it), as
  // nats-server reads it: the message goes on as MSG.
  a.Hpub("t", "", "hi");
  EXPECT_EQ(b.TakeRaw(), "MSG t 1 2\r\nhi\r\n");
  EXPECT_FALSE(a.closed());
}

TEST(NatsCodecTest, StatusLinesTravelAsStatusHeaders) {
  NatsHarness h;
  TestClient& native = h.native().Connect("native");
  native.Subscribe("t");
  NatsClient& a = h.ConnectNats();
  NatsClient& b = h.ConnectNats();
  b.Sub("t", "1");
  b.Flush();
  const std::string block = "NATS/1.0 408 Request Timeout\r\nK: v\r\n\r\n";
  a.Hpub("t", block, "");
  wire::ServerMessage m = native.Next();
  ASSERT_EQ(m.deliver().headers_size(), 3);
  EXPECT_EQ(m.deliver().headers(0).key(), "Status");
  EXPECT_EQ(m.deliver().headers(0).value(), "408");
  EXPECT_EQ(m.deliver().headers(1).key(), "Description");
  EXPECT_EQ(m.deliver().headers(1).value(), "Request Timeout");
  EXPECT_EQ(b.Next().headers, block);
}

TEST(NatsCodecTest, ClientWithoutHeadersGetsMsgWithThePayloadOnly) {
  NatsHarness h;
  NatsClient& plain = h.ConnectNats(kNoHeaders);
  plain.Sub("t", "1");
  plain.Flush();
  NatsClient& modern = h.ConnectNats();
  modern.Sub("t", "2");
  modern.Flush();
  NatsClient& a = h.ConnectNats();
  a.Hpub("t", "NATS/1.0\r\nK: v\r\n\r\n", "data");
  EXPECT_EQ(plain.TakeRaw(), "MSG t 1 4\r\ndata\r\n");
  EXPECT_EQ(modern.Next().op, "HMSG");
}

TEST(NatsCodecTest, HpubWithoutHeadersEnabledIsAParserError) {
  NatsHarness h;
  NatsClient& c = h.ConnectNats(kNoHeaders);
  c.Hpub("t", "NATS/1.0\r\n\r\n", "x");
  ExpectErr(c.Next(), "Parser Error");
  EXPECT_TRUE(c.closed());
}

TEST(NatsCodecTest, MalformedHeaderBlockIsAParserError) {
  NatsHarness h;
  NatsClient& c = h.ConnectNats();
  c.Hpub("t", "NATS/1.0\r\nno colon here\r\n\r\n", "x");
  ExpectErr(c.Next(), "Parser Error");
  EXPECT_TRUE(c.closed());
  EXPECT_THAT(c.close_reason().message(), HasSubstr("no colon here"));
}

TEST(NatsCodecTest, HeaderTheBrokerRejectsIsReportedAndTheConnectionStays) {
  NatsHarness h;
  NatsClient& c = h.ConnectNats();
  c.Hpub("t", "NATS/1.0\r\nbad key: v\r\n\r\n", "x");
  ServerOp op = c.Next();
  EXPECT_EQ(op.op, "-ERR");
  EXPECT_THAT(op.text, HasSubstr("header key \"bad key\""));
  c.Flush();
  EXPECT_FALSE(c.closed());
}

// --- Request / reply
// -------------------------------------------------------------

TEST(NatsCodecTest, NoRespondersGivesA503OnTheReplySubject) {
  NatsHarness h;
  NatsClient& c = h.ConnectNats();
  c.Sub("_INBOX.abc.*", "1");
  c.Pub("svc.nobody", "question", "_INBOX.abc.7");
  EXPECT_EQ(c.TakeRaw(),
            "HMSG _INBOX.abc.7 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n");
}

TEST(NatsCodecTest, NoNoRespondersWithoutTheOptionOrWithAListener) {
  NatsHarness h;
  NatsClient& plain = h.ConnectNats(R"({"verbose":false,"headers":true})");
  plain.Sub("_INBOX.p.*", "1");
  plain.Pub("svc", "q", "_INBOX.p.1");
  plain.Flush();
  EXPECT_TRUE(plain.Idle());
  NatsClient& c = h.ConnectNats();
  NatsClient& server = h.ConnectNats();
  server.Sub("svc", "s");
  server.Flush();
  c.Sub("_INBOX.q.*", "1");
  c.Pub("svc", "q", "_INBOX.q.1");
  c.Flush();
  EXPECT_TRUE(c.Idle());
  EXPECT_EQ(server.Next().reply, "_INBOX.q.1");
}

TEST(NatsCodecTest, NatsRequestNativeReply) {
  NatsHarness h;
  TestClient& responder = h.native().Connect("responder");
  responder.Subscribe("svc/time");
  NatsClient& requester = h.ConnectNats();
  requester.Sub("_INBOX.r1.*", "1");
  requester.Pub("svc.time", "now?", "_INBOX.r1.1");
  wire::ServerMessage request = responder.Next();
  ASSERT_EQ(request.deliver().reply_to(), "_INBOX/r1/1");
  responder.Publish(request.deliver().reply_to(), "12:00");
  ExpectMsg(requester.Next(), "_INBOX.r1.1", "1", "12:00");
}

TEST(NatsCodecTest, NativeRequestNatsReply) {
  NatsHarness h;
  NatsClient& responder = h.ConnectNats();
  responder.Sub("svc.time", "s");
  responder.Flush();
  TestClient& requester = h.native().Connect("requester");
  const SubscriptionId inbox = requester.Subscribe("inbox/me/*");
  wire::ClientMessage m;
  m.mutable_publish()->set_topic("svc/time");
  m.mutable_publish()->set_payload("now?");
  m.mutable_publish()->set_reply_to("inbox/me/1");
  requester.Send(m);
  ServerOp request = responder.Next();
  ExpectMsg(request, "svc.time", "s", "now?", "inbox.me.1");
  responder.Pub(request.reply, "12:00");
  wire::ServerMessage reply = requester.Next();
  EXPECT_EQ(reply.deliver().subscription_id(), inbox.value());
  EXPECT_EQ(reply.deliver().topic(), "inbox/me/1");
  EXPECT_EQ(reply.deliver().payload(), "12:00");
}

TEST(NatsCodecTest, NativeRequesterGetsA503WhenNoNatsResponderListens) {
  NatsHarness h;
  TestClient& requester = h.native().Connect("requester");
  requester.Subscribe("inbox/me/*");
  wire::ClientMessage m;
  m.mutable_publish()->set_topic("svc/none");
  m.mutable_publish()->set_reply_to("inbox/me/2");
  m.mutable_publish()->set_no_responders(true);
  requester.Send(m);
  wire::ServerMessage notice = requester.Next();
  ASSERT_EQ(notice.deliver().headers_size(), 1);
  EXPECT_EQ(notice.deliver().headers(0).key(), "Status");
  EXPECT_EQ(notice.deliver().headers(0).value(), "503");
}

// --- Errors
// ------------------------------------------------------------------------

TEST(NatsCodecTest, InvalidSubjectsAreReportedAndTheConnectionStays) {
  NatsHarness h;
  NatsClient& c = h.ConnectNats();
  for (const std::string& subject :
       std::vector<std::string>{"a..b", "a.>.b", "a/b", ".a", "a.**", "a.b*",
                                std::string(600, 'x')}) {
    c.Sub(subject, "1");
    ExpectErr(c.Next(), "Invalid Subject");
  }
  for (absl::string_view subject : {"a..b", "a.*", "a.>", "a.b*"}) {
    c.Pub(subject, "x");
    ExpectErr(c.Next(), "Invalid Publish Subject");
  }
  c.Pub("ok", "x", "bad..reply");
  ExpectErr(c.Next(), "Invalid Publish Subject");
  c.Pub("ok", "x", "reply.*");
  ExpectErr(c.Next(), "Invalid Publish Subject");
  c.Flush();
  EXPECT_FALSE(c.closed());
  EXPECT_EQ(h.broker().statistics().subscriptions, 0u);
}

TEST(NatsCodecTest, ReservedTopicsAreAPermissionsViolation) {
  NatsHarness h;
  NatsClient& c = h.ConnectNats();
  c.Pub("$sys.stats", "x");
  ExpectErr(c.Next(), "Permissions Violation for Publish to \"$sys.stats\"");
  c.Flush();
  EXPECT_FALSE(c.closed());
}

TEST(NatsCodecTest, NatsClientsCanWatchBrokerEvents) {
  NatsHarness h;
  NatsClient& c = h.ConnectNats();
  c.Sub("$sys.>", "events");
  std::vector<ServerOp> own = c.TakeAll();  // its own subscription's event
  ASSERT_EQ(own.size(), 1u);
  EXPECT_EQ(own[0].subject, "$sys.subscription.added");
  h.native().Connect("someone");
  ServerOp op = c.Next();
  EXPECT_EQ(op.subject, "$sys.connection.added") << op.raw;
  EXPECT_EQ(op.sid, "events");
  wire::BrokerEvent event;
  ASSERT_TRUE(event.ParseFromString(op.payload));
  EXPECT_EQ(event.connection_added().client_name(), "someone");
}

TEST(NatsCodecTest, TooManySubscriptionsIsReportedAndTheConnectionStays) {
  BrokerOptions options;
  options.set_max_subscriptions_per_connection(2);
  NatsHarness h(options);
  NatsClient& c = h.ConnectNats();
  c.Sub("a", "1");
  c.Sub("b", "2");
  c.Sub("c", "3");
  ExpectErr(c.Next(), "Maximum Subscriptions Exceeded");
  c.Send("UNSUB 1\r\n");
  c.Sub("c", "3");
  c.Flush();
  EXPECT_EQ(h.broker().statistics().subscriptions, 2u);
}

TEST(NatsCodecTest, PayloadOverTheLimitIsFatalBeforeThePayloadArrives) {
  NatsHarness h(NatsSizedBroker());
  NatsClient& bystander = h.ConnectNats();
  bystander.Sub("t", "1");
  bystander.Flush();
  NatsClient& c = h.ConnectNats();
  c.Send("PUB t 1048577\r\n");  // one byte over; no payload sent
  ExpectErr(c.Next(), "Maximum Payload Violation");
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(WireCode(c.close_reason()), wire::PAYLOAD_TOO_LARGE);
  // Exactly the limit is fine, and others never noticed.
  NatsClient& d = h.ConnectNats();
  d.Pub("t", std::string(1 << 20, 'x'));
  EXPECT_EQ(bystander.Next().payload.size(), 1u << 20);
}

TEST(NatsCodecTest, ControlLineOverTheLimitIsFatal) {
  NatsHarness h;
  NatsClient& c = h.ConnectNats();
  c.Send(absl::StrCat("SUB ", std::string(5000, 'a')));  // no line end yet
  ExpectErr(c.Next(), "Maximum Control Line Exceeded");
  EXPECT_TRUE(c.closed());
}

TEST(NatsCodecTest, ControlLineLimitIsConfigurable) {
  NatsOptions nats;
  nats.max_control_line_bytes = 160;
  NatsHarness h(BrokerOptions(), nats);
  NatsClient& c = h.ConnectNats();
  c.Sub(std::string(150, 'a'), "1");  // "SUB " + 150 + " 1": 156 bytes
  c.Flush();
  c.Sub(std::string(160, 'a'), "2");
  ExpectErr(c.Next(), "Maximum Control Line Exceeded");
}

TEST(NatsCodecTest, UnknownOperationIsFatalAndOthersNeverNotice) {
  NatsHarness h;
  NatsClient& bystander = h.ConnectNats();
  bystander.Sub("t", "1");
  bystander.Flush();
  NatsClient& c = h.ConnectNats();
  c.Send("FOO bar\r\n");
  ExpectErr(c.Next(), "Unknown Protocol Operation");
  EXPECT_TRUE(c.closed());
  EXPECT_THAT(c.close_reason().message(), HasSubstr("\"FOO\" is unknown"));
  NatsClient& d = h.ConnectNats();
  d.Pub("t", "still here");
  ExpectMsg(bystander.Next(), "t", "1", "still here");
}

TEST(NatsCodecTest, MalformedArgumentsAndBadPayloadEndsAreFatal) {
  NatsHarness h;
  struct Case {
    const char* input;
    const char* text;
  };
  for (const Case& k :
       {Case{"PUB t x\r\n", "Parser Error"}, Case{"SUB t\r\n", "Parser Error"},
        Case{"CONNECT {nope\r\n", "Parser Error"},
        Case{"PUB t 2\r\nhiXX", "Unknown Protocol Operation"}}) {
    NatsClient& c = h.ConnectNats();
    c.Send(k.input);
    ExpectErr(c.Next(), k.text);
    EXPECT_TRUE(c.closed()) << k.input;
  }
}

TEST(NatsCodecTest, MissedPingsAreAStaleConnection) {
  BrokerOptions options;
  options.set_keepalive_interval_ms(30000);
  NatsHarness h(options);
  NatsClient& alive = h.ConnectNats();
  NatsClient& stale = h.ConnectNats();
  for (int i = 0; i < 3; ++i) {
    h.Advance(absl::Seconds(30));
    if (!alive.closed()) {
      EXPECT_EQ(alive.Next().op, "PING");
      alive.Send("PONG\r\n");
    }
  }
  EXPECT_FALSE(alive.closed());
  std::vector<ServerOp> got = stale.TakeAll();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].op, "PING");
  EXPECT_EQ(got[1].op, "PING");
  ExpectErr(got[2], "Stale Connection");
  EXPECT_TRUE(stale.closed());
}

TEST(NatsCodecTest, SlowConsumerIsDisconnectedWithSlowConsumer) {
  BrokerOptions options;
  options.set_max_outbound_bytes(64 * 1024);
  options.set_slow_consumer_policy(BrokerOptions::DISCONNECT);
  NatsHarness h(options);
  NatsClient& slow = h.ConnectNats();
  slow.Sub("t", "1");
  slow.Flush();
  slow.set_reading(false);
  NatsClient& publisher = h.ConnectNats();
  for (int i = 0; i < 100 && !slow.closed(); ++i) {
    publisher.Pub("t", std::string(4096, 'x'));
  }
  slow.set_reading(true);
  std::vector<ServerOp> got = slow.TakeAll();
  ASSERT_FALSE(got.empty());
  ExpectErr(got.back(), "Slow Consumer");
  EXPECT_TRUE(slow.closed());
  EXPECT_FALSE(publisher.closed());
}

TEST(NatsCodecTest, ShutdownClosesWithoutAnError) {
  NatsHarness h;
  NatsClient& c = h.ConnectNats();
  h.broker().Shutdown(h.native().now());
  h.Pump();
  EXPECT_TRUE(c.Idle());
  EXPECT_TRUE(c.closed());
}

// --- Determinism
// -------------------------------------------------------------------

TEST(NatsCodecTest, AnySplitOfTheInputGivesTheSameOutput) {
  const std::string session = absl::StrCat(
      "CONNECT ", kVerbose, "\r\n", "PING\r\n", "SUB a.* 1\r\n",
      "SUB a.> q 2\r\n", "PUB a.b r.1 5\r\nhello\r\n",
      "HPUB a.c 18 20\r\nNATS/1.0\r\nK: v\r\n\r\nhi\r\n",
      "UNSUB 1 1\r\nPUB a.d 0\r\n\r\n", "UNSUB 9\r\n", "SUB a..b 3\r\n",
      "SUB _INBOX.* 4\r\n", "PUB nobody _INBOX.x 1\r\n?\r\n", "PING\r\n");
  auto run = [&](const std::vector<size_t>& pieces) {
    NatsHarness h;
    NatsClient& c = h.Accept();
    size_t at = 0;
    for (size_t piece : pieces) {
      c.Send(absl::string_view(session).substr(at, piece));
      at += piece;
    }
    return c.TakeRaw();
  };
  const std::string whole = run({session.size()});
  EXPECT_THAT(whole, HasSubstr("MSG a.b 1 r.1 5\r\nhello\r\n"));
  EXPECT_THAT(whole, HasSubstr("HMSG a.c 2 18 20\r\nNATS/1.0\r\nK: v\r\n"));
  EXPECT_THAT(whole, HasSubstr("-ERR 'Invalid Subject'"));
  EXPECT_THAT(whole, HasSubstr("HMSG _INBOX.x"));
  EXPECT_EQ(run(std::vector<size_t>(session.size(), 1)), whole);
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    std::vector<size_t> pieces;
    for (size_t left = session.size(); left > 0;) {
      const size_t n = std::min<size_t>(left, 1 + rng() % 13);
      pieces.push_back(n);
      left -= n;
    }
    EXPECT_EQ(run(pieces), whole) << "round " << round;
  }
}

TEST(NatsCodecTest, SidMapHoldsOnlyLiveSubscriptions) {
  NatsHarness h;
  NatsClient& c = h.ConnectNats();
  for (int i = 0; i < 100; ++i) c.Sub(absl::StrCat("t.", i), absl::StrCat(i));
  for (int i = 0; i < 100; ++i) c.Send(absl::StrCat("UNSUB ", i, "\r\n"));
  c.Flush();
  EXPECT_EQ(h.broker().statistics().subscriptions, 0u);
}

}  // namespace
}  // namespace manifold
