// File: transports/storage/rocksdb_crc32c.h
// -----------------------------------------------------------------------------
//
// RocksDB's checksums, computed with ISA-L (Debian's libisal-dev) when it was
// found at build time.
//
// RocksDB checksums every record of its write-ahead log and every block of
// its tables with CRC32C. Debian builds librocksdb for baseline x86-64, where
// it computes CRC32C with lookup tables, about 1.3 GB/s: a third of the
// storage thread's time when storing messages of 1 KiB. RocksDB calls its
// `rocksdb::crc32c::Extend` through the dynamic symbol table, so a definition
// in the program takes the library's place (ELF symbol interposition, as a
// program's own malloc does). rocksdb_crc32c.cc gives that definition,
// computed by ISA-L's `crc32_iscsi`, which picks the CPU's CRC32 and
// carry-less multiply instructions at run time (about 50 GB/s here).
//
// It is the same function: the same input gives the same checksum, so a
// store written by either reads back with the other, and RocksDB's own tools
// read it. Where the definition does not take effect (built without ISA-L,
// or RocksDB linked statically), RocksDB computes its checksums itself.
//
// Example:
//
//   if (!RocksDbCrc32cAccelerated()) {
//     std::fprintf(stderr, "RocksDB computes its checksums in software\n");
//   }

#ifndef MANIFOLD_TRANSPORTS_STORAGE_ROCKSDB_CRC32C_H_
#define MANIFOLD_TRANSPORTS_STORAGE_ROCKSDB_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace rocksdb::crc32c {

// RocksDB's own declaration (util/crc32c.h, not installed): the CRC32C of
// `data[0, n)` continued from `init_crc`, the CRC32C of what came before
// (0 for nothing). Defined in rocksdb_crc32c.cc when built with ISA-L.
uint32_t Extend(uint32_t init_crc, const char* data, size_t n);

}  // namespace rocksdb::crc32c

namespace manifold {

// Returns true when RocksDB's calls in this process reach the ISA-L
// definition of rocksdb::crc32c::Extend; false when RocksDB computes its
// checksums itself. Linking anything that calls this also links the
// definition in.
bool RocksDbCrc32cAccelerated();

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_STORAGE_ROCKSDB_CRC32C_H_
