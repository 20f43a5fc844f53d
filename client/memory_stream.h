// File: client/memory_stream.h
// -----------------------------------------------------------------------------
//
// The blocking client over the in-process transport: a Client that talks to a
// MemoryBroker (transports/memory/memory_broker.h) running in the same
// program, through the same frames a socket would carry.
//
// Example:
//
//   MemoryBroker broker;
//   absl::StatusOr<std::unique_ptr<Client>> client = ConnectInMemory(broker);
//   if (!client.ok()) return client.status();
//   (*client)->Publish("jobs/42", "start");

#ifndef MANIFOLD_CLIENT_MEMORY_STREAM_H_
#define MANIFOLD_CLIENT_MEMORY_STREAM_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/byte_stream.h"
#include "client/client.h"
#include "transports/memory/memory_broker.h"

namespace manifold {

// Returns `link` as a ByteStream whose peer() is "memory:<peer_name>".
// REQUIRES: link != nullptr.
std::unique_ptr<ByteStream> MakeMemoryStream(std::unique_ptr<MemoryLink> link,
                                             std::string peer_name);

// Connects a Client to `broker`. The connection is named after
// options.name ("client" when empty). `broker` must outlive the handshake;
// once it is destroyed the client sees the broker's Goodbye.
absl::StatusOr<std::unique_ptr<Client>> ConnectInMemory(
    MemoryBroker& broker, ClientOptions options = ClientOptions());

}  // namespace manifold

#endif  // MANIFOLD_CLIENT_MEMORY_STREAM_H_
