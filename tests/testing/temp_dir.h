// File: tests/testing/temp_dir.h
// -----------------------------------------------------------------------------
//
// Fresh directories with short paths, for Unix sockets (a socket path is
// limited to 107 bytes, which a test's own temporary directory can exceed)
// and for the files of child processes.
//
//   const std::string dir = MakeShortTempDir();   // "/tmp/mfd-a1B2c3"
//   Endpoint socket = Endpoint::Unix(dir + "/broker.sock");
//   ...
//   std::filesystem::remove_all(dir);

#ifndef MANIFOLD_TESTS_TESTING_TEMP_DIR_H_
#define MANIFOLD_TESTS_TESTING_TEMP_DIR_H_

#include <string>

namespace manifold::testing {

// Creates a new, empty directory under /tmp (or under $TEST_TMPDIR if /tmp
// is not writable) and returns its path. The caller removes it.
std::string MakeShortTempDir();

}  // namespace manifold::testing

#endif  // MANIFOLD_TESTS_TESTING_TEMP_DIR_H_
