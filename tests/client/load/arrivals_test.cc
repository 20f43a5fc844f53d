// Arrival accounting: what came in order, late, twice, or never.

#include "client/load/arrivals.h"

#include "gtest/gtest.h"

namespace manifold::load {
namespace {

TEST(ArrivalLogTest, InOrderArrivalsLeaveNothingMissing) {
  ArrivalLog log(100);
  for (uint64_t seq = 0; seq < 100; ++seq) {
    EXPECT_EQ(log.Record(seq), Arrival::kInOrder);
  }
  EXPECT_EQ(log.received(), 100u);
  EXPECT_EQ(log.distinct(), 100u);
  EXPECT_EQ(log.Missing(100), 0u);
  EXPECT_EQ(log.late(), 0u);
}

TEST(ArrivalLogTest, TellsLateArrivalsFromDuplicates) {
  ArrivalLog log(10);
  EXPECT_EQ(log.Record(0), Arrival::kInOrder);
  EXPECT_EQ(log.Record(2), Arrival::kInOrder);
  EXPECT_EQ(log.Record(1), Arrival::kLate);
  EXPECT_EQ(log.Record(2), Arrival::kDuplicate);
  EXPECT_EQ(log.Record(10), Arrival::kOutOfRange);
  EXPECT_EQ(log.received(), 5u);
  EXPECT_EQ(log.distinct(), 3u);
  EXPECT_EQ(log.late(), 1u);
  EXPECT_EQ(log.duplicates(), 1u);
  EXPECT_EQ(log.out_of_range(), 1u);
}

TEST(ArrivalLogTest, CountsEveryNumberThatNeverCame) {
  ArrivalLog log(200);
  for (uint64_t seq = 0; seq < 150; ++seq) {
    if (seq % 10 != 3) log.Record(seq);
  }
  EXPECT_EQ(log.Missing(150), 15u);
  // Numbers past the last one sent are not missing...
  EXPECT_EQ(log.Missing(64), 7u);
  // ...and the capacity bounds what can be missing.
  EXPECT_EQ(log.Missing(1000), 15u + 50u);
}

TEST(StampTest, RoundTripsSequenceAndPublisher) {
  char payload[16] = {};
  WriteStamp(Stamp{0x0102030405060708, 77}, payload);
  Stamp stamp;
  ASSERT_TRUE(ReadStamp(payload, sizeof(payload), stamp));
  EXPECT_EQ(stamp.seq, 0x0102030405060708u);
  EXPECT_EQ(stamp.publisher, 77u);
  EXPECT_FALSE(ReadStamp(payload, kStampBytes - 1, stamp));
}

}  // namespace
}  // namespace manifold::load
