#include "transports/process/resident_memory.h"

#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace manifold {

absl::StatusOr<int64_t> ReadResidentKib(pid_t pid) {
  std::ifstream file(absl::StrCat("/proc/", pid, "/status"));
  if (!file) return absl::NotFoundError(absl::StrCat("no process ", pid));
  std::string line;
  while (std::getline(file, line)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "VmRSS:")) continue;
    rest = absl::StripAsciiWhitespace(rest);
    absl::ConsumeSuffix(&rest, "kB");
    int64_t kib = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &kib)) return kib;
    break;
  }
  return absl::InternalError(
      absl::StrCat("no VmRSS line in /proc/", pid, "/status"));
}

}  // namespace manifold
