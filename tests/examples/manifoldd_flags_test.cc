// manifoldd's flags map onto BrokerOptions and the server's configuration,
// and values that make no sense are refused naming the flag.

#include <string>

#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "examples/tcp_broker/broker_flags.h"
#include "examples/tcp_broker/server_flags.h"
#include "gtest/gtest.h"

namespace manifold {
namespace {

// Sets a flag from text, as the command line would.
void Set(absl::string_view name, absl::string_view value) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  ASSERT_NE(flag, nullptr) << name;
  std::string error;
  ASSERT_TRUE(flag->ParseFrom(value, &error)) << name << ": " << error;
}

std::string ParseError(absl::string_view name, absl::string_view value) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  std::string error;
  EXPECT_FALSE(flag->ParseFrom(value, &error)) << name << "=" << value;
  return error;
}

TEST(BrokerFlagsTest, DefaultsAreTheBrokersOwnDefaults) {
  absl::FlagSaver saver;
  absl::StatusOr<BrokerOptions> options = BrokerOptionsFromFlags();
  ASSERT_TRUE(options.ok()) << options.status();
  const BrokerOptions defaults;
  EXPECT_EQ(options->server_name, defaults.server_name);
  EXPECT_EQ(options->max_connections, defaults.max_connections);
  EXPECT_EQ(options->max_payload_bytes, defaults.max_payload_bytes);
  EXPECT_EQ(options->max_outbound_bytes, defaults.max_outbound_bytes);
  EXPECT_EQ(options->keepalive_interval, defaults.keepalive_interval);
  EXPECT_EQ(options->slow_consumer_policy, defaults.slow_consumer_policy);
  EXPECT_EQ(options->statistics_interval, defaults.statistics_interval);
}

TEST(BrokerFlagsTest, EveryLimitFlagSetsItsOption) {
  absl::FlagSaver saver;
  Set("server_name", "edge-7");
  Set("max_connections", "11");
  Set("handshake_timeout", "3s");
  Set("keepalive_interval", "15s");
  Set("keepalive_max_missed", "4");
  Set("close_linger", "250ms");
  Set("max_frame_bytes", "2000000");
  Set("max_payload_bytes", "65536");
  Set("max_topic_length", "100");
  Set("max_topic_depth", "8");
  Set("max_inbound_bytes", "4096");
  Set("max_outbound_bytes", "1000000");
  Set("slow_consumer_policy", "drop");
  Set("max_subscriptions_per_connection", "12");
  Set("max_services_per_connection", "13");
  Set("max_pending_requests_per_connection", "14");
  Set("default_request_timeout", "2s");
  Set("max_request_timeout", "1m");
  Set("statistics_interval", "0");
  Set("frames_per_turn", "9");

  absl::StatusOr<BrokerOptions> o = BrokerOptionsFromFlags();
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->server_name, "edge-7");
  EXPECT_EQ(o->max_connections, 11u);
  EXPECT_EQ(o->handshake_timeout, absl::Seconds(3));
  EXPECT_EQ(o->keepalive_interval, absl::Seconds(15));
  EXPECT_EQ(o->keepalive_max_missed, 4u);
  EXPECT_EQ(o->close_linger, absl::Milliseconds(250));
  EXPECT_EQ(o->max_frame_bytes, 2000000u);
  EXPECT_EQ(o->max_payload_bytes, 65536u);
  EXPECT_EQ(o->topic_limits.max_length, 100u);
  EXPECT_EQ(o->topic_limits.max_depth, 8u);
  EXPECT_EQ(o->max_inbound_bytes, 4096u);
  EXPECT_EQ(o->max_outbound_bytes, 1000000u);
  EXPECT_EQ(o->slow_consumer_policy, SlowConsumerPolicy::kDropAndCount);
  EXPECT_EQ(o->max_subscriptions_per_connection, 12u);
  EXPECT_EQ(o->max_services_per_connection, 13u);
  EXPECT_EQ(o->max_pending_requests_per_connection, 14u);
  EXPECT_EQ(o->default_request_timeout, absl::Seconds(2));
  EXPECT_EQ(o->max_request_timeout, absl::Minutes(1));
  EXPECT_EQ(o->statistics_interval, absl::ZeroDuration());
  EXPECT_EQ(o->frames_per_turn, 9u);
}

TEST(BrokerFlagsTest, SlowConsumerPolicyIsDisconnectOrDrop) {
  absl::FlagSaver saver;
  Set("slow_consumer_policy", "disconnect");
  EXPECT_EQ(BrokerOptionsFromFlags()->slow_consumer_policy,
            SlowConsumerPolicy::kDisconnect);
  EXPECT_EQ(ParseError("slow_consumer_policy", "sometimes"),
            "Illegal value 'sometimes' specified for flag "
            "'slow_consumer_policy'; expected disconnect or drop");
}

TEST(BrokerFlagsTest, NonsenseValuesAreRefusedNamingTheFlag) {
  {
    absl::FlagSaver saver;
    Set("max_connections", "0");
    EXPECT_EQ(BrokerOptionsFromFlags().status().message(),
              "--max_connections must be at least 1");
  }
  {
    absl::FlagSaver saver;
    Set("keepalive_interval", "-1s");
    EXPECT_EQ(BrokerOptionsFromFlags().status().message(),
              "--keepalive_interval must not be negative");
  }
  {
    absl::FlagSaver saver;
    Set("handshake_timeout", "0");
    EXPECT_EQ(BrokerOptionsFromFlags().status().message(),
              "--handshake_timeout must be longer than 0");
  }
  ParseError("max_payload_bytes", "-1");
  ParseError("max_payload_bytes", "lots");
}

TEST(ServerFlagsTest, ListensOnTheDefaultPortUnlessToldOtherwise) {
  absl::FlagSaver saver;
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->loop, "epoll");
  ASSERT_EQ(config->listeners.size(), 1u);
  EXPECT_EQ(config->listeners[0].endpoint.ToString(), "127.0.0.1:24387");
  EXPECT_EQ(config->listeners[0].display_label(), "tcp");
  EXPECT_FALSE(config->listeners[0].codec_factory);  // the native protocol
  EXPECT_EQ(config->options.driver.logger.level(), LogLevel::kInfo);
}

TEST(ServerFlagsTest, UnixSocketAndLoggingAndShutdownFlagsApply) {
  absl::FlagSaver saver;
  Set("listen", "[::1]:0");
  Set("unix", "/tmp/m.sock");
  Set("log_level", "debug");
  Set("shutdown_timeout", "2s");
  Set("max_connections", "5");
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->listeners.size(), 2u);
  EXPECT_EQ(config->listeners[0].endpoint.ToString(), "[::1]:0");
  EXPECT_EQ(config->listeners[1].endpoint.ToString(), "/tmp/m.sock");
  EXPECT_EQ(config->listeners[1].display_label(), "unix");
  EXPECT_EQ(config->options.driver.logger.level(), LogLevel::kDebug);
  EXPECT_EQ(config->options.shutdown_timeout, absl::Seconds(2));
  EXPECT_EQ(config->options.broker.max_connections, 5u);
}

TEST(ServerFlagsTest, NatsAndRecordFlags) {
  absl::FlagSaver saver;
  Set("nats", "127.0.0.1:4222");
  Set("record", "/tmp/session.textpb");
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->listeners.size(), 2u);
  const ListenerConfig& nats = config->listeners[1];
  EXPECT_EQ(nats.display_label(), "nats");
  EXPECT_EQ(nats.endpoint.port, 4222);
  ASSERT_TRUE(nats.codec_factory != nullptr);
  EXPECT_EQ(nats.codec_factory()->name(), "nats");
  EXPECT_EQ(config->record_path, "/tmp/session.textpb");
  Set("nats", "nowhere");
  EXPECT_TRUE(
      absl::StartsWith(ServerConfigFromFlags().status().message(), "--nats: "));
}

TEST(ServerFlagsTest, NothingToListenOnIsAnError) {
  absl::FlagSaver saver;
  Set("listen", "");
  EXPECT_EQ(ServerConfigFromFlags().status().message(),
            "nothing to listen on: give --listen HOST:PORT, --unix PATH or "
            "--nats HOST:PORT");
  Set("listen", "nonsense");
  EXPECT_TRUE(absl::StartsWith(ServerConfigFromFlags().status().message(),
                               "--listen: invalid address 'nonsense'"));
  EXPECT_EQ(ParseError("log_level", "loud"),
            "Illegal value 'loud' specified for flag 'log_level'; expected "
            "one of error, warning, info, debug");
}

}  // namespace
}  // namespace manifold
