// The NATS front end under per-user permissions: violations are answered
// with nats-server's texts and the connection stays open.

#include <memory>
#include <string>

#include "broker/broker.h"
#include "broker/permissions.h"
#include "gtest/gtest.h"
#include "tests/broker/nats/nats_test_client.h"

namespace manifold {
namespace {

using ::manifold::testing::NatsClient;
using ::manifold::testing::NatsHarness;
using ::manifold::testing::ServerOp;
using ::manifold::testing::TestClient;

// A NATS client admitted as "alice": publishes under orders but not their
// audit trail, subscribes under orders only.
NatsClient& Alice(NatsHarness& h) {
  Permissions p;
  p.mutable_publish()->add_allow("orders/**");
  p.mutable_publish()->add_deny("orders/*/audit");
  p.mutable_subscribe()->add_allow("orders/**");
  absl::StatusOr<std::shared_ptr<const PermissionSet>> set =
      PermissionSet::Compile(p);
  EXPECT_TRUE(set.ok()) << set.status();
  NatsClient& c = h.Accept();
  EXPECT_EQ(c.Next().op, "INFO");
  c.Send(
      "CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"pw\"}\r\n"
      "PING\r\n");
  EXPECT_TRUE(
      h.broker().Admit(c.id(), Grant{"alice", *set}, h.native().now()).ok());
  h.Pump();
  EXPECT_EQ(c.Next().op, "PONG");
  return c;
}

BrokerOptions Options() {
  BrokerOptions options;
  options.set_require_admission(true);
  return options;
}

void ExpectErr(const ServerOp& op, absl::string_view text) {
  EXPECT_EQ(op.op, "-ERR") << op.raw;
  EXPECT_EQ(op.text, text) << op.raw;
}

TEST(NatsPermissionsTest, DeniedPublishIsAPermissionsViolationAndKeepsTheLink) {
  NatsHarness h(Options());
  TestClient& watcher = h.native().Connect("watcher", /*hello=*/false);
  wire::ClientMessage hello;
  hello.mutable_hello()->set_protocol_version(1);
  watcher.Send(hello);
  ASSERT_TRUE(h.broker().Admit(watcher.id(), h.native().now()).ok());
  h.Pump();
  ASSERT_TRUE(watcher.Next().has_welcome());
  watcher.Subscribe("**");
  NatsClient& alice = Alice(h);

  alice.Send("PUB orders.eu.audit 1\r\nx\r\n");
  ServerOp err = alice.Next();
  EXPECT_EQ(err.raw,
            "-ERR 'Permissions Violation for Publish to \"orders.eu.audit\"'"
            "\r\n");
  alice.Send("PUB invoices.1 1\r\nx\r\n");
  ExpectErr(alice.Next(),
            "Permissions Violation for Publish to \"invoices.1\"");
  alice.Send("PUB orders.eu.new 2\r\nok\r\nPING\r\n");
  EXPECT_EQ(alice.Next().op, "PONG");
  EXPECT_FALSE(alice.closed());
  wire::ServerMessage delivered = watcher.Next();
  EXPECT_EQ(delivered.deliver().payload(), "ok");
  EXPECT_TRUE(watcher.Idle());
}

TEST(NatsPermissionsTest, DeniedSubscriptionIsAPermissionsViolation) {
  NatsHarness h(Options());
  NatsClient& alice = Alice(h);
  alice.Send("SUB invoices.* 1\r\n");
  ExpectErr(alice.Next(),
            "Permissions Violation for Subscription to \"invoices.*\"");
  alice.Send("SUB > workers 2\r\n");
  ExpectErr(alice.Next(),
            "Permissions Violation for Subscription to \">\" using queue "
            "\"workers\"");
  // Still connected, and an allowed subscription works.
  alice.Send("SUB orders.> 3\r\nPING\r\n");
  EXPECT_EQ(alice.Next().op, "PONG");
  alice.Send("PUB orders.eu.new 2\r\nhi\r\n");
  ServerOp msg = alice.Next();
  EXPECT_EQ(msg.op, "MSG");
  EXPECT_EQ(msg.subject, "orders.eu.new");
  EXPECT_EQ(msg.sid, "3");
  EXPECT_EQ(msg.payload, "hi");
  EXPECT_FALSE(alice.closed());
}

TEST(NatsPermissionsTest, ASubscriptionEndedByARegrantReadsAsNatsServerSaysIt) {
  NatsHarness h(Options());
  NatsClient& alice = Alice(h);
  alice.Send("SUB orders.eu.* 1\r\nSUB orders.> 2\r\nPING\r\n");
  EXPECT_EQ(alice.Next().op, "PONG");
  Permissions narrower;
  narrower.mutable_subscribe()->add_allow("orders/*/*");
  narrower.mutable_subscribe()->add_deny("orders/eu/*");
  std::shared_ptr<const PermissionSet> set = *PermissionSet::Compile(narrower);
  h.broker().Regrant([&](absl::string_view) { return set; }, h.native().now());
  h.Pump();
  ExpectErr(alice.Next(),
            "Permissions Violation for Subscription to \"orders.eu.*\"");
  ExpectErr(alice.Next(),
            "Permissions Violation for Subscription to \"orders.>\"");
  // Nothing more reaches the ended sids; the link stays.
  alice.Send("PUB orders.eu.new 2\r\nhi\r\nPING\r\n");
  EXPECT_EQ(alice.Next().op, "PONG");
  EXPECT_FALSE(alice.closed());
}

}  // namespace
}  // namespace manifold
