// File: broker/auth/password_hash.cc

#include "broker/auth/password_hash.h"

#include <crypt.h>
#include <openssl/crypto.h>

#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace manifold {
namespace {

constexpr size_t kMaxPasswordBytes = 4096;

// crypt_rn's working area is large (about 32 KiB); keep it off the stack.
std::unique_ptr<crypt_data> NewCryptData() {
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  return data;
}

}  // namespace

absl::StatusOr<std::string> HashPassword(absl::string_view password,
                                         absl::string_view random_bytes) {
  if (random_bytes.size() < kPasswordSaltBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("a password hash needs ", kPasswordSaltBytes,
                     " random bytes, got ", random_bytes.size()));
  }
  if (password.size() > kMaxPasswordBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a password may be at most ", kMaxPasswordBytes, " bytes long"));
  }
  if (absl::StrContains(password, '\0')) {
    return absl::InvalidArgumentError("a password may not contain a NUL byte");
  }
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$y$", 0, random_bytes.data(),
                       static_cast<int>(random_bytes.size()), setting,
                       sizeof(setting)) == nullptr) {
    return absl::InternalError(
        absl::StrCat("crypt_gensalt_rn failed making a yescrypt setting: ",
                     std::strerror(errno)));
  }
  const std::string text(password);
  std::unique_ptr<crypt_data> data = NewCryptData();
  const char* hash = crypt_rn(text.c_str(), setting, data.get(),
                              static_cast<int>(sizeof(crypt_data)));
  if (hash == nullptr || hash[0] == '*') {
    return absl::InternalError(
        absl::StrCat("crypt_rn failed hashing: ", std::strerror(errno)));
  }
  return std::string(hash);
}

absl::Status CheckPasswordHash(absl::string_view hash) {
  if (hash.empty() || hash[0] != '$') {
    return absl::InvalidArgumentError(
        "not a password hash: a hash starts with '$' (make one with `manifold "
        "passwd`)");
  }
  const std::string text(hash);
  switch (crypt_checksalt(text.c_str())) {
    case CRYPT_SALT_OK:
      break;
    case CRYPT_SALT_METHOD_LEGACY:
    case CRYPT_SALT_METHOD_DISABLED:
      return absl::InvalidArgumentError(
          "the password hash uses a legacy or disabled method; make a new "
          "one with `manifold passwd`");
    case CRYPT_SALT_TOO_CHEAP:
      return absl::InvalidArgumentError(
          "the password hash's cost is too low; make a new one with "
          "`manifold passwd`");
    default:
      return absl::InvalidArgumentError(
          "not a password hash of a method this system knows");
  }
  // crypt_checksalt looks at the method and settings only; a hash cut short
  // is caught by hashing something with it.
  std::unique_ptr<crypt_data> data = NewCryptData();
  const char* out = crypt_rn("", text.c_str(), data.get(),
                             static_cast<int>(sizeof(crypt_data)));
  if (out == nullptr || out[0] == '*' || std::strlen(out) != text.size()) {
    return absl::InvalidArgumentError("the password hash is malformed");
  }
  return absl::OkStatus();
}

bool VerifyPassword(absl::string_view password, absl::string_view hash) {
  if (hash.empty() || hash[0] != '$' || password.size() > kMaxPasswordBytes ||
      absl::StrContains(password, '\0')) {
    return false;
  }
  const std::string text(password);
  const std::string setting(hash);
  std::unique_ptr<crypt_data> data = NewCryptData();
  const char* out = crypt_rn(text.c_str(), setting.c_str(), data.get(),
                             static_cast<int>(sizeof(crypt_data)));
  if (out == nullptr || out[0] == '*') return false;
  return ConstantTimeEquals(out, hash);
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace manifold
