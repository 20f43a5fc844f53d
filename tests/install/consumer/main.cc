// Uses the installed Manifold headers and libraries; exits 0 when they work:
// encodes a frame with core/, and embeds a Broker that welcomes a client.
#include <cstdio>
#include <string>

#include "broker/broker.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "core/topic.h"

int main() {
  manifold::wire::ClientMessage hello;
  hello.mutable_hello()->set_protocol_version(manifold::kProtocolVersion);
  const std::string frame = manifold::EncodeFrame(hello);
  auto located = manifold::LocateFrame(frame, 1024);
  bool ok = located.ok() && located->has_value() &&
            manifold::Matches("*/alice", "lobby/alice");

  manifold::BrokerOptions options;
  options.set_server_name("consumer");
  manifold::Broker broker(options);
  const absl::Time now = absl::UnixEpoch();
  manifold::Connection& c = broker.Accept(manifold::PeerInfo{"memory:1"}, now);
  c.Receive(frame, now);
  broker.Process(now);
  ok = ok && c.PendingOutputBytes() > 0 && broker.statistics().connections == 1;
  std::printf("consumer: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
