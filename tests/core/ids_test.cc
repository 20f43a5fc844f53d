#include "core/ids.h"

#include <type_traits>

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

namespace manifold {
namespace {

TEST(IdsTest, DifferentKindsDoNotMix) {
  static_assert(!std::is_convertible_v<ConnectionId, SubscriptionId>);
  static_assert(!std::is_convertible_v<uint64_t, RequestId>);
  static_assert(!std::is_constructible_v<ConnectionId, SubscriptionId>);
}

TEST(IdsTest, AllocatorCountsUpFromOne) {
  IdAllocator<SubscriptionId> ids;
  EXPECT_FALSE(ids.last().valid());
  EXPECT_EQ(ids.Next(), SubscriptionId(1));
  EXPECT_EQ(ids.Next(), SubscriptionId(2));
  EXPECT_EQ(ids.last().value(), 2u);
}

TEST(IdsTest, IdsHashOrderAndPrint) {
  absl::flat_hash_set<ConnectionId> set = {ConnectionId(1), ConnectionId(2)};
  EXPECT_TRUE(set.contains(ConnectionId(2)));
  EXPECT_LT(RequestId(1), RequestId(2));
  EXPECT_EQ(ConnectionId(7).ToString(), "conn#7");
  EXPECT_FALSE(ConnectionId().valid());
}

}  // namespace
}  // namespace manifold
