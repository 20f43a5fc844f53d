// File: bench/soak/soak_connection.h
// -----------------------------------------------------------------------------
//
// One native-protocol connection of the soak driver: a non-blocking socket
// with an output queue and a frame decoder, driven from the driver's single
// epoll loop. It connects without blocking (so a thousand of them can come
// and go at once), sends what is queued when the socket takes it, and decodes
// what arrives. It also knows the ways a client can leave: close, reset,
// half-close, or hang up in the middle of a frame.
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<SoakConnection>> c =
//       SoakConnection::Start(address);
//   epoll_ctl(epoll, EPOLL_CTL_ADD, (*c)->fd(), ...EPOLLOUT...);
//   // writable while connecting:
//   if (!(*c)->FinishConnect().ok()) ...;
//   (*c)->Queue(hello);
//   (*c)->Flush();
//   // readable:
//   std::vector<wire::ServerMessage> got;
//   absl::StatusOr<bool> open = (*c)->Read(got);   // false: the broker closed

#ifndef MANIFOLD_BENCH_SOAK_SOAK_CONNECTION_H_
#define MANIFOLD_BENCH_SOAK_SOAK_CONNECTION_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/framing.h"
#include "core/manifold.pb.h"
#include "transports/sockets/endpoint.h"
#include "transports/sockets/unique_fd.h"

namespace manifold::soak {

class SoakConnection {
 public:
  // Most output a connection queues before Queue() reports the broker as not
  // reading; the driver never needs more than a few frames in flight.
  static constexpr size_t kMaxQueuedBytes = 4 << 20;

  // Opens a non-blocking socket and starts connecting to `address`. Fails
  // when no socket can be had (e.g. the descriptor limit).
  static absl::StatusOr<std::unique_ptr<SoakConnection>> Start(
      const SocketAddress& address);

  SoakConnection(const SoakConnection&) = delete;
  SoakConnection& operator=(const SoakConnection&) = delete;

  int fd() const { return fd_.get(); }
  bool connected() const { return connected_; }

  // Call when the socket turns writable while connecting: OK once connected,
  // or why the connect failed.
  absl::Status FinishConnect();

  // Appends one frame / raw bytes to the output. RESOURCE_EXHAUSTED when
  // more than kMaxQueuedBytes would be waiting.
  absl::Status Queue(const wire::ClientMessage& message);
  absl::Status QueueRaw(absl::string_view bytes);
  bool has_output() const { return !output_.empty(); }

  // Writes as much queued output as the socket takes now. An error means the
  // connection is gone.
  absl::Status Flush();

  // Reads everything available and appends the decoded messages to `out`.
  // Returns true while the connection is open, false once the broker closed
  // it (after every message before the close), or a decoding error.
  absl::StatusOr<bool> Read(std::vector<wire::ServerMessage>& out);

  // Ways to leave. Each but ShutdownWrite() closes the socket.
  void Close() { fd_.reset(); }
  void Reset();          // SO_LINGER 0: the broker sees a reset
  void ShutdownWrite();  // the broker sees end of stream; reading goes on

 private:
  explicit SoakConnection(UniqueFd fd);

  UniqueFd fd_;
  bool connected_ = false;
  std::string output_;
  size_t output_sent_ = 0;  // prefix of output_ already written
  FrameDecoder decoder_;
};

}  // namespace manifold::soak

#endif  // MANIFOLD_BENCH_SOAK_SOAK_CONNECTION_H_
