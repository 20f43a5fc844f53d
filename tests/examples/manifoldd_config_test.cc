// manifoldd's configuration: flags and configuration files set the settings
// of server_config.proto, flags win over the file, and values that make no
// sense are refused naming the flag, or the file, line and field.

#include "examples/tcp_broker/manifoldd_config.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/config/config_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transports/driver/log.h"

namespace manifold {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

absl::StatusOr<ManifolddCommandLine> Parse(std::vector<std::string> args) {
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  return ParseManifolddCommandLine(argv);
}

// A configuration file in the test's temporary directory.
std::string WriteFile(absl::string_view name, absl::string_view text) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/", name);
  std::ofstream(path) << text;
  return path;
}

TEST(ManifolddFlagsTest, DefaultsAreTheBrokersOwnDefaults) {
  absl::StatusOr<ManifolddCommandLine> c = Parse({});
  ASSERT_TRUE(c.ok()) << c.status();
  const BrokerOptions defaults;
  EXPECT_EQ(c->config.broker().max_connections(), defaults.max_connections());
  EXPECT_EQ(c->config.broker().keepalive_interval_ms(), 30000u);
  EXPECT_EQ(c->config.broker().slow_consumer_policy(),
            defaults.slow_consumer_policy());
  EXPECT_FALSE(c->help);
  EXPECT_FALSE(c->print_config);
}

TEST(ManifolddFlagsTest, EverySettingIsAFlagOfItsOwnName) {
  absl::StatusOr<ManifolddCommandLine> c = Parse({
      "--server_name=edge-7",
      "--max_connections",
      "11",
      "--handshake_timeout=3s",
      "--keepalive_interval_ms=15000",
      "--keepalive_max_missed=4",
      "--close_linger=250ms",
      "--max_frame_bytes=2000000",
      "--max_payload_bytes=65536",
      "--max_topic_length=100",
      "--max_topic_depth=8",
      "--max_inbound_bytes=4096",
      "--max_outbound_bytes=1000000",
      "--slow_consumer_policy=drop",
      "--max_subscriptions_per_connection=12",
      "--max_services_per_connection=13",
      "--max_pending_requests_per_connection=14",
      "--default_request_timeout=2s",
      "--max_request_timeout=1m",
      "--statistics_interval=0",
      "--frames_per_turn=9",
  });
  ASSERT_TRUE(c.ok()) << c.status();
  const BrokerOptions& o = c->config.broker();
  EXPECT_EQ(o.server_name(), "edge-7");
  EXPECT_EQ(o.max_connections(), 11u);
  EXPECT_EQ(o.handshake_timeout_ms(), 3000u);
  EXPECT_EQ(o.keepalive_interval_ms(), 15000u);
  EXPECT_EQ(o.keepalive_max_missed(), 4u);
  EXPECT_EQ(o.close_linger_ms(), 250u);
  EXPECT_EQ(o.max_frame_bytes(), 2000000u);
  EXPECT_EQ(o.max_payload_bytes(), 65536u);
  EXPECT_EQ(o.max_topic_length(), 100u);
  EXPECT_EQ(o.max_topic_depth(), 8u);
  EXPECT_EQ(o.max_inbound_bytes(), 4096u);
  EXPECT_EQ(o.max_outbound_bytes(), 1000000u);
  EXPECT_EQ(o.slow_consumer_policy(), BrokerOptions::DROP);
  EXPECT_EQ(o.max_subscriptions_per_connection(), 12u);
  EXPECT_EQ(o.max_services_per_connection(), 13u);
  EXPECT_EQ(o.max_pending_requests_per_connection(), 14u);
  EXPECT_EQ(o.default_request_timeout_ms(), 2000u);
  EXPECT_EQ(o.max_request_timeout_ms(), 60000u);
  EXPECT_EQ(o.statistics_interval_ms(), 0u);
  EXPECT_EQ(o.frames_per_turn(), 9u);
}

TEST(ManifolddFlagsTest, NonsenseValuesAreRefusedNamingTheFlag) {
  EXPECT_EQ(Parse({"--max_connections=0"}).status().message(),
            "--max_connections must be at least 1");
  EXPECT_EQ(Parse({"--handshake_timeout=0"}).status().message(),
            "--handshake_timeout must be at least 1");
  EXPECT_THAT(
      std::string(Parse({"--keepalive_interval=-1s"}).status().message()),
      StartsWith("--keepalive_interval: expected a duration"));
  EXPECT_EQ(Parse({"--max_payload_bytes=lots"}).status().message(),
            "--max_payload_bytes: expected a whole number, got 'lots'");
  EXPECT_EQ(Parse({"--slow_consumer_policy=sometimes"}).status().message(),
            "--slow_consumer_policy: expected disconnect|drop|backpressure, "
            "got 'sometimes'");
  EXPECT_EQ(Parse({"--log_level=loud"}).status().message(),
            "--log_level: expected error|warning|info|debug, got 'loud'");
  EXPECT_EQ(Parse({"--nope"}).status().message(),
            "unknown flag --nope (--help lists them)");
  EXPECT_EQ(Parse({"--listen"}).status().message(), "--listen needs a value");
  EXPECT_EQ(Parse({"stray"}).status().message(),
            "unexpected argument 'stray'; flags start with --");
}

TEST(ManifolddFlagsTest, EmbedderOnlySettingsAreNotFlags) {
  EXPECT_EQ(Parse({"--require_admission"}).status().message(),
            "unknown flag --require_admission (--help lists them)");
}

TEST(ManifolddFlagsTest, HelpListsEveryFlagWithItsDefaultAndNoBuildPath) {
  const std::string help = ManifolddHelp();
  for (const char* flag :
       {"--config=FILE", "--print_config", "--listen=HOST:PORT", "--unix=PATH",
        "--nats=HOST:PORT",
        "--loop=", "--log_level=", "--shutdown_timeout=", "--record=FILE",
        "--max_connections=N", "--slow_consumer_policy=", "--frames_per_turn=N",
        "--keepalive_interval=DURATION"}) {
    EXPECT_THAT(help, HasSubstr(flag));
  }
  EXPECT_THAT(help, HasSubstr("(default: \"127.0.0.1:24387\")"));
  EXPECT_THAT(help, HasSubstr("(default: 30s)"));
  EXPECT_THAT(help, ::testing::Not(HasSubstr(".cc")));
  EXPECT_THAT(help, ::testing::Not(HasSubstr("require_admission")));
  EXPECT_TRUE(Parse({"--help"})->help);
  EXPECT_TRUE(Parse({"--helpfull"})->help);
}

TEST(ManifolddConfigFileTest, TextFileSetsTheSettingsAndFlagsOverrideIt) {
  const std::string path = WriteFile("text.textpb", R"(
    # A comment.
    listen: "127.0.0.1:0"
    nats: "127.0.0.1:4222"
    broker {
      max_connections: 100
      slow_consumer_policy: DROP
      keepalive_interval_ms: 1000
    }
  )");
  absl::StatusOr<ManifolddCommandLine> c =
      Parse({"--config", path, "--max_connections=7"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->config.listen(), "127.0.0.1:0");
  EXPECT_EQ(c->config.nats(), "127.0.0.1:4222");
  EXPECT_EQ(c->config.broker().max_connections(), 7u);  // the flag wins
  EXPECT_EQ(c->config.broker().slow_consumer_policy(), BrokerOptions::DROP);
  EXPECT_EQ(c->config.broker().keepalive_interval_ms(), 1000u);
  // A flag before --config still wins: the file is read first.
  c = Parse({"--max_connections=9", "--config=" + path});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->config.broker().max_connections(), 9u);
}

TEST(ManifolddConfigFileTest, JsonFileThroughProtobufsJsonMapping) {
  const std::string path = WriteFile("config.json", R"({
    "listen": "127.0.0.1:0",
    "broker": {"maxConnections": 12, "slow_consumer_policy": "DROP",
               "statisticsIntervalMs": "0"}
  })");
  absl::StatusOr<ManifolddCommandLine> c = Parse({"--config", path});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->config.broker().max_connections(), 12u);
  EXPECT_EQ(c->config.broker().slow_consumer_policy(), BrokerOptions::DROP);
  EXPECT_EQ(c->config.broker().statistics_interval_ms(), 0u);
}

TEST(ManifolddConfigFileTest, ErrorsNameTheFileLineAndField) {
  const std::string unknown =
      WriteFile("unknown.textpb", "listen: \"127.0.0.1:0\"\nbogus: 3\n");
  EXPECT_EQ(Parse({"--config", unknown}).status().message(),
            absl::StrCat(unknown, ":2:6: unknown field \"bogus\"."));

  const std::string low =
      WriteFile("low.textpb",
                "listen: \"127.0.0.1:0\"\nbroker {\n  max_connections: 0\n}\n");
  EXPECT_EQ(Parse({"--config", low}).status().message(),
            absl::StrCat(low, ":3:3: max_connections must be at least 1"));

  const std::string bad_type =
      WriteFile("type.textpb", "broker { max_connections: \"many\" }\n");
  EXPECT_THAT(std::string(Parse({"--config", bad_type}).status().message()),
              StartsWith(absl::StrCat(bad_type, ":1:27: ")));

  const std::string bad_enum = WriteFile(
      "enum.textpb", "broker {\n  slow_consumer_policy: SOMETIMES\n}");
  EXPECT_THAT(std::string(Parse({"--config", bad_enum}).status().message()),
              StartsWith(absl::StrCat(bad_enum, ":")));
  EXPECT_THAT(std::string(Parse({"--config", bad_enum}).status().message()),
              HasSubstr("SOMETIMES"));

  const std::string embedder =
      WriteFile("embedder.textpb", "broker { require_admission: true }\n");
  EXPECT_EQ(Parse({"--config", embedder}).status().message(),
            absl::StrCat(embedder,
                         ":1:10: require_admission is for programs that embed "
                         "the broker; it cannot be set here"));

  const std::string json_unknown =
      WriteFile("unknown.json", "{\n  \"listen\": \"x\",\n  \"nope\": 1\n}");
  EXPECT_EQ(Parse({"--config", json_unknown}).status().message(),
            absl::StrCat(json_unknown, ":3:3: nope: Cannot find field."));

  const std::string json_low =
      WriteFile("low.json", "{\"broker\": {\n  \"max_connections\": 0}}");
  EXPECT_EQ(Parse({"--config", json_low}).status().message(),
            absl::StrCat(json_low, ":2:3: max_connections must be at least 1"));

  const std::string missing = absl::StrCat(::testing::TempDir(), "/absent");
  EXPECT_EQ(Parse({"--config", missing}).status().message(),
            absl::StrCat(missing, ": cannot read the configuration file"));
}

TEST(ManifolddConfigFileTest, PrintedConfigurationReadsBackTheSame) {
  absl::StatusOr<ManifolddCommandLine> c =
      Parse({"--nats=127.0.0.1:4222", "--max_outbound_bytes=12345",
             "--slow_consumer_policy=drop", "--print_config"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->print_config);
  const std::string printed = config::PrintConfig(c->config);
  EXPECT_THAT(printed, HasSubstr("max_outbound_bytes: 12345\n"));
  EXPECT_THAT(printed, HasSubstr("keepalive_interval_ms: 30000  # 30s\n"));
  EXPECT_THAT(printed, HasSubstr("# Most client connections at once"));
  const std::string path = WriteFile("printed.textpb", printed);
  absl::StatusOr<ManifolddCommandLine> again = Parse({"--config", path});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->config.nats(), "127.0.0.1:4222");
  EXPECT_EQ(again->config.broker().max_outbound_bytes(), 12345u);
  EXPECT_EQ(again->config.broker().slow_consumer_policy(), BrokerOptions::DROP);
  EXPECT_EQ(again->config.broker().max_connections(), 65536u);
}

// Where the commented example configuration is: compiled in by CMake, in the
// environment under Bazel.
std::string ExampleConfigPath() {
#ifdef MANIFOLDD_EXAMPLE_CONFIG
  return MANIFOLDD_EXAMPLE_CONFIG;
#else
  const char* path = std::getenv("MANIFOLDD_EXAMPLE_CONFIG");
  return path != nullptr ? path : "examples/tcp_broker/manifoldd.textpb";
#endif
}

TEST(ManifolddConfigFileTest, TheCommentedExampleLoadsAndRuns) {
  absl::StatusOr<ManifolddCommandLine> c =
      Parse({"--config", ExampleConfigPath()});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->config.broker().server_name(), "edge-1");
  EXPECT_EQ(c->config.broker().max_connections(), 10000u);
  EXPECT_EQ(c->config.web().http_max_header_bytes(), 16384u);
  absl::StatusOr<ServerSetup> setup = MakeServerSetup(c->config);
  ASSERT_TRUE(setup.ok()) << setup.status();
  EXPECT_EQ(setup->listeners.size(), 3u);
}

TEST(ServerSetupTest, ListensOnTheDefaultPortUnlessToldOtherwise) {
  absl::StatusOr<ServerSetup> setup = MakeServerSetup(ServerConfig());
  ASSERT_TRUE(setup.ok()) << setup.status();
  EXPECT_EQ(setup->loop, "epoll");
  ASSERT_EQ(setup->listeners.size(), 1u);
  EXPECT_EQ(setup->listeners[0].endpoint.ToString(), "127.0.0.1:24387");
  EXPECT_EQ(setup->listeners[0].display_label(), "tcp");
  EXPECT_FALSE(setup->listeners[0].codec_factory);  // the native protocol
  EXPECT_EQ(setup->options.driver.logger.level(), LogLevel::kInfo);
}

TEST(ServerSetupTest, UnixSocketLoggingAndShutdownSettingsApply) {
  absl::StatusOr<ManifolddCommandLine> c =
      Parse({"--listen=[::1]:0", "--unix=/tmp/m.sock", "--log_level=debug",
             "--shutdown_timeout=2s", "--max_connections=5"});
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<ServerSetup> setup = MakeServerSetup(c->config);
  ASSERT_TRUE(setup.ok()) << setup.status();
  ASSERT_EQ(setup->listeners.size(), 2u);
  EXPECT_EQ(setup->listeners[0].endpoint.ToString(), "[::1]:0");
  EXPECT_EQ(setup->listeners[1].endpoint.ToString(), "/tmp/m.sock");
  EXPECT_EQ(setup->listeners[1].display_label(), "unix");
  EXPECT_EQ(setup->options.driver.logger.level(), LogLevel::kDebug);
  EXPECT_EQ(setup->options.shutdown_timeout, absl::Seconds(2));
  EXPECT_EQ(setup->options.broker.max_connections(), 5u);
}

TEST(ServerSetupTest, NatsListenerAndRecording) {
  ServerConfig config;
  config.set_nats("127.0.0.1:4222");
  config.set_record("/tmp/session.textpb");
  absl::StatusOr<ServerSetup> setup = MakeServerSetup(config);
  ASSERT_TRUE(setup.ok()) << setup.status();
  ASSERT_EQ(setup->listeners.size(), 2u);
  const ListenerConfig& nats = setup->listeners[1];
  EXPECT_EQ(nats.display_label(), "nats");
  EXPECT_EQ(nats.endpoint.port, 4222);
  ASSERT_TRUE(nats.codec_factory != nullptr);
  EXPECT_EQ(nats.codec_factory()->name(), "nats");
  EXPECT_EQ(setup->record_path, "/tmp/session.textpb");
  config.set_nats("nowhere");
  EXPECT_THAT(std::string(MakeServerSetup(config).status().message()),
              StartsWith("--nats: "));
}

TEST(ServerSetupTest, ClusterAndNodeComeTogether) {
  absl::StatusOr<ManifolddCommandLine> c =
      Parse({"--cluster=redis://127.0.0.1:6379", "--node=n1"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->config.cluster(), "redis://127.0.0.1:6379");
  EXPECT_EQ(c->config.node(), "n1");
  EXPECT_TRUE(MakeServerSetup(c->config).ok());
  ServerConfig config = c->config;
  config.clear_node();
  EXPECT_EQ(MakeServerSetup(config).status().message(),
            "--cluster needs --node NAME, unique in the cluster");
  config = c->config;
  config.clear_cluster();
  EXPECT_THAT(std::string(MakeServerSetup(config).status().message()),
              StartsWith("--node names this broker in a cluster"));
}

TEST(ServerSetupTest, CredentialsTurnOnAdmission) {
  ServerConfig config;
  absl::StatusOr<ServerSetup> open = MakeServerSetup(config);
  ASSERT_TRUE(open.ok());
  EXPECT_FALSE(open->authenticate);
  EXPECT_FALSE(open->options.broker.require_admission());

  absl::StatusOr<ManifolddCommandLine> parsed =
      Parse({"--user=alice", "--pass=x", "--allow_anonymous",
             "--max_failed_logins=3", "--failed_login_delay=250ms"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.user(), "alice");
  EXPECT_TRUE(parsed->config.auth().allow_anonymous());
  EXPECT_EQ(parsed->config.auth().max_failed_logins(), 3u);
  EXPECT_EQ(parsed->config.auth().failed_login_delay_ms(), 250u);
  absl::StatusOr<ServerSetup> setup = MakeServerSetup(parsed->config);
  ASSERT_TRUE(setup.ok());
  EXPECT_TRUE(setup->authenticate);
  EXPECT_TRUE(setup->options.broker.require_admission());

  // Permissions are for the file only: no flag reaches into them.
  EXPECT_EQ(Parse({"--read_sys"}).status().message(),
            "unknown flag --read_sys (--help lists them)");
  const std::string help = ManifolddHelp();
  for (const char* flag : {"--user=NAME", "--pass=PASSWORD", "--token=TOKEN",
                           "--allow_anonymous", "--max_failed_logins=N"}) {
    EXPECT_THAT(help, HasSubstr(flag));
  }
  config.set_pass("x");
  EXPECT_EQ(MakeServerSetup(config).status().message(), "--pass needs --user");
}

TEST(ManifolddConfigFileTest, WebSettingsComeFromTheFileAndFlags) {
  const std::string path = WriteFile("web.textpb", R"(
    http: "127.0.0.1:0"
    web {
      http_max_header_bytes: 2048
      http_max_headers: 10
      http_max_pipelined_requests: 3
      http_request_timeout_ms: 500
      sse_max_topics: 4
      dashboard: false
    }
  )");
  absl::StatusOr<ManifolddCommandLine> c =
      Parse({"--config", path, "--http_idle_timeout=5s", "--sse_retry=1s"});
  ASSERT_TRUE(c.ok()) << c.status();
  const WebSettings& web = c->config.web();
  EXPECT_EQ(web.http_max_header_bytes(), 2048u);
  EXPECT_EQ(web.http_max_headers(), 10u);
  EXPECT_EQ(web.http_max_pipelined_requests(), 3u);
  EXPECT_EQ(web.http_request_timeout_ms(), 500u);
  EXPECT_EQ(web.http_idle_timeout_ms(), 5000u);  // from the flag
  EXPECT_EQ(web.sse_max_topics(), 4u);
  EXPECT_EQ(web.sse_retry_ms(), 1000u);
  EXPECT_FALSE(web.dashboard());
  EXPECT_EQ(web.sse_heartbeat_ms(), 15000u);  // the default

  const std::string low =
      WriteFile("web_low.textpb", "web {\n  http_max_header_bytes: 100\n}\n");
  EXPECT_EQ(Parse({"--config", low}).status().message(),
            absl::StrCat(low,
                         ":2:3: http_max_header_bytes must be at least "
                         "256"));
  EXPECT_EQ(Parse({"--http_tick=1ms"}).status().message(),
            "--http_tick must be at least 10");
}

TEST(ServerSetupTest, WebSettingsReachTheHttpListenersCodecs) {
  ServerConfig config;
  config.set_http("127.0.0.1:0");
  config.mutable_web()->set_http_max_header_bytes(2048);
  config.mutable_web()->set_http_max_headers(10);
  config.mutable_web()->set_http_request_timeout_ms(500);
  config.mutable_web()->set_http_tick_ms(50);
  config.mutable_web()->set_dashboard(false);
  absl::StatusOr<ServerSetup> setup = MakeServerSetup(config);
  if (absl::IsFailedPrecondition(setup.status())) {
    GTEST_SKIP() << "built without the web front end: " << setup.status();
  }
  ASSERT_TRUE(setup.ok()) << setup.status();
  const ListenerConfig* http = nullptr;
  for (const ListenerConfig& l : setup->listeners) {
    if (l.display_label() == "http") http = &l;
  }
  ASSERT_NE(http, nullptr);
  ASSERT_TRUE(http->codec_factory != nullptr);
  // The codec's settings (what a recording keeps) show the limits it got.
  const std::string settings = http->codec_factory()->settings();
  EXPECT_THAT(settings, HasSubstr(";http_max_header_bytes=2048;"));
  EXPECT_THAT(settings, HasSubstr(";http_max_headers=10;"));
  EXPECT_THAT(settings, HasSubstr(";http_request_timeout_ms=500;"));
  EXPECT_THAT(settings, HasSubstr(";http_tick_ms=50;"));
  EXPECT_THAT(settings, HasSubstr(";dashboard=0"));
}

TEST(ServerSetupTest, NothingToListenOnIsAnError) {
  ServerConfig config;
  config.set_listen("");
  EXPECT_EQ(MakeServerSetup(config).status().message(),
            "nothing to listen on: give --listen HOST:PORT, --unix PATH, "
            "--nats HOST:PORT or --http HOST:PORT");
  config.set_listen("nonsense");
  EXPECT_THAT(std::string(MakeServerSetup(config).status().message()),
              StartsWith("--listen: invalid address 'nonsense'"));
}

}  // namespace
}  // namespace manifold
