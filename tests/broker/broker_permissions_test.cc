// Per-user permissions: what a connection admitted with a Grant may publish,
// subscribe to, serve and request, and what it receives.

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/broker.h"
#include "broker/permissions.h"
#include "core/manifold.pb.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/testing/broker_harness.h"

namespace manifold {
namespace {

using ::manifold::testing::BrokerHarness;
using ::manifold::testing::TestClient;
using ::testing::HasSubstr;

std::shared_ptr<const PermissionSet> Compile(const std::string& text) {
  Permissions p;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &p)) << text;
  absl::StatusOr<std::shared_ptr<const PermissionSet>> set =
      PermissionSet::Compile(p);
  EXPECT_TRUE(set.ok()) << set.status();
  return set.ok() ? *set : nullptr;
}

BrokerOptions AdmissionOptions() {
  BrokerOptions options;
  options.set_require_admission(true);
  options.set_statistics_interval_ms(0);
  return options;
}

// Connects `name`, says Hello and has the embedder admit it with `grant`.
TestClient& Admitted(BrokerHarness& h, absl::string_view name, Grant grant) {
  TestClient& c = h.Connect(name, /*hello=*/false);
  wire::ClientMessage hello;
  hello.mutable_hello()->set_protocol_version(1);
  hello.mutable_hello()->set_client_name(std::string(name));
  c.Send(hello);
  EXPECT_TRUE(h.broker().Admit(c.id(), std::move(grant), h.now()).ok());
  h.Pump();
  EXPECT_TRUE(c.Next().has_welcome());
  return c;
}

// Connects `name` admitted without a grant: nothing is checked.
TestClient& Unchecked(BrokerHarness& h, absl::string_view name) {
  return Admitted(h, name, Grant());
}

// The payloads of the deliveries waiting for `c`.
std::vector<std::string> Received(TestClient& c) {
  std::vector<std::string> out;
  for (const wire::ServerMessage& m : c.TakeAll()) {
    if (m.has_deliver()) out.push_back(m.deliver().payload());
  }
  return out;
}

// --- The rules, as a matrix -------------------------------------------------

enum class Expect { kAllowed, kDenied };

struct Case {
  const char* user;
  AccessOperation operation;
  const char* topic;
  Expect expect;
};

TEST(PermissionSetTest, MatrixOfUsersOperationsAndPatterns) {
  // alice: publishes orders but not their audit trail; subscribes to orders
  // and her inbox; may not request anything under admin; serves billing.
  const auto alice = Compile(R"pb(
    publish { allow: "orders/**" deny: "orders/*/audit" }
    subscribe {
      allow: "orders/**"
      allow: "_INBOX/alice/*"
      deny: "orders/secret/**"
    }
    request { deny: "admin/**" }
    serve { allow: "billing/*" }
  )pb");
  // bob: no rules but read_sys: everything, $sys included.
  const auto bob = Compile("read_sys: true");
  // carol: an allow list that is empty for one operation is not given;
  // denies everything for publish.
  const auto carol = Compile(R"pb(publish { deny: "**" })pb");
  const std::shared_ptr<const PermissionSet>* users[] = {&alice, &bob, &carol};
  auto user = [&](const char* name) -> const PermissionSet& {
    const std::string n = name;
    return n == "alice" ? **users[0] : n == "bob" ? **users[1] : **users[2];
  };
  using Op = AccessOperation;
  const Case cases[] = {
      // Publish: allow list, deny wins, patterns must lie inside.
      {"alice", Op::kPublish, "orders/eu/new", Expect::kAllowed},
      {"alice", Op::kPublish, "orders", Expect::kAllowed},
      {"alice", Op::kPublish, "orders/eu/audit", Expect::kDenied},
      {"alice", Op::kPublish, "invoices/1", Expect::kDenied},
      {"alice", Op::kPublish, "orders/eu/*", Expect::kDenied},  // hits audit
      {"alice", Op::kPublish, "orders/*/new", Expect::kAllowed},
      {"alice", Op::kPublish, "**", Expect::kDenied},
      // Subscribe: inside an allow pattern; inside a deny pattern refused;
      // overlapping a deny pattern accepted (filtered at delivery).
      {"alice", Op::kSubscribe, "orders/**", Expect::kAllowed},
      {"alice", Op::kSubscribe, "orders/eu/*", Expect::kAllowed},
      {"alice", Op::kSubscribe, "orders/secret/**", Expect::kDenied},
      {"alice", Op::kSubscribe, "orders/secret/x", Expect::kDenied},
      {"alice", Op::kSubscribe, "_INBOX/alice/*", Expect::kAllowed},
      {"alice", Op::kSubscribe, "_INBOX/bob/*", Expect::kDenied},
      {"alice", Op::kSubscribe, "_INBOX/**", Expect::kDenied},
      {"alice", Op::kSubscribe, "**", Expect::kDenied},
      {"alice", Op::kSubscribe, "$sys/**", Expect::kDenied},
      // Request: no allow list, so all but the denied.
      {"alice", Op::kRequest, "billing/invoice", Expect::kAllowed},
      {"alice", Op::kRequest, "admin/restart", Expect::kDenied},
      {"alice", Op::kRequest, "admin", Expect::kDenied},
      {"alice", Op::kRequest, "$sys/stats", Expect::kDenied},
      // Serve.
      {"alice", Op::kServe, "billing/invoice", Expect::kAllowed},
      {"alice", Op::kServe, "billing/a/b", Expect::kDenied},
      {"alice", Op::kServe, "admin/restart", Expect::kDenied},
      // bob: no rules, and $sys may be read.
      {"bob", Op::kPublish, "anything/at/all", Expect::kAllowed},
      {"bob", Op::kSubscribe, "**", Expect::kAllowed},
      {"bob", Op::kSubscribe, "$sys/**", Expect::kAllowed},
      {"bob", Op::kRequest, "$sys/connections", Expect::kAllowed},
      {"bob", Op::kServe, "anything", Expect::kAllowed},
      // carol: publish denied everywhere, the rest open but $sys.
      {"carol", Op::kPublish, "a", Expect::kDenied},
      {"carol", Op::kPublish, "a/*", Expect::kDenied},
      {"carol", Op::kSubscribe, "a/**", Expect::kAllowed},
      {"carol", Op::kSubscribe, "$sys/stats", Expect::kDenied},
      {"carol", Op::kRequest, "$sys/stats", Expect::kDenied},
  };
  for (const Case& c : cases) {
    const absl::Status s = user(c.user).Check(c.operation, c.topic);
    if (c.expect == Expect::kAllowed) {
      EXPECT_TRUE(s.ok()) << c.user << " " << AccessOperationName(c.operation)
                          << " " << c.topic << ": " << s;
    } else {
      EXPECT_EQ(WireCode(s), wire::PERMISSION_DENIED)
          << c.user << " " << AccessOperationName(c.operation) << " "
          << c.topic;
      EXPECT_THAT(s.message(), HasSubstr(c.topic));
      EXPECT_THAT(s.message(), HasSubstr(AccessOperationName(c.operation)));
    }
  }
}

TEST(PermissionSetTest, CompileNamesTheBadPattern) {
  Permissions p;
  p.mutable_subscribe()->add_deny("orders//x");
  absl::StatusOr<std::shared_ptr<const PermissionSet>> set =
      PermissionSet::Compile(p);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(), HasSubstr("subscribe deny"));
  EXPECT_THAT(set.status().message(), HasSubstr("orders//x"));
}

TEST(PermissionSetTest, FilterIsNeededOnlyWhereADenyPatternOverlaps) {
  const auto set = Compile(R"pb(subscribe { deny: "orders/*/audit" })pb");
  EXPECT_EQ(set->FilterFor("invoices/**"), nullptr);
  EXPECT_EQ(set->FilterFor("orders/eu/new"), nullptr);
  const auto filter = set->FilterFor("orders/**");
  ASSERT_NE(filter, nullptr);
  EXPECT_TRUE(filter->Allows("orders/eu/new", "orders/**"));
  EXPECT_FALSE(filter->Allows("orders/eu/audit", "orders/**"));
  // Published to a pattern: refused when any topic it stands for within the
  // subscription is denied.
  EXPECT_FALSE(filter->Allows("orders/eu/*", "orders/**"));
  EXPECT_FALSE(filter->Allows("**", "orders/**"));
  EXPECT_TRUE(filter->Allows("orders/*/new", "orders/**"));
  EXPECT_TRUE(filter->Allows("orders/eu", "orders/**"));
}

// --- The broker's enforcement ------------------------------------------------

TEST(BrokerPermissionsTest, DeniedPublishIsAnsweredAndTheConnectionStays) {
  BrokerHarness h(AdmissionOptions());
  TestClient& alice =
      Admitted(h, "alice", Grant{"alice", Compile(R"pb(publish {
                                                         allow: "orders/**"
                                                         deny: "orders/*/audit"
                                                       })pb")});
  TestClient& bob = Unchecked(h, "bob");
  bob.Subscribe("**");

  wire::ServerMessage denied = alice.PublishAcked("orders/eu/audit", "x");
  ASSERT_TRUE(denied.has_error()) << denied.DebugString();
  EXPECT_EQ(denied.error().code(), wire::PERMISSION_DENIED);
  EXPECT_FALSE(denied.error().fatal());
  EXPECT_EQ(denied.error().message(),
            "permission denied: publish to 'orders/eu/audit' (user 'alice')");
  // Denied again from the per-connection cache of the last allowed topic.
  alice.PublishAcked("orders/eu/new", "1");
  EXPECT_EQ(alice.PublishAcked("orders/eu/audit", "x").error().code(),
            wire::PERMISSION_DENIED);
  EXPECT_EQ(alice.PublishAcked("invoices/1", "x").error().code(),
            wire::PERMISSION_DENIED);
  wire::ServerMessage ok = alice.PublishAcked("orders/eu/new", "2");
  EXPECT_TRUE(ok.has_ack()) << ok.DebugString();
  EXPECT_FALSE(alice.closed());
  EXPECT_EQ(Received(bob), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(h.broker().statistics().permission_denials, 3u);
}

TEST(BrokerPermissionsTest, SubscribeOutsideTheAllowListIsDenied) {
  BrokerHarness h(AdmissionOptions());
  TestClient& alice = Admitted(
      h, "alice", Grant{"alice", Compile(R"pb(subscribe {
                                                allow: "orders/**"
                                                deny: "orders/secret/**"
                                              })pb")});
  for (const char* pattern : {"**", "invoices/*", "orders/secret/**"}) {
    wire::ServerMessage m = alice.TrySubscribe(pattern);
    ASSERT_TRUE(m.has_error()) << pattern;
    EXPECT_EQ(m.error().code(), wire::PERMISSION_DENIED);
    EXPECT_EQ(m.error().message(),
              absl::StrCat("permission denied: subscribe to '", pattern,
                           "' (user 'alice')"));
  }
  // Queue subscriptions are checked alike.
  EXPECT_EQ(alice.TrySubscribe("invoices/*", "workers").error().code(),
            wire::PERMISSION_DENIED);
  alice.Subscribe("orders/*", "workers");
  alice.Subscribe("orders/**");
  EXPECT_FALSE(alice.closed());
}

TEST(BrokerPermissionsTest, DeniedTopicsAreNeverDeliveredToAnOverlappingSub) {
  BrokerHarness h(AdmissionOptions());
  TestClient& bob = Admitted(
      h, "bob",
      Grant{"bob", Compile(R"pb(subscribe { deny: "orders/*/audit" })pb")});
  TestClient& watcher = Unchecked(h, "watcher");
  TestClient& publisher = Unchecked(h, "publisher");
  bob.Subscribe("orders/**");
  watcher.Subscribe("orders/**");

  publisher.Publish("orders/eu/audit", "literal-denied");
  publisher.Publish("orders/eu/new", "literal-allowed");
  // Published to a pattern: delivered only if every topic the pattern shares
  // with the subscription may be received.
  publisher.Publish("orders/eu/*", "pattern-touching-audit");
  publisher.Publish("orders/*/new", "pattern-clear-of-audit");
  publisher.Publish("orders/**", "pattern-everything");
  publisher.Publish("orders", "literal-top");

  EXPECT_EQ(Received(bob),
            (std::vector<std::string>{
                "literal-allowed", "pattern-clear-of-audit", "literal-top"}));
  EXPECT_EQ(Received(watcher).size(), 6u);
}

TEST(BrokerPermissionsTest, QueueGroupPassesOverMembersThatMayNotReceive) {
  BrokerHarness h(AdmissionOptions());
  TestClient& bob = Admitted(
      h, "bob",
      Grant{"bob", Compile(R"pb(subscribe { deny: "jobs/secret" })pb")});
  TestClient& dave = Unchecked(h, "dave");
  TestClient& publisher = Unchecked(h, "publisher");
  bob.Subscribe("jobs/*", "workers");
  dave.Subscribe("jobs/*", "workers");
  for (int i = 0; i < 4; ++i) publisher.Publish("jobs/secret", "s");
  for (int i = 0; i < 4; ++i) publisher.Publish("jobs/open", "o");
  const std::vector<std::string> to_bob = Received(bob);
  const std::vector<std::string> to_dave = Received(dave);
  EXPECT_EQ(std::count(to_bob.begin(), to_bob.end(), "s"), 0);
  EXPECT_EQ(std::count(to_dave.begin(), to_dave.end(), "s"), 4);
  // The open topic is still shared between both.
  EXPECT_GT(std::count(to_bob.begin(), to_bob.end(), "o"), 0);
  EXPECT_EQ(to_bob.size() + to_dave.size(), 8u);
}

TEST(BrokerPermissionsTest, ServeAndRequestAreChecked) {
  BrokerHarness h(AdmissionOptions());
  TestClient& server =
      Admitted(h, "server",
               Grant{"svc", Compile(R"pb(serve { allow: "billing/*" })pb")});
  TestClient& client = Admitted(
      h, "client",
      Grant{"client", Compile(R"pb(request { deny: "billing/refund" })pb")});
  wire::ServerMessage denied = server.Serve("admin/restart");
  EXPECT_EQ(denied.error().code(), wire::PERMISSION_DENIED);
  EXPECT_EQ(denied.error().message(),
            "permission denied: serve 'admin/restart' (user 'svc')");
  EXPECT_TRUE(server.Serve("billing/refund").has_ack());
  EXPECT_TRUE(server.Serve("billing/invoice").has_ack());

  const uint64_t op = client.Request("billing/refund", "r");
  wire::ServerMessage m = client.Next();
  ASSERT_TRUE(m.has_error()) << m.DebugString();
  EXPECT_EQ(m.error().op_id(), op);
  EXPECT_EQ(m.error().code(), wire::PERMISSION_DENIED);
  EXPECT_EQ(m.error().message(),
            "permission denied: request to 'billing/refund' (user 'client')");
  EXPECT_TRUE(server.Idle());  // the server never saw it

  client.Request("billing/invoice", "i");
  wire::ServerMessage served = server.Next();
  ASSERT_TRUE(served.has_request()) << served.DebugString();
  EXPECT_FALSE(client.closed());
  EXPECT_FALSE(server.closed());
}

// --- Regrant: a reloaded configuration -------------------------------------

TEST(BrokerPermissionsTest, RegrantEndsWhatIsNoLongerAllowedAndKeepsTheRest) {
  BrokerHarness h(AdmissionOptions());
  TestClient& alice = Admitted(h, "alice", Grant{"alice", Compile("")});
  TestClient& server = Admitted(h, "server", Grant{"svc", Compile("")});
  TestClient& requester = Unchecked(h, "requester");
  TestClient& publisher = Unchecked(h, "publisher");
  alice.Subscribe("orders/**");
  const SubscriptionId news = alice.Subscribe("news/*");
  ASSERT_TRUE(server.Serve("billing/refund").has_ack());
  ASSERT_TRUE(server.Serve("billing/invoice").has_ack());
  const uint64_t pending = requester.Request("billing/refund", "r");
  ASSERT_TRUE(server.Next().has_request());
  h.TakeEvents();

  // The new configuration: alice may no longer read news nor the audit
  // trail; svc may serve invoices only. Everyone else stays as they were.
  const auto alice_now =
      Compile(R"pb(subscribe { allow: "orders/**" deny: "orders/*/audit" })pb");
  const auto svc_now = Compile(R"pb(serve { allow: "billing/invoice" })pb");
  h.broker().Regrant(
      [&](absl::string_view user) -> std::shared_ptr<const PermissionSet> {
        if (user == "alice") return alice_now;
        if (user == "svc") return svc_now;
        return nullptr;
      },
      h.now());
  h.Pump();

  wire::ServerMessage ended = alice.Next();
  ASSERT_TRUE(ended.has_error()) << ended.DebugString();
  EXPECT_EQ(ended.error().code(), wire::PERMISSION_DENIED);
  EXPECT_FALSE(ended.error().fatal());
  EXPECT_EQ(ended.error().subscription_id(), news.value());
  EXPECT_EQ(ended.error().message(),
            absl::StrCat("subscription ", news.ToString(),
                         " ended: permission denied: subscribe to 'news/*' "
                         "(user 'alice')"));
  wire::ServerMessage stopped = server.Next();
  EXPECT_EQ(stopped.error().message(),
            "serving 'billing/refund' ended: permission denied: serve "
            "'billing/refund' (user 'svc')");
  // The request in flight to the service that ended gets SERVER_GONE.
  wire::ServerMessage gone = requester.Next();
  EXPECT_EQ(gone.response().op_id(), pending);
  EXPECT_EQ(gone.response().status(), wire::SERVER_GONE);

  bool saw_subscription_removed = false;
  bool saw_service_removed = false;
  for (const wire::BrokerEvent& e : h.TakeEvents()) {
    if (e.has_subscription_removed()) {
      saw_subscription_removed = true;
      EXPECT_EQ(e.subscription_removed().subscription_id(), news.value());
      EXPECT_THAT(e.subscription_removed().reason(),
                  HasSubstr("subscribe to 'news/*'"));
    }
    if (e.has_service_removed()) {
      saw_service_removed = true;
      EXPECT_EQ(e.service_removed().topic(), "billing/refund");
    }
  }
  EXPECT_TRUE(saw_subscription_removed);
  EXPECT_TRUE(saw_service_removed);

  // What stays allowed keeps working, with the new filter in force.
  publisher.Publish("orders/eu/new", "new");
  publisher.Publish("orders/eu/audit", "audit");
  publisher.Publish("news/today", "news");
  EXPECT_EQ(Received(alice), (std::vector<std::string>{"new"}));
  EXPECT_FALSE(alice.closed());
  EXPECT_FALSE(server.closed());
  requester.Request("billing/invoice", "i");
  EXPECT_TRUE(server.Next().has_request());
  // Operations from now on are checked against the new permissions.
  EXPECT_EQ(alice.TrySubscribe("news/*").error().code(),
            wire::PERMISSION_DENIED);
}

TEST(BrokerPermissionsTest, RegrantToNothingUncheckedLiftsFilters) {
  BrokerHarness h(AdmissionOptions());
  TestClient& bob = Admitted(
      h, "bob",
      Grant{"bob", Compile(R"pb(subscribe { deny: "orders/*/audit" })pb")});
  TestClient& publisher = Unchecked(h, "publisher");
  bob.Subscribe("orders/**");
  publisher.Publish("orders/eu/audit", "hidden");
  EXPECT_TRUE(Received(bob).empty());
  h.broker().Regrant([](absl::string_view) { return nullptr; }, h.now());
  h.Pump();
  publisher.Publish("orders/eu/audit", "visible");
  EXPECT_EQ(Received(bob), (std::vector<std::string>{"visible"}));
}

TEST(BrokerPermissionsTest, PublishWithReplyToAServedTopicNeedsRequest) {
  BrokerHarness h(AdmissionOptions());
  TestClient& server = Unchecked(h, "server");
  EXPECT_TRUE(server.Serve("billing/refund").has_ack());
  TestClient& client = Admitted(
      h, "client",
      Grant{"client", Compile(R"pb(request { deny: "billing/refund" })pb")});
  wire::ClientMessage m;
  m.mutable_publish()->set_op_id(client.next_op_id());
  m.mutable_publish()->set_topic("billing/refund");
  m.mutable_publish()->set_reply_to("inbox/client");
  m.mutable_publish()->set_ack(true);
  client.Send(m);
  wire::ServerMessage answer = client.Next();
  EXPECT_EQ(answer.error().code(), wire::PERMISSION_DENIED);
  EXPECT_THAT(answer.error().message(),
              HasSubstr("request to 'billing/refund'"));
  EXPECT_TRUE(server.Idle());
}

TEST(BrokerPermissionsTest, SysTopicsNeedReadSys) {
  BrokerHarness h(AdmissionOptions());
  TestClient& plain = Admitted(h, "plain", Grant{"plain", Compile("")});
  TestClient& admin =
      Admitted(h, "admin", Grant{"admin", Compile("read_sys: true")});
  EXPECT_EQ(plain.TrySubscribe("$sys/**").error().code(),
            wire::PERMISSION_DENIED);
  plain.Request("$sys/stats", "");
  EXPECT_EQ(plain.Next().error().code(), wire::PERMISSION_DENIED);
  // "**" never matches '$' topics, so it needs no read_sys.
  plain.Subscribe("**");

  admin.Subscribe("$sys/stats");
  admin.Request("$sys/connections", "");
  wire::ServerMessage list = admin.Next();
  ASSERT_TRUE(list.has_response()) << list.DebugString();
  wire::ConnectionList connections;
  ASSERT_TRUE(connections.ParseFromString(list.response().payload()));
  std::vector<std::string> users;
  for (const wire::ConnectionInfo& info : connections.connections()) {
    users.push_back(info.user());
  }
  EXPECT_THAT(users, ::testing::UnorderedElementsAre("plain", "admin"));
}

TEST(BrokerPermissionsTest, AdmitWithoutGrantChecksNothing) {
  BrokerHarness h(AdmissionOptions());
  TestClient& c = Unchecked(h, "anyone");
  EXPECT_TRUE(c.PublishAcked("orders/eu/audit", "x").has_ack());
  c.Subscribe("**");
  c.Subscribe("$sys/stats");
  EXPECT_TRUE(c.Serve("admin/restart").has_ack());
  EXPECT_EQ(h.broker().statistics().permission_denials, 0u);
}

TEST(BrokerPermissionsTest, ConnectionAddedNamesTheUser) {
  BrokerHarness h(AdmissionOptions());
  Admitted(h, "alice-laptop", Grant{"alice", Compile("")});
  bool seen = false;
  for (const wire::BrokerEvent& event : h.TakeEvents()) {
    if (!event.has_connection_added()) continue;
    EXPECT_EQ(event.connection_added().user(), "alice");
    EXPECT_EQ(event.connection_added().client_name(), "alice-laptop");
    seen = true;
  }
  EXPECT_TRUE(seen);
}

// Says a Hello resuming `token` (or asking for a resumable session), has the
// embedder admit it with `grant`, and returns the Welcome.
wire::Welcome ResumeAs(BrokerHarness& h, TestClient& c, absl::string_view token,
                       uint64_t received_frames, Grant grant) {
  wire::ClientMessage m;
  m.mutable_hello()->set_protocol_version(1);
  m.mutable_hello()->set_resumable(true);
  m.mutable_hello()->set_resume_token(std::string(token));
  m.mutable_hello()->set_received_frames(received_frames);
  c.Send(m);
  EXPECT_TRUE(h.broker().Admit(c.id(), std::move(grant), h.now()).ok());
  h.Pump();
  wire::ServerMessage welcome = c.Next();
  EXPECT_TRUE(welcome.has_welcome()) << welcome.DebugString();
  return welcome.welcome();
}

TEST(BrokerPermissionsTest, OnlyTheSameUserResumesASession) {
  BrokerOptions options = AdmissionOptions();
  options.set_session_timeout_ms(10'000);
  BrokerHarness h(options);
  const auto orders = Compile(R"pb(subscribe { allow: "orders/**" })pb");
  TestClient& alice = h.Connect("alice", /*hello=*/false);
  const std::string token =
      ResumeAs(h, alice, "", 0, Grant{"alice", orders}).resume_token();
  ASSERT_FALSE(token.empty());
  alice.Subscribe("orders/*");  // frame 2
  alice.Disconnect();

  TestClient& mallory = h.Connect("mallory", /*hello=*/false);
  const wire::Welcome refused =
      ResumeAs(h, mallory, token, 2, Grant{"mallory", Compile("")});
  EXPECT_FALSE(refused.resumed());
  EXPECT_EQ(refused.resume_code(), wire::SESSION_UNKNOWN);
  EXPECT_THAT(refused.resume_message(), HasSubstr("belongs to another user"));

  TestClient& again = h.Connect("alice-again", /*hello=*/false);
  const wire::Welcome resumed =
      ResumeAs(h, again, token, 2, Grant{"alice", orders});
  EXPECT_TRUE(resumed.resumed());
  TestClient& publisher = Unchecked(h, "publisher");
  publisher.Publish("orders/1", "o");
  EXPECT_EQ(Received(again), std::vector<std::string>{"o"});
  EXPECT_TRUE(Received(mallory).empty());
}

}  // namespace
}  // namespace manifold
