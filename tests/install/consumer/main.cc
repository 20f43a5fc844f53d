// Uses the installed Manifold headers and libraries; exits 0 when they work.
#include <cstdio>

#include "core/framing.h"
#include "core/manifold.pb.h"
#include "core/topic.h"

int main() {
  manifold::wire::ClientMessage message;
  message.mutable_publish()->set_topic("lobby/alice");
  const std::string frame = manifold::EncodeFrame(message);
  auto located = manifold::LocateFrame(frame, 1024);
  const bool ok = located.ok() && located->has_value() &&
                  manifold::Matches("*/alice", "lobby/alice");
  std::printf("consumer: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
