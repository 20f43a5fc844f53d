# Finds Manifold's dependencies among the system's packages (Debian 12).
# Required: Abseil, protobuf. Tests: GoogleTest. Benchmarks: Google Benchmark.
# Optional: liburing (io_uring adapter), libuv (uv adapter), OpenSSL. A missing
# optional library is reported in one line and the pieces that need it skipped.

find_package(absl CONFIG REQUIRED)
find_package(Protobuf REQUIRED)  # CMake's FindProtobuf: Debian ships no config
find_package(PkgConfig REQUIRED)

if(MANIFOLD_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)
endif()
if(MANIFOLD_BUILD_BENCHMARKS)
  find_package(benchmark CONFIG REQUIRED)
endif()

function(manifold_optional_library var module what)
  pkg_check_modules(${var} QUIET IMPORTED_TARGET ${module})
  if(${var}_FOUND)
    message(STATUS "Manifold: ${module} ${${var}_VERSION} found: building ${what}")
  else()
    message(STATUS "Manifold: ${module} not found: skipping ${what}")
  endif()
  set(${var}_FOUND ${${var}_FOUND} PARENT_SCOPE)
endfunction()

manifold_optional_library(MANIFOLD_LIBURING liburing "the io_uring adapter")
manifold_optional_library(MANIFOLD_LIBUV libuv "the libuv adapter")
manifold_optional_library(MANIFOLD_OPENSSL openssl "OpenSSL support")

# The Abseil targets every Manifold library may use.
set(MANIFOLD_ABSL
    absl::base absl::btree absl::flat_hash_map absl::flat_hash_set absl::hash
    absl::inlined_vector absl::span absl::status absl::statusor
    absl::str_format absl::strings absl::time)
