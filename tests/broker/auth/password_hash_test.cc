// File: tests/broker/auth/password_hash_test.cc

#include "broker/auth/password_hash.h"

#include <string>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace manifold {
namespace {

using ::testing::HasSubstr;

const std::string kSalt(kPasswordSaltBytes, '\x5a');

TEST(PasswordHashTest, HashesWithYescryptAndVerifies) {
  absl::StatusOr<std::string> hash = HashPassword("s3cret", kSalt);
  ASSERT_TRUE(hash.ok()) << hash.status();
  EXPECT_TRUE(absl::StartsWith(*hash, "$y$")) << *hash;
  EXPECT_EQ(CheckPasswordHash(*hash), absl::OkStatus());
  EXPECT_TRUE(VerifyPassword("s3cret", *hash));
  EXPECT_FALSE(VerifyPassword("s3cret ", *hash));
  EXPECT_FALSE(VerifyPassword("", *hash));
}

TEST(PasswordHashTest, SaltMakesHashesDiffer) {
  absl::StatusOr<std::string> a = HashPassword("same", kSalt);
  absl::StatusOr<std::string> b =
      HashPassword("same", std::string(kPasswordSaltBytes, '\x11'));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(VerifyPassword("same", *b));
}

TEST(PasswordHashTest, RefusesTooLittleRandomnessAndBadPasswords) {
  EXPECT_THAT(HashPassword("x", "short").status().message(),
              HasSubstr("needs 16 random bytes, got 5"));
  EXPECT_THAT(HashPassword(std::string("a\0b", 3), kSalt).status().message(),
              HasSubstr("NUL"));
  EXPECT_THAT(HashPassword(std::string(5000, 'x'), kSalt).status().message(),
              HasSubstr("at most 4096 bytes"));
}

TEST(PasswordHashTest, VerifiesBcryptAndSha512CryptHashes) {
  // Made by another crypt(3) front end (Python's crypt module) for "hunter2".
  const char* bcrypt =
      "$2b$05$Xop8Zr5HXHqz5Mt7d2qv5OnWUcU7S0l7IwoUDWgfShMHY3Yv2OQ4u";
  const char* sha512 =
      "$6$saltsaltsalt$/YcSJBZ1GwOaYU2XCNxvWBX3MbYsX7qkf0.0L28t35vap3Pr7yS0JA8"
      "iUjaUrIKpD1vbB841OQkrlcX47Jjuy/";
  EXPECT_EQ(CheckPasswordHash(bcrypt), absl::OkStatus());
  EXPECT_EQ(CheckPasswordHash(sha512), absl::OkStatus());
  EXPECT_TRUE(VerifyPassword("hunter2", bcrypt));
  EXPECT_FALSE(VerifyPassword("hunter3", bcrypt));
  EXPECT_TRUE(VerifyPassword("hunter2", sha512));
}

TEST(PasswordHashTest, RefusesWhatIsNotAUsableHash) {
  EXPECT_THAT(CheckPasswordHash("s3cret").message(),
              HasSubstr("a hash starts with '$'"));
  EXPECT_THAT(CheckPasswordHash("").message(),
              HasSubstr("not a password hash"));
  EXPECT_FALSE(CheckPasswordHash("$zz$nonsense").ok());
  absl::StatusOr<std::string> hash = HashPassword("s3cret", kSalt);
  ASSERT_TRUE(hash.ok());
  EXPECT_THAT(CheckPasswordHash(hash->substr(0, hash->size() - 5)).message(),
              HasSubstr("malformed"));
  // Traditional DES crypt has no '$' prefix: refused as not a hash.
  EXPECT_FALSE(CheckPasswordHash("abJnggxhB/yWI").ok());
  EXPECT_FALSE(VerifyPassword("s3cret", "s3cret"));
}

TEST(PasswordHashTest, ConstantTimeEqualsComparesBytes) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace manifold
