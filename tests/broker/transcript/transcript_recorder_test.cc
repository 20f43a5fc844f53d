// The recorder's promise: a session driven the way a real transport drives
// the broker (input in arbitrary pieces, partial writes, a slow reader, time
// passing, a malformed peer, shutdown) replays from its recording to the same
// output, byte for byte.

#include "broker/transcript/transcript_recorder.h"

#include <random>

#include "absl/container/flat_hash_set.h"
#include "broker/sys_topics.h"
#include "broker/transcript/recorded_session_ids.h"
#include "broker/transcript/transcript_runner.h"
#include "core/framing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold {
namespace {

using ::testing::HasSubstr;

// Drives a Broker as a transport would, telling a recorder everything.
class RecordingTransport {
 public:
  // `session_ids`: the broker's live source of session tokens (null: the
  // seeded one); each draw is recorded, as manifoldd records them.
  explicit RecordingTransport(
      BrokerOptions options,
      std::unique_ptr<SessionIdSource> session_ids = nullptr)
      : options_(options),
        broker_(options,
                session_ids == nullptr
                    ? nullptr
                    : RecordSessionIds(std::move(session_ids),
                                       [this](absl::Span<const uint8_t> b) {
                                         recorder_.SessionIdDrawn(b);
                                       })),
        now_(absl::FromUnixSeconds(1'900'000'000)),
        recorder_(options, now_, "recorder test"),
        rng_(42) {}

  ConnectionId Connect(absl::string_view name) {
    Connection& c = broker_.Accept(PeerInfo{std::string(name)}, now_);
    recorder_.Accepted(c, now_);
    recorder_.CaptureOutput(broker_);
    return c.id();
  }

  // Sends `message` in random pieces, as TCP may deliver it.
  void Send(ConnectionId id, const wire::ClientMessage& message) {
    SendRaw(id, EncodeFrame(message));
  }
  void SendRaw(ConnectionId id, absl::string_view bytes) {
    Connection* c = broker_.FindConnection(id);
    if (c == nullptr) return;
    while (!bytes.empty()) {
      const size_t n = std::min<size_t>(bytes.size(), 1 + rng_() % 7);
      c->Receive(bytes.substr(0, n), now_);
      recorder_.Received(id, bytes.substr(0, n), now_);
      bytes.remove_prefix(n);
    }
    received_ = true;
  }

  // One loop iteration: process, fire timers, write some output, close.
  void Loop() {
    if (received_) {
      broker_.Process(now_);
      recorder_.Processed(now_);
      received_ = false;
    }
    if (std::optional<absl::Time> due = broker_.NextDeadline();
        due.has_value() && *due <= now_) {
      broker_.Tick(now_);
      recorder_.Ticked(now_);
    }
    recorder_.CaptureOutput(broker_);
    std::vector<ConnectionId> changed;
    broker_.TakeChanged(changed);
    for (ConnectionId id : all_) {
      Connection* c = broker_.FindConnection(id);
      if (c == nullptr || stalled_.contains(id)) continue;
      // A partial write of a random size, as a socket buffer allows.
      const size_t pending = c->PendingOutputBytes();
      if (pending > 0) {
        const size_t n = std::min<size_t>(pending, 1 + rng_() % 300);
        recorder_.Written(*c, n);
        c->Consume(n);
      }
      if (c->ShouldClose()) {
        recorder_.Closing(*c, "transport closed the link", now_);
        broker_.Close(id, "transport closed the link", now_);
      }
    }
  }

  void LoopUntilQuiet() {
    for (int i = 0; i < 200; ++i) Loop();
  }

  void Advance(absl::Duration by) {
    now_ += by;
    Loop();
  }

  void Hangup(ConnectionId id) {
    if (Connection* c = broker_.FindConnection(id)) {
      recorder_.CaptureOutput(broker_);
      recorder_.Closing(*c, "peer closed the connection", now_);
      broker_.Close(id, "peer closed the connection", now_);
    }
  }

  void Shutdown() {
    broker_.Shutdown(now_);
    recorder_.ShutDown(now_);
    LoopUntilQuiet();
  }

  void Track(ConnectionId id) { all_.push_back(id); }
  void Stall(ConnectionId id) { stalled_.insert(id); }
  Broker& broker() { return broker_; }
  const TranscriptRecorder& recorder() const { return recorder_; }

 private:
  BrokerOptions options_;
  Broker broker_;
  absl::Time now_;
  TranscriptRecorder recorder_;
  std::mt19937 rng_;
  bool received_ = false;
  std::vector<ConnectionId> all_;
  absl::flat_hash_set<ConnectionId> stalled_;
};

wire::ClientMessage Hello(absl::string_view name) {
  wire::ClientMessage m;
  m.mutable_hello()->set_protocol_version(1);
  m.mutable_hello()->set_client_name(std::string(name));
  return m;
}

wire::ClientMessage Subscribe(uint64_t op, absl::string_view pattern) {
  wire::ClientMessage m;
  m.mutable_subscribe()->set_op_id(op);
  m.mutable_subscribe()->set_pattern(std::string(pattern));
  return m;
}

wire::ClientMessage Publish(absl::string_view topic,
                            absl::string_view payload) {
  wire::ClientMessage m;
  m.mutable_publish()->set_topic(std::string(topic));
  m.mutable_publish()->set_payload(std::string(payload));
  return m;
}

transcript::Transcript RecordBusySession() {
  BrokerOptions options;
  options.set_max_outbound_bytes(4000);
  options.set_keepalive_interval_ms(5000);
  options.set_statistics_interval_ms(3000);
  RecordingTransport t(options);
  const ConnectionId pub = t.Connect("pub");
  const ConnectionId sub = t.Connect("sub");
  const ConnectionId slow = t.Connect("slow");
  const ConnectionId watcher = t.Connect("watcher");
  for (ConnectionId id : {pub, sub, slow, watcher}) t.Track(id);
  t.Send(pub, Hello("pub"));
  t.Send(sub, Hello("sub"));
  t.Send(slow, Hello("slow"));
  t.Send(watcher, Hello("watcher"));
  t.Loop();
  t.Send(sub, Subscribe(1, "feed/*"));
  t.Send(slow, Subscribe(1, "feed/**"));
  t.Send(watcher, Subscribe(1, "$sys/**"));
  t.Loop();
  t.Stall(slow);  // never reads again: cut off as a slow consumer
  for (int i = 0; i < 60; ++i) {
    t.Send(pub, Publish(absl::StrCat("feed/", i % 3), std::string(100, 'x')));
    if (i % 10 == 0) t.Loop();
  }
  t.LoopUntilQuiet();
  // Statistics include bytes written, which depend on the partial writes.
  wire::ClientMessage stats;
  stats.mutable_request()->set_op_id(7);
  stats.mutable_request()->set_topic(std::string(sys_topics::kStatisticsTopic));
  t.Send(sub, stats);
  t.LoopUntilQuiet();
  // Time passes: keepalive pings, periodic statistics, the slow reader's
  // linger runs out.
  for (int i = 0; i < 8; ++i) t.Advance(absl::Milliseconds(1700));
  // A malformed peer.
  t.SendRaw(pub, std::string(12, '\xff'));
  t.LoopUntilQuiet();
  t.Hangup(sub);
  t.Shutdown();
  return t.recorder().transcript();
}

TEST(TranscriptRecorderTest, RecordedSessionReplaysByteForByte) {
  const transcript::Transcript recorded = RecordBusySession();
  EXPECT_TRUE(recorded.recorded());
  EXPECT_GT(recorded.step_size(), 100);
  absl::Status replay = ReplayTranscript(recorded);
  EXPECT_TRUE(replay.ok()) << replay.message();
  // And through the text form, as a committed file would be.
  absl::StatusOr<transcript::Transcript> parsed =
      ParseTranscript(TranscriptToText(recorded));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  absl::Status again = ReplayTranscript(*parsed);
  EXPECT_TRUE(again.ok()) << again.message();
}

TEST(TranscriptRecorderTest, RecordingIsDeterministic) {
  EXPECT_EQ(TranscriptToText(RecordBusySession()),
            TranscriptToText(RecordBusySession()));
}

TEST(TranscriptRecorderTest, ATamperedRecordingFailsItsReplay) {
  transcript::Transcript recorded = RecordBusySession();
  bool tampered = false;
  for (transcript::Step& step : *recorded.mutable_step()) {
    if (step.has_expect() && step.expect().message().has_deliver()) {
      step.mutable_expect()->mutable_message()->mutable_deliver()->set_payload(
          "tampered");
      tampered = true;
      break;
    }
  }
  ASSERT_TRUE(tampered);
  absl::Status replay = ReplayTranscript(recorded);
  EXPECT_THAT(replay.message(), HasSubstr("payload: \"tampered\""));
}

TEST(TranscriptRecorderTest, WholeFramesAreRecordedAsMessages) {
  BrokerOptions options;
  Broker broker(options);
  const absl::Time now = absl::FromUnixSeconds(100);
  TranscriptRecorder recorder(options, now, "x");
  Connection& c = broker.Accept(PeerInfo{"p"}, now);
  recorder.Accepted(c, now);
  const std::string hello = EncodeFrame(Hello("p"));
  recorder.Received(c.id(), hello, now);
  recorder.Received(c.id(), hello.substr(0, 2), now);
  recorder.Received(c.id(), hello.substr(2), now);
  recorder.Received(c.id(), hello, now);
  const auto& steps = recorder.transcript().step();
  ASSERT_EQ(steps.size(), 5);
  EXPECT_TRUE(steps[1].send().has_message());
  EXPECT_EQ(steps[2].send().raw(), hello.substr(0, 2));
  EXPECT_EQ(steps[3].send().raw(), hello.substr(2));
  EXPECT_TRUE(steps[4].send().has_message());  // back on a frame boundary
}

// Stands for the operating system's randomness: bytes the replay's seeded
// source does not produce.
class UnpredictableSource : public SessionIdSource {
 public:
  void Fill(absl::Span<uint8_t> out) override {
    for (uint8_t& b : out) b = static_cast<uint8_t>(rng_());
  }

 private:
  std::mt19937 rng_{20260101};
};

wire::ClientMessage ResumableHello(absl::string_view name) {
  wire::ClientMessage m = Hello(name);
  m.mutable_hello()->set_resumable(true);
  return m;
}

// Two resumable sessions whose tokens come from an unpredictable source.
transcript::Transcript RecordResumableSessions() {
  BrokerOptions options;
  RecordingTransport t(options, std::make_unique<UnpredictableSource>());
  const ConnectionId a = t.Connect("a");
  const ConnectionId b = t.Connect("b");
  t.Track(a);
  t.Track(b);
  t.Send(a, ResumableHello("a"));
  t.Send(b, ResumableHello("b"));
  t.LoopUntilQuiet();
  t.Hangup(a);
  t.Hangup(b);
  t.LoopUntilQuiet();
  return t.recorder().transcript();
}

TEST(TranscriptRecorderTest, SessionTokensDrawnLiveAreRecordedAndReplayed) {
  const transcript::Transcript recorded = RecordResumableSessions();
  ASSERT_EQ(recorded.session_ids_size(), 2);
  EXPECT_EQ(recorded.session_ids(0).size(), 2 * kSessionTokenBytes);
  // The Welcomes carry the recorded tokens, and the replay draws them again.
  std::vector<std::string> tokens;
  for (const transcript::Step& step : recorded.step()) {
    if (step.has_expect() && step.expect().message().has_welcome()) {
      tokens.push_back(step.expect().message().welcome().resume_token());
    }
  }
  EXPECT_THAT(tokens, ::testing::ElementsAre(recorded.session_ids(0),
                                             recorded.session_ids(1)));
  absl::StatusOr<transcript::Transcript> parsed =
      ParseTranscript(TranscriptToText(recorded));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  absl::Status replay = ReplayTranscript(*parsed);
  EXPECT_TRUE(replay.ok()) << replay.message();
}

TEST(TranscriptRecorderTest, WithoutItsSessionIdsALiveRecordingDoesNotReplay) {
  transcript::Transcript recorded = RecordResumableSessions();
  recorded.clear_session_ids();
  absl::Status replay = ReplayTranscript(recorded);
  EXPECT_THAT(replay.message(), HasSubstr("resume_token"));
}

}  // namespace
}  // namespace manifold
