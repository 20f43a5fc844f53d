#include "client/cli/stream_requests.h"

#include "client/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold::cli {
namespace {

using ::testing::HasSubstr;

TEST(StreamRequestsTest, AddSendsTheSerializedConfig) {
  wire::StreamConfig config;
  config.set_name("orders");
  config.add_topics("orders/**");
  config.set_max_msgs(100);
  config.set_storage(wire::STORAGE_MEMORY);
  const SysRequest add = AddStreamRequest(config);
  EXPECT_EQ(add.topic, "$sys/streams/add");
  wire::StreamConfig sent;
  ASSERT_TRUE(sent.ParseFromString(add.payload));
  EXPECT_EQ(sent.SerializeAsString(), config.SerializeAsString());
}

TEST(StreamRequestsTest, TheOthersSendTheNameOrNothing) {
  EXPECT_EQ(ListStreamsRequest().topic, "$sys/streams/list");
  EXPECT_EQ(ListStreamsRequest().payload, "");
  EXPECT_EQ(StreamInfoRequest("orders").topic, "$sys/streams/info");
  EXPECT_EQ(StreamInfoRequest("orders").payload, "orders");
  EXPECT_EQ(PurgeStreamRequest("orders").topic, "$sys/streams/purge");
  EXPECT_EQ(PurgeStreamRequest("orders").payload, "orders");
  EXPECT_EQ(RemoveStreamRequest("orders").topic, "$sys/streams/remove");
  EXPECT_EQ(RemoveStreamRequest("orders").payload, "orders");
}

TEST(StreamRequestsTest, RemovingAConsumerNamesItsStreamAndItself) {
  const SysRequest r = RemoveConsumerRequest("orders", "billing");
  EXPECT_EQ(r.topic, "$sys/streams/consumer/remove");
  wire::ConsumerState named;
  ASSERT_TRUE(named.ParseFromString(r.payload));
  EXPECT_EQ(named.stream(), "orders");
  EXPECT_EQ(named.name(), "billing");
}

TEST(StreamRequestsTest, AnswersAreParsed) {
  wire::StreamInfo info;
  info.mutable_config()->set_name("orders");
  info.set_last_seq(9);
  Message reply;
  reply.payload = info.SerializeAsString();
  absl::StatusOr<wire::StreamInfo> parsed =
      ParseStreamInfo(StreamInfoRequest("orders"), reply);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config().name(), "orders");
  EXPECT_EQ(parsed->last_seq(), 9u);

  wire::StreamList list;
  *list.add_streams() = info;
  reply.payload = list.SerializeAsString();
  absl::StatusOr<wire::StreamList> streams =
      ParseStreamList(ListStreamsRequest(), reply);
  ASSERT_TRUE(streams.ok()) << streams.status();
  ASSERT_EQ(streams->streams_size(), 1);
  EXPECT_EQ(streams->streams(0).last_seq(), 9u);
}

TEST(StreamRequestsTest, AnAnswerThatIsNoStreamInfoIsDataLoss) {
  Message reply;
  reply.payload = "\xff\xff\xff";
  absl::StatusOr<wire::StreamInfo> parsed =
      ParseStreamInfo(StreamInfoRequest("orders"), reply);
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(parsed.status().message(),
            "the broker's answer on $sys/streams/info is not a StreamInfo "
            "message (3 bytes)");
}

TEST(StreamRequestsTest, NoServerMeansTheBrokerHasNoStreams) {
  const absl::Status no_server =
      RequestFailed(wire::NO_SERVER, "no server for topic '$sys/streams/list'");
  const absl::Status explained =
      StreamRequestFailed(ListStreamsRequest(), no_server);
  EXPECT_THAT(explained.message(),
              HasSubstr("NO_SERVER: no server for topic '$sys/streams/list' "
                        "(this broker has no durable streams"));
  EXPECT_EQ(RequestStatusOf(explained), wire::NO_SERVER);

  // The broker's own refusal is shown as it is.
  const absl::Status rejected =
      RequestFailed(wire::REJECTED, "no stream named 'orders'");
  EXPECT_EQ(StreamRequestFailed(StreamInfoRequest("orders"), rejected),
            rejected);
}

}  // namespace
}  // namespace manifold::cli
