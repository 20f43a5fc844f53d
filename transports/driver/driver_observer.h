// File: transports/driver/driver_observer.h
// -----------------------------------------------------------------------------
//
// A tap on everything that crosses the BrokerDriver: links opening and
// closing, the bytes each peer sent and was sent, and the clock at each turn.
// It sees exactly the inputs the deterministic Broker sees, in order, so a
// recorder built on it can write a live session down as a transcript that
// replays byte for byte. Observers only watch; they must not call the driver
// or the Broker.
//
// Example:
//
//   class ByteCounter : public DriverObserver {
//    public:
//     void OnInput(ConnectionId id, absl::string_view bytes,
//                  absl::Time now) override { in += bytes.size(); }
//     size_t in = 0;
//   };
//   ByteCounter counter;
//   DriverOptions options;
//   options.observer = &counter;

#ifndef MANIFOLD_TRANSPORTS_DRIVER_DRIVER_OBSERVER_H_
#define MANIFOLD_TRANSPORTS_DRIVER_DRIVER_OBSERVER_H_

#include <memory>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "broker/connection.h"
#include "broker/session_id_source.h"
#include "core/ids.h"

namespace manifold {

class Broker;

class DriverObserver {
 public:
  virtual ~DriverObserver() = default;

  // The driver is about to create its broker with `source` for its session
  // tokens; the broker uses what this returns. An observer that must see the
  // tokens drawn (a recorder: a replay needs them again) returns a source
  // that forwards to `source`. Called once, before OnAttach().
  virtual std::unique_ptr<SessionIdSource> WrapSessionIds(
      std::unique_ptr<SessionIdSource> source) {
    return source;
  }

  // The driver was created around `broker`, which outlives the observer's
  // use of it. Observers that need to look at connections keep it.
  virtual void OnAttach(Broker& broker) {}

  // A link was handed to Broker::Accept() and became connection `id`.
  virtual void OnOpen(ConnectionId id, const PeerInfo& peer,
                      absl::string_view protocol, absl::Time now) {}
  // `bytes` from the peer were handed to Connection::Receive().
  virtual void OnInput(ConnectionId id, absl::string_view bytes,
                       absl::Time now) {}
  // The first `bytes` bytes of `chunks` left the connection's output buffer
  // for the peer.
  virtual void OnOutput(ConnectionId id,
                        absl::Span<const absl::string_view> chunks,
                        size_t bytes, absl::Time now) {}
  // The link closed; Broker::Close() was called with `reason`.
  virtual void OnClose(ConnectionId id, absl::string_view reason,
                       absl::Time now) {}
  // A turn began at `now`: Broker::Process(now) and Broker::Tick(now) follow.
  virtual void OnTurn(absl::Time now) {}

  // Broker::Shutdown(now) follows.
  virtual void OnShutdown(absl::Time now) {}
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_DRIVER_DRIVER_OBSERVER_H_
