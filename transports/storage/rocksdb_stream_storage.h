// File: transports/storage/rocksdb_stream_storage.h
// -----------------------------------------------------------------------------
//
// The on-disk StreamStorage (broker/storage/stream_storage.h): one RocksDB
// database in the broker's data directory holds every durable stream. Write()
// and Read() only queue their work; one storage thread runs it in order,
// each StorageBatch as one atomic rocksdb::WriteBatch, and calls `wake`
// after each completion so the loop runs a turn and collects it with Poll().
// A batch that asks for `sync` is synced by a second thread (the sync
// thread) while the storage thread writes the next ones: one sync then
// covers every batch written before it began (group commit across batches),
// and a disk's sync latency no longer idles the writing.
//
// Example:
//
//   RocksDbStreamStorage storage("/var/lib/manifold", [&] { loop.Wake(); });
//   absl::StatusOr<std::vector<RecoveredStream>> held = storage.Load();
//   if (!held.ok()) { print held.status(); exit; }  // foreign, damaged
//   ... broker.OpenStreams(&storage, *std::move(held), now);
//   // In each loop turn (the Broker does this itself):
//   std::vector<StorageCompletion> done;
//   storage.Poll(done);
//
// Key layout (every key starts with a one-letter kind and '/'; stream names
// hold only letters, digits, '-' and '_', so '\0' ends a name unambiguously;
// integers are fixed-width big-endian, so keys sort by sequence):
//
//   "format"                      -> "manifold-streams <version>" (now 3);
//                                    written when the store is created. A
//                                    store of format 2 (the same layout
//                                    before max_msgs_per_topic) is marked 3
//                                    when it is opened.
//   "s/<stream>"                  -> the stream's wire::StreamConfig,
//                                    serialized.
//   "c/<stream>"                  -> the stream's counters, 48 bytes: u64
//                                    first_seq, u64 last_seq, u64 messages,
//                                    u64 bytes, i64 first_time_unix_ms,
//                                    i64 last_time_unix_ms.
//   "d/<stream>\0<u64 seq>"       -> (in the column family "log"; all
//                                    other keys are in the default one) a
//                                    chunk: consecutive messages from seq
//                                    on, as many as it holds. Each: i64
//                                    time_unix_ms, u32 topic size, u32 record
//                                    size, the topic, then the record (a
//                                    serialized wire::StoredMessage, as the
//                                    Broker gave it). A batch's messages of
//                                    a stream fill new chunks of up to about
//                                    64 KiB.
//   "t/<stream>\0<topic>"         -> u64: the newest seq of that topic the
//                                    stream holds (deleted when retention
//                                    drops that message). For a stream with
//                                    max_msgs_per_topic: every seq of that
//                                    topic it holds, oldest first, each as
//                                    u64 seq, u64 record size.
//   "k/<stream>\0<consumer>"      -> a durable consumer's wire::ConsumerState
//                                    (its in_flight and members cleared).
//
// A stream's messages are contiguous: every seq from first_seq to last_seq
// is in the one chunk whose key is the greatest not above it (appends add
// chunks at the end, retention drops messages from the front and a chunk
// with its last one, a purge drops all). A chunk whose front was dropped
// stays; its entries before first_seq are skipped. "bytes" counts record
// sizes only, not keys or the entries' headers and topics.
//
// A stream with max_msgs_per_topic is the exception: a topic's new message
// drops its oldest from wherever it is, leaving a hole. The held sequences
// are those its "t/" entries list (the storage keeps them in memory too, in
// place of the newest seq per topic: about 40 bytes per topic more); readers
// skip the others, and a chunk none of whose messages is held any more is
// deleted, so a "last value" stream's disk use follows what it holds, not
// what it was sent.
//
// Recovery: RocksDB replays its write-ahead log with point-in-time recovery
// (a batch torn by a crash is dropped with everything after it: none of it
// was reported done with `sync`). Anything else that does not read back
// cleanly fails Load() with the path and the problem; nothing is repaired.
//
// Completions keep the order of the work: a batch waiting for its sync holds
// back the completions of the batches written after it, and a read waits
// for the syncs of the batches written before it (what a subscriber reads,
// a crash cannot take back unless its batch asked for no sync). A failed sync
// fails its batches and every later one, and the store then refuses work until
// the broker restarts: the kernel may have dropped the pages it could not
// write, so only reading the disk again tells what it holds (as PostgreSQL does
// after a failed fsync).
//
// Disk writes: memtables are flushed with direct I/O where the file system
// allows it (checked with an unnamed O_DIRECT file), so a flushed table is
// not copied through the page cache as well as the write-ahead log was.
//
// Queues: Write() and Read() never block and never refuse; the queue of work
// and of finished completions is bounded by what the Broker has in flight
// (its own limits on unacknowledged publishes and pending replays), so this
// class adds no limit of its own.
//
// Thread safety: Load() first, then Write(), Read() and Poll() from one
// thread (the Broker's). `wake` runs on the storage or the sync thread; it must
// not call back into the storage except Poll().

#ifndef MANIFOLD_TRANSPORTS_STORAGE_ROCKSDB_STREAM_STORAGE_H_
#define MANIFOLD_TRANSPORTS_STORAGE_ROCKSDB_STREAM_STORAGE_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "broker/storage/stream_storage.h"

namespace rocksdb {
class Cache;
class ColumnFamilyHandle;
class DB;
class Env;
class FileSystem;
class FSWritableFile;
}  // namespace rocksdb

namespace manifold {

struct RocksDbStreamStorageOptions {
  // The memtable size of the messages' column family (0: 128 MiB). Smaller
  // values flush to disk sooner and use less memory; the write-ahead logs
  // kept are bounded by three times this.
  size_t write_buffer_bytes = 0;
  // The read cache: blocks of table files read back (replays, consumers far
  // behind), shared by every stream, in bytes (0: 32 MiB). What was written
  // and not yet flushed is read from the memtables instead.
  size_t read_cache_bytes = 0;
  // The file system RocksDB works through (null: the machine's). Tests pass
  // one that fails or holds back operations on cue.
  std::shared_ptr<rocksdb::FileSystem> file_system;
};

// Used by RocksDbStreamStorage alone: between a failed write to the log and
// its sync thread. RocksDB 7.8 stops at an assertion (Debian's build keeps
// them) when DB::SyncWAL() meets a log whose writer failed, so the file
// system under the store notes such a failure under `mu` before RocksDB
// sees it, and the sync thread calls SyncWAL() under `mu` only while none
// was noted. After one, it syncs the open log files itself: what the
// batches written before the failure put there becomes durable as with
// SyncWAL(). Only a failing write waits for `mu`. `logs_mu` is taken last:
// nothing else is locked while it is held.
struct RocksDbLogFailure {
  std::mutex mu;
  bool failed = false;  // guarded by mu; reset by a reopen
  std::mutex logs_mu;
  // The log files open for writing; guarded by logs_mu.
  std::vector<rocksdb::FSWritableFile*> logs;
};

class RocksDbStreamStorage final : public StreamStorage {
 public:
  // RocksDbStreamStorageOptions::read_cache_bytes when it is 0.
  static constexpr size_t kDefaultReadCacheBytes = 32 << 20;
  // The version of the key layout above that this code reads and writes.
  static constexpr int kFormatVersion = 3;

  // A storage in directory `dir` (created by Load() when missing). `wake` is
  // called on the storage or the sync thread after each completed batch or
  // read. Starts the storage and sync threads; touches nothing on disk.
  RocksDbStreamStorage(std::string dir, std::function<void()> wake,
                       RocksDbStreamStorageOptions options = {});

  // Finishes every queued batch and read (their completions are discarded
  // unless polled), stops both threads and closes the database.
  ~RocksDbStreamStorage() override;

  RocksDbStreamStorage(const RocksDbStreamStorage&) = delete;
  RocksDbStreamStorage& operator=(const RocksDbStreamStorage&) = delete;

  // Opens the database in `dir`, creating it when `dir` is missing or
  // empty (or holds only lost+found). Fails, with one line naming `dir` and the
  // problem, when `dir` holds files that are not a Manifold stream store, when
  // the store is damaged (RocksDB reports corruption, or its keys do not add
  // up), when its format version is unknown, or when it cannot be opened
  // (locked by another process, unreadable). Runs on the caller's thread.
  // REQUIRES: called once, before any other call.
  absl::StatusOr<std::vector<RecoveredStream>> Load() override;

  // Queues `batch`. On failure (the BatchDone's status) nothing of it is
  // applied: INTERNAL or NOT_FOUND when the batch does not fit what is
  // stored (a seq that does not follow last_seq, an unknown stream),
  // UNAVAILABLE with RocksDB's message for I/O errors (disk full, ...).
  // Later batches are tried again: after an I/O error the database is
  // closed and reopened (RocksDB replays its log) before the next batch or
  // read, which fail with UNAVAILABLE until that works. After a failed sync
  // every batch and read fails with UNAVAILABLE until a restart (see
  // above). A batch with `sync` is reported done once the sync thread
  // synced it. REQUIRES: Load() succeeded.
  void Write(StorageBatch batch) override;

  // Queues `read`. NOT_FOUND when the stream does not exist. max_bytes is
  // never exceeded except by a first message larger than it: a message that
  // would pass it ends the read and is where next_seq points. next_seq is
  // one past the last message read; when nothing was read, the larger of
  // from_seq (for a from_seq/since read) and last_seq + 1. A read by `seqs`
  // skips sequences the stream no longer holds. REQUIRES: Load() succeeded.
  void Read(ReadRequest read) override;

  // Appends what finished since the last call, in order. Never blocks for
  // longer than the storage thread holds its queue's lock (no I/O).
  void Poll(std::vector<StorageCompletion>& out) override;

  const std::string& dir() const { return dir_; }
  // The read cache's size in bytes, and how much of it is in use.
  size_t read_cache_capacity() const;
  size_t read_cache_usage() const;

  // Whether RocksDB computes its checksums with ISA-L in this process
  // (rocksdb_crc32c.h). Linking the storage links that definition in.
  static bool checksums_accelerated();

 private:
  // A stream as committed to the database (only the storage thread reads or
  // changes it once Load() returned).
  // A held message of a stream with max_msgs_per_topic.
  struct Held {
    uint64_t seq = 0;
    uint64_t size = 0;  // of its record
  };
  // A topic's held messages, oldest first: at most max_msgs_per_topic, so
  // taking the oldest off the front is cheap; one inline (a last-value
  // stream) costs no allocation.
  using HeldList = absl::InlinedVector<Held, 1>;
  struct Stream {
    wire::StreamConfig config;
    StreamState state;
    // Without max_msgs_per_topic: the newest seq of each topic held.
    absl::flat_hash_map<std::string, uint64_t> last_per_topic;
    // Only with max_msgs_per_topic (and then in place of last_per_topic):
    // each topic's held messages, oldest first (the newest last), and every
    // held sequence.
    absl::flat_hash_map<std::string, HeldList> topics;
    absl::btree_set<uint64_t> held;
    // Its durable consumers as Load() found them (not kept up to date
    // after: only Load() reports them).
    std::vector<wire::ConsumerState> consumers;
  };
  class BatchWriter;
  using Work = std::variant<StorageBatch, ReadRequest>;

  // The storage thread: runs queue_ in order.
  void Run();
  // The sync thread: syncs the log for the batches in unsynced_ and
  // completes them, in order.
  void SyncLoop();
  // Queues the completion of a batch the storage thread wrote: behind the
  // batches still waiting for a sync, or straight to done_ when there are
  // none and `needs_sync` is false.
  void Written(BatchDone done, bool needs_sync);
  // Blocks the storage thread until no written batch awaits its sync.
  void WaitForSyncs();
  BatchDone Execute(StorageBatch& batch);
  ReadDone Execute(const ReadRequest& read);
  void Enqueue(Work work);
  // Opens db_ and log_ (creating the database when `create`).
  absl::Status OpenDb(bool create);
  // Closes log_ and db_, if open.
  void CloseDb();
  // The error for a database of this format without the log's family.
  absl::Status NoLog() const;
  // Reads every stream's configuration, counters and topics into `streams`
  // and checks that they add up.
  absl::Status ReadStreams(absl::flat_hash_map<std::string, Stream>& streams);
  // Whether db_ can be used; after an I/O error, reopens it first (once no
  // batch awaits a sync); after a failed sync, never again (diverged_).
  absl::Status Recover();
  static bool SameStreams(const absl::flat_hash_map<std::string, Stream>& a,
                          const absl::flat_hash_map<std::string, Stream>& b);

  const std::string dir_;
  const std::function<void()> wake_;
  const RocksDbStreamStorageOptions options_;
  // Outlives every opening of db_ (a reopen after an I/O error keeps it).
  const std::shared_ptr<rocksdb::Cache> read_cache_;
  // Between a failed write to the log and the sync thread (see
  // RocksDbLogFailure).
  const std::shared_ptr<RocksDbLogFailure> log_failure_;
  // Over options_.file_system (or the default one), noting log write
  // failures in log_failure_; outlives every db_.
  const std::unique_ptr<rocksdb::Env> env_;
  std::unique_ptr<rocksdb::DB> db_;
  // The column family of the "d/" keys (the messages), apart from the small
  // keys every batch rewrites: alone, its keys only grow, so the files
  // RocksDB flushes never overlap and move down the levels without being
  // rewritten. Null when db_ is.
  std::unique_ptr<rocksdb::ColumnFamilyHandle> log_;
  absl::flat_hash_map<std::string, Stream> streams_;
  // Set after an I/O error: the next batch or read reopens the database.
  bool needs_reopen_ = false;
  // Set when a reopened database holds other than what was reported, or
  // once a sync failed (sync_failed_): work fails with it until a restart.
  absl::Status diverged_;

  // std::mutex rather than absl::Mutex: ThreadSanitizer sees through it
  // (scripts/tsan.sh).
  std::mutex mu_;
  std::condition_variable work_ready_;
  std::deque<Work> queue_;               // guarded by mu_
  std::vector<StorageCompletion> done_;  // guarded by mu_
  bool stopping_ = false;                // guarded by mu_
  bool syncer_stopping_ = false;         // guarded by mu_
  // Batches written to the log, oldest first, whose completions wait for a
  // sync (theirs, or an earlier batch's). The sync thread takes them.
  struct Unsynced {
    BatchDone done;
    bool needs_sync = false;
  };
  std::deque<Unsynced> unsynced_;  // guarded by mu_
  // The first failed sync: every batch after it fails with it, and the
  // storage thread turns it into diverged_.
  absl::Status sync_failed_;            // guarded by mu_
  std::condition_variable sync_ready_;  // unsynced_ grew, or stopping_
  std::condition_variable synced_;      // unsynced_ shrank
  std::thread worker_;
  std::thread syncer_;
};

}  // namespace manifold

#endif  // MANIFOLD_TRANSPORTS_STORAGE_ROCKSDB_STREAM_STORAGE_H_
