// MemoryBroker and MemoryLink: a real Broker on its own thread, clients on
// many threads of the test, native frames over thread-safe in-memory pipes.

#include "transports/memory/memory_broker.h"

#include <sys/resource.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "gtest/gtest.h"

namespace manifold {
namespace {

// A blocking frame-level client on a MemoryLink.
class LinkClient {
 public:
  explicit LinkClient(std::unique_ptr<MemoryLink> link)
      : link_(std::move(link)) {}

  MemoryLink& link() { return *link_; }

  absl::Status Send(const wire::ClientMessage& m) {
    return link_->Write(EncodeFrame(m));
  }

  // The next message, or UNAVAILABLE once the link closed and was drained,
  // or DEADLINE_EXCEEDED.
  absl::StatusOr<wire::ServerMessage> Receive(
      absl::Duration timeout = absl::Seconds(5)) {
    const absl::Time deadline = absl::Now() + timeout;
    wire::ServerMessage m;
    while (true) {
      absl::StatusOr<bool> got = decoder_.Next(m);
      if (!got.ok()) return got.status();
      if (*got) return m;
      absl::StatusOr<std::string> bytes = link_->Read(deadline);
      if (!bytes.ok()) return bytes.status();
      if (bytes->empty()) return absl::DeadlineExceededError("no message");
      decoder_.Append(*bytes);
    }
  }

  void Hello(absl::string_view name) {
    wire::ClientMessage m;
    m.mutable_hello()->set_protocol_version(wire::PROTOCOL_VERSION_1);
    m.mutable_hello()->set_client_name(std::string(name));
    ASSERT_TRUE(Send(m).ok());
    absl::StatusOr<wire::ServerMessage> welcome = Receive();
    ASSERT_TRUE(welcome.ok()) << welcome.status();
    ASSERT_TRUE(welcome->has_welcome()) << welcome->ShortDebugString();
  }

  void Subscribe(absl::string_view pattern) {
    wire::ClientMessage m;
    m.mutable_subscribe()->set_op_id(++op_);
    m.mutable_subscribe()->set_pattern(std::string(pattern));
    ASSERT_TRUE(Send(m).ok());
    absl::StatusOr<wire::ServerMessage> ack = Receive();
    ASSERT_TRUE(ack.ok()) << ack.status();
    ASSERT_TRUE(ack->has_ack()) << ack->ShortDebugString();
  }

  absl::Status Publish(absl::string_view topic, absl::string_view payload,
                       bool ack = false) {
    wire::ClientMessage m;
    m.mutable_publish()->set_op_id(++op_);
    m.mutable_publish()->set_topic(std::string(topic));
    m.mutable_publish()->set_payload(std::string(payload));
    m.mutable_publish()->set_ack(ack);
    return Send(m);
  }

 private:
  std::unique_ptr<MemoryLink> link_;
  FrameDecoder decoder_{FrameDecoder::Options{.max_frame_bytes = 16 << 20}};
  uint64_t op_ = 0;
};

TEST(MemoryBrokerTest, ClientsInTheSameProcessPublishAndSubscribe) {
  MemoryBroker broker;
  LinkClient alice(broker.Connect("alice"));
  LinkClient bob(broker.Connect("bob"));
  alice.Hello("alice");
  bob.Hello("bob");
  bob.Subscribe("room/*");
  ASSERT_TRUE(alice.Publish("room/1", "hi", /*ack=*/true).ok());
  absl::StatusOr<wire::ServerMessage> ack = alice.Receive();
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->ack().delivered(), 1u);
  absl::StatusOr<wire::ServerMessage> m = bob.Receive();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->deliver().topic(), "room/1");
  EXPECT_EQ(m->deliver().payload(), "hi");
}

TEST(MemoryBrokerTest, ReadReturnsAnEmptyStringAtTheDeadline) {
  MemoryBroker broker;
  std::unique_ptr<MemoryLink> link = broker.Connect("quiet");
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> bytes =
      link->Read(absl::Now() + absl::Milliseconds(50));
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, "");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
}

TEST(MemoryBrokerTest, ManyPublisherThreadsReachOneSubscriberInPerSenderOrder) {
  MemoryBroker broker;
  LinkClient subscriber(broker.Connect("sink"));
  subscriber.Hello("sink");
  subscriber.Subscribe("load/*");
  constexpr int kThreads = 8;
  constexpr int kMessages = 500;
  std::vector<std::thread> publishers;
  for (int t = 0; t < kThreads; ++t) {
    publishers.emplace_back([&broker, t] {
      LinkClient publisher(broker.Connect(absl::StrCat("pub", t)));
      publisher.Hello(absl::StrCat("pub", t));
      for (int i = 0; i < kMessages; ++i) {
        ASSERT_TRUE(
            publisher.Publish(absl::StrCat("load/", t), absl::StrCat(i)).ok());
      }
      // An acked publish: every earlier one has been routed when it returns.
      ASSERT_TRUE(publisher.Publish("done", "", /*ack=*/true).ok());
      ASSERT_TRUE(publisher.Receive().ok());
    });
  }
  std::vector<int> next(kThreads, 0);
  for (int received = 0; received < kThreads * kMessages; ++received) {
    absl::StatusOr<wire::ServerMessage> m = subscriber.Receive();
    ASSERT_TRUE(m.ok()) << m.status() << " after " << received;
    const int t = m->deliver().topic().back() - '0';
    ASSERT_EQ(m->deliver().payload(), absl::StrCat(next[t]++));
  }
  for (std::thread& p : publishers) p.join();
}

TEST(MemoryBrokerTest, ManySubscriberThreadsEachGetEveryMessage) {
  MemoryBroker broker;
  constexpr int kThreads = 8;
  constexpr int kMessages = 300;
  std::atomic<int> subscribed{0};
  std::vector<std::thread> subscribers;
  for (int t = 0; t < kThreads; ++t) {
    subscribers.emplace_back([&] {
      LinkClient c(broker.Connect("sub"));
      c.Hello("sub");
      c.Subscribe("news");
      ++subscribed;
      for (int i = 0; i < kMessages; ++i) {
        absl::StatusOr<wire::ServerMessage> m = c.Receive();
        ASSERT_TRUE(m.ok()) << m.status();
        ASSERT_EQ(m->deliver().payload(), absl::StrCat(i));
      }
    });
  }
  for (const absl::Time deadline = absl::Now() + absl::Seconds(30);
       subscribed < kThreads && absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(subscribed, kThreads) << "subscribers did not get going";
  LinkClient publisher(broker.Connect("pub"));
  publisher.Hello("pub");
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(publisher.Publish("news", absl::StrCat(i)).ok());
  }
  for (std::thread& s : subscribers) s.join();
}

TEST(MemoryBrokerTest, MessagesLargerThanTheLinkQueueGoThroughWhole) {
  BrokerOptions options;
  options.set_max_payload_bytes(4 << 20);
  options.set_max_frame_bytes(5 << 20);
  MemoryBroker broker(options);
  LinkClient subscriber(broker.Connect("sub"));
  subscriber.Hello("sub");
  subscriber.Subscribe("big");
  LinkClient publisher(broker.Connect("pub"));
  publisher.Hello("pub");
  std::string payload(3 << 20, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = char(i * 131 >> 3);
  // The write blocks while the link's 256 KiB queue is full, and returns once
  // the broker has taken everything.
  ASSERT_TRUE(publisher.Publish("big", payload).ok());
  absl::StatusOr<wire::ServerMessage> m = subscriber.Receive();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->deliver().payload() == payload);
}

TEST(MemoryBrokerTest, ClosingALinkEndsItsSession) {
  MemoryBroker broker;
  LinkClient watcher(broker.Connect("watcher"));
  watcher.Hello("watcher");
  watcher.Subscribe("$sys/connection/removed");
  {
    LinkClient leaver(broker.Connect("leaver"));
    leaver.Hello("leaver");
  }  // destroying the link closes it
  absl::StatusOr<wire::ServerMessage> m = watcher.Receive();
  ASSERT_TRUE(m.ok()) << m.status();
  wire::BrokerEvent event;
  ASSERT_TRUE(event.ParseFromString(m->deliver().payload()));
  EXPECT_EQ(event.connection_removed().client_name(), "leaver");
}

TEST(MemoryBrokerTest, ALinkClosedByTheClientRefusesFurtherUse) {
  MemoryBroker broker;
  std::unique_ptr<MemoryLink> link = broker.Connect("c");
  link->Close();
  EXPECT_TRUE(absl::IsUnavailable(link->Write("x")));
  EXPECT_TRUE(absl::IsUnavailable(link->Read(absl::Now()).status()));
}

TEST(MemoryBrokerTest, BadInputGetsAnErrorFrameThenTheLinkCloses) {
  MemoryBroker broker;
  LinkClient c(broker.Connect("garbage"));
  ASSERT_TRUE(c.link().Write(std::string(11, '\xff')).ok());
  absl::StatusOr<wire::ServerMessage> m = c.Receive();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->error().code(), wire::BAD_LENGTH_PREFIX);
  EXPECT_TRUE(absl::IsUnavailable(c.Receive().status()));
  EXPECT_TRUE(absl::IsUnavailable(c.link().Write("more")));
}

// The broker's statistics, asked for on $sys/stats over `client`.
wire::Statistics Statistics(LinkClient& client) {
  wire::ClientMessage m;
  m.mutable_request()->set_op_id(1000);
  m.mutable_request()->set_topic("$sys/stats");
  EXPECT_TRUE(client.Send(m).ok());
  absl::StatusOr<wire::ServerMessage> response = client.Receive();
  EXPECT_TRUE(response.ok()) << response.status();
  wire::Statistics stats;
  EXPECT_TRUE(stats.ParseFromString(response->response().payload()));
  return stats;
}

TEST(MemoryBrokerTest, ASlowReaderStallsItsPublisherAndGetsEveryMessage) {
  BrokerOptions options;
  options.set_max_outbound_bytes(64 << 10);
  MemoryBroker broker(options);
  LinkClient slow(broker.Connect("slow"));
  slow.Hello("slow");
  slow.Subscribe("feed");
  LinkClient watcher(broker.Connect("watcher"));
  watcher.Hello("watcher");
  LinkClient publisher(broker.Connect("pub"));
  publisher.Hello("pub");
  // 2 MiB: more than the slow reader's limit and both links' queues hold.
  constexpr int kMessages = 2000;
  std::atomic<int> published{0};
  std::thread flood([&] {
    for (int i = 0; i < kMessages; ++i) {
      std::string payload = absl::StrCat(i, "/");
      payload.resize(1024, 'p');
      ASSERT_TRUE(publisher.Publish("feed", payload).ok());
      published.store(i + 1);
    }
  });
  // The broker holds the publisher back (its link's queue fills and its
  // writes wait), rather than cutting the reader.
  wire::Statistics stats;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  do {
    stats = Statistics(watcher);
  } while (stats.stalled_publishers() == 0 && absl::Now() < deadline);
  EXPECT_EQ(stats.stalled_publishers(), 1u);
  EXPECT_LT(published.load(), kMessages);
  for (int i = 0; i < kMessages; ++i) {
    absl::StatusOr<wire::ServerMessage> m = slow.Receive();
    ASSERT_TRUE(m.ok()) << m.status() << " at " << i;
    ASSERT_TRUE(absl::StartsWith(m->deliver().payload(), absl::StrCat(i, "/")))
        << "message " << i << " out of order";
  }
  flood.join();
  stats = Statistics(watcher);
  EXPECT_EQ(stats.stalled_publishers(), 0u);
  EXPECT_GE(stats.publisher_stalls(), 1u);
  EXPECT_EQ(stats.slow_consumer_disconnects(), 0u);
}

TEST(MemoryBrokerTest, SlowConsumerIsDisconnectedWhileOthersContinue) {
  BrokerOptions options;
  options.set_max_outbound_bytes(64 << 10);
  options.set_slow_consumer_policy(BrokerOptions::DISCONNECT);
  MemoryBroker broker(options);
  LinkClient slow(broker.Connect("slow"));
  slow.Hello("slow");
  slow.Subscribe("feed");
  LinkClient fast(broker.Connect("fast"));
  fast.Hello("fast");
  fast.Subscribe("feed");
  LinkClient publisher(broker.Connect("pub"));
  publisher.Hello("pub");
  constexpr int kBatches = 10;
  constexpr int kPerBatch = 50;
  std::atomic<int> fast_read{0};
  std::thread reader([&] {
    for (int i = 0; i < kBatches * kPerBatch; ++i) {
      absl::StatusOr<wire::ServerMessage> m = fast.Receive();
      ASSERT_TRUE(m.ok()) << m.status() << " at " << i;
      ASSERT_TRUE(m->has_deliver()) << m->ShortDebugString();
      ++fast_read;
    }
  });
  // 50 KiB at a time, each batch read by `fast` before the next, so only
  // the one that never reads falls behind (by far more than its 256 KiB
  // link queue and 64 KiB limit).
  for (int batch = 1; batch <= kBatches; ++batch) {
    for (int i = 0; i < kPerBatch; ++i) {
      ASSERT_TRUE(publisher.Publish("feed", std::string(1024, 'p')).ok());
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (fast_read < batch * kPerBatch && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(1));
    }
  }
  reader.join();
  wire::ServerMessage last;
  while (true) {
    absl::StatusOr<wire::ServerMessage> m = slow.Receive();
    if (!m.ok()) {
      EXPECT_TRUE(absl::IsUnavailable(m.status())) << m.status();
      break;
    }
    last = *m;
  }
  EXPECT_EQ(last.error().code(), wire::SLOW_CONSUMER)
      << last.ShortDebugString();
}

TEST(MemoryBrokerTest, DestroyingTheBrokerSaysGoodbyeAndClosesLinks) {
  auto broker = std::make_unique<MemoryBroker>();
  LinkClient c(broker->Connect("c"));
  c.Hello("c");
  broker.reset();
  absl::StatusOr<wire::ServerMessage> m = c.Receive();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->goodbye().code(), wire::SHUTTING_DOWN);
  EXPECT_TRUE(absl::IsUnavailable(c.Receive().status()));
  EXPECT_TRUE(absl::IsUnavailable(c.link().Write("x")));
}

// CPU time this process has used, all threads together.
absl::Duration ProcessCpuTime() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return absl::DurationFromTimeval(usage.ru_utime) +
         absl::DurationFromTimeval(usage.ru_stime);
}

TEST(MemoryBrokerTest, ShutdownWaitsOutAClientThatDoesNotReadWithoutSpinning) {
  BrokerOptions options;
  options.set_close_linger_ms(300);
  auto broker = std::make_unique<MemoryBroker>(options);
  LinkClient stuck(broker->Connect("stuck"));
  stuck.Hello("stuck");
  stuck.Subscribe("flood");
  LinkClient publisher(broker->Connect("pub"));
  publisher.Hello("pub");
  for (int i = 0; i < 16; ++i) {  // 1 MiB: far more than the link holds
    ASSERT_TRUE(publisher.Publish("flood", std::string(64 << 10, 'f')).ok());
  }
  ASSERT_TRUE(publisher.Publish("sync", "", /*ack=*/true).ok());
  ASSERT_TRUE(publisher.Receive().ok());

  const absl::Time start = absl::Now();
  const absl::Duration cpu_before = ProcessCpuTime();
  broker.reset();
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Seconds(3));
  EXPECT_LT(ProcessCpuTime() - cpu_before, took / 2) << "the broker spun";
}

TEST(MemoryBrokerTest, ConnectFromManyThreadsAtOnce) {
  MemoryBroker broker;
  std::vector<std::thread> threads;
  std::atomic<int> welcomed{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        LinkClient c(broker.Connect(absl::StrCat("t", t, "-", i)));
        c.Hello("x");
        ++welcomed;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(welcomed, 16 * 20);
}

}  // namespace
}  // namespace manifold
