#include "tests/testing/program_path.h"

#include <stdlib.h>

namespace manifold::testing {

std::string ProgramPath(const char* env_name, const char* compiled_in) {
  if (const char* value = ::getenv(env_name); value != nullptr && *value) {
    return value;
  }
  return compiled_in != nullptr ? compiled_in : "";
}

}  // namespace manifold::testing
