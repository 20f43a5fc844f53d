// File: tests/testing/running_manifoldd.h
// -----------------------------------------------------------------------------
//
// For end-to-end tests: a real manifoldd process (the one the build made for
// this test), started with the flags a test gives, found through its
// "manifoldd listening on ..." line, and stopped by PID. Its listeners are
// parsed from that line, so tests ask for port 0 and learn the real ports.
//
//   RunningManifoldd::Options options;
//   options.unix_socket = true;
//   absl::StatusOr<std::unique_ptr<RunningManifoldd>> broker =
//       RunningManifoldd::Start({"--loop=epoll", "--listen=127.0.0.1:0",
//                                "--nats=127.0.0.1:0"},
//                               options);
//   ASSERT_TRUE(broker.ok()) << broker.status();
//   auto client = Client::Connect((*broker)->tcp_address());  // "127.0.0.1:N"
//   WireClient raw = *WireClient::Connect((*broker)->nats());
//   absl::StatusOr<int> code = (*broker)->Stop();  // SIGTERM; 0 if clean

#ifndef MANIFOLD_TESTS_TESTING_RUNNING_MANIFOLDD_H_
#define MANIFOLD_TESTS_TESTING_RUNNING_MANIFOLDD_H_

#include <signal.h>
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/child_process.h"
#include "transports/sockets/endpoint.h"

namespace manifold::testing {

// The manifoldd the build gave this test: $MANIFOLDD (Bazel), else the path
// CMake compiled in; empty if neither.
std::string ManifolddPath();

class RunningManifoldd {
 public:
  struct Options {
    // Also listen on a Unix socket (--unix) in a fresh directory that is
    // removed with this object.
    bool unix_socket = false;
    // RLIMIT_NOFILE for manifoldd, to run it short of file descriptors.
    std::optional<int> max_open_files;
    // manifoldd's working directory (where relative paths in its flags and
    // configuration file are opened from); empty: the test's.
    std::string working_directory;
  };

  // Starts ManifolddPath() with `flags` (as given: a test that wants TCP
  // passes --listen=127.0.0.1:0) and waits up to 10 s for the line that says
  // where it listens. Returns an error that says what went wrong, with
  // manifoldd's stderr, if it did not start.
  static absl::StatusOr<std::unique_ptr<RunningManifoldd>> Start(
      const std::vector<std::string>& flags, Options options);
  static absl::StatusOr<std::unique_ptr<RunningManifoldd>> Start(
      const std::vector<std::string>& flags) {
    return Start(flags, Options());
  }

  RunningManifoldd(const RunningManifoldd&) = delete;
  RunningManifoldd& operator=(const RunningManifoldd&) = delete;
  // Stops manifoldd if Stop() did not (SIGTERM, then SIGKILL after 5 s) and
  // removes its Unix socket directory.
  ~RunningManifoldd();

  // "manifoldd listening on 127.0.0.1:40213 (tcp), ..., loop epoll"
  const std::string& listening_line() const { return listening_line_; }
  // The listeners from that line; a listener manifoldd was not asked for has
  // port 0 and an empty path.
  const Endpoint& tcp() const { return tcp_; }
  const Endpoint& unix_socket() const { return unix_socket_; }
  const Endpoint& nats() const { return nats_; }
  // The same as the client library's addresses: "127.0.0.1:N", "unix:PATH".
  std::string tcp_address() const { return tcp_.ToString(); }
  std::string unix_address() const { return "unix:" + unix_socket_.path; }

  pid_t pid() const { return process_->pid(); }
  ChildProcess& process() { return *process_; }
  // True while manifoldd has not exited.
  bool Alive() { return process_->Running(); }
  // What manifoldd logged (its stderr) so far.
  std::string Log() const { return process_->Stderr(); }

  // Sends `signal` and waits up to `timeout` for manifoldd to exit. Returns
  // its exit code (0 after a clean shutdown); FAILED_PRECONDITION if it had
  // exited already, DEADLINE_EXCEEDED (with its log) if it still runs.
  absl::StatusOr<int> Stop(int signal = SIGTERM,
                           absl::Duration timeout = absl::Seconds(15));

 private:
  RunningManifoldd(std::unique_ptr<ChildProcess> process,
                   std::string socket_directory);
  absl::Status ParseListeningLine(std::string line);

  std::unique_ptr<ChildProcess> process_;
  const std::string socket_directory_;  // empty without Options::unix_socket
  std::string listening_line_;
  Endpoint tcp_;
  Endpoint unix_socket_ = Endpoint::Unix("");
  Endpoint nats_;
  bool stopped_ = false;
};

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_TESTING_RUNNING_MANIFOLDD_H_
