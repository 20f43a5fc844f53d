// Model-based randomized test: random operations over several connections,
// checked against a deliberately simple model of who must receive what.
//
// The model knows each connection's subscriptions (pattern, group) and
// decides, for every publish, which broadcast subscriptions must get it and
// which queue groups must get it exactly once. It does not model round-robin
// order; it checks the group invariant instead. Replay a failure with
// MANIFOLD_MODEL_SEED=<seed printed on failure>.

#include <algorithm>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "broker/broker.h"
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
