// File: broker/auth/authenticator.cc

#include "broker/auth/authenticator.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/auth/password_hash.h"

namespace manifold {
namespace {

std::string Sha256(absl::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

absl::Status UserError(const UserConfig& user, absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("user '", user.name(), "': ", problem));
}

absl::StatusOr<std::shared_ptr<const PermissionSet>> CompileIfSet(
    bool has, const Permissions& permissions) {
  if (!has) return std::shared_ptr<const PermissionSet>();
  return PermissionSet::Compile(permissions);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(
    const AuthConfig& config, absl::string_view cache_key) {
  if (cache_key.size() < 16) {
    return absl::InvalidArgumentError(
        "the authenticator's cache key needs at least 16 random bytes");
  }
  std::unique_ptr<Authenticator> auth(new Authenticator());
  auth->cache_key_ = std::string(cache_key);
  auth->allow_anonymous_ = config.allow_anonymous();
  absl::StatusOr<std::shared_ptr<const PermissionSet>> anonymous = CompileIfSet(
      config.has_anonymous_permissions(), config.anonymous_permissions());
  if (!anonymous.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("anonymous_permissions: ", anonymous.status().message()));
  }
  auth->anonymous_permissions_ = *std::move(anonymous);

  absl::flat_hash_map<std::string, std::string> token_owner;
  for (const UserConfig& config_user : config.users()) {
    if (config_user.name().empty()) {
      return absl::InvalidArgumentError("a user without a name");
    }
    if (auth->by_name_.contains(config_user.name())) {
      return UserError(config_user, "defined twice");
    }
    const size_t index = auth->users_.size();
    User user;
    user.name = config_user.name();
    if (!config_user.password_hash().empty()) {
      absl::Status usable = CheckPasswordHash(config_user.password_hash());
      if (!usable.ok()) {
        return UserError(config_user,
                         absl::StrCat("password_hash: ", usable.message()));
      }
      user.password_hash = config_user.password_hash();
    }
    for (const std::string& token : config_user.tokens()) {
      if (token.empty()) return UserError(config_user, "an empty token");
      auto [owner, fresh] = token_owner.emplace(token, user.name);
      if (!fresh) {
        return UserError(
            config_user,
            absl::StrCat("a token user '", owner->second, "' has already"));
      }
      if (token[0] == '$') {
        absl::Status usable = CheckPasswordHash(token);
        if (!usable.ok()) {
          return UserError(config_user,
                           absl::StrCat("token hash: ", usable.message()));
        }
        user.hashed_tokens.push_back(token);
      } else {
        auth->plain_tokens_.emplace_back(Sha256(token), index);
      }
    }
    for (const std::string& name : config_user.certificates()) {
      if (name.empty()) {
        return UserError(config_user, "an empty certificate name");
      }
      auto [owner, fresh] = auth->by_certificate_.emplace(name, index);
      if (!fresh) {
        return UserError(
            config_user,
            absl::StrCat("certificate '", name, "' belongs to user '",
                         auth->users_[owner->second].name, "' already"));
      }
    }
    if (user.password_hash.empty() && config_user.tokens().empty() &&
        config_user.certificates().empty()) {
      return UserError(config_user,
                       "no password_hash, token or certificate to log in with");
    }
    absl::StatusOr<std::shared_ptr<const PermissionSet>> permissions =
        CompileIfSet(config_user.has_permissions(), config_user.permissions());
    if (!permissions.ok()) {
      return UserError(config_user, permissions.status().message());
    }
    user.permissions = *std::move(permissions);
    auth->by_name_.emplace(user.name, index);
    auth->users_.push_back(std::move(user));
  }
  // A hash of the configured method and cost for unknown names; its salt
  // need not be secret or random.
  absl::StatusOr<std::string> decoy =
      HashPassword("", Sha256(auth->cache_key_).substr(0, kPasswordSaltBytes));
  if (!decoy.ok()) return decoy.status();
  auth->decoy_hash_ = *std::move(decoy);
  return auth;
}

std::string Authenticator::Mac(absl::string_view kind,
                               absl::string_view secret) const {
  const std::string message = absl::StrCat(kind, std::string(1, '\0'), secret);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), cache_key_.data(), static_cast<int>(cache_key_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
       mac, &size);
  return std::string(reinterpret_cast<const char*>(mac), size);
}

absl::StatusOr<Grant> Authenticator::Authenticate(
    const Credentials& credentials) {
  Login login = Begin(credentials);
  if (login.answer.has_value()) return *std::move(login.answer);
  login.check->Run();
  return Finish(*login.check);
}

Authenticator::Login Authenticator::Begin(const Credentials& credentials) {
  auto answer = [](absl::StatusOr<Grant> grant) {
    Login login;
    login.answer = std::move(grant);
    return login;
  };
  // Without users there is nobody to check against: credentials are
  // ignored, as nats-server ignores them when it has no authorization.
  if (!has_users()) return answer(Grant{"", anonymous_permissions_});
  if (!credentials.token.empty()) return ByToken(credentials.token);
  if (!credentials.user.empty()) {
    return ByPassword(credentials.user, credentials.password);
  }
  if (!credentials.password.empty()) {
    return answer(absl::UnauthenticatedError("a password without a user name"));
  }
  if (!credentials.certificate_names.empty()) {
    for (const std::string& name : credentials.certificate_names) {
      auto it = by_certificate_.find(name);
      if (it != by_certificate_.end()) {
        return answer(GrantFor(users_[it->second]));
      }
    }
    if (!allow_anonymous_ && has_users()) {
      return answer(absl::UnauthenticatedError(
          absl::StrCat("certificate '", credentials.certificate_names[0],
                       "' belongs to no user")));
    }
  }
  if (!credentials.session_user.empty()) {
    // The session's user as configured now: a reload since its login may
    // have changed what it may do, or removed it (then the link is treated
    // as bringing nothing).
    auto it = by_name_.find(credentials.session_user);
    if (it != by_name_.end()) return answer(GrantFor(users_[it->second]));
  }
  if (has_users() && !allow_anonymous_) {
    return answer(absl::UnauthenticatedError("credentials required"));
  }
  return answer(Grant{"", anonymous_permissions_});
}

Authenticator::Login Authenticator::ByToken(absl::string_view token) {
  Login login;
  const std::string digest = Sha256(token);
  // Every token given in clear is compared, so the time taken does not say
  // which one matched.
  size_t found = users_.size();
  for (const auto& [candidate, index] : plain_tokens_) {
    if (ConstantTimeEquals(digest, candidate)) found = index;
  }
  if (found != users_.size()) {
    login.answer = GrantFor(users_[found]);
    return login;
  }
  const std::string mac = Mac("token", token);
  for (User& user : users_) {
    if (!user.verified_token.empty() &&
        ConstantTimeEquals(mac, user.verified_token)) {
      login.answer = GrantFor(user);
      return login;
    }
  }
  PasswordCheck check;
  check.kind = PasswordCheck::Kind::kToken;
  check.secret = std::string(token);
  for (const User& user : users_) {
    for (const std::string& hash : user.hashed_tokens) {
      check.candidates.push_back({user.name, hash});
    }
  }
  if (check.candidates.empty()) {
    login.answer = absl::UnauthenticatedError("unknown token");
    return login;
  }
  login.check = std::move(check);
  return login;
}

Authenticator::Login Authenticator::ByPassword(absl::string_view name,
                                               absl::string_view password) {
  Login login;
  PasswordCheck check;
  check.kind = PasswordCheck::Kind::kPassword;
  check.secret = std::string(password);
  auto it = by_name_.find(name);
  if (it == by_name_.end() || users_[it->second].password_hash.empty()) {
    // Checked against the decoy, and refused in Finish() whatever the
    // result: an unknown name costs a wrong password's time.
    check.candidates.push_back({"", decoy_hash_});
    login.check = std::move(check);
    return login;
  }
  User& user = users_[it->second];
  const std::string mac = Mac("password", password);
  if (!user.verified_password.empty() &&
      ConstantTimeEquals(mac, user.verified_password)) {
    login.answer = GrantFor(user);
    return login;
  }
  check.candidates.push_back({user.name, user.password_hash});
  login.check = std::move(check);
  return login;
}

absl::StatusOr<Grant> Authenticator::Finish(const PasswordCheck& check) {
  const bool token = check.kind == PasswordCheck::Kind::kToken;
  const absl::Status refused = absl::UnauthenticatedError(
      token ? "unknown token" : "wrong user name or password");
  if (!check.ran || !check.matched.has_value() ||
      *check.matched >= check.candidates.size()) {
    return refused;
  }
  const PasswordCheck::Candidate& matched = check.candidates[*check.matched];
  auto it = by_name_.find(matched.user);
  if (matched.user.empty() || it == by_name_.end()) return refused;
  User& user = users_[it->second];
  if (token) {
    // The hash must still be one of the user's: a reload may have taken
    // the token away while it was being checked.
    for (const std::string& hash : user.hashed_tokens) {
      if (hash == matched.hash) {
        user.verified_token = Mac("token", check.secret);
        return GrantFor(user);
      }
    }
    return refused;
  }
  if (user.password_hash != matched.hash) return refused;
  user.verified_password = Mac("password", check.secret);
  return GrantFor(user);
}

absl::flat_hash_map<std::string, std::shared_ptr<const PermissionSet>>
Authenticator::PermissionsByUser() const {
  absl::flat_hash_map<std::string, std::shared_ptr<const PermissionSet>> out;
  for (const User& user : users_) out.emplace(user.name, user.permissions);
  return out;
}

}  // namespace manifold
