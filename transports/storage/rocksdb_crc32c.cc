// File: transports/storage/rocksdb_crc32c.cc
// -----------------------------------------------------------------------------

#include "transports/storage/rocksdb_crc32c.h"

#ifdef MANIFOLD_HAVE_ISAL

#include <dlfcn.h>
#include <isa-l/crc.h>

#include <algorithm>
#include <climits>

namespace rocksdb::crc32c {

uint32_t Extend(uint32_t init_crc, const char* data, size_t n) {
  // RocksDB's CRC32C inverts the register before and after, as the standard
  // defines it; ISA-L's iSCSI CRC leaves that to its caller.
  uint32_t crc = ~init_crc;
  // (crc32_iscsi takes an int length.)
  while (n > 0) {
    const int piece = static_cast<int>(std::min<size_t>(n, INT_MAX));
    crc = crc32_iscsi(reinterpret_cast<unsigned char*>(const_cast<char*>(data)),
                      piece, crc);
    data += piece;
    n -= piece;
  }
  return ~crc;
}

}  // namespace rocksdb::crc32c

namespace manifold {

bool RocksDbCrc32cAccelerated() {
  // What the dynamic linker binds RocksDB's calls to: the first definition
  // in the process's lookup order, this one when the program exports it.
  void* const bound = dlsym(RTLD_DEFAULT, "_ZN7rocksdb6crc32c6ExtendEjPKcm");
  return bound == reinterpret_cast<void*>(&rocksdb::crc32c::Extend);
}

}  // namespace manifold

#else  // RocksDB computes its checksums itself.

namespace manifold {

bool RocksDbCrc32cAccelerated() { return false; }

}  // namespace manifold

#endif  // MANIFOLD_HAVE_ISAL
