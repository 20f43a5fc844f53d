#include "tests/transports/testing/vanished_peer.h"

#include "broker/sys_topics.h"
#include "core/manifold.pb.h"
#include "gtest/gtest.h"
#include "tests/transports/testing/wire_client.h"

namespace manifold::testing {

void ExpectAVanishedPeerEndsOnlyItsConnection(const Endpoint& leaver_at,
                                              const Endpoint& others_at) {
  WireClient watcher = GreetedClient(others_at, "watcher");
  ASSERT_TRUE(watcher.Subscribe(sys_topics::kConnectionRemoved).ok());
  WireClient leaver =
      GreetedClient(leaver_at, "leaver", /*receive_buffer_bytes=*/4096);
  ASSERT_TRUE(leaver.Subscribe("flood").ok());
  WireClient publisher = GreetedClient(others_at, "pub");
  absl::StatusOr<wire::ServerMessage> ack =
      publisher.PublishAcked("flood", PatternPayload(1 << 20, 5));
  ASSERT_TRUE(ack.ok()) << ack.status();
  ASSERT_EQ(ack->ack().delivered(), 1u);
  // A round trip later the leaver's socket is full and the rest of the
  // message waits to be written.
  ASSERT_TRUE(publisher.Ping().ok());
  leaver.Close();

  absl::StatusOr<wire::ServerMessage> event = watcher.ReceiveSkippingPings();
  ASSERT_TRUE(event.ok()) << event.status();
  wire::BrokerEvent removed;
  ASSERT_TRUE(removed.ParseFromString(event->deliver().payload()));
  EXPECT_EQ(removed.connection_removed().client_name(), "leaver")
      << removed.ShortDebugString();
  EXPECT_TRUE(publisher.Ping().ok());  // still serving
}

}  // namespace manifold::testing
