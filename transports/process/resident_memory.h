// File: transports/process/resident_memory.h
// -----------------------------------------------------------------------------
//
// How much memory a process holds right now: its resident set size, read from
// the VmRSS line of /proc/<pid>/status (Linux). The soak driver samples the
// broker with it, and the end-to-end tests use it to check that an attack
// does not make the broker's memory grow.
//
// Example:
//
//   absl::StatusOr<int64_t> kib = ReadResidentKib(broker_pid);
//   if (kib.ok()) std::cout << *kib << " KiB resident\n";

#ifndef MANIFOLD_TRANSPORTS_PROCESS_RESIDENT_MEMORY_H_
#define MANIFOLD_TRANSPORTS_PROCESS_RESIDENT_MEMORY_H_

#include <sys/types.h>

#include <cstdint>

#include "absl/status/statusor.h"

namespace manifold {

// Returns the resident set size of process `pid` in KiB. NOT_FOUND once the
// process is gone (or was never there); INTERNAL if its status file has no
// readable VmRSS line (a kernel thread, or not Linux).
absl::StatusOr<int64_t> ReadResidentKib(pid_t pid);

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_PROCESS_RESIDENT_MEMORY_H_
