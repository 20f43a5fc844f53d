// File: transports/memory/internal/memory_loop.h
// -----------------------------------------------------------------------------
//
// The broker's thread of a MemoryBroker (transports/memory/memory_broker.h):
// a BrokerDriver whose links are MemoryPipes, woken by a Doorbell instead of
// a socket poller. Not part of the public API.

#ifndef MANIFOLD_TRANSPORTS_MEMORY_INTERNAL_MEMORY_LOOP_H_
#define MANIFOLD_TRANSPORTS_MEMORY_INTERNAL_MEMORY_LOOP_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "broker/options.h"
#include "core/ids.h"
#include "transports/driver/broker_driver.h"
#include "transports/driver/link_io.h"
#include "transports/memory/internal/memory_pipe.h"

namespace manifold::memory_internal {

class MemoryLoop : private LinkIo {
 public:
  MemoryLoop(BrokerOptions options, std::shared_ptr<Doorbell> doorbell);

  // Serves pipes until the doorbell asks to stop and the graceful shutdown
  // is over, then closes every pipe left. Call once, on the broker's thread.
  void Run();

 private:
  struct Link {
    std::shared_ptr<MemoryPipe> pipe;
    bool reading = true;
    bool waiting_for_room = false;
    bool ended = false;  // OnPeerClosed() was reported
  };

  // LinkIo
  absl::StatusOr<size_t> WriteSome(
      ConnectionId id, absl::Span<const absl::string_view> chunks) override;
  void SetReading(ConnectionId id, bool reading) override;
  void Close(ConnectionId id) override;

  ConnectionId Adopt(std::shared_ptr<MemoryPipe> pipe);
  void Inspect(ConnectionId id);

  const absl::Duration shutdown_timeout_;
  const std::shared_ptr<Doorbell> doorbell_;
  BrokerDriver driver_;
  absl::flat_hash_map<ConnectionId, Link> links_;
  // Links to look at again before waiting (reading resumed).
  std::vector<ConnectionId> recheck_;
  std::string read_buffer_;
};

}  // namespace manifold::memory_internal

#endif  // MANIFOLD_TRANSPORTS_MEMORY_INTERNAL_MEMORY_LOOP_H_
