#include <cstdio>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "client/cli/command.h"
#include "client/cli/flags.h"
#include "client/cli/stop_signal.h"
#include "client/cli/tls_flags.h"

namespace manifold::cli {
namespace {

constexpr absl::string_view kUsagePayload = "manifold/usage-error";

}  // namespace

CommandContext::CommandContext(std::string command, std::string synopsis,
                               std::vector<std::string> args)
    : command_(std::move(command)),
      synopsis_(std::move(synopsis)),
      args_(std::move(args)) {}

bool CommandContext::json() const { return absl::GetFlag(FLAGS_json); }

std::string CommandContext::server() const {
  return absl::GetFlag(FLAGS_server);
}

absl::Status CommandContext::ExpectArgs(size_t count,
                                        absl::string_view names) const {
  if (args_.size() == count) return absl::OkStatus();
  return UsageError(
      absl::StrCat(args_.size() < count ? "expects " : "takes only ", names,
                   " (usage: manifold ", synopsis_, ")"));
}

absl::StatusOr<std::unique_ptr<Client>> CommandContext::Connect(
    ClientOptions options) const {
  if (options.name.empty()) options.name = absl::StrCat("manifold-", command_);
  options.user = absl::GetFlag(FLAGS_user);
  options.password = absl::GetFlag(FLAGS_pass);
  options.auth_token = absl::GetFlag(FLAGS_token);
  return ConnectPerTlsFlags(server(), std::move(options));
}

void CommandContext::Print(absl::string_view line) const {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

bool CommandContext::stop_requested() const { return StopRequested(); }

absl::Status UsageError(absl::string_view message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kUsagePayload, absl::Cord("1"));
  return status;
}

bool IsUsageError(const absl::Status& status) {
  return status.GetPayload(kUsagePayload).has_value();
}

}  // namespace manifold::cli
