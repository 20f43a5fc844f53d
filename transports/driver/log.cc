#include "transports/driver/log.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace manifold {

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kDebug:
      return "debug";
  }
  return "unknown";
}

bool ParseLogLevel(absl::string_view text, LogLevel* level) {
  for (LogLevel candidate : {LogLevel::kError, LogLevel::kWarning,
                             LogLevel::kInfo, LogLevel::kDebug}) {
    if (text == LogLevelName(candidate)) {
      *level = candidate;
      return true;
    }
  }
  return false;
}

bool AbslParseFlag(absl::string_view text, LogLevel* level,
                   std::string* error) {
  if (ParseLogLevel(text, level)) return true;
  *error = "expected one of error, warning, info, debug";
  return false;
}

std::string AbslUnparseFlag(LogLevel level) {
  return std::string(LogLevelName(level));
}

Logger::Sink Logger::StderrSink() {
  return [](LogLevel level, absl::string_view message) {
    static constexpr char kLetters[] = {'E', 'W', 'I', 'D'};
    const std::string line = absl::StrCat(
        absl::FormatTime("%Y-%m-%d %H:%M:%E3S", absl::Now(),
                         absl::LocalTimeZone()),
        " ", absl::string_view(&kLetters[static_cast<int>(level)], 1), " ",
        message, "\n");
    // One write per line, so lines from several threads do not interleave.
    std::fwrite(line.data(), 1, line.size(), stderr);
  };
}

}  // namespace manifold
