// File: transports/memory/internal/memory_pipe.h
// -----------------------------------------------------------------------------
//
// The thread-safe pieces under MemoryBroker
// (transports/memory/memory_broker.h); not part of the public API.
//
// A MemoryPipe is one in-process connection: two bounded byte queues, one per
// direction, shared by a client thread (the MemoryLink) and the broker's
// thread. A Doorbell wakes the broker's thread when a pipe has news (bytes to
// read, room to write, a close) or a new pipe arrives.
//
//   client thread            MemoryPipe                  broker thread
//   ClientWrite() ----> [to_broker, bounded] ----> BrokerRead()
//   ClientRead()  <---- [to_client, bounded] <---- BrokerWrite()
//                 \-- Ring() --> Doorbell --> Wait() --/
//
// The locks are std::mutex and std::condition_variable rather than
// absl::Mutex: ThreadSanitizer understands them even when Abseil itself was
// built without it (as Debian's is), so this code stays checkable.

#ifndef MANIFOLD_TRANSPORTS_MEMORY_INTERNAL_MEMORY_PIPE_H_
#define MANIFOLD_TRANSPORTS_MEMORY_INTERNAL_MEMORY_PIPE_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "broker/protocol_codec.h"
#include "core/ids.h"
#include "transports/driver/link_security.h"

namespace manifold::memory_internal {

class MemoryPipe;

// A FIFO of bytes with a fixed capacity. Not thread-safe: MemoryPipe locks.
class ByteQueue {
 public:
  explicit ByteQueue(size_t capacity) : capacity_(capacity) {}

  size_t size() const { return data_.size() - head_; }
  bool empty() const { return size() == 0; }
  size_t room() const { return capacity_ - size(); }

  // Appends as much of `bytes` as fits; returns how much that was.
  size_t Push(absl::string_view bytes);
  // Moves up to `max` bytes from the front to the end of `*out`.
  size_t Pop(size_t max, std::string* out);
  void Clear();

 private:
  const size_t capacity_;
  std::string data_;
  size_t head_ = 0;  // bytes at the front of data_ already popped
};

// Wakes the broker's thread. Outlives the broker (pipes held by clients may
// still ring it), so it is shared.
class Doorbell {
 public:
  // Everything that happened since the last Wait().
  struct News {
    std::vector<std::shared_ptr<MemoryPipe>> arrived;  // new connections
    std::vector<std::shared_ptr<MemoryPipe>> rung;     // pipes with news
    bool stop = false;  // RequestStop() was called (reported once)
  };

  // Hands a new pipe to the broker. Returns false once the broker has
  // stopped for good (the caller closes the pipe itself).
  bool Post(std::shared_ptr<MemoryPipe> pipe);
  // Tells the broker `pipe` has news.
  void Ring(std::shared_ptr<MemoryPipe> pipe);
  // Asks the broker to shut down.
  void RequestStop();
  // Waits until there is news or `timeout` has passed (measured on a
  // monotonic clock; InfiniteDuration() waits for news, zero or less only
  // collects), then moves the news into `*news` (replacing its contents).
  void Wait(absl::Duration timeout, News* news);
  // Refuses further posts; returns pipes posted but never taken.
  std::vector<std::shared_ptr<MemoryPipe>> Close();

 private:
  // REQUIRES: mu_ held.
  bool HasNews() const { return !arrived_.empty() || !rung_.empty() || stop_; }

  std::mutex mu_;
  std::condition_variable news_;
  // Guarded by mu_:
  std::vector<std::shared_ptr<MemoryPipe>> arrived_;
  std::vector<std::shared_ptr<MemoryPipe>> rung_;
  bool stop_ = false;
  bool closed_ = false;
};

// One in-process connection. Client methods may be called from any threads;
// Broker methods only from the broker's thread.
class MemoryPipe : public std::enable_shared_from_this<MemoryPipe> {
 public:
  MemoryPipe(std::string peer_name, std::shared_ptr<Doorbell> doorbell,
             size_t capacity);

  const std::string& peer_name() const { return peer_name_; }

  // The codec the broker accepts the connection with (null: native). Set by
  // the client before the pipe is posted; taken once by the broker's thread.
  void set_codec(std::unique_ptr<ProtocolCodec> codec) {
    codec_ = std::move(codec);
  }
  std::unique_ptr<ProtocolCodec> TakeCodec() { return std::move(codec_); }
  // Likewise the link's security layer (null: none), e.g. TLS.
  void set_security(std::unique_ptr<LinkSecurity> security) {
    security_ = std::move(security);
  }
  std::unique_ptr<LinkSecurity> TakeSecurity() { return std::move(security_); }

  // --- Client end ----------------------------------------------------------

  // Queues all of `bytes` for the broker, waiting for room as needed.
  // Concurrent writes do not interleave. Returns UNAVAILABLE once either end
  // closed the pipe.
  absl::Status ClientWrite(absl::string_view bytes);
  // Waits until the broker has sent bytes or `deadline` passes; returns all
  // bytes waiting, an empty string at the deadline, or UNAVAILABLE once the
  // pipe is closed and drained.
  absl::StatusOr<std::string> ClientRead(absl::Time deadline);
  // Closes the pipe from the client's side; unread broker output is dropped,
  // bytes already written still reach the broker.
  void ClientClose();

  // --- Broker end (the broker's thread only) -------------------------------

  // Called before the broker looks at the pipe, so any later change rings
  // the doorbell again.
  void ClearRing() { ring_pending_.store(false); }
  // Moves up to `max` bytes the client wrote into `*out` (replacing its
  // contents). Sets `*ended` when the client closed and nothing is left.
  void BrokerRead(size_t max, std::string* out, bool* ended);
  // Queues a prefix of `chunks` for the client. Returns the bytes taken, 0
  // when the queue is full (the doorbell rings once the client makes room),
  // or UNAVAILABLE when the client has closed the pipe.
  absl::StatusOr<size_t> BrokerWrite(
      absl::Span<const absl::string_view> chunks);
  // True when the client's queue has room.
  bool BrokerCanWrite();
  // Closes the pipe from the broker's side. The client can still read what
  // was queued for it, then gets UNAVAILABLE.
  void BrokerClose();

  // The broker's id for this pipe's connection (the broker's thread only).
  ConnectionId broker_id() const { return broker_id_; }
  void set_broker_id(ConnectionId id) { broker_id_ = id; }

 private:
  void Ring();

  const std::string peer_name_;
  std::unique_ptr<ProtocolCodec> codec_;
  std::unique_ptr<LinkSecurity> security_;
  const std::shared_ptr<Doorbell> doorbell_;
  std::atomic<bool> ring_pending_{false};
  ConnectionId broker_id_;

  // Held for the whole of a ClientWrite so that concurrent writes stay
  // whole. Taken before mu_.
  std::mutex write_mu_;
  std::mutex mu_;
  std::condition_variable client_cv_;  // clients wait for bytes, room, close
  // Guarded by mu_:
  ByteQueue to_broker_;
  ByteQueue to_client_;
  bool client_closed_ = false;
  bool broker_closed_ = false;
  // The broker found to_client_ full and waits for room.
  bool broker_waits_for_room_ = false;
};

}  // namespace manifold::memory_internal

#endif  // MANIFOLD_TRANSPORTS_MEMORY_INTERNAL_MEMORY_PIPE_H_
