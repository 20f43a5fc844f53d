#include "broker/outbound_buffer.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace manifold {
namespace {

std::string Drain(OutboundBuffer& out, size_t step) {
  std::string got;
  absl::string_view chunks[8];
  while (!out.empty()) {
    const size_t n = out.Peek(absl::MakeSpan(chunks));
    size_t take = 0;
    for (size_t i = 0; i < n && take < step; ++i) {
      const size_t part = std::min(chunks[i].size(), step - take);
      got.append(chunks[i].data(), part);
      take += part;
    }
    out.Consume(take);
  }
  return got;
}

TEST(OutboundBufferTest, CopiesAndSharedSlicesComeOutInOrder) {
  OutboundBuffer out;
  out.Append("head-");
  const SharedBytes big = SharedBytes::Copy(std::string(2000, 'b'));
  out.AppendShared(big);
  out.Append("-tail");
  EXPECT_EQ(out.size(), 2010u);
  EXPECT_EQ(Drain(out, 1 << 20), "head-" + std::string(2000, 'b') + "-tail");
}

TEST(OutboundBufferTest, SharedBytesAreNotCopiedIntoEachBuffer) {
  const SharedBytes big = SharedBytes::Copy(std::string(4096, 'x'));
  OutboundBuffer a, b;
  a.AppendShared(big);
  b.AppendShared(big);
  absl::string_view ca[1], cb[1];
  ASSERT_EQ(a.Peek(absl::MakeSpan(ca)), 1u);
  ASSERT_EQ(b.Peek(absl::MakeSpan(cb)), 1u);
  EXPECT_EQ(ca[0].data(), cb[0].data());  // the same bytes
  EXPECT_EQ(ca[0].data(), big.view().data());
}

TEST(OutboundBufferTest, SmallSharedValuesAreCopied) {
  const SharedBytes small = SharedBytes::Copy("tiny");
  OutboundBuffer out;
  out.AppendShared(small);
  absl::string_view chunk[1];
  out.Peek(absl::MakeSpan(chunk));
  EXPECT_NE(chunk[0].data(), small.view().data());
  EXPECT_EQ(chunk[0], "tiny");
}

TEST(OutboundBufferTest, SharedBytesOutliveTheirCreator) {
  OutboundBuffer out;
  {
    SharedBytes big = SharedBytes::Copy(std::string(1000, 'z'));
    out.AppendShared(big);
  }
  EXPECT_EQ(Drain(out, 7), std::string(1000, 'z'));
}

TEST(OutboundBufferTest, PartialConsumesAtEveryOffsetKeepTheStreamIntact) {
  std::mt19937 rng(3);
  std::string expected;
  OutboundBuffer out;
  for (int i = 0; i < 300; ++i) {
    const size_t n = rng() % 1500;
    std::string piece(n, static_cast<char>('a' + i % 26));
    expected += piece;
    if (rng() % 2) {
      out.AppendShared(SharedBytes::Copy(piece));
    } else {
      out.Append(piece);
    }
  }
  for (size_t step : {1u, 7u, 1000u, 100000u}) {
    OutboundBuffer copy;
    copy.Append(expected);
    EXPECT_EQ(Drain(copy, step), expected);
  }
  EXPECT_EQ(Drain(out, 333), expected);
}

TEST(OutboundBufferTest, AppendSpaceIsContiguous) {
  OutboundBuffer out;
  char* p = out.AppendSpace(5);
  std::memcpy(p, "hello", 5);
  out.Append(" world");
  EXPECT_EQ(Drain(out, 100), "hello world");
}

TEST(OutboundBufferTest, ClearDropsEverything) {
  OutboundBuffer out;
  out.Append("abc");
  out.AppendShared(SharedBytes::Copy(std::string(600, 'q')));
  out.Clear();
  EXPECT_TRUE(out.empty());
  absl::string_view chunk[2];
  EXPECT_EQ(out.Peek(absl::MakeSpan(chunk)), 0u);
  out.Append("again");
  EXPECT_EQ(Drain(out, 100), "again");
}

// What Peek() offers, all of it.
std::string Ready(const OutboundBuffer& out) {
  absl::string_view chunks[64];
  const size_t n = out.Peek(absl::MakeSpan(chunks));
  std::string got;
  for (size_t i = 0; i < n; ++i) got.append(chunks[i].data(), chunks[i].size());
  return got;
}

TEST(OutboundBufferTest, AnOpenFrameCountsInSizeButIsNotReadyUntilClosed) {
  OutboundBuffer out;
  out.Append("before|");
  out.OpenFrame(10);
  out.Append("payload");
  EXPECT_TRUE(out.frame_open());
  EXPECT_EQ(out.open_frame_payload_size(), 7u);
  EXPECT_EQ(out.ready_size(), 7u);
  EXPECT_EQ(out.size(), 7u + 10u + 7u);  // the header's room counts too
  EXPECT_EQ(Ready(out), "before|");

  out.CloseFrame("H:");  // shorter than its room: the rest is dropped
  EXPECT_FALSE(out.frame_open());
  EXPECT_EQ(out.size(), 7u + 2u + 7u);
  EXPECT_EQ(out.ready_size(), out.size());
  EXPECT_EQ(Drain(out, 3), "before|H:payload");
}

TEST(OutboundBufferTest, AFrameGathersCopiesAndSharedSlicesAcrossBlocks) {
  OutboundBuffer out;
  out.Append(std::string(OutboundBuffer::kBlockSize - 4, 'a'));  // 4 left
  out.OpenFrame(10);  // does not fit: starts a block of its own
  std::string payload;
  for (int i = 0; i < 40; ++i) {
    const std::string piece(i % 3 == 0 ? 700 : 900, static_cast<char>('b' + i));
    payload += piece;
    if (i % 3 == 0) {
      out.AppendShared(SharedBytes::Copy(piece));
    } else {
      out.Append(piece);
    }
  }
  std::string seen;
  out.ForEachOpenFramePiece(
      [&](absl::string_view p) { seen.append(p.data(), p.size()); });
  EXPECT_EQ(seen, payload);
  EXPECT_EQ(out.open_frame_payload_size(), payload.size());
  out.CloseFrame("0123456789");  // all of its room
  EXPECT_EQ(Drain(out, 1000), std::string(OutboundBuffer::kBlockSize - 4, 'a') +
                                  "0123456789" + payload);
}

TEST(OutboundBufferTest, ConsumingWhileAFrameIsOpenTakesOnlyReadyBytes) {
  OutboundBuffer out;
  out.Append("one");
  out.AppendShared(SharedBytes::Copy(std::string(600, 's')));
  out.Append("two");
  out.OpenFrame(4);
  out.Append("inside");
  out.Consume(2);
  EXPECT_EQ(out.ready_size(), 604u);
  out.Consume(604);
  EXPECT_EQ(out.ready_size(), 0u);
  EXPECT_EQ(Ready(out), "");
  out.Append("+more");
  out.CloseFrame("[6]");
  EXPECT_EQ(Drain(out, 5), "[6]inside+more");
}

TEST(OutboundBufferTest, AnEmptyFrameClosedWithoutHeaderLeavesNothing) {
  OutboundBuffer out;
  out.Append("x");
  out.OpenFrame(10);
  out.CloseFrame("");
  EXPECT_EQ(out.size(), 1u);
  out.OpenFrame(10);
  out.Append("y");
  out.CloseFrame("#");
  EXPECT_EQ(Drain(out, 100), "x#y");
  out.OpenFrame(10);
  out.CloseFrame("");
  EXPECT_TRUE(out.empty());
}

TEST(OutboundBufferTest, ClearDropsAnOpenFrame) {
  OutboundBuffer out;
  out.OpenFrame(10);
  out.Append("gone");
  out.Clear();
  EXPECT_FALSE(out.frame_open());
  EXPECT_TRUE(out.empty());
  out.Append("kept");
  EXPECT_EQ(Drain(out, 100), "kept");
}

}  // namespace
}  // namespace manifold
