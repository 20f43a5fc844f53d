#include "tests/testing/temp_dir.h"

#include <stdlib.h>

#include "absl/strings/str_cat.h"

namespace manifold::testing {

std::string MakeShortTempDir() {
  char pattern[] = "/tmp/mfd-XXXXXX";
  if (::mkdtemp(pattern) != nullptr) return pattern;
  const char* test_tmp = ::getenv("TEST_TMPDIR");
  std::string fallback =
      absl::StrCat(test_tmp != nullptr ? test_tmp : ".", "/mfd-XXXXXX");
  return ::mkdtemp(fallback.data()) != nullptr ? fallback : std::string(".");
}

}  // namespace manifold::testing
