// File: broker/auth/authenticator.h
// -----------------------------------------------------------------------------
//
// Decides who a connection is from the credentials it presents, per an
// AuthConfig (broker/auth/auth_config.proto): a bearer token, a user name and
// password, or a verified TLS client certificate; or nothing, for anonymous
// access. The answer is a Grant (user and permissions) for Broker::Admit, or
// UNAUTHENTICATED with the reason to pass to Broker::Refuse.
//
//   absl::StatusOr<std::unique_ptr<Authenticator>> auth =
//       Authenticator::Create(config, cache_key);   // 32 random bytes
//   // On a ConnectionPending event:
//   Credentials c{.token = e.auth_token(), .user = e.user(),
//                 .password = e.password(), .certificate_names = names};
//   absl::StatusOr<Grant> grant = (*auth)->Authenticate(c);
//   if (grant.ok()) broker.Admit(id, *std::move(grant), now);
//   else broker.Refuse(id, grant.status().message(), now, delay);
//
// Which credential counts: a token if one is presented; else a user name
// (with its password); else the certificate; else the connection is
// anonymous. A presented credential that does not check out is refused even
// when anonymous access is on.
//
// Cost: a password or hashed token is checked with its hash's method (some
// milliseconds for yescrypt). To keep reconnecting clients cheap, the last
// password (and hashed token) that checked out for each user is remembered
// as an HMAC-SHA-256 under `cache_key`, never in clear; the same password
// again costs one HMAC. An unknown user name costs as much as a wrong
// password, so answers do not tell which names exist.
//
// An event loop should not wait for those milliseconds: Begin() decides
// what it can at once and otherwise hands out the PasswordCheck
// (password_check.h) to run on another thread; Finish() turns the checked
// result into the answer. Authenticate() does all three in one call.
//
// Thread safety: none (the cache changes on Authenticate() and Finish());
// only a PasswordCheck's Run() may happen on another thread.

#ifndef MANIFOLD_BROKER_AUTH_AUTHENTICATOR_H_
#define MANIFOLD_BROKER_AUTH_AUTHENTICATOR_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "broker/auth/auth_config.pb.h"  // IWYU pragma: export
#include "broker/auth/password_check.h"  // IWYU pragma: export
#include "broker/permissions.h"

namespace manifold {

// What a connection presented. Views, valid during Authenticate(). Every
// field starts empty, so a designated initializer names only what was
// presented: `{.user = "alice", .password = "pw"}`.
struct Credentials {
  absl::string_view token = {};
  absl::string_view user = {};
  absl::string_view password = {};
  // The verified TLS client certificate's subject (RFC 2253) and subject
  // alternative names ("DNS:...", "email:..."); empty without one.
  absl::Span<const std::string> certificate_names = {};
  // The user whose live session the connection acts for
  // (ConnectionPending.session_user); the session's token stands for the
  // login that opened it. Used only when nothing above is presented.
  absl::string_view session_user = {};
};

class Authenticator {
 public:
  // Checks and compiles `config`: names unique and non-empty, every hash a
  // usable crypt(3) hash, every token and certificate name used once, every
  // permission pattern valid. Returns INVALID_ARGUMENT naming the user and
  // the problem otherwise. `cache_key` keys the remembered passwords (see the
  // file comment); REQUIRES: at least 16 random bytes.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(
      const AuthConfig& config, absl::string_view cache_key);

  // The Grant for what `credentials` present (a token, else a user and
  // password, else a certificate, else a session's user, else anonymous),
  // or UNAUTHENTICATED naming the
  // problem without naming a secret ("wrong user name or password",
  // "unknown token", "certificate 'CN=x' belongs to no user",
  // "credentials required").
  absl::StatusOr<Grant> Authenticate(const Credentials& credentials);

  // Authenticate() in two steps. Begin() answers at once when it can
  // (`answer`: certificates, sessions, anonymous, a password or token
  // remembered from an earlier login, anything refused unchecked);
  // otherwise it returns the `check` a crypt(3) hash needs, which the
  // caller runs (PasswordCheck::Run(), on any thread) and hands to
  // Finish(). Exactly one of the two is set. The check holds a copy of the
  // secret, which it wipes when destroyed.
  struct Login {
    std::optional<absl::StatusOr<Grant>> answer;
    std::optional<PasswordCheck> check;
  };
  Login Begin(const Credentials& credentials);
  // The answer for a check Begin() handed out, after its Run(). Users are
  // looked up as configured now: a check that matched a user who has since
  // been removed, or whose hash has changed, is refused as a wrong
  // password or unknown token would be. REQUIRES: check.ran.
  absl::StatusOr<Grant> Finish(const PasswordCheck& check);

  // Whether any user is configured (without users every connection is
  // anonymous, whatever it presents).
  bool has_users() const { return !users_.empty(); }
  bool allow_anonymous() const { return allow_anonymous_; }

  // The permissions each configured user has now, by name (nullptr:
  // unchecked); for applying a reloaded configuration to live connections.
  absl::flat_hash_map<std::string, std::shared_ptr<const PermissionSet>>
  PermissionsByUser() const;
  // What anonymous connections may do (nullptr: unchecked).
  const std::shared_ptr<const PermissionSet>& anonymous_permissions() const {
    return anonymous_permissions_;
  }

 private:
  struct User {
    std::string name;
    std::string password_hash;
    std::vector<std::string> hashed_tokens;
    std::shared_ptr<const PermissionSet> permissions;
    // HMAC of the last password / token that checked out; empty: none.
    std::string verified_password;
    std::string verified_token;
  };

  Authenticator() = default;
  Grant GrantFor(const User& user) const {
    return Grant{user.name, user.permissions};
  }
  std::string Mac(absl::string_view kind, absl::string_view secret) const;
  Login ByToken(absl::string_view token);
  Login ByPassword(absl::string_view name, absl::string_view password);

  std::string cache_key_;
  std::vector<User> users_;
  absl::flat_hash_map<std::string, size_t> by_name_;
  // SHA-256 of each token given in clear, and its user.
  std::vector<std::pair<std::string, size_t>> plain_tokens_;
  absl::flat_hash_map<std::string, size_t> by_certificate_;
  bool allow_anonymous_ = false;
  std::shared_ptr<const PermissionSet> anonymous_permissions_;
  // Checked against for unknown user names, so they cost a wrong password's
  // time.
  std::string decoy_hash_;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_AUTH_AUTHENTICATOR_H_
