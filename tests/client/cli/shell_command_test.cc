#include "client/cli/shell_command.h"

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace manifold::cli {
namespace {

TEST(RunShellCommandTest, FeedsStdinAndCollectsStdout) {
  absl::StatusOr<ShellResult> r =
      RunShellCommand("tr a-z A-Z", "hello", absl::Seconds(5), 1024);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out, "HELLO");
  EXPECT_EQ(r->err, "");
}

TEST(RunShellCommandTest, ReportsTheExitStatusAndStderr) {
  absl::StatusOr<ShellResult> r = RunShellCommand(
      "echo out; echo oops >&2; exit 3", "", absl::Seconds(5), 1024);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "oops\n");
}

TEST(RunShellCommandTest, ACommandThatIgnoresItsInputStillFinishes) {
  const std::string big(1 << 20, 'x');  // more than a pipe holds
  absl::StatusOr<ShellResult> r =
      RunShellCommand("echo done", big, absl::Seconds(5), 1024);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "done\n");
}

TEST(RunShellCommandTest, ACommandPastItsTimeIsKilled) {
  const absl::Time start = absl::Now();
  absl::StatusOr<ShellResult> r =
      RunShellCommand("sleep 10", "", absl::Milliseconds(100), 1024);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(r.status().message(), "the command ran longer than 100ms");
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(RunShellCommandTest, OutputPastTheLimitIsAnError) {
  absl::StatusOr<ShellResult> r =
      RunShellCommand("yes", "", absl::Seconds(5), 1000);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(r.status().message(), "the command wrote more than 1000 bytes");
  absl::StatusOr<ShellResult> exact =
      RunShellCommand("printf 12345", "", absl::Seconds(5), 5);
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_EQ(exact->out, "12345");
}

}  // namespace
}  // namespace manifold::cli
