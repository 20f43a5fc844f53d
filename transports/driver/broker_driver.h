// File: transports/driver/broker_driver.h
// -----------------------------------------------------------------------------
//
// The glue between a Broker and any event loop. Every transport adapter
// (epoll, io_uring, libuv, in-memory) does the same things with the Broker:
// hand it the bytes it read, let it process them, fire its timers, write what
// it queued (partial writes, would-block), stop and resume reading when it
// says so, close links it is done with, close links whose peer hung up or
// failed, and sleep until its next deadline. BrokerDriver does all of that
// once, so an adapter holds only what is specific to its loop.
//
// The seam runs both ways:
//
//   adapter -> driver   Open(), OnReceived(), OnPeerClosed(), OnError(),
//                       OnWritable() / OnWriteDone(), then RunTurn() once per
//                       loop iteration, which returns when to call it next.
//   driver -> adapter   the LinkIo interface (transports/driver/link_io.h):
//                       write these bytes, stop/resume reading, close.
//
// The driver reads the clock (DriverOptions::clock: a monotonic clock by
// default, so a step of the wall clock moves no deadline); the Broker never
// does. It also drains Broker::PollEvent(), logs each event, and hands it to
// DriverOptions::on_event.
//
// Example (an adapter's loop):
//
//   BrokerDriver driver(broker_options);
//   std::optional<absl::Time> wakeup;
//   while (!driver.finished()) {
//     WaitForIo(wakeup);                       // poll/epoll_wait/io_uring
//     // New peer:      ConnectionId id = driver.Open(links, PeerInfo{addr});
//     // Bytes read:    driver.OnReceived(id, bytes);  // <= kMaxReceiveBytes
//     // read() == 0:   driver.OnPeerClosed(id);
//     // ECONNRESET:    driver.OnError(id, status);
//     // Writable:      driver.OnWritable(id);         // kImmediate links
//     // Write done:    driver.OnWriteDone(id, n);     // kSubmitted links
//     wakeup = driver.RunTurn();               // the Broker acts; LinkIo calls
//   }
//
// What happens to a link:
//  - Reading stops (LinkIo::SetReading(id, false)) while the connection's
//    inbound channel is full, and resumes when the Broker has caught up.
//  - Output is written whenever there is some and the link can take it.
//  - The link closes (LinkIo::Close, then Broker::Close) when the connection
//    ShouldClose() and its output is out; when the peer hung up, after its
//    last input is processed and whatever output the link takes at once is
//    written (so a half-closed peer still gets the immediate answers to what
//    it sent); or at once on an I/O error.
//
// Secured links (TLS; transports/driver/link_security.h): a link opened with
// a LinkSecurity has what it reads decrypted before the connection sees it,
// and the connection's output encrypted before LinkIo writes it; the adapter
// sees only ciphertext. A failure of the layer (plain text on a TLS port, a
// refused certificate, a forged record) closes that link alone, after one
// warning naming the peer and the reason, and is counted in
// DriverStatistics. A handshake not done within
// DriverOptions::tls_handshake_timeout closes the link too. Plain links take
// the same path as before (the output is written straight from the
// connection's buffers).
//
// Writing a new adapter (io_uring, libuv, ...):
//  1. Implement LinkIo with the WriteStyle that suits the loop.
//  2. Report I/O with the On*() calls and call RunTurn() after each batch of
//     completions or readiness events, and when the timer it asked for fires.
//  3. Shut down with Shutdown(grace) and keep turning until ShutdownDone()
//     says the loop may stop: every link closed, or the grace period ended
//     and the driver closed the rest.
//  4. For sockets, open listeners with transports/sockets/listen_socket.h
//     (accept from fd() however the loop likes) and implement
//     transports/sockets/socket_server.h, so manifoldd can offer the loop
//     (transports/loops/event_loops.cc). transports/epoll is the model.
//
// Thread safety: none. Call a driver from the thread that runs its loop.

#ifndef MANIFOLD_TRANSPORTS_DRIVER_BROKER_DRIVER_H_
#define MANIFOLD_TRANSPORTS_DRIVER_BROKER_DRIVER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/broker.h"
#include "broker/protocol_codec.h"
#include "core/ids.h"
#include "core/manifold.pb.h"
#include "transports/driver/driver_observer.h"
#include "transports/driver/link_io.h"
#include "transports/driver/link_security.h"
#include "transports/driver/log.h"

namespace manifold {

// The time from std::chrono::steady_clock, as an absl::Time: it never goes
// backwards and never jumps with the wall clock. Only differences between two
// readings mean anything.
absl::Time MonotonicNow();

class BrokerDriver;

// A component that runs in the driver's turns without being a Broker client:
// one that owns connections of its own on the same loop (a cluster link,
// transports/cluster/redis_cluster_link.h). See BrokerDriver::SetTurnHook.
class TurnHook {
 public:
  virtual ~TurnHook() = default;
  // At the start of every turn, after DriverOptions::before_turn and before
  // the Broker processes anything: fire timers that are due. What it hands
  // the Broker is processed in this turn.
  virtual void BeforeTurn(absl::Time now) = 0;
  // At the end of every turn, once the Broker's output is written: write
  // what the turn produced for the component (e.g. messages clients
  // published). Returns when the next turn is needed at the latest, or
  // nullopt; the loop wakes by then.
  virtual std::optional<absl::Time> AfterTurn(absl::Time now) = 0;
};

struct DriverOptions {
  // Reads the current time for the Broker. Must never go backwards. Tests
  // pass a fake clock.
  std::function<absl::Time()> clock = MonotonicNow;
  // The wall clock, which stored messages of durable streams are stamped
  // with (Broker::SetWallTime, once per turn). Tests pass a fake one.
  std::function<absl::Time()> wall_clock = absl::Now;
  // Connection events (info), refusals (warning), I/O errors (debug).
  Logger logger;
  // Called with each broker event, after it is logged, from inside RunTurn().
  // May call the driver's Admit() and Refuse().
  std::function<void(const wire::BrokerEvent&)> on_event;
  // Called at the start of every RunTurn(), on the loop's thread, with the
  // driver: where a program acts on what a signal asked for (see
  // SocketServer::Wake). May call Admit(), Refuse() and Regrant().
  std::function<void(BrokerDriver&)> before_turn;
  // Sees every link and every byte; see driver_observer.h. Not owned; must
  // outlive the driver.
  DriverObserver* observer = nullptr;
  // kSubmitted links: the most output copied into one link's write buffer at
  // a time.
  size_t max_submitted_bytes = 256 * 1024;
  // Secured links: how long the peer has to finish the TLS handshake from
  // the moment the link is opened.
  absl::Duration tls_handshake_timeout = absl::Seconds(10);
};

// Counters for tests and diagnostics.
struct DriverStatistics {
  uint64_t links_opened = 0;
  uint64_t links_closed = 0;
  uint64_t bytes_received = 0;
  uint64_t bytes_written = 0;
  // LinkIo::WriteSome() / StartWrite() calls.
  uint64_t writes = 0;
  // Writes that took some but not all of what was offered.
  uint64_t partial_writes = 0;
  // WriteSome() calls that took nothing (EAGAIN).
  uint64_t writes_blocked = 0;
  // Times reading a link was paused because its connection was full.
  uint64_t reads_paused = 0;
  // Links closed because the peer hung up, or because of an I/O error.
  uint64_t peer_closes = 0;
  uint64_t link_errors = 0;
  // Secured links, by outcome. Each failure also counts in link_errors.
  uint64_t tls_handshakes = 0;          // completed
  uint64_t tls_plain_text = 0;          // plain text on a TLS port
  uint64_t tls_handshake_failures = 0;  // certificates, versions, ...
  uint64_t tls_handshake_timeouts = 0;  // not done in time
  uint64_t tls_protocol_errors = 0;     // after the handshake
};

class BrokerDriver {
 public:
  // The most bytes one OnReceived() call may carry (Connection::Receive's
  // limit, broker/connection.h).
  static constexpr size_t kMaxReceiveBytes = manifold::kMaxReceiveBytes;

  // The scheduling rule every loop follows (epoll, io_uring, uv): in one
  // iteration a link hands the driver at most this much input; then
  // RunTurn() processes it and writes every link that has output, and only
  // then is that link read again. Writing always gets its turn between
  // reads, so subscribers drain while publishers are read, and one busy link
  // cannot take a whole iteration. (Input the kernel already handed over past
  // the budget is held, in order, for the next iteration.)
  static constexpr size_t kReadBudgetBytes = 256 * 1024;

  explicit BrokerDriver(BrokerOptions broker_options = BrokerOptions(),
                        DriverOptions options = DriverOptions());
  BrokerDriver(const BrokerDriver&) = delete;
  BrokerDriver& operator=(const BrokerDriver&) = delete;
  ~BrokerDriver();

  // The Broker, to read: options, statistics, connection_count(). Driving it
  // (Process, Tick, TakeChanged, PollEvent, Close) is the driver's alone, so
  // only a const reference is handed out; admission goes through the
  // driver's Admit() and Refuse().
  const Broker& broker() const { return broker_; }

  // Completes the handshake of a connection waiting for admission (see
  // Broker::Admit), at the driver's time. Its Welcome is written by the next
  // RunTurn(). Returns NOT_FOUND if `id` is not waiting for admission.
  absl::Status Admit(ConnectionId id);
  // As above, as a user with permissions (see Broker::Admit(id, grant, now)).
  absl::Status Admit(ConnectionId id, Grant grant);

  // Recreates the durable streams `storage` held (what its Load() returned),
  // makes it the storage of file streams (Broker::OpenStreams), then creates
  // or changes the streams `declared` (a configuration file's), in order.
  // Call before the loop runs. `storage` is not owned and must outlive the
  // driver; it may be null (memory streams only). Returns the first error,
  // naming the stream.
  absl::Status OpenStreams(StreamStorage* storage,
                           std::vector<RecoveredStream> held,
                           const std::vector<wire::StreamConfig>& declared);

  // Rejects a connection waiting for admission (see Broker::Refuse), after
  // `delay` when it is positive. Returns NOT_FOUND if `id` is not waiting
  // for admission.
  absl::Status Refuse(ConnectionId id, absl::string_view reason,
                      absl::Duration delay = absl::ZeroDuration());

  // Gives admitted connections new permissions (see Broker::Regrant), at
  // the driver's time.
  void Regrant(absl::FunctionRef<
               std::shared_ptr<const PermissionSet>(absl::string_view user)>
                   permissions_of);

  // Reads DriverOptions::clock.
  absl::Time Now() const { return options_.clock(); }

  // The Broker, for attaching a component that joins it to other brokers
  // (Broker::AttachCluster, done by ClusterRouter's constructor). Driving it
  // stays the driver's: call nothing else on it.
  Broker& broker_for_attachment() { return broker_; }

  // Runs `hook` in every turn (see TurnHook); nullptr removes it. Not owned;
  // it must stay alive while set. One hook at a time.
  void SetTurnHook(TurnHook* hook) { turn_hook_ = hook; }

  // --- The adapter reports what happened -----------------------------------

  // A new link whose I/O `io` performs. Accepts it into the Broker (with
  // `codec`, or the native protocol when null) and returns its id, which
  // names the link in every later call. When the Broker is full or shutting
  // down the connection starts out closing with an error frame queued; it is
  // written and the link closed like any other. `io` is not owned and must
  // outlive the link. With `security` (TLS) the link carries ciphertext: see
  // the file comment.
  ConnectionId Open(LinkIo& io, PeerInfo peer,
                    std::unique_ptr<ProtocolCodec> codec = nullptr,
                    std::unique_ptr<LinkSecurity> security = nullptr);

  // `bytes` arrived on link `id`. May call io.SetReading(id, false) before it
  // returns; the adapter must stop delivering then. Unknown ids are ignored.
  // REQUIRES: bytes.size() <= kMaxReceiveBytes.
  void OnReceived(ConnectionId id, absl::string_view bytes);

  // The peer will send nothing more (read returned 0). The link closes in
  // the next RunTurn(), after its input is processed and what output fits is
  // written.
  void OnPeerClosed(ConnectionId id);

  // The link failed (reset by the peer, an I/O error). It closes in the next
  // RunTurn(); `error` becomes the Broker::Close() reason.
  void OnError(ConnectionId id, absl::Status error);

  // kImmediate links: link `id` can take more bytes after WriteSome()
  // returned 0. Cheap when nothing is waiting.
  void OnWritable(ConnectionId id);

  // kSubmitted links: the write StartWrite() submitted on link `id` wrote
  // `written` bytes (perhaps fewer than submitted) or failed.
  void OnWriteDone(ConnectionId id, absl::StatusOr<size_t> written);

  // --- The driver acts ------------------------------------------------------

  // Lets the Broker process what arrived and fire its due timers, writes its
  // output, applies read pauses, closes links that are done, and drains its
  // events. Returns when to call RunTurn() again if no I/O happens first
  // (arm a timer for it), or nullopt when nothing is scheduled.
  std::optional<absl::Time> RunTurn();

  // Starts a graceful shutdown: every client is told Goodbye and each link
  // closes once its last output is written. Keep running turns until
  // ShutdownDone() (or finished(), with no grace period to enforce). Links
  // still open `grace` from now are closed by ShutdownDone(). Calling it
  // again does nothing.
  void Shutdown(absl::Duration grace = absl::InfiniteDuration());

  // For the loop of a driver that is shutting down: true when the loop may
  // stop, either because every connection has closed or because the grace
  // period has ended, in which case the rest were closed with CloseAll() and
  // a warning was logged. Otherwise moves `wakeup` no later than the end of
  // the grace period, so that the loop wakes up to enforce it.
  // Requires: Shutdown() was called.
  bool ShutdownDone(std::optional<absl::Time>& wakeup);

  // True once Shutdown() was called and every connection has closed.
  bool finished() const {
    return broker_.shutting_down() && broker_.connection_count() == 0;
  }

  // Closes every link now (LinkIo::Close, then Broker::Close with `reason`),
  // whatever output is left. For the end of a shutdown that ran out of time.
  void CloseAll(absl::string_view reason);

  // Links open (closing ones included).
  size_t link_count() const { return links_.size(); }

  // The verified certificate of link `id`'s peer, for mapping it to a user
  // (e.g. when its ConnectionPending event arrives). nullptr for plain
  // links, unknown ids, before the TLS handshake is done, and when the peer
  // presented no certificate. Valid until the link closes.
  const PeerIdentity* peer_identity(ConnectionId id) const;

  // kSubmitted links closed with a write in flight whose completion the
  // adapter has not reported yet.
  size_t orphaned_write_count() const { return orphaned_writes_.size(); }

  const DriverStatistics& statistics() const { return stats_; }

 private:
  struct Link {
    LinkIo* io = nullptr;
    bool submitted = false;  // io->write_style() == kSubmitted
    bool reading = true;     // what the adapter was last told
    bool writable = true;    // kImmediate: false after WriteSome() took 0
    bool peer_closed = false;
    absl::Status error;
    bool queued = false;  // in pending_
    // kSubmitted: bytes copied out of the connection, [sent, size) unsent.
    // On the heap, so a write in flight keeps reading the same memory when
    // links_ rehashes or the link is closed (short strings live inline).
    std::unique_ptr<std::string> submitted_bytes;
    size_t submitted_sent = 0;
    size_t submitted_size() const {
      return submitted_bytes ? submitted_bytes->size() : 0;
    }
    bool write_in_flight = false;
    // kSubmitted: when a closing link whose write never completes is closed
    // anyway.
    std::optional<absl::Time> close_deadline;
    // Secured links: the layer, whether output still goes out in clear (a
    // greeting before the peer's first byte), when the handshake must be
    // done, and whether close_notify was queued.
    std::unique_ptr<LinkSecurity> security;
    bool clear_output = false;
    std::optional<absl::Time> handshake_deadline;
    bool security_shut_down = false;
    // Closing for input it was not allowed to send (a request body over
    // the limit): its answer is out, and what the peer still sends is read
    // and dropped, for a moment, so that the close does not reset the link
    // before the peer reads the answer (a lingering close).
    bool draining = false;
    size_t drained = 0;
  };

  Link* Find(ConnectionId id);
  void Enqueue(ConnectionId id, Link& link);
  void Service(ConnectionId id, absl::Time now);
  void UpdateReading(ConnectionId id, Link& link, const Connection& c);
  void Flush(ConnectionId id, Link& link, Connection& c, absl::Time now);
  void FlushImmediate(ConnectionId id, Link& link, Connection& c,
                      absl::Time now);
  void FlushSubmitted(ConnectionId id, Link& link, Connection& c,
                      absl::Time now);
  void ReceiveSecured(ConnectionId id, Link& link, Connection& c,
                      absl::string_view bytes, absl::Time now);
  void FailSecured(ConnectionId id, Link& link, const Connection& c);
  void FlushSecured(ConnectionId id, Link& link, Connection& c, absl::Time now);
  void EncryptOutput(ConnectionId id, Link& link, Connection& c,
                     absl::Time now);
  bool WriteCiphertext(ConnectionId id, Link& link);
  void EndHandshakeDeadline(ConnectionId id, Link& link);
  // Copies the TLS counters into the broker's statistics (see
  // Broker::ReportTlsStatistics), after each change.
  void ReportTlsStatistics();
  void CloseLink(ConnectionId id, absl::string_view reason, absl::Time now);
  void CloseOverdue(absl::Time now);
  void DrainEvents();
  void LogEvent(const wire::BrokerEvent& event) const;
  std::optional<absl::Time> NextWakeup() const;

  const DriverOptions options_;
  Broker broker_;
  absl::flat_hash_map<ConnectionId, Link> links_;
  // Links the adapter reported something about since the last turn.
  std::vector<ConnectionId> pending_;
  // Reused by RunTurn().
  std::vector<ConnectionId> changed_;
  // kSubmitted links that should close but still have a write in flight.
  absl::btree_set<std::pair<absl::Time, ConnectionId>> close_deadlines_;
  // Secured links whose handshake is not done yet, by deadline.
  absl::btree_set<std::pair<absl::Time, ConnectionId>> handshake_deadlines_;
  // Reused by OnReceived() for secured links' plaintext.
  std::string plaintext_;
  // kSubmitted links closed with a write in flight: the bytes that write
  // reads, kept until the adapter reports it done.
  absl::flat_hash_map<ConnectionId, std::unique_ptr<std::string>>
      orphaned_writes_;
  DriverStatistics stats_;
  TurnHook* turn_hook_ = nullptr;
  bool tls_reported_ = false;  // ReportTlsStatistics() has run
  // When a shutdown stops waiting for clients to take their goodbyes.
  absl::Time shutdown_deadline_ = absl::InfiniteFuture();
  absl::Duration shutdown_grace_ = absl::InfiniteDuration();
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_DRIVER_BROKER_DRIVER_H_
