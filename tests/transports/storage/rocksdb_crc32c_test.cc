// Tests for transports/storage/rocksdb_crc32c.h: RocksDB's CRC32C, computed
// by ISA-L, gives the standard's values, also through RocksDB's own code,
// and RocksDB's calls reach it.

#include "transports/storage/rocksdb_crc32c.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "rocksdb/file_checksum.h"

namespace manifold {
namespace {

// CRC32C one bit at a time, as the standard defines it (reflected
// polynomial 0x82F63B78, register inverted before and after).
uint32_t BitwiseCrc32c(const std::string& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (const char c : data) {
    crc ^= static_cast<uint8_t>(c);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
  }
  return ~crc;
}

uint32_t Crc(const std::string& data) {
  return rocksdb::crc32c::Extend(0, data.data(), data.size());
}

std::string Bytes(int first, int step, int count) {
  std::string out;
  for (int i = 0; i < count; ++i)
    out.push_back(static_cast<char>(first + i * step));
  return out;
}

TEST(RocksDbCrc32cTest, GivesTheStandardsCheckValues) {
  EXPECT_EQ(Crc(""), 0u);
  EXPECT_EQ(Crc("123456789"), 0xE3069283u);
  // RFC 3720 (iSCSI), appendix B.4.
  EXPECT_EQ(Crc(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc(std::string(32, '\xFF')), 0x62A8AB43u);
  EXPECT_EQ(Crc(Bytes(0, 1, 32)), 0x46DD794Eu);
  EXPECT_EQ(Crc(Bytes(31, -1, 32)), 0x113FDB5Cu);
}

TEST(RocksDbCrc32cTest, MatchesTheBitwiseDefinitionAtEveryLengthAndOffset) {
  std::mt19937 random(7);
  std::string data(4096 + 64, '\0');
  for (char& c : data) c = static_cast<char>(random());
  for (size_t offset = 0; offset < 16; ++offset) {
    for (size_t size = 0; size <= 300; ++size) {
      const std::string piece = data.substr(offset, size);
      ASSERT_EQ(Crc(piece), BitwiseCrc32c(piece))
          << "offset " << offset << ", size " << size;
    }
  }
  EXPECT_EQ(Crc(data), BitwiseCrc32c(data));
}

TEST(RocksDbCrc32cTest, ExtendingPieceByPieceEqualsOneCall) {
  std::mt19937 random(11);
  std::string data(100000, '\0');
  for (char& c : data) c = static_cast<char>(random());
  const uint32_t whole = Crc(data);
  for (int round = 0; round < 20; ++round) {
    uint32_t crc = 0;
    size_t at = 0;
    while (at < data.size()) {
      const size_t n = std::min<size_t>(random() % 5000, data.size() - at);
      crc = rocksdb::crc32c::Extend(crc, data.data() + at, n);
      at += n;
    }
    EXPECT_EQ(crc, whole) << "round " << round;
  }
}

// RocksDB's own file checksum (the one its backups use) is CRC32C computed
// inside librocksdb: its calls give the standard's values too.
TEST(RocksDbCrc32cTest, RocksDbsOwnChecksumsGiveTheSameValues) {
  std::mt19937 random(13);
  std::string data(70000, '\0');
  for (char& c : data) c = static_cast<char>(random());
  const std::unique_ptr<rocksdb::FileChecksumGenerator> generator =
      rocksdb::GetFileChecksumGenCrc32cFactory()->CreateFileChecksumGenerator(
          rocksdb::FileChecksumGenContext());
  generator->Update(data.data(), 1000);
  generator->Update(data.data() + 1000, data.size() - 1000);
  generator->Finalize();
  const uint32_t crc = BitwiseCrc32c(data);
  // (Big-endian, as RocksDB writes it.)
  const std::string expected = {
      static_cast<char>(crc >> 24), static_cast<char>(crc >> 16),
      static_cast<char>(crc >> 8), static_cast<char>(crc)};
  EXPECT_EQ(generator->GetChecksum(), expected);
}

TEST(RocksDbCrc32cTest, RocksDbsCallsReachTheDefinitionWhenBuiltWithIsal) {
#ifdef MANIFOLD_HAVE_ISAL
  // The program exports its definition, so the dynamic linker binds
  // librocksdb's calls to it (the stream storage tests then write and read
  // back every store with it).
  EXPECT_TRUE(RocksDbCrc32cAccelerated());
#else
  EXPECT_FALSE(RocksDbCrc32cAccelerated());
#endif
}

}  // namespace
}  // namespace manifold
