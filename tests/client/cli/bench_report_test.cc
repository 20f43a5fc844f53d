// How `manifold bench` shows a run: problems are spelled out, never hidden,
// and the JSON form carries every number.

#include "client/cli/bench_report.h"

#include "gtest/gtest.h"

namespace manifold::cli {
namespace {

load::LoadReport CleanFanOut() {
  load::LoadReport r;
  r.options.scenario = load::Scenario::kFanOut;
  r.options.protocol = load::Protocol::kNats;
  r.options.server = "127.0.0.1:4222";
  r.options.publishers = 1;
  r.options.subscribers = 8;
  r.elapsed = absl::Seconds(2);
  r.sent = 1000;
  r.expected = r.received = 8000;
  r.sent_per_second = 500;
  r.received_per_second = 4000;
  return r;
}

TEST(WithThousandsTest, GroupsDigits) {
  EXPECT_EQ(WithThousands(0), "0");
  EXPECT_EQ(WithThousands(999), "999");
  EXPECT_EQ(WithThousands(1000), "1,000");
  EXPECT_EQ(WithThousands(1234567), "1,234,567");
}

TEST(FormatBenchReportTest, ACleanRunSaysSo) {
  const std::string text = FormatBenchReport(CleanFanOut(), false);
  EXPECT_NE(text.find("manifold bench fanout, nats, 127.0.0.1:4222: 1 "
                      "publisher x 8 subscribers"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("8,000 msgs"), std::string::npos) << text;
  EXPECT_NE(text.find("every message arrived once, in order"),
            std::string::npos)
      << text;
}

TEST(FormatBenchReportTest, LossDuplicatesAndReorderingAreSpelledOut) {
  load::LoadReport r = CleanFanOut();
  r.lost = 12;
  r.duplicates = 3;
  r.reordered = 4;
  r.timed_out = true;
  const std::string text = FormatBenchReport(r, false);
  EXPECT_NE(text.find("LOST 12 (nothing more arrived)"), std::string::npos)
      << text;
  EXPECT_NE(text.find("DUPLICATED 3"), std::string::npos) << text;
  EXPECT_NE(text.find("REORDERED 4"), std::string::npos) << text;
  const std::string json = FormatBenchReport(r, true);
  EXPECT_NE(json.find("\"lost\":12"), std::string::npos) << json;
  EXPECT_NE(json.find("\"clean\":false"), std::string::npos) << json;
}

TEST(FormatBenchReportTest, RoundTripsShowLatencyPercentiles) {
  load::LoadReport r;
  r.options.scenario = load::Scenario::kRequestReply;
  r.options.publishers = r.options.subscribers = 1;
  r.sent = r.expected = r.received = 10;
  r.latency.p50 = absl::Microseconds(41);
  r.latency.p99 = absl::Microseconds(80);
  const std::string text = FormatBenchReport(r, false);
  EXPECT_NE(text.find("p50 41.0us"), std::string::npos) << text;
  EXPECT_NE(text.find("every request answered once"), std::string::npos);
  const std::string json = FormatBenchReport(r, true);
  EXPECT_NE(json.find("\"latency_us\":{\"min\":0.0,\"p50\":41.0"),
            std::string::npos)
      << json;
}

TEST(FormatBenchReportTest, DurableRunsShowAcksAndTheirLatency) {
  load::LoadReport r;
  r.options.scenario = load::Scenario::kDurable;
  r.options.protocol = load::Protocol::kNats;
  r.options.server = "127.0.0.1:4222";
  r.options.publishers = 1;
  r.options.window = 4000;
  r.elapsed = absl::Seconds(2);
  r.sent = r.expected = r.received = 200000;
  r.received_per_second = 100000;
  r.latency.p50 = absl::Milliseconds(30);
  r.latency.p99 = absl::Milliseconds(75);
  std::string text = FormatBenchReport(r, false);
  EXPECT_NE(text.find("1 publisher to a stored subject, 4000 unacknowledged"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("acked          200,000"), std::string::npos) << text;
  EXPECT_NE(text.find("100,000 msgs/s"), std::string::npos) << text;
  EXPECT_NE(text.find("p50 30.00ms"), std::string::npos) << text;
  EXPECT_NE(text.find("every publish acknowledged once, durable"),
            std::string::npos)
      << text;
  const std::string json = FormatBenchReport(r, true);
  EXPECT_NE(json.find("\"latency_us\":{\"min\":0.0,\"p50\":30000.0"),
            std::string::npos)
      << json;
  // Refused publishes are errors, and say why.
  r.errors = 2;
  r.first_error = "a durable publish was refused: disk full";
  text = FormatBenchReport(r, false);
  EXPECT_NE(text.find("2 SERVER ERRORS, first: a durable publish was refused"),
            std::string::npos)
      << text;
}

TEST(FormatBenchReportTest, ReplaysShowMessagesPerSecond) {
  load::LoadReport r;
  r.options.scenario = load::Scenario::kReplay;
  r.options.server = "127.0.0.1:24387";
  r.options.publishers = 1;
  r.options.replay_from = 1;
  r.elapsed = absl::Seconds(2);
  r.expected = r.received = 1000000;
  r.received_bytes = 16000000;
  r.received_per_second = 500000;
  const std::string text = FormatBenchReport(r, false);
  EXPECT_NE(text.find("1 subscriber replaying the bench stream from sequence "
                      "1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("replayed     1,000,000 msgs"), std::string::npos)
      << text;
  EXPECT_NE(text.find("500,000 msgs/s  8.0 MB/s"), std::string::npos) << text;
  EXPECT_NE(text.find("every stored message arrived once, in sequence"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace manifold::cli
