#include "tests/testing/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "tests/testing/temp_dir.h"

namespace manifold::testing {
namespace {

// How often a wait looks again; short next to any timeout a test uses.
constexpr absl::Duration kPollInterval = absl::Milliseconds(5);

int ExitCode(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::string& path, const std::vector<std::string>& args,
    Options options) {
  if (path.empty()) return absl::InvalidArgumentError("no program path given");
  const std::string directory = MakeShortTempDir();
  const std::string in = directory + "/stdin";
  const std::string out = directory + "/stdout";
  const std::string err = directory + "/stderr";
  {
    std::ofstream input(in, std::ios::binary);
    input << options.input;
  }
  // Resolved here: the child changes directory before exec.
  const std::string program = options.working_directory.empty()
                                  ? path
                                  : std::filesystem::absolute(path).string();
  std::vector<std::string> argv_strings = {program};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::string command =
      absl::StrCat("'", absl::StrJoin(argv_strings, " "), "'");

  const pid_t pid = ::fork();
  if (pid < 0) {
    return absl::InternalError(
        absl::StrCat("fork for ", command, ": ", std::strerror(errno)));
  }
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec: the test may have
    // threads.
    const int in_fd = ::open(in.c_str(), O_RDONLY);
    const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in_fd < 0 || out_fd < 0 || err_fd < 0) ::_exit(126);
    ::dup2(in_fd, STDIN_FILENO);
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    ::closefrom(STDERR_FILENO + 1);  // nothing of the test leaks into the child
    if (options.max_open_files) {
      const rlimit limit{rlim_t(*options.max_open_files),
                         rlim_t(*options.max_open_files)};
      ::setrlimit(RLIMIT_NOFILE, &limit);
    }
    if (!options.working_directory.empty() &&
        ::chdir(options.working_directory.c_str()) != 0) {
      ::_exit(126);
    }
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  return std::unique_ptr<ChildProcess>(
      new ChildProcess(pid, directory, std::move(command)));
}

ChildProcess::ChildProcess(pid_t pid, std::string directory,
                           std::string command)
    : pid_(pid),
      directory_(std::move(directory)),
      command_(std::move(command)) {}

ChildProcess::~ChildProcess() {
  if (!exit_code_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

std::string ChildProcess::ReadFile(const char* name) const {
  std::ifstream file(absl::StrCat(directory_, "/", name), std::ios::binary);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

std::string ChildProcess::Stdout() const { return ReadFile("stdout"); }
std::string ChildProcess::Stderr() const { return ReadFile("stderr"); }
std::string ChildProcess::Describe() const { return command_; }

absl::StatusOr<std::string> ChildProcess::ReadLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const std::string out = Stdout();
    const size_t newline = out.find('\n', stdout_offset_);
    if (newline != std::string::npos) {
      std::string line = out.substr(stdout_offset_, newline - stdout_offset_);
      stdout_offset_ = newline + 1;
      return line;
    }
    if (!Running()) {
      return absl::UnavailableError(
          absl::StrCat(Describe(), " exited (code ", exit_code_.value_or(-1),
                       ") without printing a line; stderr: ", Stderr()));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(Describe(), " printed no complete line within ",
                       absl::FormatDuration(timeout)));
    }
    absl::SleepFor(kPollInterval);
  }
}

bool ChildProcess::WaitForOutput(absl::string_view text,
                                 absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (absl::StrContains(Stdout(), text)) return true;
    if (!Running()) return absl::StrContains(Stdout(), text);
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(kPollInterval);
  }
}

absl::Status ChildProcess::Signal(int signal_number) {
  if (exit_code_) {
    return absl::FailedPreconditionError(
        absl::StrCat(Describe(), " has exited already"));
  }
  if (::kill(pid_, signal_number) != 0) {
    return absl::InternalError(absl::StrCat("kill: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!exit_code_) {
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exit_code_ = ExitCode(status);
      break;
    }
    if (done < 0 && errno != EINTR) {
      return absl::InternalError(
          absl::StrCat("waitpid: ", std::strerror(errno)));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          Describe(), " still runs after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(kPollInterval);
  }
  return *exit_code_;
}

bool ChildProcess::Running() {
  return absl::IsDeadlineExceeded(Wait(absl::ZeroDuration()).status());
}

absl::StatusOr<Completed> RunToCompletion(const std::string& path,
                                          const std::vector<std::string>& args,
                                          absl::Duration timeout,
                                          ChildProcess::Options options) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> child =
      ChildProcess::Start(path, args, std::move(options));
  if (!child.ok()) return child.status();
  absl::StatusOr<int> code = (*child)->Wait(timeout);
  if (!code.ok()) return code.status();  // the destructor kills it
  return Completed{*code, (*child)->Stdout(), (*child)->Stderr()};
}

}  // namespace manifold::testing
