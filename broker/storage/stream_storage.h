// File: broker/storage/stream_storage.h
// -----------------------------------------------------------------------------
//
// Where a Broker keeps its durable streams (docs/streams.md): the interface an
// embedder implements, as LevelDB's `Env` is, so that the Broker itself still
// does no I/O. The Broker assigns every stored message its sequence, then
// hands the storage one `StorageBatch` per turn (group commit: everything
// that arrived in the turn, written together, synced once), asks it for
// stored messages with `ReadRequest`s, and collects what finished with
// `Poll()` at the start of each turn. A publisher's ack waits for its batch.
//
// Implementations:
//  - MemoryStreamStorage (broker/storage/memory_stream_storage.h): in memory,
//    finishes everything at once; serves `memory` streams and tests, and
//    fails any operation on cue.
//  - RocksDbStreamStorage (transports/storage/): on disk, with the work on a
//    storage thread that wakes the loop when something finished.
//
// Example (an embedder with a file storage):
//
//   RocksDbStreamStorage storage(dir, wake_the_loop);
//   absl::StatusOr<std::vector<RecoveredStream>> held = storage.Load();
//   if (!held.ok()) { print held.status(); exit; }   // corrupt, foreign
//   Broker broker(options);
//   absl::Status s = broker.OpenStreams(&storage, *std::move(held), now);
//   ... then run the loop as usual; when the storage wakes the loop, a turn
//   (Broker::Process) collects what it finished.
//
// Thread safety: the Broker calls Write, Read and Poll from its own thread
// only. An implementation may do the work elsewhere and must then make Poll
// safe against it.

#ifndef MANIFOLD_BROKER_STORAGE_STREAM_STORAGE_H_
#define MANIFOLD_BROKER_STORAGE_STREAM_STORAGE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/manifold.pb.h"

namespace manifold {

// What a stream holds: sequences, counts, bytes (the sum of the stored
// records' sizes) and the times of its oldest and newest message.
struct StreamState {
  std::string name;
  // 0 when the stream holds nothing; last_seq never goes down (the next
  // message is last_seq + 1, also after a purge or a restart). Every
  // sequence between them is held unless the stream has a
  // max_msgs_per_topic, which drops messages from between others: then
  // `messages` may be fewer than last_seq - first_seq + 1.
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  uint64_t messages = 0;
  uint64_t bytes = 0;
  int64_t first_time_unix_ms = 0;
  int64_t last_time_unix_ms = 0;
};

// One message to store. `topic` and `record` (a serialized
// wire::StoredMessage) point into memory the StorageBatch holding the append
// owns (StorageBatch::Keep, Allocate): a batch of thousands of messages
// allocates a few blocks rather than a string or two per message, and frees
// them together on the storage's thread.
struct AppendRecord {
  std::string stream;
  uint64_t seq = 0;
  absl::string_view topic;
  int64_t time_unix_ms = 0;
  absl::string_view record;
};

// The memory a StorageBatch owns for its appends: blocks that grow from
// 4 KiB to 256 KiB, and a block of its own for anything above 64 KiB.
// Memory it gave out stays where it is, also when it moves, until it is
// destroyed. A moved-from BatchMemory is empty.
class BatchMemory {
 public:
  BatchMemory() = default;
  BatchMemory(BatchMemory&& other) noexcept { *this = std::move(other); }
  BatchMemory& operator=(BatchMemory&& other) noexcept;

  // Returns `size` uninitialized bytes.
  char* Allocate(size_t size);

 private:
  std::vector<std::unique_ptr<char[]>> blocks_;
  size_t block_size_ = 0;  // of the block being filled
  char* next_ = nullptr;   // in it
  size_t left_ = 0;        // from next_ to its end
};

// Everything one Broker turn changed, applied in this order and atomically:
// after a crash either all of a batch is there or none of it. Movable, not
// copyable: its appends point into memory it owns.
struct StorageBatch {
  // Returns `size` bytes of memory this batch owns, uninitialized, for an
  // append's topic or record to point into (BatchMemory).
  char* Allocate(size_t size) { return memory_.Allocate(size); }
  // Returns a copy of `bytes` in memory this batch owns.
  absl::string_view Keep(absl::string_view bytes);
  // Returns a copy of this batch whose appends point into the copy's memory
  // (for writing one batch to two storages, as tests do).
  StorageBatch Copy() const;

  // Increasing; the matching BatchDone carries it.
  uint64_t id = 0;
  // Create or replace a stream's configuration. Its max_msgs_per_topic may
  // change only while it holds no message (INVALID_ARGUMENT otherwise).
  std::vector<wire::StreamConfig> put_streams;
  // Remove streams and everything they hold.
  std::vector<std::string> remove_streams;
  // Drop every message of these streams (their last_seq stays).
  std::vector<std::string> purge_streams;
  // New messages, in sequence order per stream, each seq = last_seq + 1.
  std::vector<AppendRecord> appends;
  // Create or replace durable consumers (wire::ConsumerState; its
  // in_flight and members fields are not kept), and remove them by (stream,
  // name). A stream's removal removes its consumers too.
  std::vector<wire::ConsumerState> put_consumers;
  std::vector<std::pair<std::string, std::string>> remove_consumers;
  // Streams whose retention to enforce after the appends (those appended to
  // are enforced anyway), against this wall-clock time.
  std::vector<std::string> enforce_streams;
  int64_t now_unix_ms = 0;
  // Whether the batch must be on stable storage before it is reported done
  // (the `always` sync policy).
  bool sync = true;

 private:
  BatchMemory memory_;
};

// A batch finished. On failure nothing of it is applied.
struct BatchDone {
  uint64_t id = 0;
  absl::Status status;
  // Ok: the state now of every stream the batch touched (retention may have
  // dropped old messages).
  std::vector<StreamState> states;
};

// Asks for stored messages of `stream`, oldest first, starting at the first
// message whose seq >= from_seq and whose time >= since_unix_ms (or, when
// `last` is not 0, at the last-th newest of those up to seq `last_through`,
// and on past it), or only the sequences in `seqs` (ascending) when it is
// not empty. Sequences the stream does not hold (max_msgs_per_topic drops
// messages from between others) are skipped. Stops after max_messages
// messages or once max_bytes bytes of records are read (always at least one
// message when there is one).
struct ReadRequest {
  uint64_t id = 0;
  std::string stream;
  uint64_t from_seq = 1;
  int64_t since_unix_ms = 0;
  uint64_t last = 0;
  uint64_t last_through = 0;
  std::vector<uint64_t> seqs;
  size_t max_messages = 256;
  size_t max_bytes = 1 << 20;
};

struct StoredRecord {
  uint64_t seq = 0;
  std::string record;  // a serialized wire::StoredMessage
};

struct ReadDone {
  uint64_t id = 0;
  absl::Status status;
  std::vector<StoredRecord> messages;
  // Where the next read would start (one past the last message read, or
  // past the stream's end when there was nothing more).
  uint64_t next_seq = 0;
};

// What a storage held when it was opened: one entry per stream.
struct RecoveredStream {
  wire::StreamConfig config;
  StreamState state;
  // The newest seq of each topic held (for "last per topic" replays).
  std::vector<std::pair<std::string, uint64_t>> last_per_topic;
  // Its durable consumers, as last put.
  std::vector<wire::ConsumerState> consumers;
};

// What finished: a batch or a read.
struct StorageCompletion {
  enum class Kind { kBatch, kRead };
  Kind kind = Kind::kBatch;
  BatchDone batch;
  ReadDone read;
};

class StreamStorage {
 public:
  virtual ~StreamStorage() = default;

  // Everything the storage holds, for the Broker to recreate its streams
  // (Broker::OpenStreams). Called once, before any other call. Returns an
  // error naming the problem (and the path, for a storage on disk) when what
  // it holds is damaged or not a Manifold store: never drops data silently.
  virtual absl::StatusOr<std::vector<RecoveredStream>> Load() = 0;

  // Queues `batch`; its BatchDone comes out of a later Poll(). Batches
  // finish in the order they were written.
  virtual void Write(StorageBatch batch) = 0;

  // Queues `read`; its ReadDone comes out of a later Poll(). A read sees
  // every batch written before it that finished successfully.
  virtual void Read(ReadRequest read) = 0;

  // Appends what finished since the last call to `out`, in the order it
  // finished. Never blocks.
  virtual void Poll(std::vector<StorageCompletion>& out) = 0;
};

// Retention, shared by the implementations: whether a stream in `state`
// under `config` must drop its oldest message (of `oldest_bytes`, stored
// at `oldest_time_unix_ms`) at `now_unix_ms`.
inline bool MustDropOldest(const wire::StreamConfig& config,
                           const StreamState& state, uint64_t oldest_bytes,
                           int64_t oldest_time_unix_ms, int64_t now_unix_ms) {
  if (state.messages == 0) return false;
  if (config.max_msgs() > 0 && state.messages > config.max_msgs()) return true;
  if (config.max_bytes() > 0 && state.bytes > config.max_bytes() &&
      oldest_bytes > 0) {
    return true;
  }
  return config.max_age_ms() > 0 &&
         oldest_time_unix_ms + static_cast<int64_t>(config.max_age_ms()) <
             now_unix_ms;
}

}  // namespace manifold

#endif  // MANIFOLD_BROKER_STORAGE_STREAM_STORAGE_H_
