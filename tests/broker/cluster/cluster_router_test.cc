// Tests for broker/cluster/cluster_router.h: three brokers joined through a
// Redis server in memory (RESP2 pub/sub, as redis-server 7 answers it), with
// clients of each node talking real frames. The model-based test at the end
// runs random subscribes, unsubscribes and publishes on the three nodes and
// on one broker alone, and checks every client gets what it would get there.

#include "broker/cluster/cluster_router.h"

#include <hiredis/hiredis.h>

#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/manifold.pb.h"
#include "core/topic.h"
#include "gtest/gtest.h"
#include "tests/testing/broker_harness.h"

namespace manifold {
namespace {

using ::manifold::testing::BrokerHarness;
using ::manifold::testing::TestClient;

// Redis's glob rules (`*`, `?`, `[...]` with ranges and `^`, `\`), written
// from its documentation, to check the globs the router makes against
// the server's matching rather than against the router's own.
bool RedisMatch(absl::string_view p, absl::string_view s) {
  while (!p.empty()) {
    switch (p[0]) {
      case '*':
        while (p.size() > 1 && p[1] == '*') p.remove_prefix(1);
        if (p.size() == 1) return true;
        for (size_t i = 0; i <= s.size(); ++i) {
          if (RedisMatch(p.substr(1), s.substr(i))) return true;
        }
        return false;
      case '?':
        if (s.empty()) return false;
        s.remove_prefix(1);
        p.remove_prefix(1);
        break;
      case '[': {
        if (s.empty()) return false;
        size_t i = 1;
        const bool negate = i < p.size() && p[i] == '^';
        if (negate) ++i;
        bool match = false;
        while (i < p.size() && p[i] != ']') {
          if (p[i] == '\\' && i + 1 < p.size()) {
            match |= p[i + 1] == s[0];
            i += 2;
          } else if (i + 2 < p.size() && p[i + 1] == '-') {
            match |= p[i] <= s[0] && s[0] <= p[i + 2];
            i += 3;
          } else {
            match |= p[i] == s[0];
            ++i;
          }
        }
        if (negate) match = !match;
        if (!match) return false;
        p.remove_prefix(std::min(i + 1, p.size()));
        s.remove_prefix(1);
        break;
      }
      case '\\':
        if (p.size() >= 2) p.remove_prefix(1);
        [[fallthrough]];
      default:
        if (s.empty() || p[0] != s[0]) return false;
        p.remove_prefix(1);
        s.remove_prefix(1);
        break;
    }
  }
  return s.empty();
}

std::string Bulk(absl::string_view s) {
  return absl::StrCat("$", s.size(), "\r\n", s, "\r\n");
}

// A Redis server in memory: the pub/sub commands the nodes use, and keys
// with lifetimes for the service registry. Its scripts (EVAL) are known by
// their first line and run here as Redis would run them.
class RedisModel {
 public:
  // The server's clock, for key lifetimes.
  void Advance(absl::Duration by) { now_ += by; }
  // A restart without persistence: every key is gone.
  void ForgetKeys() { keys_.clear(); }
  // The value of `key`, or "" when it does not exist (or lapsed).
  std::string Get(const std::string& key) {
    const std::string* v = Lookup(key);
    return v == nullptr ? "" : *v;
  }

  ~RedisModel() {
    for (auto& [id, c] : clients_) redisReaderFree(c.reader);
  }

  int Connect() {
    const int id = ++last_id_;
    clients_[id].reader = redisReaderCreate();
    return id;
  }

  // The server drops the connection (a restart, a crash).
  void Disconnect(int id) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    redisReaderFree(it->second.reader);
    clients_.erase(it);
  }

  bool connected(int id) const { return clients_.contains(id); }

  void Feed(int id, absl::string_view bytes) {
    Client& c = clients_.at(id);
    ASSERT_EQ(redisReaderFeed(c.reader, bytes.data(), bytes.size()), REDIS_OK);
    void* raw = nullptr;
    while (redisReaderGetReply(c.reader, &raw) == REDIS_OK && raw != nullptr) {
      redisReply* r = static_cast<redisReply*>(raw);
      ASSERT_EQ(r->type, REDIS_REPLY_ARRAY) << "a command is an array";
      std::vector<std::string> argv;
      for (size_t i = 0; i < r->elements; ++i) {
        argv.emplace_back(r->element[i]->str, r->element[i]->len);
      }
      freeReplyObject(r);
      Execute(id, argv);
    }
  }

  std::string TakeOutput(int id) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return "";
    return std::exchange(it->second.out, "");
  }

  // Channels PUBLISH was called on, in order.
  const std::vector<std::string>& published() const { return published_; }
  void clear_published() { published_.clear(); }
  // The next message on `channel` to client `id` is lost.
  void DropNext(int id, const std::string& channel) {
    drops_.insert({id, channel});
  }

 private:
  struct Client {
    redisReader* reader = nullptr;
    std::string out;
    std::set<std::string> channels;
    std::set<std::string> patterns;
  };

  void Execute(int id, const std::vector<std::string>& argv) {
    Client& c = clients_.at(id);
    const std::string& cmd = argv.at(0);
    if (cmd == "CLIENT") {
      c.out += "+OK\r\n";
    } else if (cmd == "SUBSCRIBE" || cmd == "PSUBSCRIBE" ||
               cmd == "UNSUBSCRIBE" || cmd == "PUNSUBSCRIBE") {
      const bool pattern = cmd[0] == 'P';
      const bool add = absl::StrContains(cmd, "UNSUB") == false;
      std::set<std::string>& set = pattern ? c.patterns : c.channels;
      for (size_t i = 1; i < argv.size(); ++i) {
        if (add) {
          set.insert(argv[i]);
        } else {
          set.erase(argv[i]);
        }
        std::string kind = absl::AsciiStrToLower(cmd);
        c.out += absl::StrCat("*3\r\n", Bulk(kind), Bulk(argv[i]), ":",
                              c.channels.size() + c.patterns.size(), "\r\n");
      }
    } else if (cmd == "PUBLISH") {
      ASSERT_EQ(argv.size(), 3u);
      published_.push_back(argv[1]);
      int receivers = 0;
      for (auto& [other_id, other] : clients_) {
        if (other.channels.contains(argv[1]) &&
            !drops_.erase({other_id, argv[1]})) {
          other.out += absl::StrCat("*3\r\n", Bulk("message"), Bulk(argv[1]),
                                    Bulk(argv[2]));
          ++receivers;
        }
        for (const std::string& glob : other.patterns) {
          if (RedisMatch(glob, argv[1])) {
            other.out += absl::StrCat("*4\r\n", Bulk("pmessage"), Bulk(glob),
                                      Bulk(argv[1]), Bulk(argv[2]));
            ++receivers;
          }
        }
      }
      c.out += absl::StrCat(":", receivers, "\r\n");
    } else if (cmd == "EVAL") {
      ASSERT_GE(argv.size(), 3u);
      const size_t nkeys = std::stoul(argv[2]);
      ASSERT_GE(argv.size(), 3 + nkeys);
      std::vector<std::string> keys(argv.begin() + 3, argv.begin() + 3 + nkeys);
      std::vector<std::string> args(argv.begin() + 3 + nkeys, argv.end());
      const std::string script = argv[1].substr(0, argv[1].find('\n'));
      if (script == "-- manifold: claim") {
        ASSERT_EQ(keys.size(), 1u);
        ASSERT_EQ(args.size(), 3u);
        const std::string* v = Lookup(keys[0]);
        if (v != nullptr && *v != args[0] && !absl::StartsWith(*v, args[2])) {
          c.out += Bulk(*v);
        } else {
          Set(keys[0], args[0], args[1]);
          c.out += ":1\r\n";
        }
      } else if (script == "-- manifold: refresh") {
        ASSERT_EQ(args.size(), 2u);
        std::vector<std::string> lost;
        for (const std::string& k : keys) {
          const std::string* v = Lookup(k);
          if (v == nullptr || *v == args[0]) {
            Set(k, args[0], args[1]);
          } else {
            lost.push_back(k);
            lost.push_back(*v);
          }
        }
        c.out += absl::StrCat("*", lost.size(), "\r\n");
        for (const std::string& l : lost) c.out += Bulk(l);
      } else if (script == "-- manifold: release") {
        ASSERT_EQ(keys.size(), 1u);
        const std::string* v = Lookup(keys[0]);
        if (v != nullptr && *v == args.at(0)) {
          keys_.erase(keys[0]);
          c.out += ":1\r\n";
        } else {
          c.out += ":0\r\n";
        }
      } else {
        c.out += "-NOSCRIPT unknown script\r\n";
      }
    } else {
      c.out += absl::StrCat("-ERR unknown command '", cmd, "'\r\n");
    }
  }

  const std::string* Lookup(const std::string& key) {
    auto it = keys_.find(key);
    if (it == keys_.end()) return nullptr;
    if (it->second.second <= now_) {
      keys_.erase(it);
      return nullptr;
    }
    return &it->second.first;
  }
  void Set(const std::string& key, const std::string& value,
           const std::string& lifetime_ms) {
    keys_[key] = {value, now_ + absl::Milliseconds(std::stoll(lifetime_ms))};
  }

  absl::Time now_ = absl::UnixEpoch();
  // Values with the time they lapse.
  std::map<std::string, std::pair<std::string, absl::Time>> keys_;

  int last_id_ = 0;
  std::map<int, Client> clients_;
  std::vector<std::string> published_;
  std::set<std::pair<int, std::string>> drops_;
};

ClusterOptions OptionsFor(absl::string_view name, uint64_t incarnation = 1,
                          std::vector<RedisBridge> bridges = {}) {
  ClusterOptions o;
  o.node = std::string(name);
  o.incarnation = incarnation;
  o.heartbeat = absl::Seconds(1);
  o.bridges = std::move(bridges);
  return o;
}

// One manifoldd: a broker with clients, its router and its two links.
struct Node {
  Node(RedisModel& redis, absl::string_view name, uint64_t incarnation = 1,
       std::vector<RedisBridge> bridges = {})
      : router(h.broker(), OptionsFor(name, incarnation, std::move(bridges))) {
    Connect(redis);
  }
  void Connect(RedisModel& redis) {
    sub = redis.Connect();
    pub = redis.Connect();
    router.OnConnected(RedisLink::kSubscriber, h.now());
    router.OnConnected(RedisLink::kPublisher, h.now());
  }
  int client_of(RedisLink link) const {
    return link == RedisLink::kSubscriber ? sub : pub;
  }

  BrokerHarness h;
  ClusterRouter router;
  int sub = 0;
  int pub = 0;
};

constexpr RedisLink kLinks[] = {RedisLink::kSubscriber, RedisLink::kPublisher};

class ClusterTest : public ::testing::Test {
 protected:
  void Start(int nodes, std::vector<RedisBridge> bridges = {}) {
    for (int i = 0; i < nodes; ++i) {
      nodes_.push_back(std::make_unique<Node>(
          redis_, absl::StrCat("node", i + 1), 1, bridges));
    }
    Pump();
  }
  Node& node(int i) { return *nodes_.at(i); }

  // Moves bytes between the nodes and Redis until nothing moves.
  void Pump() {
    for (int round = 0; round < 1000; ++round) {
      bool moved = false;
      for (auto& n : nodes_) {
        if (n == nullptr) continue;
        for (RedisLink link : kLinks) {
          const int client = n->client_of(link);
          if (!redis_.connected(client)) continue;
          const std::string out(n->router.PendingOutput(link));
          if (out.empty()) continue;
          redis_.Feed(client, out);
          n->router.Consume(link, out.size());
          moved = true;
        }
      }
      for (auto& n : nodes_) {
        if (n == nullptr) continue;
        for (RedisLink link : kLinks) {
          const std::string in = redis_.TakeOutput(n->client_of(link));
          if (in.empty()) continue;
          ASSERT_TRUE(n->router.Receive(link, in, n->h.now()).ok());
          moved = true;
        }
        n->h.Pump();
      }
      if (!moved) return;
    }
    FAIL() << "the cluster never settled";
  }

  // Node `i` loses both its Redis connections (Redis restarts or the
  // network fails), and is told so with `why`.
  void LoseRedis(int i, absl::string_view why) {
    for (RedisLink link : kLinks) {
      redis_.Disconnect(node(i).client_of(link));
      node(i).router.OnDisconnected(link, why, node(i).h.now());
    }
  }

  // Moves every node's clock and fires its timers.
  void Advance(absl::Duration by) {
    redis_.Advance(by);
    for (auto& n : nodes_) {
      if (n == nullptr) continue;
      n->h.Advance(by);
      n->router.Tick(n->h.now());
    }
    Pump();
  }

  RedisModel redis_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

// What a client received: "subscription_id topic payload" per delivery.
std::vector<std::string> Deliveries(TestClient& c) {
  std::vector<std::string> out;
  for (const wire::ServerMessage& m : c.TakeAll()) {
    if (m.has_deliver()) {
      out.push_back(absl::StrCat(m.deliver().subscription_id(), " ",
                                 m.deliver().topic(), " ",
                                 m.deliver().payload()));
    }
  }
  return out;
}

std::vector<std::string> Topics(TestClient& c) {
  std::vector<std::string> out;
  for (const wire::ServerMessage& m : c.TakeAll()) {
    if (m.has_deliver()) out.push_back(m.deliver().topic());
  }
  return out;
}

// --- Globs -----------------------------------------------------------------

TEST(RedisGlobTest, TranslatesWildcardsAndEscapesSpecials) {
  EXPECT_EQ(RedisGlobFor("m:t:", "a/b"), "m:t:a/b");
  EXPECT_EQ(RedisGlobFor("m:t:", "a/*/c"), "m:t:a/*/c");
  EXPECT_EQ(RedisGlobFor("m:t:", "a/**"), "m:t:a*");
  EXPECT_EQ(RedisGlobFor("m:t:", "**/c"), "m:t:*c");
  EXPECT_EQ(RedisGlobFor("m:t:", "a/**/c"), "m:t:a*c");
  EXPECT_EQ(RedisGlobFor("m:t:", "**"), "m:t:*");
  EXPECT_EQ(RedisGlobFor("m:t:", "x?y/[z]/a\\b"), "m:t:x\\?y/\\[z\\]/a\\\\b");
}

TEST(RedisGlobTest, EveryTopicAPatternMatchesRedisMatchesToo) {
  const std::vector<std::string> patterns = {
      "a",      "a/b", "a/*",   "*/b",    "a/**",   "**",  "**/b",
      "a/**/c", "*/*", "x?y/*", "[q]/**", "a\\b/*", "*/[", "a/*/**"};
  const std::vector<std::string> topics = {
      "a",       "a/b",   "a/c",   "b",   "a/b/c", "x/b",
      "a/x/y/c", "x?y/1", "xzy/1", "[q]", "[q]/r", "q/r",
      "a\\b/c",  "ab/c",  "z/[",   "z/x", "ab",    "a/b/c/d"};
  for (const std::string& p : patterns) {
    const std::string glob = RedisGlobFor("m:t:", p);
    for (const std::string& t : topics) {
      const std::string channel = "m:t:" + t;
      const bool redis = RedisMatch(glob, channel);
      EXPECT_EQ(RedisGlobMatches(glob, channel), redis) << glob << " " << t;
      if (Matches(p, t)) {
        EXPECT_TRUE(redis) << "pattern " << p << " matches " << t
                           << " but Redis's glob " << glob << " does not";
      }
    }
  }
  // Special characters are literal: they match themselves only.
  EXPECT_FALSE(RedisMatch(RedisGlobFor("m:t:", "x?y/1"), "m:t:xzy/1"));
  EXPECT_FALSE(RedisMatch(RedisGlobFor("m:t:", "[q]/r"), "m:t:q/r"));
}

TEST(ClusterOptionsTest, NamesWhatIsWrong) {
  EXPECT_TRUE(ClusterRouter::Validate(OptionsFor("n-1.a_b")).ok());
  ClusterOptions o = OptionsFor("bad name");
  EXPECT_TRUE(absl::StrContains(ClusterRouter::Validate(o).message(),
                                "cluster node 'bad name'"));
  o = OptionsFor("n");
  o.prefix = "a:b";
  EXPECT_TRUE(
      absl::StrContains(ClusterRouter::Validate(o).message(), "prefix"));
  o = OptionsFor("n");
  o.heartbeat = absl::Milliseconds(1);
  EXPECT_TRUE(
      absl::StrContains(ClusterRouter::Validate(o).message(), "heartbeat"));
}

// --- Pub/sub across nodes ----------------------------------------------------

TEST_F(ClusterTest, NodesJoinAndSeeEachOther) {
  Start(3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(node(i).router.joined());
    EXPECT_EQ(node(i).router.statistics().nodes, 2u);
    EXPECT_EQ(node(i).h.broker().statistics().cluster.nodes, 2u);
    int joined = 0;
    for (const wire::BrokerEvent& e : node(i).h.TakeEvents()) {
      joined += e.has_cluster_node_joined();
    }
    EXPECT_EQ(joined, 2);
  }
}

TEST_F(ClusterTest, MessagesReachSubscribersOnOtherNodesOnce) {
  Start(3);
  TestClient& alice = node(0).h.Connect("alice");
  TestClient& bob = node(1).h.Connect("bob");
  TestClient& carol = node(2).h.Connect("carol");
  const SubscriptionId star = bob.Subscribe("chat/*");
  const SubscriptionId any = carol.Subscribe("chat/**");
  const SubscriptionId exact = carol.Subscribe("chat/room");
  const SubscriptionId own = alice.Subscribe("chat/room");
  Pump();

  redis_.clear_published();
  alice.Publish("chat/room", "hi");
  Pump();
  EXPECT_EQ(Deliveries(bob), std::vector<std::string>{
                                 absl::StrCat(star.value(), " chat/room hi")});
  std::vector<std::string> c = Deliveries(carol);
  std::sort(c.begin(), c.end());
  std::vector<std::string> want = {
      absl::StrCat(any.value(), " chat/room hi"),
      absl::StrCat(exact.value(), " chat/room hi")};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(c, want) << "one delivery per matching subscription, not per glob";
  EXPECT_EQ(Deliveries(alice), std::vector<std::string>{absl::StrCat(
                                   own.value(), " chat/room hi")})
      << "no echo from Redis to the publisher's own node";
  EXPECT_EQ(redis_.published(),
            std::vector<std::string>{"manifold:t:chat/room"});

  bob.Publish("chat/room/deep", "x");
  Pump();
  EXPECT_EQ(Topics(carol), std::vector<std::string>{"chat/room/deep"});
  EXPECT_TRUE(Topics(alice).empty());
  EXPECT_TRUE(Topics(bob).empty()) << "chat/* is one segment";
  EXPECT_GE(node(2).router.statistics().duplicates_dropped, 1u);
}

TEST_F(ClusterTest, NothingGoesToRedisThatNoOtherNodeWants) {
  Start(3);
  TestClient& alice = node(0).h.Connect("alice");
  TestClient& bob = node(1).h.Connect("bob");
  alice.Subscribe("local/only");
  bob.Subscribe("wanted/*");
  Pump();
  redis_.clear_published();
  alice.Publish("local/only", "1");
  alice.Publish("nobody/at/all", "2");
  Pump();
  EXPECT_TRUE(redis_.published().empty());
  alice.Publish("wanted/x", "3");
  Pump();
  EXPECT_EQ(redis_.published(),
            std::vector<std::string>{"manifold:t:wanted/x"});
  EXPECT_EQ(Topics(bob), std::vector<std::string>{"wanted/x"});
}

TEST_F(ClusterTest, SpecialCharactersMatchOnlyThemselves) {
  Start(2);
  TestClient& alice = node(0).h.Connect("alice");
  TestClient& bob = node(1).h.Connect("bob");
  bob.Subscribe("x?y/[a]");
  Pump();
  alice.Publish("xzy/[a]", "wrong");
  alice.Publish("x?y/a", "wrong");
  alice.Publish("x?y/[a]", "right");
  Pump();
  EXPECT_EQ(Topics(bob), std::vector<std::string>{"x?y/[a]"});
}

TEST_F(ClusterTest, PublishingToAPatternReachesOtherNodes) {
  Start(3);
  TestClient& alice = node(0).h.Connect("alice");
  TestClient& bob = node(1).h.Connect("bob");
  TestClient& carol = node(2).h.Connect("carol");
  bob.Subscribe("room/1/status");
  carol.Subscribe("room/2/status");
  carol.Subscribe("room/**");
  Pump();
  alice.Publish("room/*/status", "all");
  Pump();
  EXPECT_EQ(Topics(bob), std::vector<std::string>{"room/*/status"});
  EXPECT_EQ(Topics(carol).size(), 2u) << "one per matching subscription";
}

TEST_F(ClusterTest, UnsubscribingStopsTheFlow) {
  Start(2);
  TestClient& alice = node(0).h.Connect("alice");
  TestClient& bob = node(1).h.Connect("bob");
  const SubscriptionId s = bob.Subscribe("feed");
  Pump();
  alice.Publish("feed", "1");
  Pump();
  EXPECT_EQ(Topics(bob).size(), 1u);
  bob.Unsubscribe(s);
  Pump();
  redis_.clear_published();
  alice.Publish("feed", "2");
  Pump();
  EXPECT_TRUE(redis_.published().empty());
  EXPECT_EQ(node(0).router.statistics().remote_patterns, 0u);
}

// --- Requests ----------------------------------------------------------------

TEST_F(ClusterTest, AnswersReachTheRequesterFromTheFirstRequest) {
  Start(2);
  TestClient& requester = node(0).h.Connect("requester");
  TestClient& responder = node(1).h.Connect("responder");
  responder.Subscribe("svc/time");
  Pump();

  // node2 misses the announcement of the inbox, as it would when the
  // request overtakes it: only the request tells node2 where answers go.
  redis_.DropNext(node(1).sub, "manifold:ctl");
  requester.Subscribe("_INBOX/r1/1");
  wire::ClientMessage m;
  m.mutable_publish()->set_op_id(requester.next_op_id());
  m.mutable_publish()->set_topic("svc/time");
  m.mutable_publish()->set_payload("now?");
  m.mutable_publish()->set_reply_to("_INBOX/r1/1");
  requester.Send(m);
  Pump();
  std::string reply_to;
  for (const wire::ServerMessage& r : responder.TakeAll()) {
    if (r.has_deliver()) reply_to = r.deliver().reply_to();
  }
  ASSERT_EQ(reply_to, "_INBOX/r1/1");
  ASSERT_EQ(node(1).router.statistics().remote_patterns, 0u)
      << "node2 must not know the inbox yet";
  responder.Publish(reply_to, "noon");
  Pump();
  EXPECT_EQ(Topics(requester), std::vector<std::string>{"_INBOX/r1/1"});
}

TEST_F(ClusterTest, NoRespondersOnlyWhenNoNodeHasOne) {
  Start(2);
  TestClient& requester = node(0).h.Connect("requester");
  TestClient& responder = node(1).h.Connect("responder");
  requester.Subscribe("_INBOX/r2/*");
  Pump();
  auto request = [&](absl::string_view topic, absl::string_view inbox) {
    wire::ClientMessage m;
    m.mutable_publish()->set_op_id(requester.next_op_id());
    m.mutable_publish()->set_topic(std::string(topic));
    m.mutable_publish()->set_reply_to(std::string(inbox));
    m.mutable_publish()->set_no_responders(true);
    requester.Send(m);
    Pump();
  };
  request("svc/none", "_INBOX/r2/1");
  std::vector<wire::ServerMessage> got = requester.TakeAll();
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(got[0].has_deliver());
  ASSERT_EQ(got[0].deliver().headers_size(), 1);
  EXPECT_EQ(got[0].deliver().headers(0).value(), "503");

  responder.Subscribe("svc/there");
  Pump();
  request("svc/there", "_INBOX/r2/2");
  for (const wire::ServerMessage& r : requester.TakeAll()) {
    EXPECT_FALSE(r.has_deliver()) << "a responder on another node is there";
  }
  EXPECT_EQ(Topics(responder), std::vector<std::string>{"svc/there"});
}

// --- Nodes coming and going --------------------------------------------------

TEST_F(ClusterTest, ASilentNodeIsGoneWithinTwoHeartbeats) {
  Start(3);
  TestClient& alice = node(0).h.Connect("alice");
  TestClient& carol = node(2).h.Connect("carol");
  carol.Subscribe("news");
  Pump();
  for (int i = 0; i < 3; ++i) node(i).h.TakeEvents();
  // node3 dies (kill -9): Redis drops its connections.
  redis_.Disconnect(node(2).sub);
  redis_.Disconnect(node(2).pub);
  nodes_[2].reset();
  Advance(absl::Milliseconds(1500));
  EXPECT_EQ(node(0).router.statistics().nodes, 2u) << "not yet";
  Advance(absl::Milliseconds(600));
  EXPECT_EQ(node(0).router.statistics().nodes, 1u);
  bool left = false;
  for (const wire::BrokerEvent& e : node(0).h.TakeEvents()) {
    if (e.has_cluster_node_left()) {
      EXPECT_EQ(e.cluster_node_left().node(), "node3");
      EXPECT_TRUE(absl::StrContains(e.cluster_node_left().reason(), "silent"));
      left = true;
    }
  }
  EXPECT_TRUE(left);
  redis_.clear_published();
  alice.Publish("news", "x");
  Pump();
  EXPECT_TRUE(redis_.published().empty());
}

TEST_F(ClusterTest, HeartbeatsKeepNodesAlive) {
  Start(2);
  for (int i = 0; i < 20; ++i) Advance(absl::Milliseconds(500));
  EXPECT_EQ(node(0).router.statistics().nodes, 1u);
  EXPECT_EQ(node(1).router.statistics().nodes, 1u);
}

TEST_F(ClusterTest, ARestartedNodeRejoinsWithItsNewInterest) {
  Start(2);
  TestClient& alice = node(0).h.Connect("alice");
  node(1).h.Connect("old").Subscribe("old/topic");
  Pump();
  redis_.Disconnect(node(1).sub);
  redis_.Disconnect(node(1).pub);
  nodes_[1] = std::make_unique<Node>(redis_, "node2", /*incarnation=*/2);
  TestClient& bob = node(1).h.Connect("bob");
  bob.Subscribe("new/topic");
  Pump();
  std::vector<std::string> reasons;
  for (const wire::BrokerEvent& e : node(0).h.TakeEvents()) {
    if (e.has_cluster_node_left()) {
      reasons.push_back(e.cluster_node_left().reason());
    }
  }
  EXPECT_EQ(reasons, std::vector<std::string>{"restarted"});
  redis_.clear_published();
  alice.Publish("old/topic", "gone");
  alice.Publish("new/topic", "here");
  Pump();
  EXPECT_EQ(redis_.published(),
            std::vector<std::string>{"manifold:t:new/topic"});
  EXPECT_EQ(Topics(bob), std::vector<std::string>{"new/topic"});
}

TEST_F(ClusterTest, AMissedAnnouncementIsRepairedByTheNextHeartbeat) {
  Start(2);
  TestClient& alice = node(0).h.Connect("alice");
  TestClient& bob = node(1).h.Connect("bob");
  redis_.DropNext(node(0).sub, "manifold:ctl");
  bob.Subscribe("lost/announcement");
  Pump();
  alice.Publish("lost/announcement", "1");
  Pump();
  EXPECT_TRUE(Topics(bob).empty()) << "node1 did not hear of the interest";
  Advance(absl::Seconds(1));  // node2's heartbeat: node1 sees the gap
  alice.Publish("lost/announcement", "2");
  Pump();
  EXPECT_EQ(Topics(bob), std::vector<std::string>{"lost/announcement"});
}

TEST_F(ClusterTest, RedisLostAndBack) {
  Start(2);
  TestClient& alice = node(0).h.Connect("alice");
  TestClient& local = node(0).h.Connect("local");
  TestClient& bob = node(1).h.Connect("bob");
  local.Subscribe("t/*");
  bob.Subscribe("t/*");
  Pump();
  for (int i = 0; i < 2; ++i) node(i).h.TakeEvents();
  // Redis restarts: every connection is gone, and with it every
  // subscription.
  for (int i = 0; i < 2; ++i) {
    LoseRedis(i, "connection reset by peer");
    EXPECT_FALSE(node(i).router.joined());
  }
  alice.Publish("t/1", "while down");
  Pump();
  EXPECT_EQ(Topics(local), std::vector<std::string>{"t/1"})
      << "local traffic goes on";
  EXPECT_TRUE(Topics(bob).empty());
  EXPECT_EQ(node(0).router.statistics().messages_dropped, 1u);
  Advance(absl::Seconds(5));  // no heartbeats while Redis is away
  EXPECT_EQ(node(0).router.statistics().nodes, 1u) << "nobody expired";

  for (int i = 0; i < 2; ++i) node(i).Connect(redis_);
  Pump();
  alice.Publish("t/2", "back");
  Pump();
  EXPECT_EQ(Topics(bob), std::vector<std::string>{"t/2"}) << "once";
  EXPECT_EQ(Topics(local), std::vector<std::string>{"t/2"});
  std::vector<wire::BrokerEvent::KindCase> kinds;
  for (const wire::BrokerEvent& e : node(0).h.TakeEvents()) {
    if (e.has_cluster_redis_lost() || e.has_cluster_redis_back()) {
      kinds.push_back(e.kind_case());
    }
  }
  EXPECT_EQ(kinds, (std::vector<wire::BrokerEvent::KindCase>{
                       wire::BrokerEvent::kClusterRedisLost,
                       wire::BrokerEvent::kClusterRedisBack}));
}

TEST_F(ClusterTest, BadBytesFromRedisAreAnError) {
  Start(1);
  absl::Status s = node(0).router.Receive(RedisLink::kSubscriber,
                                          "!not resp\r\n", node(0).h.now());
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), "not RESP")) << s;
  Node& n = node(0);
  n.router.OnDisconnected(RedisLink::kSubscriber, "bad bytes", n.h.now());
  n.router.OnConnected(RedisLink::kSubscriber, n.h.now());
  s = n.router.Receive(RedisLink::kPublisher,
                       "-NOAUTH Authentication required\r\n", n.h.now());
  EXPECT_TRUE(absl::StrContains(s.message(), "NOAUTH")) << s;
}

TEST_F(ClusterTest, GarbageOnTheChannelsIsCountedNotDelivered) {
  Start(2);
  TestClient& bob = node(1).h.Connect("bob");
  bob.Subscribe("g/*");
  Pump();
  // Someone else publishes on the cluster's channels.
  const int stranger = redis_.Connect();
  redis_.Feed(stranger,
              "*3\r\n$7\r\nPUBLISH\r\n$12\r\nmanifold:ctl\r\n$3\r\nxyz\r\n");
  redis_.Feed(stranger,
              "*3\r\n$7\r\nPUBLISH\r\n$12\r\nmanifold:t:g\r\n$"
              "5\r\n\xff\xff\xff\xff\xff\r\n");
  Pump();
  EXPECT_TRUE(Topics(bob).empty());
  EXPECT_TRUE(node(1).router.joined());
  EXPECT_GE(node(1).router.statistics().malformed, 1u);
}

// --- The cluster behaves as one broker would ---------------------------------

TEST_F(ClusterTest, RandomTrafficMatchesOneBroker) {
  Start(3);
  BrokerHarness single;
  const std::vector<std::string> patterns = {
      "a", "a/b", "a/*", "*/b", "a/**", "**", "b/*/c", "b/**", "x?/[y]", "*"};
  const std::vector<std::string> groups = {"", "", "", "g", "h"};
  const std::vector<std::string> topics = {
      "a",      "a/b",    "a/c", "b/b", "b/x/c", "b/x/y/c",
      "x?/[y]", "xz/[y]", "a/*", "*/b", "b/**",  "c"};
  constexpr int kClientsPerNode = 2;
  struct Sub {
    SubscriptionId cluster;
    SubscriptionId single;
    std::string pattern;
    std::string group;
  };
  struct Pair {
    TestClient* cluster;
    TestClient* single;
    std::vector<Sub> subs;
  };
  std::vector<Pair> clients;
  for (int n = 0; n < 3; ++n) {
    for (int k = 0; k < kClientsPerNode; ++k) {
      const std::string name = absl::StrCat("c", n, k);
      clients.push_back({&node(n).h.Connect(name), &single.Connect(name), {}});
    }
  }
  std::mt19937 rng(20261203);
  auto pick = [&](size_t n) {
    return std::uniform_int_distribution<size_t>(0, n - 1)(rng);
  };
  // What arrived: broadcast deliveries per client (by the single broker's
  // subscription id), and how many members of each queue group got each
  // message, over all clients.
  struct Arrived {
    std::map<std::string, std::vector<std::string>> plain;
    std::map<std::string, int> group;
  };
  auto collect = [](Pair& p, bool cluster, Arrived& into) {
    TestClient& c = cluster ? *p.cluster : *p.single;
    for (const wire::ServerMessage& m : c.TakeAll()) {
      if (!m.has_deliver()) continue;
      const Sub* sub = nullptr;
      for (const Sub& s : p.subs) {
        if ((cluster ? s.cluster : s.single).value() ==
            m.deliver().subscription_id()) {
          sub = &s;
        }
      }
      ASSERT_NE(sub, nullptr) << "a delivery on no subscription";
      if (sub->group.empty()) {
        into.plain[c.name()].push_back(absl::StrCat(sub->single.value(), " ",
                                                    m.deliver().topic(), " ",
                                                    m.deliver().payload()));
      } else {
        ++into.group[absl::StrCat(sub->pattern, " ", sub->group, " ",
                                  m.deliver().payload())];
      }
    }
  };
  int published = 0;
  int grouped = 0;
  for (int step = 0; step < 800; ++step) {
    Pair& c = clients[pick(clients.size())];
    const int op = static_cast<int>(pick(10));
    if (op < 3) {
      const std::string& p = patterns[pick(patterns.size())];
      const std::string& g = groups[pick(groups.size())];
      c.subs.push_back(
          {c.cluster->Subscribe(p, g), c.single->Subscribe(p, g), p, g});
    } else if (op < 4 && !c.subs.empty()) {
      const size_t i = pick(c.subs.size());
      c.cluster->Unsubscribe(c.subs[i].cluster);
      c.single->Unsubscribe(c.subs[i].single);
      c.subs.erase(c.subs.begin() + i);
    } else {
      const std::string payload = absl::StrCat("m", step);
      const std::string& t = topics[pick(topics.size())];
      c.cluster->Publish(t, payload);
      c.single->Publish(t, payload);
      ++published;
    }
    Pump();
    single.Pump();
    Arrived got;
    Arrived want;
    for (Pair& p : clients) {
      collect(p, true, got);
      collect(p, false, want);
    }
    for (auto& [name, list] : got.plain) std::sort(list.begin(), list.end());
    for (auto& [name, list] : want.plain) std::sort(list.begin(), list.end());
    ASSERT_EQ(got.plain, want.plain) << "step " << step;
    ASSERT_EQ(got.group, want.group)
        << "step " << step << ": each message once per queue group";
    grouped += want.group.size();
  }
  EXPECT_GT(published, 400);
  EXPECT_GT(grouped, 50);
}

// --- Bridge mode -------------------------------------------------------------

TEST(RedisBridgeTest, ParsesAndNamesWhatIsWrong) {
  absl::StatusOr<RedisBridge> b = ParseRedisBridge("timeline:*=timeline/*");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->channel, "timeline:*");
  EXPECT_EQ(b->topic, "timeline/*");
  EXPECT_TRUE(ParseRedisBridge("a:*:b:*=x/*/y/*").ok());
  EXPECT_TRUE(absl::StrContains(ParseRedisBridge("nothing").status().message(),
                                "CHANNEL=TOPIC"));
  EXPECT_TRUE(absl::StrContains(ParseRedisBridge("a?=a/*").status().message(),
                                "only wildcard"));
  EXPECT_TRUE(absl::StrContains(ParseRedisBridge("a:*=a/**").status().message(),
                                "not `**`"));
  EXPECT_TRUE(absl::StrContains(
      ParseRedisBridge("a:*:*=a/*").status().message(), "has 2 `*`"));
  ClusterOptions o = OptionsFor("n");
  o.bridges = {{"*", "all/*"}};
  EXPECT_TRUE(absl::StrContains(ClusterRouter::Validate(o).message(),
                                "cluster's own channels"));
}

TEST_F(ClusterTest, BridgedChannelsAndTopicsGoBothWaysOnceEach) {
  Start(2, {{"timeline:*", "timeline/*"}, {"news", "headlines"}});
  TestClient& alice = node(0).h.Connect("alice");
  TestClient& bob = node(1).h.Connect("bob");
  alice.Subscribe("timeline/*");
  bob.Subscribe("timeline/**");
  bob.Subscribe("headlines");
  Pump();
  // An application that knows nothing of Manifold, on Redis.
  const int app = redis_.Connect();
  redis_.Feed(app, "*2\r\n$10\r\nPSUBSCRIBE\r\n$10\r\ntimeline:*\r\n");
  redis_.TakeOutput(app);
  redis_.Feed(app,
              "*3\r\n$7\r\nPUBLISH\r\n$11\r\ntimeline:42\r\n$5\r\nhello\r\n");
  redis_.Feed(app, "*3\r\n$7\r\nPUBLISH\r\n$4\r\nnews\r\n$4\r\nflash\r\n");
  redis_.TakeOutput(app);
  Pump();
  EXPECT_EQ(Deliveries(alice).size(), 1u);
  std::vector<std::string> b = Topics(bob);
  std::sort(b.begin(), b.end());
  EXPECT_EQ(b, (std::vector<std::string>{"headlines", "timeline/42"}));

  // A client's publish reaches the application and the other node, once.
  alice.Publish("timeline/7", "from alice");
  Pump();
  const std::string app_got = redis_.TakeOutput(app);
  EXPECT_TRUE(absl::StrContains(app_got, "timeline:7")) << app_got;
  EXPECT_TRUE(absl::StrContains(app_got, "from alice"));
  EXPECT_EQ(Topics(alice), std::vector<std::string>{"timeline/7"})
      << "no copy back from Redis";
  EXPECT_EQ(Topics(bob), std::vector<std::string>{"timeline/7"});
  EXPECT_EQ(node(0).router.statistics().bridge_out, 1u);
  EXPECT_EQ(node(1).router.statistics().bridge_in, 3u);
}

// --- Queue groups across nodes -----------------------------------------------

TEST_F(ClusterTest, AQueueGroupGetsEachMessageOnceClusterWide) {
  Start(3);
  TestClient& publisher = node(0).h.Connect("publisher");
  std::vector<TestClient*> members = {
      &node(0).h.Connect("w1"), &node(0).h.Connect("w2"),
      &node(1).h.Connect("w3"), &node(2).h.Connect("w4")};
  for (TestClient* m : members) m->Subscribe("jobs/*", "workers");
  TestClient& watcher = node(2).h.Connect("watcher");
  watcher.Subscribe("jobs/*");
  Pump();
  constexpr int kJobs = 60;
  for (int i = 0; i < kJobs; ++i) {
    publisher.Publish("jobs/build", absl::StrCat("job", i));
    Pump();
  }
  std::set<std::string> seen;
  std::vector<int> per_node(3, 0);
  for (size_t k = 0; k < members.size(); ++k) {
    for (const std::string& d : Deliveries(*members[k])) {
      EXPECT_TRUE(seen.insert(d.substr(d.rfind(' ') + 1)).second)
          << "a job twice: " << d;
      ++per_node[k < 2 ? 0 : k - 1];
    }
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(per_node, (std::vector<int>{20, 20, 20})) << "turns go round nodes";
  EXPECT_EQ(Deliveries(watcher).size(), static_cast<size_t>(kJobs));

  // From a node without members: still once each.
  TestClient& outside = node(2).h.Connect("outside");
  for (TestClient* m : members) m->TakeAll();
  for (int i = 0; i < 30; ++i) {
    outside.Publish("jobs/test", absl::StrCat("t", i));
    Pump();
  }
  seen.clear();
  for (TestClient* m : members) {
    for (const std::string& d : Deliveries(*m)) {
      EXPECT_TRUE(seen.insert(d).second);
    }
  }
  EXPECT_EQ(seen.size(), 30u);
}

// --- Services across nodes --------------------------------------------------

class ServiceTest : public ClusterTest {
 protected:
  // Sends Serve{topic} and moves the cluster until the broker answers it.
  wire::ServerMessage Serve(TestClient& client, absl::string_view topic) {
    wire::ClientMessage m;
    m.mutable_serve()->set_op_id(client.next_op_id());
    m.mutable_serve()->set_topic(std::string(topic));
    client.Send(m);
    Pump();
    std::vector<wire::ServerMessage> got = client.TakeAll();
    EXPECT_EQ(got.size(), 1u);
    return got.empty() ? wire::ServerMessage() : got[0];
  }

  // The requests a server received, by id.
  static std::vector<wire::ServedRequest> Requests(TestClient& server) {
    std::vector<wire::ServedRequest> out;
    for (const wire::ServerMessage& m : server.TakeAll()) {
      if (m.has_request()) out.push_back(m.request());
    }
    return out;
  }

  static std::vector<wire::Response> Responses(TestClient& requester) {
    std::vector<wire::Response> out;
    for (const wire::ServerMessage& m : requester.TakeAll()) {
      if (m.has_response()) out.push_back(m.response());
    }
    return out;
  }
};

TEST_F(ServiceTest, ARequestReachesTheServerOnAnotherNodeAndBack) {
  Start(3);
  TestClient& server = node(1).h.Connect("server");
  TestClient& requester = node(0).h.Connect("requester");
  ASSERT_TRUE(Serve(server, "svc/add").has_ack());
  EXPECT_EQ(redis_.Get("manifold:svc:svc/add"), "node2 1");

  const uint64_t op = requester.Request("svc/add", "1+2", 5000);
  Pump();
  std::vector<wire::ServedRequest> got = Requests(server);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].topic(), "svc/add");
  EXPECT_EQ(got[0].payload(), "1+2");
  EXPECT_EQ(got[0].timeout_ms(), 5000u);
  server.Respond(got[0].request_id(), "3");
  Pump();
  EXPECT_EQ(node(1).router.statistics().local_services, 1u);
  EXPECT_EQ(node(0).router.statistics().remote_services, 1u);
  EXPECT_EQ(node(0).router.statistics().requests_forwarded, 1u);
  EXPECT_EQ(node(1).router.statistics().requests_from_nodes, 1u);
  std::vector<wire::Response> answers = Responses(requester);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].op_id(), op);
  EXPECT_EQ(answers[0].status(), wire::REQUEST_OK);
  EXPECT_EQ(answers[0].payload(), "3");

  // A rejection keeps its status and message.
  requester.Request("svc/add", "x+y", 5000);
  Pump();
  got = Requests(server);
  ASSERT_EQ(got.size(), 1u);
  wire::ClientMessage reject;
  reject.mutable_respond()->set_op_id(server.next_op_id());
  reject.mutable_respond()->set_request_id(got[0].request_id());
  reject.mutable_respond()->set_status(wire::REJECTED);
  reject.mutable_respond()->set_message("not numbers");
  server.Send(reject);
  Pump();
  answers = Responses(requester);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status(), wire::REJECTED);
  EXPECT_EQ(answers[0].message(), "not numbers");

  // A NATS-style request (a publish with reply_to) reaches it too, and the
  // answer is published on the requester's node.
  TestClient& nats = node(2).h.Connect("nats");
  nats.Subscribe("_INBOX/n1");
  Pump();
  wire::ClientMessage pub;
  pub.mutable_publish()->set_op_id(nats.next_op_id());
  pub.mutable_publish()->set_topic("svc/add");
  pub.mutable_publish()->set_payload("2+2");
  pub.mutable_publish()->set_reply_to("_INBOX/n1");
  nats.Send(pub);
  Pump();
  got = Requests(server);
  ASSERT_EQ(got.size(), 1u);
  server.Respond(got[0].request_id(), "4");
  Pump();
  EXPECT_EQ(Deliveries(nats), std::vector<std::string>{"1 _INBOX/n1 4"});
}

TEST_F(ServiceTest, OneServerPerTopicClusterWide) {
  Start(3);
  TestClient& first = node(0).h.Connect("first");
  TestClient& second = node(1).h.Connect("second");
  TestClient& third = node(2).h.Connect("third");
  ASSERT_TRUE(Serve(first, "svc/one").has_ack());
  wire::ServerMessage refused = Serve(second, "svc/one");
  ASSERT_TRUE(refused.has_error());
  EXPECT_EQ(refused.error().code(), wire::TOPIC_ALREADY_SERVED);
  EXPECT_TRUE(absl::StrContains(refused.error().message(), "node1"))
      << refused.error().message();
  EXPECT_TRUE(second.TakeAll().empty());

  // Released: another node may take it, and requests follow it there.
  ASSERT_TRUE(first.Unserve("svc/one").has_ack());
  Pump();
  EXPECT_EQ(redis_.Get("manifold:svc:svc/one"), "");
  ASSERT_TRUE(Serve(third, "svc/one").has_ack());
  TestClient& requester = node(0).h.Connect("requester");
  requester.Request("svc/one", "q", 1000);
  Pump();
  EXPECT_EQ(Requests(third).size(), 1u);
  EXPECT_TRUE(Requests(first).empty());
}

TEST_F(ServiceTest, AnUnserveWhileTheClaimIsAskedComesInItsTurn) {
  Start(2);
  TestClient& server = node(0).h.Connect("server");
  for (int i = 0; i < 2; ++i) {
    wire::ClientMessage m;
    if (i == 0) {
      m.mutable_serve()->set_op_id(server.next_op_id());
      m.mutable_serve()->set_topic("svc/brief");
    } else {
      m.mutable_unserve()->set_op_id(server.next_op_id());
      m.mutable_unserve()->set_topic("svc/brief");
    }
    server.Send(m);
  }
  Pump();
  std::vector<wire::ServerMessage> got = server.TakeAll();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].has_ack()) << got[0].ShortDebugString();
  EXPECT_EQ(got[0].ack().op_id(), 1u);
  EXPECT_TRUE(got[1].has_ack()) << got[1].ShortDebugString();
  EXPECT_EQ(got[1].ack().op_id(), 2u);
  EXPECT_EQ(redis_.Get("manifold:svc:svc/brief"), "");
  EXPECT_EQ(node(0).h.broker().statistics().services, 0u);
  TestClient& other = node(1).h.Connect("other");
  EXPECT_TRUE(Serve(other, "svc/brief").has_ack());
}

TEST_F(ServiceTest, NoServerAnywhereAnswersAtOnce) {
  Start(2);
  TestClient& requester = node(0).h.Connect("requester");
  requester.Request("svc/none", "q", 1000);
  Pump();
  std::vector<wire::Response> answers = Responses(requester);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status(), wire::NO_SERVER);
  EXPECT_TRUE(absl::StrContains(answers[0].message(), "svc/none"));
}

TEST_F(ServiceTest, ASilentServerTimesOut) {
  Start(2);
  TestClient& server = node(1).h.Connect("server");
  TestClient& requester = node(0).h.Connect("requester");
  ASSERT_TRUE(Serve(server, "svc/slow").has_ack());
  requester.Request("svc/slow", "q", 500);
  Pump();
  ASSERT_EQ(Requests(server).size(), 1u);
  Advance(absl::Milliseconds(600));
  std::vector<wire::Response> answers = Responses(requester);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status(), wire::TIMED_OUT);
  EXPECT_EQ(node(0).h.broker().statistics().requests_in_flight, 0u);
  EXPECT_EQ(node(1).h.broker().statistics().requests_in_flight, 0u);
}

TEST_F(ServiceTest, AServerThatLeavesFailsItsRequestsWithServerGone) {
  Start(2);
  TestClient& server = node(1).h.Connect("server");
  TestClient& requester = node(0).h.Connect("requester");
  ASSERT_TRUE(Serve(server, "svc/gone").has_ack());
  requester.Request("svc/gone", "q", 5000);
  Pump();
  server.Disconnect();
  Pump();
  std::vector<wire::Response> answers = Responses(requester);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status(), wire::SERVER_GONE);
  EXPECT_EQ(redis_.Get("manifold:svc:svc/gone"), "") << "released";
  requester.Request("svc/gone", "q", 5000);
  Pump();
  answers = Responses(requester);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status(), wire::NO_SERVER);
}

TEST_F(ServiceTest, ADeadNodesServicesFailAndAreFreeWithinTwoHeartbeats) {
  Start(3);
  TestClient& server = node(2).h.Connect("server");
  TestClient& requester = node(0).h.Connect("requester");
  ASSERT_TRUE(Serve(server, "svc/x").has_ack());
  requester.Request("svc/x", "q", 30000);
  Pump();
  // node3 is killed (-9): Redis drops its connections, nobody says goodbye.
  redis_.Disconnect(node(2).sub);
  redis_.Disconnect(node(2).pub);
  nodes_[2].reset();
  Advance(absl::Milliseconds(1500));
  EXPECT_TRUE(Responses(requester).empty()) << "not noticed yet";
  Advance(absl::Milliseconds(600));
  std::vector<wire::Response> answers = Responses(requester);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status(), wire::SERVER_GONE);
  EXPECT_TRUE(absl::StrContains(answers[0].message(), "node3"))
      << answers[0].message();
  // Its claim lapsed with it: another node can serve the topic.
  TestClient& heir = node(1).h.Connect("heir");
  ASSERT_TRUE(Serve(heir, "svc/x").has_ack());
  requester.Request("svc/x", "q", 1000);
  Pump();
  EXPECT_EQ(Requests(heir).size(), 1u);
}

TEST_F(ServiceTest, WithoutRedisAServeIsRefusedAndLocalServicesGoOn) {
  Start(2);
  TestClient& server = node(0).h.Connect("server");
  TestClient& local = node(0).h.Connect("local");
  ASSERT_TRUE(Serve(server, "svc/kept").has_ack());
  LoseRedis(0, "connection refused");
  wire::ServerMessage refused = Serve(server, "svc/new");
  ASSERT_TRUE(refused.has_error());
  EXPECT_EQ(refused.error().code(), wire::CLUSTER_UNAVAILABLE);
  local.Request("svc/kept", "q", 1000);
  Pump();
  ASSERT_EQ(Requests(server).size(), 1u) << "local requests go on";
}

TEST_F(ServiceTest, AClaimLostWhileRedisWasAwayIsTakenOver) {
  Start(2);
  TestClient& first = node(0).h.Connect("first");
  TestClient& second = node(1).h.Connect("second");
  ASSERT_TRUE(Serve(first, "svc/contested").has_ack());
  // Redis restarts without its keys; node2 is back first and takes the
  // topic, then node1 comes back and finds it held.
  for (int i = 0; i < 2; ++i) LoseRedis(i, "reset");
  redis_.ForgetKeys();
  node(1).Connect(redis_);
  Pump();
  ASSERT_TRUE(Serve(second, "svc/contested").has_ack());
  node(0).Connect(redis_);
  Pump();
  bool told = false;
  for (const wire::ServerMessage& m : first.TakeAll()) {
    if (m.has_error() && m.error().code() == wire::SERVICE_TAKEN_OVER) {
      EXPECT_TRUE(absl::StrContains(m.error().message(), "node2"));
      told = true;
    }
  }
  EXPECT_TRUE(told);
  EXPECT_EQ(node(0).h.broker().statistics().services, 0u);
  TestClient& requester = node(0).h.Connect("requester");
  requester.Request("svc/contested", "q", 1000);
  Pump();
  EXPECT_EQ(Requests(second).size(), 1u);

  // A node back after a restart of Redis takes its uncontested claims back.
  TestClient& other = node(0).h.Connect("other");
  ASSERT_TRUE(Serve(other, "svc/mine").has_ack());
  for (int i = 0; i < 2; ++i) LoseRedis(i, "reset");
  redis_.ForgetKeys();
  for (int i = 0; i < 2; ++i) node(i).Connect(redis_);
  Pump();
  EXPECT_EQ(redis_.Get("manifold:svc:svc/mine"), "node1 1");
  EXPECT_EQ(redis_.Get("manifold:svc:svc/contested"), "node2 1");
}

TEST_F(ServiceTest, ANodeThatLeavesReleasesItsTopicsAtOnce) {
  Start(2);
  TestClient& server = node(0).h.Connect("server");
  ASSERT_TRUE(Serve(server, "svc/bye").has_ack());
  node(0).router.Leave(node(0).h.now());
  Pump();
  EXPECT_EQ(redis_.Get("manifold:svc:svc/bye"), "");
  TestClient& heir = node(1).h.Connect("heir");
  EXPECT_TRUE(Serve(heir, "svc/bye").has_ack());
}

TEST_F(ServiceTest, ClaimsStayAliveWithHeartbeats) {
  Start(2);
  TestClient& server = node(0).h.Connect("server");
  ASSERT_TRUE(Serve(server, "svc/long").has_ack());
  for (int i = 0; i < 10; ++i) Advance(absl::Milliseconds(900));
  EXPECT_EQ(redis_.Get("manifold:svc:svc/long"), "node1 1");
  TestClient& rival = node(1).h.Connect("rival");
  EXPECT_EQ(Serve(rival, "svc/long").error().code(),
            wire::TOPIC_ALREADY_SERVED);
}

TEST_F(ServiceTest, RandomServicesMatchOneBroker) {
  // Random serves, unserves, requests, answers and passing time on three
  // nodes, and the same on one broker: every client sees the same outcomes
  // (ack or error code, the requests its services get, the responses to
  // its requests).
  Start(3);
  BrokerHarness single;
  const std::vector<std::string> topics = {"s/a", "s/b", "s/c", "s/d"};
  struct Pair {
    TestClient* cluster;
    TestClient* single;
    // Requests its services hold: payload -> (cluster id, single id).
    std::map<std::string, std::pair<uint64_t, uint64_t>> held;
  };
  std::vector<Pair> clients;
  for (int n = 0; n < 3; ++n) {
    for (int k = 0; k < 2; ++k) {
      const std::string name = absl::StrCat("c", n, k);
      clients.push_back({&node(n).h.Connect(name), &single.Connect(name), {}});
    }
  }
  std::mt19937 rng(20261204);
  auto pick = [&](size_t n) {
    return std::uniform_int_distribution<size_t>(0, n - 1)(rng);
  };
  // What `c` received, as comparable lines; requests it serves are noted
  // in `held` under its side's ids.
  auto collect = [](Pair& p, bool cluster) {
    std::vector<std::string> out;
    for (const wire::ServerMessage& m :
         (cluster ? p.cluster : p.single)->TakeAll()) {
      if (m.has_ack()) {
        out.push_back(absl::StrCat("ack ", m.ack().op_id()));
      } else if (m.has_error()) {
        out.push_back(absl::StrCat("error ", m.error().op_id(), " ",
                                   wire::Code_Name(m.error().code())));
      } else if (m.has_request()) {
        out.push_back(absl::StrCat("request ", m.request().topic(), " ",
                                   m.request().payload()));
        auto& ids = p.held[m.request().payload()];
        (cluster ? ids.first : ids.second) = m.request().request_id();
      } else if (m.has_response()) {
        out.push_back(
            absl::StrCat("response ", m.response().op_id(), " ",
                         wire::RequestStatus_Name(m.response().status()), " ",
                         m.response().payload()));
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  std::map<std::string, int> outcomes;
  for (int step = 0; step < 1500; ++step) {
    Pair& c = clients[pick(clients.size())];
    const int op = static_cast<int>(pick(12));
    const std::string& topic = topics[pick(topics.size())];
    if (op < 2) {
      for (TestClient* t : {c.cluster, c.single}) {
        wire::ClientMessage m;
        m.mutable_serve()->set_op_id(t->next_op_id());
        m.mutable_serve()->set_topic(topic);
        t->Send(m);
      }
    } else if (op < 3) {
      for (TestClient* t : {c.cluster, c.single}) {
        wire::ClientMessage m;
        m.mutable_unserve()->set_op_id(t->next_op_id());
        m.mutable_unserve()->set_topic(topic);
        t->Send(m);
      }
    } else if (op < 7) {
      const uint32_t timeout_ms = 500 * (1 + pick(4));
      const std::string payload = absl::StrCat("q", step);
      c.cluster->Request(topic, payload, timeout_ms);
      c.single->Request(topic, payload, timeout_ms);
    } else if (op < 10 && !c.held.empty()) {
      auto it = c.held.begin();
      std::advance(it, pick(c.held.size()));
      const wire::RequestStatus status =
          pick(3) == 0 ? wire::REJECTED : wire::REQUEST_OK;
      c.cluster->Respond(it->second.first, absl::StrCat("a", it->first),
                         status);
      c.single->Respond(it->second.second, absl::StrCat("a", it->first),
                        status);
      c.held.erase(it);
    } else {
      Advance(absl::Milliseconds(400));
      single.Advance(absl::Milliseconds(400));
    }
    Pump();
    single.Pump();
    for (Pair& p : clients) {
      std::vector<std::string> got = collect(p, true);
      std::vector<std::string> want = collect(p, false);
      ASSERT_EQ(got, want) << "step " << step << ", client "
                           << p.single->name();
      for (const std::string& line : want) {
        const std::vector<std::string> words = absl::StrSplit(line, ' ');
        ++outcomes[words[0]];
        if (words[0] == "response") ++outcomes[words[2]];
      }
    }
  }
  // The run went through every kind of outcome.
  for (const char* kind :
       {"ack", "error", "request", "response", "REQUEST_OK", "REJECTED",
        "NO_SERVER", "TIMED_OUT", "SERVER_GONE"}) {
    EXPECT_GT(outcomes[kind], 3) << kind;
  }
}

}  // namespace
}  // namespace manifold
