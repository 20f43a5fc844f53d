// Codecs that gather a turn's output (ProtocolCodec::gathers_output): the
// broker closes the frame such a codec leaves open at the end of every call
// that wrote to it, so the transport finds whole frames, and the open frame's
// bytes count toward the connection's outbound limit all along.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "broker/broker.h"
#include "broker/protocol_codec.h"
#include "broker/sys_topics.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/broker_harness.h"

namespace manifold::testing {
namespace {

using ::testing::ElementsAre;

// A line protocol wrapped in frames "<length>payload": "hello", "sub TOPIC"
// in; "welcome", "ack", "error", one line per delivered payload out. Once
// welcomed it gathers each turn's lines into one frame.
class GatheringCodec final : public ProtocolCodec {
 public:
  explicit GatheringCodec(int* finish_calls) : finish_calls_(finish_calls) {}

  absl::string_view name() const override { return "lines"; }
  absl::StatusOr<size_t> Decode(absl::string_view input, size_t max_frame_bytes,
                                Operation& op) override {
    const size_t end = input.find('\n');
    if (end == absl::string_view::npos) return 0;
    absl::string_view line = input.substr(0, end);
    op.kind = Operation::Kind::kMessage;
    op.message.Clear();
    if (line == "hello") {
      op.message.mutable_hello()->set_protocol_version(1);
    } else if (absl::ConsumePrefix(&line, "sub ")) {
      op.message.mutable_subscribe()->set_op_id(++last_op_id_);
      op.message.mutable_subscribe()->set_pattern(std::string(line));
    } else {
      return ProtocolError(wire::MALFORMED_MESSAGE, "unknown line");
    }
    return end + 1;
  }
  void Encode(const wire::ServerMessage& message,
              OutboundBuffer& out) override {
    Begin(out);
    out.Append(message.has_welcome() ? "welcome\n"
               : message.has_ack()   ? "ack\n"
               : message.has_error() ? "error\n"
                                     : "other\n");
    if (message.has_welcome()) gathering_ = true;
    End(out);
  }
  void EncodeDelivery(SharedMessage& message, SubscriptionId subscription,
                      OutboundBuffer& out) override {
    Begin(out);
    out.Append(message.publish().payload);
    out.Append("\n");
    End(out);
  }
  bool gathers_output() const override { return gathering_; }
  void FinishTurn(OutboundBuffer& out) override {
    ++*finish_calls_;
    Close(out);
  }

 private:
  void Begin(OutboundBuffer& out) {
    if (!out.frame_open()) out.OpenFrame(8);
  }
  void End(OutboundBuffer& out) {
    if (!gathering_) Close(out);
  }
  static void Close(OutboundBuffer& out) {
    out.CloseFrame(absl::StrCat("<", out.open_frame_payload_size(), ">"));
  }

  int* finish_calls_;
  bool gathering_ = false;
  uint64_t last_op_id_ = 0;
};

// Frames "<n>payload..." -> their payloads' lines, one vector per frame.
std::vector<std::vector<std::string>> Frames(absl::string_view bytes) {
  std::vector<std::vector<std::string>> frames;
  while (!bytes.empty()) {
    const size_t close = bytes.find('>');
    size_t n = 0;
    EXPECT_TRUE(absl::SimpleAtoi(bytes.substr(1, close - 1), &n)) << bytes;
    const absl::string_view payload = bytes.substr(close + 1, n);
    std::vector<std::string> lines =
        absl::StrSplit(payload.substr(0, payload.size() - 1), '\n');
    frames.push_back(std::move(lines));
    bytes.remove_prefix(close + 1 + n);
  }
  return frames;
}

class GatheredOutputTest : public ::testing::Test {
 protected:
  explicit GatheredOutputTest(BrokerOptions options = Options())
      : h_(std::move(options)) {}

  static BrokerOptions Options() {
    BrokerOptions options;
    options.set_statistics_interval_ms(0);
    return options;
  }

  // A connection speaking GatheringCodec, welcomed and subscribed.
  ConnectionId Connect(absl::string_view pattern) {
    Connection& c =
        h_.broker().Accept(PeerInfo{"lines"}, h_.now(),
                           std::make_unique<GatheringCodec>(&finish_calls_));
    c.Receive(absl::StrCat("hello\nsub ", pattern, "\n"), h_.now());
    h_.Pump();
    return c.id();
  }
  // Everything `id` was sent since the last call, as a transport takes it.
  std::string Take(ConnectionId id) {
    Connection* c = h_.broker().FindConnection(id);
    if (c == nullptr) return "";
    const std::string out = c->CopyPendingOutput();
    c->Consume(out.size());
    return out;
  }
  // Publishes payloads "0".."count-1" to `topic` in one burst of frames.
  static void Burst(TestClient& pub, absl::string_view topic, int count,
                    size_t size = 1) {
    std::string frames;
    for (int i = 0; i < count; ++i) {
      wire::ClientMessage m;
      m.mutable_publish()->set_topic(std::string(topic));
      std::string payload = absl::StrCat(i);
      payload.resize(std::max(size, payload.size()), '.');
      m.mutable_publish()->set_payload(payload);
      AppendFrame(m, &frames);
    }
    pub.SendRaw(frames);
  }

  BrokerHarness h_;
  int finish_calls_ = 0;
};

TEST_F(GatheredOutputTest, WhatOneProcessCallWritesLeavesAsOneFrame) {
  const ConnectionId sub = Connect("t");
  // The welcome gathers already: it and the ack leave together.
  EXPECT_THAT(Frames(Take(sub)), ElementsAre(ElementsAre("welcome", "ack")));
  TestClient& pub = h_.Connect("pub");
  finish_calls_ = 0;
  Burst(pub, "t", 100);  // more than one Process turn's worth of frames
  std::vector<std::string> expected;
  for (int i = 0; i < 100; ++i) expected.push_back(absl::StrCat(i));
  EXPECT_THAT(Frames(Take(sub)), ElementsAre(expected));
  EXPECT_EQ(finish_calls_, 1);
}

TEST_F(GatheredOutputTest, CloseAndTickEndTheirTurnsToo) {
  const ConnectionId watcher =
      Connect(std::string(sys_topics::kConnectionRemoved));
  Take(watcher);
  TestClient& other = h_.Connect("other");
  finish_calls_ = 0;
  other.Disconnect();  // Broker::Close() publishes ConnectionRemoved
  EXPECT_EQ(Frames(Take(watcher)).size(), 1u);
  EXPECT_EQ(finish_calls_, 1);
  // Keepalive pings come from Broker::Tick().
  h_.Advance(absl::Milliseconds(h_.broker().options().keepalive_interval_ms()));
  EXPECT_THAT(Frames(Take(watcher)), ElementsAre(ElementsAre("other")));
  EXPECT_EQ(finish_calls_, 2);
}

TEST_F(GatheredOutputTest, NothingIsGatheredBeforeTheWelcome) {
  Connection& c =
      h_.broker().Accept(PeerInfo{"lines"}, h_.now(),
                         std::make_unique<GatheringCodec>(&finish_calls_));
  c.Receive("sub t\n", h_.now());  // before Hello: a fatal error
  h_.Pump();
  EXPECT_THAT(Frames(Take(c.id())), ElementsAre(ElementsAre("error")));
  EXPECT_EQ(finish_calls_, 0);
}

class GatheredOutputLimitTest : public GatheredOutputTest {
 protected:
  GatheredOutputLimitTest() : GatheredOutputTest(LimitOptions()) {}
  static BrokerOptions LimitOptions() {
    BrokerOptions options = Options();
    options.set_slow_consumer_policy(BrokerOptions::DISCONNECT);
    options.set_max_outbound_bytes(1000);
    return options;
  }
};

TEST_F(GatheredOutputLimitTest, AnOpenFrameCountsTowardTheOutboundLimit) {
  const ConnectionId sub = Connect("t");
  Take(sub);
  TestClient& pub = h_.Connect("pub");
  // 30 deliveries of 100 bytes in one turn, none of it ready before the
  // turn ends: the limit sees them anyway.
  Burst(pub, "t", 30, 100);
  Connection* c = h_.broker().FindConnection(sub);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->state(), ConnectionState::kClosing);
  EXPECT_EQ(WireCode(c->close_reason()), wire::SLOW_CONSUMER);
  EXPECT_EQ(h_.broker().statistics().slow_consumer_disconnects, 1u);
  // The deliveries before the limit, then the error, in the turn's frame.
  const std::vector<std::vector<std::string>> frames = Frames(Take(sub));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_LT(frames[0].size(), 30u);
  EXPECT_EQ(frames[0].back(), "error");
}

}  // namespace
}  // namespace manifold::testing
