// File: tests/client/manifoldd.h
// -----------------------------------------------------------------------------
//
// Test helper: a real `manifoldd` process listening on a free loopback TCP
// port and on a fresh Unix socket, stopped by PID when the test is done.
// The build tells the tests where the binaries are through environment
// variables (MANIFOLDD, MANIFOLD_CLI).
//
//   absl::StatusOr<std::unique_ptr<Manifoldd>> broker = Manifoldd::Start();
//   ASSERT_TRUE(broker.ok()) << broker.status();
//   auto client = Client::Connect((*broker)->tcp_address());

#ifndef MANIFOLD_TESTS_CLIENT_MANIFOLDD_H_
#define MANIFOLD_TESTS_CLIENT_MANIFOLDD_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/client/child_process.h"

namespace manifold::testing {

// Returns the path in environment variable `name`, or a NOT_FOUND error that
// says which variable the build should have set.
absl::StatusOr<std::string> BinaryPath(const char* name);

class Manifoldd {
 public:
  // Starts manifoldd with `--listen 127.0.0.1:0 --unix <fresh path>` and
  // `extra_flags`, and waits (at most 10 s) until it says where it listens.
  static absl::StatusOr<std::unique_ptr<Manifoldd>> Start(
      const std::vector<std::string>& extra_flags = {});

  // Stops the broker (SIGTERM, SIGKILL after 5 s) unless Stop() did.
  ~Manifoldd();

  // "127.0.0.1:NNNNN"
  const std::string& tcp_address() const { return tcp_address_; }
  // "unix:/tmp/..."
  const std::string& unix_address() const { return unix_address_; }
  ChildProcess& process() { return process_; }

  // Sends `signal` and waits for the exit status (at most `timeout`).
  absl::StatusOr<int> Stop(int signal,
                           absl::Duration timeout = absl::Seconds(5));

 private:
  Manifoldd(ChildProcess process, std::string tcp, std::string unix_path);

  ChildProcess process_;
  std::string tcp_address_;
  std::string unix_path_;
  std::string unix_address_;
  bool stopped_ = false;
};

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_CLIENT_MANIFOLDD_H_
