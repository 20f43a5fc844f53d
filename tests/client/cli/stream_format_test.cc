#include "client/cli/stream_format.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold::cli {
namespace {

wire::StreamInfo Orders() {
  wire::StreamInfo info;
  wire::StreamConfig* config = info.mutable_config();
  config->set_name("orders");
  config->add_topics("orders/**");
  config->add_topics("refunds/*");
  config->set_max_bytes(1 << 20);
  config->set_max_age_ms(24 * 3600 * 1000);
  config->set_storage(wire::STORAGE_FILE);
  info.set_first_seq(3);
  info.set_last_seq(12);
  info.set_messages(10);
  info.set_bytes(420);
  info.set_first_time_unix_ms(1764768300123);
  info.set_last_time_unix_ms(1764768301000);
  info.set_expired(2);
  return info;
}

wire::StreamInfo EmptyTicks() {
  wire::StreamInfo info;
  info.mutable_config()->set_name("ticks");
  info.mutable_config()->add_topics("ticks/*");
  info.mutable_config()->set_storage(wire::STORAGE_MEMORY);
  info.set_last_seq(7);  // all seven purged
  return info;
}

TEST(StorageNameTest, NamesEachKind) {
  EXPECT_EQ(StorageName(wire::STORAGE_FILE), "file");
  EXPECT_EQ(StorageName(wire::STORAGE_MEMORY), "memory");
  EXPECT_EQ(StorageName(static_cast<wire::StorageKind>(9)), "STORAGE_9");
}

TEST(FormatStreamInfoTest, KeyValueLinesForPeople) {
  EXPECT_EQ(FormatStreamInfo(Orders(), false),
            "name                orders\n"
            "storage             file\n"
            "topics              orders/**,refunds/*\n"
            "max_msgs            none\n"
            "max_msgs_per_topic  none\n"
            "max_bytes           1048576\n"
            "max_age             24h\n"
            "messages            10\n"
            "bytes               420\n"
            "first_seq           3\n"
            "last_seq            12\n"
            "first_time          2025-12-03T13:25:00.123Z\n"
            "last_time           2025-12-03T13:25:01.000Z\n"
            "expired             2");
}

TEST(FormatStreamInfoTest, OneObjectForScriptsWithEveryKey) {
  EXPECT_EQ(FormatStreamInfo(Orders(), true),
            "{\"name\":\"orders\",\"storage\":\"file\","
            "\"topics\":[\"orders/**\",\"refunds/*\"],\"max_msgs\":0,"
            "\"max_msgs_per_topic\":0,\"max_bytes\":1048576,\"max_age_ms\":"
            "86400000,\"messages\":10,"
            "\"bytes\":420,\"first_seq\":3,\"last_seq\":12,"
            "\"first_time\":\"2025-12-03T13:25:00.123Z\","
            "\"last_time\":\"2025-12-03T13:25:01.000Z\",\"expired\":2,"
            "\"consumers\":[]}");
  // An empty stream has no times.
  EXPECT_EQ(FormatStreamInfo(EmptyTicks(), true),
            "{\"name\":\"ticks\",\"storage\":\"memory\","
            "\"topics\":[\"ticks/*\"],\"max_msgs\":0,"
            "\"max_msgs_per_topic\":0,\"max_bytes\":0,"
            "\"max_age_ms\":0,\"messages\":0,\"bytes\":0,\"first_seq\":0,"
            "\"last_seq\":7,\"first_time\":null,\"last_time\":null,"
            "\"expired\":0,\"consumers\":[]}");
  EXPECT_THAT(
      FormatStreamInfo(EmptyTicks(), false),
      ::testing::HasSubstr("first_time          -\nlast_time           -\n"));
}

TEST(FormatStreamInfoTest, ShowsEachDurableConsumer) {
  wire::StreamInfo info = Orders();
  wire::ConsumerState* c = info.add_consumers();
  c->set_stream("orders");
  c->set_name("billing");
  c->set_pattern("orders/**");
  c->set_ack_wait_ms(30000);
  c->set_max_in_flight(1000);
  c->set_ack_floor(7);
  c->set_delivered_high(9);
  c->set_in_flight(2);
  c->set_members(1);
  EXPECT_THAT(FormatStreamInfo(info, false),
              ::testing::EndsWith(
                  "\nexpired             2\n"
                  "consumer            billing pattern=orders/** ack_floor=7 "
                  "delivered_high=9 in_flight=2 members=1"));
  EXPECT_THAT(
      FormatStreamInfo(info, true),
      ::testing::EndsWith("\"expired\":2,\"consumers\":[{\"name\":\"billing\","
                          "\"pattern\":\"orders/**\",\"ack_wait_ms\":30000,"
                          "\"max_in_flight\":1000,\"ack_floor\":7,"
                          "\"delivered_high\":9,\"in_flight\":2,\"members\":1,"
                          "\"deliver_topic\":\"\",\"deliver_group\":\"\","
                          "\"ack_all\":false,\"ack_none\":false,"
                          "\"idle_heartbeat_ms\":0,\"flow_control\":false,"
                          "\"inactive_threshold_ms\":0}]}"));
  // A NATS push consumer says where it delivers.
  c->set_deliver_topic("deliver/billing");
  c->set_deliver_group("workers");
  c->set_ack_all(true);
  c->set_idle_heartbeat_ms(5000);
  c->set_flow_control(true);
  c->set_inactive_threshold_ms(5000);
  EXPECT_THAT(FormatStreamInfo(info, false),
              ::testing::EndsWith("members=1 deliver_topic=deliver/billing "
                                  "deliver_group=workers ack_all "
                                  "idle_heartbeat_ms=5000 flow_control "
                                  "inactive_threshold_ms=5000"));
  EXPECT_THAT(FormatStreamInfo(info, true),
              ::testing::EndsWith("\"deliver_topic\":\"deliver/billing\","
                                  "\"deliver_group\":\"workers\","
                                  "\"ack_all\":true,\"ack_none\":false,"
                                  "\"idle_heartbeat_ms\":5000,"
                                  "\"flow_control\":true,"
                                  "\"inactive_threshold_ms\":5000}]}"));
}

TEST(FormatStreamListTest, ATableForPeople) {
  wire::StreamList list;
  *list.add_streams() = Orders();
  *list.add_streams() = EmptyTicks();
  EXPECT_EQ(FormatStreamList(list, false),
            "NAME    STORAGE  TOPICS               MESSAGES  BYTES  FIRST_SEQ  "
            "LAST_SEQ\n"
            "orders  file     orders/**,refunds/*        10    420          3  "
            "      12\n"
            "ticks   memory   ticks/*                     0      0          0  "
            "       7");
  EXPECT_EQ(FormatStreamList(wire::StreamList(), false), "no streams");
}

TEST(FormatStreamListTest, OneObjectPerStreamPerLineForScripts) {
  wire::StreamList list;
  *list.add_streams() = Orders();
  *list.add_streams() = EmptyTicks();
  EXPECT_EQ(FormatStreamList(list, true),
            FormatStreamInfo(Orders(), true) + "\n" +
                FormatStreamInfo(EmptyTicks(), true));
  EXPECT_EQ(FormatStreamList(wire::StreamList(), true), "");
}

}  // namespace
}  // namespace manifold::cli
