#include "tests/client/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

extern char** environ;

namespace manifold::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

absl::StatusOr<ChildProcess> ChildProcess::Start(std::vector<std::string> argv,
                                                 const std::string& input) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir_template =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/child-XXXXXX");
  if (::mkdtemp(dir_template.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("mkdtemp failed: ", std::strerror(errno)));
  }
  ChildProcess child;
  child.dir_ = dir_template;
  child.argv_ = argv;
  {
    std::ofstream in(child.dir_ + "/stdin", std::ios::binary);
    in << input;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, (child.dir_ + "/stdin").c_str(),
                                   O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1,
                                   (child.dir_ + "/stdout").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2,
                                   (child.dir_ + "/stderr").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const int rc = ::posix_spawn(&child.pid_, args[0], &actions, nullptr,
                               args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    child.pid_ = -1;
    return absl::InternalError(absl::StrCat("cannot start ", child.Describe(),
                                            ": ", std::strerror(rc)));
  }
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept {
  *this = std::move(other);
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    Reset();
    pid_ = other.pid_;
    exit_code_ = other.exit_code_;
    dir_ = std::move(other.dir_);
    argv_ = std::move(other.argv_);
    other.pid_ = -1;
  }
  return *this;
}

ChildProcess::~ChildProcess() { Reset(); }

void ChildProcess::Reset() {
  if (pid_ > 0 && !exit_code_.has_value()) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  pid_ = -1;
  if (!dir_.empty()) {
    for (const char* name : {"/stdin", "/stdout", "/stderr"}) {
      ::unlink((dir_ + name).c_str());
    }
    ::rmdir(dir_.c_str());
    dir_.clear();
  }
}

void ChildProcess::Signal(int signal) {
  if (pid_ > 0 && !exit_code_.has_value()) ::kill(pid_, signal);
}

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!exit_code_.has_value()) {
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exit_code_ = ExitCode(status);
      break;
    }
    if (done < 0 && errno != EINTR) {
      return absl::InternalError(
          absl::StrCat("waitpid failed: ", std::strerror(errno)));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          Describe(), " still runs after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return *exit_code_;
}

bool ChildProcess::WaitForOutput(const std::string& text,
                                 absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (Stdout().find(text) != std::string::npos) return true;
    if (absl::Now() >= deadline) return false;
    if (Wait(absl::ZeroDuration()).ok()) {
      return Stdout().find(text) != std::string::npos;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

std::string ChildProcess::Stdout() const { return ReadFile(dir_ + "/stdout"); }
std::string ChildProcess::Stderr() const { return ReadFile(dir_ + "/stderr"); }

std::string ChildProcess::Describe() const {
  return absl::StrCat("'", absl::StrJoin(argv_, " "), "'");
}

absl::StatusOr<ProcessResult> RunProcess(std::vector<std::string> argv,
                                         absl::Duration timeout,
                                         const std::string& input) {
  absl::StatusOr<ChildProcess> child =
      ChildProcess::Start(std::move(argv), input);
  if (!child.ok()) return child.status();
  absl::StatusOr<int> code = child->Wait(timeout);
  if (!code.ok()) return code.status();  // the destructor kills it
  return ProcessResult{*code, child->Stdout(), child->Stderr()};
}

}  // namespace manifold::testing
