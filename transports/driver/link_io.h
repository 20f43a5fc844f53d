// File: transports/driver/link_io.h
// -----------------------------------------------------------------------------
//
// The seam between the BrokerDriver (transports/driver/broker_driver.h) and an
// event-loop adapter. The driver holds all the logic that talks to the Broker;
// an adapter holds only what is specific to its loop, and implements this
// interface: "write these bytes to link L", "stop or resume reading link L",
// "close link L". A link is one peer's byte stream (a TCP or Unix socket, an
// in-memory pipe), named by the ConnectionId the driver returned when the
// adapter opened it.
//
// Two write styles fit the two kinds of event loop:
//
//   kImmediate  readiness-based loops (epoll, poll, kqueue, libuv's uv_poll or
//               uv_try_write): WriteSome() writes what the link takes now,
//               without blocking, and returns how much that was. When the link
//               takes nothing, the adapter later calls
//               BrokerDriver::OnWritable(). The bytes come straight from the
//               connection's output buffer (no copy; fan-out stays shared).
//   kSubmitted  completion-based loops (io_uring, libuv's uv_write):
//               StartWrite() submits one write of a buffer the driver owns and
//               keeps unchanged until the adapter reports
//               BrokerDriver::OnWriteDone(). At most one write per link is in
//               flight.
//
// Example (the essence of an epoll adapter):
//
//   class EpollLinks : public LinkIo {
//     absl::StatusOr<size_t> WriteSome(ConnectionId id,
//                                      absl::Span<const absl::string_view> c)
//         override {
//       return WriteToSocket(fd_of(id), c);  // sendmsg; EAGAIN -> 0
//     }
//     void SetReading(ConnectionId id, bool reading) override { ... }
//     void Close(ConnectionId id) override { close(fd_of(id)); forget(id); }
//   };

#ifndef MANIFOLD_TRANSPORTS_DRIVER_LINK_IO_H_
#define MANIFOLD_TRANSPORTS_DRIVER_LINK_IO_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/ids.h"

namespace manifold {

// How a LinkIo writes; see the file comment.
enum class WriteStyle {
  kImmediate,
  kSubmitted,
};

class LinkIo {
 public:
  virtual ~LinkIo() = default;

  // Which of WriteSome() and StartWrite() the driver calls. Fixed for the
  // life of the LinkIo.
  virtual WriteStyle write_style() const { return WriteStyle::kImmediate; }

  // kImmediate only. Writes a prefix of the concatenation of `chunks` to link
  // `id` without blocking. Returns the number of bytes written; 0 when the
  // link can take nothing now (the adapter must then call
  // BrokerDriver::OnWritable(id) once it can); or an error when the link is
  // broken (the peer reset it), after which the driver closes it. The views
  // are valid only during the call.
  virtual absl::StatusOr<size_t> WriteSome(
      ConnectionId id, absl::Span<const absl::string_view> chunks) {
    return absl::UnimplementedError("this link does not write immediately");
  }

  // kSubmitted only. Starts writing `bytes` to link `id`. The driver keeps
  // `bytes` valid and unchanged until the adapter calls
  // BrokerDriver::OnWriteDone(id, ...) with the number of bytes written (which
  // may be fewer than asked) or an error, even when Close(id) comes first:
  // a write in flight at Close() keeps its bytes until its completion is
  // reported. REQUIRES: no other write on `id` is in flight; !bytes.empty().
  virtual void StartWrite(ConnectionId id, absl::string_view bytes) {}

  // Stops (false) or resumes (true) reading link `id`. Links start out
  // reading. After SetReading(id, false) the adapter must not call
  // BrokerDriver::OnReceived(id, ...) again until SetReading(id, true). May be
  // called from inside BrokerDriver::OnReceived().
  virtual void SetReading(ConnectionId id, bool reading) = 0;

  // Closes link `id` and releases everything the adapter holds for it (the
  // descriptor, operations in flight). The driver has forgotten `id`; calls
  // the adapter makes for it afterwards are ignored, except that a
  // kSubmitted write still in flight must be reported with OnWriteDone()
  // once it completes or is cancelled, which releases its bytes. The adapter
  // may let that write finish (bounded in time) before closing the
  // descriptor, so a peer that half-closed still gets its last answers. Called
  // only from BrokerDriver::RunTurn() and BrokerDriver::CloseAll(), never from
  // inside another BrokerDriver call the adapter made, so the adapter may free
  // the link's state here.
  virtual void Close(ConnectionId id) = 0;
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_DRIVER_LINK_IO_H_
