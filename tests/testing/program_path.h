// File: tests/testing/program_path.h
// -----------------------------------------------------------------------------
//
// Where the programs a test runs (manifoldd, the `manifold` CLI, an example)
// are. Bazel tells the test in an environment variable set from $(rootpath);
// CMake compiles the path in as a definition. Either works, so one test source
// serves both builds.
//
//   #ifndef MANIFOLD_CLI_PATH
//   #define MANIFOLD_CLI_PATH nullptr
//   #endif
//   const std::string cli = ProgramPath("MANIFOLD_CLI", MANIFOLD_CLI_PATH);
//   ASSERT_FALSE(cli.empty()) << "the build did not say where manifold is";

#ifndef MANIFOLD_TESTS_TESTING_PROGRAM_PATH_H_
#define MANIFOLD_TESTS_TESTING_PROGRAM_PATH_H_

#include <string>

namespace manifold::testing {

// Returns the value of environment variable `env_name` if it is set and not
// empty, else `compiled_in` (may be null), else an empty string.
std::string ProgramPath(const char* env_name, const char* compiled_in);

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_TESTING_PROGRAM_PATH_H_
