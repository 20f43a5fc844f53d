// File: transports/driver/log.h
// -----------------------------------------------------------------------------
//
// The transports' small logging seam. The broker core never logs (it reports
// through events and statuses); the code that drives it from an event loop
// logs connection events and I/O errors through a `Logger`, which filters by
// level and hands each line to a sink. The default sink writes one
// timestamped line per message to stderr.
//
// `LogLevel` is also an Abseil flag type, so a program can declare
// `ABSL_FLAG(manifold::LogLevel, log_level, ...)` and accept
// `--log_level=error|warning|info|debug`.
//
// Example:
//
//   Logger log(LogLevel::kInfo);                  // to stderr
//   if (log.enabled(LogLevel::kDebug)) {          // skip formatting when off
//     log.Log(LogLevel::kDebug, absl::StrCat("read ", n, " bytes"));
//   }
//   log.Log(LogLevel::kWarning, "out of file descriptors");
//
// Thread safety: a Logger may be shared between threads if its sink may; the
// stderr sink may.

#ifndef MANIFOLD_TRANSPORTS_DRIVER_LOG_H_
#define MANIFOLD_TRANSPORTS_DRIVER_LOG_H_

#include <functional>
#include <string>

#include "absl/strings/string_view.h"

namespace manifold {

// How much to log; each level includes the ones above it.
enum class LogLevel {
  kError = 0,    // something failed that an operator should look at
  kWarning = 1,  // refused connections, resource limits reached
  kInfo = 2,     // connections opening and closing, listeners, shutdown
  kDebug = 3,    // subscriptions, services, individual I/O events
};

// Returns "error", "warning", "info" or "debug".
absl::string_view LogLevelName(LogLevel level);

// Parses a LogLevelName() back; returns false for anything else.
bool ParseLogLevel(absl::string_view text, LogLevel* level);

// Abseil flag support: `--log_level=info`.
bool AbslParseFlag(absl::string_view text, LogLevel* level, std::string* error);
std::string AbslUnparseFlag(LogLevel level);

class Logger {
 public:
  // Receives every line at or above the logger's level, without a newline.
  using Sink = std::function<void(LogLevel, absl::string_view)>;

  // Logs errors only, to stderr: a quiet default for libraries.
  Logger() : Logger(LogLevel::kError) {}
  // Logs `level` and above to stderr.
  explicit Logger(LogLevel level) : Logger(level, StderrSink()) {}
  // Logs `level` and above to `sink`. REQUIRES: sink is callable.
  Logger(LogLevel level, Sink sink) : level_(level), sink_(std::move(sink)) {}

  LogLevel level() const { return level_; }
  // Returns true if a message at `level` would be logged; check it before
  // formatting an expensive message.
  bool enabled(LogLevel level) const { return level <= level_; }

  // Hands `message` to the sink if `level` is enabled.
  void Log(LogLevel level, absl::string_view message) const {
    if (enabled(level)) sink_(level, message);
  }

  // A sink that writes "2026-11-21 12:00:00.123 I message" lines to stderr.
  static Sink StderrSink();

 private:
  LogLevel level_;
  Sink sink_;
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_DRIVER_LOG_H_
