# Finds Manifold's dependencies among the system's packages (Debian 12).
# Required: Abseil, protobuf. Tests: GoogleTest. Benchmarks: Google Benchmark.
# Optional: liburing (io_uring adapter), libuv (uv adapter), OpenSSL, RocksDB
# (durable streams on disk), ISA-L (RocksDB's checksums in hardware). A
# missing optional library is reported in one line and the pieces that need
# it skipped.

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
manifold_optional_library(MANIFOLD_ROCKSDB rocksdb "the RocksDB stream storage")
manifold_optional_library(MANIFOLD_ISAL libisal "RocksDB's checksums on ISA-L")
manifold_optional_library(MANIFOLD_HIREDIS hiredis "the Redis cluster")

# Authentication (broker/auth): password hashes through libxcrypt's crypt(3)
# (Debian's libcrypt-dev, which libc6-dev pulls in) and HMAC/SHA-256 from
# OpenSSL's libcrypto. Linked by full path, like the web libraries.
find_library(MANIFOLD_CRYPT_LIBRARY crypt REQUIRED)
find_path(MANIFOLD_CRYPT_INCLUDE_DIR crypt.h REQUIRED)
find_library(MANIFOLD_LIBCRYPTO_LIBRARY crypto REQUIRED)

# The Abseil targets every Manifold library may use.
set(MANIFOLD_ABSL
    absl::base absl::btree absl::flat_hash_map absl::flat_hash_set absl::hash
    absl::inlined_vector absl::span absl::status absl::statusor
    absl::str_format absl::strings absl::time)

# The web front end (core/http, broker/http: HTTP/1.1, WebSocket, SSE, REST)
# needs node's http-parser and wslay, which ship no pkg-config file, and
# OpenSSL's libcrypto (SHA-1 for the WebSocket handshake). Libraries are
# linked by full path, so the installed package needs nothing more to find.
find_path(MANIFOLD_HTTP_PARSER_INCLUDE_DIR http_parser.h)
find_library(MANIFOLD_HTTP_PARSER_LIBRARY http_parser)
find_path(MANIFOLD_WSLAY_INCLUDE_DIR wslay/wslay.h)
find_library(MANIFOLD_WSLAY_LIBRARY wslay)
find_library(MANIFOLD_CRYPTO_LIBRARY crypto)
find_path(MANIFOLD_CRYPTO_INCLUDE_DIR openssl/sha.h)
# Bayeux's JSON (arbitrary message data) is read and written with RapidJSON
# (header-only, under /usr/include): its SAX reader checks a batch and finds
# each message's fields in one pass. The web front end's tests read what it
# writes with a second library, nlohmann's.
find_package(RapidJSON 1.1 QUIET)
find_package(nlohmann_json 3.9 QUIET)
if(MANIFOLD_HTTP_PARSER_INCLUDE_DIR AND MANIFOLD_HTTP_PARSER_LIBRARY AND
   MANIFOLD_WSLAY_INCLUDE_DIR AND MANIFOLD_WSLAY_LIBRARY AND
   MANIFOLD_CRYPTO_LIBRARY AND MANIFOLD_CRYPTO_INCLUDE_DIR AND
   RapidJSON_FOUND AND nlohmann_json_FOUND)
  set(MANIFOLD_WEB_FOUND TRUE)
  message(STATUS "Manifold: http-parser, wslay, libcrypto, RapidJSON and nlohmann-json found: building the web front end")
else()
  set(MANIFOLD_WEB_FOUND FALSE)
  message(STATUS "Manifold: http-parser, wslay, libcrypto, RapidJSON or nlohmann-json not found (libhttp-parser-dev, libwslay-dev, libssl-dev, rapidjson-dev, nlohmann-json3-dev): skipping the web front end")
endif()
