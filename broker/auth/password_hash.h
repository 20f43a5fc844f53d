// File: broker/auth/password_hash.h
// -----------------------------------------------------------------------------
//
// Password hashes as crypt(3) writes them, through libxcrypt: yescrypt
// ("$y$...", the default for new hashes), bcrypt ("$2b$..."), sha512crypt
// ("$6$...") and the other strong methods it knows. A hash carries its
// method, cost and salt, so a configuration file can mix them.
//
//   std::string salt = ...16 random bytes...;      // the caller's randomness
//   absl::StatusOr<std::string> hash = HashPassword("s3cret", salt);
//   // *hash == "$y$j9T$...$..."
//   VerifyPassword("s3cret", *hash);                // true
//   VerifyPassword("guess", *hash);                 // false
//
// Verifying costs what the hash's method and cost say (yescrypt's default:
// some milliseconds of CPU), on purpose. Nothing here draws randomness or
// reads a clock.

#ifndef MANIFOLD_BROKER_AUTH_PASSWORD_HASH_H_
#define MANIFOLD_BROKER_AUTH_PASSWORD_HASH_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace manifold {

// Bytes of randomness HashPassword needs.
inline constexpr size_t kPasswordSaltBytes = 16;

// Hashes `password` with yescrypt at libxcrypt's default cost, salted from
// `random_bytes`. REQUIRES: random_bytes.size() >= kPasswordSaltBytes, drawn
// from a cryptographic source. Returns INVALID_ARGUMENT for a password with a
// NUL byte or longer than 4 KiB (crypt(3) cannot hash either), INTERNAL if
// libxcrypt fails.
absl::StatusOr<std::string> HashPassword(absl::string_view password,
                                         absl::string_view random_bytes);

// OK if `hash` is a crypt(3) hash of a method libxcrypt implements and
// considers strong enough to verify against; otherwise INVALID_ARGUMENT
// naming the problem (not a hash, an unknown or legacy method such as DES).
absl::Status CheckPasswordHash(absl::string_view hash);

// Whether `password` hashes to `hash`. The comparison runs in constant time;
// false for a hash CheckPasswordHash refuses.
bool VerifyPassword(absl::string_view password, absl::string_view hash);

// Whether two byte strings are equal, in time that depends only on their
// lengths (OpenSSL's CRYPTO_memcmp).
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace manifold

#endif  // MANIFOLD_BROKER_AUTH_PASSWORD_HASH_H_
