// Sessions that outlive their links, end to end: a resumable subscriber's
// link is cut mid-stream (a reset, so what the kernel held for it is lost
// too) while a publisher keeps going; a new link resumes the session and
// receives every message exactly once, in order. A session left without a
// link past --session_timeout is gone, and a late resume says so.

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/framing.h"
#include "gtest/gtest.h"
#include "tests/e2e/testing/attacked_broker_test.h"

namespace manifold {
namespace {

using testing::AttackedBrokerTest;
using testing::WireClient;

class LinkCutResumeTest : public AttackedBrokerTest {};

// Says Hello asking for a resumable session, or resuming `token` after
// `received_frames` of the broker's frames; returns the Welcome.
absl::StatusOr<wire::Welcome> ResumableHello(WireClient& client,
                                             absl::string_view token = "",
                                             uint64_t received_frames = 0) {
  wire::ClientMessage m;
  wire::Hello* hello = m.mutable_hello();
  hello->set_protocol_version(wire::PROTOCOL_VERSION_1);
  hello->set_client_name("resumer");
  hello->set_resumable(true);
  hello->set_resume_token(std::string(token));
  hello->set_received_frames(received_frames);
  if (absl::Status s = client.Send(m); !s.ok()) return s;
  absl::StatusOr<wire::ServerMessage> welcome = client.Receive();
  if (!welcome.ok()) return welcome.status();
  if (!welcome->has_welcome()) {
    return absl::InternalError(
        absl::StrCat("expected a Welcome: ", welcome->ShortDebugString()));
  }
  return welcome->welcome();
}

// Reads frames, counting every one (the resume names a frame count), and
// appends delivered payloads until `payloads` holds `until` of them.
absl::Status ReadDeliveries(WireClient& client, size_t until, uint64_t& frames,
                            std::vector<std::string>& payloads) {
  while (payloads.size() < until) {
    absl::StatusOr<wire::ServerMessage> m = client.Receive();
    if (!m.ok()) return m.status();
    ++frames;
    if (m->has_deliver()) payloads.push_back(m->deliver().payload());
  }
  return absl::OkStatus();
}

TEST_P(LinkCutResumeTest, LinkCutMidStreamLosesNothingAfterResume) {
  ASSERT_NO_FATAL_FAILURE(StartBroker({}));
  absl::StatusOr<WireClient> first = WireClient::Connect(broker().tcp());
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<wire::Welcome> welcome = ResumableHello(*first);
  ASSERT_TRUE(welcome.ok()) << welcome.status();
  ASSERT_EQ(welcome->resume_token().size(), 40u);
  ASSERT_TRUE(first->Subscribe("stream/*").ok());
  uint64_t frames = 2;  // the Welcome and the Ack

  constexpr int kMessages = 6000;
  WireClient publisher = Connect("publisher");
  std::thread publishing([&publisher] {
    for (int i = 0; i < kMessages; ++i) {
      const std::string payload = absl::StrCat("m", i);
      // An acknowledged publish now and then keeps the publisher from
      // racing far ahead of the broker, so the cut lands mid-stream.
      if (i % 200 == 199) {
        EXPECT_TRUE(publisher.PublishAcked("stream/x", payload).ok());
      } else {
        EXPECT_TRUE(publisher.Publish("stream/x", payload).ok());
      }
    }
  });

  std::vector<std::string> payloads;
  ASSERT_TRUE(ReadDeliveries(*first, 1000, frames, payloads).ok());
  first->Reset();  // the link breaks; bytes in flight to it are lost

  absl::StatusOr<WireClient> second = WireClient::Connect(broker().tcp());
  ASSERT_TRUE(second.ok()) << second.status();
  absl::StatusOr<wire::Welcome> resumed =
      ResumableHello(*second, welcome->resume_token(), frames);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_TRUE(resumed->resumed()) << resumed->ShortDebugString();
  EXPECT_EQ(resumed->session_id(), welcome->session_id());
  EXPECT_EQ(resumed->received_frames(), 2u);  // Hello and Subscribe
  const absl::Status read =
      ReadDeliveries(*second, kMessages, frames, payloads);
  publishing.join();
  ASSERT_TRUE(read.ok()) << read << " after " << payloads.size();
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_EQ(payloads[i], absl::StrCat("m", i)) << "at " << i;
  }

  absl::StatusOr<wire::Statistics> stats = Statistics();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->sessions_resumed(), 1u);
  EXPECT_EQ(stats->detached_sessions(), 0u);
  ExpectHealthyTrafficFlows();
}

TEST_P(LinkCutResumeTest, SessionWithoutALinkExpiresAndALateResumeSaysSo) {
  ASSERT_NO_FATAL_FAILURE(StartBroker({"--session_timeout=300ms"}));
  absl::StatusOr<WireClient> first = WireClient::Connect(broker().tcp());
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<wire::Welcome> welcome = ResumableHello(*first);
  ASSERT_TRUE(welcome.ok()) << welcome.status();
  EXPECT_EQ(welcome->session_timeout_ms(), 300u);
  ASSERT_TRUE(first->Subscribe("gone/*").ok());
  first->Reset();

  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  absl::StatusOr<wire::Statistics> stats;
  do {
    stats = Statistics();
    ASSERT_TRUE(stats.ok()) << stats.status();
    if (stats->sessions_expired() > 0) break;
    absl::SleepFor(absl::Milliseconds(20));  // poll interval
  } while (absl::Now() < deadline);
  ASSERT_EQ(stats->sessions_expired(), 1u);
  EXPECT_EQ(stats->detached_sessions(), 0u);

  absl::StatusOr<WireClient> late = WireClient::Connect(broker().tcp());
  ASSERT_TRUE(late.ok()) << late.status();
  absl::StatusOr<wire::Welcome> w =
      ResumableHello(*late, welcome->resume_token(), 2);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_FALSE(w->resumed());
  EXPECT_EQ(w->resume_code(), wire::SESSION_EXPIRED);
  EXPECT_NE(w->resume_token(), welcome->resume_token());
  ExpectHealthyTrafficFlows();
}

INSTANTIATE_TEST_SUITE_P(Loops, LinkCutResumeTest,
                         ::testing::ValuesIn(testing::EventLoops()),
                         testing::LoopName);

}  // namespace
}  // namespace manifold
