#include "tests/testing/running_manifoldd.h"

#include <filesystem>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "tests/testing/program_path.h"
#include "tests/testing/temp_dir.h"

// CMake compiles the path in; Bazel sets $MANIFOLDD.
#ifndef MANIFOLDD_PATH
#define MANIFOLDD_PATH nullptr
#endif

namespace manifold::testing {
namespace {

constexpr char kListeningPrefix[] = "manifoldd listening on ";
// How long manifoldd may take to start, and to shut down when the test ends.
constexpr absl::Duration kStartTimeout = absl::Seconds(10);
constexpr absl::Duration kStopTimeout = absl::Seconds(5);

}  // namespace

std::string ManifolddPath() { return ProgramPath("MANIFOLDD", MANIFOLDD_PATH); }

absl::StatusOr<std::unique_ptr<RunningManifoldd>> RunningManifoldd::Start(
    const std::vector<std::string>& flags, Options options) {
  const std::string path = ManifolddPath();
  if (path.empty()) {
    return absl::NotFoundError(
        "the build did not say where manifoldd is ($MANIFOLDD)");
  }
  std::vector<std::string> args = flags;
  std::string socket_directory;
  if (options.unix_socket) {
    socket_directory = MakeShortTempDir();
    args.push_back(absl::StrCat("--unix=", socket_directory, "/broker.sock"));
  }
  ChildProcess::Options child_options;
  child_options.max_open_files = options.max_open_files;
  child_options.working_directory = options.working_directory;
  absl::StatusOr<std::unique_ptr<ChildProcess>> process =
      ChildProcess::Start(path, args, std::move(child_options));
  if (!process.ok()) {
    if (!socket_directory.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(socket_directory, ignored);
    }
    return process.status();
  }
  std::unique_ptr<RunningManifoldd> broker(
      new RunningManifoldd(*std::move(process), std::move(socket_directory)));
  absl::StatusOr<std::string> line = broker->process_->ReadLine(kStartTimeout);
  if (!line.ok()) {
    return absl::Status(
        line.status().code(),
        absl::StrCat("manifoldd did not start: ", line.status().message(),
                     "; stderr: ", broker->Log()));
  }
  if (absl::Status parsed = broker->ParseListeningLine(*std::move(line));
      !parsed.ok()) {
    return parsed;
  }
  return broker;
}

RunningManifoldd::RunningManifoldd(std::unique_ptr<ChildProcess> process,
                                   std::string socket_directory)
    : process_(std::move(process)),
      socket_directory_(std::move(socket_directory)) {}

RunningManifoldd::~RunningManifoldd() {
  if (!stopped_) Stop(SIGTERM, kStopTimeout).IgnoreError();
  process_.reset();  // SIGKILL if it is still running
  if (!socket_directory_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(socket_directory_, ignored);
  }
}

// "manifoldd listening on 127.0.0.1:40213 (tcp), /tmp/m.sock (unix),
// 127.0.0.1:40214 (nats), loop epoll"
absl::Status RunningManifoldd::ParseListeningLine(std::string line) {
  listening_line_ = std::move(line);
  absl::string_view rest = listening_line_;
  if (!absl::ConsumePrefix(&rest, kListeningPrefix)) {
    return absl::InternalError(absl::StrCat(
        "manifoldd's first line is not where it listens: ", listening_line_));
  }
  for (absl::string_view place : absl::StrSplit(rest, ", ")) {
    if (absl::ConsumeSuffix(&place, " (unix)")) {
      unix_socket_ = Endpoint::Unix(std::string(place));
      continue;
    }
    Endpoint* target = nullptr;
    if (absl::ConsumeSuffix(&place, " (tcp)")) {
      target = &tcp_;
    } else if (absl::ConsumeSuffix(&place, " (nats)")) {
      target = &nats_;
    } else {
      continue;  // "loop epoll"
    }
    absl::StatusOr<Endpoint> endpoint = ParseTcpEndpoint(place);
    if (!endpoint.ok()) return endpoint.status();
    *target = *std::move(endpoint);
  }
  return absl::OkStatus();
}

absl::StatusOr<int> RunningManifoldd::Stop(int signal, absl::Duration timeout) {
  stopped_ = true;
  if (absl::Status sent = process_->Signal(signal); !sent.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("manifoldd had exited already; its log: ", Log()));
  }
  absl::StatusOr<int> code = process_->Wait(timeout);
  if (absl::IsDeadlineExceeded(code.status())) {
    return absl::DeadlineExceededError(absl::StrCat(
        code.status().message(), " (signal ", signal, "); its log: ", Log()));
  }
  return code;
}

}  // namespace manifold::testing
