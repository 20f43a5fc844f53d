// File: client/load/link.h
// -----------------------------------------------------------------------------
//
// One client connection of the load tool: a non-blocking socket to the server
// with an input buffer that events are decoded from in place and an output
// string that commands are appended to. Setup (handshake, subscriptions) uses
// Sync(), which waits for the server's answer to a ping so the caller knows
// everything sent before it has been handled; the measured phase uses Fill(),
// Next() and Flush() from an event loop (client/load/load_loop.h).
//
// A link can run over TLS (client/load/tls_link.h): the native protocol
// starts it at once; a NATS link reads the server's INFO in clear first and
// starts it when the INFO says tls_required, as NATS clients do. A NATS link
// without TLS to a server that requires it fails at once, saying so.
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<Link>> link =
//       Link::Open(endpoint, *wire, "bench-sub-0", absl::Seconds(5));
//   (*link)->wire().AppendConnect("bench-sub-0", (*link)->output());
//   (*link)->wire().AppendSubscribe("bench.data", "", 1, (*link)->output());
//   absl::Status ready = (*link)->Sync(absl::Now() + absl::Seconds(5),
//   nullptr);

#ifndef MANIFOLD_CLIENT_LOAD_LINK_H_
#define MANIFOLD_CLIENT_LOAD_LINK_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/load/load_wire.h"
#include "client/load/websocket_client.h"
#include "transports/sockets/endpoint.h"
#include "transports/sockets/unique_fd.h"

namespace manifold {
class TlsClientContext;
}  // namespace manifold

namespace manifold::load {

class TlsLink;

class Link {
 public:
  // Connects to `endpoint` (within `timeout`) and makes the socket
  // non-blocking. `wire` is not owned and must outlive the link. `name`
  // appears in errors.
  // With a `websocket_path`, the link first opens a WebSocket there (with
  // subprotocol `websocket_protocol` unless empty) and carries the
  // protocol inside it (websocket_client.h).
  // With `tls` (from LoadTlsContext(); shared by the links of a run), the
  // link speaks TLS on that context; not together with a WebSocket. A NATS
  // link reads the server's INFO first (within `timeout`) and returns
  // FAILED_PRECONDITION when the INFO and `tls` disagree (the server requires
  // TLS and `tls` is null, or the other way round). Handshake failures are
  // TlsLink::Handshake's.
  static absl::StatusOr<std::unique_ptr<Link>> Open(
      const Endpoint& endpoint, const LoadWire& wire, std::string name,
      absl::Duration timeout, absl::string_view websocket_path = "",
      absl::string_view websocket_protocol = "",
      std::shared_ptr<const TlsClientContext> tls = nullptr);
  ~Link();

  int fd() const { return fd_.get(); }
  const LoadWire& wire() const { return wire_; }
  const std::string& name() const { return name_; }

  // --- Output ------------------------------------------------------------

  // Bytes to send: append here, then Flush().
  std::string& output() { return output_; }
  size_t pending_output() const {
    return output_.size() - sent_ + framed_.size() - framed_sent_ +
           PendingCiphertext();
  }
  // Writes as much pending output as the socket takes now. Returns an error
  // (naming the link) if the connection is broken.
  absl::Status Flush();

  // --- Input -------------------------------------------------------------

  // Reads once what the socket holds, as much as the input buffer has room
  // for (it grows only when one message does not fit). Returns the bytes
  // read (0: nothing waiting), or UNAVAILABLE when the server closed the
  // connection, or another error.
  absl::StatusOr<size_t> Fill();
  // True when the last Fill() took everything the socket held (a short
  // read, or none): reading again now would find nothing.
  bool drained() const { return drained_; }
  // Decodes the next whole server message from the input. Returns false when
  // none is complete. The event's views are valid until the next Fill().
  absl::StatusOr<bool> Next(ServerEvent& event);

  // --- Setup -------------------------------------------------------------

  // Sends the pending output and a ping, then reads until the ping's answer,
  // passing every other event to `on_event` (may be empty) and answering
  // the server's pings. An error from `on_event`, a fatal server error or
  // `deadline` ends the wait with an error naming the link.
  absl::Status Sync(
      absl::Time deadline,
      const std::function<absl::Status(const ServerEvent&)>& on_event);

 private:
  Link(UniqueFd fd, const LoadWire& wire, std::string name);
  absl::Status Wait(short events, absl::Time deadline);
  // Appends bytes as read from the socket to the input buffer.
  void AppendInput(absl::string_view bytes);
  absl::Status SendFramed();
  absl::Status FlushTls();
  absl::StatusOr<size_t> FillTls(size_t room);
  size_t PendingCiphertext() const;

  UniqueFd fd_;
  const LoadWire& wire_;
  const std::string name_;
  std::string output_;
  size_t sent_ = 0;
  // Input: bytes [start_, end_) of buffer_ are unread, as read from the
  // socket. Of those, [start_, ready_) are the protocol's stream, ready to
  // parse; on a WebSocket link [ready_, end_) still has its framing, which
  // Next() takes out in place (WebSocketClient::Deframe) when it needs more
  // of the stream. Without a WebSocket ready_ == end_.
  std::unique_ptr<char[]> buffer_;
  size_t capacity_ = 0;
  size_t start_ = 0;
  size_t ready_ = 0;
  size_t end_ = 0;
  bool drained_ = false;
  uint64_t sync_ids_ = 0;
  // WebSocket links: the framing, and frames not yet sent.
  std::unique_ptr<WebSocketClient> ws_;
  std::string framed_;
  size_t framed_sent_ = 0;
  // TLS links: the session, and plaintext decrypted by the last Fill()
  // (copied into buffer_ at once).
  std::unique_ptr<TlsLink> tls_;
  std::string plain_;
  // Whether the server ever sent a byte, to name a TLS port that closed a
  // plain connection.
  bool heard_ = false;
};

}  // namespace manifold::load

#endif  // MANIFOLD_CLIENT_LOAD_LINK_H_
