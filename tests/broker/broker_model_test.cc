// Model-based randomized test: random operations over several connections,
// checked against a deliberately simple model of who must receive what.
//
// The model knows each connection's subscriptions (pattern, group) and
// decides, for every publish, which broadcast subscriptions must get it and
// which queue groups must get it exactly once. It does not model round-robin
// order; it checks the group invariant instead. Replay a failure with
// MANIFOLD_MODEL_SEED=<seed printed on failure>.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "broker/broker.h"
#include "broker/storage/memory_stream_storage.h"
#include "broker/sys_topics.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "core/topic.h"
#include "gtest/gtest.h"
#include "tests/testing/broker_harness.h"

namespace manifold {
namespace {

using ::manifold::testing::BrokerHarness;
using ::manifold::testing::TestClient;

struct ModelSubscription {
  std::string pattern;
  std::string group;
  ConnectionId owner;
};

struct Model {
  std::map<uint64_t, ModelSubscription> subscriptions;  // by subscription id
  std::map<ConnectionId, bool> echo;
};

const std::vector<std::string> kSegments = {"a", "b", "c"};

std::string RandomTopic(std::mt19937& rng, bool allow_wildcards) {
  const int depth = 1 + rng() % 3;
  std::string topic;
  for (int i = 0; i < depth; ++i) {
    if (i > 0) topic += "/";
    const int pick = rng() % 10;
    if (allow_wildcards && pick == 0) {
      topic += "*";
    } else if (allow_wildcards && pick == 1) {
      topic += "**";
    } else {
      topic += kSegments[rng() % kSegments.size()];
    }
  }
  return topic;
}

void RunModel(uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "MANIFOLD_MODEL_SEED=" << seed);
  std::mt19937 rng(seed);
  BrokerHarness h;
  Model model;
  std::vector<TestClient*> clients;
  for (int i = 0; i < 5; ++i) {
    TestClient& c = h.Connect(absl::StrCat("c", i), /*hello=*/false);
    const bool no_echo = rng() % 3 == 0;
    c.Hello(c.name(), no_echo);
    model.echo[c.id()] = !no_echo;
    clients.push_back(&c);
  }

  for (int step = 0; step < 400; ++step) {
    TestClient& actor = *clients[rng() % clients.size()];
    const int action = rng() % 10;
    if (action < 3) {
      const std::string pattern = RandomTopic(rng, true);
      const std::string group = rng() % 3 == 0 ? "g" : "";
      const SubscriptionId id = actor.Subscribe(pattern, group);
      model.subscriptions[id.value()] = {pattern, group, actor.id()};
    } else if (action < 4) {
      // Unsubscribe one of the actor's subscriptions, if it has any.
      std::vector<uint64_t> own;
      for (auto& [id, s] : model.subscriptions) {
        if (s.owner == actor.id()) own.push_back(id);
      }
      if (own.empty()) continue;
      const uint64_t id = own[rng() % own.size()];
      actor.Unsubscribe(SubscriptionId(id));
      model.subscriptions.erase(id);
    } else {
      const std::string topic = RandomTopic(rng, rng() % 4 == 0);
      const std::string payload = absl::StrCat("m", step);
      // Expected: per connection, the set of broadcast subscription ids;
      // per (pattern, group), exactly one eligible member.
      std::map<ConnectionId, std::multiset<uint64_t>> expected_broadcast;
      std::map<std::pair<std::string, std::string>, std::set<uint64_t>>
          eligible_groups;
      for (auto& [id, s] : model.subscriptions) {
        if (!Intersects(s.pattern, topic)) continue;
        if (s.owner == actor.id() && !model.echo[actor.id()]) continue;
        if (s.group.empty()) {
          expected_broadcast[s.owner].insert(id);
        } else {
          eligible_groups[{s.pattern, s.group}].insert(id);
        }
      }
      actor.Publish(topic, payload);
      std::map<ConnectionId, std::multiset<uint64_t>> got_broadcast;
      std::map<std::pair<std::string, std::string>, int> got_groups;
      for (TestClient* c : clients) {
        for (const wire::ServerMessage& m : c->TakeAll()) {
          ASSERT_TRUE(m.has_deliver()) << m.DebugString();
          ASSERT_EQ(m.deliver().payload(), payload);
          ASSERT_EQ(m.deliver().topic(), topic);
          const uint64_t id = m.deliver().subscription_id();
          auto it = model.subscriptions.find(id);
          ASSERT_NE(it, model.subscriptions.end()) << "unknown sub " << id;
          ASSERT_EQ(it->second.owner, c->id()) << "delivered to wrong client";
          if (it->second.group.empty()) {
            got_broadcast[c->id()].insert(id);
          } else {
            const auto key =
                std::make_pair(it->second.pattern, it->second.group);
            ASSERT_TRUE(eligible_groups[key].count(id))
                << "ineligible group member " << id << " for " << topic;
            ++got_groups[key];
          }
        }
      }
      ASSERT_EQ(got_broadcast, expected_broadcast)
          << "step " << step << " publish '" << topic << "'";
      for (auto& [key, members] : eligible_groups) {
        ASSERT_EQ(got_groups[key], 1) << "group (" << key.first << ", "
                                      << key.second << ") step " << step;
      }
      for (auto& [key, count] : got_groups) {
        ASSERT_TRUE(eligible_groups.count(key)) << "unexpected group delivery";
      }
    }
  }
  EXPECT_EQ(h.broker().statistics().subscriptions, model.subscriptions.size());
}

// Backpressure: random bursts from every client while random clients stop
// and resume reading, under a small output limit. Whatever stalls, once
// everyone reads again every message has reached every subscription that
// matches it exactly once (a queue group: one member), in each publisher's
// order, and nobody was cut.
uint64_t RunBackpressureModel(uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "MANIFOLD_MODEL_SEED=" << seed);
  std::mt19937 rng(seed);
  BrokerOptions options;
  options.set_slow_consumer_policy(BrokerOptions::BACKPRESSURE);
  options.set_max_outbound_bytes(300);
  options.set_max_stall_ms(3'600'000);  // the clock does not move here
  options.set_statistics_interval_ms(0);
  BrokerHarness h(options);
  Model model;
  std::vector<TestClient*> clients;
  for (int i = 0; i < 5; ++i) {
    TestClient& c = h.Connect(absl::StrCat("c", i));
    model.echo[c.id()] = true;
    for (int k = 1 + rng() % 2; k > 0; --k) {
      const std::string pattern = RandomTopic(rng, true);
      const std::string group = rng() % 3 == 0 ? "g" : "";
      model.subscriptions[c.Subscribe(pattern, group).value()] = {
          pattern, group, c.id()};
    }
    clients.push_back(&c);
  }
  struct Sent {
    ConnectionId publisher;
    int number;
    std::string topic;
  };
  std::vector<Sent> sent;
  std::map<ConnectionId, int> next_number;
  std::map<ConnectionId, bool> reading;
  for (TestClient* c : clients) reading[c->id()] = true;
  std::map<ConnectionId, std::vector<wire::ServerMessage>> received;
  auto collect = [&] {
    for (TestClient* c : clients) {
      for (wire::ServerMessage& m : c->TakeAll()) {
        received[c->id()].push_back(std::move(m));
      }
    }
  };
  for (int step = 0; step < 300; ++step) {
    TestClient& actor = *clients[rng() % clients.size()];
    if (rng() % 5 == 0) {
      reading[actor.id()] = !reading[actor.id()];
      actor.set_reading(reading[actor.id()]);
      collect();
      continue;
    }
    std::string frames;
    for (int k = 1 + rng() % 5; k > 0; --k) {
      const int number = next_number[actor.id()]++;
      const std::string topic = RandomTopic(rng, false);
      wire::ClientMessage m;
      m.mutable_publish()->set_topic(topic);
      m.mutable_publish()->set_payload(
          absl::StrCat(actor.id().value(), "/", number));
      AppendFrame(m, &frames);
      sent.push_back({actor.id(), number, topic});
    }
    actor.SendRaw(frames);
    collect();
  }
  for (TestClient* c : clients) c->set_reading(true);
  h.Pump();
  collect();

  // What each subscription (broadcast) or group must have got, in order per
  // publisher: "publisher/number".
  std::map<uint64_t, std::map<uint64_t, std::vector<int>>> got;  // sub, pub
  std::map<std::pair<std::string, std::string>, std::multiset<std::string>>
      group_got;
  for (TestClient* c : clients) {
    EXPECT_FALSE(c->closed()) << c->name() << ": " << c->close_reason();
    for (const wire::ServerMessage& m : received[c->id()]) {
      if (!m.has_deliver()) continue;
      const uint64_t id = m.deliver().subscription_id();
      const std::string& payload = m.deliver().payload();
      const size_t slash = payload.find('/');
      const uint64_t publisher = std::stoull(payload.substr(0, slash));
      const int number = std::stoi(payload.substr(slash + 1));
      got[id][publisher].push_back(number);
      const ModelSubscription& s = model.subscriptions.at(id);
      if (!s.group.empty()) group_got[{s.pattern, s.group}].insert(payload);
    }
  }
  std::map<std::pair<std::string, std::string>, std::multiset<std::string>>
      group_expected;
  for (auto& [id, s] : model.subscriptions) {
    std::map<uint64_t, std::vector<int>> expected;
    for (const Sent& m : sent) {
      if (!Intersects(s.pattern, m.topic)) continue;
      if (s.group.empty()) {
        expected[m.publisher.value()].push_back(m.number);
      } else {
        group_expected[{s.pattern, s.group}].insert(
            absl::StrCat(m.publisher.value(), "/", m.number));
      }
    }
    if (s.group.empty()) {
      EXPECT_EQ(got[id], expected)
          << "subscription " << id << " '" << s.pattern << "'";
    } else {
      // A member gets each publisher's messages in order, if not all.
      for (auto& [publisher, numbers] : got[id]) {
        EXPECT_TRUE(std::is_sorted(numbers.begin(), numbers.end()))
            << "member " << id << " from " << publisher;
      }
    }
  }
  for (auto& [key, expected] : group_expected) {
    // Each member subscription is one entry in model.subscriptions, so a
    // message is expected once per member: once per group is what counts.
    std::set<std::string> once(expected.begin(), expected.end());
    EXPECT_EQ(group_got[key],
              std::multiset<std::string>(once.begin(), once.end()))
        << "group (" << key.first << ", " << key.second << ")";
  }
  EXPECT_EQ(h.broker().statistics().stalled_publishers, 0u);
  EXPECT_EQ(h.broker().statistics().dropped_deliveries, 0u);
  return h.broker().statistics().publisher_stalls;
}

// Durable streams under random storage failures, held (unsynced) batches and
// crashes of the whole broker. A publisher publishes with acks to stored
// topics and to one no stream stores; readers replay the stream and, after
// each crash and restart, subscribe again from the sequence after the last
// one they received (or after the one their first Ack named), as the C++
// client does. Checked after every crash: the stream holds every
// acknowledged message once, in publish order, at consecutive sequences,
// and nothing that was refused; and at the end: every reader received,
// over all its lives, exactly what the stream holds after its starting
// point, in order, none twice. Adds to `totals` what happened, so that the
// caller can check that every case occurred.
struct StreamsModelTotals {
  int lossy_crashes = 0;  // crashes that lost held batches
  size_t acked = 0;
  size_t refused = 0;
  size_t delivered = 0;
  size_t resumed = 0;  // subscriptions again from a sequence
};
void RunStreamsModel(uint32_t seed, StreamsModelTotals& totals) {
  SCOPED_TRACE(::testing::Message() << "MANIFOLD_MODEL_SEED=" << seed);
  std::mt19937 rng(seed);
  MemoryStreamStorage disk;
  struct Reader {
    bool placed = false;  // its first Ack named where it starts
    uint64_t start = 0;   // it receives what follows this sequence
    uint64_t last = 0;    // the last sequence it received (or `start`)
    std::vector<std::pair<uint64_t, std::string>> got;
  };
  std::vector<Reader> readers(3);
  std::vector<std::string> acked;  // stored payloads acknowledged, in order
  std::set<std::string> refused;
  int published = 0;

  auto check_disk = [&](int life) {
    const std::vector<StoredRecord> held = disk.Contents("s");
    std::vector<std::string> acked_held;
    const std::set<std::string> acked_set(acked.begin(), acked.end());
    for (size_t i = 0; i < held.size(); ++i) {
      wire::StoredMessage m;
      ASSERT_TRUE(m.ParseFromString(held[i].record));
      if (i > 0) {
        ASSERT_EQ(held[i].seq, held[i - 1].seq + 1) << "life " << life;
      }
      ASSERT_EQ(refused.count(m.payload()), 0u)
          << m.payload() << " was refused but is stored";
      if (acked_set.count(m.payload())) acked_held.push_back(m.payload());
    }
    ASSERT_EQ(acked_held, acked) << "life " << life;
  };

  for (int life = 0; life < 5; ++life) {
    BrokerHarness h;
    absl::StatusOr<std::vector<RecoveredStream>> recovered = disk.Load();
    ASSERT_TRUE(recovered.ok()) << recovered.status();
    ASSERT_TRUE(
        h.broker().OpenStreams(&disk, *std::move(recovered), h.now()).ok());
    TestClient& pub = h.Connect("pub");
    if (life == 0) {
      wire::StreamConfig config;
      config.set_name("s");
      config.add_topics("s/**");
      pub.Request(sys_topics::kStreamAdd, config.SerializeAsString());
      ASSERT_EQ(pub.Next().response().status(), wire::REQUEST_OK);
    }
    std::vector<TestClient*> clients;
    for (size_t r = 0; r < readers.size(); ++r) {
      TestClient& c = h.Connect(absl::StrCat("reader", r));
      clients.push_back(&c);
    }
    std::map<uint64_t, std::pair<std::string, bool>>
        sent;  // op: payload, stored
    auto collect = [&] {
      for (const wire::ServerMessage& m : pub.TakeAll()) {
        if (m.has_ack()) {
          const auto& [payload, stored] = sent.at(m.ack().op_id());
          if (stored) acked.push_back(payload);
        } else {
          ASSERT_TRUE(m.has_error()) << m.DebugString();
          ASSERT_EQ(m.error().code(), wire::STORAGE_UNAVAILABLE)
              << m.DebugString();
          const auto& [payload, stored] = sent.at(m.error().op_id());
          ASSERT_TRUE(stored) << payload << ": only stored topics are refused";
          refused.insert(payload);
        }
      }
      for (size_t r = 0; r < readers.size(); ++r) {
        for (const wire::ServerMessage& m : clients[r]->TakeAll()) {
          if (m.has_ack()) {
            Reader& reader = readers[r];
            if (!reader.placed) {
              ASSERT_TRUE(m.ack().has_stream_seq()) << m.DebugString();
              reader.placed = true;
              reader.start = reader.last = m.ack().stream_seq();
            } else {
              ASSERT_EQ(m.ack().stream_seq(), reader.last);
            }
            continue;
          }
          ASSERT_TRUE(m.has_deliver()) << m.DebugString();
          Reader& reader = readers[r];
          ASSERT_EQ(m.deliver().stream_seq(), reader.last + 1)
              << "reader " << r << " life " << life;
          reader.last = m.deliver().stream_seq();
          reader.got.emplace_back(reader.last, m.deliver().payload());
        }
      }
    };
    // Each reader comes (back) in turn: one at once, the others later.
    auto subscribe = [&](size_t r) {
      wire::ClientMessage m;
      wire::Subscribe* s = m.mutable_subscribe();
      s->set_op_id(clients[r]->next_op_id());
      s->set_pattern("s/**");
      wire::Replay* replay = s->mutable_replay();
      if (readers[r].placed) {
        replay->set_from_seq(readers[r].last + 1);
        ++totals.resumed;
      }
      clients[r]->Send(m);
    };
    std::vector<bool> subscribed(readers.size(), false);
    bool holding = false;
    for (int step = 0; step < 60; ++step) {
      const int action = rng() % 12;
      if (action == 0) {
        disk.FailNextWrites(1, absl::UnavailableError("injected"));
      } else if (action == 1) {
        if (holding) {
          disk.Release();
          h.Pump();
        } else {
          disk.Hold();
        }
        holding = !holding;
      } else if (action == 2) {
        const size_t r = rng() % readers.size();
        if (!subscribed[r]) {
          subscribe(r);
          subscribed[r] = true;
        }
      } else if (action == 3 && step > 10) {
        break;  // the crash
      } else {
        const bool stored = rng() % 4 != 0;
        const std::string topic =
            stored ? (rng() % 2 ? "s/x" : "s/y/z") : "other";
        const std::string payload = absl::StrCat("p", ++published);
        wire::ClientMessage m;
        const uint64_t op = pub.next_op_id();
        m.mutable_publish()->set_op_id(op);
        m.mutable_publish()->set_topic(topic);
        m.mutable_publish()->set_payload(payload);
        m.mutable_publish()->set_ack(true);
        sent[op] = {payload, stored};
        pub.Send(m);
      }
      collect();
      if (::testing::Test::HasFatalFailure()) return;
    }
    // Down: what was held is lost, unacknowledged.
    if (disk.Crash() > 0) ++totals.lossy_crashes;
    check_disk(life);
    if (::testing::Test::HasFatalFailure()) return;
  }

  // A last life: every reader comes back and catches up.
  BrokerHarness h;
  absl::StatusOr<std::vector<RecoveredStream>> recovered = disk.Load();
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_TRUE(
      h.broker().OpenStreams(&disk, *std::move(recovered), h.now()).ok());
  const std::vector<StoredRecord> held = disk.Contents("s");
  for (size_t r = 0; r < readers.size(); ++r) {
    Reader& reader = readers[r];
    if (!reader.placed) continue;
    TestClient& c = h.Connect(absl::StrCat("reader", r));
    wire::ClientMessage m;
    m.mutable_subscribe()->set_op_id(c.next_op_id());
    m.mutable_subscribe()->set_pattern("s/**");
    m.mutable_subscribe()->mutable_replay()->set_from_seq(reader.last + 1);
    c.Send(m);
    for (const wire::ServerMessage& d : c.TakeAll()) {
      if (!d.has_deliver()) continue;
      EXPECT_EQ(d.deliver().stream_seq(), reader.last + 1);
      reader.last = d.deliver().stream_seq();
      reader.got.emplace_back(reader.last, d.deliver().payload());
    }
    std::vector<std::pair<uint64_t, std::string>> expected;
    for (const StoredRecord& record : held) {
      if (record.seq <= reader.start) continue;
      wire::StoredMessage stored;
      EXPECT_TRUE(stored.ParseFromString(record.record));
      expected.emplace_back(record.seq, stored.payload());
    }
    EXPECT_EQ(reader.got, expected) << "reader " << r;
    totals.delivered += reader.got.size();
  }
  totals.acked += acked.size();
  totals.refused += refused.size();
}

TEST(BrokerModelTest, StreamsLoseNothingAcknowledgedAcrossCrashesAndResumes) {
  if (const char* env = std::getenv("MANIFOLD_MODEL_SEED")) {
    StreamsModelTotals totals;
    RunStreamsModel(static_cast<uint32_t>(std::strtoul(env, nullptr, 10)),
                    totals);
    return;
  }
  StreamsModelTotals totals;
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    RunStreamsModel(seed, totals);
    if (::testing::Test::HasFailure()) return;
  }
  EXPECT_GT(totals.lossy_crashes, 0) << "no crash ever lost a held batch";
  EXPECT_GT(totals.refused, 0u) << "no publish was ever refused";
  EXPECT_GT(totals.resumed, 0u) << "no reader ever came back";
  EXPECT_GT(totals.delivered, totals.acked / 2) << "readers got little";
  std::printf(
      "streams model: %zu acked, %zu refused, %zu delivered, %zu "
      "resumptions, %d crashes lost held batches\n",
      totals.acked, totals.refused, totals.delivered, totals.resumed,
      totals.lossy_crashes);
}

TEST(BrokerModelTest, UnderBackpressureNothingIsLostOrReordered) {
  if (const char* env = std::getenv("MANIFOLD_MODEL_SEED")) {
    RunBackpressureModel(static_cast<uint32_t>(std::strtoul(env, nullptr, 10)));
    return;
  }
  uint64_t stalls = 0;
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    stalls += RunBackpressureModel(seed);
    if (::testing::Test::HasFailure()) return;
  }
  EXPECT_GT(stalls, 0u) << "the model never made the broker stall anyone";
}

TEST(BrokerModelTest, RandomOperationsMatchTheReferenceModel) {
  if (const char* env = std::getenv("MANIFOLD_MODEL_SEED")) {
    RunModel(static_cast<uint32_t>(std::strtoul(env, nullptr, 10)));
    return;
  }
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    RunModel(seed);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace manifold
