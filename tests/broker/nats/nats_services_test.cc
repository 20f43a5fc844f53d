// NATS requests (a PUB or HPUB with a reply subject) to a topic that a native
// client serves: the service gets the request and its answer comes back to
// the NATS requester on the reply subject.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/broker.h"
#include "broker/nats/nats_codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/broker/nats/nats_test_client.h"

namespace manifold {
namespace {

using ::manifold::testing::NatsClient;
using ::manifold::testing::NatsHarness;
using ::manifold::testing::ServerOp;
using ::manifold::testing::TestClient;

constexpr absl::string_view kNoHeaders =
    R"({"verbose":false,"pedantic":false,"headers":false})";

// Answers `request_id` with `status`, `payload`, `message` and the headers
// `key: value` (none when `key` is empty).
void RespondWith(TestClient& server, uint64_t request_id,
                 wire::RequestStatus status, absl::string_view payload,
                 absl::string_view message = "", absl::string_view key = "",
                 absl::string_view value = "") {
  wire::ClientMessage m;
  wire::Respond* respond = m.mutable_respond();
  respond->set_op_id(server.next_op_id());
  respond->set_request_id(request_id);
  respond->set_status(status);
  respond->set_payload(std::string(payload));
  respond->set_message(std::string(message));
  if (!key.empty()) {
    wire::Header* header = respond->add_headers();
    header->set_key(std::string(key));
    header->set_value(std::string(value));
  }
  server.Send(m);
}

TEST(NatsServicesTest, NatsRequestReachesANativeServiceAndItsAnswerComesBack) {
  NatsHarness h;
  TestClient& server = h.native().Connect("server");
  server.Serve("svc/time");
  NatsClient& requester = h.ConnectNats();
  requester.Sub("_INBOX.r1.*", "1");
  requester.Hpub("svc.time", "NATS/1.0\r\nZone: utc\r\n\r\n", "now?",
                 "_INBOX.r1.7");
  wire::ServerMessage incoming = server.Next();
  ASSERT_TRUE(incoming.has_request()) << incoming.DebugString();
  EXPECT_EQ(incoming.request().topic(), "svc/time");
  EXPECT_EQ(incoming.request().payload(), "now?");
  ASSERT_EQ(incoming.request().headers_size(), 1);
  EXPECT_EQ(incoming.request().headers(0).key(), "Zone");
  EXPECT_EQ(incoming.request().headers(0).value(), "utc");
  // No 503: the service is a responder.
  requester.Flush();
  EXPECT_TRUE(requester.Idle());

  RespondWith(server, incoming.request().request_id(), wire::REQUEST_OK,
              "12:00", "", "Answered-By", "native");
  const std::string block = "NATS/1.0\r\nAnswered-By: native\r\n\r\n";
  EXPECT_EQ(requester.TakeRaw(),
            absl::StrCat("HMSG _INBOX.r1.7 1 ", block.size(), " ",
                         block.size() + 5, "\r\n", block, "12:00\r\n"));
}

TEST(NatsServicesTest, AnswerWithoutHeadersIsAPlainMsg) {
  NatsHarness h;
  TestClient& server = h.native().Connect("server");
  server.Serve("svc/echo");
  NatsClient& requester = h.ConnectNats();
  requester.Sub("_INBOX.r2.*", "1");
  requester.Pub("svc.echo", "hello", "_INBOX.r2.1");
  server.Respond(server.Next().request().request_id(), "hello");
  EXPECT_EQ(requester.TakeRaw(), "MSG _INBOX.r2.1 1 5\r\nhello\r\n");
}

TEST(NatsServicesTest, RejectionIsAnHmsgWithServiceErrorHeaders) {
  NatsHarness h;
  TestClient& server = h.native().Connect("server");
  server.Serve("svc/quota");
  NatsClient& requester = h.ConnectNats();
  requester.Sub("_INBOX.r3.*", "1");
  requester.Pub("svc.quota", "more", "_INBOX.r3.1");
  RespondWith(server, server.Next().request().request_id(), wire::REJECTED, "",
              "quota exceeded");
  ServerOp answer = requester.Next();
  EXPECT_EQ(answer.op, "HMSG") << answer.raw;
  EXPECT_EQ(answer.subject, "_INBOX.r3.1");
  EXPECT_EQ(answer.headers,
            "NATS/1.0\r\nNats-Service-Error: quota exceeded\r\n"
            "Nats-Service-Error-Code: 500\r\n\r\n");
  EXPECT_EQ(answer.payload, "");
}

TEST(NatsServicesTest, ClientWithoutHeadersGetsTheRejectionAsAnEmptyMsg) {
  NatsHarness h;
  TestClient& server = h.native().Connect("server");
  server.Serve("svc/quota");
  NatsClient& requester = h.ConnectNats(kNoHeaders);
  requester.Sub("inbox.r4", "1");
  requester.Pub("svc.quota", "more", "inbox.r4");
  RespondWith(server, server.Next().request().request_id(), wire::REJECTED, "",
              "no");
  EXPECT_EQ(requester.TakeRaw(), "MSG inbox.r4 1 0\r\n\r\n");
}

TEST(NatsServicesTest, TimedOutOrServerGoneRequestsGetNoAnswerNorA503) {
  BrokerOptions options;
  options.set_default_request_timeout_ms(1000);
  NatsHarness h(options);
  TestClient& slow = h.native().Connect("slow");
  TestClient& leaving = h.native().Connect("leaving");
  slow.Serve("svc/slow");
  leaving.Serve("svc/leaving");
  NatsClient& requester = h.ConnectNats();
  requester.Sub("_INBOX.r5.*", "1");
  requester.Pub("svc.slow", "x", "_INBOX.r5.1");
  requester.Pub("svc.leaving", "x", "_INBOX.r5.2");
  EXPECT_TRUE(slow.Next().has_request());
  EXPECT_TRUE(leaving.Next().has_request());
  leaving.Disconnect();
  h.Advance(absl::Seconds(1));
  EXPECT_EQ(h.broker().statistics().requests_timed_out, 1u);
  EXPECT_EQ(h.broker().statistics().requests_in_flight, 0u);
  requester.Flush();
  EXPECT_TRUE(requester.Idle());
}

TEST(NatsServicesTest, ServedTopicWithNatsSubscribersGivesTheRequesterBoth) {
  NatsHarness h;
  TestClient& server = h.native().Connect("server");
  server.Serve("svc/both");
  NatsClient& listener = h.ConnectNats();
  listener.Sub("svc.both", "s");
  listener.Flush();
  NatsClient& requester = h.ConnectNats();
  requester.Sub("_INBOX.r6.*", "1");
  requester.Pub("svc.both", "q", "_INBOX.r6.1");
  // The subscriber sees an ordinary publication, reply subject included.
  ServerOp seen = listener.Next();
  EXPECT_EQ(seen.subject, "svc.both");
  EXPECT_EQ(seen.reply, "_INBOX.r6.1");
  const uint64_t request_id = server.Next().request().request_id();
  // Whoever answers first is first on the reply subject; a request() that
  // waits for one answer takes that one.
  listener.Pub(seen.reply, "from nats");
  server.Respond(request_id, "from the service");
  ServerOp first = requester.Next();
  ServerOp second = requester.Next();
  EXPECT_EQ(first.payload, "from nats");
  EXPECT_EQ(second.payload, "from the service");
  EXPECT_EQ(second.subject, "_INBOX.r6.1");
}

TEST(NatsServicesTest, TooManyPendingRequestsIsReportedAndTheConnectionStays) {
  BrokerOptions options;
  options.set_max_pending_requests_per_connection(1);
  NatsHarness h(options);
  TestClient& server = h.native().Connect("server");
  server.Serve("svc/one");
  NatsClient& requester = h.ConnectNats();
  requester.Sub("_INBOX.r7.*", "1");
  requester.Pub("svc.one", "a", "_INBOX.r7.1");
  requester.Pub("svc.one", "b", "_INBOX.r7.2");
  ServerOp err = requester.Next();
  EXPECT_EQ(err.op, "-ERR") << err.raw;
  EXPECT_EQ(err.text, "connection has 1 requests in flight; the limit is 1");
  std::vector<wire::ServerMessage> served = server.TakeAll();
  ASSERT_EQ(served.size(), 1u);
  EXPECT_FALSE(requester.closed());
  // Once the first is answered there is room again.
  server.Respond(served[0].request().request_id(), "A");
  EXPECT_EQ(requester.Next().payload, "A");
  requester.Pub("svc.one", "c", "_INBOX.r7.3");
  EXPECT_EQ(server.Next().request().payload(), "c");
}

}  // namespace
}  // namespace manifold
