// Fuzzes the whole Broker. The input is a program: each byte picks an action
// (connect, send an operation built from the following bytes, send garbage,
// move the clock, write some output, stop reading, hang up, shut down) over a
// few connections. After every action it checks the broker's invariants:
//   - every connection's buffered output stays within its limit (plus one
//     frame and the final error);
//   - the statistics gauges agree with what the broker holds;
//   - counters never go backwards.
// The same program runs on two brokers in lockstep, and their output must be
// identical byte for byte (determinism).

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "google/protobuf/stubs/logging.h"

namespace {

using manifold::Broker;
using manifold::BrokerOptions;
using manifold::Connection;
using manifold::ConnectionId;

constexpr int kClients = 4;
const char* const kTopics[] = {"a",   "a/b", "a/*",     "**",  "a/**",
                               "b/c", "*/c", "$sys/**", "svc", "in/1"};

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return at_ >= size_; }
  uint8_t Byte() { return at_ < size_ ? data_[at_++] : 0; }
  const char* Topic() { return kTopics[Byte() % std::size(kTopics)]; }
  std::string Bytes(size_t max) {
    const size_t n =
        std::min<size_t>(Byte() % (max + 1), size_ - std::min(at_, size_));
    std::string s(reinterpret_cast<const char*>(data_ + at_), n);
    at_ += n;
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

BrokerOptions Options() {
  BrokerOptions o;
  o.set_max_connections(3);
  o.set_max_outbound_bytes(600);
  o.set_max_inbound_bytes(512);
  o.set_max_frame_bytes(512);
  o.set_max_payload_bytes(128);
  o.set_max_subscriptions_per_connection(4);
  o.set_max_services_per_connection(2);
  o.set_max_pending_requests_per_connection(2);
  o.set_max_queued_events(16);
  o.set_keepalive_interval_ms(2000);
  o.set_handshake_timeout_ms(3000);
  o.set_close_linger_ms(1000);
  o.set_default_request_timeout_ms(500);
  o.set_statistics_interval_ms(4000);
  o.set_frames_per_turn(3);
  return o;
}

// One broker and its clients, as a transport sees them.
struct World {
  Broker broker{Options()};
  std::array<ConnectionId, kClients> ids{};
  std::array<bool, kClients> reading{};
  std::array<std::string, kClients> output;  // everything each client read
  manifold::BrokerStatistics last;
};

std::string BuildOperation(Input& in) {
  manifold::wire::ClientMessage m;
  const uint64_t op = in.Byte();
  switch (in.Byte() % 12) {
    case 0:
      m.mutable_hello()->set_protocol_version(in.Byte() % 8 == 0 ? 2 : 1);
      m.mutable_hello()->set_no_echo(in.Byte() % 2);
      break;
    case 1:
    case 2:
      m.mutable_subscribe()->set_op_id(op);
      m.mutable_subscribe()->set_pattern(in.Topic());
      if (in.Byte() % 3 == 0) m.mutable_subscribe()->set_queue_group("g");
      break;
    case 3:
      m.mutable_unsubscribe()->set_op_id(op);
      m.mutable_unsubscribe()->set_subscription_id(in.Byte() % 8);
      m.mutable_unsubscribe()->set_max_messages(in.Byte() % 3);
      break;
    case 4:
    case 5: {
      manifold::wire::Publish* p = m.mutable_publish();
      p->set_op_id(op);
      p->set_topic(in.Topic());
      p->set_payload(in.Bytes(160));
      p->set_ack(in.Byte() % 2);
      if (in.Byte() % 4 == 0) p->set_reply_to("in/1");
      p->set_no_responders(in.Byte() % 2);
      break;
    }
    case 6:
      m.mutable_serve()->set_op_id(op);
      m.mutable_serve()->set_topic(in.Topic());
      break;
    case 7:
      m.mutable_unserve()->set_op_id(op);
      m.mutable_unserve()->set_topic(in.Topic());
      break;
    case 8:
      m.mutable_request()->set_op_id(op);
      m.mutable_request()->set_topic(in.Topic());
      m.mutable_request()->set_payload(in.Bytes(16));
      m.mutable_request()->set_timeout_ms(in.Byte() * 10);
      break;
    case 9:
      m.mutable_respond()->set_op_id(op);
      m.mutable_respond()->set_request_id(in.Byte() % 6);
      m.mutable_respond()->set_status(
          static_cast<manifold::wire::RequestStatus>(in.Byte() % 6));
      break;
    case 10:
      m.mutable_ping()->set_op_id(op);
      break;
    default:
      m.mutable_pong()->set_op_id(op);
      break;
  }
  return manifold::EncodeFrame(m);
}

void CheckInvariants(World& w) {
  const BrokerOptions options = Options();
  const manifold::BrokerStatistics& s = w.broker.statistics();
  size_t open = 0;
  for (int i = 0; i < kClients; ++i) {
    Connection* c = w.broker.FindConnection(w.ids[i]);
    if (c == nullptr) continue;
    // Bounded output: the limit, one more frame that crossed it, the final
    // error or goodbye.
    if (c->PendingOutputBytes() >
        options.max_outbound_bytes() + options.max_frame_bytes() + 1024) {
      __builtin_trap();
    }
    if (c->state() == manifold::ConnectionState::kOpen) ++open;
  }
  if (s.connections != open) __builtin_trap();
  if (s.subscriptions > kClients * options.max_subscriptions_per_connection()) {
    __builtin_trap();
  }
  if (s.services > kClients * options.max_services_per_connection()) {
    __builtin_trap();
  }
  if (s.requests_in_flight >
      kClients * options.max_pending_requests_per_connection()) {
    __builtin_trap();
  }
  if (w.broker.connection_count() > kClients) __builtin_trap();
  // Counters only grow.
  const manifold::BrokerStatistics& l = w.last;
  if (s.messages_in < l.messages_in || s.bytes_in < l.bytes_in ||
      s.messages_out < l.messages_out || s.bytes_out < l.bytes_out ||
      s.deliveries < l.deliveries || s.publishes < l.publishes ||
      s.protocol_errors < l.protocol_errors ||
      s.connections_accepted < l.connections_accepted) {
    __builtin_trap();
  }
  w.last = s;
}

// Runs one action on a world; both worlds get the same actions.
void Step(World& w, absl::Time now, uint8_t action, uint8_t who,
          const std::string& bytes, size_t write) {
  const int i = who % kClients;
  Connection* c = w.broker.FindConnection(w.ids[i]);
  switch (action) {
    case 0:  // connect
      if (c == nullptr) {
        w.ids[i] = w.broker.Accept(manifold::PeerInfo{"fuzz"}, now).id();
        w.reading[i] = true;
      }
      break;
    case 1:  // send bytes (an operation, or garbage)
      if (c != nullptr && c->WantsRead()) c->Receive(bytes, now);
      break;
    case 2:  // reading on/off
      w.reading[i] = !w.reading[i];
      break;
    case 3:  // hang up
      if (c != nullptr) w.broker.Close(w.ids[i], "hang up", now);
      break;
    case 4:
      w.broker.Shutdown(now);
      break;
    default:
      break;
  }
  w.broker.Process(now);
  w.broker.Tick(now);
  std::vector<ConnectionId> changed;
  w.broker.TakeChanged(changed);
  for (int k = 0; k < kClients; ++k) {
    Connection* conn = w.broker.FindConnection(w.ids[k]);
    if (conn == nullptr || !w.reading[k]) continue;
    absl::string_view chunks[16];
    const size_t n = conn->PendingOutput(absl::MakeSpan(chunks));
    size_t budget = write, taken = 0;
    for (size_t j = 0; j < n && budget > 0; ++j) {
      const size_t part = std::min(budget, chunks[j].size());
      w.output[k].append(chunks[j].data(), part);
      budget -= part;
      taken += part;
    }
    conn->Consume(taken);
    if (conn->ShouldClose()) w.broker.Close(w.ids[k], "done", now);
  }
  CheckInvariants(w);
}

}  // namespace

// Protobuf logs every string field with invalid UTF-8 it rejects; fuzzing
// produces millions of them.
static const bool kQuietProtobuf = [] {
  google::protobuf::SetLogHandler(nullptr);
  return true;
}();

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  World a, b;
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  for (int steps = 0; !in.empty() && steps < 300; ++steps) {
    const uint8_t pick = in.Byte();
    const uint8_t who = in.Byte();
    uint8_t action = pick % 16;
    std::string bytes;
    if (action >= 5 && action <= 11) {
      action = 1;
      bytes = BuildOperation(in);
    } else if (action == 12) {
      action = 1;
      bytes = in.Bytes(40);  // garbage
    } else if (action >= 13) {
      now += absl::Milliseconds(50 * (in.Byte() + 1));  // time passes
      action = 15;
    }
    const size_t write = 1 + in.Byte() * 8;
    Step(a, now, action, who, bytes, write);
    Step(b, now, action, who, bytes, write);
  }
  for (int k = 0; k < kClients; ++k) {
    if (a.output[k] != b.output[k]) __builtin_trap();  // not deterministic
  }
  return 0;
}
