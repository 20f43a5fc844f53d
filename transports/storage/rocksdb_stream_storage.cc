#include "transports/storage/rocksdb_stream_storage.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/iterator.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/status.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "transports/storage/rocksdb_crc32c.h"

namespace manifold {
namespace {

// --- Fixed-width big-endian integers (keys sort by them) ---------------------

void PutU64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void PutU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// --- Keys (the layout is in the header)
// ---------------------------------------

constexpr char kFormatKey[] = "format";
// The column family of the "d/" keys (see log_ in the header).
constexpr char kLogFamily[] = "log";
constexpr char kFormatPrefix[] = "manifold-streams ";

std::string ConfigKey(absl::string_view stream) {
  return absl::StrCat("s/", stream);
}
std::string CountersKey(absl::string_view stream) {
  return absl::StrCat("c/", stream);
}
// The first key of a stream's range of kind `kind` ("d" or "t"), and the key
// just past it: a name never holds '\0' or '\1', so "<kind>/<stream>\1"
// sorts after every "<kind>/<stream>\0..." and before any other stream.
std::string RangeStart(absl::string_view kind, absl::string_view stream) {
  return absl::StrCat(kind, "/", stream, absl::string_view("\0", 1));
}
std::string RangeEnd(absl::string_view kind, absl::string_view stream) {
  return absl::StrCat(kind, "/", stream, "\1");
}
std::string DataKey(absl::string_view stream, uint64_t seq) {
  std::string key = RangeStart("d", stream);
  PutU64(key, seq);
  return key;
}
std::string TopicKey(absl::string_view stream, absl::string_view topic) {
  return absl::StrCat(RangeStart("t", stream), topic);
}
std::string ConsumerKey(absl::string_view stream, absl::string_view consumer) {
  return absl::StrCat(RangeStart("k", stream), consumer);
}

// What StreamConfig.name allows; the key layout relies on it (no '\0').
bool IsValidName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
           c == '_';
  });
}

absl::string_view View(const rocksdb::Slice& s) {
  return absl::string_view(s.data(), s.size());
}
rocksdb::Slice Slice(absl::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

// --- Values
// --------------------------------------------------------------------

// A chunk: consecutive messages of one stream under one key, the first
// one's seq in the key. Storing a batch's messages as a few chunks rather
// than a key each spares RocksDB most of its per-key work (a memtable insert
// and its comparisons, a key in every flushed block), which was most of the
// storage thread's time for small messages. Each entry: i64 time_unix_ms,
// u32 topic size, u32 record size, the topic, the record.
constexpr size_t kEntryHeaderSize = 16;
// A batch's messages of one stream start a new chunk once the current one
// holds this many bytes: big enough that small messages share a key by the
// thousand, small enough that reading one message reads little besides.
constexpr size_t kMaxChunkBytes = 64 << 10;

// The header of `append`'s entry, appended to `out`.
void AppendEntryHeader(std::string& out, const AppendRecord& append) {
  PutU64(out, static_cast<uint64_t>(append.time_unix_ms));
  PutU32(out, static_cast<uint32_t>(append.topic.size()));
  PutU32(out, static_cast<uint32_t>(append.record.size()));
}

size_t EntrySize(const AppendRecord& append) {
  return kEntryHeaderSize + append.topic.size() + append.record.size();
}

// One message of a chunk, pointing into the chunk's value.
struct ChunkEntry {
  int64_t time_unix_ms = 0;
  absl::string_view topic;
  absl::string_view record;
};

// Every entry of `value` in order; false when it does not parse (or holds
// none: a chunk is written only with messages in it).
bool DecodeChunk(absl::string_view value, std::vector<ChunkEntry>& entries) {
  entries.clear();
  while (!value.empty()) {
    if (value.size() < kEntryHeaderSize) return false;
    ChunkEntry entry;
    entry.time_unix_ms = static_cast<int64_t>(GetU64(value.data()));
    const uint64_t topic_size = GetU32(value.data() + 8);
    const uint64_t record_size = GetU32(value.data() + 12);
    value.remove_prefix(kEntryHeaderSize);
    if (value.size() < topic_size + record_size) return false;
    entry.topic = value.substr(0, topic_size);
    entry.record = value.substr(topic_size, record_size);
    value.remove_prefix(topic_size + record_size);
    entries.push_back(entry);
  }
  return !entries.empty();
}

// A chunk read from the database, decoded.
struct LoadedChunk {
  uint64_t first_seq = 0;  // 0: nothing loaded
  std::string value;
  std::vector<ChunkEntry> entries;  // point into `value`

  bool Holds(uint64_t seq) const {
    return first_seq != 0 && seq >= first_seq &&
           seq - first_seq < entries.size();
  }
  const ChunkEntry& At(uint64_t seq) const { return entries[seq - first_seq]; }
  uint64_t LastSeq() const { return first_seq + entries.size() - 1; }
};

constexpr size_t kCountersSize = 48;

std::string EncodeCounters(const StreamState& state) {
  std::string value;
  PutU64(value, state.first_seq);
  PutU64(value, state.last_seq);
  PutU64(value, state.messages);
  PutU64(value, state.bytes);
  PutU64(value, static_cast<uint64_t>(state.first_time_unix_ms));
  PutU64(value, static_cast<uint64_t>(state.last_time_unix_ms));
  return value;
}

bool DecodeCounters(absl::string_view value, StreamState& state) {
  if (value.size() != kCountersSize) return false;
  const char* p = value.data();
  state.first_seq = GetU64(p);
  state.last_seq = GetU64(p + 8);
  state.messages = GetU64(p + 16);
  state.bytes = GetU64(p + 24);
  state.first_time_unix_ms = static_cast<int64_t>(GetU64(p + 32));
  state.last_time_unix_ms = static_cast<int64_t>(GetU64(p + 40));
  return true;
}

// The "t/" value of a topic of a stream with max_msgs_per_topic: its held
// messages, oldest first, each as u64 seq, u64 record size.
template <typename HeldList>
std::string EncodeHeld(const HeldList& held) {
  std::string value;
  value.reserve(held.size() * 16);
  for (const auto& h : held) {
    PutU64(value, h.seq);
    PutU64(value, h.size);
  }
  return value;
}

// The counters of a stream that holds nothing (last_seq stays).
void Empty(StreamState& state) {
  state.first_seq = 0;
  state.messages = 0;
  state.bytes = 0;
  state.first_time_unix_ms = 0;
  state.last_time_unix_ms = 0;
}

// RocksDB's status as ours. I/O trouble (disk full, a failing device, a
// database stopped by an earlier such error) is UNAVAILABLE: it may pass.
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view context) {
  std::string message = absl::StrCat(context, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(message);
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain() ||
      s.IsAborted() || s.IsShutdownInProgress() || s.IsIncomplete()) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

// Whether files in `dir` can be written with O_DIRECT (not every file
// system allows it). An unnamed file (O_TMPFILE) tells without leaving
// anything behind.
bool AllowsDirectIo(const std::string& dir) {
  const int fd =
      open(dir.c_str(), O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  close(fd);
  return true;
}

// RocksDB's diagnostics, warnings and worse, go to stderr rather than to a
// LOG file in the store: its file logger asserts once a write to the LOG
// failed (a full disk), which would end the broker over a full disk.
class StderrLogger final : public rocksdb::Logger {
 public:
  explicit StderrLogger(std::string dir)
      : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL),
        dir_(std::move(dir)) {}

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char line[1024];
    std::vsnprintf(line, sizeof(line), format, ap);
    std::fprintf(stderr, "rocksdb %s: %s\n", dir_.c_str(), line);
  }

 private:
  const std::string dir_;
};

// An iterator over the chunks of `stream` whose first seq is below `end`, in
// the messages' column family. It owns the bounds the iterator points to, so
// it cannot be copied or moved.
class ChunkIterator {
 public:
  ChunkIterator(rocksdb::DB& db, rocksdb::ColumnFamilyHandle& log,
                absl::string_view stream, uint64_t end)
      : lower_(RangeStart("d", stream)),
        upper_(DataKey(stream, end)),
        lower_bound_(lower_),
        upper_bound_(upper_) {
    rocksdb::ReadOptions options;
    options.iterate_lower_bound = &lower_bound_;
    options.iterate_upper_bound = &upper_bound_;
    it_.reset(db.NewIterator(options, &log));
  }
  ChunkIterator(const ChunkIterator&) = delete;
  ChunkIterator& operator=(const ChunkIterator&) = delete;

  rocksdb::Iterator* operator->() { return it_.get(); }

  // The first seq of the chunk the iterator is at; 0 when its key is not a
  // chunk's (damage). REQUIRES: Valid().
  uint64_t FirstSeq() const {
    absl::string_view key = View(it_->key());
    return key.size() == lower_.size() + 8 ? GetU64(key.data() + lower_.size())
                                           : 0;
  }

 private:
  const std::string lower_;
  const std::string upper_;
  const rocksdb::Slice lower_bound_;
  const rocksdb::Slice upper_bound_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

// Loads into `chunk` the chunk of `stream` that holds `seq` (the one with
// the greatest first seq not above it). Returns NotFound when the stream has
// no chunk holding `seq`, DataLoss when the chunk does not parse, and
// RocksDB's error otherwise; messages name `dir`, the stream and `seq`.
absl::Status LoadChunk(rocksdb::DB& db, rocksdb::ColumnFamilyHandle& log,
                       const std::string& dir, absl::string_view stream,
                       uint64_t seq, LoadedChunk& chunk) {
  ChunkIterator it(db, log, stream, seq + 1);
  it->SeekForPrev(DataKey(stream, seq));
  auto damaged = [&] {
    chunk.first_seq = 0;
    return absl::DataLossError(absl::StrCat(dir, ": stream '", stream,
                                            "' message ", seq, " is damaged"));
  };
  if (!it->Valid()) {
    if (!it->status().ok()) {
      return FromRocks(it->status(), absl::StrCat(dir, ": reading stream '",
                                                  stream, "' at ", seq));
    }
    return absl::NotFoundError(
        absl::StrCat("stream '", stream, "' lacks its message ", seq));
  }
  chunk.first_seq = it.FirstSeq();
  if (chunk.first_seq == 0) return damaged();
  chunk.value.assign(it->value().data(), it->value().size());
  if (!DecodeChunk(chunk.value, chunk.entries)) return damaged();
  if (!chunk.Holds(seq)) {
    return absl::NotFoundError(
        absl::StrCat("stream '", stream, "' lacks its message ", seq));
  }
  return absl::OkStatus();
}

bool SameState(const StreamState& a, const StreamState& b) {
  return a.name == b.name && a.first_seq == b.first_seq &&
         a.last_seq == b.last_seq && a.messages == b.messages &&
         a.bytes == b.bytes && a.first_time_unix_ms == b.first_time_unix_ms &&
         a.last_time_unix_ms == b.last_time_unix_ms;
}

bool IsIoError(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable;
}

// The file system under the store: notes a failed write to a log file
// (".log") in `failure` before RocksDB learns of it, waiting while the sync
// thread holds failure->mu (see RocksDbLogFailure).
class LogFailureNotingFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  using LogFailure = RocksDbLogFailure;

  LogFailureNotingFileSystem(std::shared_ptr<rocksdb::FileSystem> target,
                             std::shared_ptr<LogFailure> failure)
      : FileSystemWrapper(std::move(target)), failure_(std::move(failure)) {}

  const char* Name() const override { return "LogFailureNotingFileSystem"; }

  rocksdb::IOStatus NewWritableFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* file,
      rocksdb::IODebugContext* debug) override {
    return Noting(
        name, FileSystemWrapper::NewWritableFile(name, options, file, debug),
        file);
  }
  rocksdb::IOStatus ReuseWritableFile(
      const std::string& name, const std::string& old_name,
      const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* file,
      rocksdb::IODebugContext* debug) override {
    return Noting(name,
                  FileSystemWrapper::ReuseWritableFile(name, old_name, options,
                                                       file, debug),
                  file);
  }

 private:
  class NotingFile final : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    NotingFile(std::unique_ptr<rocksdb::FSWritableFile> file,
               std::shared_ptr<LogFailure> failure)
        : FSWritableFileOwnerWrapper(std::move(file)),
          failure_(std::move(failure)) {
      std::lock_guard<std::mutex> lock(failure_->logs_mu);
      failure_->logs.push_back(target());
    }
    ~NotingFile() override { Forget(); }

    rocksdb::IOStatus Append(const rocksdb::Slice& data,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* debug) override {
      return Note(FSWritableFileOwnerWrapper::Append(data, options, debug));
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data,
                             const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* debug) override {
      return Note(
          FSWritableFileOwnerWrapper::Append(data, options, info, debug));
    }
    rocksdb::IOStatus PositionedAppend(
        const rocksdb::Slice& data, uint64_t offset,
        const rocksdb::IOOptions& options,
        rocksdb::IODebugContext* debug) override {
      return Note(FSWritableFileOwnerWrapper::PositionedAppend(data, offset,
                                                               options, debug));
    }
    rocksdb::IOStatus PositionedAppend(
        const rocksdb::Slice& data, uint64_t offset,
        const rocksdb::IOOptions& options,
        const rocksdb::DataVerificationInfo& info,
        rocksdb::IODebugContext* debug) override {
      return Note(FSWritableFileOwnerWrapper::PositionedAppend(
          data, offset, options, info, debug));
    }
    rocksdb::IOStatus Flush(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* debug) override {
      return Note(FSWritableFileOwnerWrapper::Flush(options, debug));
    }
    rocksdb::IOStatus Close(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* debug) override {
      Forget();  // not synced by the sync thread once closing
      return FSWritableFileOwnerWrapper::Close(options, debug);
    }
    // (Only writes are noted, which RocksDB makes holding none of its
    // locks while neither manual_wal_flush nor two_write_queues is set, as
    // in OpenDb(); with either, noting one could wait for a sync that waits
    // for that write. A failed sync goes through SyncWithoutFlush, which
    // RocksDB lets fail; a failed truncation or close leaves nothing to
    // sync.)

   private:
    void Forget() {
      std::lock_guard<std::mutex> lock(failure_->logs_mu);
      std::erase(failure_->logs, target());
    }
    rocksdb::IOStatus Note(rocksdb::IOStatus s) {
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(failure_->mu);
        failure_->failed = true;
      }
      return s;
    }

    const std::shared_ptr<LogFailure> failure_;
  };

  rocksdb::IOStatus Noting(const std::string& name, rocksdb::IOStatus s,
                           std::unique_ptr<rocksdb::FSWritableFile>* file) {
    if (s.ok() && absl::EndsWith(name, ".log")) {
      *file = std::make_unique<NotingFile>(std::move(*file), failure_);
    }
    return s;
  }

  const std::shared_ptr<LogFailure> failure_;
};

}  // namespace

// --- One batch, staged
// ---------------------------------------------------------

// Builds the WriteBatch of one StorageBatch and the streams' new state beside
// the committed one, which changes (Commit) only once the write succeeded.
class RocksDbStreamStorage::BatchWriter {
 public:
  BatchWriter(rocksdb::DB& db, rocksdb::ColumnFamilyHandle& log,
              const std::string& dir,
              absl::flat_hash_map<std::string, Stream>& streams,
              int64_t now_unix_ms, size_t reserve_bytes)
      : db_(db),
        log_(log),
        dir_(dir),
        streams_(streams),
        now_unix_ms_(now_unix_ms),
        batch_(reserve_bytes) {}

  absl::Status Put(const wire::StreamConfig& config) {
    if (!IsValidName(config.name())) {
      return absl::InvalidArgumentError(
          absl::StrCat("stream name '", config.name(),
                       "' is not 1 to 64 letters, digits, '-' or '_'"));
    }
    Staged* staged = Find(config.name());
    if (staged == nullptr) {
      staged = &Add(config.name());
      staged->reset = true;  // the database holds nothing of it
      staged->state.name = config.name();
    } else if (staged->state.messages > 0 &&
               staged->config.max_msgs_per_topic() !=
                   config.max_msgs_per_topic()) {
      // Without the limit no held-sequence lists are kept to start from.
      return absl::InvalidArgumentError(absl::StrCat(
          "stream '", config.name(),
          "': max_msgs_per_topic cannot change while it holds messages"));
    }
    staged->config = config;
    batch_.Put(ConfigKey(config.name()), config.SerializeAsString());
    return absl::OkStatus();
  }

  absl::Status Remove(const std::string& name) {
    Staged* staged = Find(name);
    if (staged == nullptr) return Unknown(name, "remove");
    staged->removed = true;
    batch_.Delete(ConfigKey(name));
    batch_.Delete(CountersKey(name));
    DeleteRanges(name);
    // Its durable consumers go with it (a purge keeps them).
    batch_.DeleteRange(RangeStart("k", name), RangeEnd("k", name));
    return absl::OkStatus();
  }

  absl::Status PutConsumer(const wire::ConsumerState& consumer) {
    if (Find(consumer.stream()) == nullptr) {
      return Unknown(consumer.stream(), "keep a consumer of");
    }
    if (!IsValidName(consumer.name())) {
      return absl::InvalidArgumentError(
          absl::StrCat("consumer name '", consumer.name(),
                       "' is not 1 to 64 letters, digits, '-' or '_'"));
    }
    wire::ConsumerState kept = consumer;
    kept.clear_in_flight();
    kept.clear_members();
    batch_.Put(ConsumerKey(consumer.stream(), consumer.name()),
               kept.SerializeAsString());
    return absl::OkStatus();
  }

  void RemoveConsumer(const std::string& stream, const std::string& name) {
    batch_.Delete(ConsumerKey(stream, name));
  }

  absl::Status Purge(const std::string& name) {
    Staged* staged = Find(name);
    if (staged == nullptr) return Unknown(name, "purge");
    DeleteRanges(name);
    staged->reset = true;
    staged->topic_delta.clear();
    staged->pending.clear();
    staged->chunk.clear();
    staged->chunk_bytes = 0;
    staged->oldest.first_seq = 0;
    staged->topics.clear();
    staged->added.clear();
    staged->dropped.clear();
    staged->reclaim.clear();
    Empty(staged->state);
    return absl::OkStatus();
  }

  // REQUIRES: `append` outlives the writer (its chunk refers to it until
  // Finish()).
  absl::Status Append(const AppendRecord& append) {
    Staged* staged = Find(append.stream);
    if (staged == nullptr) return Unknown(append.stream, "append to");
    StreamState& state = staged->state;
    if (append.seq != state.last_seq + 1) {
      return absl::InternalError(absl::StrCat(
          "stream '", append.stream, "': append of seq ", append.seq,
          " does not follow its last seq ", state.last_seq));
    }
    if (staged->chunk.empty()) staged->chunk_first_seq = append.seq;
    staged->chunk.push_back(&append);
    staged->chunk_bytes += EntrySize(append);
    // The topic's entry is written once per batch, by Finish(): a batch of
    // thousands of messages on a few topics writes a few entries.
    if (staged->pending.empty()) staged->first_pending_seq = append.seq;
    staged->pending.push_back({append.time_unix_ms, std::string(append.topic),
                               append.record.size(), staged->chunk_first_seq,
                               /*ends_chunk=*/false});
    if (staged->chunk_bytes >= kMaxChunkBytes) Seal(*staged);
    staged->topic_delta[append.topic] = append.seq;
    if (state.messages == 0) {
      state.first_seq = append.seq;
      state.first_time_unix_ms = append.time_unix_ms;
    }
    state.last_seq = append.seq;
    state.last_time_unix_ms = append.time_unix_ms;
    ++state.messages;
    state.bytes += append.record.size();
    if (const uint64_t limit = staged->config.max_msgs_per_topic(); limit > 0) {
      HeldList& of_topic = TopicOf(*staged, append.topic);
      of_topic.push_back({append.seq, append.record.size()});
      staged->added.push_back(append.seq);
      if (of_topic.size() > limit) {
        const Held oldest = of_topic.front();
        of_topic.erase(of_topic.begin());
        DropHeld(*staged, oldest);
      }
    }
    return absl::OkStatus();
  }

  // Drops the oldest messages of `name` while its retention says so. A
  // stream that does not exist (any more) is skipped.
  absl::Status Enforce(const std::string& name) {
    Staged* staged = Find(name);
    if (staged == nullptr) return absl::OkStatus();
    // Retention may drop what this batch appended: its chunks are put first,
    // so that deleting one of them below stands.
    Seal(*staged);
    const wire::StreamConfig& config = staged->config;
    const bool per_topic = config.max_msgs_per_topic() > 0;
    if (config.max_msgs() == 0 && config.max_bytes() == 0 &&
        config.max_age_ms() == 0 && !per_topic) {
      return absl::OkStatus();
    }
    StreamState& state = staged->state;
    while (state.messages > 0) {
      absl::StatusOr<Pending> oldest = Oldest(*staged);
      if (!oldest.ok()) return oldest.status();
      if (!MustDropOldest(config, state, oldest->size, oldest->time_unix_ms,
                          now_unix_ms_)) {
        // (The per-topic limit may have dropped the oldest: first_seq moved
        // and its time with it.)
        state.first_time_unix_ms = oldest->time_unix_ms;
        break;
      }
      if (per_topic) {
        // The stream's oldest is its topic's oldest.
        HeldList& of_topic = TopicOf(*staged, oldest->topic);
        if (of_topic.empty() || of_topic.front().seq != state.first_seq) {
          return absl::DataLossError(
              absl::StrCat(dir_, ": stream '", name, "' message ",
                           state.first_seq, " is not in its topic's list"));
        }
        of_topic.erase(of_topic.begin());
        staged->topic_delta[oldest->topic] =
            of_topic.empty() ? std::nullopt
                             : std::optional<uint64_t>(of_topic.back().seq);
        DropHeld(*staged, {state.first_seq, oldest->size});
        continue;
      }
      // A chunk goes with its last message; one whose front is dropped stays,
      // read from first_seq on.
      if (oldest->ends_chunk) {
        batch_.Delete(&log_, DataKey(name, oldest->chunk_first_seq));
      }
      if (NewestOfTopic(*staged, oldest->topic) == state.first_seq) {
        staged->topic_delta[oldest->topic] = std::nullopt;
      }
      --state.messages;
      state.bytes -= std::min<uint64_t>(state.bytes, oldest->size);
      if (state.messages == 0) {
        Empty(state);
      } else {
        ++state.first_seq;
      }
    }
    return absl::OkStatus();
  }

  // Writes the topic entries and the counters of every stream touched, and
  // deletes the chunks whose messages are no longer held. Call once, last:
  // after any purge's range deletion, so what it writes stands.
  absl::StatusOr<rocksdb::WriteBatch*> Finish() {
    for (const std::string& name : order_) {
      Staged& staged = staged_.at(name);
      if (staged.removed) continue;
      Seal(staged);
      const bool per_topic = staged.config.max_msgs_per_topic() > 0;
      for (const auto& [topic, seq] : staged.topic_delta) {
        if (!seq.has_value()) {
          batch_.Delete(TopicKey(name, topic));
        } else if (per_topic) {
          batch_.Put(TopicKey(name, topic), EncodeHeld(staged.topics[topic]));
        } else {
          std::string value;
          PutU64(value, *seq);
          batch_.Put(TopicKey(name, topic), value);
        }
      }
      if (absl::Status s = Reclaim(staged); !s.ok()) return s;
      batch_.Put(CountersKey(name), EncodeCounters(staged.state));
    }
    return &batch_;
  }

  // The write succeeded: makes the staged state the committed one and
  // returns the state of every stream touched that still exists.
  std::vector<StreamState> Commit() {
    std::vector<StreamState> states;
    for (const std::string& name : order_) {
      Staged& staged = staged_.at(name);
      if (staged.removed) {
        streams_.erase(name);
        continue;
      }
      Stream& stream = streams_[name];
      stream.config = std::move(staged.config);
      stream.state = staged.state;
      if (staged.reset) {
        stream.last_per_topic.clear();
        stream.topics.clear();
        stream.held.clear();
      }
      for (auto& [topic, held] : staged.topics) {
        if (held.empty()) {
          stream.topics.erase(topic);
        } else {
          stream.topics[topic] = std::move(held);
        }
      }
      for (uint64_t seq : staged.dropped) stream.held.erase(seq);
      for (uint64_t seq : staged.added) {
        if (!staged.dropped.contains(seq)) stream.held.insert(seq);
      }
      // (With the limit, each topic's list ends with its newest.)
      for (auto& [topic, seq] : staged.topic_delta) {
        if (stream.config.max_msgs_per_topic() > 0) break;
        if (seq.has_value()) {
          stream.last_per_topic[topic] = *seq;
        } else {
          stream.last_per_topic.erase(topic);
        }
      }
      states.push_back(std::move(staged.state));
    }
    return states;
  }

 private:
  struct Pending {
    int64_t time_unix_ms = 0;
    std::string topic;
    uint64_t size = 0;
    // The chunk that holds it, and whether it is that chunk's last message.
    uint64_t chunk_first_seq = 0;
    bool ends_chunk = false;
  };
  struct Staged {
    wire::StreamConfig config;
    StreamState state;
    // Removed in this batch: unknown to what follows.
    bool removed = false;
    // New or purged in this batch: the database holds none of its messages
    // or topics that still count.
    bool reset = false;
    // Topics changed in this batch (nullopt: no message of it is held).
    absl::flat_hash_map<std::string, std::optional<uint64_t>> topic_delta;
    // Messages appended in this batch, from first_pending_seq on.
    uint64_t first_pending_seq = 0;
    std::vector<Pending> pending;
    // The chunk being filled with this batch's messages (not yet put):
    // the messages, which outlive the writer, and their entries' size.
    std::vector<const AppendRecord*> chunk;
    size_t chunk_bytes = 0;
    uint64_t chunk_first_seq = 0;
    // The stored chunk that holds the oldest message, while retention
    // walks through it.
    LoadedChunk oldest;
    // With max_msgs_per_topic, what changes beside the committed lists: the
    // topics touched (their whole new lists), sequences appended
    // (ascending) and dropped, and the dropped ones whose chunks may hold
    // nothing any more.
    absl::flat_hash_map<std::string, HeldList> topics;
    std::vector<uint64_t> added;
    absl::flat_hash_set<uint64_t> dropped;
    std::vector<uint64_t> reclaim;
  };

  // The held messages of `topic`, staged (copied from the committed list
  // when first touched).
  HeldList& TopicOf(Staged& staged, absl::string_view topic) {
    auto it = staged.topics.find(topic);
    if (it != staged.topics.end()) return it->second;
    HeldList& held = staged.topics[topic];
    if (!staged.reset) {
      auto committed = streams_.find(staged.state.name);
      if (committed != streams_.end()) {
        auto of_topic = committed->second.topics.find(topic);
        if (of_topic != committed->second.topics.end()) {
          held = of_topic->second;
        }
      }
    }
    return held;
  }

  // The committed held sequences of `staged`'s stream (none when it is new
  // or purged in this batch).
  const absl::btree_set<uint64_t>* CommittedHeld(const Staged& staged) const {
    if (staged.reset) return nullptr;
    auto committed = streams_.find(staged.state.name);
    return committed == streams_.end() ? nullptr : &committed->second.held;
  }

  // The smallest held sequence at or after `from` (0: none), as staged.
  uint64_t NextHeld(const Staged& staged, uint64_t from) const {
    if (const absl::btree_set<uint64_t>* held = CommittedHeld(staged)) {
      for (auto it = held->lower_bound(from); it != held->end(); ++it) {
        if (!staged.dropped.contains(*it)) return *it;
      }
    }
    for (auto it =
             std::lower_bound(staged.added.begin(), staged.added.end(), from);
         it != staged.added.end(); ++it) {
      if (!staged.dropped.contains(*it)) return *it;
    }
    return 0;
  }

  // Drops a held message of a stream with max_msgs_per_topic (already
  // taken off its topic's list).
  void DropHeld(Staged& staged, const Held& held) {
    staged.dropped.insert(held.seq);
    staged.reclaim.push_back(held.seq);
    StreamState& state = staged.state;
    --state.messages;
    state.bytes -= std::min<uint64_t>(state.bytes, held.size);
    if (state.messages == 0) {
      Empty(state);
    } else if (held.seq == state.first_seq) {
      state.first_seq = NextHeld(staged, held.seq + 1);
    }
  }

  // Deletes each chunk that held a message dropped in this batch and holds
  // none now.
  absl::Status Reclaim(Staged& staged) {
    if (staged.reclaim.empty()) return absl::OkStatus();
    std::sort(staged.reclaim.begin(), staged.reclaim.end());
    const std::string& name = staged.state.name;
    const uint64_t batch_end = staged.first_pending_seq + staged.pending.size();
    const uint64_t committed_end = staged.pending.empty()
                                       ? staged.state.last_seq + 1
                                       : staged.first_pending_seq;
    uint64_t done_below = 0;  // chunks ending at or below it are checked
    for (uint64_t seq : staged.reclaim) {
      if (seq < done_below) continue;
      uint64_t start = 0;
      uint64_t end = 0;
      if (!staged.pending.empty() && seq >= staged.first_pending_seq) {
        size_t i = seq - staged.first_pending_seq;
        start = staged.pending[i].chunk_first_seq;
        while (i + 1 < staged.pending.size() &&
               staged.pending[i + 1].chunk_first_seq == start) {
          ++i;
        }
        end = std::min(staged.first_pending_seq + i + 1, batch_end);
      } else {
        if (staged.reset) continue;
        ChunkIterator it(db_, log_, name, committed_end);
        it->SeekForPrev(DataKey(name, seq));
        if (!it->Valid()) {
          if (!it->status().ok()) {
            return FromRocks(
                it->status(),
                absl::StrCat(dir_, ": reading stream '", name, "' at ", seq));
          }
          continue;  // already gone
        }
        start = it.FirstSeq();
        if (start == 0) {
          return absl::DataLossError(absl::StrCat(
              dir_, ": stream '", name, "' message ", seq, " is damaged"));
        }
        it->Next();
        end = committed_end;
        if (it->Valid()) {
          if (const uint64_t next = it.FirstSeq(); next != 0) end = next;
        } else if (!it->status().ok()) {
          return FromRocks(
              it->status(),
              absl::StrCat(dir_, ": reading stream '", name, "' at ", seq));
        }
      }
      done_below = end;
      const uint64_t next = NextHeld(staged, start);
      if (next == 0 || next >= end) {
        batch_.Delete(&log_, DataKey(name, start));
      }
    }
    return absl::OkStatus();
  }

  // Puts the chunk being filled, if any, into the batch. The batch copies
  // each message's topic and record straight from the AppendRecord: one
  // copy of the payload less than building the chunk first.
  void Seal(Staged& staged) {
    if (staged.chunk.empty()) return;
    headers_.clear();
    for (const AppendRecord* append : staged.chunk) {
      AppendEntryHeader(headers_, *append);
    }
    parts_.clear();
    for (size_t i = 0; i < staged.chunk.size(); ++i) {
      parts_.emplace_back(headers_.data() + i * kEntryHeaderSize,
                          kEntryHeaderSize);
      parts_.emplace_back(Slice(staged.chunk[i]->topic));
      parts_.emplace_back(Slice(staged.chunk[i]->record));
    }
    const std::string key = DataKey(staged.state.name, staged.chunk_first_seq);
    const rocksdb::Slice key_slice(key);
    batch_.Put(
        &log_, rocksdb::SliceParts(&key_slice, 1),
        rocksdb::SliceParts(parts_.data(), static_cast<int>(parts_.size())));
    staged.pending.back().ends_chunk = true;
    staged.chunk.clear();
    staged.chunk_bytes = 0;
  }

  Staged* Find(const std::string& name) {
    auto staged = staged_.find(name);
    if (staged != staged_.end()) {
      return staged->second.removed ? nullptr : &staged->second;
    }
    auto committed = streams_.find(name);
    if (committed == streams_.end()) return nullptr;
    Staged& added = Add(name);
    added.config = committed->second.config;
    added.state = committed->second.state;
    return &added;
  }

  Staged& Add(const std::string& name) {
    order_.push_back(name);
    return staged_[name];
  }

  static absl::Status Unknown(const std::string& name, absl::string_view op) {
    return absl::NotFoundError(
        absl::StrCat("cannot ", op, " stream '", name, "': no such stream"));
  }

  void DeleteRanges(const std::string& name) {
    batch_.DeleteRange(&log_, RangeStart("d", name), RangeEnd("d", name));
    batch_.DeleteRange(RangeStart("t", name), RangeEnd("t", name));
  }

  // The stream's oldest message: from this batch, or read from the database.
  absl::StatusOr<Pending> Oldest(Staged& staged) {
    const StreamState& state = staged.state;
    if (!staged.pending.empty() &&
        state.first_seq >= staged.first_pending_seq) {
      return staged.pending[state.first_seq - staged.first_pending_seq];
    }
    if (staged.reset) {
      return absl::DataLossError(absl::StrCat(dir_, ": stream '", state.name,
                                              "' lacks its message ",
                                              state.first_seq));
    }
    LoadedChunk& chunk = staged.oldest;
    if (!chunk.Holds(state.first_seq)) {
      absl::Status loaded =
          LoadChunk(db_, log_, dir_, state.name, state.first_seq, chunk);
      if (absl::IsNotFound(loaded)) {
        return absl::DataLossError(absl::StrCat(dir_, ": ", loaded.message()));
      }
      if (!loaded.ok()) return loaded;
    }
    const ChunkEntry& entry = chunk.At(state.first_seq);
    return Pending{entry.time_unix_ms, std::string(entry.topic),
                   entry.record.size(), chunk.first_seq,
                   state.first_seq == chunk.LastSeq()};
  }

  // The newest seq of `topic` the stream holds now (0: none).
  uint64_t NewestOfTopic(const Staged& staged, const std::string& topic) {
    auto delta = staged.topic_delta.find(topic);
    if (delta != staged.topic_delta.end()) return delta->second.value_or(0);
    if (staged.reset) return 0;
    auto committed = streams_.find(staged.state.name);
    if (committed == streams_.end()) return 0;
    auto seq = committed->second.last_per_topic.find(topic);
    return seq == committed->second.last_per_topic.end() ? 0 : seq->second;
  }

  rocksdb::DB& db_;
  rocksdb::ColumnFamilyHandle& log_;
  const std::string& dir_;
  absl::flat_hash_map<std::string, Stream>& streams_;
  const int64_t now_unix_ms_;
  rocksdb::WriteBatch batch_;
  // Scratch for Seal(): entry headers, and the slices of one chunk.
  std::string headers_;
  std::vector<rocksdb::Slice> parts_;
  absl::flat_hash_map<std::string, Staged> staged_;
  std::vector<std::string> order_;  // first touched first
};

// --- The storage
// ------------------------------------------------------------------

RocksDbStreamStorage::RocksDbStreamStorage(std::string dir,
                                           std::function<void()> wake,
                                           RocksDbStreamStorageOptions options)
    : dir_(std::move(dir)),
      wake_(std::move(wake)),
      options_(options),
      read_cache_(rocksdb::NewLRUCache(options.read_cache_bytes > 0
                                           ? options.read_cache_bytes
                                           : kDefaultReadCacheBytes)),
      log_failure_(std::make_shared<RocksDbLogFailure>()),
      env_(
          rocksdb::NewCompositeEnv(std::make_shared<LogFailureNotingFileSystem>(
              options.file_system != nullptr ? options.file_system
                                             : rocksdb::FileSystem::Default(),
              log_failure_))) {
  worker_ = std::thread([this] { Run(); });
  syncer_ = std::thread([this] { SyncLoop(); });
}

size_t RocksDbStreamStorage::read_cache_capacity() const {
  return read_cache_->GetCapacity();
}

size_t RocksDbStreamStorage::read_cache_usage() const {
  return read_cache_->GetUsage();
}

RocksDbStreamStorage::~RocksDbStreamStorage() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_ready_.notify_one();
  worker_.join();
  // Only now: the storage thread may have written batches until it ended.
  {
    std::lock_guard<std::mutex> lock(mu_);
    syncer_stopping_ = true;
  }
  sync_ready_.notify_one();
  syncer_.join();
  CloseDb();
}

bool RocksDbStreamStorage::checksums_accelerated() {
  return RocksDbCrc32cAccelerated();
}

absl::StatusOr<std::vector<RecoveredStream>> RocksDbStreamStorage::Load() {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::path path(dir_);
  const bool exists = fs::exists(path, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat(dir_, ": cannot read it: ", error.message()));
  }
  if (exists && !fs::is_directory(path, error)) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir_, ": not a directory, so not a Manifold stream store"));
  }
  // What the directory holds besides lost+found (a file system's root has
  // one): nothing means a new store.
  std::string other;
  if (exists) {
    for (fs::directory_iterator it(path, error), end; !error && it != end;
         it.increment(error)) {
      std::string name = it->path().filename().string();
      if (name != "lost+found") {
        other = std::move(name);
        break;
      }
    }
    if (error) {
      return absl::UnavailableError(
          absl::StrCat(dir_, ": cannot list it: ", error.message()));
    }
  }
  const bool fresh = other.empty();
  if (!exists && !fs::create_directories(path, error) && error) {
    return absl::UnavailableError(
        absl::StrCat(dir_, ": cannot create it: ", error.message()));
  }
  if (!fresh && !fs::exists(path / "CURRENT", error)) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir_, ": not a Manifold stream store (it holds other files, such as '",
        other, "', and no database); use an empty or new directory"));
  }

  if (absl::Status opened = OpenDb(/*create=*/fresh); !opened.ok()) {
    return opened;
  }

  std::string marker;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kFormatKey, &marker);
  if (s.IsNotFound() && fresh) {
    rocksdb::WriteOptions sync;
    sync.sync = true;
    s = db_->Put(sync, kFormatKey, absl::StrCat(kFormatPrefix, kFormatVersion));
    if (!s.ok()) {
      return FromRocks(s,
                       absl::StrCat(dir_, ": cannot create the stream store"));
    }
    return std::vector<RecoveredStream>();
  }
  if (s.IsNotFound()) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir_,
        ": a RocksDB database but not a Manifold stream store (it has "
        "no format marker)"));
  }
  if (!s.ok()) {
    return FromRocks(s, absl::StrCat(dir_, ": cannot read the stream store"));
  }
  int version = 0;
  if (!absl::StartsWith(marker, kFormatPrefix) ||
      !absl::SimpleAtoi(
          absl::string_view(marker).substr(sizeof(kFormatPrefix) - 1),
          &version)) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir_, ": not a Manifold stream store (its format marker reads '",
        marker.substr(0, 64), "')"));
  }
  if (version != kFormatVersion && version != kFormatVersion - 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir_, ": stream store format ", version,
                     " is not supported (this broker reads formats ",
                     kFormatVersion - 1, " and ", kFormatVersion, ")"));
  }
  if (log_ == nullptr) return NoLog();
  if (version != kFormatVersion) {
    // Format 2 is format 3 without per-topic lists. Marked 3 before any of
    // those can be written, so that a broker that reads only format 2 refuses
    // the store by its format rather than calling it damaged.
    rocksdb::WriteOptions sync;
    sync.sync = true;
    s = db_->Put(sync, kFormatKey, absl::StrCat(kFormatPrefix, kFormatVersion));
    if (!s.ok()) {
      return FromRocks(s, absl::StrCat(dir_,
                                       ": cannot mark the stream store "
                                       "format ",
                                       kFormatVersion));
    }
  }

  if (absl::Status read = ReadStreams(streams_); !read.ok()) return read;
  std::vector<RecoveredStream> recovered;
  recovered.reserve(streams_.size());
  for (const auto& [name, stream] : streams_) {
    RecoveredStream& out = recovered.emplace_back();
    out.config = stream.config;
    out.state = stream.state;
    out.last_per_topic.assign(stream.last_per_topic.begin(),
                              stream.last_per_topic.end());
    for (const auto& [topic, held] : stream.topics) {
      out.last_per_topic.emplace_back(topic, held.back().seq);
    }
    out.consumers = stream.consumers;
    std::sort(out.last_per_topic.begin(), out.last_per_topic.end());
  }
  std::sort(recovered.begin(), recovered.end(),
            [](const RecoveredStream& a, const RecoveredStream& b) {
              return a.state.name < b.state.name;
            });
  return recovered;
}

absl::Status RocksDbStreamStorage::OpenDb(bool create) {
  rocksdb::DBOptions options;
  options.create_if_missing = create;
  options.create_missing_column_families = create;
  options.paranoid_checks = true;
  // A record torn by a crash ends the replay: it and what follows were
  // never reported done with `sync`. Damage anywhere else fails the open.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  options.info_log = std::make_shared<StderrLogger>(dir_);
  options.env = env_.get();  // always set: it notes log write failures

  // The small keys: configurations, counters, topics, consumers.
  // Both families read through one cache of a stated size.
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = read_cache_;
  rocksdb::ColumnFamilyOptions meta;
  meta.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  meta.compression = rocksdb::kNoCompression;
  meta.write_buffer_size = 8 << 20;
  // The messages. Stored as they came: compressing each flushed file cost
  // as much CPU as storing the messages did, on the machine that routes
  // them. A log is written once and dropped from its old end: fewer, larger
  // memtable flushes leave the CPU to the broker.
  rocksdb::ColumnFamilyOptions log;
  log.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  log.compression = rocksdb::kNoCompression;
  log.write_buffer_size = 128 << 20;
  log.level0_file_num_compaction_trigger = 8;
  if (options_.write_buffer_bytes > 0) {
    log.write_buffer_size = options_.write_buffer_bytes;
  }
  // A write-ahead log file is deleted once every family flushed what it
  // holds; the small keys' family would keep them for long (RocksDB's
  // default bound is about 1 GiB). Past this much, RocksDB flushes it.
  options.max_total_wal_size = 3 * log.write_buffer_size;
  // Filling page-cache pages the kernel must find anew cost more than the
  // rest of storing a message of 1 KiB: flushed tables bypass the page
  // cache where the file system allows it. (The write-ahead log cannot:
  // RocksDB writes it buffered, and recycling its files, which would write
  // over pages the kernel holds, is off with point-in-time recovery.)
  options.use_direct_io_for_flush_and_compaction = AllowsDirectIo(dir_);

  // Opens every column family the database has (RocksDB requires it), and
  // the log's when creating it.
  std::vector<std::string> names;
  if (!create) {
    rocksdb::Status listed =
        rocksdb::DB::ListColumnFamilies(options, dir_, &names);
    if (!listed.ok()) {
      if (listed.IsCorruption()) {
        return absl::DataLossError(absl::StrCat(
            dir_, ": the stream store is damaged: ", listed.ToString()));
      }
      return FromRocks(listed,
                       absl::StrCat(dir_, ": cannot open the stream store"));
    }
  } else {
    names = {rocksdb::kDefaultColumnFamilyName};
  }
  if (std::find(names.begin(), names.end(), kLogFamily) == names.end() &&
      create) {
    names.push_back(kLogFamily);
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : names) {
    families.emplace_back(name, name == kLogFamily ? log : meta);
  }
  rocksdb::DB* raw = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s =
      rocksdb::DB::Open(options, dir_, families, &handles, &raw);
  if (!s.ok()) {
    if (s.IsCorruption()) {
      return absl::DataLossError(
          absl::StrCat(dir_, ": the stream store is damaged: ", s.ToString()));
    }
    return FromRocks(s, absl::StrCat(dir_, ": cannot open the stream store"));
  }
  db_.reset(raw);
  // The default family's handle is the database's own; others are ours.
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    if (handle->GetName() == kLogFamily) {
      log_.reset(handle);
    } else {
      db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    }
  }
  return absl::OkStatus();
}

absl::Status RocksDbStreamStorage::NoLog() const {
  return absl::DataLossError(
      absl::StrCat(dir_, ": the stream store is damaged: it has no '",
                   kLogFamily, "' column family for its messages"));
}

void RocksDbStreamStorage::CloseDb() {
  if (db_ == nullptr) return;
  if (log_ != nullptr) {
    db_->DestroyColumnFamilyHandle(log_.release()).PermitUncheckedError();
  }
  db_->Close().PermitUncheckedError();
  db_.reset();
}

absl::Status RocksDbStreamStorage::ReadStreams(
    absl::flat_hash_map<std::string, Stream>& streams) {
  auto damaged = [this](absl::string_view what) {
    return absl::DataLossError(
        absl::StrCat(dir_, ": the stream store is damaged: ", what));
  };
  // Visits every key that starts with `prefix`.
  auto scan = [&](absl::string_view prefix, auto&& visit) -> absl::Status {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(Slice(prefix)); it->Valid(); it->Next()) {
      absl::string_view key = View(it->key());
      if (!absl::StartsWith(key, prefix)) break;
      absl::Status status = visit(key.substr(prefix.size()), View(it->value()));
      if (!status.ok()) return status;
    }
    if (!it->status().ok()) {
      if (it->status().IsCorruption()) return damaged(it->status().ToString());
      return FromRocks(it->status(),
                       absl::StrCat(dir_, ": cannot read the stream store"));
    }
    return absl::OkStatus();
  };

  absl::Status status =
      scan("s/", [&](absl::string_view name, absl::string_view value) {
        Stream& stream = streams[std::string(name)];
        if (!stream.config.ParseFromArray(value.data(),
                                          static_cast<int>(value.size())) ||
            stream.config.name() != name) {
          return damaged(absl::StrCat("the configuration of stream '", name,
                                      "' does not read back"));
        }
        stream.state.name = std::string(name);
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  absl::flat_hash_set<std::string> counted;
  status = scan("c/", [&](absl::string_view name, absl::string_view value) {
    auto stream = streams.find(name);
    if (stream == streams.end()) {
      return damaged(absl::StrCat("stream '", name,
                                  "' has counters but no configuration"));
    }
    if (!DecodeCounters(value, stream->second.state)) {
      return damaged(absl::StrCat("the counters of stream '", name, "' are ",
                                  value.size(), " bytes, not ", kCountersSize));
    }
    counted.insert(std::string(name));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  status = scan("t/", [&](absl::string_view rest, absl::string_view value) {
    size_t end = rest.find('\0');
    auto stream = end == absl::string_view::npos
                      ? streams.end()
                      : streams.find(rest.substr(0, end));
    if (stream == streams.end()) {
      return damaged("a topic entry belongs to no stream");
    }
    Stream& of = stream->second;
    std::string topic(rest.substr(end + 1));
    if (of.config.max_msgs_per_topic() == 0) {
      if (value.size() != 8) {
        return damaged(absl::StrCat("the entry of topic '", topic,
                                    "' of stream '", of.config.name(), "' is ",
                                    value.size(), " bytes, not 8"));
      }
      of.last_per_topic[topic] = GetU64(value.data());
      return absl::OkStatus();
    }
    if (value.empty() || value.size() % 16 != 0) {
      return damaged(absl::StrCat("the held list of topic '", topic,
                                  "' of stream '", of.config.name(), "' is ",
                                  value.size(), " bytes"));
    }
    HeldList& held = of.topics[topic];
    for (size_t i = 0; i < value.size(); i += 16) {
      const Held h{GetU64(value.data() + i), GetU64(value.data() + i + 8)};
      if ((!held.empty() && h.seq <= held.back().seq) ||
          !of.held.insert(h.seq).second) {
        return damaged(absl::StrCat("the held list of topic '", topic,
                                    "' of stream '", of.config.name(),
                                    "' repeats or disorders seq ", h.seq));
      }
      held.push_back(h);
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  status = scan("k/", [&](absl::string_view rest, absl::string_view value) {
    size_t end = rest.find('\0');
    auto stream = end == absl::string_view::npos
                      ? streams.end()
                      : streams.find(rest.substr(0, end));
    wire::ConsumerState consumer;
    if (stream == streams.end() ||
        !consumer.ParseFromArray(value.data(),
                                 static_cast<int>(value.size())) ||
        consumer.name() != rest.substr(end + 1)) {
      return damaged("a durable consumer belongs to no stream");
    }
    stream->second.consumers.push_back(std::move(consumer));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;

  for (const auto& [name, stream] : streams) {
    const StreamState& state = stream.state;
    if (!counted.contains(name)) {
      return damaged(absl::StrCat("stream '", name, "' has no counters"));
    }
    if (stream.config.max_msgs_per_topic() > 0) {
      // The topics' lists say what is held; the counters must agree.
      uint64_t bytes = 0;
      for (const auto& [topic, held] : stream.topics) {
        for (const Held& h : held) bytes += h.size;
      }
      if (stream.held.size() != state.messages || bytes != state.bytes ||
          (state.messages > 0 && (*stream.held.begin() != state.first_seq ||
                                  *stream.held.rbegin() != state.last_seq))) {
        return damaged(absl::StrCat("the counters of stream '", name,
                                    "' do not match its topics' lists"));
      }
    } else if (state.messages > 0 &&
               (state.first_seq == 0 || state.last_seq < state.first_seq ||
                state.last_seq - state.first_seq + 1 != state.messages)) {
      return damaged(
          absl::StrCat("the counters of stream '", name, "' do not add up"));
    }
    if (state.messages > 0) {
      for (uint64_t seq : {state.first_seq, state.last_seq}) {
        LoadedChunk chunk;
        absl::Status loaded = LoadChunk(*db_, *log_, dir_, name, seq, chunk);
        if (absl::IsNotFound(loaded)) return damaged(loaded.message());
        if (!loaded.ok()) return loaded;
      }
    }
  }
  return absl::OkStatus();
}

void RocksDbStreamStorage::Write(StorageBatch batch) {
  Enqueue(std::move(batch));
}

void RocksDbStreamStorage::Read(ReadRequest read) { Enqueue(std::move(read)); }

void RocksDbStreamStorage::Poll(std::vector<StorageCompletion>& out) {
  std::lock_guard<std::mutex> lock(mu_);
  for (StorageCompletion& done : done_) out.push_back(std::move(done));
  done_.clear();
}

void RocksDbStreamStorage::Enqueue(Work work) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(work));
  }
  work_ready_.notify_one();
}

void RocksDbStreamStorage::Run() {
  while (true) {
    Work work;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and all done
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    if (StorageBatch* batch = std::get_if<StorageBatch>(&work)) {
      BatchDone done = Execute(*batch);
      const bool needs_sync = batch->sync && done.status.ok();
      Written(std::move(done), needs_sync);
      continue;
    }
    // What a read returns, a crash must not take back after a subscriber
    // saw it.
    WaitForSyncs();
    StorageCompletion completion;
    completion.kind = StorageCompletion::Kind::kRead;
    completion.read = Execute(std::get<ReadRequest>(work));
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_.push_back(std::move(completion));
    }
    if (wake_) wake_();
  }
}

void RocksDbStreamStorage::Written(BatchDone done, bool needs_sync) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (needs_sync || !unsynced_.empty()) {
      unsynced_.push_back(Unsynced{std::move(done), needs_sync});
      sync_ready_.notify_one();
      return;
    }
    StorageCompletion& completion = done_.emplace_back();
    completion.kind = StorageCompletion::Kind::kBatch;
    completion.batch = std::move(done);
  }
  if (wake_) wake_();
}

void RocksDbStreamStorage::WaitForSyncs() {
  std::unique_lock<std::mutex> lock(mu_);
  synced_.wait(lock, [this] { return unsynced_.empty(); });
}

void RocksDbStreamStorage::SyncLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    sync_ready_.wait(lock,
                     [this] { return syncer_stopping_ || !unsynced_.empty(); });
    if (unsynced_.empty()) return;  // stopping, and all done
    // Every batch queued now was written before this sync begins, so the
    // sync covers them all. db_ stays open meanwhile: the storage thread
    // reopens it only once unsynced_ is empty.
    const size_t count = unsynced_.size();
    bool needs_sync = false;
    for (size_t i = 0; i < count; ++i) needs_sync |= unsynced_[i].needs_sync;
    absl::Status synced = sync_failed_;
    if (needs_sync && synced.ok()) {
      lock.unlock();
      rocksdb::Status s;
      {
        std::lock_guard<std::mutex> gate(log_failure_->mu);
        if (!log_failure_->failed) {
          s = db_->SyncWAL();
        } else {
          // A write to the log failed after these were written: RocksDB
          // syncs that log no more, so sync its files here.
          std::lock_guard<std::mutex> logs(log_failure_->logs_mu);
          for (rocksdb::FSWritableFile* log : log_failure_->logs) {
            s = log->Sync(rocksdb::IOOptions(), nullptr);
            if (!s.ok()) break;
          }
          // And the directory, which holds a log's name (SyncWAL syncs it
          // once after a new log).
          std::unique_ptr<rocksdb::FSDirectory> directory;
          if (s.ok()) {
            s = env_->GetFileSystem()->NewDirectory(dir_, rocksdb::IOOptions(),
                                                    &directory, nullptr);
          }
          if (s.ok()) s = directory->Fsync(rocksdb::IOOptions(), nullptr);
        }
      }
      lock.lock();
      if (!s.ok()) {
        synced = FromRocks(s, absl::StrCat(dir_, ": syncing the log"));
        sync_failed_ = synced;
      }
    }
    for (size_t i = 0; i < count; ++i) {
      StorageCompletion& completion = done_.emplace_back();
      completion.kind = StorageCompletion::Kind::kBatch;
      completion.batch = std::move(unsynced_.front().done);
      unsynced_.pop_front();
      if (!synced.ok() && completion.batch.status.ok()) {
        completion.batch.status = synced;
        completion.batch.states.clear();
      }
    }
    synced_.notify_all();
    lock.unlock();
    if (wake_) wake_();
    lock.lock();
  }
}

absl::Status RocksDbStreamStorage::Recover() {
  if (db_ == nullptr && !needs_reopen_) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir_, ": the stream store is not loaded"));
  }
  if (diverged_.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!sync_failed_.ok()) {
      diverged_ = absl::UnavailableError(absl::StrCat(
          sync_failed_.message(),
          "; what reached the disk is unknown: restart the broker to load "
          "what it holds"));
    }
  }
  if (!diverged_.ok()) return diverged_;
  if (!needs_reopen_) return absl::OkStatus();
  // The sync thread uses db_ while batches wait for it.
  WaitForSyncs();
  // RocksDB 7.8 cannot go on writing after a failed write to its log (the
  // log's writer stays failed, and DB::Resume() leaves it in place), so
  // close the database and open it again: that replays the log up to the
  // last batch written and starts a new one. Fails while the cause (a full
  // disk) persists; the next batch or read tries again.
  CloseDb();
  {
    // The logs of the closed database are closed; the new one's start
    // without a failure.
    std::lock_guard<std::mutex> gate(log_failure_->mu);
    log_failure_->failed = false;
  }
  if (absl::Status opened = OpenDb(/*create=*/false); !opened.ok()) {
    return opened;
  }
  if (log_ == nullptr) {
    CloseDb();
    return NoLog();
  }
  absl::flat_hash_map<std::string, Stream> held;
  if (absl::Status read = ReadStreams(held); !read.ok()) {
    CloseDb();
    return read;
  }
  needs_reopen_ = false;
  if (!SameStreams(held, streams_)) {
    // A batch reported failed reached the disk after all (its write failed
    // only after the log held it): the Broker's view and the store differ.
    diverged_ = absl::InternalError(absl::StrCat(
        dir_,
        ": after an I/O error the store holds a batch that was reported "
        "failed; restart the broker to load what it holds"));
    return diverged_;
  }
  return absl::OkStatus();
}

bool RocksDbStreamStorage::SameStreams(
    const absl::flat_hash_map<std::string, Stream>& a,
    const absl::flat_hash_map<std::string, Stream>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, stream] : a) {
    auto other = b.find(name);
    if (other == b.end() ||
        stream.config.SerializeAsString() !=
            other->second.config.SerializeAsString() ||
        !SameState(stream.state, other->second.state) ||
        stream.last_per_topic != other->second.last_per_topic ||
        stream.held != other->second.held) {
      return false;
    }
  }
  return true;
}

BatchDone RocksDbStreamStorage::Execute(StorageBatch& batch) {
  BatchDone done;
  done.id = batch.id;
  if (absl::Status ready = Recover(); !ready.ok()) {
    done.status = ready;
    return done;
  }
  // The WriteBatch is sized once for the messages it will carry: growing it
  // copied every byte written so far, each time it doubled.
  size_t reserve = 4096;
  for (const AppendRecord& append : batch.appends) {
    // Its chunk entry, and a share of chunk keys and topic entries.
    reserve += EntrySize(append) + 16;
  }
  BatchWriter writer(*db_, *log_, dir_, streams_, batch.now_unix_ms, reserve);
  auto apply = [&]() -> absl::Status {
    for (const wire::StreamConfig& config : batch.put_streams) {
      if (absl::Status s = writer.Put(config); !s.ok()) return s;
    }
    for (const std::string& name : batch.remove_streams) {
      if (absl::Status s = writer.Remove(name); !s.ok()) return s;
    }
    for (const std::string& name : batch.purge_streams) {
      if (absl::Status s = writer.Purge(name); !s.ok()) return s;
    }
    for (const wire::ConsumerState& consumer : batch.put_consumers) {
      if (absl::Status s = writer.PutConsumer(consumer); !s.ok()) return s;
    }
    for (const auto& [stream, name] : batch.remove_consumers) {
      writer.RemoveConsumer(stream, name);
    }
    std::vector<const std::string*> enforce;
    absl::flat_hash_set<absl::string_view> seen;
    for (const AppendRecord& append : batch.appends) {
      if (absl::Status s = writer.Append(append); !s.ok()) return s;
      if (seen.insert(append.stream).second) enforce.push_back(&append.stream);
    }
    for (const std::string& name : batch.enforce_streams) {
      if (seen.insert(name).second) enforce.push_back(&name);
    }
    for (const std::string* name : enforce) {
      if (absl::Status s = writer.Enforce(*name); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
  if (absl::Status s = apply(); !s.ok()) {
    done.status = s;
    needs_reopen_ = IsIoError(s);
    return done;
  }
  absl::StatusOr<rocksdb::WriteBatch*> finished = writer.Finish();
  if (!finished.ok()) {
    done.status = finished.status();
    needs_reopen_ = IsIoError(done.status);
    return done;
  }
  // Not synced here: the sync thread does it (SyncLoop) while this thread
  // writes the next batch.
  rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), *finished);
  if (!s.ok()) {
    done.status = FromRocks(s, absl::StrCat(dir_, ": writing"));
    needs_reopen_ = IsIoError(done.status);
    return done;
  }
  done.states = writer.Commit();
  return done;
}

ReadDone RocksDbStreamStorage::Execute(const ReadRequest& read) {
  ReadDone done;
  done.id = read.id;
  if (absl::Status ready = Recover(); !ready.ok()) {
    done.status = ready;
    return done;
  }
  auto found = streams_.find(read.stream);
  if (found == streams_.end()) {
    done.status = absl::NotFoundError(
        absl::StrCat("cannot read stream '", read.stream, "': no such stream"));
    return done;
  }
  const StreamState& state = found->second.state;
  // With max_msgs_per_topic, sequences between first_seq and last_seq may
  // not be held (and their chunks may be gone): `held` says which are.
  const bool per_topic = found->second.config.max_msgs_per_topic() > 0;
  const absl::btree_set<uint64_t>& held = found->second.held;
  const size_t max_messages = std::max<size_t>(read.max_messages, 1);
  size_t bytes = 0;
  // Takes one message unless a limit says stop first; returns whether to
  // read on.
  auto take = [&](uint64_t seq, absl::string_view record) {
    if (!done.messages.empty() && bytes + record.size() > read.max_bytes) {
      return false;
    }
    done.messages.push_back({seq, std::string(record)});
    bytes += record.size();
    return done.messages.size() < max_messages && bytes < read.max_bytes;
  };
  auto failed = [&](const rocksdb::Status& s, uint64_t seq) {
    done.messages.clear();
    done.status = FromRocks(
        s, absl::StrCat(dir_, ": reading stream '", read.stream, "' at ", seq));
    return done;
  };
  auto damaged = [&](uint64_t seq) {
    done.messages.clear();
    done.status = absl::DataLossError(absl::StrCat(
        dir_, ": stream '", read.stream, "' message ", seq, " is damaged"));
    return done;
  };
  const bool holds = state.messages > 0;

  // The chunk that holds `seq`, loaded unless it already is; false (with
  // `done` failed) when the stream's messages do not read back.
  LoadedChunk chunk;
  absl::Status trouble;
  auto load = [&](uint64_t seq) {
    if (chunk.Holds(seq)) return true;
    trouble = LoadChunk(*db_, *log_, dir_, read.stream, seq, chunk);
    return trouble.ok();
  };
  auto fail = [&]() {
    done.messages.clear();
    done.status =
        absl::IsNotFound(trouble)
            ? absl::DataLossError(absl::StrCat(dir_, ": ", trouble.message()))
            : trouble;
    return done;
  };

  if (!read.seqs.empty()) {
    for (uint64_t seq : read.seqs) {
      if (!holds || seq < state.first_seq || seq > state.last_seq) continue;
      if (per_topic && !held.contains(seq)) continue;
      if (!load(seq)) return fail();
      if (!take(seq, chunk.At(seq).record)) break;
    }
    done.next_seq = done.messages.empty() ? state.last_seq + 1
                                          : done.messages.back().seq + 1;
    return done;
  }

  uint64_t start = std::max(read.from_seq, state.first_seq);
  if (holds && read.since_unix_ms > state.first_time_unix_ms &&
      start <= state.last_seq) {
    // Times do not go down within a stream: binary-search the first message
    // at or after `since` (probes close to each other share a chunk).
    uint64_t lo = start;
    uint64_t hi = state.last_seq + 1;
    while (lo < hi) {
      uint64_t mid = lo + (hi - lo) / 2;
      // The message probed: `mid`, or the first held one after it.
      uint64_t probe = mid;
      if (per_topic) {
        auto next_held = held.lower_bound(mid);
        if (next_held == held.end() || *next_held >= hi) {
          hi = mid;
          continue;
        }
        probe = *next_held;
      }
      if (!load(probe)) return fail();
      if (chunk.At(probe).time_unix_ms < read.since_unix_ms) {
        lo = probe + 1;
      } else {
        hi = mid;
      }
    }
    start = lo;
  }
  if (holds && read.last > 0) {
    // The last-th newest message up to last_through.
    uint64_t from_last = 1;
    if (per_topic) {
      auto it = held.upper_bound(read.last_through);
      uint64_t n = 0;
      for (; n < read.last && it != held.begin(); ++n) --it;
      from_last = n == 0 ? read.last_through + 1 : *it;
    } else if (read.last < read.last_through) {
      from_last = read.last_through - read.last + 1;
    }
    start = std::max(start, from_last);
  }
  if (holds && start <= state.last_seq) {
    // From the chunk holding `start` on, chunk after chunk; the entries
    // before `start` (and, in the first chunk, before first_seq) are skipped.
    ChunkIterator it(*db_, *log_, read.stream, state.last_seq + 1);
    std::vector<ChunkEntry> entries;
    uint64_t next = start;  // the seq to take next
    bool reading = true;
    for (it->SeekForPrev(DataKey(read.stream, start)); reading && it->Valid();
         it->Next()) {
      const uint64_t first = it.FirstSeq();
      if (first == 0 || !DecodeChunk(View(it->value()), entries)) {
        return damaged(next);
      }
      if (first > next) {
        if (!per_topic) break;  // a gap: reported below
        next = first;  // a chunk none of whose messages is held is gone
      }
      for (uint64_t i = next - first; i < entries.size(); ++i) {
        if (per_topic && !held.contains(next)) {
          ++next;
          continue;
        }
        if (!take(next, entries[i].record)) {
          reading = false;
          break;
        }
        ++next;
      }
    }
    if (!it->status().ok()) return failed(it->status(), next);
    if (reading && (per_topic ? held.lower_bound(next) != held.end()
                              : next <= state.last_seq)) {
      if (per_topic) next = *held.lower_bound(next);
      trouble = absl::NotFoundError(
          absl::StrCat("stream '", read.stream, "' lacks its message ", next));
      return fail();
    }
  }
  done.next_seq = done.messages.empty()
                      ? std::max(read.from_seq, state.last_seq + 1)
                      : done.messages.back().seq + 1;
  return done;
}

}  // namespace manifold
