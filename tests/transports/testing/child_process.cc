#include "tests/transports/testing/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace manifold::testing {

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::string& path, const std::vector<std::string>& args,
    Options options) {
  if (path.empty()) return absl::InvalidArgumentError("no program path given");
  const std::string directory = MakeShortTempDir();
  const std::string out = directory + "/stdout";
  const std::string err = directory + "/stderr";
  std::vector<std::string> argv_strings = {path};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0)
    return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    const int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out_fd < 0 || err_fd < 0) _exit(126);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    closefrom(STDERR_FILENO + 1);  // nothing of the test leaks into the child
    if (options.max_open_files) {
      const rlimit limit{rlim_t(*options.max_open_files),
                         rlim_t(*options.max_open_files)};
      setrlimit(RLIMIT_NOFILE, &limit);
    }
    execv(path.c_str(), argv.data());
    _exit(127);
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, directory));
}

ChildProcess::ChildProcess(pid_t pid, std::string directory)
    : pid_(pid), directory_(std::move(directory)) {}

ChildProcess::~ChildProcess() {
  if (!status_) {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

std::string ChildProcess::ReadFile(const std::string& name) const {
  std::ifstream file(directory_ + "/" + name, std::ios::binary);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

absl::StatusOr<std::string> ChildProcess::ReadLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const std::string out = ReadFile("stdout");
    const size_t newline = out.find('\n', stdout_offset_);
    if (newline != std::string::npos) {
      std::string line = out.substr(stdout_offset_, newline - stdout_offset_);
      stdout_offset_ = newline + 1;
      return line;
    }
    if (status_ || Wait(absl::ZeroDuration()).ok()) {
      return absl::UnavailableError(
          absl::StrCat("the program exited; stderr: ", Stderr()));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError("no complete line on stdout");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

absl::Status ChildProcess::Signal(int signal_number) {
  if (status_) return absl::FailedPreconditionError("already exited");
  if (kill(pid_, signal_number) != 0) {
    return absl::InternalError(absl::StrCat("kill: ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  if (status_) return *status_;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      status_ = status;
      return status;
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError("the program is still running");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string ChildProcess::Stdout() const { return ReadFile("stdout"); }
std::string ChildProcess::Stderr() const { return ReadFile("stderr"); }

absl::StatusOr<Completed> RunToCompletion(const std::string& path,
                                          const std::vector<std::string>& args,
                                          absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> child =
      ChildProcess::Start(path, args);
  if (!child.ok()) return child.status();
  absl::StatusOr<int> status = (*child)->Wait(timeout);
  if (!status.ok()) return status.status();
  Completed completed;
  completed.status = *status;
  completed.out = (*child)->Stdout();
  completed.err = (*child)->Stderr();
  return completed;
}

std::string MakeShortTempDir() {
  char pattern[] = "/tmp/mfd-XXXXXX";
  if (mkdtemp(pattern) != nullptr) return pattern;
  // Fall back to the test's own directory if /tmp is not writable.
  const char* test_tmp = getenv("TEST_TMPDIR");
  std::string fallback =
      absl::StrCat(test_tmp != nullptr ? test_tmp : ".", "/mfd-XXXXXX");
  return mkdtemp(fallback.data()) != nullptr ? fallback : std::string(".");
}

std::string ProgramPath(const char* env_name, const char* compiled_in) {
  if (const char* value = getenv(env_name); value != nullptr && *value) {
    return value;
  }
  return compiled_in != nullptr ? compiled_in : "";
}

}  // namespace manifold::testing
