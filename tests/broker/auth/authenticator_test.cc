// File: tests/broker/auth/authenticator_test.cc

#include "broker/auth/authenticator.h"

#include <memory>
#include <string>
#include <vector>

#include "broker/auth/password_hash.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace manifold {
namespace {

using ::testing::HasSubstr;

const std::string kCacheKey(32, '\x42');

std::string Hash(absl::string_view password) {
  absl::StatusOr<std::string> hash =
      HashPassword(password, std::string(kPasswordSaltBytes, '\x07'));
  EXPECT_TRUE(hash.ok()) << hash.status();
  return hash.value_or("");
}

AuthConfig Parse(const std::string& text) {
  AuthConfig config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config))
      << text;
  return config;
}

// alice: password, publish only under orders/. bob: a plain and a hashed
// token, unchecked. svc: a certificate.
AuthConfig TwoUsers() {
  AuthConfig config = Parse(R"pb(
    users {
      name: "alice"
      permissions { publish { allow: "orders/**" } }
    }
    users { name: "bob" tokens: "plain-token-of-bob" }
    users { name: "svc" certificates: "CN=svc,O=Example" }
  )pb");
  config.mutable_users(0)->set_password_hash(Hash("alice-pw"));
  config.mutable_users(1)->add_tokens(Hash("hashed-token-of-bob"));
  return config;
}

std::unique_ptr<Authenticator> Make(const AuthConfig& config) {
  absl::StatusOr<std::unique_ptr<Authenticator>> auth =
      Authenticator::Create(config, kCacheKey);
  EXPECT_TRUE(auth.ok()) << auth.status();
  return auth.ok() ? *std::move(auth) : nullptr;
}

TEST(AuthenticatorTest, PasswordLogsInAsTheUserWithItsPermissions) {
  std::unique_ptr<Authenticator> auth = Make(TwoUsers());
  absl::StatusOr<Grant> grant =
      auth->Authenticate({.user = "alice", .password = "alice-pw"});
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_EQ(grant->user, "alice");
  ASSERT_NE(grant->permissions, nullptr);
  EXPECT_TRUE(
      grant->permissions->Check(AccessOperation::kPublish, "orders/1").ok());
  EXPECT_FALSE(
      grant->permissions->Check(AccessOperation::kPublish, "billing/1").ok());
  // Again: the remembered password gives the same answer.
  EXPECT_TRUE(
      auth->Authenticate({.user = "alice", .password = "alice-pw"}).ok());
  EXPECT_FALSE(
      auth->Authenticate({.user = "alice", .password = "alice-px"}).ok());
}

TEST(AuthenticatorTest, WrongPasswordAndUnknownUserReadTheSame) {
  std::unique_ptr<Authenticator> auth = Make(TwoUsers());
  absl::Status wrong =
      auth->Authenticate({.user = "alice", .password = "nope"}).status();
  absl::Status unknown =
      auth->Authenticate({.user = "mallory", .password = "nope"}).status();
  EXPECT_EQ(wrong.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(wrong, unknown);
  EXPECT_EQ(wrong.message(), "wrong user name or password");
  // A user who has no password cannot log in with one.
  EXPECT_EQ(auth->Authenticate({.user = "bob", .password = ""}).status(),
            wrong);
  EXPECT_THAT(auth->Authenticate({.password = "x"}).status().message(),
              HasSubstr("without a user name"));
}

TEST(AuthenticatorTest, TokensInClearAndHashedLogIn) {
  std::unique_ptr<Authenticator> auth = Make(TwoUsers());
  absl::StatusOr<Grant> plain =
      auth->Authenticate({.token = "plain-token-of-bob"});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->user, "bob");
  EXPECT_EQ(plain->permissions, nullptr);
  absl::StatusOr<Grant> hashed =
      auth->Authenticate({.token = "hashed-token-of-bob"});
  ASSERT_TRUE(hashed.ok()) << hashed.status();
  EXPECT_EQ(hashed->user, "bob");
  EXPECT_EQ(auth->Authenticate({.token = "guess"}).status().message(),
            "unknown token");
  // A token wins over a user name and password.
  EXPECT_FALSE(
      auth->Authenticate(
              {.token = "guess", .user = "alice", .password = "alice-pw"})
          .ok());
}

TEST(AuthenticatorTest, CertificateNameLogsIn) {
  std::unique_ptr<Authenticator> auth = Make(TwoUsers());
  std::vector<std::string> names = {"CN=svc,O=Example", "DNS:svc.example"};
  absl::StatusOr<Grant> grant =
      auth->Authenticate({.certificate_names = names});
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_EQ(grant->user, "svc");
  std::vector<std::string> stranger = {"CN=eve"};
  EXPECT_EQ(
      auth->Authenticate({.certificate_names = stranger}).status().message(),
      "certificate 'CN=eve' belongs to no user");
}

TEST(AuthenticatorTest, AnonymousNeedsAllowAnonymous) {
  AuthConfig config = TwoUsers();
  EXPECT_EQ(Make(config)->Authenticate({}).status().message(),
            "credentials required");
  config.set_allow_anonymous(true);
  config.mutable_anonymous_permissions()->mutable_publish()->add_deny("**");
  std::unique_ptr<Authenticator> auth = Make(config);
  absl::StatusOr<Grant> grant = auth->Authenticate({});
  ASSERT_TRUE(grant.ok());
  EXPECT_EQ(grant->user, "");
  ASSERT_NE(grant->permissions, nullptr);
  EXPECT_FALSE(grant->permissions->Check(AccessOperation::kPublish, "a").ok());
  // Credentials that fail are refused even with anonymous access on.
  EXPECT_FALSE(auth->Authenticate({.token = "guess"}).ok());
}

TEST(AuthenticatorTest, ASessionsUserLogsInWithItsPermissionsOfNow) {
  std::unique_ptr<Authenticator> auth = Make(TwoUsers());
  absl::StatusOr<Grant> grant = auth->Authenticate({.session_user = "alice"});
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_EQ(grant->user, "alice");
  ASSERT_NE(grant->permissions, nullptr);
  EXPECT_TRUE(
      grant->permissions->Check(AccessOperation::kPublish, "orders/1").ok());
  EXPECT_FALSE(
      grant->permissions->Check(AccessOperation::kPublish, "other").ok());
  // A user no longer configured vouches for nothing.
  EXPECT_EQ(auth->Authenticate({.session_user = "mallory"}).status().message(),
            "credentials required");
  // Credentials of its own come first, and fail on their own.
  EXPECT_EQ(auth->Authenticate({.token = "guess", .session_user = "alice"})
                .status()
                .message(),
            "unknown token");
}

TEST(AuthenticatorTest, BeginHandsOutTheHashCheckAndFinishAnswers) {
  std::unique_ptr<Authenticator> auth = Make(TwoUsers());
  Authenticator::Login login =
      auth->Begin({.user = "alice", .password = "alice-pw"});
  ASSERT_FALSE(login.answer.has_value());
  ASSERT_TRUE(login.check.has_value());
  EXPECT_EQ(login.check->kind, PasswordCheck::Kind::kPassword);
  // Finish() refuses a check that has not run.
  EXPECT_FALSE(auth->Finish(*login.check).ok());
  login.check->Run();
  absl::StatusOr<Grant> grant = auth->Finish(*login.check);
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_EQ(grant->user, "alice");
  // Remembered now: the same password is answered at once.
  Authenticator::Login again =
      auth->Begin({.user = "alice", .password = "alice-pw"});
  ASSERT_TRUE(again.answer.has_value());
  EXPECT_TRUE(again.answer->ok());
  // A wrong one and an unknown name both need a check, and read the same.
  for (const Credentials& wrong :
       {Credentials{.user = "alice", .password = "guess"},
        Credentials{.user = "nobody", .password = "alice-pw"}}) {
    Authenticator::Login l = auth->Begin(wrong);
    ASSERT_TRUE(l.check.has_value());
    l.check->Run();
    EXPECT_EQ(auth->Finish(*l.check).status().message(),
              "wrong user name or password");
  }
  // Hashed tokens are checked the same way; tokens in clear at once.
  Authenticator::Login token = auth->Begin({.token = "hashed-token-of-bob"});
  ASSERT_TRUE(token.check.has_value());
  EXPECT_EQ(token.check->kind, PasswordCheck::Kind::kToken);
  token.check->Run();
  grant = auth->Finish(*token.check);
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_EQ(grant->user, "bob");
  EXPECT_TRUE(auth->Begin({.token = "plain-token-of-bob"}).answer.has_value());
}

TEST(AuthenticatorTest, ACheckThatOutlivesItsUsersHashIsRefused) {
  std::unique_ptr<Authenticator> auth = Make(TwoUsers());
  Authenticator::Login login =
      auth->Begin({.user = "alice", .password = "alice-pw"});
  ASSERT_TRUE(login.check.has_value());
  login.check->Run();
  // A reload gave alice a new password while the old one was checked.
  AuthConfig changed = TwoUsers();
  changed.mutable_users(0)->set_password_hash(Hash("new-pw"));
  std::unique_ptr<Authenticator> reloaded = Make(changed);
  EXPECT_EQ(reloaded->Finish(*login.check).status().message(),
            "wrong user name or password");
  // And one whose user is gone altogether.
  AuthConfig without_alice = TwoUsers();
  without_alice.mutable_users()->DeleteSubrange(0, 1);
  EXPECT_FALSE(Make(without_alice)->Finish(*login.check).ok());
}

TEST(AuthenticatorTest, WithoutUsersEveryoneIsAnonymous) {
  std::unique_ptr<Authenticator> auth = Make(AuthConfig());
  EXPECT_FALSE(auth->has_users());
  absl::StatusOr<Grant> grant = auth->Authenticate({});
  ASSERT_TRUE(grant.ok());
  EXPECT_EQ(grant->permissions, nullptr);
  // Credentials are not checked against nobody.
  EXPECT_TRUE(auth->Authenticate({.token = "any"}).ok());
  EXPECT_TRUE(auth->Authenticate({.user = "a", .password = "b"}).ok());
}

TEST(AuthenticatorTest, BadConfigurationsNameTheUserAndTheProblem) {
  auto error = [](const std::string& text) {
    return std::string(
        Authenticator::Create(Parse(text), kCacheKey).status().message());
  };
  EXPECT_EQ(error(R"pb(users { password_hash: "$y$" })pb"),
            "a user without a name");
  EXPECT_THAT(error(R"pb(users { name: "a" tokens: "t" }
                         users { name: "a" tokens: "u" })pb"),
              HasSubstr("user 'a': defined twice"));
  EXPECT_THAT(error(R"pb(users { name: "a" password_hash: "plain" })pb"),
              HasSubstr("user 'a': password_hash: not a password hash"));
  EXPECT_THAT(error(R"pb(users { name: "a" tokens: "t" }
                         users { name: "b" tokens: "t" })pb"),
              HasSubstr("user 'b': a token user 'a' has already"));
  EXPECT_THAT(error(R"pb(users { name: "a" certificates: "CN=x" }
                         users { name: "b" certificates: "CN=x" })pb"),
              HasSubstr("certificate 'CN=x' belongs to user 'a' already"));
  EXPECT_THAT(error(R"pb(users { name: "a" })pb"),
              HasSubstr("no password_hash, token or certificate"));
  EXPECT_THAT(error(R"pb(users {
                           name: "a"
                           tokens: "t"
                           permissions { publish { allow: "a//b" } }
                         })pb"),
              HasSubstr("user 'a': "));
  EXPECT_THAT(
      std::string(
          Authenticator::Create(AuthConfig(), "short").status().message()),
      HasSubstr("16 random bytes"));
}

TEST(AuthenticatorTest, PermissionsByUserListsEveryUser) {
  std::unique_ptr<Authenticator> auth = Make(TwoUsers());
  auto by_user = auth->PermissionsByUser();
  EXPECT_EQ(by_user.size(), 3u);
  EXPECT_NE(by_user["alice"], nullptr);
  EXPECT_EQ(by_user["bob"], nullptr);
}

}  // namespace
}  // namespace manifold
