// Durable streams in the Broker: acks once durable, group commit, storage
// failures, restarts and crashes, replays and their seam with live messages,
// retention, and stream management requests. The storage is a
// MemoryStreamStorage standing in for the disk.

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/broker.h"
#include "broker/internal/streams.h"
#include "broker/storage/memory_stream_storage.h"
#include "broker/sys_topics.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/broker_harness.h"

namespace manifold {
namespace {

using ::manifold::testing::BrokerHarness;
using ::manifold::testing::TestClient;
using ::testing::HasSubstr;

wire::StreamConfig Config(absl::string_view name,
                          std::vector<std::string> topics,
                          wire::StorageKind storage = wire::STORAGE_FILE) {
  wire::StreamConfig config;
  config.set_name(std::string(name));
  for (std::string& t : topics) config.add_topics(std::move(t));
  config.set_storage(storage);
  return config;
}

// A broker whose file streams live on `disk`.
std::unique_ptr<BrokerHarness> Open(MemoryStreamStorage& disk,
                                    BrokerOptions options = BrokerOptions()) {
  auto h = std::make_unique<BrokerHarness>(options);
  absl::StatusOr<std::vector<RecoveredStream>> held = disk.Load();
  EXPECT_TRUE(held.ok()) << held.status();
  EXPECT_TRUE(h->broker().OpenStreams(&disk, *std::move(held), h->now()).ok());
  return h;
}

wire::Response Ask(TestClient& c, absl::string_view topic,
                   absl::string_view payload) {
  c.Request(topic, payload);
  wire::ServerMessage m = c.Next();
  EXPECT_TRUE(m.has_response()) << topic << " " << m.DebugString();
  return m.response();
}

wire::StreamInfo AddStream(TestClient& c, const wire::StreamConfig& config) {
  wire::Response r = Ask(c, sys_topics::kStreamAdd, config.SerializeAsString());
  EXPECT_EQ(r.status(), wire::REQUEST_OK) << r.message();
  wire::StreamInfo info;
  EXPECT_TRUE(info.ParseFromString(r.payload()));
  return info;
}

wire::StreamInfo Info(TestClient& c, absl::string_view name) {
  wire::Response r = Ask(c, sys_topics::kStreamInfo, name);
  EXPECT_EQ(r.status(), wire::REQUEST_OK) << r.message();
  wire::StreamInfo info;
  EXPECT_TRUE(info.ParseFromString(r.payload()));
  return info;
}

SubscriptionId SubscribeReplay(TestClient& c, absl::string_view pattern,
                               const wire::Replay& replay) {
  wire::ClientMessage m;
  wire::Subscribe* s = m.mutable_subscribe();
  s->set_op_id(c.next_op_id());
  s->set_pattern(std::string(pattern));
  *s->mutable_replay() = replay;
  c.Send(m);
  wire::ServerMessage ack = c.Next();
  EXPECT_TRUE(ack.has_ack()) << ack.DebugString();
  return SubscriptionId(ack.ack().subscription_id());
}

// Publishes with an ack requested, without waiting for the answer (which
// may wait for the storage). Returns the op id.
uint64_t PublishNoWait(TestClient& c, absl::string_view topic,
                       absl::string_view payload) {
  wire::ClientMessage m;
  const uint64_t op_id = c.next_op_id();
  m.mutable_publish()->set_op_id(op_id);
  m.mutable_publish()->set_topic(std::string(topic));
  m.mutable_publish()->set_payload(std::string(payload));
  m.mutable_publish()->set_ack(true);
  c.Send(m);
  return op_id;
}

wire::Replay FromSeq(uint64_t seq) {
  wire::Replay r;
  r.set_from_seq(seq);
  return r;
}

std::vector<std::string> Payloads(const std::vector<StoredRecord>& records) {
  std::vector<std::string> out;
  for (const StoredRecord& r : records) {
    wire::StoredMessage m;
    EXPECT_TRUE(m.ParseFromString(r.record));
    out.push_back(m.payload());
  }
  return out;
}

// The stream sequences of everything `c` received (each must be a
// Deliver), and whether each was marked redelivered.
std::vector<uint64_t> Seqs(TestClient& c,
                           std::vector<bool>* redelivered = nullptr) {
  std::vector<uint64_t> out;
  for (const auto& m : c.TakeAll()) {
    EXPECT_TRUE(m.has_deliver()) << m.DebugString();
    out.push_back(m.deliver().stream_seq());
    if (redelivered != nullptr)
      redelivered->push_back(m.deliver().redelivered());
  }
  return out;
}

TEST(BrokerStreamsTest, AckWaitsUntilTheMessageIsDurable) {
  MemoryStreamStorage disk;
  auto h = Open(disk);
  TestClient& pub = h->Connect("pub");
  TestClient& live = h->Connect("live");
  AddStream(pub, Config("orders", {"orders/**"}));
  live.Subscribe("orders/*");
  disk.Hold();
  PublishNoWait(pub, "orders/1", "first");
  // Live subscribers get it at once; the publisher's ack waits.
  EXPECT_EQ(live.Next().deliver().payload(), "first");
  EXPECT_TRUE(pub.Idle());
  EXPECT_TRUE(disk.Contents("orders").empty());
  disk.Release();
  h->Pump();
  wire::ServerMessage ack = pub.Next();
  ASSERT_TRUE(ack.has_ack()) << ack.DebugString();
  EXPECT_EQ(ack.ack().delivered(), 1u);
  ASSERT_EQ(disk.Contents("orders").size(), 1u);
  EXPECT_EQ(disk.Contents("orders")[0].seq, 1u);
  wire::StreamInfo info = Info(pub, "orders");
  EXPECT_EQ(info.last_seq(), 1u);
  EXPECT_EQ(info.messages(), 1u);
}

TEST(BrokerStreamsTest, OneBatchPerTurnHoldsEverythingThatArrivedInIt) {
  MemoryStreamStorage disk;
  auto h = Open(disk);
  TestClient& pub = h->Connect("pub");
  AddStream(pub, Config("log", {"log/*"}));
  const size_t before = disk.batches_written();
  std::string frames;
  for (int i = 0; i < 10; ++i) {
    wire::ClientMessage m;
    m.mutable_publish()->set_op_id(100 + i);
    m.mutable_publish()->set_topic("log/a");
    m.mutable_publish()->set_payload(absl::StrCat("m", i));
    m.mutable_publish()->set_ack(true);
    frames += EncodeFrame(m);
  }
  pub.SendRaw(frames);
  std::vector<wire::ServerMessage> acks = pub.TakeAll();
  ASSERT_EQ(acks.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(acks[i].ack().op_id(), 100u + i);
  EXPECT_EQ(disk.batches_written() - before, 1u);
  EXPECT_EQ(disk.Contents("log").size(), 10u);
}

TEST(BrokerStreamsTest, StorageFailureRefusesTheAckAndOthersGoOn) {
  MemoryStreamStorage disk;
  auto h = Open(disk);
  TestClient& pub = h->Connect("pub");
  TestClient& other = h->Connect("other");
  AddStream(pub, Config("s", {"stored/*"}));
  other.Subscribe("plain");
  disk.FailNextWrites(1, absl::UnavailableError("No space left on device"));
  wire::ServerMessage error = pub.PublishAcked("stored/x", "lost");
  ASSERT_TRUE(error.has_error()) << error.DebugString();
  EXPECT_EQ(error.error().code(), wire::STORAGE_UNAVAILABLE);
  EXPECT_THAT(error.error().message(), HasSubstr("No space left on device"));
  EXPECT_FALSE(error.error().fatal());
  // Traffic that is not stored does not notice.
  pub.Publish("plain", "still here");
  EXPECT_EQ(other.Next().deliver().payload(), "still here");
  // The storage is back: the next message takes sequence 1, no hole.
  EXPECT_TRUE(pub.PublishAcked("stored/x", "kept").has_ack());
  ASSERT_EQ(disk.Contents("s").size(), 1u);
  EXPECT_EQ(disk.Contents("s")[0].seq, 1u);
  EXPECT_EQ(h->broker().statistics().storage_failures, 1u);
  std::vector<std::string> kinds;
  for (const wire::BrokerEvent& e : h->TakeEvents()) {
    if (e.has_storage_failed()) kinds.push_back("failed");
    if (e.has_storage_recovered()) kinds.push_back("recovered");
  }
  EXPECT_THAT(kinds, ::testing::ElementsAre("failed", "recovered"));
}

// Three batches are written while the first is unfinished: the storage goes
// on with the others while it syncs the first and the broker collects it.
// When the first fails, the two behind it (whose sequences follow it) are
// refused for the same reason, nothing is written meanwhile, and the next
// message takes the first free sequence.
TEST(BrokerStreamsTest, ABatchWrittenBehindAFailedOneFailsForItsReason) {
  MemoryStreamStorage disk;
  auto h = Open(disk);
  TestClient& pub = h->Connect("pub");
  AddStream(pub, Config("s", {"stored/*"}));
  EXPECT_TRUE(pub.PublishAcked("stored/x", "first").has_ack());
  disk.Hold();
  // Batch 1, and each one after it written behind it, until the lane is
  // full; then "last" gathers.
  constexpr int kInFlight = internal::StorageLane::kMaxBatchesInFlight;
  for (int i = 0; i < kInFlight; ++i) {
    PublishNoWait(pub, "stored/x", absl::StrCat("in flight ", i));
  }
  PublishNoWait(pub, "stored/x", "last");
  EXPECT_TRUE(pub.Idle());
  disk.FailNextWrites(1, absl::UnavailableError("No space left on device"));
  disk.Release();
  h->Pump();
  std::vector<wire::ServerMessage> answers = pub.TakeAll();
  ASSERT_EQ(answers.size(), kInFlight + 1u);
  for (int i = 0; i < kInFlight; ++i) {
    ASSERT_TRUE(answers[i].has_error()) << answers[i].DebugString();
    EXPECT_EQ(answers[i].error().code(), wire::STORAGE_UNAVAILABLE);
    EXPECT_THAT(answers[i].error().message(),
                HasSubstr("No space left on device"));
  }
  ASSERT_TRUE(answers[kInFlight].has_ack()) << answers[kInFlight].DebugString();
  std::vector<uint64_t> seqs;
  std::vector<std::string> payloads;
  for (const StoredRecord& r : disk.Contents("s")) {
    seqs.push_back(r.seq);
    wire::StoredMessage m;
    ASSERT_TRUE(m.ParseFromString(r.record));
    payloads.push_back(m.payload());
  }
  EXPECT_THAT(seqs, ::testing::ElementsAre(1, 2));
  EXPECT_THAT(payloads, ::testing::ElementsAre("first", "last"));
  EXPECT_EQ(Info(pub, "s").last_seq(), 2u);
}

TEST(BrokerStreamsTest, RestartRecreatesStreamsAndSequencesGoOn) {
  MemoryStreamStorage disk;
  {
    auto h = Open(disk);
    TestClient& pub = h->Connect("pub");
    AddStream(pub, Config("s", {"a/**"}));
    for (int i = 0; i < 5; ++i) pub.PublishAcked("a/b", absl::StrCat(i));
  }
  auto h = Open(disk);
  TestClient& pub = h->Connect("pub");
  wire::StreamInfo info = Info(pub, "s");
  EXPECT_EQ(info.last_seq(), 5u);
  EXPECT_EQ(info.first_seq(), 1u);
  pub.PublishAcked("a/b", "after");
  EXPECT_EQ(disk.Contents("s").back().seq, 6u);
  TestClient& reader = h->Connect("reader");
  SubscribeReplay(reader, "a/**", FromSeq(4));
  std::vector<std::string> got;
  for (const auto& m : reader.TakeAll()) got.push_back(m.deliver().payload());
  EXPECT_THAT(got, ::testing::ElementsAre("3", "4", "after"));
}

// Crashes the broker at every step of a publish load (the storage loses
// what it had not finished) and checks that whatever was acknowledged is
// there after the restart, once, in order.
TEST(BrokerStreamsTest, WhatWasAcknowledgedSurvivesACrashAtAnyStep) {
  constexpr int kMessages = 12;
  for (int crash_at = 0; crash_at <= kMessages; ++crash_at) {
    SCOPED_TRACE(absl::StrCat("crash after ", crash_at, " messages"));
    MemoryStreamStorage disk;
    std::vector<std::string> acked;
    {
      auto h = Open(disk);
      TestClient& pub = h->Connect("pub");
      AddStream(pub, Config("s", {"t"}));
      std::map<uint64_t, std::string> sent;
      for (int i = 0; i < kMessages; ++i) {
        if (i == crash_at) disk.Hold();
        const std::string payload = absl::StrCat("m", i);
        sent[PublishNoWait(pub, "t", payload)] = payload;
        for (const wire::ServerMessage& answer : pub.TakeAll()) {
          ASSERT_TRUE(answer.has_ack()) << answer.DebugString();
          acked.push_back(sent[answer.ack().op_id()]);
        }
      }
      disk.Crash();
    }
    EXPECT_EQ(static_cast<int>(acked.size()), crash_at);
    const std::vector<StoredRecord> held = disk.Contents("s");
    const std::vector<std::string> payloads = Payloads(held);
    ASSERT_GE(payloads.size(), acked.size());
    for (size_t i = 0; i < acked.size(); ++i) EXPECT_EQ(payloads[i], acked[i]);
    for (size_t i = 0; i < held.size(); ++i) EXPECT_EQ(held[i].seq, i + 1);
    auto h = Open(disk);
    TestClient& pub = h->Connect("pub");
    EXPECT_TRUE(pub.PublishAcked("t", "after").has_ack());
    EXPECT_EQ(disk.Contents("s").back().seq, held.size() + 1);
  }
}

TEST(BrokerStreamsTest, ReplayStartingPoints) {
  MemoryStreamStorage disk;
  auto h = Open(disk);
  TestClient& pub = h->Connect("pub");
  AddStream(pub, Config("s", {"room/*"}));
  for (const char* topic : {"room/a", "room/b", "room/a", "room/c", "room/b"}) {
    pub.PublishAcked(topic, topic);
  }
  auto seqs = [&](TestClient& c) {
    std::vector<uint64_t> out;
    for (const auto& m : c.TakeAll()) {
      EXPECT_TRUE(m.has_deliver()) << m.DebugString();
      EXPECT_GT(m.deliver().stream_time_unix_ms(), 0);
      out.push_back(m.deliver().stream_seq());
    }
    return out;
  };
  TestClient& from = h->Connect("from");
  SubscribeReplay(from, "room/*", FromSeq(3));
  EXPECT_THAT(seqs(from), ::testing::ElementsAre(3, 4, 5));

  TestClient& last = h->Connect("last");
  wire::Replay r;
  r.set_last(2);
  SubscribeReplay(last, "room/*", r);
  EXPECT_THAT(seqs(last), ::testing::ElementsAre(4, 5));

  TestClient& per_topic = h->Connect("per_topic");
  r.Clear();
  r.set_last_per_topic(true);
  SubscribeReplay(per_topic, "room/*", r);
  EXPECT_THAT(seqs(per_topic), ::testing::ElementsAre(3, 4, 5));

  TestClient& filtered = h->Connect("filtered");
  SubscribeReplay(filtered, "room/a", FromSeq(1));
  EXPECT_THAT(seqs(filtered), ::testing::ElementsAre(1, 3));

  TestClient& since = h->Connect("since");
  r.Clear();
  r.set_since_unix_ms(INT64_MAX / 2);  // later than everything
  SubscribeReplay(since, "room/*", r);
  EXPECT_TRUE(since.Idle());

  TestClient& fresh = h->Connect("fresh");
  r.Clear();
  r.set_stream("s");  // no start: new messages only
  SubscribeReplay(fresh, "room/*", r);
  EXPECT_TRUE(fresh.Idle());
  pub.PublishAcked("room/d", "new");
  EXPECT_THAT(seqs(fresh), ::testing::ElementsAre(6));
  // Every other replay went on with the live message too.
  EXPECT_THAT(seqs(from), ::testing::ElementsAre(6));
  EXPECT_THAT(seqs(since), ::testing::ElementsAre(6));
}

TEST(BrokerStreamsTest, PerTopicLimitKeepsEachTopicsNewestAndReplaysSkipHoles) {
  MemoryStreamStorage disk;
  auto h = Open(disk);
  TestClient& pub = h->Connect("pub");
  wire::StreamConfig config = Config("s", {"room/*"});
  config.set_max_msgs_per_topic(2);
  AddStream(pub, config);
  // Seqs 1..7 on a, b, a, a, c, b, a: a keeps 4 and 7, b 2 and 6, c 5.
  for (const char* topic :
       {"room/a", "room/b", "room/a", "room/a", "room/c", "room/b", "room/a"}) {
    pub.PublishAcked(topic, topic);
  }
  wire::StreamInfo info = Info(pub, "s");
  EXPECT_EQ(info.config().max_msgs_per_topic(), 2u);
  EXPECT_EQ(info.messages(), 5u);
  EXPECT_EQ(info.first_seq(), 2u);
  EXPECT_EQ(info.last_seq(), 7u);
  EXPECT_EQ(info.expired(), 2u);
  std::vector<uint64_t> held;
  for (const StoredRecord& r : disk.Contents("s")) held.push_back(r.seq);
  EXPECT_THAT(held, ::testing::ElementsAre(2, 4, 5, 6, 7));

  TestClient& all = h->Connect("all");
  SubscribeReplay(all, "room/*", FromSeq(1));
  EXPECT_THAT(Seqs(all), ::testing::ElementsAre(2, 4, 5, 6, 7));

  // The last 5 held messages, not the last 5 sequences (3 to 7).
  TestClient& last = h->Connect("last");
  wire::Replay r;
  r.set_last(5);
  SubscribeReplay(last, "room/*", r);
  EXPECT_THAT(Seqs(last), ::testing::ElementsAre(2, 4, 5, 6, 7));

  TestClient& per_topic = h->Connect("per_topic");
  r.Clear();
  r.set_last_per_topic(true);
  SubscribeReplay(per_topic, "room/*", r);
  EXPECT_THAT(Seqs(per_topic), ::testing::ElementsAre(5, 6, 7));

  // The limit cannot change under held messages; once purged it can.
  config.set_max_msgs_per_topic(1);
  wire::Response refused =
      Ask(pub, sys_topics::kStreamAdd, config.SerializeAsString());
  EXPECT_EQ(refused.status(), wire::REJECTED);
  EXPECT_THAT(refused.message(), HasSubstr("max_msgs_per_topic cannot change"));
  EXPECT_EQ(Ask(pub, sys_topics::kStreamPurge, "s").status(), wire::REQUEST_OK);
  EXPECT_EQ(AddStream(pub, config).config().max_msgs_per_topic(), 1u);
  for (const char* topic : {"room/a", "room/a", "room/b", "room/a"}) {
    pub.PublishAcked(topic, topic);
  }
  held.clear();
  for (const StoredRecord& r : disk.Contents("s")) held.push_back(r.seq);
  EXPECT_THAT(held, ::testing::ElementsAre(10, 11));

  // A restart finds the same holes.
  h.reset();
  auto restarted = Open(disk);
  TestClient& again = restarted->Connect("again");
  SubscribeReplay(again, "room/*", FromSeq(1));
  EXPECT_THAT(Seqs(again), ::testing::ElementsAre(10, 11));
}

TEST(BrokerStreamsTest, ReplayMeetsLiveMessagesWithNoGapAndNoDuplicate) {
  MemoryStreamStorage disk;
  BrokerOptions options;
  options.set_replay_batch_messages(7);
  auto h = Open(disk, options);
  TestClient& pub = h->Connect("pub");
  AddStream(pub, Config("s", {"t/*"}));
  int published = 0;
  for (; published < 50; ++published) {
    pub.Publish("t/x", absl::StrCat(published + 1));
  }
  TestClient& reader = h->Connect("reader");
  // Slow storage: replays and new batches interleave.
  disk.Hold();
  SubscribeReplay(reader, "t/*", FromSeq(1));
  std::vector<uint64_t> got;
  for (int round = 0; round < 40; ++round) {
    pub.Publish("t/x", absl::StrCat(++published));
    disk.Release();
    h->Pump();
    for (const auto& m : reader.TakeAll()) {
      ASSERT_TRUE(m.has_deliver()) << m.DebugString();
      EXPECT_EQ(m.deliver().payload(), absl::StrCat(m.deliver().stream_seq()));
      got.push_back(m.deliver().stream_seq());
    }
    if (round % 3 == 0) disk.Hold();
  }
  disk.Release();
  h->Pump();
  for (const auto& m : reader.TakeAll())
    got.push_back(m.deliver().stream_seq());
  ASSERT_EQ(got.size(), static_cast<size_t>(published));
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], i + 1);
}

TEST(BrokerStreamsTest, ReplayedMessagesKeepTheirHeaders) {
  MemoryStreamStorage disk;
  auto h = Open(disk);
  TestClient& pub = h->Connect("pub");
  AddStream(pub, Config("s", {"t"}));
  wire::ClientMessage m;
  wire::Publish* p = m.mutable_publish();
  p->set_op_id(pub.next_op_id());
  p->set_topic("t");
  p->set_payload(std::string(300, 'x'));
  p->set_ack(true);
  for (const auto& [key, value] :
       {std::pair<std::string, std::string>{"Trace", "abc"},
        {"Trace", std::string(200, 'v')}}) {
    wire::Header* header = p->add_headers();
    header->set_key(key);
    header->set_value(value);
  }
  pub.Send(m);
  ASSERT_TRUE(pub.Next().has_ack());
  TestClient& reader = h->Connect("reader");
  SubscribeReplay(reader, "t", FromSeq(1));
  wire::ServerMessage got = reader.Next();
  ASSERT_TRUE(got.has_deliver()) << got.DebugString();
  EXPECT_EQ(got.deliver().payload(), std::string(300, 'x'));
  ASSERT_EQ(got.deliver().headers_size(), 2);
  EXPECT_EQ(got.deliver().headers(0).value(), "abc");
  EXPECT_EQ(got.deliver().headers(1).value(), std::string(200, 'v'));
  wire::StoredMessage stored;
  ASSERT_TRUE(stored.ParseFromString(disk.Contents("s")[0].record));
  EXPECT_EQ(stored.topic(), "t");
  EXPECT_GT(stored.time_unix_ms(), 0);
}

TEST(BrokerStreamsTest, ReplayErrorsNameTheProblem) {
  MemoryStreamStorage disk;
  auto h = Open(disk);
  TestClient& c = h->Connect("c");
  AddStream(c, Config("s", {"a/*"}));
  auto subscribe = [&](absl::string_view pattern, const wire::Replay& replay,
                       absl::string_view group = "") {
    wire::ClientMessage m;
    wire::Subscribe* s = m.mutable_subscribe();
    s->set_op_id(c.next_op_id());
    s->set_pattern(std::string(pattern));
    s->set_queue_group(std::string(group));
    *s->mutable_replay() = replay;
    c.Send(m);
    return c.Next();
  };
  wire::ServerMessage m = subscribe("b/*", FromSeq(1));
  EXPECT_EQ(m.error().code(), wire::UNKNOWN_STREAM);
  EXPECT_THAT(m.error().message(), HasSubstr("no stream stores topics"));
  wire::Replay named = FromSeq(1);
  named.set_stream("nope");
  m = subscribe("a/*", named);
  EXPECT_EQ(m.error().code(), wire::UNKNOWN_STREAM);
  EXPECT_THAT(m.error().message(), HasSubstr("'nope'"));
  m = subscribe("a/*", FromSeq(1), "workers");
  EXPECT_EQ(m.error().code(), wire::INVALID_ARGUMENT);
  EXPECT_FALSE(c.closed());
}

TEST(BrokerStreamsTest, RetentionDropsTheOldestAndSaysHowMany) {
  MemoryStreamStorage disk;
  auto h = Open(disk);
  TestClient& c = h->Connect("c");
  wire::StreamConfig config = Config("s", {"t"});
  config.set_max_msgs(3);
  AddStream(c, config);
  for (int i = 1; i <= 5; ++i) c.PublishAcked("t", absl::StrCat(i));
  wire::StreamInfo info = Info(c, "s");
  EXPECT_EQ(info.first_seq(), 3u);
  EXPECT_EQ(info.last_seq(), 5u);
  EXPECT_EQ(info.messages(), 3u);
  EXPECT_EQ(info.expired(), 2u);
  EXPECT_THAT(Payloads(disk.Contents("s")),
              ::testing::ElementsAre("3", "4", "5"));
}

TEST(BrokerStreamsTest, RetentionByAgeRunsWithoutNewMessages) {
  MemoryStreamStorage disk;
  auto h = Open(disk);
  TestClient& c = h->Connect("c");
  wire::StreamConfig config = Config("s", {"t"});
  config.set_max_age_ms(5000);
  AddStream(c, config);
  h->broker().SetWallTime(absl::FromUnixSeconds(1000));
  c.PublishAcked("t", "old");
  h->broker().SetWallTime(absl::FromUnixSeconds(1010));
  h->Advance(absl::Seconds(2));
  EXPECT_EQ(Info(c, "s").messages(), 0u);
  EXPECT_EQ(Info(c, "s").last_seq(), 1u);
}

TEST(BrokerStreamsTest, ManagementRequests) {
  auto h = std::make_unique<BrokerHarness>();  // no file storage
  TestClient& c = h->Connect("c");
  wire::Response r = Ask(c, sys_topics::kStreamAdd,
                         Config("disk", {"d/*"}).SerializeAsString());
  EXPECT_EQ(r.status(), wire::REJECTED);
  EXPECT_THAT(r.message(), HasSubstr("--data_dir"));
  wire::StreamInfo mem =
      AddStream(c, Config("mem", {"m/**"}, wire::STORAGE_MEMORY));
  EXPECT_GT(mem.config().max_bytes(), 0u);  // a memory stream is bounded
  r = Ask(c, sys_topics::kStreamAdd,
          Config("other", {"m/x"}, wire::STORAGE_MEMORY).SerializeAsString());
  EXPECT_EQ(r.status(), wire::REJECTED);
  EXPECT_THAT(r.message(), HasSubstr("overlap"));
  r = Ask(c, sys_topics::kStreamAdd,
          Config("bad name!", {"x"}, wire::STORAGE_MEMORY).SerializeAsString());
  EXPECT_EQ(r.status(), wire::REJECTED);
  r = Ask(c, sys_topics::kStreamAdd, "not a config \xff\xff");
  EXPECT_EQ(r.status(), wire::REJECTED);

  for (int i = 0; i < 3; ++i) c.PublishAcked("m/a", "x");
  TestClient& reader = h->Connect("reader");
  SubscribeReplay(reader, "m/**", FromSeq(1));
  EXPECT_EQ(reader.TakeAll().size(), 3u);

  r = Ask(c, sys_topics::kStreamList, "");
  wire::StreamList list;
  ASSERT_TRUE(list.ParseFromString(r.payload()));
  ASSERT_EQ(list.streams_size(), 1);
  EXPECT_EQ(list.streams(0).messages(), 3u);

  r = Ask(c, sys_topics::kStreamPurge, "mem");
  EXPECT_EQ(r.status(), wire::REQUEST_OK);
  wire::StreamInfo purged = Info(c, "mem");
  EXPECT_EQ(purged.messages(), 0u);
  EXPECT_EQ(purged.last_seq(), 3u);  // sequences are never reused

  r = Ask(c, sys_topics::kStreamRemove, "mem");
  EXPECT_EQ(r.status(), wire::REQUEST_OK);
  wire::ServerMessage ended = reader.Next();
  ASSERT_TRUE(ended.has_error()) << ended.DebugString();
  EXPECT_EQ(ended.error().code(), wire::UNKNOWN_STREAM);
  EXPECT_NE(ended.error().subscription_id(), 0u);
  r = Ask(c, sys_topics::kStreamInfo, "mem");
  EXPECT_EQ(r.status(), wire::REJECTED);
  EXPECT_THAT(r.message(), HasSubstr("no stream 'mem'"));
}

TEST(BrokerStreamsTest, TooMuchWaitingForTheStorageIsRefused) {
  MemoryStreamStorage disk;
  BrokerOptions options;
  options.set_max_stream_pending_bytes(1024);
  auto h = Open(disk, options);
  TestClient& c = h->Connect("c");
  AddStream(c, Config("s", {"t"}));
  disk.Hold();
  PublishNoWait(c, "t", "in flight");  // the first batch in flight
  std::string big(400, 'x');
  wire::ServerMessage refused;
  // Each goes to the storage as a batch of its own, and what is in flight
  // counts: the third of 400 bytes passes the limit.
  int taken = 0;
  for (int i = 0; i < 6 && !refused.has_error(); ++i) {
    wire::ClientMessage m;
    m.mutable_publish()->set_op_id(c.next_op_id());
    m.mutable_publish()->set_topic("t");
    m.mutable_publish()->set_payload(big);
    m.mutable_publish()->set_ack(true);
    c.Send(m);
    for (const auto& got : c.TakeAll()) {
      if (got.has_error()) refused = got;
    }
    if (!refused.has_error()) ++taken;
  }
  EXPECT_EQ(taken, 2);
  ASSERT_TRUE(refused.has_error());
  EXPECT_EQ(refused.error().code(), wire::STORAGE_UNAVAILABLE);
  EXPECT_THAT(refused.error().message(), HasSubstr("behind"));
  disk.Release();
  h->Pump();
  EXPECT_GE(c.TakeAll().size(), 2u);  // the acks of what was taken
}

TEST(BrokerStreamsTest, PublishWithReplyToGetsAJetStreamStyleAnswer) {
  MemoryStreamStorage disk;
  auto h = Open(disk);
  TestClient& c = h->Connect("c");
  AddStream(c, Config("ORDERS", {"orders/*"}));
  c.Subscribe("inbox/1");
  wire::ClientMessage m;
  m.mutable_publish()->set_op_id(c.next_op_id());
  m.mutable_publish()->set_topic("orders/new");
  m.mutable_publish()->set_payload("x");
  m.mutable_publish()->set_reply_to("inbox/1");
  c.Send(m);
  wire::ServerMessage answer = c.Next();
  ASSERT_TRUE(answer.has_deliver()) << answer.DebugString();
  EXPECT_EQ(answer.deliver().topic(), "inbox/1");
  EXPECT_EQ(answer.deliver().payload(), R"({"stream":"ORDERS","seq":1})");
}

// Binds a subscription of `c` to durable consumer `name`, which starts at
// `start` when it is new.
SubscriptionId BindConsumerAt(TestClient& c, absl::string_view pattern,
                              absl::string_view name, const wire::Replay& start,
                              uint64_t ack_wait_ms,
                              uint64_t max_in_flight = 0) {
  wire::ClientMessage m;
  wire::Subscribe* s = m.mutable_subscribe();
  s->set_op_id(c.next_op_id());
  s->set_pattern(std::string(pattern));
  *s->mutable_replay() = start;
  s->mutable_consumer()->set_name(std::string(name));
  s->mutable_consumer()->set_ack_wait_ms(ack_wait_ms);
  s->mutable_consumer()->set_max_in_flight(max_in_flight);
  c.Send(m);
  wire::ServerMessage ack = c.Next();
  EXPECT_TRUE(ack.has_ack()) << ack.DebugString();
  return SubscriptionId(ack.ack().subscription_id());
}

// Binds to consumer `name`, which starts at the stream's first message when
// it is new.
SubscriptionId BindConsumer(TestClient& c, absl::string_view pattern,
                            absl::string_view name, uint64_t ack_wait_ms,
                            uint64_t max_in_flight = 0) {
  return BindConsumerAt(c, pattern, name, FromSeq(1), ack_wait_ms,
                        max_in_flight);
}

void AckStored(TestClient& c, SubscriptionId sub, std::vector<uint64_t> seqs) {
  wire::ClientMessage m;
  m.mutable_ack_stored()->set_subscription_id(sub.value());
  for (uint64_t seq : seqs) m.mutable_ack_stored()->add_seqs(seq);
  c.Send(m);
}

TEST(BrokerStreamsTest, DurableConsumerRedeliversWhatIsNotAcknowledged) {
  MemoryStreamStorage disk;
  auto h = Open(disk);
  TestClient& pub = h->Connect("pub");
  AddStream(pub, Config("s", {"t"}));
  for (int i = 1; i <= 3; ++i) pub.PublishAcked("t", absl::StrCat(i));
  TestClient& worker = h->Connect("worker");
  const SubscriptionId sub = BindConsumer(worker, "t", "w", 1000);
  EXPECT_THAT(Seqs(worker, nullptr), ::testing::ElementsAre(1, 2, 3));
  AckStored(worker, sub, {1, 3});
  h->Advance(absl::Milliseconds(1500));
  std::vector<bool> again;
  EXPECT_THAT(Seqs(worker, &again), ::testing::ElementsAre(2));
  EXPECT_THAT(again, ::testing::ElementsAre(true));
  AckStored(worker, sub, {2});
  h->Advance(absl::Seconds(5));
  EXPECT_TRUE(worker.Idle());
  wire::StreamInfo info = Info(pub, "s");
  ASSERT_EQ(info.consumers_size(), 1);
  EXPECT_EQ(info.consumers(0).ack_floor(), 3u);
  EXPECT_EQ(info.consumers(0).in_flight(), 0u);
  // New messages go on to it.
  pub.PublishAcked("t", "4");
  EXPECT_THAT(Seqs(worker, nullptr), ::testing::ElementsAre(4));
}

TEST(BrokerStreamsTest, ADurableConsumersFloorPassesWhatTheStreamDoesNotHold) {
  MemoryStreamStorage disk;
  auto h = Open(disk);
  TestClient& pub = h->Connect("pub");
  wire::StreamConfig config = Config("s", {"t/*"});
  config.set_max_msgs_per_topic(1);
  config.set_max_msgs(3);
  AddStream(pub, config);
  // Held: 3 (t/b) and 5 (t/a); 1, 2 and 4 were pushed out.
  for (const char* topic : {"t/a", "t/a", "t/b", "t/a", "t/a"}) {
    pub.PublishAcked(topic, topic);
  }
  TestClient& worker = h->Connect("worker");
  const SubscriptionId sub = BindConsumer(worker, "t/*", "w", 60000);
  EXPECT_THAT(Seqs(worker, nullptr), ::testing::ElementsAre(3, 5));
  AckStored(worker, sub, {3, 5});
  // Nothing else to acknowledge: the floor is at the newest.
  EXPECT_EQ(Info(pub, "s").consumers(0).ack_floor(), 5u);
  // A hole after the floor: 6 is pushed out by 7 in the same batch, before
  // the consumer reads.
  std::string frames;
  for (const char* payload : {"6", "7"}) {
    wire::ClientMessage m;
    m.mutable_publish()->set_op_id(pub.next_op_id());
    m.mutable_publish()->set_topic("t/c");
    m.mutable_publish()->set_payload(payload);
    m.mutable_publish()->set_ack(true);
    frames += EncodeFrame(m);
  }
  pub.SendRaw(frames);
  EXPECT_EQ(pub.TakeAll().size(), 2u);
  EXPECT_THAT(Seqs(worker, nullptr), ::testing::ElementsAre(7));
  AckStored(worker, sub, {7});
  EXPECT_EQ(Info(pub, "s").consumers(0).ack_floor(), 7u);
  // After a restart nothing comes again.
  h.reset();
  auto restarted = Open(disk);
  TestClient& again = restarted->Connect("again");
  BindConsumer(again, "t/*", "w", 60000);
  EXPECT_TRUE(again.Idle());
}

TEST(BrokerStreamsTest, ADurableConsumerStartsAtATimeOrAtTheLastHeld) {
  MemoryStreamStorage disk;
  auto h = Open(disk);
  TestClient& pub = h->Connect("pub");
  wire::StreamConfig config = Config("s", {"t/*"});
  config.set_max_msgs_per_topic(1);
  AddStream(pub, config);
  // Held after these: 2 (t/b), 3 (t/a), 4 (t/c), 5 (t/d); 4 and 5 later.
  for (const char* topic : {"t/a", "t/b", "t/a"})
    pub.PublishAcked(topic, topic);
  h->Advance(absl::Seconds(10));
  const int64_t later = absl::ToUnixMillis(h->now());
  for (const char* topic : {"t/c", "t/d"}) pub.PublishAcked(topic, topic);
  TestClient& a = h->Connect("a");
  wire::Replay since;
  since.set_since_unix_ms(later);
  const SubscriptionId sa = BindConsumerAt(a, "t/*", "since", since, 60000);
  EXPECT_THAT(Seqs(a), ::testing::ElementsAre(4, 5));
  AckStored(a, sa, {4, 5});
  TestClient& b = h->Connect("b");
  wire::Replay last;
  last.set_last(3);  // the last 3 held, not sequences 3 to 5
  const SubscriptionId sb = BindConsumerAt(b, "t/*", "last", last, 60000);
  EXPECT_THAT(Seqs(b), ::testing::ElementsAre(3, 4, 5));
  AckStored(b, sb, {3, 4, 5});
  // Both floors are at the newest: what came before the start counts as
  // acknowledged.
  wire::StreamInfo info = Info(pub, "s");
  ASSERT_EQ(info.consumers_size(), 2);
  EXPECT_EQ(info.consumers(0).ack_floor(), 5u);
  EXPECT_EQ(info.consumers(1).ack_floor(), 5u);
}

TEST(BrokerStreamsTest, DurableConsumerSharedByTwoSubscribersAndBounded) {
  MemoryStreamStorage disk;
  auto h = Open(disk);
  TestClient& pub = h->Connect("pub");
  AddStream(pub, Config("s", {"jobs/*"}));
  TestClient& a = h->Connect("a");
  TestClient& b = h->Connect("b");
  const SubscriptionId sa = BindConsumer(a, "jobs/*", "pool", 60000, 4);
  const SubscriptionId sb = BindConsumer(b, "jobs/*", "pool", 60000, 4);
  for (int i = 1; i <= 10; ++i) pub.Publish("jobs/x", absl::StrCat(i));
  std::vector<uint64_t> got_a = Seqs(a, nullptr);
  std::vector<uint64_t> got_b = Seqs(b, nullptr);
  // At most 4 in flight across the group, none to both.
  EXPECT_EQ(got_a.size() + got_b.size(), 4u);
  for (uint64_t seq : got_a) {
    EXPECT_THAT(got_b, ::testing::Not(::testing::Contains(seq)));
  }
  std::vector<uint64_t> all;
  for (int round = 0; round < 10 && all.size() < 10; ++round) {
    AckStored(a, sa, got_a);
    AckStored(b, sb, got_b);
    all.insert(all.end(), got_a.begin(), got_a.end());
    all.insert(all.end(), got_b.begin(), got_b.end());
    got_a = Seqs(a, nullptr);
    got_b = Seqs(b, nullptr);
  }
  std::sort(all.begin(), all.end());
  EXPECT_THAT(all, ::testing::ElementsAre(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
}

TEST(BrokerStreamsTest, DurableConsumerResumesAfterARestartAndAMemberLeaving) {
  MemoryStreamStorage disk;
  {
    auto h = Open(disk);
    TestClient& pub = h->Connect("pub");
    AddStream(pub, Config("s", {"t"}));
    for (int i = 1; i <= 5; ++i) pub.PublishAcked("t", absl::StrCat(i));
    TestClient& a = h->Connect("a");
    TestClient& b = h->Connect("b");
    const SubscriptionId sa = BindConsumer(a, "t", "c", 60000, 2);
    EXPECT_THAT(Seqs(a, nullptr), ::testing::ElementsAre(1, 2));
    BindConsumer(b, "t", "c", 60000, 2);
    EXPECT_TRUE(b.Idle());  // the two in flight are a's
    AckStored(a, sa, {1});
    EXPECT_THAT(Seqs(b, nullptr), ::testing::ElementsAre(3));
    // a leaves without acknowledging 2: b gets it, marked.
    a.Disconnect();
    h->Pump();
    std::vector<bool> again;
    std::vector<uint64_t> got = Seqs(b, &again);
    ASSERT_THAT(got, ::testing::ElementsAre(2));
    EXPECT_THAT(again, ::testing::ElementsAre(true));
  }
  // Restart: 1 was acknowledged; 2 and 3 were delivered, not acknowledged.
  auto h = Open(disk);
  TestClient& c = h->Connect("c");
  const SubscriptionId sub = BindConsumer(c, "t", "c", 60000, 10);
  std::vector<bool> again;
  EXPECT_THAT(Seqs(c, &again), ::testing::ElementsAre(2, 3, 4, 5));
  EXPECT_THAT(again, ::testing::ElementsAre(true, true, false, false));
  AckStored(c, sub, {2, 3, 4, 5});
  EXPECT_EQ(Info(c, "s").consumers(0).ack_floor(), 5u);
}

TEST(BrokerStreamsTest, ADurableConsumerIsRemovedOnItsOwn) {
  MemoryStreamStorage disk;
  {
    auto h = Open(disk);
    TestClient& pub = h->Connect("pub");
    AddStream(pub, Config("s", {"t"}));
    for (int i = 1; i <= 3; ++i) pub.PublishAcked("t", absl::StrCat(i));
    TestClient& worker = h->Connect("worker");
    const SubscriptionId sub = BindConsumer(worker, "t", "gone", 60000);
    EXPECT_THAT(Seqs(worker, nullptr), ::testing::ElementsAre(1, 2, 3));
    AckStored(worker, sub, {1, 2});
    TestClient& other = h->Connect("other");
    BindConsumer(other, "t", "kept", 60000);
    other.TakeAll();

    wire::ConsumerState named;
    named.set_stream("s");
    named.set_name("gone");
    wire::Response r =
        Ask(pub, sys_topics::kConsumerRemove, named.SerializeAsString());
    ASSERT_EQ(r.status(), wire::REQUEST_OK) << r.message();
    wire::StreamInfo after;
    ASSERT_TRUE(after.ParseFromString(r.payload()));
    ASSERT_EQ(after.consumers_size(), 1);
    EXPECT_EQ(after.consumers(0).name(), "kept");
    // Its subscription ends, saying why; the stream and the other
    // consumer go on.
    std::vector<wire::ServerMessage> told = worker.TakeAll();
    ASSERT_EQ(told.size(), 1u);
    EXPECT_EQ(told[0].error().code(), wire::UNKNOWN_STREAM);
    EXPECT_EQ(told[0].error().subscription_id(), sub.value());
    EXPECT_THAT(told[0].error().message(), HasSubstr("'gone'"));
    pub.PublishAcked("t", "4");
    EXPECT_TRUE(worker.Idle());
    EXPECT_THAT(Seqs(other, nullptr), ::testing::ElementsAre(4));
    EXPECT_EQ(Info(pub, "s").messages(), 4u);

    // Unknown names are refused, naming what is missing.
    r = Ask(pub, sys_topics::kConsumerRemove, named.SerializeAsString());
    EXPECT_EQ(r.status(), wire::REJECTED);
    EXPECT_THAT(r.message(), HasSubstr("no consumer 'gone'"));
    named.set_stream("nope");
    r = Ask(pub, sys_topics::kConsumerRemove, named.SerializeAsString());
    EXPECT_EQ(r.status(), wire::REJECTED);
    EXPECT_THAT(r.message(), HasSubstr("no stream 'nope'"));
    r = Ask(pub, sys_topics::kConsumerRemove, "\xff\xff");
    EXPECT_EQ(r.status(), wire::REJECTED);
  }
  // After a restart it is still gone: a consumer of that name starts over.
  auto h = Open(disk);
  TestClient& c = h->Connect("c");
  ASSERT_EQ(Info(c, "s").consumers_size(), 1);
  BindConsumer(c, "t", "gone", 60000);
  EXPECT_THAT(Seqs(c, nullptr), ::testing::ElementsAre(1, 2, 3, 4));
}

TEST(BrokerStreamsTest, DurableConsumerErrors) {
  MemoryStreamStorage disk;
  auto h = Open(disk);
  TestClient& c = h->Connect("c");
  AddStream(c, Config("s", {"a/*"}));
  BindConsumer(c, "a/*", "one", 1000);
  wire::ClientMessage m;
  wire::Subscribe* s = m.mutable_subscribe();
  s->set_op_id(c.next_op_id());
  s->set_pattern("a/x");
  s->mutable_consumer()->set_name("one");
  c.Send(m);
  wire::ServerMessage error = c.Next();
  EXPECT_EQ(error.error().code(), wire::INVALID_ARGUMENT);
  EXPECT_THAT(error.error().message(), HasSubstr("delivers 'a/*'"));
  s->mutable_consumer()->set_name("bad name");
  c.Send(m);
  EXPECT_EQ(c.Next().error().code(), wire::INVALID_ARGUMENT);
  wire::ClientMessage ack;
  ack.mutable_ack_stored()->set_op_id(c.next_op_id());
  ack.mutable_ack_stored()->set_subscription_id(999);
  ack.mutable_ack_stored()->add_seqs(1);
  c.Send(ack);
  EXPECT_EQ(c.Next().error().code(), wire::UNKNOWN_SUBSCRIPTION);
  EXPECT_FALSE(c.closed());
}

}  // namespace
}  // namespace manifold
