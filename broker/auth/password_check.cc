#include "broker/auth/password_check.h"

#include <openssl/crypto.h>

#include "broker/auth/password_hash.h"

namespace manifold {

PasswordCheck::~PasswordCheck() {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
}

void PasswordCheck::Run() {
  matched.reset();
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (VerifyPassword(secret, candidates[i].hash)) {
      matched = i;
      break;
    }
  }
  ran = true;
}

}  // namespace manifold
