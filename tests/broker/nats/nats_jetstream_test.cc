// NATS JetStream's API on the Broker (broker/internal/jetstream.cc): pull,
// push and ephemeral consumers created, asked for messages and acknowledged
// as nats.js does it, with the status messages it reads (404, 408, 409,
// 100), the JSON errors that name what is wrong, and what a restart keeps.
// Streams live in a MemoryStreamStorage that a restarted broker opens again;
// the clock is the harness's.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "broker/broker.h"
#include "broker/permissions.h"
#include "broker/storage/memory_stream_storage.h"
#include "broker/sys_topics.h"
#include "core/manifold.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/broker/nats/nats_test_client.h"

namespace manifold {
namespace {

using ::manifold::testing::NatsClient;
using ::manifold::testing::NatsHarness;
using ::manifold::testing::ServerOp;
using ::manifold::testing::TestClient;
using ::testing::HasSubstr;
using ::testing::Not;

// A broker with stream ORDERS on orders/*, a native publisher, and a NATS
// client subscribed to its inbox _INBOX.r (sid "r").
class JetStreamTest : public ::testing::Test {
 protected:
  explicit JetStreamTest(BrokerOptions options = BrokerOptions())
      : h_(std::make_unique<NatsHarness>(options)) {
    OpenStreams();
    if (options.require_admission()) {
      pub_ = &h_->native().Connect("pub", /*hello=*/false);
      wire::ClientMessage hello;
      hello.mutable_hello()->set_protocol_version(1);
      pub_->Send(hello);
      EXPECT_TRUE(h_->broker().Admit(pub_->id(), h_->native().now()).ok());
      h_->Pump();
      EXPECT_TRUE(pub_->Next().has_welcome());
    } else {
      pub_ = &h_->native().Connect("pub");
    }
    wire::StreamConfig config;
    config.set_name("ORDERS");
    config.add_topics("orders/*");
    pub_->Request(sys_topics::kStreamAdd, config.SerializeAsString());
    wire::ServerMessage added = pub_->Next();
    EXPECT_EQ(added.response().status(), wire::REQUEST_OK)
        << added.DebugString();
  }

  // Opens what disk_ holds in the broker of h_.
  void OpenStreams() {
    absl::StatusOr<std::vector<RecoveredStream>> held = disk_.Load();
    EXPECT_TRUE(held.ok());
    EXPECT_TRUE(h_->broker()
                    .OpenStreams(&disk_, *std::move(held), h_->native().now())
                    .ok());
  }

  // A broker restart: a new broker with default options opens what disk_
  // holds, with a native publisher (the clients of the old one are gone).
  void Restart() {
    h_.reset();
    h_ = std::make_unique<NatsHarness>();
    OpenStreams();
    pub_ = &h_->native().Connect("pub");
  }

  // `n` connected and subscribed to _INBOX.r.
  NatsClient& Client() {
    NatsClient& n = h_->ConnectNats();
    n.Sub("_INBOX.r", "r");
    return n;
  }

  // Publishes orders/<topic> natively and waits until it is stored.
  void Store(absl::string_view topic, absl::string_view payload) {
    wire::ClientMessage m;
    m.mutable_publish()->set_op_id(pub_->next_op_id());
    m.mutable_publish()->set_topic(absl::StrCat("orders/", topic));
    m.mutable_publish()->set_payload(std::string(payload));
    m.mutable_publish()->set_ack(true);
    pub_->Send(m);
    h_->Pump();
    wire::ServerMessage ack = pub_->Next();
    EXPECT_TRUE(ack.has_ack()) << ack.DebugString();
  }

  // Sends an API request from `n` and returns its answer's JSON.
  std::string Api(NatsClient& n, absl::string_view subject,
                  absl::string_view body = "") {
    n.Pub(absl::StrCat("$JS.API.", subject), body, "_INBOX.r");
    h_->Pump();
    ServerOp answer = n.Next();
    EXPECT_EQ(answer.op, "MSG") << answer.raw;
    EXPECT_EQ(answer.subject, "_INBOX.r") << answer.raw;
    return answer.payload;
  }

  // Creates durable pull consumer `name` delivering `filter`.
  std::string Create(NatsClient& n, absl::string_view name,
                     absl::string_view filter, absl::string_view extra = "") {
    return Api(n, absl::StrCat("CONSUMER.DURABLE.CREATE.ORDERS.", name),
               absl::StrCat(R"({"stream_name":"ORDERS","config":{)",
                            R"("durable_name":")", name,
                            R"(","ack_policy":"explicit","filter_subject":")",
                            filter, "\"", extra, "}}"));
  }

  // Creates durable push consumer `name` of everything, delivering to
  // `deliver`, with `extra` config fields; returns the answer's JSON.
  std::string CreatePush(NatsClient& n, absl::string_view name,
                         absl::string_view deliver,
                         absl::string_view extra = "") {
    return Api(
        n, "CONSUMER.CREATE.ORDERS",
        absl::StrCat(R"({"stream_name":"ORDERS","config":{)",
                     R"("durable_name":")", name, R"(","deliver_subject":")",
                     deliver, "\"", extra, "}}"));
  }

  // What a push consumer brought a subscriber: messages, and the
  // flow-control requests among them (after how many messages each came).
  struct Pushed {
    int messages = 0;
    std::vector<std::pair<int, ServerOp>> requests;
  };
  // Adds what `client` gets in 20 turns to `pushed`; anything else fails.
  void TakePushed(NatsClient& client, Pushed& pushed) {
    for (int turn = 0; turn < 20; ++turn) {
      h_->Pump();
      for (ServerOp& op : client.TakeAll()) {
        if (op.op == "MSG") {
          ++pushed.messages;
        } else if (absl::StrContains(op.headers, "100 FlowControl Request")) {
          pushed.requests.emplace_back(pushed.messages, std::move(op));
        } else {
          ADD_FAILURE() << op.raw.substr(0, 200);
        }
      }
    }
  }

  // Asks consumer `name` for messages, with `body`, on inbox _INBOX.p.<n>.
  void Next(NatsClient& n, absl::string_view name, absl::string_view body,
            absl::string_view inbox = "_INBOX.r") {
    n.Pub(absl::StrCat("$JS.API.CONSUMER.MSG.NEXT.ORDERS.", name), body, inbox);
    h_->Pump();
  }

  MemoryStreamStorage disk_;
  std::unique_ptr<NatsHarness> h_;
  TestClient* pub_ = nullptr;
};

// The consumers of this broker's stream ORDERS that its storage holds.
std::vector<std::string> StoredConsumers(MemoryStreamStorage& disk) {
  std::vector<std::string> names;
  absl::StatusOr<std::vector<RecoveredStream>> held = disk.Load();
  EXPECT_TRUE(held.ok());
  for (const RecoveredStream& s : *held) {
    for (const wire::ConsumerState& c : s.consumers) names.push_back(c.name());
  }
  return names;
}

// The tokens of a $JS.ACK reply subject after "$JS.ACK.": stream, consumer,
// delivery count, stream seq, consumer seq, time in ns, pending.
std::vector<std::string> AckTokens(const ServerOp& m) {
  std::vector<std::string> t = absl::StrSplit(m.reply, '.');
  EXPECT_EQ(t.size(), 9u) << m.raw;
  EXPECT_EQ(t[0], "$JS");
  EXPECT_EQ(t[1], "ACK");
  return std::vector<std::string>(t.begin() + 2, t.end());
}

TEST_F(JetStreamTest, PullConsumerDeliversWithAckSubjectsAndAcksMoveTheFloor) {
  NatsClient& n = Client();
  const std::string created = Create(n, "w", "orders.*");
  EXPECT_THAT(created, HasSubstr(R"("type":"io.nats.jetstream.api.v1.)"
                                 R"(consumer_create_response")"));
  EXPECT_THAT(created, HasSubstr(R"("name":"w")"));
  EXPECT_THAT(created, HasSubstr(R"("filter_subject":"orders.*")"));
  Store("a", "1");
  Store("b", "2");
  Store("c", "3");

  Next(n, "w", R"({"batch":2,"expires":5000000000})");
  ServerOp first = n.Next();
  EXPECT_EQ(first.op, "MSG");
  EXPECT_EQ(first.subject, "orders.a");
  EXPECT_EQ(first.sid, "r");
  EXPECT_EQ(first.payload, "1");
  std::vector<std::string> t = AckTokens(first);
  EXPECT_EQ(t[0], "ORDERS");
  EXPECT_EQ(t[1], "w");
  EXPECT_EQ(t[2], "1");  // first delivery
  EXPECT_EQ(t[3], "1");  // stream sequence
  EXPECT_EQ(t[4], "1");  // consumer sequence
  EXPECT_EQ(t[6], "2");  // pending: 2 and 3
  ServerOp second = n.Next();
  EXPECT_EQ(second.subject, "orders.b");
  EXPECT_EQ(AckTokens(second)[3], "2");
  EXPECT_TRUE(n.Idle());  // the batch is filled: no status message

  n.Pub(first.reply, "+ACK");
  const std::string info = Api(n, "CONSUMER.INFO.ORDERS.w");
  EXPECT_THAT(info, HasSubstr(R"("ack_floor":{"stream_seq":1})"));
  EXPECT_THAT(info, HasSubstr(R"("delivered":{"consumer_seq":2,)"
                              R"("stream_seq":2})"));
  EXPECT_THAT(info, HasSubstr(R"("num_ack_pending":1)"));
  EXPECT_THAT(info, HasSubstr(R"("num_pending":1)"));
  // An ack with a reply subject (nats.js's ackAck) is confirmed.
  n.Pub(second.reply, "+ACK", "_INBOX.r");
  h_->Pump();
  EXPECT_EQ(n.Next().payload, "");
  EXPECT_THAT(Api(n, "CONSUMER.INFO.ORDERS.w"),
              HasSubstr(R"("stream_seq":2},"num_ack_pending":0)"));
}

TEST_F(JetStreamTest, AWaitingPullGetsNewMessagesHeartbeatsAndThenTimesOut) {
  NatsClient& n = Client();
  Create(n, "w", "orders.*");
  Next(n, "w",
       R"({"batch":3,"expires":2000000000,"idle_heartbeat":500000000})");
  EXPECT_TRUE(n.Idle());
  Store("a", "1");
  EXPECT_EQ(n.Next().payload, "1");
  h_->Advance(absl::Milliseconds(600));
  ServerOp beat = n.Next();
  EXPECT_EQ(beat.op, "HMSG");
  EXPECT_EQ(beat.subject, "_INBOX.r");
  EXPECT_THAT(beat.headers, HasSubstr("NATS/1.0 100 Idle Heartbeat"));
  h_->Advance(absl::Milliseconds(1500));
  ServerOp timeout = n.Next();
  while (timeout.headers.find("100 Idle") != std::string::npos) {
    timeout = n.Next();
  }
  EXPECT_THAT(timeout.headers, HasSubstr("NATS/1.0 408 Request Timeout"));
  EXPECT_THAT(timeout.headers, HasSubstr("Nats-Pending-Messages: 2"));
  EXPECT_TRUE(n.Idle());
  // The request is gone: a new message waits for the next one.
  Store("b", "2");
  EXPECT_TRUE(n.Idle());
}

TEST_F(JetStreamTest, NoWaitAnswersAtOnce) {
  NatsClient& n = Client();
  Create(n, "w", "orders.*");
  Next(n, "w", R"({"batch":5,"no_wait":true})");
  ServerOp none = n.Next();
  EXPECT_EQ(none.op, "HMSG");
  EXPECT_THAT(none.headers, HasSubstr("NATS/1.0 404 No Messages"));
  // Numbers past what fits are taken as the most that does.
  Next(n, "w", R"({"batch":1e300,"expires":1e300,"no_wait":true})");
  EXPECT_THAT(n.Next().headers, HasSubstr("NATS/1.0 404 No Messages"));
  Store("a", "1");
  Next(n, "w", R"({"batch":5,"no_wait":true})");
  EXPECT_EQ(n.Next().payload, "1");
  EXPECT_THAT(n.Next().headers, HasSubstr("NATS/1.0 408 Request Timeout"));
  // A body that is just a number is a batch size; an empty one, one message.
  Store("b", "2");
  Store("c", "3");
  Next(n, "w", "1");
  EXPECT_EQ(n.Next().payload, "2");
  Next(n, "w", "");
  EXPECT_EQ(n.Next().payload, "3");
  EXPECT_TRUE(n.Idle());
}

TEST_F(JetStreamTest, NakRedeliversAtOnceAndWorkInProgressPutsOffTheAckWait) {
  NatsClient& n = Client();
  Create(n, "w", "orders.*", R"(,"ack_wait":1000000000)");
  Store("a", "1");
  Next(n, "w", "1");
  ServerOp m = n.Next();
  n.Pub(m.reply, "-NAK");
  Next(n, "w", "1");
  ServerOp again = n.Next();
  EXPECT_EQ(again.payload, "1");
  EXPECT_EQ(AckTokens(again)[2], "2");  // delivered before

  h_->Advance(absl::Milliseconds(800));
  n.Pub(again.reply, "+WPI");
  h_->Pump();
  h_->Advance(absl::Milliseconds(800));
  Next(n, "w", R"({"no_wait":true})");
  EXPECT_THAT(n.Next().headers, HasSubstr("404 No Messages"));
  h_->Advance(absl::Milliseconds(300));  // 1 s after the +WPI
  Next(n, "w", "1");
  ServerOp third = n.Next();
  EXPECT_EQ(third.payload, "1");
  n.Pub(third.reply, "+TERM");
  h_->Advance(absl::Seconds(2));
  Next(n, "w", R"({"no_wait":true})");
  EXPECT_THAT(n.Next().headers, HasSubstr("404 No Messages"));
}

TEST_F(JetStreamTest, ConsumersStartWhereTheirDeliverPolicySays) {
  NatsClient& n = Client();
  Store("a", "1");
  Store("b", "2");
  Store("c", "3");
  Create(n, "last", "orders.*", R"(,"deliver_policy":"last")");
  Create(n, "new", "orders.*", R"(,"deliver_policy":"new")");
  Create(n, "seq", "orders.*",
         R"(,"deliver_policy":"by_start_sequence","opt_start_seq":2)");
  Create(n, "b", "orders.b");
  Store("d", "4");
  for (auto [name, want] : std::vector<std::pair<std::string, std::string>>{
           {"last", "3"}, {"new", "4"}, {"seq", "2"}, {"b", "2"}}) {
    Next(n, name, "1");
    EXPECT_EQ(n.Next().payload, want) << name;
  }
}

TEST_F(JetStreamTest, TheFilterMayComeInTheCreateSubjectWildcardsAndAll) {
  NatsClient& n = Client();
  // As nats.js sends it to servers from 2.9.0.
  const std::string created =
      Api(n, "CONSUMER.CREATE.ORDERS.f.orders.*", R"({"config":{"name":"f"}})");
  EXPECT_THAT(created, HasSubstr(R"("filter_subject":"orders.*")"));
  EXPECT_THAT(Api(n, "CONSUMER.CREATE.ORDERS.g.orders.>", "{}"),
              HasSubstr(R"("filter_subject":"orders.>")"));
  // Without a filter, a consumer delivers the whole stream.
  EXPECT_THAT(Api(n, "CONSUMER.CREATE.ORDERS.h", "{}"),
              Not(HasSubstr("filter_subject")));
  // Elsewhere a wildcard is still no publish subject.
  n.Send("PUB orders.* 1\r\nx\r\n");
  EXPECT_EQ(n.Next().text, "Invalid Publish Subject");
  Store("a", "1");
  Next(n, "f", "1");
  EXPECT_EQ(n.Next().payload, "1");
}

TEST_F(JetStreamTest, AccountAndStreamInformation) {
  NatsClient& n = Client();
  Store("a", "1");
  Create(n, "w", "orders.*");
  const std::string account = Api(n, "INFO");
  EXPECT_THAT(account, HasSubstr(R"("streams":1,"consumers":1)"));
  const std::string names = Api(n, "STREAM.NAMES", R"({"subject":"orders.x"})");
  EXPECT_THAT(names, HasSubstr(R"("streams":["ORDERS"])"));
  EXPECT_THAT(Api(n, "STREAM.NAMES", R"({"subject":"other.x"})"),
              HasSubstr(R"("streams":[])"));
  const std::string info = Api(n, "STREAM.INFO.ORDERS");
  EXPECT_THAT(info, HasSubstr(R"("subjects":["orders.*"])"));
  EXPECT_THAT(info, HasSubstr(R"("messages":1,)"));
  EXPECT_THAT(info, HasSubstr(R"("last_seq":1,)"));
  EXPECT_THAT(info, HasSubstr(R"("consumer_count":1)"));
  EXPECT_THAT(Api(n, "CONSUMER.NAMES.ORDERS"),
              HasSubstr(R"("consumers":["w"])"));
  EXPECT_THAT(Api(n, "CONSUMER.LIST.ORDERS"),
              HasSubstr(R"("consumers":[{"type")"));
}

TEST_F(JetStreamTest, BadRequestsGetErrorsThatNameTheProblem) {
  NatsClient& n = Client();
  Create(n, "w", "orders.a");
  struct Case {
    std::string subject, body, code, text;
  };
  for (
      const Case& c : std::vector<Case>{
          {"CONSUMER.DURABLE.CREATE.ORDERS.x", "{nope", "400",
           "is not a JSON object"},
          {"CONSUMER.CREATE.ORDERS",
           R"({"config":{"deliver_subject":"d","inactive_threshold":-1}})",
           "400", "inactive_threshold must not be negative"},
          {"CONSUMER.CREATE.ORDERS",
           R"({"config":{"name":"w","filter_subject":"orders.a"}})", "400",
           "consumer 'w' already exists and is durable"},
          {"CONSUMER.CREATE.ORDERS",
           R"({"config":{"durable_name":"p","deliver_subject":"d.*"}})", "400",
           "deliver_subject: "},
          {"CONSUMER.CREATE.ORDERS",
           R"({"config":{"durable_name":"p","idle_heartbeat":5000000000}})",
           "400", "idle_heartbeat is for push consumers"},
          {"CONSUMER.CREATE.ORDERS",
           R"({"config":{"durable_name":"p","deliver_group":"g"}})", "400",
           "deliver_group needs a deliver_subject"},
          {"CONSUMER.CREATE.ORDERS",
           R"({"config":{"durable_name":"p","flow_control":true}})", "400",
           R"("err_code":10089,"description":"flow_control is for push)"},
          {"CONSUMER.CREATE.ORDERS",
           R"({"config":{"durable_name":"p","deliver_subject":"d",)"
           R"("flow_control":true}})",
           "400",
           R"("err_code":10108,"description":"flow_control needs an )"
           R"(idle_heartbeat")"},
          {"CONSUMER.CREATE.ORDERS",
           R"({"config":{"durable_name":"w","filter_subject":"orders.a",)"
           R"("deliver_subject":"d"}})",
           "400", "already exists with no deliver_subject"},
          {"CONSUMER.CREATE.ORDERS",
           R"({"config":{"durable_name":"w","filter_subject":"orders.a",)"
           R"("ack_policy":"all"}})",
           "400", "already exists with ack_policy 'explicit'"},
          {"CONSUMER.CREATE.ORDERS",
           R"({"config":{"durable_name":"p","ack_policy":"some"}})", "400",
           "ack_policy 'some' is not served (explicit, all, none)"},
          {"CONSUMER.CREATE.ORDERS",
           R"({"config":{"durable_name":"p","filter_subject":"bills.*"}})",
           "400", "matches nothing stream 'ORDERS' captures"},
          {"CONSUMER.CREATE.ORDERS",
           R"({"config":{"durable_name":"w","filter_subject":"orders.b"}})",
           "400", "already exists and delivers 'orders.a'"},
          {"CONSUMER.CREATE.ORDERS.x", R"({"config":{"durable_name":"y"}})",
           "400", "consumer name 'y' does not match 'x'"},
          {"CONSUMER.CREATE.ORDERS", R"({"config":{"durable_name":"a.b"}})",
           "400", "must have 1 to 64 letters"},
          {"CONSUMER.CREATE.ORDERS",
           R"({"config":{"durable_name":"p","deliver_policy":"by_start_time"}})",
           "400", "needs opt_start_time"},
          {"CONSUMER.CREATE.NOPE", R"({"config":{"durable_name":"p"}})", "404",
           "stream not found"},
          {"CONSUMER.INFO.ORDERS.nobody", "", "404", "consumer not found"},
          {"CONSUMER.MSG.NEXT.ORDERS.nobody", "", "404", "consumer not found"},
          {"STREAM.CREATE.NEW", "{}", "400", "is not served"},
          {"STREAM.INFO.NOPE", "", "404", "stream not found"},
          {"KV.SOMETHING", "", "400", "$JS.API.KV.SOMETHING is not served"},
      }) {
    const std::string answer = Api(n, c.subject, c.body);
    EXPECT_THAT(answer, HasSubstr(absl::StrCat("\"code\":", c.code)))
        << c.subject;
    EXPECT_THAT(answer, HasSubstr(c.text)) << c.subject << " " << answer;
  }
  // A pull request's own errors are status messages on its inbox.
  Next(n, "w", "many");
  EXPECT_THAT(n.Next().headers, HasSubstr("NATS/1.0 400 Bad Request"));
  Next(n, "w", R"({"batch":-1})");
  EXPECT_THAT(n.Next().headers, HasSubstr("NATS/1.0 400 Bad Request"));
  // Errors are counted.
  EXPECT_THAT(Api(n, "INFO"), Not(HasSubstr(R"("errors":0)")));
  EXPECT_FALSE(n.closed());
}

TEST_F(JetStreamTest, WaitingPullsAreBoundedAndEndWhenTheConsumerGoes) {
  NatsClient& n = Client();
  Create(n, "w", "orders.*");
  std::string many;
  for (int i = 0; i < 512; ++i) {
    absl::StrAppend(&many, "PUB $JS.API.CONSUMER.MSG.NEXT.ORDERS.w _INBOX.r 1",
                    "\r\n1\r\n");
  }
  n.Send(many);
  h_->Pump();
  EXPECT_TRUE(n.Idle());
  Next(n, "w", "1");
  EXPECT_THAT(n.Next().headers, HasSubstr("409 Exceeded MaxWaiting"));
  EXPECT_THAT(Api(n, "CONSUMER.INFO.ORDERS.w"),
              HasSubstr(R"("num_waiting":512)"));
  n.Pub("$JS.API.CONSUMER.DELETE.ORDERS.w", "", "_INBOX.r");
  h_->Pump();
  int deleted = 0;
  std::string answer;
  for (const ServerOp& op : n.TakeAll()) {
    if (op.headers.find("409 Consumer Deleted") != std::string::npos) {
      ++deleted;
    } else {
      answer = op.payload;
    }
  }
  EXPECT_EQ(deleted, 512);
  EXPECT_THAT(answer, HasSubstr(R"("success":true)"));
  EXPECT_THAT(Api(n, "CONSUMER.INFO.ORDERS.w"),
              HasSubstr("consumer not found"));
}

TEST_F(JetStreamTest, AnInboxThatAskedForNMessagesEndsAfterThem) {
  NatsClient& n = Client();
  Create(n, "w", "orders.*");
  Store("a", "1");
  Store("b", "2");
  Store("c", "3");
  // As nats.js's fetch() subscribes: an inbox that ends after the batch.
  n.Sub("_INBOX.f", "f");
  n.Send("UNSUB f 2\r\n");
  n.Flush();
  const uint64_t before = h_->broker().statistics().subscriptions;
  Next(n, "w", "2", "_INBOX.f");
  EXPECT_EQ(n.Next().payload, "1");
  EXPECT_EQ(n.Next().payload, "2");
  EXPECT_EQ(h_->broker().statistics().subscriptions, before - 1);
}

TEST_F(JetStreamTest, APullRequestEndsWithItsInbox) {
  NatsClient& n = Client();
  Create(n, "w", "orders.*");
  n.Sub("_INBOX.gone", "g");
  Next(n, "w", "5", "_INBOX.gone");
  n.Send("UNSUB g\r\n");
  n.Flush();
  Store("a", "1");
  EXPECT_TRUE(n.Idle());
  Next(n, "w", "1");
  EXPECT_EQ(n.Next().payload, "1");
}

// A push consumer (deliver_subject) sends each message to a subscriber of
// its deliver subject with an ack subject, as js.subscribe() reads them:
// what it holds once one subscribes, what comes after as it is stored, and
// nothing past max_ack_pending until acks make room.
TEST_F(JetStreamTest, APushConsumerDeliversToItsSubjectsSubscriber) {
  NatsClient& n = Client();
  Store("a", "1");
  const std::string created =
      CreatePush(n, "p", "deliver.p", R"(,"max_ack_pending":2)");
  EXPECT_THAT(created, HasSubstr(R"("deliver_subject":"deliver.p")"));
  EXPECT_THAT(created, Not(HasSubstr("push_bound")));
  EXPECT_THAT(created, Not(HasSubstr("max_waiting")));
  EXPECT_TRUE(n.Idle()) << "nobody subscribes to deliver.p yet";

  NatsClient& s = h_->ConnectNats();
  s.Sub("deliver.p", "d");
  h_->Pump();
  ServerOp first = s.Next();
  EXPECT_EQ(first.op, "MSG") << first.raw;
  EXPECT_EQ(first.subject, "orders.a");
  EXPECT_EQ(first.sid, "d");
  EXPECT_EQ(first.payload, "1");
  EXPECT_EQ(AckTokens(first)[1], "p");
  EXPECT_EQ(AckTokens(first)[3], "1");
  EXPECT_THAT(Api(n, "CONSUMER.INFO.ORDERS.p"),
              HasSubstr(R"("push_bound":true)"));

  Store("b", "2");
  Store("c", "3");
  ServerOp second = s.Next();
  EXPECT_EQ(second.payload, "2");
  EXPECT_TRUE(s.Idle()) << "max_ack_pending 2: the third waits";
  s.Pub(first.reply, "+ACK");
  h_->Pump();
  EXPECT_EQ(s.Next().payload, "3");
  s.Pub(second.reply, "+ACK");
  h_->Pump();
  EXPECT_THAT(Api(n, "CONSUMER.INFO.ORDERS.p"),
              HasSubstr(R"("ack_floor":{"stream_seq":2})"));

  // Its subscriber gone, the consumer waits, and goes on with the next one
  // from where it was: 3, unacknowledged, after its ack_wait.
  s.Send("UNSUB d\r\n");
  Store("d", "4");
  EXPECT_THAT(Api(n, "CONSUMER.INFO.ORDERS.p"), Not(HasSubstr("push_bound")));
  NatsClient& again = h_->ConnectNats();
  again.Sub("deliver.p", "e");
  h_->Pump();
  EXPECT_EQ(again.Next().payload, "4");
  h_->Advance(absl::Seconds(31));
  ServerOp redelivered = again.Next();
  EXPECT_EQ(redelivered.payload, "3");
  EXPECT_EQ(AckTokens(redelivered)[2], "2") << "marked as delivered before";
}

// With a deliver_group, messages go to the group's members in turn; other
// subscribers of the subject get none.
TEST_F(JetStreamTest, APushConsumersDeliverGroupSharesItsMessages) {
  NatsClient& n = Client();
  NatsClient& a = h_->ConnectNats();
  a.Sub("deliver.g", "a", "workers");
  NatsClient& b = h_->ConnectNats();
  b.Sub("deliver.g", "b", "workers");
  NatsClient& plain = h_->ConnectNats();
  plain.Sub("deliver.g", "x");
  h_->Pump();
  EXPECT_THAT(CreatePush(n, "g", "deliver.g", R"(,"deliver_group":"workers")"),
              HasSubstr(R"("deliver_group":"workers")"));
  for (int i = 0; i < 4; ++i) Store("a", absl::StrCat(i));
  std::vector<std::string> to_a, to_b;
  while (!a.Idle()) to_a.push_back(a.Next().payload);
  while (!b.Idle()) to_b.push_back(b.Next().payload);
  EXPECT_THAT(to_a, ::testing::ElementsAre("0", "2"));
  EXPECT_THAT(to_b, ::testing::ElementsAre("1", "3"));
  EXPECT_TRUE(plain.Idle());
}

// Under ack_policy all, an ack covers every message delivered before it;
// +TERM still ends one message only.
TEST_F(JetStreamTest, AckPolicyAllAcknowledgesEverythingBefore) {
  NatsClient& n = Client();
  NatsClient& s = h_->ConnectNats();
  s.Sub("deliver.all", "d");
  h_->Pump();
  EXPECT_THAT(CreatePush(n, "all", "deliver.all", R"(,"ack_policy":"all")"),
              HasSubstr(R"("ack_policy":"all")"));
  for (int i = 1; i <= 4; ++i) Store("a", absl::StrCat(i));
  std::vector<ServerOp> got;
  while (!s.Idle()) got.push_back(s.Next());
  ASSERT_EQ(got.size(), 4u);
  s.Pub(got[0].reply, "+TERM");
  s.Pub(got[2].reply, "+ACK");
  h_->Pump();
  const std::string info = Api(n, "CONSUMER.INFO.ORDERS.all");
  EXPECT_THAT(info, HasSubstr(R"("ack_floor":{"stream_seq":3})"));
  EXPECT_THAT(info, HasSubstr(R"("num_ack_pending":1)"));
}

// An ordered consumer as nats.js makes it: ephemeral, push, ack_policy
// none, flow control and an idle heartbeat. Messages count as acknowledged
// once pushed; while nothing comes, heartbeats carry the last consumer and
// stream sequences; each message pushed puts the next heartbeat off.
TEST_F(JetStreamTest, AnOrderedConsumerIsPushedWithoutAcksAndHeartbeats) {
  NatsClient& n = Client();
  NatsClient& s = h_->ConnectNats();
  s.Sub("deliver.o", "d");
  Store("a", "1");
  const std::string created =
      CreatePush(n, "", "deliver.o",
                 R"(,"ack_policy":"none","flow_control":true,)"
                 R"("idle_heartbeat":2000000000,"mem_storage":true)");
  EXPECT_THAT(created, HasSubstr(R"("ack_policy":"none")"));
  EXPECT_THAT(created, HasSubstr(R"("idle_heartbeat":2000000000)"));
  EXPECT_THAT(created, HasSubstr(R"("name":"eph1")"));
  EXPECT_THAT(created, HasSubstr(R"("mem_storage":true)"));
  ServerOp first = s.Next();
  EXPECT_EQ(first.payload, "1");
  EXPECT_EQ(AckTokens(first)[4], "1");  // consumer sequence
  Store("b", "2");
  EXPECT_EQ(AckTokens(s.Next())[4], "2");
  const std::string info = Api(n, "CONSUMER.INFO.ORDERS.eph1");
  EXPECT_THAT(info, HasSubstr(R"("ack_floor":{"stream_seq":2})"));
  EXPECT_THAT(info, HasSubstr(R"("num_ack_pending":0)"));
  EXPECT_THAT(StoredConsumers(disk_), ::testing::IsEmpty())
      << "mem_storage: never written";

  h_->Advance(absl::Milliseconds(1500));
  EXPECT_TRUE(s.Idle());
  h_->Advance(absl::Milliseconds(600));
  ServerOp beat = s.Next();
  EXPECT_EQ(beat.op, "HMSG") << beat.raw;
  EXPECT_EQ(beat.subject, "deliver.o");
  EXPECT_THAT(beat.headers, HasSubstr("NATS/1.0 100 Idle Heartbeat"));
  EXPECT_THAT(beat.headers, HasSubstr("Nats-Last-Consumer: 2"));
  EXPECT_THAT(beat.headers, HasSubstr("Nats-Last-Stream: 2"));
  h_->Advance(absl::Milliseconds(1000));
  Store("c", "3");
  EXPECT_EQ(s.Next().payload, "3");
  h_->Advance(absl::Milliseconds(1500));
  EXPECT_TRUE(s.Idle()) << "the message put the heartbeat off";
  h_->Advance(absl::Milliseconds(600));
  EXPECT_THAT(s.Next().headers, HasSubstr("Nats-Last-Consumer: 3"));
}

// A push consumer with flow_control sends its subscriber a flow-control
// request once half its window (4 MiB) of pushed records is unanswered,
// stops at the whole window, and goes on when the request is answered; a
// heartbeat while it is stalled names the request, as nats-server's do.
TEST_F(JetStreamTest, FlowControlStopsPushingUntilTheRequestIsAnswered) {
  NatsClient& n = Client();
  NatsClient& s = h_->ConnectNats();
  s.Sub("deliver.f", "d");
  const std::string payload(64 << 10, 'x');  // a record of 65,556 bytes
  for (int i = 0; i < 80; ++i) Store("a", payload);
  const std::string created = CreatePush(
      n, "f", "deliver.f",
      R"(,"ack_policy":"none","flow_control":true,"idle_heartbeat":1000000000)");
  EXPECT_THAT(created, HasSubstr(R"("flow_control":true)"));
  Pushed pushed;
  TakePushed(s, pushed);
  // 32 records pass half the window, 64 all of it.
  EXPECT_EQ(pushed.messages, 64);
  ASSERT_EQ(pushed.requests.size(), 1u);
  EXPECT_EQ(pushed.requests[0].first, 32);
  EXPECT_EQ(pushed.requests[0].second.subject, "deliver.f");
  EXPECT_EQ(pushed.requests[0].second.reply, "$JS.FC.ORDERS.f.1");

  h_->Advance(absl::Milliseconds(1100));
  ServerOp beat = s.Next();
  EXPECT_THAT(beat.headers, HasSubstr("100 Idle Heartbeat"));
  EXPECT_THAT(beat.headers,
              HasSubstr("Nats-Consumer-Stalled: $JS.FC.ORDERS.f.1"));
  s.Pub("$JS.FC.ORDERS.f.0", "");  // not the request awaiting an answer
  TakePushed(s, pushed);
  EXPECT_EQ(pushed.messages, 64);

  // The answer vouches for the 32 records before the request: the rest
  // comes, and with it the next request (half the window is unanswered
  // again at once).
  s.Pub("$JS.FC.ORDERS.f.1", "");
  TakePushed(s, pushed);
  EXPECT_EQ(pushed.messages, 80);
  ASSERT_EQ(pushed.requests.size(), 2u);
  EXPECT_EQ(pushed.requests[1].first, 65);
  EXPECT_EQ(pushed.requests[1].second.reply, "$JS.FC.ORDERS.f.2");
}

// A flow-control request whose subscription ended is never answered: the
// subscriber that comes next gets the rest without one.
TEST_F(JetStreamTest, AStalledConsumersNextSubscriberStartsAfresh) {
  NatsClient& n = Client();
  NatsClient& first = h_->ConnectNats();
  first.Sub("deliver.s", "d");
  const std::string payload(64 << 10, 'x');
  for (int i = 0; i < 70; ++i) Store("a", payload);
  CreatePush(n, "s", "deliver.s",
             R"(,"ack_policy":"none","flow_control":true,)"
             R"("idle_heartbeat":60000000000)");
  auto count = [&](NatsClient& client) {
    int messages = 0;
    for (int turn = 0; turn < 20; ++turn) {
      h_->Pump();
      for (const ServerOp& op : client.TakeAll()) messages += op.op == "MSG";
    }
    return messages;
  };
  EXPECT_EQ(count(first), 64);  // stalled, the request unanswered
  first.Send("UNSUB d\r\n");
  NatsClient& next = h_->ConnectNats();
  next.Sub("deliver.s", "d");
  EXPECT_EQ(count(next), 6);
}

// A consumer created without a durable_name is ephemeral: named by the
// broker when not in the request, stored like a durable one, and removed
// (from the storage too) once nobody has listened for its
// inactive_threshold (5 s unless given).
TEST_F(JetStreamTest, AnEphemeralPushConsumerGoesWhenNobodyListens) {
  NatsClient& n = Client();
  NatsClient& s = h_->ConnectNats();
  s.Sub("deliver.e", "d");
  const std::string created = Api(n, "CONSUMER.CREATE.ORDERS",
                                  R"({"stream_name":"ORDERS","config":{)"
                                  R"("deliver_subject":"deliver.e"}})");
  EXPECT_THAT(created, HasSubstr(R"("name":"eph1")"));
  EXPECT_THAT(created, HasSubstr(R"("inactive_threshold":5000000000)"));
  EXPECT_THAT(created, Not(HasSubstr("durable_name")));
  Create(n, "kept", "orders.*");
  Store("a", "1");
  EXPECT_EQ(s.Next().payload, "1");
  EXPECT_THAT(StoredConsumers(disk_),
              ::testing::UnorderedElementsAre("eph1", "kept"));

  // Listened to, it stays; 5 s after its subscriber left (checked every
  // 2.5 s: within 7.5 s), it is gone.
  auto wait = [&](absl::Duration d) {
    for (absl::Duration t; t < d; t += absl::Milliseconds(500)) {
      h_->Advance(absl::Milliseconds(500));
    }
  };
  wait(absl::Seconds(8));
  EXPECT_THAT(Api(n, "CONSUMER.INFO.ORDERS.eph1"),
              HasSubstr(R"("push_bound":true)"));
  s.Send("UNSUB d\r\n");
  wait(absl::Seconds(4));
  EXPECT_THAT(Api(n, "CONSUMER.INFO.ORDERS.eph1"),
              HasSubstr(R"("name":"eph1")"));
  wait(absl::Seconds(4));
  EXPECT_THAT(Api(n, "CONSUMER.INFO.ORDERS.eph1"),
              HasSubstr("consumer not found"));
  EXPECT_THAT(StoredConsumers(disk_), ::testing::ElementsAre("kept"));
}

// An ephemeral pull consumer given a name stays while pull requests wait on
// it, and goes after its inactive_threshold without one.
TEST_F(JetStreamTest, AnEphemeralPullConsumerStaysWhileRequestsWait) {
  NatsClient& n = Client();
  EXPECT_THAT(Api(n, "CONSUMER.CREATE.ORDERS.quick",
                  R"({"config":{"name":"quick",)"
                  R"("inactive_threshold":1000000000}})"),
              HasSubstr(R"("inactive_threshold":1000000000)"));
  Next(n, "quick", R"({"batch":1,"expires":3000000000})");
  h_->Advance(absl::Milliseconds(2500));
  EXPECT_THAT(Api(n, "CONSUMER.INFO.ORDERS.quick"),
              HasSubstr(R"("num_waiting":1)"));
  h_->Advance(absl::Milliseconds(600));  // the request expires
  EXPECT_THAT(n.Next().headers, HasSubstr("408 Request Timeout"));
  h_->Advance(absl::Milliseconds(1600));
  EXPECT_THAT(Api(n, "CONSUMER.INFO.ORDERS.quick"),
              HasSubstr("consumer not found"));
}

// An ephemeral consumer is kept across a restart with its flow control and
// position, and its subscribers have its inactive_threshold to come back:
// the one that comes back goes on (flow control included), one that nobody
// comes back for goes, and one created with mem_storage is gone at once.
TEST_F(JetStreamTest, EphemeralConsumersAndFlowControlOutliveARestart) {
  NatsClient& n = Client();
  NatsClient& s = h_->ConnectNats();
  s.Sub("deliver.e", "d");
  const std::string payload(64 << 10, 'x');  // a record of 65,556 bytes
  for (int i = 0; i < 70; ++i) Store("a", payload);
  EXPECT_THAT(Api(n, "CONSUMER.CREATE.ORDERS",
                  R"({"stream_name":"ORDERS","config":{)"
                  R"("deliver_subject":"deliver.e","ack_policy":"none",)"
                  R"("flow_control":true,"idle_heartbeat":60000000000,)"
                  R"("inactive_threshold":4000000000}})"),
              HasSubstr(R"("name":"eph1")"));
  EXPECT_THAT(Api(n, "CONSUMER.CREATE.ORDERS.idle",
                  R"({"config":{"name":"idle",)"
                  R"("inactive_threshold":2000000000}})"),
              HasSubstr(R"("name":"idle")"));
  EXPECT_THAT(Api(n, "CONSUMER.CREATE.ORDERS.quick",
                  R"({"config":{"name":"quick","mem_storage":true}})"),
              HasSubstr(R"("mem_storage":true)"));
  Pushed pushed;
  TakePushed(s, pushed);
  EXPECT_EQ(pushed.messages, 64);  // stalled on the unanswered request
  EXPECT_THAT(StoredConsumers(disk_),
              ::testing::UnorderedElementsAre("eph1", "idle"));

  Restart();
  NatsClient& again = Client();
  const std::string info = Api(again, "CONSUMER.INFO.ORDERS.eph1");
  EXPECT_THAT(info, HasSubstr(R"("flow_control":true)"));
  EXPECT_THAT(info, HasSubstr(R"("inactive_threshold":4000000000)"));
  EXPECT_THAT(info, HasSubstr(R"("ack_floor":{"stream_seq":64})"));
  EXPECT_THAT(info, Not(HasSubstr("durable_name")));
  EXPECT_THAT(Api(again, "CONSUMER.INFO.ORDERS.quick"),
              HasSubstr("consumer not found"));
  // A new ephemeral consumer does not take a kept one's name.
  EXPECT_THAT(Api(again, "CONSUMER.CREATE.ORDERS",
                  R"({"stream_name":"ORDERS","config":{}})"),
              HasSubstr(R"("name":"eph2")"));

  // The subscriber comes back within the threshold: the 6 messages left,
  // then new ones under flow control again (a request once 32 records are
  // unanswered, a stall at 64).
  h_->Advance(absl::Seconds(1));
  NatsClient& back = h_->ConnectNats();
  back.Sub("deliver.e", "d");
  for (int i = 0; i < 60; ++i) Store("b", payload);
  Pushed after;
  TakePushed(back, after);
  EXPECT_EQ(after.messages, 64);
  ASSERT_EQ(after.requests.size(), 1u);
  EXPECT_EQ(after.requests[0].first, 32);
  EXPECT_EQ(after.requests[0].second.reply, "$JS.FC.ORDERS.eph1.1");

  // Nobody came back for "idle" (2 s, checked every second): gone, from
  // the storage too; eph1, listened to, stays.
  for (int i = 0; i < 6; ++i) h_->Advance(absl::Milliseconds(500));
  EXPECT_THAT(Api(again, "CONSUMER.INFO.ORDERS.idle"),
              HasSubstr("consumer not found"));
  EXPECT_THAT(Api(again, "CONSUMER.INFO.ORDERS.eph1"),
              HasSubstr(R"("push_bound":true)"));
  EXPECT_THAT(StoredConsumers(disk_),
              ::testing::UnorderedElementsAre("eph1", "eph2"));
}

class JetStreamPermissionsTest : public JetStreamTest {
 protected:
  static BrokerOptions Options() {
    BrokerOptions options;
    options.set_require_admission(true);
    return options;
  }
  JetStreamPermissionsTest() : JetStreamTest(Options()) {}

  // A NATS client admitted with `permissions` (none: no limits), subscribed
  // to _INBOX.r.
  NatsClient& Admitted(const Permissions* permissions) {
    NatsClient& c = h_->Accept();
    EXPECT_EQ(c.Next().op, "INFO");
    c.Send("CONNECT {\"verbose\":false,\"headers\":true}\r\nPING\r\n");
    if (permissions == nullptr) {
      EXPECT_TRUE(h_->broker().Admit(c.id(), h_->native().now()).ok());
    } else {
      absl::StatusOr<std::shared_ptr<const PermissionSet>> set =
          PermissionSet::Compile(*permissions);
      EXPECT_TRUE(set.ok()) << set.status();
      EXPECT_TRUE(h_->broker()
                      .Admit(c.id(), Grant{"eve", *set}, h_->native().now())
                      .ok());
    }
    h_->Pump();
    EXPECT_EQ(c.Next().op, "PONG");
    c.Sub("_INBOX.r", "r");
    return c;
  }
};

TEST_F(JetStreamPermissionsTest,
       AConsumerNeedsTheRightToReceiveWhatItDelivers) {
  NatsClient& admin = Admitted(nullptr);
  Create(admin, "all", "orders.*");
  // eve may receive orders/a and her inboxes only.
  Permissions p;
  p.mutable_publish()->add_allow("**");
  p.mutable_subscribe()->add_allow("orders/a");
  p.mutable_subscribe()->add_allow("_INBOX/**");
  NatsClient& eve = Admitted(&p);
  const std::string denied = Create(eve, "mine", "orders.*");
  EXPECT_THAT(denied, HasSubstr("\"code\":403"));
  EXPECT_THAT(denied, HasSubstr("orders/*"));
  EXPECT_THAT(Api(eve, "CONSUMER.INFO.ORDERS.all"), HasSubstr("\"code\":403"));
  Next(eve, "all", "1");
  EXPECT_THAT(eve.Next().payload, HasSubstr("\"code\":403"));
  EXPECT_THAT(Create(eve, "mine", "orders.a"), HasSubstr("\"name\":\"mine\""));
  Store("a", "1");
  Next(eve, "mine", "1");
  EXPECT_EQ(eve.Next().payload, "1");
  // Removing a consumer takes what removing it natively takes: read_sys.
  const std::string kept = Api(eve, "CONSUMER.DELETE.ORDERS.mine");
  EXPECT_THAT(kept, HasSubstr("\"code\":403"));
  EXPECT_THAT(kept, HasSubstr("$sys/streams/consumer/remove"));
  admin.TakeAll();  // eve's answers: both take replies on _INBOX.r
  EXPECT_THAT(Api(admin, "CONSUMER.DELETE.ORDERS.mine"),
              HasSubstr(R"("success":true)"));
}

}  // namespace
}  // namespace manifold
