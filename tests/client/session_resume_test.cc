// ClientSession's resume (BeginResume) against a real in-process Broker,
// over a link the test can break: bytes in flight either way are lost with
// the link, and the resumed session still sees everything exactly once.

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "broker/broker.h"
#include "client/errors.h"
#include "client/session.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class ClientSessionResumeTest : public ::testing::Test {
 protected:
  ClientSessionResumeTest() : broker_(Options()) {}

  static BrokerOptions Options() {
    BrokerOptions options;
    options.set_session_timeout_ms(1000);
    return options;
  }

  static ClientSessionOptions ResumableOptions() {
    ClientSessionOptions options;
    options.client_name = "resumer";
    options.resumable = true;
    return options;
  }

  void Link() {
    id_ = broker_.Accept(PeerInfo{"test:resumer"}, now_).id();
    linked_ = true;
  }

  // Moves bytes both ways until nothing moves. With `lose`, the bytes the
  // broker writes are taken from it but never reach the session, and the
  // session's bytes never reach the broker: a link that died silently.
  void Pump(bool lose = false) {
    for (int round = 0; round < 100; ++round) {
      bool moved = false;
      if (linked_) {
        const std::string out = session_.TakeOutput();
        if (!out.empty()) {
          moved = true;
          if (!lose) broker_.FindConnection(id_)->Receive(out, now_);
        }
      }
      broker_.Process(now_);
      std::vector<ConnectionId> changed;
      broker_.TakeChanged(changed);
      for (ConnectionId id : changed) {
        Connection* c = broker_.FindConnection(id);
        absl::string_view chunks[16];
        while (c != nullptr && c->PendingOutputBytes() > 0) {
          const size_t n = c->PendingOutput(absl::MakeSpan(chunks));
          size_t written = 0;
          for (size_t i = 0; i < n; ++i) {
            if (id == id_ && linked_ && !lose) session_.Receive(chunks[i]);
            written += chunks[i].size();
          }
          c->Consume(written);
          moved = true;
        }
      }
      while (std::optional<session::Event> e = session_.PollEvent()) {
        events_.push_back(std::move(*e));
      }
      if (!moved) return;
    }
    ADD_FAILURE() << "bytes kept moving after 100 rounds";
  }

  // The link breaks: the broker sees it close, the session resumes on a new
  // link.
  void BreakAndResume() {
    broker_.Close(id_, "connection reset by peer", now_);
    linked_ = false;
    ASSERT_TRUE(session_.BeginResume().ok());
    Link();
    Pump();
  }

  // A second, plain client publishing through raw frames.
  void PublishFromOther(absl::string_view topic, absl::string_view payload) {
    if (!publisher_.valid()) {
      publisher_ = broker_.Accept(PeerInfo{"test:publisher"}, now_).id();
      wire::ClientMessage hello;
      hello.mutable_hello()->set_protocol_version(1);
      broker_.FindConnection(publisher_)->Receive(EncodeFrame(hello), now_);
    }
    wire::ClientMessage m;
    m.mutable_publish()->set_topic(std::string(topic));
    m.mutable_publish()->set_payload(std::string(payload));
    broker_.FindConnection(publisher_)->Receive(EncodeFrame(m), now_);
  }

  template <typename T>
  std::vector<T> Take() {
    std::vector<T> found;
    for (session::Event& e : events_) {
      if (T* t = std::get_if<T>(&e)) found.push_back(std::move(*t));
    }
    events_.clear();
    return found;
  }

  std::vector<std::string> TakePayloads() {
    std::vector<std::string> payloads;
    for (const session::Delivered& d : Take<session::Delivered>()) {
      payloads.push_back(d.message.payload);
    }
    return payloads;
  }

  void OpenAndSubscribe() {
    Link();
    Pump();
    ASSERT_TRUE(session_.open());
    ASSERT_TRUE(session_.Subscribe("t/*", "", /*handle=*/7).ok());
    Pump();
    std::vector<session::OperationDone> done = Take<session::OperationDone>();
    ASSERT_EQ(done.size(), 1u);
    ASSERT_TRUE(done[0].status.ok()) << done[0].status;
  }

  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  Broker broker_;
  ClientSession session_{ResumableOptions()};
  ConnectionId id_;
  bool linked_ = false;
  ConnectionId publisher_;
  std::vector<session::Event> events_;
};

TEST_F(ClientSessionResumeTest, NothingInFlightIsLostOrRepeated) {
  ASSERT_NO_FATAL_FAILURE(OpenAndSubscribe());
  PublishFromOther("t/1", "a");
  Pump();
  EXPECT_THAT(TakePayloads(), ElementsAre("a"));

  // The link dies silently: the broker writes "b" and "c", the session
  // publishes with an ack; neither side's bytes arrive.
  PublishFromOther("t/1", "b");
  PublishFromOther("t/1", "c");
  PublishOptions acked;
  acked.ack = true;
  ASSERT_TRUE(session_.Publish("t/2", "mine", acked).ok());
  Pump(/*lose=*/true);
  EXPECT_TRUE(events_.empty());
  ASSERT_NO_FATAL_FAILURE(BreakAndResume());
  PublishFromOther("t/1", "d");
  Pump();

  std::vector<session::Event> events = std::move(events_);
  events_.clear();
  ASSERT_FALSE(events.empty());
  const auto* resumed = std::get_if<session::Resumed>(&events[0]);
  ASSERT_NE(resumed, nullptr);
  EXPECT_TRUE(resumed->resumed);
  EXPECT_EQ(resumed->frames_lost, 0u);
  std::vector<std::string> payloads;
  int acks = 0;
  for (const session::Event& e : events) {
    if (const auto* d = std::get_if<session::Delivered>(&e)) {
      EXPECT_EQ(d->handle, 7u);
      payloads.push_back(d->message.payload);
    }
    if (const auto* done = std::get_if<session::OperationDone>(&e)) {
      EXPECT_TRUE(done->status.ok()) << done->status;
      EXPECT_EQ(done->delivered, 1u);  // its own subscription, echo on
      ++acks;
    }
  }
  EXPECT_THAT(payloads, ElementsAre("b", "c", "mine", "d"));
  EXPECT_EQ(acks, 1);
  EXPECT_EQ(broker_.statistics().sessions_resumed, 1u);
}

TEST_F(ClientSessionResumeTest, OperationsSentWhileResumingGoAfterTheAnswer) {
  ASSERT_NO_FATAL_FAILURE(OpenAndSubscribe());
  broker_.Close(id_, "connection reset by peer", now_);
  linked_ = false;
  ASSERT_TRUE(session_.BeginResume().ok());
  EXPECT_TRUE(session_.resuming());
  ASSERT_TRUE(session_.Publish("t/held", "later").ok());
  Link();
  Pump();
  EXPECT_FALSE(session_.resuming());
  EXPECT_THAT(TakePayloads(), ElementsAre("later"));
}

TEST_F(ClientSessionResumeTest, AnExpiredSessionStartsOverAndSaysWhy) {
  ASSERT_NO_FATAL_FAILURE(OpenAndSubscribe());
  broker_.Close(id_, "connection reset by peer", now_);
  linked_ = false;
  now_ += absl::Milliseconds(1000);
  broker_.Tick(now_);
  ASSERT_TRUE(session_.BeginResume().ok());
  Link();
  Pump();
  std::vector<session::Resumed> resumed = Take<session::Resumed>();
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_FALSE(resumed[0].resumed);
  EXPECT_THAT(resumed[0].reason.message(), HasSubstr("session expired"));
  // A new session: it subscribes again and goes on.
  ASSERT_TRUE(session_.Subscribe("t/*", "", 8).ok());
  Pump();
  PublishFromOther("t/1", "fresh");
  Pump();
  EXPECT_THAT(TakePayloads(), ElementsAre("fresh"));
  // And it can resume again later.
  ASSERT_NO_FATAL_FAILURE(BreakAndResume());
  std::vector<session::Resumed> again = Take<session::Resumed>();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(again[0].resumed);
}

TEST_F(ClientSessionResumeTest, ASessionNotOpenedResumableCannotResume) {
  ClientSession plain{ClientSessionOptions()};
  EXPECT_EQ(plain.BeginResume().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace manifold
