#include "tests/client/manifoldd.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace manifold::testing {
namespace {

constexpr char kListeningLine[] = "manifoldd listening on ";
constexpr char kTcpPrefix[] = "127.0.0.1:";

// A path no other test (in this or a parallel run) uses. Not under
// TEST_TMPDIR: socket paths are limited to 107 bytes.
std::string FreshSocketPath() {
  char dir[] = "/tmp/manifold-client-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return "/tmp/manifold-client-test.sock";
  return absl::StrCat(dir, "/broker.sock");
}

}  // namespace

absl::StatusOr<std::string> BinaryPath(const char* name) {
  const char* path = std::getenv(name);
  // A build may compile the paths in instead (CMake does).
#ifdef MANIFOLD_DEFAULT_MANIFOLDD
  if (path == nullptr && std::string(name) == "MANIFOLDD") {
    path = MANIFOLD_DEFAULT_MANIFOLDD;
  }
#endif
#ifdef MANIFOLD_DEFAULT_MANIFOLD_CLI
  if (path == nullptr && std::string(name) == "MANIFOLD_CLI") {
    path = MANIFOLD_DEFAULT_MANIFOLD_CLI;
  }
#endif
  if (path == nullptr || *path == '\0') {
    return absl::NotFoundError(absl::StrCat(
        "environment variable ", name,
        " (the binary's path) is not set and the build gave no default"));
  }
  return std::string(path);
}

absl::StatusOr<std::unique_ptr<Manifoldd>> Manifoldd::Start(
    const std::vector<std::string>& extra_flags) {
  absl::StatusOr<std::string> binary = BinaryPath("MANIFOLDD");
  if (!binary.ok()) return binary.status();
  const std::string unix_path = FreshSocketPath();
  std::vector<std::string> argv = {*binary, "--listen", "127.0.0.1:0", "--unix",
                                   unix_path};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  absl::StatusOr<ChildProcess> process = ChildProcess::Start(argv);
  if (!process.ok()) return process.status();
  if (!process->WaitForOutput(std::string(kListeningLine), absl::Seconds(10))) {
    return absl::UnavailableError(absl::StrCat(
        process->Describe(), " did not say where it listens; stdout: ",
        process->Stdout(), " stderr: ", process->Stderr()));
  }
  // "manifoldd listening on 127.0.0.1:NNNNN (tcp), /tmp/x.sock (unix), ..."
  const std::string out = process->Stdout();
  const size_t line = out.find(kListeningLine);
  const size_t at = out.find(kTcpPrefix, line);
  const size_t end =
      out.find_first_not_of("0123456789", at + (sizeof(kTcpPrefix) - 1));
  int port = 0;
  if (at == std::string::npos ||
      !absl::SimpleAtoi(out.substr(at + (sizeof(kTcpPrefix) - 1),
                                   end - at - (sizeof(kTcpPrefix) - 1)),
                        &port)) {
    return absl::InternalError(
        absl::StrCat("no TCP port in manifoldd's output: ", out));
  }
  return std::unique_ptr<Manifoldd>(new Manifoldd(
      *std::move(process), absl::StrCat(kTcpPrefix, port), unix_path));
}

Manifoldd::Manifoldd(ChildProcess process, std::string tcp,
                     std::string unix_path)
    : process_(std::move(process)),
      tcp_address_(std::move(tcp)),
      unix_path_(std::move(unix_path)),
      unix_address_(absl::StrCat("unix:", unix_path_)) {}

Manifoldd::~Manifoldd() {
  if (!stopped_ && !Stop(SIGTERM).ok()) {
    process_.Signal(SIGKILL);
    process_.Wait(absl::Seconds(5)).IgnoreError();
  }
  ::unlink(unix_path_.c_str());
  ::rmdir(unix_path_.substr(0, unix_path_.rfind('/')).c_str());
}

absl::StatusOr<int> Manifoldd::Stop(int signal, absl::Duration timeout) {
  stopped_ = true;
  process_.Signal(signal);
  return process_.Wait(timeout);
}

}  // namespace manifold::testing
