// File: client/message.h
// -----------------------------------------------------------------------------
//
// The values a Manifold client sends and receives: a message delivered to a
// subscription (or returned as a request's answer), and a request that arrives
// for a topic the client serves. Plain structs that own their bytes, so they
// can be moved to other threads and kept as long as needed.
//
// Example:
//
//   Message m;
//   m.topic = "room/1";
//   m.payload = "hello";
//   m.headers.push_back({"Trace-Id", "abc"});
//   std::cout << m.topic << ": " << m.payload << "\n";
//   if (m.stream_seq != 0) {  // it came from a durable stream
//     std::cout << "#" << m.stream_seq << " stored "
//               << absl::FormatTime(m.stream_time) << "\n";
//   }

#ifndef MANIFOLD_CLIENT_MESSAGE_H_
#define MANIFOLD_CLIENT_MESSAGE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace manifold {

// Message headers in order. Keys are case-sensitive and may repeat.
using Headers = std::vector<std::pair<std::string, std::string>>;

// A message: a delivery to a subscription, or the answer to a request (then
// `topic` is the requested topic and `reply_to` is empty).
struct Message {
  std::string topic;
  std::string payload;
  Headers headers;
  // Where the publisher wants answers (NATS-style request/reply); may be
  // empty.
  std::string reply_to;
  // For a delivery to a subscription with a replay (SubscribeOptions::replay),
  // replayed or live: the message's sequence in the stream (from 1) and when
  // the broker stored it. 0 and the Unix epoch for every other message.
  uint64_t stream_seq = 0;
  absl::Time stream_time = absl::UnixEpoch();
  // For a subscription bound to a durable consumer
  // (SubscribeOptions::consumer): the message was delivered before and not
  // acknowledged (in time, or before its subscriber left or the broker
  // restarted).
  bool redelivered = false;
};

// A request for a topic this client serves. Answer it exactly once (the
// blocking client does so for you when a Serve handler returns).
struct IncomingRequest {
  // The broker's id for the request; pass it to Respond().
  uint64_t id = 0;
  std::string topic;
  std::string payload;
  Headers headers;
  // How long the requester waits, counted from when the broker routed it.
  absl::Duration timeout = absl::ZeroDuration();
  // The requester's session id (as in broker events).
  uint64_t requester_session_id = 0;
};

}  // namespace manifold

#endif  // MANIFOLD_CLIENT_MESSAGE_H_
