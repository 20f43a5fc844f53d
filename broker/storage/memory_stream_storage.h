// File: broker/storage/memory_stream_storage.h
// -----------------------------------------------------------------------------
//
// A StreamStorage (broker/storage/stream_storage.h) that keeps everything in
// memory. The Broker uses one for `memory` streams; tests use it in place of a
// disk, because it can fail any operation on cue and hold batches unfinished,
// which is how a test crashes the broker "between" a write and its sync.
//
// Every Write and Read finishes at once (its completion waits for the next
// Poll), unless the storage is told to hold batches: then a batch is neither
// applied nor reported until Release(), and Crash() forgets the held ones, as
// a machine losing power forgets writes that were never synced.
//
// Example (a test that fails the next batch, then checks a restart):
//
//   MemoryStreamStorage disk;
//   Broker broker(options);
//   broker.OpenStreams(&disk, *disk.Load(), now);
//   disk.FailNextWrites(1, absl::UnavailableError("disk full"));
//   ... publish: the publisher gets STORAGE_UNAVAILABLE ...
//   Broker restarted(options);                 // same `disk`
//   restarted.OpenStreams(&disk, *disk.Load(), now);
//
// Thread safety: none; one thread, like the Broker.

#ifndef MANIFOLD_BROKER_STORAGE_MEMORY_STREAM_STORAGE_H_
#define MANIFOLD_BROKER_STORAGE_MEMORY_STREAM_STORAGE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "broker/storage/stream_storage.h"

namespace manifold {

class MemoryStreamStorage : public StreamStorage {
 public:
  MemoryStreamStorage() = default;
  MemoryStreamStorage(const MemoryStreamStorage&) = delete;
  MemoryStreamStorage& operator=(const MemoryStreamStorage&) = delete;
  ~MemoryStreamStorage() override = default;

  // StreamStorage. Load() never fails unless FailLoad() said so.
  absl::StatusOr<std::vector<RecoveredStream>> Load() override;
  void Write(StorageBatch batch) override;
  void Read(ReadRequest read) override;
  void Poll(std::vector<StorageCompletion>& out) override;

  // --- Fault injection ---------------------------------------------------

  // The next `count` batches fail with `status` (nothing of them applied).
  void FailNextWrites(int count, absl::Status status);
  // The next `count` reads fail with `status`.
  void FailNextReads(int count, absl::Status status);
  // The next Load() fails with `status`.
  void FailLoad(absl::Status status) { load_failure_ = std::move(status); }
  // While holding, batches wait unapplied and unreported (reads wait behind
  // them, in order). Release() applies and reports everything held.
  void Hold() { holding_ = true; }
  void Release();
  // Forgets what is held, as a crash loses unsynced writes, and stops
  // holding. Returns how many batches were lost.
  size_t Crash();

  // --- Inspection (tests) ------------------------------------------------

  // Messages held by `stream` now, oldest first (empty for an unknown one).
  std::vector<StoredRecord> Contents(const std::string& stream) const;
  size_t batches_written() const { return batches_written_; }
  // Whether Poll() would return something now.
  bool has_completions() const { return !done_.empty(); }
  size_t syncs() const { return syncs_; }

 private:
  struct Message {
    int64_t time_unix_ms;
    std::string topic;
    std::string record;
  };
  struct Stream {
    wire::StreamConfig config;
    StreamState state;
    // By sequence. Consecutive unless max_msgs_per_topic dropped messages
    // from between others.
    absl::btree_map<uint64_t, Message> messages;
    // The sequences held of each topic, oldest first: with
    // max_msgs_per_topic all of them (at most that many), else only the
    // newest (the one a "last per topic" replay reads).
    std::map<std::string, absl::InlinedVector<uint64_t, 1>> topics;
    std::map<std::string, wire::ConsumerState> consumers;
  };
  struct Queued {
    bool is_read;
    StorageBatch batch;
    ReadRequest read;
  };

  BatchDone Apply(const StorageBatch& batch);
  ReadDone Execute(const ReadRequest& read) const;
  // Drops what `stream`'s retention no longer allows at `now_unix_ms`.
  static void Enforce(Stream& stream, int64_t now_unix_ms);
  // Drops the held message `seq` of `stream` and updates its counters.
  static void Drop(Stream& stream, uint64_t seq);

  std::map<std::string, Stream> streams_;
  std::vector<StorageCompletion> done_;
  std::deque<Queued> held_;
  bool holding_ = false;
  int failing_writes_ = 0;
  absl::Status write_failure_;
  int failing_reads_ = 0;
  absl::Status read_failure_;
  absl::Status load_failure_;
  size_t batches_written_ = 0;
  size_t syncs_ = 0;
};

}  // namespace manifold

#endif  // MANIFOLD_BROKER_STORAGE_MEMORY_STREAM_STORAGE_H_
