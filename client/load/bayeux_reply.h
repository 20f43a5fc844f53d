// File: client/load/bayeux_reply.h
// -----------------------------------------------------------------------------
//
// Reads the JSON body of a Bayeux server's answer (an array of messages, or
// one message) into the few fields the load tool's Bayeux client needs
// (client/load/bayeux_load.h) in one pass of RapidJSON's SAX reader,
// building no document.
//
// Per message it keeps the channel (one of the meta channels, the run's data
// channel, or another), `successful`, `clientId`, `error`,
// `advice.reconnect`, and for deliveries the load stamp in `data`:
// {"l": lane, "s": sequence, ...}.
//
// Example:
//
//   BayeuxReplyParser parser("/bench/r1");
//   std::vector<BayeuxMessage> messages;
//   absl::Status parsed = parser.Parse(body, messages);
//   for (const BayeuxMessage& m : messages)
//     if (m.channel == BayeuxChannel::kData && m.has_stamp) Take(m.lane,
//     m.seq);

#ifndef MANIFOLD_CLIENT_LOAD_BAYEUX_REPLY_H_
#define MANIFOLD_CLIENT_LOAD_BAYEUX_REPLY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace manifold::load {

enum class BayeuxChannel {
  kOther,
  kHandshake,   // /meta/handshake
  kConnect,     // /meta/connect
  kSubscribe,   // /meta/subscribe
  kDisconnect,  // /meta/disconnect
  kData,        // the run's data channel: a delivery or a publish's answer
};

struct BayeuxMessage {
  BayeuxChannel channel = BayeuxChannel::kOther;
  // `successful` as sent; false when absent (deliveries have none).
  bool has_successful = false;
  bool successful = false;
  std::string client_id;  // handshake answers
  std::string error;      // refusals
  std::string reconnect;  // advice.reconnect: "retry", "handshake", "none"
  // A delivery's data: true when it had both "l" and "s" as non-negative
  // integers.
  bool has_data = false;
  bool has_stamp = false;
  uint64_t lane = 0;
  uint64_t seq = 0;
};

class BayeuxReplyParser {
 public:
  // `data_channel` is the channel the run publishes on.
  explicit BayeuxReplyParser(std::string data_channel);

  // Replaces `messages` with the messages of `body`. Returns
  // INVALID_ARGUMENT, with the parser's message and the start of the body,
  // for a body that is no JSON object or array of objects.
  absl::Status Parse(absl::string_view body,
                     std::vector<BayeuxMessage>& messages) const;

 private:
  const std::string data_channel_;
};

}  // namespace manifold::load

#endif  // MANIFOLD_CLIENT_LOAD_BAYEUX_REPLY_H_
