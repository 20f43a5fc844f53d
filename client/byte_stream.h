// File: client/byte_stream.h
// -----------------------------------------------------------------------------
//
// The one thing the blocking client needs from a link to the broker: a
// reliable, ordered stream of bytes in each direction. TCP and Unix-domain
// sockets (client/socket_stream.h) and the in-process memory transport
// (client/memory_stream.h) implement it; so can anything else (a TLS
// wrapper, a serial line) and be handed to Client::Connect().
//
// Example (a stream that wraps some other transport):
//
//   class PipeStream : public ByteStream {
//    public:
//     absl::Status Write(absl::string_view bytes) override { ... }
//     absl::StatusOr<std::string> Read(absl::Time deadline) override { ... }
//     void Close() override { ... }
//     std::string peer() const override { return "pipe:3"; }
//   };
//   auto client = Client::Connect(std::make_unique<PipeStream>(...));
//
// Threading contract: one thread reads while another writes, and Close() may
// come from any thread at any time. The client never calls Read (or Write)
// from two threads at once.

#ifndef MANIFOLD_CLIENT_BYTE_STREAM_H_
#define MANIFOLD_CLIENT_BYTE_STREAM_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace manifold {

class ByteStream {
 public:
  virtual ~ByteStream() = default;

  // Writes all of `bytes`, blocking while the peer does not keep up. Returns
  // UNAVAILABLE (with the reason) once the stream is closed or broken.
  virtual absl::Status Write(absl::string_view bytes) = 0;

  // Waits until some bytes arrive or `deadline` passes. Returns the bytes, ""
  // at the deadline, or UNAVAILABLE once the peer closed the stream, it broke,
  // or Close() was called.
  virtual absl::StatusOr<std::string> Read(absl::Time deadline) = 0;

  // Closes both directions and wakes a blocked Read or Write. Idempotent.
  virtual void Close() = 0;

  // The peer, for messages: "127.0.0.1:24387", "unix:/run/manifold.sock".
  virtual std::string peer() const = 0;
};

}  // namespace manifold

#endif  // MANIFOLD_CLIENT_BYTE_STREAM_H_
