// File: tests/broker/auth/login_throttle_test.cc

#include "broker/auth/login_throttle.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace manifold {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1000);

TEST(LoginThrottleTest, HostOfDropsThePort) {
  EXPECT_EQ(LoginThrottle::HostOf("10.0.0.7:5123"), "10.0.0.7");
  EXPECT_EQ(LoginThrottle::HostOf("[::1]:5123"), "::1");
  EXPECT_EQ(LoginThrottle::HostOf("::1"), "::1");
  EXPECT_EQ(LoginThrottle::HostOf("/run/manifold.sock"), "/run/manifold.sock");
}

TEST(LoginThrottleTest, BlocksAfterMaxFailuresWithinTheWindow) {
  LoginThrottle t({.max_failures = 3, .window = absl::Seconds(60)});
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(t.Blocked("a", kStart + absl::Seconds(i)));
    t.RecordFailure("a", kStart + absl::Seconds(i));
  }
  EXPECT_TRUE(t.Blocked("a", kStart + absl::Seconds(3)));
  EXPECT_FALSE(t.Blocked("b", kStart + absl::Seconds(3)));
  // Until the window has passed since the last failure (at 2 s).
  EXPECT_TRUE(t.Blocked("a", kStart + absl::Seconds(61)));
  EXPECT_FALSE(t.Blocked("a", kStart + absl::Seconds(62)));
  // Then it starts from zero.
  t.RecordFailure("a", kStart + absl::Seconds(62));
  EXPECT_FALSE(t.Blocked("a", kStart + absl::Seconds(62)));
}

TEST(LoginThrottleTest, FailuresFurtherApartThanTheWindowDoNotAddUp) {
  LoginThrottle t({.max_failures = 2, .window = absl::Seconds(10)});
  t.RecordFailure("a", kStart);
  t.RecordFailure("a", kStart + absl::Seconds(10));
  EXPECT_FALSE(t.Blocked("a", kStart + absl::Seconds(10)));
  t.RecordFailure("a", kStart + absl::Seconds(11));
  EXPECT_TRUE(t.Blocked("a", kStart + absl::Seconds(11)));
}

TEST(LoginThrottleTest, TableStaysWithinItsBound) {
  LoginThrottle t(
      {.max_failures = 1, .window = absl::Seconds(10), .max_addresses = 100});
  for (int i = 0; i < 1000; ++i) {
    t.RecordFailure(absl::StrCat("10.0.", i / 256, ".", i % 256),
                    kStart + absl::Milliseconds(i));
    EXPECT_LE(t.tracked(), 100u);
  }
  // The most recent addresses are the ones kept.
  EXPECT_TRUE(t.Blocked("10.0.3.231", kStart + absl::Seconds(1)));
  EXPECT_FALSE(t.Blocked("10.0.0.1", kStart + absl::Seconds(1)));
  // Expired entries make room before recent ones are dropped.
  t.RecordFailure("late", kStart + absl::Seconds(30));
  EXPECT_EQ(t.tracked(), 1u);
}

}  // namespace
}  // namespace manifold
