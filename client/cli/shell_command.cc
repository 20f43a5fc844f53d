#include "client/cli/shell_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "transports/sockets/sigpipe_blocked.h"

extern char** environ;

namespace manifold::cli {
namespace {

// Closes the descriptors it holds when it goes out of scope.
struct Pipe {
  int fd[2] = {-1, -1};
  ~Pipe() {
    for (int f : fd) {
      if (f >= 0) ::close(f);
    }
  }
  void CloseEnd(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
};

// Bytes of stderr kept to explain a failure.
constexpr size_t kMaxErrorOutput = 4096;

int ExitCode(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 255;
}

}  // namespace

absl::StatusOr<ShellResult> RunShellCommand(absl::string_view command,
                                            absl::string_view input,
                                            absl::Duration timeout,
                                            size_t max_output) {
  Pipe in, out, err;
  if (::pipe2(in.fd, O_CLOEXEC) != 0 || ::pipe2(out.fd, O_CLOEXEC) != 0 ||
      ::pipe2(err.fd, O_CLOEXEC) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot create pipes: ", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.fd[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out.fd[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.fd[1], STDERR_FILENO);
  const std::string command_string(command);
  std::vector<char*> argv = {const_cast<char*>("sh"), const_cast<char*>("-c"),
                             const_cast<char*>(command_string.c_str()),
                             nullptr};
  // Its own process group, so that a timeout kills what it started too.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, "/bin/sh", &actions, &attributes,
                                    argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawned != 0) {
    return absl::InternalError(
        absl::StrCat("cannot run /bin/sh: ", std::strerror(spawned)));
  }
  in.CloseEnd(0);
  out.CloseEnd(1);
  err.CloseEnd(1);
  if (input.empty()) in.CloseEnd(1);
  if (in.fd[1] >= 0) ::fcntl(in.fd[1], F_SETFL, O_NONBLOCK);

  SigpipeBlocked sigpipe_blocked;
  ShellResult result;
  absl::Status failure;
  const absl::Time deadline = absl::Now() + timeout;
  while (out.fd[0] >= 0 || err.fd[0] >= 0) {
    pollfd fds[3];
    int n = 0;
    if (out.fd[0] >= 0) fds[n++] = {out.fd[0], POLLIN, 0};
    if (err.fd[0] >= 0) fds[n++] = {err.fd[0], POLLIN, 0};
    if (in.fd[1] >= 0) fds[n++] = {in.fd[1], POLLOUT, 0};
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) {
      failure = absl::DeadlineExceededError(absl::StrCat(
          "the command ran longer than ", absl::FormatDuration(timeout)));
      break;
    }
    if (::poll(fds, n, static_cast<int>(std::min<int64_t>(left, 1000))) < 0) {
      if (errno == EINTR) continue;
      failure = absl::InternalError(absl::StrCat(
          "waiting for the command failed: ", std::strerror(errno)));
      break;
    }
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == in.fd[1]) {
        const ssize_t w = ::write(in.fd[1], input.data(), input.size());
        if (w > 0) input.remove_prefix(static_cast<size_t>(w));
        // Done, or the command does not read its input (EPIPE): either way
        // it gets EOF.
        if (input.empty() || (w < 0 && errno != EAGAIN && errno != EINTR)) {
          in.CloseEnd(1);
        }
        continue;
      }
      Pipe& pipe = fds[i].fd == out.fd[0] ? out : err;
      std::string& sink = &pipe == &out ? result.out : result.err;
      char buffer[16384];
      const ssize_t r = ::read(pipe.fd[0], buffer, sizeof(buffer));
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (r <= 0) {
        pipe.CloseEnd(0);
        continue;
      }
      const size_t limit = &pipe == &out ? max_output : kMaxErrorOutput;
      const size_t room = limit - std::min(limit, sink.size());
      if (static_cast<size_t>(r) > room && &pipe == &out) {
        failure = absl::ResourceExhaustedError(
            absl::StrCat("the command wrote more than ", max_output, " bytes"));
        break;
      }
      // Of stderr, the start is what explains a failure.
      sink.append(buffer, std::min(static_cast<size_t>(r), room));
    }
    if (!failure.ok()) break;
  }
  // The command may still run after closing its output; it gets until the
  // deadline like everything else.
  int status = 0;
  while (true) {
    if (!failure.ok()) ::kill(-pid, SIGKILL);
    const pid_t done = ::waitpid(pid, &status, failure.ok() ? WNOHANG : 0);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) break;
    if (done == 0 && absl::Now() >= deadline) {
      failure = absl::DeadlineExceededError(absl::StrCat(
          "the command ran longer than ", absl::FormatDuration(timeout)));
    } else if (done == 0) {
      absl::SleepFor(absl::Milliseconds(2));
    }
  }
  if (!failure.ok()) return failure;
  result.exit_code = ExitCode(status);
  return result;
}

}  // namespace manifold::cli
