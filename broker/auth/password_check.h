// File: broker/auth/password_check.h
// -----------------------------------------------------------------------------
//
// The slow part of a login, on its own: checking a presented password or
// token against crypt(3) hashes (some milliseconds each for yescrypt). The
// Authenticator hands one out when a login needs it (Authenticator::Begin),
// so that an embedder can run it away from its event loop and hand the
// result back (Authenticator::Finish); the loop stays free for everyone
// else meanwhile.
//
//   Authenticator::Login login = auth.Begin(credentials);
//   if (login.check.has_value()) {
//     // On any thread:
//     login.check->Run();
//     // Back on the Authenticator's thread:
//     absl::StatusOr<Grant> grant = auth.Finish(*login.check);
//   }
//
// Thread safety: Run() touches only the check itself, so checks may run on
// any thread, several at once; a check belongs to one thread at a time.

#ifndef MANIFOLD_BROKER_AUTH_PASSWORD_CHECK_H_
#define MANIFOLD_BROKER_AUTH_PASSWORD_CHECK_H_

#include <optional>
#include <string>
#include <vector>

namespace manifold {

struct PasswordCheck {
  enum class Kind {
    kPassword,  // a user name's password
    kToken,     // a bearer token, against every user's hashed tokens
  };
  struct Candidate {
    std::string user;  // empty for the decoy an unknown name is checked with
    std::string hash;  // a crypt(3) hash
  };

  PasswordCheck() = default;
  PasswordCheck(PasswordCheck&& other) = default;
  PasswordCheck& operator=(PasswordCheck&& other) = default;
  PasswordCheck(const PasswordCheck&) = delete;
  PasswordCheck& operator=(const PasswordCheck&) = delete;
  // Overwrites the secret before its memory is freed.
  ~PasswordCheck();

  // Checks `secret` against each candidate in turn until one matches, and
  // records which in `matched`. Every candidate is tried when none matches,
  // so a wrong secret costs the same however many there are.
  void Run();

  Kind kind = Kind::kPassword;
  std::string secret;
  std::vector<Candidate> candidates;
  // After Run(): the index of the candidate that matched; nullopt for none.
  std::optional<size_t> matched;
  bool ran = false;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_AUTH_PASSWORD_CHECK_H_
