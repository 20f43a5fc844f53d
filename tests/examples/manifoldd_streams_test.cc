// Durable streams in manifoldd as an operator runs it: a real process with a
// data directory, raw native clients, kill -9 in the middle of a publish load
// at random moments, restarts, replays, and data directories that are not
// Manifold's. Every case runs once per event loop this build has.

#include <signal.h>
#include <sys/mount.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/sys_topics.h"
#include "core/manifold.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/running_manifoldd.h"
#include "tests/testing/temp_dir.h"
#include "tests/transports/testing/event_loop_params.h"
#include "tests/transports/testing/wire_client.h"

namespace manifold {
namespace {

using ::testing::HasSubstr;
using testing::ManifolddPath;
using testing::RunningManifoldd;
using testing::WireClient;

class ManifolddStreamsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(ManifolddPath().empty())
        << "the build did not say where manifoldd is";
    std::ofstream config(config_);
    config << "data_dir: \"" << data_ << "\"\n"
           << "streams { name: \"s\" topics: \"t/**\" }\n"
           << "streams { name: \"m\" topics: \"mem/**\" "
              "storage: STORAGE_MEMORY }\n";
  }
  ~ManifolddStreamsTest() override { std::filesystem::remove_all(directory_); }

  absl::StatusOr<std::unique_ptr<RunningManifoldd>> Start(
      std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--loop=" + GetParam(), "--listen=127.0.0.1:0", "--config=" + config_};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunningManifoldd::Start(args);
  }

  const std::string directory_ = testing::MakeShortTempDir();
  const std::string data_ = directory_ + "/data";
  const std::string config_ = directory_ + "/manifoldd.textpb";
};

INSTANTIATE_TEST_SUITE_P(Loops, ManifolddStreamsTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

absl::StatusOr<wire::StreamInfo> Info(WireClient& c, absl::string_view name) {
  wire::ClientMessage m;
  m.mutable_request()->set_op_id(c.next_op_id());
  m.mutable_request()->set_topic(std::string(sys_topics::kStreamInfo));
  m.mutable_request()->set_payload(std::string(name));
  if (absl::Status s = c.Send(m); !s.ok()) return s;
  absl::StatusOr<wire::ServerMessage> answer = c.ReceiveSkippingPings();
  if (!answer.ok()) return answer.status();
  if (!answer->has_response() ||
      answer->response().status() != wire::REQUEST_OK) {
    return absl::InternalError(answer->DebugString());
  }
  wire::StreamInfo info;
  if (!info.ParseFromString(answer->response().payload())) {
    return absl::InternalError("bad StreamInfo");
  }
  return info;
}

// Everything the stream holds, replayed from sequence 1: (seq, payload).
std::vector<std::pair<uint64_t, std::string>> ReplayAll(WireClient& c,
                                                        uint64_t last_seq) {
  std::vector<std::pair<uint64_t, std::string>> got;
  wire::ClientMessage m;
  m.mutable_subscribe()->set_op_id(c.next_op_id());
  m.mutable_subscribe()->set_pattern("t/**");
  m.mutable_subscribe()->mutable_replay()->set_from_seq(1);
  EXPECT_TRUE(c.Send(m).ok());
  absl::StatusOr<wire::ServerMessage> ack = c.ReceiveSkippingPings();
  EXPECT_TRUE(ack.ok() && ack->has_ack()) << ack.status();
  while (got.empty() || got.back().first < last_seq) {
    absl::StatusOr<wire::ServerMessage> d = c.ReceiveSkippingPings();
    if (!d.ok()) {
      ADD_FAILURE() << "replay stopped after " << got.size()
                    << " messages: " << d.status();
      break;
    }
    if (!d->has_deliver()) {
      ADD_FAILURE() << d->DebugString();
      break;
    }
    got.emplace_back(d->deliver().stream_seq(), d->deliver().payload());
  }
  return got;
}

// Publishes "<round>-<i>" with acks, `window` at a time, until the broker
// goes away; returns how many were acknowledged (always a prefix).
uint64_t PublishUntilKilled(WireClient& c, int round, uint64_t& sent) {
  constexpr int kWindow = 32;
  uint64_t acked = 0;
  for (;;) {
    std::string frames;
    for (int k = 0; k < kWindow; ++k) {
      wire::ClientMessage m;
      m.mutable_publish()->set_op_id(c.next_op_id());
      m.mutable_publish()->set_topic("t/load");
      m.mutable_publish()->set_payload(absl::StrCat(round, "-", sent + k));
      m.mutable_publish()->set_ack(true);
      frames += EncodeFrame(m);
    }
    if (!c.SendRaw(frames).ok()) return acked;
    sent += kWindow;
    for (int k = 0; k < kWindow; ++k) {
      absl::StatusOr<wire::ServerMessage> answer =
          c.ReceiveSkippingPings(absl::Seconds(10));
      if (!answer.ok()) return acked;
      if (!answer->has_ack()) {
        ADD_FAILURE() << answer->DebugString();
        return acked;
      }
      ++acked;
    }
  }
}

TEST_P(ManifolddStreamsTest,
       AcknowledgedMessagesSurviveKillNineAtRandomMoments) {
  std::mt19937 random(std::random_device{}());
  // What each round sent and had acknowledged, in order.
  std::vector<uint64_t> acked_per_round;
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    // Small write buffers: the store flushes a memtable and switches to a
    // new write-ahead log every thousand or so publishes, so the kill lands
    // among several logs and table files rather than in the first log.
    absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
        Start({"--stream_write_buffer_bytes=65536"});
    ASSERT_TRUE(broker.ok()) << broker.status();
    EXPECT_THAT((*broker)->Log(), HasSubstr("streams with"));
    WireClient c = testing::GreetedClient((*broker)->tcp(), "pub");
    const int delay_ms = std::uniform_int_distribution<int>(30, 400)(random);
    SCOPED_TRACE(
        absl::StrCat("round ", round, ": kill -9 after ", delay_ms, " ms"));
    const pid_t pid = (*broker)->pid();
    std::thread killer([pid, delay_ms] {
      absl::SleepFor(absl::Milliseconds(delay_ms));
      ::kill(pid, SIGKILL);
    });
    uint64_t sent = 0;
    const uint64_t acked = PublishUntilKilled(c, round, sent);
    killer.join();
    std::printf("round %d: kill -9 after %d ms: %llu of %llu acknowledged\n",
                round, delay_ms, static_cast<unsigned long long>(acked),
                static_cast<unsigned long long>(sent));
    acked_per_round.push_back(acked);
    (void)(*broker)->Stop(SIGKILL, absl::Seconds(5));
  }
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker = Start();
  ASSERT_TRUE(broker.ok()) << broker.status();
  WireClient c = testing::GreetedClient((*broker)->tcp(), "reader");
  absl::StatusOr<wire::StreamInfo> info = Info(c, "s");
  ASSERT_TRUE(info.ok()) << info.status();
  const std::vector<std::pair<uint64_t, std::string>> held =
      ReplayAll(c, info->last_seq());
  // Sequences are consecutive from 1; each round's messages are a prefix of
  // what it sent, at least as long as what it had acknowledged, in order.
  for (size_t i = 0; i < held.size(); ++i) {
    ASSERT_EQ(held[i].first, i + 1) << held[i].second;
  }
  size_t at = 0;
  for (int round = 0; round < kRounds; ++round) {
    uint64_t n = 0;
    while (at < held.size() &&
           absl::StartsWith(held[at].second, absl::StrCat(round, "-"))) {
      EXPECT_EQ(held[at].second, absl::StrCat(round, "-", n));
      ++n;
      ++at;
    }
    EXPECT_GE(n, acked_per_round[round]) << "round " << round;
  }
  EXPECT_EQ(at, held.size());
  EXPECT_EQ(info->messages(), held.size());
}

TEST_P(ManifolddStreamsTest, ReplayContinuesWithLiveMessagesAfterARestart) {
  {
    absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker = Start();
    ASSERT_TRUE(broker.ok()) << broker.status();
    WireClient c = testing::GreetedClient((*broker)->tcp(), "pub");
    for (int i = 0; i < 300; ++i) {
      absl::StatusOr<wire::ServerMessage> a =
          c.PublishAcked("t/a", absl::StrCat(i));
      ASSERT_TRUE(a.ok() && a->has_ack()) << a.status();
    }
    const absl::StatusOr<int> stopped = (*broker)->Stop();
    ASSERT_TRUE(stopped.ok()) << stopped.status();
  }
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker = Start();
  ASSERT_TRUE(broker.ok()) << broker.status();
  EXPECT_THAT((*broker)->Log(),
              HasSubstr("1 streams with 300 messages recovered from"));
  WireClient reader = testing::GreetedClient((*broker)->tcp(), "reader");
  wire::ClientMessage m;
  m.mutable_subscribe()->set_op_id(reader.next_op_id());
  m.mutable_subscribe()->set_pattern("t/*");
  m.mutable_subscribe()->mutable_replay()->set_last(100);
  ASSERT_TRUE(reader.Send(m).ok());
  ASSERT_TRUE(reader.ReceiveSkippingPings()->has_ack());
  WireClient pub = testing::GreetedClient((*broker)->tcp(), "pub");
  for (int i = 300; i < 310; ++i) {
    ASSERT_TRUE(pub.Publish("t/a", absl::StrCat(i)).ok());
  }
  for (uint64_t seq = 201; seq <= 310; ++seq) {
    absl::StatusOr<wire::ServerMessage> d = reader.ReceiveSkippingPings();
    ASSERT_TRUE(d.ok()) << "seq " << seq << ": " << d.status();
    ASSERT_TRUE(d->has_deliver()) << d->DebugString();
    EXPECT_EQ(d->deliver().stream_seq(), seq);
    EXPECT_EQ(d->deliver().payload(), absl::StrCat(seq - 1));
    EXPECT_GT(d->deliver().stream_time_unix_ms(), 1'600'000'000'000);
  }
}

// Binds `c` to durable consumer `name` (starting at the stream's first
// message when new); returns the subscription id.
uint64_t BindConsumer(WireClient& c, absl::string_view name) {
  wire::ClientMessage m;
  m.mutable_subscribe()->set_op_id(c.next_op_id());
  m.mutable_subscribe()->set_pattern("t/**");
  m.mutable_subscribe()->mutable_replay()->set_from_seq(1);
  m.mutable_subscribe()->mutable_consumer()->set_name(std::string(name));
  m.mutable_subscribe()->mutable_consumer()->set_max_in_flight(1000);
  EXPECT_TRUE(c.Send(m).ok());
  absl::StatusOr<wire::ServerMessage> ack = c.ReceiveSkippingPings();
  EXPECT_TRUE(ack.ok() && ack->has_ack()) << ack.status();
  return ack.ok() ? ack->ack().subscription_id() : 0;
}

TEST_P(ManifolddStreamsTest, DurableConsumerResumesAfterKillNine) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker = Start();
  ASSERT_TRUE(broker.ok()) << broker.status();
  WireClient pub = testing::GreetedClient((*broker)->tcp(), "pub");
  for (int i = 1; i <= 20; ++i) {
    ASSERT_TRUE(pub.PublishAcked("t/a", absl::StrCat(i))->has_ack());
  }
  WireClient worker = testing::GreetedClient((*broker)->tcp(), "worker");
  const uint64_t sub = BindConsumer(worker, "billing");
  wire::ClientMessage ack;
  ack.mutable_ack_stored()->set_op_id(worker.next_op_id());
  ack.mutable_ack_stored()->set_subscription_id(sub);
  for (uint64_t seq = 1; seq <= 20; ++seq) {
    absl::StatusOr<wire::ServerMessage> d = worker.ReceiveSkippingPings();
    ASSERT_TRUE(d.ok() && d->has_deliver()) << d.status();
    EXPECT_EQ(d->deliver().stream_seq(), seq);
    EXPECT_FALSE(d->deliver().redelivered());
    if (seq <= 12) ack.mutable_ack_stored()->add_seqs(seq);
  }
  ASSERT_TRUE(worker.Send(ack).ok());
  // The Ack to AckStored comes once the floor is in the same turn's batch;
  // the Info below is answered after that batch.
  absl::StatusOr<wire::ServerMessage> acked = worker.ReceiveSkippingPings();
  ASSERT_TRUE(acked.ok() && acked->has_ack()) << acked.status();
  absl::StatusOr<wire::StreamInfo> info = Info(pub, "s");
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->consumers_size(), 1);
  EXPECT_EQ(info->consumers(0).ack_floor(), 12u);
  EXPECT_EQ(info->consumers(0).in_flight(), 8u);
  (void)(*broker)->Stop(SIGKILL, absl::Seconds(5));

  broker = Start();
  ASSERT_TRUE(broker.ok()) << broker.status();
  WireClient again = testing::GreetedClient((*broker)->tcp(), "worker");
  BindConsumer(again, "billing");
  for (uint64_t seq = 13; seq <= 20; ++seq) {
    absl::StatusOr<wire::ServerMessage> d = again.ReceiveSkippingPings();
    ASSERT_TRUE(d.ok() && d->has_deliver()) << d.status();
    EXPECT_EQ(d->deliver().stream_seq(), seq);
    EXPECT_TRUE(d->deliver().redelivered()) << seq;
  }
}

// A memory stream is read in steps of replay_batch_messages, a few per turn;
// the loop must come back for the rest without any other event.
TEST_P(ManifolddStreamsTest, LongReplayOfAMemoryStreamCompletes) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker = Start();
  ASSERT_TRUE(broker.ok()) << broker.status();
  WireClient pub = testing::GreetedClient((*broker)->tcp(), "pub");
  constexpr int kMessages = 5000;
  for (int i = 1; i <= kMessages; ++i) {
    ASSERT_TRUE(pub.Publish("mem/a", absl::StrCat(i)).ok());
  }
  ASSERT_TRUE(pub.Ping().ok());
  WireClient reader = testing::GreetedClient((*broker)->tcp(), "reader");
  wire::ClientMessage m;
  m.mutable_subscribe()->set_op_id(reader.next_op_id());
  m.mutable_subscribe()->set_pattern("mem/*");
  m.mutable_subscribe()->mutable_replay()->set_from_seq(1);
  ASSERT_TRUE(reader.Send(m).ok());
  ASSERT_TRUE(reader.ReceiveSkippingPings()->has_ack());
  for (uint64_t seq = 1; seq <= kMessages; ++seq) {
    absl::StatusOr<wire::ServerMessage> d =
        reader.ReceiveSkippingPings(absl::Seconds(3));
    ASSERT_TRUE(d.ok()) << "seq " << seq << ": " << d.status();
    ASSERT_EQ(d->deliver().stream_seq(), seq);
  }
}

// The data directory on a small tmpfs (the test needs the right to mount):
// fill it while publishing, see STORAGE_UNAVAILABLE while other traffic goes
// on, free space, see publishing recover, and every acknowledged message
// survive a restart.
TEST_P(ManifolddStreamsTest, DiskFullRefusesStoredPublishesUntilSpaceReturns) {
  const std::string mount_point = directory_ + "/small";
  std::filesystem::create_directories(mount_point);
  if (::mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=8m") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (" << std::strerror(errno)
                 << ")";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mount_point};
  {
    std::ofstream config(config_);
    config << "data_dir: \"" << mount_point << "/data\"\n"
           << "streams { name: \"s\" topics: \"t/**\" }\n";
  }
  std::vector<std::string> acked;
  {
    absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker = Start();
    ASSERT_TRUE(broker.ok()) << broker.status();
    WireClient pub = testing::GreetedClient((*broker)->tcp(), "pub");
    WireClient plain = testing::GreetedClient((*broker)->tcp(), "plain");
    ASSERT_TRUE(plain.Subscribe("plain").ok());
    const std::string filler = mount_point + "/filler";
    {
      std::ofstream out(filler, std::ios::binary);
      const std::string chunk(64 << 10, 'f');
      while (out.write(chunk.data(), chunk.size())) {
      }
    }
    const std::string payload(16 << 10, 'p');
    wire::ServerMessage refused;
    for (int i = 0; i < 2000 && !refused.has_error(); ++i) {
      const std::string body = absl::StrCat(i, "-", payload);
      absl::StatusOr<wire::ServerMessage> a = pub.PublishAcked("t/a", body);
      ASSERT_TRUE(a.ok()) << a.status() << "\n" << (*broker)->Log();
      if (a->has_ack()) {
        acked.push_back(body);
      } else {
        refused = *a;
      }
    }
    ASSERT_TRUE(refused.has_error()) << "the disk never filled";
    EXPECT_EQ(refused.error().code(), wire::STORAGE_UNAVAILABLE);
    EXPECT_FALSE(refused.error().fatal());
    // Traffic that is not stored goes on.
    ASSERT_TRUE(pub.Publish("plain", "still here").ok());
    absl::StatusOr<wire::ServerMessage> got = plain.ReceiveSkippingPings();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->deliver().payload(), "still here");
    // Space returns: publishing recovers.
    std::filesystem::remove(filler);
    bool recovered = false;
    for (int i = 0; i < 50 && !recovered; ++i) {
      const std::string body = absl::StrCat("after-", i);
      absl::StatusOr<wire::ServerMessage> a = pub.PublishAcked("t/a", body);
      ASSERT_TRUE(a.ok()) << a.status();
      if (a->has_ack()) {
        acked.push_back(body);
        recovered = true;
      } else {
        absl::SleepFor(absl::Milliseconds(100));
      }
    }
    EXPECT_TRUE(recovered);
    EXPECT_THAT((*broker)->Log(), HasSubstr("No space left"));
    const absl::StatusOr<int> stopped = (*broker)->Stop();
    ASSERT_TRUE(stopped.ok()) << stopped.status();
  }
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker = Start();
  ASSERT_TRUE(broker.ok()) << broker.status();
  WireClient c = testing::GreetedClient((*broker)->tcp(), "reader");
  absl::StatusOr<wire::StreamInfo> info = Info(c, "s");
  ASSERT_TRUE(info.ok()) << info.status();
  const std::vector<std::pair<uint64_t, std::string>> held =
      ReplayAll(c, info->last_seq());
  ASSERT_EQ(held.size(), acked.size());
  for (size_t i = 0; i < held.size(); ++i) {
    EXPECT_EQ(held[i].second, acked[i]) << i;
  }
}

// The storage's threads wake the server: they stop before it goes, also
// when manifoldd gives up before it listens (this once crashed).
TEST_P(ManifolddStreamsTest, PortInUseWithADataDirectoryIsAOneLineError) {
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> first = Start();
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string data2 = directory_ + "/data2";
  absl::StatusOr<testing::Completed> second = testing::RunToCompletion(
      ManifolddPath(),
      {"--loop=" + GetParam(), "--listen=" + (*first)->tcp().ToString(),
       "--data_dir=" + data2});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->exit_code, 1) << second->err;
  EXPECT_THAT(second->err,
              HasSubstr(absl::StrCat("manifoldd: cannot listen on ",
                                     (*first)->tcp().ToString(),
                                     ": Address already in use\n")));
  EXPECT_EQ(second->out, "");
}

TEST_P(ManifolddStreamsTest, RefusesAForeignOrDamagedDataDirectory) {
  std::filesystem::create_directories(data_);
  std::ofstream(data_ + "/notes.txt") << "not a database\n";
  absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker = Start();
  ASSERT_FALSE(broker.ok());
  EXPECT_THAT(std::string(broker.status().message()), HasSubstr(data_));
  std::filesystem::remove_all(data_);

  // A real store whose files are then damaged.
  {
    absl::StatusOr<std::unique_ptr<RunningManifoldd>> ok = Start();
    ASSERT_TRUE(ok.ok()) << ok.status();
    WireClient c = testing::GreetedClient((*ok)->tcp(), "pub");
    ASSERT_TRUE(c.PublishAcked("t/a", "x")->has_ack());
    const absl::StatusOr<int> stopped = (*ok)->Stop();
    ASSERT_TRUE(stopped.ok()) << stopped.status();
  }
  for (const auto& entry : std::filesystem::directory_iterator(data_)) {
    const std::string name = entry.path().filename().string();
    if (absl::StartsWith(name, "MANIFEST") || name == "CURRENT") {
      std::ofstream(entry.path(), std::ios::trunc) << "garbage garbage";
    }
  }
  broker = Start();
  ASSERT_FALSE(broker.ok());
  EXPECT_THAT(std::string(broker.status().message()), HasSubstr(data_));
}

}  // namespace
}  // namespace manifold
