#include "core/status.h"

#include "gtest/gtest.h"

namespace manifold {
namespace {

TEST(StatusTest, ProtocolErrorCarriesItsWireCode) {
  absl::Status s = ProtocolError(wire::TOO_MANY_SUBSCRIPTIONS, "limit 10");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(WireCode(s), wire::TOO_MANY_SUBSCRIPTIONS);
  EXPECT_EQ(s.message(), "limit 10");
}

TEST(StatusTest, EveryCodeSurvivesTheRoundTrip) {
  for (int value = wire::Code_MIN + 1; value <= wire::Code_MAX; ++value) {
    if (!wire::Code_IsValid(value)) continue;
    const auto code = static_cast<wire::Code>(value);
    EXPECT_EQ(WireCode(ProtocolError(code, "x")), code) << CodeName(code);
    EXPECT_NE(AbslCodeFor(code), absl::StatusCode::kOk);
  }
}

TEST(StatusTest, PlainStatusesMapToGenericCodes) {
  EXPECT_EQ(WireCode(absl::OkStatus()), wire::OK);
  EXPECT_EQ(WireCode(absl::InvalidArgumentError("x")), wire::INVALID_ARGUMENT);
  EXPECT_EQ(WireCode(absl::UnknownError("x")), wire::INTERNAL);
  EXPECT_EQ(CodeName(wire::SLOW_CONSUMER), "SLOW_CONSUMER");
}

}  // namespace
}  // namespace manifold
