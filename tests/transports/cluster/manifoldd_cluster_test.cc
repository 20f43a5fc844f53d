// A cluster of real manifoldd processes over a real Redis, on every event
// loop this build has: native clients on different nodes see one bus
// (wildcards included, each message once, none echoed back), NATS requests
// reach a responder on another node, a topic has one native server
// cluster-wide (NO_SERVER, TIMED_OUT and SERVER_GONE across nodes, a killed
// node's services failed and freed within two heartbeats), and Redis may
// vanish and come back, or come up after the nodes, without local clients
// noticing.
//
// Needs redis-server (the Debian package of that name); the suite is skipped
// where it is missing.

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/manifold.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/running_manifoldd.h"
#include "tests/transports/testing/event_loop_params.h"
#include "tests/transports/testing/free_port.h"
#include "tests/transports/testing/wire_client.h"
#include "transports/sockets/endpoint.h"
#include "transports/sockets/socket_io.h"
#include "transports/sockets/unique_fd.h"

namespace manifold {
namespace {

using testing::ChildProcess;
using testing::ManifolddPath;
using testing::RunningManifoldd;
using testing::WireClient;

constexpr char kRedisServer[] = "/usr/bin/redis-server";

// redis-server on 127.0.0.1:`port`, without persistence, stopped by PID.
class RedisServer {
 public:
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(uint16_t port) {
    absl::StatusOr<std::unique_ptr<ChildProcess>> process = ChildProcess::Start(
        kRedisServer, {"--port", absl::StrCat(port), "--bind", "127.0.0.1",
                       "--save", "", "--appendonly", "no"});
    if (!process.ok()) return process.status();
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (ConnectStream(Endpoint::Tcp("127.0.0.1", port), absl::Seconds(1))
              .ok()) {
        return std::unique_ptr<RedisServer>(
            new RedisServer(*std::move(process)));
      }
      if (!(*process)->Running()) break;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return absl::UnavailableError(
        absl::StrCat("redis-server did not come up on port ", port, ": ",
                     (*process)->Stderr()));
  }
  // Kills it at once (no goodbye to its clients).
  void Kill() {
    process_->Signal(SIGKILL).IgnoreError();
    process_->Wait(absl::Seconds(5)).IgnoreError();
  }

 private:
  explicit RedisServer(std::unique_ptr<ChildProcess> process)
      : process_(std::move(process)) {}
  std::unique_ptr<ChildProcess> process_;
};

// How many times `text` is in `log`.
int Count(absl::string_view log, absl::string_view text) {
  int n = 0;
  for (size_t at = log.find(text); at != absl::string_view::npos;
       at = log.find(text, at + text.size())) {
    ++n;
  }
  return n;
}

// Waits until `node` logged `text` at least `times` times.
bool WaitForLog(RunningManifoldd& node, absl::string_view text, int times = 1,
                absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (Count(node.Log(), text) >= times) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

// The next delivery to `client`, or an error at the timeout.
absl::StatusOr<wire::Deliver> NextDelivery(
    WireClient& client, absl::Duration timeout = absl::Seconds(5)) {
  absl::StatusOr<wire::ServerMessage> m = client.ReceiveSkippingPings(timeout);
  if (!m.ok()) return m.status();
  if (!m->has_deliver()) {
    return absl::InternalError(
        absl::StrCat("expected a delivery, got ", m->ShortDebugString()));
  }
  return m->deliver();
}

// Everything delivered to `client` until it is quiet for `quiet`.
std::vector<std::string> Drain(WireClient& client,
                               absl::Duration quiet = absl::Milliseconds(300)) {
  std::vector<std::string> got;
  while (true) {
    absl::StatusOr<wire::Deliver> d = NextDelivery(client, quiet);
    if (!d.ok()) return got;
    got.push_back(absl::StrCat(d->topic(), "=", d->payload()));
  }
}

// Publishes `topic` from `publisher` every 100 ms until `subscriber` gets it
// (the subscriber's node has announced that interest, and everything it
// announced before); then drains what else the probes brought. Returns how
// long it took, or an error after `timeout`.
absl::StatusOr<absl::Duration> AwaitRoute(
    WireClient& publisher, WireClient& subscriber, absl::string_view topic,
    absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time start = absl::Now();
  while (absl::Now() - start < timeout) {
    if (absl::Status s = publisher.Publish(topic, "probe"); !s.ok()) return s;
    absl::StatusOr<wire::Deliver> d =
        NextDelivery(subscriber, absl::Milliseconds(100));
    if (d.ok() && d->topic() == topic) {
      const absl::Duration took = absl::Now() - start;
      Drain(subscriber);
      return took;
    }
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "no route for ", topic, " within ", absl::FormatDuration(timeout)));
}

// A text protocol over a raw socket: what was read is kept until Take().
class RawSocket {
 public:
  absl::Status Send(absl::string_view bytes) {
    return SendAll(fd_.get(), bytes);
  }
  // Reads until what came (since the last Take) contains `text`.
  absl::Status ReadUntil(absl::string_view text,
                         absl::Duration timeout = absl::Seconds(5)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!absl::StrContains(buffer_, text)) {
      const int64_t wait = absl::ToInt64Milliseconds(deadline - absl::Now());
      if (wait <= 0) {
        return absl::DeadlineExceededError(
            absl::StrCat("no '", text, "' in '", buffer_, "'"));
      }
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(wait)) != 1) continue;
      char chunk[4096];
      const ssize_t n = ::read(fd_.get(), chunk, sizeof(chunk));
      if (n <= 0) return absl::UnavailableError("the server closed");
      buffer_.append(chunk, static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }
  std::string Take() { return std::exchange(buffer_, std::string()); }

 protected:
  explicit RawSocket(UniqueFd fd) : fd_(std::move(fd)) {}

 private:
  UniqueFd fd_;
  std::string buffer_;
};

// A NATS client over a raw socket: enough protocol for a request and its
// answer.
class RawNats : public RawSocket {
 public:
  static absl::StatusOr<RawNats> Connect(const Endpoint& endpoint) {
    absl::StatusOr<UniqueFd> fd = ConnectStream(endpoint);
    if (!fd.ok()) return fd.status();
    RawNats nats(*std::move(fd));
    if (!nats.ReadUntil("INFO ").ok()) {
      return absl::UnavailableError("no INFO from the NATS listener");
    }
    if (absl::Status s = nats.Send("CONNECT {\"verbose\":false}\r\nPING\r\n");
        !s.ok()) {
      return s;
    }
    if (absl::Status s = nats.ReadUntil("PONG\r\n"); !s.ok()) return s;
    nats.Take();
    return nats;
  }

 private:
  explicit RawNats(UniqueFd fd) : RawSocket(std::move(fd)) {}
};

// A Redis client over a raw socket, as an application that knows nothing of
// Manifold would be: commands in RESP, replies read as bytes.
class RawRedis : public RawSocket {
 public:
  static absl::StatusOr<RawRedis> Connect(uint16_t port) {
    absl::StatusOr<UniqueFd> fd =
        ConnectStream(Endpoint::Tcp("127.0.0.1", port));
    if (!fd.ok()) return fd.status();
    return RawRedis(*std::move(fd));
  }
  absl::Status Command(const std::vector<std::string>& argv) {
    std::string resp = absl::StrCat("*", argv.size(), "\r\n");
    for (const std::string& a : argv) {
      absl::StrAppend(&resp, "$", a.size(), "\r\n", a, "\r\n");
    }
    return Send(resp);
  }

 private:
  explicit RawRedis(UniqueFd fd) : RawSocket(std::move(fd)) {}
};

class ManifolddClusterTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(ManifolddPath().empty())
        << "the build did not say where manifoldd is";
    if (::access(kRedisServer, X_OK) != 0) {
      GTEST_SKIP() << "needs " << kRedisServer << " (redis-server)";
    }
    redis_port_ = testing::FreeLoopbackPort();
  }

  void StartRedis() {
    absl::StatusOr<std::unique_ptr<RedisServer>> redis =
        RedisServer::Start(redis_port_);
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
  }

  // Starts node `name` on this suite's loop; it serves native clients and
  // NATS ones.
  std::unique_ptr<RunningManifoldd> StartNode(
      const std::string& name, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--loop=" + GetParam(), "--listen=127.0.0.1:0", "--nats=127.0.0.1:0",
        absl::StrCat("--cluster=redis://127.0.0.1:", redis_port_),
        "--node=" + name};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<std::unique_ptr<RunningManifoldd>> node =
        RunningManifoldd::Start(args);
    EXPECT_TRUE(node.ok()) << node.status();
    if (!node.ok()) return nullptr;
    return *std::move(node);
  }

  // Starts `n` nodes and waits until each has joined.
  void StartJoinedNodes(int n, std::vector<std::string> extra = {}) {
    for (int i = 1; i <= n; ++i) {
      nodes_.push_back(StartNode(absl::StrCat("n", i), extra));
      ASSERT_NE(nodes_.back(), nullptr);
    }
    for (auto& node : nodes_) {
      ASSERT_TRUE(WaitForLog(*node, "cluster: joined")) << node->Log();
    }
  }

  uint16_t redis_port_ = 0;
  std::unique_ptr<RedisServer> redis_;
  std::vector<std::unique_ptr<RunningManifoldd>> nodes_;
};

INSTANTIATE_TEST_SUITE_P(Loops, ManifolddClusterTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

TEST_P(ManifolddClusterTest, WildcardsAcrossNodesOnceEachWithoutEcho) {
  StartRedis();
  StartJoinedNodes(3);
  WireClient one = testing::GreetedClient(nodes_[0]->tcp(), "one");
  WireClient two = testing::GreetedClient(nodes_[1]->tcp(), "two");
  WireClient three = testing::GreetedClient(nodes_[2]->tcp(), "three");
  WireClient pub3 = testing::GreetedClient(nodes_[2]->tcp(), "pub3");
  WireClient pub1 = testing::GreetedClient(nodes_[0]->tcp(), "pub1");
  ASSERT_TRUE(one.Subscribe("room/*").ok());
  ASSERT_TRUE(two.Subscribe("room/**").ok());
  ASSERT_TRUE(three.Subscribe("room/a").ok());
  // Announced after the patterns above, over the same link: once these
  // probes arrive, so do the patterns.
  ASSERT_TRUE(one.Subscribe("probe/one").ok());
  ASSERT_TRUE(two.Subscribe("probe/two").ok());
  ASSERT_TRUE(three.Subscribe("probe/three").ok());
  ASSERT_TRUE(AwaitRoute(pub3, one, "probe/one").ok());
  ASSERT_TRUE(AwaitRoute(pub3, two, "probe/two").ok());
  ASSERT_TRUE(AwaitRoute(pub1, three, "probe/three").ok());

  // From node 3: "room/a" for every node, "room/a/b" for `**` alone.
  ASSERT_TRUE(pub3.Publish("room/a", "m1").ok());
  ASSERT_TRUE(pub3.Publish("room/a/b", "m2").ok());
  // From node 1: its own subscriber gets it once, not again through Redis.
  ASSERT_TRUE(pub1.Publish("room/a", "m3").ok());

  EXPECT_THAT(Drain(one, absl::Milliseconds(700)),
              ::testing::UnorderedElementsAre("room/a=m1", "room/a=m3"));
  EXPECT_THAT(Drain(two), ::testing::UnorderedElementsAre(
                              "room/a=m1", "room/a/b=m2", "room/a=m3"));
  EXPECT_THAT(Drain(three),
              ::testing::UnorderedElementsAre("room/a=m1", "room/a=m3"));
}

TEST_P(ManifolddClusterTest, NatsRequestToAResponderOnAnotherNode) {
  StartRedis();
  StartJoinedNodes(2);
  absl::StatusOr<RawNats> responder = RawNats::Connect(nodes_[0]->nats());
  ASSERT_TRUE(responder.ok()) << responder.status();
  absl::StatusOr<RawNats> requester = RawNats::Connect(nodes_[1]->nats());
  ASSERT_TRUE(requester.ok()) << requester.status();
  ASSERT_TRUE(responder->Send("SUB svc.echo 1\r\nPING\r\n").ok());
  ASSERT_TRUE(responder->ReadUntil("PONG\r\n").ok());
  responder->Take();
  ASSERT_TRUE(requester->Send("SUB _INBOX.r.* 7\r\nPING\r\n").ok());
  ASSERT_TRUE(requester->ReadUntil("PONG\r\n").ok());
  requester->Take();

  // Until node 2 knows of the responder, a request finds no one: ask again.
  bool answered = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  for (int i = 0; !answered && absl::Now() < deadline; ++i) {
    const std::string reply = absl::StrCat("_INBOX.r.", i);
    ASSERT_TRUE(
        requester->Send(absl::StrCat("PUB svc.echo ", reply, " 2\r\nhi\r\n"))
            .ok());
    if (!responder->ReadUntil("\r\nhi\r\n", absl::Milliseconds(200)).ok()) {
      continue;
    }
    // "MSG svc.echo 1 <reply> 2": answer on the reply subject it names.
    const std::string got = responder->Take();
    const size_t at = got.rfind("MSG svc.echo 1 ");
    ASSERT_NE(at, std::string::npos) << got;
    const std::string line = got.substr(at, got.find("\r\n", at) - at);
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    ASSERT_EQ(fields.size(), 5u) << line;
    ASSERT_TRUE(
        responder->Send(absl::StrCat("PUB ", fields[3], " 5\r\nhello\r\n"))
            .ok());
    ASSERT_TRUE(requester->ReadUntil("\r\nhello\r\n").ok());
    EXPECT_THAT(requester->Take(),
                ::testing::HasSubstr(absl::StrCat("MSG ", fields[3], " 7 5")));
    answered = true;
  }
  EXPECT_TRUE(answered);
}

TEST_P(ManifolddClusterTest, RedisLostAndBackMidTraffic) {
  StartRedis();
  StartJoinedNodes(2);
  WireClient local = testing::GreetedClient(nodes_[0]->tcp(), "local");
  WireClient remote = testing::GreetedClient(nodes_[1]->tcp(), "remote");
  WireClient pub = testing::GreetedClient(nodes_[0]->tcp(), "pub");
  ASSERT_TRUE(local.Subscribe("feed/*").ok());
  ASSERT_TRUE(remote.Subscribe("feed/*").ok());
  ASSERT_TRUE(AwaitRoute(pub, remote, "feed/probe").ok());
  Drain(local);

  int sent = 0;
  auto publish_some = [&](int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(pub.Publish("feed/x", absl::StrCat(sent++)).ok());
    }
  };
  publish_some(50);
  redis_->Kill();
  publish_some(50);
  ASSERT_TRUE(WaitForLog(*nodes_[0], "cluster: lost")) << nodes_[0]->Log();
  publish_some(50);
  // The local subscriber missed nothing, in order.
  for (int i = 0; i < sent; ++i) {
    absl::StatusOr<wire::Deliver> d = NextDelivery(local);
    ASSERT_TRUE(d.ok()) << d.status() << " at " << i;
    if (d->topic() == "feed/probe") {
      --i;
      continue;
    }
    EXPECT_EQ(d->payload(), absl::StrCat(i));
  }

  StartRedis();
  const absl::Time back = absl::Now();
  Drain(remote, absl::Milliseconds(50));
  absl::StatusOr<absl::Duration> took =
      AwaitRoute(pub, remote, "feed/again", absl::Seconds(5));
  ASSERT_TRUE(took.ok()) << took.status() << "\n" << nodes_[0]->Log();
  EXPECT_LT(absl::Now() - back, absl::Seconds(5) + absl::Milliseconds(400));
  EXPECT_TRUE(WaitForLog(*nodes_[0], "cluster: joined", 2));
  EXPECT_TRUE(WaitForLog(*nodes_[1], "cluster: joined", 2));
  // One line for the loss, whatever the number of retries.
  EXPECT_EQ(Count(nodes_[0]->Log(), "cluster: lost"), 1) << nodes_[0]->Log();
}

TEST_P(ManifolddClusterTest, ServesLocallyUntilRedisComesUpThenJoins) {
  std::unique_ptr<RunningManifoldd> first = StartNode("early");
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(WaitForLog(*first, "unreachable")) << first->Log();
  WireClient sub = testing::GreetedClient(first->tcp(), "sub");
  WireClient pub = testing::GreetedClient(first->tcp(), "pub");
  ASSERT_TRUE(sub.Subscribe("t/*").ok());
  ASSERT_TRUE(pub.Publish("t/1", "local").ok());
  absl::StatusOr<wire::Deliver> d = NextDelivery(sub);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->payload(), "local");
  // Retries (100 ms doubling) say nothing more.
  absl::SleepFor(absl::Milliseconds(800));
  EXPECT_EQ(Count(first->Log(), "unreachable"), 1) << first->Log();
  EXPECT_THAT(first->Log(), ::testing::HasSubstr(absl::StrCat(
                                "manifoldd: cluster: redis://127.0.0.1:",
                                redis_port_, " unreachable (")));
  EXPECT_THAT(
      first->Log(),
      ::testing::HasSubstr("); serving local clients, joining when it is up"));

  StartRedis();
  ASSERT_TRUE(WaitForLog(*first, "cluster: joined", 1, absl::Seconds(5)))
      << first->Log();
  std::unique_ptr<RunningManifoldd> second = StartNode("late");
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(WaitForLog(*second, "cluster: joined")) << second->Log();
  WireClient far = testing::GreetedClient(second->tcp(), "far");
  ASSERT_TRUE(far.Subscribe("t/*").ok());
  ASSERT_TRUE(AwaitRoute(pub, far, "t/2").ok());
}

TEST_P(ManifolddClusterTest, RejectsABadNodeName) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> bad = ChildProcess::Start(
      ManifolddPath(),
      {"--loop=" + GetParam(), "--listen=127.0.0.1:0",
       absl::StrCat("--cluster=redis://127.0.0.1:", redis_port_),
       "--node=no spaces"});
  ASSERT_TRUE(bad.ok()) << bad.status();
  absl::StatusOr<int> code = (*bad)->Wait(absl::Seconds(10));
  EXPECT_EQ(code.value_or(-1), 2);
  EXPECT_THAT((*bad)->Stderr(), ::testing::HasSubstr("manifoldd: --cluster: "));
}

TEST_P(ManifolddClusterTest, BridgeModeBothWays) {
  StartRedis();
  StartJoinedNodes(2, {"--redis_bridge=timeline:*=timeline/*"});
  WireClient one = testing::GreetedClient(nodes_[0]->tcp(), "one");
  WireClient two = testing::GreetedClient(nodes_[1]->tcp(), "two");
  ASSERT_TRUE(one.Subscribe("timeline/*").ok());
  ASSERT_TRUE(two.Subscribe("timeline/*").ok());
  // An application on Redis: one connection listens, one publishes.
  absl::StatusOr<RawRedis> listener = RawRedis::Connect(redis_port_);
  ASSERT_TRUE(listener.ok()) << listener.status();
  ASSERT_TRUE(listener->Command({"PSUBSCRIBE", "timeline:*"}).ok());
  ASSERT_TRUE(listener->ReadUntil("psubscribe").ok());
  listener->Take();
  absl::StatusOr<RawRedis> app = RawRedis::Connect(redis_port_);
  ASSERT_TRUE(app.ok()) << app.status();

  // Redis to every node's clients, once each.
  ASSERT_TRUE(app->Command({"PUBLISH", "timeline:42", "hello"}).ok());
  EXPECT_THAT(Drain(one, absl::Milliseconds(700)),
              ::testing::ElementsAre("timeline/42=hello"));
  EXPECT_THAT(Drain(two), ::testing::ElementsAre("timeline/42=hello"));

  // A client's publish to Redis's channel, and to the other node once.
  ASSERT_TRUE(one.Publish("timeline/7", "from one").ok());
  ASSERT_TRUE(listener->ReadUntil("from one").ok());
  EXPECT_TRUE(absl::StrContains(listener->Take(), "timeline:7"));
  EXPECT_THAT(Drain(one, absl::Milliseconds(700)),
              ::testing::ElementsAre("timeline/7=from one"));
  EXPECT_THAT(Drain(two), ::testing::ElementsAre("timeline/7=from one"));
}

TEST_P(ManifolddClusterTest, AStoppedNodeSaysGoodbye) {
  StartRedis();
  StartJoinedNodes(2);
  WireClient watcher = testing::GreetedClient(nodes_[0]->tcp(), "watcher");
  ASSERT_TRUE(watcher.Subscribe("$sys/cluster/node_left").ok());
  const absl::Time stopped = absl::Now();
  absl::StatusOr<int> code = nodes_[1]->Stop();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  absl::StatusOr<wire::Deliver> d = NextDelivery(watcher);
  ASSERT_TRUE(d.ok()) << d.status();
  wire::BrokerEvent event;
  ASSERT_TRUE(event.ParseFromString(d->payload()));
  EXPECT_EQ(event.cluster_node_left().node(), "n2");
  EXPECT_EQ(event.cluster_node_left().reason(), "said goodbye");
  // Not two heartbeats (4 s) later.
  EXPECT_LT(absl::Now() - stopped, absl::Seconds(3));
}

// Sends Serve{topic} from `client`; returns the broker's answer.
absl::StatusOr<wire::ServerMessage> Serve(WireClient& client,
                                          absl::string_view topic) {
  wire::ClientMessage m;
  m.mutable_serve()->set_op_id(client.next_op_id());
  m.mutable_serve()->set_topic(std::string(topic));
  if (absl::Status s = client.Send(m); !s.ok()) return s;
  return client.ReceiveSkippingPings();
}

// Sends Request{topic} from `client`; returns its op id.
uint64_t SendRequest(WireClient& client, absl::string_view topic,
                     uint32_t timeout_ms) {
  wire::ClientMessage m;
  const uint64_t op_id = client.next_op_id();
  m.mutable_request()->set_op_id(op_id);
  m.mutable_request()->set_topic(std::string(topic));
  m.mutable_request()->set_payload("question");
  m.mutable_request()->set_timeout_ms(timeout_ms);
  EXPECT_TRUE(client.Send(m).ok());
  return op_id;
}

// The next message to `client` of kind `want` (Response, ServedRequest).
template <typename Want>
absl::StatusOr<Want> Next(WireClient& client, absl::Duration timeout,
                          bool (wire::ServerMessage::*has)() const,
                          const Want& (wire::ServerMessage::*get)() const) {
  absl::StatusOr<wire::ServerMessage> m = client.ReceiveSkippingPings(timeout);
  if (!m.ok()) return m.status();
  if (!((*m).*has)()) {
    return absl::InternalError(
        absl::StrCat("unexpected ", m->ShortDebugString()));
  }
  return ((*m).*get)();
}

absl::StatusOr<wire::Response> NextResponse(
    WireClient& client, absl::Duration timeout = absl::Seconds(5)) {
  return Next(client, timeout, &wire::ServerMessage::has_response,
              &wire::ServerMessage::response);
}

absl::StatusOr<wire::ServedRequest> NextRequest(
    WireClient& client, absl::Duration timeout = absl::Seconds(5)) {
  return Next(client, timeout, &wire::ServerMessage::has_request,
              &wire::ServerMessage::request);
}

TEST_P(ManifolddClusterTest, OneNativeServerPerTopicAcrossNodes) {
  StartRedis();
  StartJoinedNodes(3);
  WireClient server = testing::GreetedClient(nodes_[1]->tcp(), "server");
  WireClient rival = testing::GreetedClient(nodes_[2]->tcp(), "rival");
  WireClient requester = testing::GreetedClient(nodes_[0]->tcp(), "requester");

  absl::StatusOr<wire::ServerMessage> granted = Serve(server, "svc/add");
  ASSERT_TRUE(granted.ok()) << granted.status();
  ASSERT_TRUE(granted->has_ack()) << granted->ShortDebugString();
  absl::StatusOr<wire::ServerMessage> refused = Serve(rival, "svc/add");
  ASSERT_TRUE(refused.ok()) << refused.status();
  ASSERT_TRUE(refused->has_error()) << refused->ShortDebugString();
  EXPECT_EQ(refused->error().code(), wire::TOPIC_ALREADY_SERVED);
  EXPECT_THAT(refused->error().message(), ::testing::HasSubstr("node n2"));

  // Node 1 learns of the service from node 2's announcement: until then a
  // request finds no server.
  bool answered = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!answered && absl::Now() < deadline) {
    const uint64_t op = SendRequest(requester, "svc/add", 5000);
    absl::StatusOr<wire::ServedRequest> got =
        NextRequest(server, absl::Milliseconds(300));
    if (!got.ok()) {
      absl::StatusOr<wire::Response> none = NextResponse(requester);
      ASSERT_TRUE(none.ok()) << none.status();
      ASSERT_EQ(none->status(), wire::NO_SERVER) << none->ShortDebugString();
      absl::SleepFor(absl::Milliseconds(50));
      continue;
    }
    EXPECT_EQ(got->topic(), "svc/add");
    EXPECT_EQ(got->payload(), "question");
    wire::ClientMessage respond;
    respond.mutable_respond()->set_op_id(server.next_op_id());
    respond.mutable_respond()->set_request_id(got->request_id());
    respond.mutable_respond()->set_payload("answer");
    ASSERT_TRUE(server.Send(respond).ok());
    absl::StatusOr<wire::Response> r = NextResponse(requester);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->op_id(), op);
    EXPECT_EQ(r->status(), wire::REQUEST_OK);
    EXPECT_EQ(r->payload(), "answer");
    answered = true;
  }
  ASSERT_TRUE(answered);

  // No server anywhere: at once.
  SendRequest(requester, "svc/nobody", 5000);
  absl::StatusOr<wire::Response> none = NextResponse(requester);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->status(), wire::NO_SERVER);

  // A server that does not answer: TIMED_OUT.
  SendRequest(requester, "svc/add", 300);
  ASSERT_TRUE(NextRequest(server).ok());
  absl::StatusOr<wire::Response> late = NextResponse(requester);
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_EQ(late->status(), wire::TIMED_OUT);

  // A NATS client's request on node 1 reaches the native server too.
  absl::StatusOr<RawNats> nats = RawNats::Connect(nodes_[0]->nats());
  ASSERT_TRUE(nats.ok()) << nats.status();
  ASSERT_TRUE(nats->Send("SUB _INBOX.n 1\r\nPING\r\n").ok());
  ASSERT_TRUE(nats->ReadUntil("PONG\r\n").ok());
  nats->Take();
  ASSERT_TRUE(nats->Send("PUB svc.add _INBOX.n 2\r\nhi\r\n").ok());
  absl::StatusOr<wire::ServedRequest> from_nats = NextRequest(server);
  ASSERT_TRUE(from_nats.ok()) << from_nats.status();
  EXPECT_EQ(from_nats->payload(), "hi");
  wire::ClientMessage respond;
  respond.mutable_respond()->set_op_id(server.next_op_id());
  respond.mutable_respond()->set_request_id(from_nats->request_id());
  respond.mutable_respond()->set_payload("answer");
  ASSERT_TRUE(server.Send(respond).ok());
  ASSERT_TRUE(nats->ReadUntil("\r\nanswer\r\n").ok());
  EXPECT_THAT(nats->Take(), ::testing::HasSubstr("MSG _INBOX.n 1 6"));

  // The server's node is killed with a request in flight: SERVER_GONE
  // within two heartbeats (2 s each), and the topic is free again.
  SendRequest(requester, "svc/add", 30000);
  ASSERT_TRUE(NextRequest(server).ok());
  const absl::Time killed = absl::Now();
  const absl::StatusOr<int> stopped = nodes_[1]->Stop(SIGKILL);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  absl::StatusOr<wire::Response> gone =
      NextResponse(requester, absl::Seconds(10));
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(gone->status(), wire::SERVER_GONE) << gone->ShortDebugString();
  EXPECT_THAT(gone->message(), ::testing::HasSubstr("n2"));
  EXPECT_LT(absl::Now() - killed, absl::Seconds(6));

  bool taken = false;
  const absl::Time retry_until = absl::Now() + absl::Seconds(10);
  while (!taken && absl::Now() < retry_until) {
    absl::StatusOr<wire::ServerMessage> again = Serve(rival, "svc/add");
    ASSERT_TRUE(again.ok()) << again.status();
    taken = again->has_ack();
    if (!taken) absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_TRUE(taken) << "the dead node's claim never lapsed";
  EXPECT_LT(absl::Now() - killed, absl::Seconds(8));
}

}  // namespace
}  // namespace manifold
