// File: transports/sockets/outbound_connection.h
// -----------------------------------------------------------------------------
//
// A TCP or Unix-domain connection this process opens to another server, run
// by a SocketServer's loop next to the Broker's clients: for a component
// that is not a Broker client (the cluster link to Redis,
// transports/cluster/redis_cluster_link.h). It connects without blocking,
// hands the handler what it reads (at most 256 KiB per loop iteration, in
// 64 KiB pieces), and writes what the handler has pending when asked to
// (Flush) and when the socket takes more. The handler owns its output
// buffer and bounds it; the connection keeps no copy.
//
// Example:
//
//   class Echo : public OutboundHandler { ... };  // OnConnected, OnBytes, ...
//   Echo handler;
//   absl::StatusOr<SocketAddress> address = Resolve(endpoint);  // before Run
//   absl::StatusOr<std::unique_ptr<OutboundConnection>> c =
//       OutboundConnection::Connect(server, *address, handler);
//   // on the loop's thread, after the handler queued output:
//   (*c)->Flush();
//   // OnClosed(why) says it is over (refused, reset, closed by the peer);
//   // destroy the object later, outside the handler's calls.
//
// Thread safety: none; use it on the loop's thread (or before Run()).

#ifndef MANIFOLD_TRANSPORTS_SOCKETS_OUTBOUND_CONNECTION_H_
#define MANIFOLD_TRANSPORTS_SOCKETS_OUTBOUND_CONNECTION_H_

#include <cstddef>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "transports/sockets/endpoint.h"
#include "transports/sockets/socket_server.h"
#include "transports/sockets/unique_fd.h"

namespace manifold {

// What an OutboundConnection tells its owner. The calls come from the loop
// (or from Flush()); none may destroy the connection.
class OutboundHandler {
 public:
  virtual ~OutboundHandler() = default;
  // The connection is established; output may flow.
  virtual void OnConnected() = 0;
  // `bytes` arrived. An error closes the connection (OnClosed with it).
  virtual absl::Status OnBytes(absl::string_view bytes) = 0;
  // The connection is over: the connect failed, the peer closed or reset it,
  // an I/O error, or OnBytes() refused input. Called once; not after
  // Close().
  virtual void OnClosed(absl::Status why) = 0;
  // What to write next (empty: nothing); valid until Consume() or the next
  // call into the handler.
  virtual absl::string_view PendingOutput() = 0;
  // The first `n` bytes of PendingOutput() were written.
  virtual void Consume(size_t n) = 0;
};

class OutboundConnection : private DescriptorWatcher {
 public:
  // Starts connecting to `address` without blocking (a name is resolved
  // before, with Resolve(), while the loop is not running). Returns an error
  // only when no socket can be made or the loop refuses it; a refused or
  // unreachable server is reported later through OnClosed. `server` and
  // `handler` must outlive the connection.
  static absl::StatusOr<std::unique_ptr<OutboundConnection>> Connect(
      SocketServer& server, const SocketAddress& address,
      OutboundHandler& handler);

  OutboundConnection(const OutboundConnection&) = delete;
  OutboundConnection& operator=(const OutboundConnection&) = delete;
  // Closes the socket if it is still open, without calling OnClosed.
  ~OutboundConnection() override;

  // Writes what the handler has pending, as much as the socket takes now;
  // the rest goes when it can take more. Nothing before the connection is
  // established or after it closed. May call OnClosed (a write error).
  void Flush();

  // Closes the connection now, without calling OnClosed.
  void Close();

  bool connected() const { return state_ == State::kConnected; }
  bool closed() const { return state_ == State::kClosed; }

 private:
  enum class State { kConnecting, kConnected, kClosed };

  OutboundConnection(SocketServer& server, OutboundHandler& handler,
                     UniqueFd fd)
      : server_(server), handler_(handler), fd_(std::move(fd)) {}

  void OnReady(bool readable, bool writable) override;
  void FinishConnect();
  void ReadAvailable();
  // Closes and tells the handler `why`.
  void Fail(absl::Status why);
  void UpdateInterest();

  SocketServer& server_;
  OutboundHandler& handler_;
  UniqueFd fd_;
  std::optional<WatchId> watch_;
  State state_ = State::kConnecting;
  // The last write took less than offered: wait until the socket is
  // writable.
  bool blocked_ = false;
  int connect_error_ = 0;  // connect() failed at once with this errno
  std::unique_ptr<char[]> read_buffer_;
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_SOCKETS_OUTBOUND_CONNECTION_H_
