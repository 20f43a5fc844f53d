// Sessions without a link of their own (SessionOp): opened, polled and closed
// by operations from links, as a long-polling front end (Bayeux) needs. A
// line codec written here turns test input into those operations and records
// what the broker hands to EncodePoll(); the broker is what is tested.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "broker/broker.h"
#include "broker/permissions.h"
#include "broker/protocol_codec.h"
#include "broker/sys_topics.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/broker_harness.h"

namespace manifold::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

// One EncodePoll() call, as the link's codec saw it.
struct PollRecord {
  uint64_t op_id = 0;
  bool timed_out = false;
  wire::Code ended = wire::OK;
  std::string ended_message;
  std::string output;
};

// What the codecs of one test saw, shared by the link codecs and the session
// codecs they open.
struct Recorder {
  std::vector<PollRecord> polls;
  // SharedMessage::id() of every delivery encoded for a session.
  std::vector<uint64_t> message_ids;
  // Error::message of every error encoded for a link or a session.
  std::vector<std::string> errors;
  // EncodePoll() returns this: true keeps polling (a stream).
  bool streaming = false;
};

std::string Contents(const OutboundBuffer& buffer) {
  std::vector<absl::string_view> chunks(buffer.size() + 1);
  const size_t n = buffer.Peek(absl::MakeSpan(chunks));
  std::string out;
  for (size_t k = 0; k < n; ++k) absl::StrAppend(&out, chunks[k]);
  return out;
}

// A line protocol. In, one operation per line ("-" stands for no token or
// no binding):
//   hello
//   hellofor TOKEN                    a Hello acting for a session
//   open BINDING NAME                 SessionOp::kOpen
//   poll TOKEN TIMEOUT_MS [BINDING]   SessionOp::kPoll
//   close TOKEN [BINDING]             SessionOp::kClose
//   sub TOKEN PATTERN [BINDING]       Subscribe for the session
//   pub TOKEN TOPIC PAYLOAD [BINDING] publish for the session
//   req TOKEN TOPIC PAYLOAD           Request for the session
// Out: "welcome TOKEN BINDING", "ack OP_ID", "error OP_ID CODE",
// "goodbye CODE", "response OP_ID STATUS PAYLOAD", "other";
// deliveries as "msg TOPIC PAYLOAD"; poll answers as "poll OP_ID" followed
// by the session's output.
class LinesCodec final : public ProtocolCodec {
 public:
  explicit LinesCodec(Recorder* recorder) : recorder_(recorder) {}

  absl::string_view name() const override { return "lines"; }

  absl::StatusOr<size_t> Decode(absl::string_view input, size_t max_frame_bytes,
                                Operation& op) override {
    const size_t end = input.find('\n');
    if (end == absl::string_view::npos) return 0;
    const std::vector<absl::string_view> words =
        absl::StrSplit(input.substr(0, end), ' ');
    auto word = [&](size_t k) {
      return k < words.size() && words[k] != "-" ? std::string(words[k])
                                                 : std::string();
    };
    op.kind = Operation::Kind::kMessage;
    op.message.Clear();
    const absl::string_view command = words[0];
    if (command == "hello" || command == "hellofor") {
      op.message.mutable_hello()->set_protocol_version(1);
      op.session.token = word(1);
    } else if (command == "open") {
      op.kind = Operation::Kind::kSession;
      op.session.kind = SessionOp::Kind::kOpen;
      op.session.op_id = ++last_op_id_;
      op.session.binding = word(1);
      op.session.client_name = word(2);
      op.session.headers = {{"user-agent", "lines-test"}};
      op.session.codec = std::make_unique<LinesCodec>(recorder_);
    } else if (command == "poll") {
      int64_t ms = 0;
      if (words.size() < 3 || !absl::SimpleAtoi(words[2], &ms)) {
        return ProtocolError(wire::MALFORMED_MESSAGE, "poll TOKEN TIMEOUT_MS");
      }
      op.kind = Operation::Kind::kSession;
      op.session.kind = SessionOp::Kind::kPoll;
      op.session.op_id = ++last_op_id_;
      op.session.token = word(1);
      op.session.timeout = absl::Milliseconds(ms);
      op.session.binding = word(3);
    } else if (command == "close") {
      op.kind = Operation::Kind::kSession;
      op.session.kind = SessionOp::Kind::kClose;
      op.session.op_id = ++last_op_id_;
      op.session.token = word(1);
      op.session.binding = word(2);
    } else if (command == "sub") {
      op.message.mutable_subscribe()->set_op_id(++last_op_id_);
      op.message.mutable_subscribe()->set_pattern(word(2));
      op.session.token = word(1);
      op.session.binding = word(3);
    } else if (command == "req" && words.size() >= 4) {
      wire::Request* request = op.message.mutable_request();
      request->set_op_id(++last_op_id_);
      request->set_topic(std::string(words[2]));
      request->set_payload(std::string(words[3]));
      op.session.token = word(1);
    } else if (command == "pub" && words.size() >= 4) {
      op.kind = Operation::Kind::kPublish;
      op.publish.Reset();
      op.publish.op_id = ++last_op_id_;
      op.publish.ack = true;
      op.publish.topic = words[2];
      op.publish.payload = words[3];
      op.session.token = word(1);
      op.session.binding = word(4);
    } else {
      return ProtocolError(wire::MALFORMED_MESSAGE, "unknown line");
    }
    return end + 1;
  }

  void Encode(const wire::ServerMessage& message,
              OutboundBuffer& out) override {
    if (message.has_welcome()) {
      const wire::Welcome& w = message.welcome();
      out.Append(absl::StrCat(
          "welcome ", w.resume_token().empty() ? "-" : w.resume_token(), " ",
          w.session_binding().empty() ? "-" : w.session_binding(), "\n"));
    } else if (message.has_ack()) {
      out.Append(absl::StrCat("ack ", message.ack().op_id(), "\n"));
    } else if (message.has_error()) {
      recorder_->errors.push_back(message.error().message());
      out.Append(absl::StrCat("error ", message.error().op_id(), " ",
                              wire::Code_Name(message.error().code()), "\n"));
    } else if (message.has_response()) {
      const wire::Response& r = message.response();
      out.Append(absl::StrCat("response ", r.op_id(), " ",
                              wire::RequestStatus_Name(r.status()), " ",
                              r.payload(), "\n"));
    } else if (message.has_goodbye()) {
      out.Append(absl::StrCat("goodbye ",
                              wire::Code_Name(message.goodbye().code()), "\n"));
    } else {
      out.Append("other\n");
    }
  }

  void EncodeDelivery(SharedMessage& message, SubscriptionId subscription,
                      OutboundBuffer& out) override {
    recorder_->message_ids.push_back(message.id());
    out.Append(absl::StrCat("msg ", message.publish().topic, " ",
                            message.publish().payload, "\n"));
  }

  bool EncodePoll(const PollUpdate& update, OutboundBuffer& out) override {
    PollRecord record;
    record.op_id = update.op_id;
    record.timed_out = update.timed_out;
    record.ended = WireCode(update.ended);
    record.ended_message = std::string(update.ended.message());
    record.output = Contents(update.output);
    out.Append(absl::StrCat("poll ", update.op_id, "\n", record.output));
    recorder_->polls.push_back(std::move(record));
    return recorder_->streaming;
  }

 private:
  Recorder* recorder_;
  uint64_t last_op_id_ = 0;
};

// A session as OpenSession() answered it.
struct Opened {
  std::string token;
  std::string binding;
};

class LinkLessSessionsTest : public ::testing::Test {
 protected:
  explicit LinkLessSessionsTest(BrokerOptions options = Options())
      : h_(std::move(options)) {}

  static BrokerOptions Options() {
    BrokerOptions options;
    options.set_statistics_interval_ms(0);
    options.set_session_timeout_ms(10'000);
    return options;
  }

  // A link speaking LinesCodec, past its Hello.
  ConnectionId Link() {
    Connection& c = h_.broker().Accept(PeerInfo{"lines"}, h_.now(),
                                       std::make_unique<LinesCodec>(&rec_));
    const ConnectionId id = c.id();
    EXPECT_EQ(Send(id, "hello"), "welcome - -\n");
    return id;
  }
  // Sends `line` on link `id`; returns what the link was sent since.
  std::string Send(ConnectionId id, absl::string_view line) {
    Connection* c = h_.broker().FindConnection(id);
    if (c == nullptr) return "<gone>";
    c->Receive(absl::StrCat(line, "\n"), h_.now());
    h_.Pump();
    return Take(id);
  }
  // Everything `id` was sent and not yet taken.
  std::string Take(ConnectionId id) {
    Connection* c = h_.broker().FindConnection(id);
    if (c == nullptr) return "<gone>";
    const std::string out = c->CopyPendingOutput();
    c->Consume(out.size());
    return out;
  }
  // Opens a session from `link`.
  Opened Open(ConnectionId link, absl::string_view binding = "-") {
    const std::string answer =
        Send(link, absl::StrCat("open ", binding, " bayeux-client"));
    const std::vector<std::string> words =
        absl::StrSplit(absl::StripSuffix(answer, "\n"), ' ');
    EXPECT_EQ(words.size(), 3u) << answer;
    if (words.size() != 3 || words[0] != "welcome") return Opened{};
    return Opened{words[1], words[2]};
  }
  // Events of one kind the broker emitted since the last call.
  std::vector<wire::BrokerEvent> Events(wire::BrokerEvent::KindCase kind) {
    std::vector<wire::BrokerEvent> all = h_.TakeEvents();
    std::vector<wire::BrokerEvent> out;
    for (auto& event : all) {
      if (event.kind_case() == kind) out.push_back(std::move(event));
    }
    return out;
  }

  Recorder rec_;
  BrokerHarness h_;
};

// --- Opening --------------------------------------------------------------

TEST_F(LinkLessSessionsTest, OpenAnswersWelcomeWithTokenAndMadeBinding) {
  const ConnectionId link = Link();
  h_.TakeEvents();
  const Opened a = Open(link);
  const Opened b = Open(link);
  EXPECT_FALSE(a.token.empty());
  EXPECT_NE(a.binding, "-");
  EXPECT_FALSE(a.binding.empty());
  EXPECT_NE(a.binding, a.token);
  EXPECT_NE(a.token, b.token);
  EXPECT_NE(a.binding, b.binding);

  std::vector<wire::BrokerEvent> added =
      Events(wire::BrokerEvent::kSessionAdded);
  ASSERT_EQ(added.size(), 2u);
  const wire::SessionAdded& event = added[0].session_added();
  EXPECT_EQ(event.client_name(), "bayeux-client");
  EXPECT_EQ(event.protocol(), "lines");
  ASSERT_EQ(event.headers_size(), 1);
  EXPECT_EQ(event.headers(0).key(), "user-agent");
  EXPECT_EQ(event.headers(0).value(), "lines-test");
  EXPECT_NE(added[0].session_added().session_id(),
            added[1].session_added().session_id());
}

TEST_F(LinkLessSessionsTest, OpenKeepsTheBindingTheClientBrings) {
  const ConnectionId link = Link();
  const Opened a = Open(link, "cookie-1");
  const Opened b = Open(link, "cookie-1");
  EXPECT_EQ(a.binding, "cookie-1");
  EXPECT_EQ(b.binding, "cookie-1");
  EXPECT_NE(a.token, b.token);
}

TEST_F(LinkLessSessionsTest, SessionOperationBeforeHelloClosesTheLink) {
  Connection& c = h_.broker().Accept(PeerInfo{"lines"}, h_.now(),
                                     std::make_unique<LinesCodec>(&rec_));
  const ConnectionId id = c.id();
  EXPECT_EQ(Send(id, "open - x"), "error 0 HANDSHAKE_REQUIRED\n");
  EXPECT_EQ(h_.broker().statistics().protocol_errors, 1u);
}

// --- Acting for a session ---------------------------------------------------

TEST_F(LinkLessSessionsTest, SubscribeForSessionIsAnsweredOnTheLink) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  EXPECT_EQ(Send(link, absl::StrCat("sub ", s.token, " news/*")), "ack 2\n");

  TestClient& pub = h_.Connect("pub");
  pub.Publish("news/1", "hello");
  // The delivery waits in the session, not on the link.
  EXPECT_EQ(Take(link), "");
  EXPECT_EQ(Send(link, absl::StrCat("poll ", s.token, " 0")),
            "poll 3\nmsg news/1 hello\n");
}

TEST_F(LinkLessSessionsTest, PublishForSessionReachesSubscribersAndItsEcho) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  EXPECT_EQ(Send(link, absl::StrCat("sub ", s.token, " chat")), "ack 2\n");
  TestClient& other = h_.Connect("other");
  other.Subscribe("chat");

  EXPECT_EQ(Send(link, absl::StrCat("pub ", s.token, " chat hi")), "ack 3\n");
  wire::ServerMessage m = other.Next();
  ASSERT_TRUE(m.has_deliver()) << m.DebugString();
  EXPECT_EQ(m.deliver().payload(), "hi");
  EXPECT_EQ(Send(link, absl::StrCat("poll ", s.token, " 0")),
            "poll 4\nmsg chat hi\n");
}

TEST_F(LinkLessSessionsTest, UnknownTokenIsSessionUnknownForEveryOperation) {
  const ConnectionId link = Link();
  Open(link);  // op 1
  EXPECT_EQ(Send(link, "sub nope a"), "error 2 SESSION_UNKNOWN\n");
  EXPECT_EQ(Send(link, "pub nope a x"), "error 3 SESSION_UNKNOWN\n");
  EXPECT_EQ(Send(link, "poll nope 1000"), "error 4 SESSION_UNKNOWN\n");
  EXPECT_EQ(Send(link, "close nope"), "error 5 SESSION_UNKNOWN\n");
  EXPECT_THAT(rec_.polls, IsEmpty());
  // The link lives on.
  EXPECT_NE(h_.broker().FindConnection(link), nullptr);
  EXPECT_EQ(Send(link, "sub nope a"), "error 6 SESSION_UNKNOWN\n");
  EXPECT_THAT(rec_.errors.back(), HasSubstr("no session nope"));
}

TEST_F(LinkLessSessionsTest, BindingIsCheckedWhenPresented) {
  const ConnectionId link = Link();
  const Opened s = Open(link, "cookie-1");
  EXPECT_EQ(Send(link, absl::StrCat("sub ", s.token, " a cookie-2")),
            "error 2 SESSION_UNKNOWN\n");
  EXPECT_EQ(Send(link, absl::StrCat("pub ", s.token, " a x cookie-2")),
            "error 3 SESSION_UNKNOWN\n");
  EXPECT_EQ(Send(link, absl::StrCat("poll ", s.token, " 0 cookie-2")),
            "error 4 SESSION_UNKNOWN\n");
  EXPECT_EQ(Send(link, absl::StrCat("close ", s.token, " cookie-2")),
            "error 5 SESSION_UNKNOWN\n");
  EXPECT_THAT(rec_.errors.back(), HasSubstr("belongs to another client"));
  // The right binding, or none, is accepted.
  EXPECT_EQ(Send(link, absl::StrCat("sub ", s.token, " a cookie-1")),
            "ack 6\n");
  EXPECT_EQ(Send(link, absl::StrCat("sub ", s.token, " b")), "ack 7\n");
}

// --- Polling ----------------------------------------------------------------

TEST_F(LinkLessSessionsTest, PollHandsQueuedOutputAtOnce) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  Send(link, absl::StrCat("sub ", s.token, " t"));
  TestClient& pub = h_.Connect("pub");
  pub.Publish("t", "1");
  pub.Publish("t", "2");

  EXPECT_EQ(Send(link, absl::StrCat("poll ", s.token, " 30000")),
            "poll 3\nmsg t 1\nmsg t 2\n");
  ASSERT_EQ(rec_.polls.size(), 1u);
  EXPECT_EQ(rec_.polls[0].op_id, 3u);
  EXPECT_FALSE(rec_.polls[0].timed_out);
  EXPECT_EQ(rec_.polls[0].ended, wire::OK);
  // The HTTP-like codec ended the poll: later output waits for the next one.
  pub.Publish("t", "3");
  EXPECT_EQ(Take(link), "");
  EXPECT_EQ(rec_.polls.size(), 1u);
}

TEST_F(LinkLessSessionsTest, PollWaitsForOutput) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  Send(link, absl::StrCat("sub ", s.token, " t"));
  EXPECT_EQ(Send(link, absl::StrCat("poll ", s.token, " 30000")), "");
  h_.Advance(absl::Seconds(5));
  EXPECT_EQ(Take(link), "");
  EXPECT_THAT(rec_.polls, IsEmpty());

  TestClient& pub = h_.Connect("pub");
  pub.Publish("t", "late");
  EXPECT_EQ(Take(link), "poll 3\nmsg t late\n");
  ASSERT_EQ(rec_.polls.size(), 1u);
  EXPECT_FALSE(rec_.polls[0].timed_out);
}

TEST_F(LinkLessSessionsTest, PollEndsTimedOutAfterItsTimeout) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  EXPECT_EQ(Send(link, absl::StrCat("poll ", s.token, " 5000")), "");
  h_.Advance(absl::Milliseconds(4999));
  EXPECT_THAT(rec_.polls, IsEmpty());
  h_.Advance(absl::Milliseconds(1));
  ASSERT_EQ(rec_.polls.size(), 1u);
  EXPECT_EQ(rec_.polls[0].op_id, 2u);
  EXPECT_TRUE(rec_.polls[0].timed_out);
  EXPECT_EQ(rec_.polls[0].ended, wire::OK);
  EXPECT_EQ(rec_.polls[0].output, "");
  EXPECT_EQ(Take(link), "poll 2\n");
}

TEST_F(LinkLessSessionsTest, PollWithZeroTimeoutAnswersAtOnce) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  EXPECT_EQ(Send(link, absl::StrCat("poll ", s.token, " 0")), "poll 2\n");
  ASSERT_EQ(rec_.polls.size(), 1u);
  EXPECT_TRUE(rec_.polls[0].timed_out);
}

class LinkLessSessionPollCapTest : public LinkLessSessionsTest {
 protected:
  static BrokerOptions Capped() {
    BrokerOptions options = Options();
    options.set_max_request_timeout_ms(2000);
    return options;
  }
  LinkLessSessionPollCapTest() : LinkLessSessionsTest(Capped()) {}
};

TEST_F(LinkLessSessionPollCapTest, PollTimeoutIsCappedByMaxRequestTimeout) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  EXPECT_EQ(Send(link, absl::StrCat("poll ", s.token, " 60000")), "");
  h_.Advance(absl::Milliseconds(1999));
  EXPECT_THAT(rec_.polls, IsEmpty());
  h_.Advance(absl::Milliseconds(1));
  ASSERT_EQ(rec_.polls.size(), 1u);
  EXPECT_TRUE(rec_.polls[0].timed_out);
}

TEST_F(LinkLessSessionsTest, NewerPollEndsOlderOne) {
  const ConnectionId first = Link();
  const ConnectionId second = Link();
  const Opened s = Open(first);
  Send(first, absl::StrCat("sub ", s.token, " t"));
  EXPECT_EQ(Send(first, absl::StrCat("poll ", s.token, " 30000")), "");
  // The second link's poll (its op 1) takes over.
  EXPECT_EQ(Send(second, absl::StrCat("poll ", s.token, " 30000")), "");
  EXPECT_EQ(Take(first), "poll 3\n");
  ASSERT_EQ(rec_.polls.size(), 1u);
  EXPECT_EQ(rec_.polls[0].op_id, 3u);
  EXPECT_TRUE(rec_.polls[0].timed_out);

  TestClient& pub = h_.Connect("pub");
  pub.Publish("t", "x");
  EXPECT_EQ(Take(first), "");
  EXPECT_EQ(Take(second), "poll 1\nmsg t x\n");
  // The older poll's timer is gone with it: nothing fires later.
  ASSERT_EQ(rec_.polls.size(), 2u);
  h_.Advance(absl::Seconds(31));
  EXPECT_EQ(rec_.polls.size(), 2u);
}

TEST_F(LinkLessSessionsTest, LinkPollingAnotherSessionEndsItsFirstPoll) {
  const ConnectionId link = Link();
  const Opened a = Open(link);
  const Opened b = Open(link);
  EXPECT_EQ(Send(link, absl::StrCat("poll ", a.token, " 30000")), "");
  EXPECT_EQ(Send(link, absl::StrCat("poll ", b.token, " 30000")), "poll 3\n");
  ASSERT_EQ(rec_.polls.size(), 1u);
  EXPECT_EQ(rec_.polls[0].op_id, 3u);
  EXPECT_TRUE(rec_.polls[0].timed_out);
}

TEST_F(LinkLessSessionsTest, StreamingPollGoesOnAcrossUpdates) {
  rec_.streaming = true;
  const ConnectionId link = Link();
  const Opened s = Open(link);
  Send(link, absl::StrCat("sub ", s.token, " t"));
  Send(link, absl::StrCat("poll ", s.token, " 30000"));
  TestClient& pub = h_.Connect("pub");
  pub.Publish("t", "1");
  pub.Publish("t", "2");
  EXPECT_EQ(Take(link), "poll 3\nmsg t 1\npoll 3\nmsg t 2\n");
  ASSERT_EQ(rec_.polls.size(), 2u);
  EXPECT_FALSE(rec_.polls[1].timed_out);
  h_.Advance(absl::Seconds(30));
  ASSERT_EQ(rec_.polls.size(), 3u);
  EXPECT_TRUE(rec_.polls[2].timed_out);
}

TEST_F(LinkLessSessionsTest, PollersLinkClosingStartsTheExpiryClock) {
  const ConnectionId poller = Link();
  const Opened s = Open(poller);
  Send(poller, absl::StrCat("poll ", s.token, " 30000"));
  h_.Advance(absl::Seconds(20));  // a pending poll holds off expiry
  h_.broker().Close(poller, "gone", h_.now());
  h_.Pump();
  h_.TakeEvents();
  EXPECT_THAT(rec_.polls, IsEmpty());
  // From the link's end the session waits session_timeout for a poll.
  h_.Advance(absl::Milliseconds(9'999));
  EXPECT_THAT(Events(wire::BrokerEvent::kSessionRemoved), IsEmpty());
  h_.Advance(absl::Milliseconds(1));
  std::vector<wire::BrokerEvent> removed =
      Events(wire::BrokerEvent::kSessionRemoved);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].session_removed().code(), wire::SESSION_EXPIRED);
  EXPECT_THAT(rec_.polls, IsEmpty());
}

TEST_F(LinkLessSessionsTest, HelloCannotActForASession) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  EXPECT_EQ(Send(link, absl::StrCat("hellofor ", s.token)),
            "error 0 HANDSHAKE_REQUIRED\n");
  // Neither the link nor the session is harmed.
  EXPECT_EQ(Send(link, absl::StrCat("sub ", s.token, " t")), "ack 2\n");
}

// --- Ending -----------------------------------------------------------------

TEST_F(LinkLessSessionsTest, CloseAcksAndEmitsSessionRemoved) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  h_.TakeEvents();
  EXPECT_EQ(Send(link, absl::StrCat("close ", s.token)), "ack 2\n");
  std::vector<wire::BrokerEvent> removed =
      Events(wire::BrokerEvent::kSessionRemoved);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].session_removed().client_name(), "bayeux-client");
  EXPECT_EQ(removed[0].session_removed().code(), wire::CONNECTION_CLOSED);

  EXPECT_EQ(Send(link, absl::StrCat("poll ", s.token, " 0")),
            "error 3 SESSION_UNKNOWN\n");
  ASSERT_FALSE(rec_.errors.empty());
  EXPECT_THAT(rec_.errors.back(), HasSubstr("ended: session closed"));
  EXPECT_EQ(Send(link, absl::StrCat("close ", s.token)),
            "error 4 SESSION_UNKNOWN\n");
  EXPECT_THAT(rec_.polls, IsEmpty());
}

TEST_F(LinkLessSessionsTest, CloseEndsAPendingPollWithTheEndedStatus) {
  const ConnectionId poller = Link();
  const ConnectionId closer = Link();
  const Opened s = Open(poller);
  Send(poller, absl::StrCat("poll ", s.token, " 30000"));
  EXPECT_EQ(Send(closer, absl::StrCat("close ", s.token)), "ack 1\n");
  ASSERT_EQ(rec_.polls.size(), 1u);
  EXPECT_EQ(rec_.polls[0].op_id, 2u);
  EXPECT_EQ(rec_.polls[0].ended, wire::CONNECTION_CLOSED);
  // The session's codec said why in its last output.
  EXPECT_EQ(Take(poller), "poll 2\nerror 0 CONNECTION_CLOSED\n");
}

TEST_F(LinkLessSessionsTest, SessionExpiresAfterSessionTimeoutWithoutPoll) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  h_.TakeEvents();
  h_.Advance(absl::Milliseconds(9'999));
  EXPECT_THAT(Events(wire::BrokerEvent::kSessionRemoved), IsEmpty());
  h_.Advance(absl::Milliseconds(1));
  std::vector<wire::BrokerEvent> removed =
      Events(wire::BrokerEvent::kSessionRemoved);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].session_removed().code(), wire::SESSION_EXPIRED);
  EXPECT_EQ(h_.broker().statistics().sessions_expired, 1u);
  EXPECT_EQ(Send(link, absl::StrCat("poll ", s.token, " 0")),
            "error 2 SESSION_UNKNOWN\n");
  ASSERT_FALSE(rec_.errors.empty());
  EXPECT_THAT(rec_.errors.back(), HasSubstr("ended: session expired"));
}

TEST_F(LinkLessSessionsTest, PendingPollKeepsSessionAliveAndItsEndRestarts) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  h_.TakeEvents();
  Send(link, absl::StrCat("poll ", s.token, " 25000"));
  h_.Advance(absl::Seconds(25));  // longer than session_timeout
  ASSERT_EQ(rec_.polls.size(), 1u);
  EXPECT_TRUE(rec_.polls[0].timed_out);
  EXPECT_THAT(Events(wire::BrokerEvent::kSessionRemoved), IsEmpty());
  // From the poll's end, the session waits session_timeout for the next.
  h_.Advance(absl::Milliseconds(9'999));
  EXPECT_THAT(Events(wire::BrokerEvent::kSessionRemoved), IsEmpty());
  h_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(Events(wire::BrokerEvent::kSessionRemoved).size(), 1u);
}

TEST_F(LinkLessSessionsTest, ShutdownAnswersPendingPollsBeforeGoodbye) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  Send(link, absl::StrCat("poll ", s.token, " 30000"));
  h_.broker().Shutdown(h_.now());
  h_.Pump();
  ASSERT_EQ(rec_.polls.size(), 1u);
  EXPECT_EQ(rec_.polls[0].ended, wire::SHUTTING_DOWN);
  // The session's last word, then the link's own.
  EXPECT_EQ(Take(link),
            "poll 2\ngoodbye SHUTTING_DOWN\ngoodbye SHUTTING_DOWN\n");
}

// Native resumable sessions and polled sessions share the token table but
// not their operations.
TEST_F(LinkLessSessionsTest, NativeHelloCannotResumeAPolledSession) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  TestClient& native = h_.Connect("native", /*hello=*/false);
  wire::ClientMessage hello;
  hello.mutable_hello()->set_protocol_version(1);
  hello.mutable_hello()->set_resume_token(s.token);
  native.Send(hello);
  wire::ServerMessage welcome = native.Next();
  ASSERT_TRUE(welcome.has_welcome()) << welcome.DebugString();
  EXPECT_FALSE(welcome.welcome().resumed());
  EXPECT_EQ(welcome.welcome().resume_code(), wire::SESSION_UNKNOWN);
  // The polled session is untouched.
  EXPECT_EQ(Send(link, absl::StrCat("poll ", s.token, " 0")), "poll 2\n");
}

TEST_F(LinkLessSessionsTest, NativeSessionTokenCannotBePolled) {
  const ConnectionId link = Link();
  TestClient& native = h_.Connect("native", /*hello=*/false);
  wire::ClientMessage hello;
  hello.mutable_hello()->set_protocol_version(1);
  hello.mutable_hello()->set_resumable(true);
  native.Send(hello);
  wire::ServerMessage welcome = native.Next();
  ASSERT_TRUE(welcome.has_welcome()) << welcome.DebugString();
  const std::string token = welcome.welcome().resume_token();
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(Send(link, absl::StrCat("poll ", token, " 0")),
            "error 1 SESSION_UNKNOWN\n");
  EXPECT_EQ(Send(link, absl::StrCat("sub ", token, " t")),
            "error 2 SESSION_UNKNOWN\n");
  EXPECT_EQ(Send(link, absl::StrCat("close ", token)),
            "error 3 SESSION_UNKNOWN\n");
  EXPECT_FALSE(native.closed());
}

// --- Routing
// ------------------------------------------------------------------

TEST_F(LinkLessSessionsTest, MessageIdTellsRoutedMessagesApart) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  // Two subscriptions matching the same topic: each message arrives twice.
  Send(link, absl::StrCat("sub ", s.token, " a/*"));
  Send(link, absl::StrCat("sub ", s.token, " a/b"));
  TestClient& pub = h_.Connect("pub");
  pub.Publish("a/b", "1");
  pub.Publish("a/b", "2");
  ASSERT_EQ(rec_.message_ids.size(), 4u);
  EXPECT_NE(rec_.message_ids[0], 0u);
  EXPECT_EQ(rec_.message_ids[0], rec_.message_ids[1]);
  EXPECT_EQ(rec_.message_ids[2], rec_.message_ids[3]);
  EXPECT_NE(rec_.message_ids[0], rec_.message_ids[2]);
  // Publishes made for the session are routed messages too.
  Send(link, absl::StrCat("pub ", s.token, " a/b 3"));
  ASSERT_EQ(rec_.message_ids.size(), 6u);
  EXPECT_NE(rec_.message_ids[4], rec_.message_ids[2]);
  EXPECT_NE(rec_.message_ids[4], 0u);
}

TEST_F(LinkLessSessionsTest, EmbedderPublishAnswersAPendingPoll) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  Send(link, absl::StrCat("sub ", s.token, " t"));
  Send(link, absl::StrCat("poll ", s.token, " 30000"));
  absl::StatusOr<uint64_t> delivered =
      h_.broker().Publish("t", "from-embedder", h_.now());
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(*delivered, 1u);
  EXPECT_EQ(Take(link), "poll 3\nmsg t from-embedder\n");
}

TEST_F(LinkLessSessionsTest, RequestForSessionIsAnsweredOnTheLinkThatMadeIt) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  TestClient& server = h_.Connect("server");
  server.Serve("svc");
  EXPECT_EQ(Send(link, absl::StrCat("req ", s.token, " svc question")), "");
  wire::ServerMessage served = server.Next();
  ASSERT_TRUE(served.has_request()) << served.DebugString();
  EXPECT_EQ(served.request().payload(), "question");
  server.Respond(served.request().request_id(), "answer");
  // The link that asked waits for the answer (an HTTP exchange, a
  // WebSocket); the session's polls do not carry it.
  EXPECT_EQ(Take(link), "response 2 REQUEST_OK answer\n");
  EXPECT_EQ(Send(link, absl::StrCat("poll ", s.token, " 0")), "poll 3\n");
  // Without a server, the answer comes at once, the same way.
  EXPECT_EQ(Send(link, absl::StrCat("req ", s.token, " nobody x")),
            "response 4 NO_SERVER \n");
}

TEST_F(LinkLessSessionsTest, ARequestWhoseLinkClosesIsForgotten) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  TestClient& server = h_.Connect("server");
  server.Serve("svc");
  const ConnectionId asker = Link();
  Send(asker, absl::StrCat("req ", s.token, " svc question"));
  wire::ServerMessage served = server.Next();
  ASSERT_TRUE(served.has_request());
  h_.broker().Close(asker, "gone", h_.now());
  h_.Pump();
  server.Respond(served.request().request_id(), "late");
  wire::ServerMessage late = server.Next();
  EXPECT_EQ(late.error().code(), wire::UNKNOWN_REQUEST) << late.DebugString();
  EXPECT_EQ(Send(link, absl::StrCat("poll ", s.token, " 0")), "poll 2\n");
}

// --- Bounds -----------------------------------------------------------------

// The session's queue is an output buffer like a connection's: bounded by
// max_outbound_bytes, with the slow-consumer policy acting at the bound.
BrokerOptions Bounded(BrokerOptions::SlowConsumerPolicy policy) {
  BrokerOptions options;
  options.set_statistics_interval_ms(0);
  options.set_session_timeout_ms(10'000);
  options.set_max_outbound_bytes(64);
  options.set_slow_consumer_policy(policy);
  options.set_max_sessions(2);
  return options;
}

class LinkLessSessionDisconnectPolicyTest : public LinkLessSessionsTest {
 protected:
  LinkLessSessionDisconnectPolicyTest()
      : LinkLessSessionsTest(Bounded(BrokerOptions::DISCONNECT)) {}
};
class LinkLessSessionDropPolicyTest : public LinkLessSessionsTest {
 protected:
  LinkLessSessionDropPolicyTest()
      : LinkLessSessionsTest(Bounded(BrokerOptions::DROP)) {}
};
class LinkLessSessionBackpressurePolicyTest : public LinkLessSessionsTest {
 protected:
  LinkLessSessionBackpressurePolicyTest()
      : LinkLessSessionsTest(Bounded(BrokerOptions::BACKPRESSURE)) {}
};

TEST_F(LinkLessSessionDisconnectPolicyTest, FullQueueEndsTheSession) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  EXPECT_EQ(Send(link, absl::StrCat("sub ", s.token, " t")), "ack 2\n");
  h_.TakeEvents();

  TestClient& pub = h_.Connect("pub");
  for (int k = 0; k < 20; ++k) pub.Publish("t", "0123456789");
  EXPECT_EQ(h_.broker().statistics().slow_consumer_disconnects, 1u);
  std::vector<wire::BrokerEvent> removed =
      Events(wire::BrokerEvent::kSessionRemoved);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].session_removed().code(), wire::SLOW_CONSUMER);
  // The publisher is not harmed; the session's client learns on its next
  // poll why the session ended.
  EXPECT_FALSE(pub.closed());
  EXPECT_EQ(Send(link, absl::StrCat("poll ", s.token, " 0")),
            "error 3 SESSION_UNKNOWN\n");
  EXPECT_THAT(rec_.errors.back(), HasSubstr("slow consumer"));
  EXPECT_THAT(rec_.polls, IsEmpty());
}

TEST_F(LinkLessSessionDropPolicyTest,
       FullQueueDropsDeliveriesAndKeepsTheSession) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  EXPECT_EQ(Send(link, absl::StrCat("sub ", s.token, " t")), "ack 2\n");

  TestClient& pub = h_.Connect("pub");
  for (int k = 0; k < 20; ++k) pub.Publish("t", absl::StrCat("message-", k));
  const uint64_t dropped = h_.broker().statistics().dropped_deliveries;
  EXPECT_GT(dropped, 0u);
  Send(link, absl::StrCat("poll ", s.token, " 0"));
  ASSERT_EQ(rec_.polls.size(), 1u);
  // What was queued is kept, in order, up to the bound.
  EXPECT_THAT(rec_.polls[0].output, ::testing::StartsWith("msg t message-0\n"));
  const std::vector<absl::string_view> lines =
      absl::StrSplit(rec_.polls[0].output, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size() + dropped, 20u);
  EXPECT_LT(rec_.polls[0].output.size(), 64u + 32u);
  // Drained by the poll, the session takes deliveries again.
  pub.Publish("t", "after");
  Send(link, absl::StrCat("poll ", s.token, " 0"));
  ASSERT_EQ(rec_.polls.size(), 2u);
  EXPECT_EQ(rec_.polls[1].output, "msg t after\n");
}

TEST_F(LinkLessSessionBackpressurePolicyTest,
       FullQueueStallsPublisherUntilAPollDrainsIt) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  EXPECT_EQ(Send(link, absl::StrCat("sub ", s.token, " t")), "ack 2\n");

  TestClient& pub = h_.Connect("pub");
  std::string frames;
  for (int k = 0; k < 20; ++k) {
    wire::ClientMessage m;
    m.mutable_publish()->set_topic("t");
    m.mutable_publish()->set_payload(absl::StrCat("message-", k));
    frames += EncodeFrame(m);
  }
  pub.SendRaw(frames);
  EXPECT_EQ(h_.broker().statistics().stalled_publishers, 1u);

  // Each poll drains the queue and lets the publisher go on; nothing is
  // lost and the order holds.
  std::string expected;
  for (int k = 0; k < 20; ++k) {
    absl::StrAppend(&expected, "msg t message-", k, "\n");
  }
  std::string received;
  for (int polls = 0; polls < 20 && received.size() < expected.size();
       ++polls) {
    const size_t before = rec_.polls.size();
    Send(link, absl::StrCat("poll ", s.token, " 0"));
    ASSERT_EQ(rec_.polls.size(), before + 1);
    received += rec_.polls.back().output;
  }
  EXPECT_EQ(received, expected);
  EXPECT_EQ(h_.broker().statistics().stalled_publishers, 0u);
  EXPECT_EQ(h_.broker().statistics().dropped_deliveries, 0u);
}

TEST_F(LinkLessSessionBackpressurePolicyTest,
       SessionNotPolledWithinMaxStallEnds) {
  const ConnectionId link = Link();
  const Opened s = Open(link);
  EXPECT_EQ(Send(link, absl::StrCat("sub ", s.token, " t")), "ack 2\n");
  TestClient& pub = h_.Connect("pub");
  for (int k = 0; k < 20; ++k) pub.Publish("t", "0123456789");
  EXPECT_EQ(h_.broker().statistics().stalled_publishers, 1u);
  h_.TakeEvents();
  h_.Advance(absl::Milliseconds(2'000));  // max_stall_ms
  std::vector<wire::BrokerEvent> removed =
      Events(wire::BrokerEvent::kSessionRemoved);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].session_removed().code(), wire::SLOW_CONSUMER);
  // The publisher goes on.
  EXPECT_EQ(h_.broker().statistics().stalled_publishers, 0u);
  EXPECT_FALSE(pub.closed());
}

TEST_F(LinkLessSessionBackpressurePolicyTest,
       StreamingPollToALinkThatDoesNotReadStaysBounded) {
  rec_.streaming = true;
  const ConnectionId link = Link();
  const Opened s = Open(link);
  EXPECT_EQ(Send(link, absl::StrCat("sub ", s.token, " t")), "ack 2\n");
  Send(link, absl::StrCat("poll ", s.token, " 30000"));
  TestClient& pub = h_.Connect("pub");
  // The link's peer reads nothing while much is published.
  for (int k = 0; k < 200; ++k) pub.Publish("t", "0123456789");
  Connection* c = h_.broker().FindConnection(link);
  ASSERT_NE(c, nullptr);
  EXPECT_LE(c->CopyPendingOutput().size(), 4u * 64u);
  // The session's own bound then holds the publisher back, and nothing is
  // lost: once the peer reads, everything arrives in order.
  EXPECT_EQ(h_.broker().statistics().dropped_deliveries, 0u);
  // Read the link until no more output comes.
  size_t messages = 0;
  for (int turns = 0; turns < 1000; ++turns) {
    const std::string out = Take(link);
    if (out.empty()) break;
    for (absl::string_view line : absl::StrSplit(out, '\n')) {
      if (line == "msg t 0123456789") ++messages;
    }
    h_.Pump();
  }
  EXPECT_EQ(messages, 200u);
  EXPECT_FALSE(pub.closed());
  EXPECT_EQ(h_.broker().statistics().stalled_publishers, 0u);
}

TEST_F(LinkLessSessionBackpressurePolicyTest,
       OutputHeldForAnOldPollerGoesToTheNextOneWhenItDrains) {
  rec_.streaming = true;
  const ConnectionId first = Link();
  const ConnectionId second = Link();
  const Opened s = Open(first);
  EXPECT_EQ(Send(first, absl::StrCat("sub ", s.token, " t")), "ack 2\n");
  Send(first, absl::StrCat("poll ", s.token, " 30000"));
  TestClient& pub = h_.Connect("pub");
  // The first poller reads nothing: output is held for it.
  for (int k = 0; k < 50; ++k) pub.Publish("t", "0123456789");
  EXPECT_EQ(h_.broker().statistics().stalled_publishers, 2u);
  // A second link takes over the poll and does not read either at first.
  std::string taken = Send(second, absl::StrCat("poll ", s.token, " 30000"));
  for (int k = 0; k < 50; ++k) pub.Publish("t", "0123456789");
  // Once it reads, everything the first link was not given comes, though
  // the first link, still open, never reads.
  size_t messages = 0;
  // Looked at, not read: the first link's peer stays silent.
  absl::StrAppend(&taken,
                  h_.broker().FindConnection(first)->CopyPendingOutput());
  for (absl::string_view line : absl::StrSplit(taken, '\n')) {
    if (line == "msg t 0123456789") ++messages;
  }
  for (int turns = 0; turns < 1000; ++turns) {
    const std::string out = Take(second);
    if (out.empty()) break;
    for (absl::string_view line : absl::StrSplit(out, '\n')) {
      if (line == "msg t 0123456789") ++messages;
    }
    h_.Pump();
  }
  EXPECT_EQ(messages, 100u);
  EXPECT_EQ(h_.broker().statistics().stalled_publishers, 0u);
  EXPECT_EQ(h_.broker().statistics().dropped_deliveries, 0u);
}

class LinkLessSessionCountTest : public LinkLessSessionsTest {
 protected:
  LinkLessSessionCountTest()
      : LinkLessSessionsTest(Bounded(BrokerOptions::DROP)) {}
};

TEST_F(LinkLessSessionCountTest, OpeningPastMaxSessionsIsRefused) {
  const ConnectionId link = Link();
  const Opened first = Open(link);
  Open(link);
  EXPECT_EQ(Send(link, "open - third"), "error 3 TOO_MANY_CONNECTIONS\n");
  EXPECT_THAT(rec_.errors.back(), HasSubstr("the limit is 2"));
  // Closing one makes room.
  EXPECT_EQ(Send(link, absl::StrCat("close ", first.token)), "ack 4\n");
  EXPECT_FALSE(Open(link).token.empty());
}

// --- Permissions ------------------------------------------------------------

// Links admitted by the embedder, with or without a grant.
class LinkLessSessionPermissionsTest : public LinkLessSessionsTest {
 protected:
  LinkLessSessionPermissionsTest() : LinkLessSessionsTest(AdmittingOptions()) {}

  static BrokerOptions AdmittingOptions() {
    BrokerOptions options = Options();
    options.set_require_admission(true);
    return options;
  }

  ConnectionId AdmittedLink(Grant grant) {
    Connection& c = h_.broker().Accept(PeerInfo{"lines"}, h_.now(),
                                       std::make_unique<LinesCodec>(&rec_));
    const ConnectionId id = c.id();
    EXPECT_EQ(Send(id, "hello"), "");  // waits for admission
    EXPECT_TRUE(h_.broker().Admit(id, std::move(grant), h_.now()).ok());
    h_.Pump();
    EXPECT_EQ(Take(id), "welcome - -\n");
    return id;
  }
};

TEST_F(LinkLessSessionPermissionsTest, SessionActsWithTheGrantOfItsOpener) {
  Permissions p;
  p.mutable_publish()->add_allow("chat/**");
  p.mutable_subscribe()->add_allow("chat/**");
  absl::StatusOr<std::shared_ptr<const PermissionSet>> set =
      PermissionSet::Compile(p);
  ASSERT_TRUE(set.ok());
  const ConnectionId link = AdmittedLink(Grant{"alice", *set});
  const Opened s = Open(link);  // op 1
  EXPECT_EQ(Send(link, absl::StrCat("sub ", s.token, " secret/*")),
            "error 2 PERMISSION_DENIED\n");
  EXPECT_THAT(rec_.errors.back(),
              HasSubstr("subscribe to 'secret/*' (user 'alice')"));
  EXPECT_EQ(Send(link, absl::StrCat("pub ", s.token, " secret/x hi")),
            "error 3 PERMISSION_DENIED\n");
  EXPECT_EQ(Send(link, absl::StrCat("req ", s.token, " $sys/stats x")),
            "error 4 PERMISSION_DENIED\n");
  EXPECT_EQ(Send(link, absl::StrCat("sub ", s.token, " chat/*")), "ack 5\n");

  // Another link, admitted without a grant, carrying the session's
  // operations: the session's grant still rules.
  const ConnectionId other = AdmittedLink(Grant());
  EXPECT_EQ(Send(other, absl::StrCat("sub ", s.token, " secret/* ", s.binding)),
            "error 1 PERMISSION_DENIED\n");
  EXPECT_EQ(h_.broker().statistics().permission_denials, 4u);
}

}  // namespace
}  // namespace manifold::testing
