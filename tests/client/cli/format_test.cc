#include "client/cli/format.h"

#include <cstdint>
#include <utility>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

TEST(PrintableTest, KeepsTextAndEscapesTheRest) {
  EXPECT_EQ(Printable("hello world"), "hello world");
  EXPECT_EQ(Printable("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(Printable("two\nlines"), "two\\nlines");
  EXPECT_EQ(Printable("bin\x01"), "bin\\x01");
  EXPECT_EQ(Printable("\xff"), "\\xff");
}

TEST(FormatMessageTest, OneLineForPeople) {
  Message m;
  m.topic = "room/1";
  m.payload = "hello";
  EXPECT_EQ(FormatMessage(m, false), "[room/1] hello");
  m.headers = {{"Trace-Id", "abc"}};
  m.reply_to = "inbox/7";
  EXPECT_EQ(FormatMessage(m, false),
            "[room/1 Trace-Id=abc reply_to=inbox/7] hello");
}

TEST(FormatMessageTest, OneObjectForScripts) {
  Message m;
  m.topic = "room/1";
  m.payload = "hello";
  EXPECT_EQ(FormatMessage(m, true),
            "{\"topic\":\"room/1\",\"payload\":\"hello\"}");
  m.headers = {{"K", "1"}, {"J", "x"}, {"K", "2"}};
  m.reply_to = "inbox/7";
  EXPECT_EQ(FormatMessage(m, true),
            "{\"topic\":\"room/1\",\"payload\":\"hello\","
            "\"headers\":{\"K\":[\"1\",\"2\"],\"J\":[\"x\"]},"
            "\"reply_to\":\"inbox/7\"}");
}

TEST(FormatMessageTest, AMessageFromAStreamShowsItsSequenceAndTime) {
  Message m;
  m.topic = "orders/1";
  m.payload = "shipped";
  m.stream_seq = 5;
  m.stream_time = absl::FromUnixMillis(1764768300123);
  EXPECT_EQ(FormatMessage(m, false),
            "[orders/1 seq=5 time=2025-12-03T13:25:00.123Z] shipped");
  EXPECT_EQ(FormatMessage(m, true),
            "{\"topic\":\"orders/1\",\"seq\":5,"
            "\"time\":\"2025-12-03T13:25:00.123Z\",\"payload\":\"shipped\"}");
}

TEST(FormatTimestampTest, IsRfc3339InUtcToTheMillisecond) {
  EXPECT_EQ(FormatTimestamp(absl::FromUnixMillis(0)),
            "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatTimestamp(absl::FromUnixMillis(1764768300123) +
                            absl::Microseconds(999)),
            "2025-12-03T13:25:00.123Z");
}

TEST(FormatEventTest, ShowsTheEventKindAndEveryField) {
  wire::BrokerEvent event;
  wire::ConnectionRemoved* removed = event.mutable_connection_removed();
  removed->set_session_id(3);
  removed->set_client_name("cli");
  removed->set_code(wire::KEEPALIVE_TIMEOUT);
  EXPECT_EQ(FormatEvent("$sys/connection/removed", event, false),
            "$sys/connection/removed connection_removed session_id=3 "
            "client_name=\"cli\" code=KEEPALIVE_TIMEOUT reason=\"\" "
            "detached=false");
  EXPECT_EQ(FormatEvent("$sys/connection/removed", event, true),
            "{\"topic\":\"$sys/connection/removed\","
            "\"event\":\"connection_removed\",\"session_id\":3,"
            "\"client_name\":\"cli\",\"code\":\"KEEPALIVE_TIMEOUT\","
            "\"reason\":\"\",\"detached\":false}");
}

TEST(FormatEventTest, AnEmptyEventIsShownAsUnknown) {
  EXPECT_EQ(FormatEvent("$sys/x", wire::BrokerEvent(), false),
            "$sys/x unknown");
}

TEST(FormatStatisticsTest, AlignedLinesForPeopleAndOneObjectForScripts) {
  wire::Statistics stats;
  stats.set_connections(2);
  stats.set_deliveries(40);
  stats.set_slow_consumer_policy("backpressure");
  stats.set_stalled_ms(1500);
  wire::ProtocolConnections* by_protocol = stats.add_connections_by_protocol();
  by_protocol->set_protocol("nats");
  by_protocol->set_connections(2);
  const std::string text = FormatStatistics(stats, false);
  EXPECT_THAT(text, StartsWith("connections                2\n"
                               "subscriptions              0\n"));
  EXPECT_THAT(text, HasSubstr("\ndeliveries                 40\n"));
  EXPECT_THAT(text, HasSubstr("\nslow_consumer_policy       backpressure\n"));
  EXPECT_THAT(text, HasSubstr("\nstalled_ms                 1500\n"));
  EXPECT_THAT(text, ::testing::EndsWith("\nconnections_by_protocol    nats=2"));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 37);  // 38 lines
  const std::string json = FormatStatistics(stats, true);
  EXPECT_THAT(json, StartsWith("{\"connections\":2,\"subscriptions\":0,"));
  EXPECT_THAT(json, HasSubstr("\"deliveries\":40,"));
  EXPECT_THAT(json, HasSubstr("\"connections_by_protocol\":{\"nats\":2}}"));
}

TEST(FormatStatisticsTest, TlsFailuresAreOneLineByReasonOnceReported) {
  wire::Statistics stats;
  stats.set_tls_handshakes(5);
  for (const auto& [reason, count] :
       {std::pair<const char*, uint64_t>{"handshake_failure", 1},
        {"plain_text", 2}}) {
    wire::TlsFailures* f = stats.add_tls_failures();
    f->set_reason(reason);
    f->set_count(count);
  }
  const std::string text = FormatStatistics(stats, false);
  EXPECT_THAT(text, HasSubstr("\ntls_handshakes             5\n"));
  EXPECT_THAT(
      text,
      ::testing::EndsWith(
          "\ntls_failures               handshake_failure=1 plain_text=2"));
  const std::string json = FormatStatistics(stats, true);
  EXPECT_THAT(json, HasSubstr("\"tls_handshakes\":5,"));
  EXPECT_THAT(json,
              ::testing::EndsWith("\"tls_failures\":{\"handshake_failure\":1,"
                                  "\"plain_text\":2}}"));
  // A broker without TLS: no line, no key.
  EXPECT_THAT(FormatStatistics(wire::Statistics(), false),
              Not(HasSubstr("tls_failures")));
  EXPECT_THAT(FormatStatistics(wire::Statistics(), true),
              Not(HasSubstr("tls_failures")));
}

TEST(FormatStatisticsTest, StreamsAreOneLineOnceThereAreSome) {
  wire::Statistics stats;
  stats.set_stored_messages(7);
  wire::StreamInfo* s = stats.add_streams();
  s->mutable_config()->set_name("orders");
  s->set_messages(5);
  s->set_bytes(120);
  s->set_first_seq(3);
  s->set_last_seq(7);
  s->set_expired(2);
  const std::string text = FormatStatistics(stats, false);
  EXPECT_THAT(text, HasSubstr("\nstored_messages            7\n"));
  EXPECT_THAT(text,
              ::testing::EndsWith("\nstreams                    orders: 5 "
                                  "messages, 120 bytes, seq 3-7"));
  EXPECT_THAT(
      FormatStatistics(stats, true),
      ::testing::EndsWith("\"streams\":[{\"name\":\"orders\",\"messages\":5,"
                          "\"bytes\":120,\"first_seq\":3,\"last_seq\":7,"
                          "\"expired\":2}]}"));
  EXPECT_THAT(FormatStatistics(wire::Statistics(), false),
              Not(HasSubstr("streams ")));
}

TEST(FormatStatisticsTest, ClusterFiguresAreOneLineInACluster) {
  wire::Statistics stats;
  stats.mutable_cluster()->set_nodes(2);
  stats.mutable_cluster()->set_redis_connected(true);
  const std::string text = FormatStatistics(stats, false);
  EXPECT_THAT(text, HasSubstr("\ncluster                    nodes=2 "
                              "redis_connected=true messages_out=0"));
  EXPECT_THAT(FormatStatistics(stats, true),
              HasSubstr("\"cluster\":{\"nodes\":2,\"redis_connected\":true,"));
  EXPECT_THAT(FormatStatistics(wire::Statistics(), false),
              Not(HasSubstr("cluster")));
}

}  // namespace
}  // namespace manifold::cli
