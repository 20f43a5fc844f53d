// RocksDbStreamStorage: batches and reads through its storage thread, against
// a real database in a scratch directory, and the stores Load() must refuse.

#include "transports/storage/rocksdb_stream_storage.h"

#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/storage/memory_stream_storage.h"
#include "core/manifold.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/file_system.h"
#include "rocksdb/iterator.h"
#include "rocksdb/options.h"

namespace manifold {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A serialized wire::StoredMessage.
std::string Record(const std::string& topic, const std::string& payload,
                   int64_t time_unix_ms) {
  wire::StoredMessage message;
  message.set_topic(topic);
  message.set_payload(payload);
  message.set_time_unix_ms(time_unix_ms);
  return message.SerializeAsString();
}

wire::StreamConfig Config(const std::string& name, uint64_t max_msgs = 0,
                          uint64_t max_bytes = 0, uint64_t max_age_ms = 0) {
  wire::StreamConfig config;
  config.set_name(name);
  config.add_topics("orders/**");
  config.set_max_msgs(max_msgs);
  config.set_max_bytes(max_bytes);
  config.set_max_age_ms(max_age_ms);
  return config;
}

// Adds a message to `batch`'s appends, its topic and record in the batch.
void Append(StorageBatch& batch, const std::string& stream, uint64_t seq,
            const std::string& topic, int64_t time_unix_ms,
            const std::string& payload = "payload") {
  AppendRecord& append = batch.appends.emplace_back();
  append.stream = stream;
  append.seq = seq;
  append.topic = batch.Keep(topic);
  append.time_unix_ms = time_unix_ms;
  append.record = batch.Keep(Record(topic, payload, time_unix_ms));
}

std::vector<uint64_t> Seqs(const ReadDone& done) {
  std::vector<uint64_t> seqs;
  for (const StoredRecord& r : done.messages) seqs.push_back(r.seq);
  return seqs;
}

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// The first seq of every chunk of `stream` in `db`, a store opened
// directly.
std::vector<uint64_t> ChunkKeys(const std::string& stream, rocksdb::DB& db,
                                rocksdb::ColumnFamilyHandle& log) {
  std::vector<uint64_t> chunks;
  const std::string prefix = absl::StrCat("d/", stream, std::string(1, '\0'));
  std::unique_ptr<rocksdb::Iterator> it(
      db.NewIterator(rocksdb::ReadOptions(), &log));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    uint64_t seq = 0;
    for (int i = 0; i < 8; ++i) {
      seq = (seq << 8) | static_cast<uint8_t>(it->key()[prefix.size() + i]);
    }
    chunks.push_back(seq);
  }
  return chunks;
}

// The machine's file system, except that syncs of write-ahead log files
// (named *.log) can be held back or made to fail on cue.
class LogSyncGate final : public rocksdb::FileSystemWrapper {
 public:
  LogSyncGate() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}

  const char* Name() const override { return "LogSyncGate"; }

  // From now on, a log sync waits until Release().
  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = true;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_ = false;
    }
    changed_.notify_all();
  }
  // Whether log syncs fail (with an I/O error) from now on.
  void Fail(bool failing) {
    std::lock_guard<std::mutex> lock(mu_);
    failing_ = failing;
  }
  // Blocks until a log sync waits in Hold(); false after 10 s.
  bool AwaitHeldSync() {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, std::chrono::seconds(10),
                             [this] { return waiting_ > 0; });
  }

  rocksdb::IOStatus NewWritableFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* file,
      rocksdb::IODebugContext* debug) override {
    rocksdb::IOStatus s =
        FileSystemWrapper::NewWritableFile(name, options, file, debug);
    return Gate(name, s, file);
  }
  rocksdb::IOStatus ReuseWritableFile(
      const std::string& name, const std::string& old_name,
      const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* file,
      rocksdb::IODebugContext* debug) override {
    rocksdb::IOStatus s = FileSystemWrapper::ReuseWritableFile(
        name, old_name, options, file, debug);
    return Gate(name, s, file);
  }

 private:
  class GatedFile final : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    GatedFile(std::unique_ptr<rocksdb::FSWritableFile> file, LogSyncGate& gate)
        : FSWritableFileOwnerWrapper(std::move(file)), gate_(gate) {}
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* debug) override {
      rocksdb::IOStatus s = gate_.Pass();
      return s.ok() ? FSWritableFileOwnerWrapper::Sync(options, debug) : s;
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* debug) override {
      rocksdb::IOStatus s = gate_.Pass();
      return s.ok() ? FSWritableFileOwnerWrapper::Fsync(options, debug) : s;
    }

   private:
    LogSyncGate& gate_;
  };

  rocksdb::IOStatus Gate(const std::string& name, rocksdb::IOStatus s,
                         std::unique_ptr<rocksdb::FSWritableFile>* file) {
    if (s.ok() && absl::EndsWith(name, ".log")) {
      *file = std::make_unique<GatedFile>(std::move(*file), *this);
    }
    return s;
  }

  rocksdb::IOStatus Pass() {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return !held_; });
    --waiting_;
    if (failing_) return rocksdb::IOStatus::IOError("injected sync failure");
    return rocksdb::IOStatus::OK();
  }

  std::mutex mu_;
  std::condition_variable changed_;
  bool held_ = false;     // guarded by mu_
  bool failing_ = false;  // guarded by mu_
  int waiting_ = 0;       // guarded by mu_
};

class RocksDbStreamStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* test =
        ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           absl::StrCat("rocksdb_stream_storage_", getpid(), "_", test->name());
    fs::remove_all(dir_);
  }

  void TearDown() override {
    storage_.reset();
    fs::remove_all(dir_);
  }

  // A new storage on dir_ (the previous one closed first), loaded.
  std::vector<RecoveredStream> Open(RocksDbStreamStorageOptions options = {}) {
    storage_.reset();
    storage_ = std::make_unique<RocksDbStreamStorage>(
        dir_.string(), [this] { wakes_.fetch_add(1); }, options);
    absl::StatusOr<std::vector<RecoveredStream>> loaded = storage_->Load();
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return loaded.ok() ? *std::move(loaded) : std::vector<RecoveredStream>();
  }

  // A new storage on dir_ over a LogSyncGate, loaded; the gate.
  std::shared_ptr<LogSyncGate> OpenGated() {
    auto gate = std::make_shared<LogSyncGate>();
    RocksDbStreamStorageOptions options;
    options.file_system = gate;
    Open(options);
    return gate;
  }

  // Load() on dir_ in a new storage; the error it returns.
  absl::Status LoadError() {
    storage_.reset();
    storage_ = std::make_unique<RocksDbStreamStorage>(dir_.string(), nullptr);
    absl::StatusOr<std::vector<RecoveredStream>> loaded = storage_->Load();
    EXPECT_FALSE(loaded.ok());
    return loaded.status();
  }

  // The next completion; fails the test after 10 s.
  StorageCompletion Next() {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (pending_.empty() && absl::Now() < deadline) {
      storage_->Poll(pending_);
      if (pending_.empty()) absl::SleepFor(absl::Milliseconds(1));
    }
    if (pending_.empty()) {
      ADD_FAILURE() << "no completion within 10 s";
      return {};
    }
    StorageCompletion next = std::move(pending_.front());
    pending_.erase(pending_.begin());
    return next;
  }

  BatchDone Write(StorageBatch batch) {
    batch.id = ++next_id_;
    storage_->Write(std::move(batch));
    StorageCompletion done = Next();
    EXPECT_EQ(done.kind, StorageCompletion::Kind::kBatch);
    EXPECT_EQ(done.batch.id, next_id_);
    return std::move(done.batch);
  }

  ReadDone Read(ReadRequest read) {
    read.id = ++next_id_;
    storage_->Read(std::move(read));
    StorageCompletion done = Next();
    EXPECT_EQ(done.kind, StorageCompletion::Kind::kRead);
    EXPECT_EQ(done.read.id, next_id_);
    return std::move(done.read);
  }

  ReadDone ReadFrom(const std::string& stream, uint64_t from_seq) {
    ReadRequest read;
    read.stream = stream;
    read.from_seq = from_seq;
    return Read(std::move(read));
  }

  // Creates `name` and appends `count` messages on topics t0, t1, t0, ...,
  // with times 1000, 1010, ...
  BatchDone CreateWith(const wire::StreamConfig& config, int count,
                       int64_t now_unix_ms = 1000) {
    StorageBatch batch;
    batch.put_streams.push_back(config);
    for (int i = 0; i < count; ++i) {
      Append(batch, config.name(), i + 1, absl::StrCat("orders/t", i % 2),
             1000 + 10 * i);
    }
    batch.now_unix_ms = now_unix_ms;
    return Write(std::move(batch));
  }

  // Opens the store in dir_ directly, with both its column families, and
  // runs `use` on it: the database, the default family and the messages'.
  // REQUIRES: storage_ is closed.
  void WithRawStore(
      const std::function<void(rocksdb::DB&, rocksdb::ColumnFamilyHandle&,
                               rocksdb::ColumnFamilyHandle&)>& use) {
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
        {"log", rocksdb::ColumnFamilyOptions()}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(), dir_.string(),
                                          families, &handles, &db);
    ASSERT_TRUE(s.ok()) << s.ToString();
    use(*db, *handles[0], *handles[1]);
    for (rocksdb::ColumnFamilyHandle* handle : handles) {
      EXPECT_TRUE(db->DestroyColumnFamilyHandle(handle).ok());
    }
    delete db;
  }

  fs::path dir_;
  std::unique_ptr<RocksDbStreamStorage> storage_;
  std::atomic<int> wakes_{0};
  uint64_t next_id_ = 0;
  std::vector<StorageCompletion> pending_;
};

TEST_F(RocksDbStreamStorageTest, NewDirectoryLoadsEmpty) {
  EXPECT_TRUE(Open().empty());
  EXPECT_TRUE(fs::exists(dir_ / "CURRENT"));
}

TEST_F(RocksDbStreamStorageTest, DirectoryWithOnlyLostAndFoundIsNew) {
  fs::create_directories(dir_ / "lost+found");
  EXPECT_TRUE(Open().empty());
  EXPECT_TRUE(Open().empty());  // and it opens again as a store
}

TEST_F(RocksDbStreamStorageTest, AppendsAndReadsBackFromSeq) {
  Open();
  BatchDone done = CreateWith(Config("orders"), 5);
  ASSERT_TRUE(done.status.ok()) << done.status;
  ASSERT_EQ(done.states.size(), 1u);
  const StreamState& state = done.states[0];
  EXPECT_EQ(state.name, "orders");
  EXPECT_EQ(state.first_seq, 1u);
  EXPECT_EQ(state.last_seq, 5u);
  EXPECT_EQ(state.messages, 5u);
  EXPECT_EQ(state.first_time_unix_ms, 1000);
  EXPECT_EQ(state.last_time_unix_ms, 1040);
  uint64_t bytes = 0;
  for (int i = 0; i < 5; ++i) {
    bytes += Record(absl::StrCat("orders/t", i % 2), "payload", 1000 + 10 * i)
                 .size();
  }
  EXPECT_EQ(state.bytes, bytes);

  ReadDone all = ReadFrom("orders", 1);
  ASSERT_TRUE(all.status.ok()) << all.status;
  EXPECT_EQ(Seqs(all), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(all.messages[2].record, Record("orders/t0", "payload", 1020));
  EXPECT_EQ(all.next_seq, 6u);

  ReadDone tail = ReadFrom("orders", 4);
  EXPECT_EQ(Seqs(tail), (std::vector<uint64_t>{4, 5}));
  EXPECT_EQ(tail.next_seq, 6u);

  ReadDone past = ReadFrom("orders", 9);
  EXPECT_TRUE(past.status.ok());
  EXPECT_TRUE(past.messages.empty());
  EXPECT_EQ(past.next_seq, 9u);
}

// Batches of 4 KiB messages: each batch fills several chunks, and every
// way of reading crosses chunk boundaries.
TEST_F(RocksDbStreamStorageTest, ReadsGoThroughACacheOfTheStatedSize) {
  Open();
  EXPECT_EQ(storage_->read_cache_capacity(),
            RocksDbStreamStorage::kDefaultReadCacheBytes);
  RocksDbStreamStorageOptions options;
  options.write_buffer_bytes = 256 << 10;  // most of it gets flushed
  options.read_cache_bytes = 1 << 20;
  Open(options);
  EXPECT_EQ(storage_->read_cache_capacity(), size_t{1} << 20);
  const size_t opened = storage_->read_cache_usage();
  ASSERT_TRUE(CreateWith(Config("orders"), 0).status.ok());
  const std::string payload(1024, 'p');
  uint64_t seq = 0;
  for (int b = 0; b < 40; ++b) {
    StorageBatch batch;
    for (int i = 0; i < 100; ++i) {
      Append(batch, "orders", ++seq, "orders/a", 2000, payload);
    }
    ASSERT_TRUE(Write(std::move(batch)).status.ok());
  }
  // Read all 4,000 (4 MiB) back, twice: what comes from table files goes
  // through the cache, which stays within its size.
  for (int pass = 0; pass < 2; ++pass) {
    uint64_t next = 1, read = 0;
    while (next <= seq) {
      ReadDone done = ReadFrom("orders", next);
      ASSERT_TRUE(done.status.ok()) << done.status;
      ASSERT_FALSE(done.messages.empty());
      read += done.messages.size();
      next = done.next_seq;
    }
    EXPECT_EQ(read, seq);
  }
  EXPECT_GT(storage_->read_cache_usage(), opened + (64 << 10));
  EXPECT_LE(storage_->read_cache_usage(), size_t{1} << 20);
}

TEST_F(RocksDbStreamStorageTest, ReadsAcrossChunksAndBatches) {
  Open();
  ASSERT_TRUE(Write([] {
                StorageBatch batch;
                batch.put_streams.push_back(Config("orders"));
                return batch;
              }())
                  .status.ok());
  const std::string big(4096, 'x');
  uint64_t seq = 0;
  for (int b = 0; b < 3; ++b) {
    StorageBatch batch;
    for (int i = 0; i < 50; ++i) {
      ++seq;
      Append(batch, "orders", seq, "orders/a", 1000 + seq,
             absl::StrCat(big, seq));
    }
    BatchDone done = Write(std::move(batch));
    ASSERT_TRUE(done.status.ok()) << done.status;
  }
  auto expect_record = [&](const StoredRecord& got) {
    EXPECT_EQ(got.record, Record("orders/a", absl::StrCat(big, got.seq),
                                 1000 + static_cast<int64_t>(got.seq)));
  };
  for (uint64_t from : {1u, 16u, 17u, 50u, 51u, 99u, 150u}) {
    ReadDone read = ReadFrom("orders", from);
    ASSERT_TRUE(read.status.ok()) << read.status;
    ASSERT_FALSE(read.messages.empty());
    for (size_t i = 0; i < read.messages.size(); ++i) {
      ASSERT_EQ(read.messages[i].seq, from + i);
      expect_record(read.messages[i]);
    }
  }

  ReadRequest some;
  some.stream = "orders";
  some.seqs = {3, 40, 41, 77, 150, 151};
  ReadDone picked = Read(std::move(some));
  ASSERT_TRUE(picked.status.ok()) << picked.status;
  EXPECT_EQ(Seqs(picked), (std::vector<uint64_t>{3, 40, 41, 77, 150}));
  for (const StoredRecord& record : picked.messages) expect_record(record);

  for (int64_t since : {1001, 1037, 1100, 1150}) {
    ReadRequest read;
    read.stream = "orders";
    read.since_unix_ms = since;
    read.max_messages = 2;
    ReadDone done = Read(std::move(read));
    ASSERT_TRUE(done.status.ok()) << done.status;
    ASSERT_FALSE(done.messages.empty());
    EXPECT_EQ(done.messages[0].seq, static_cast<uint64_t>(since - 1000));
  }

  // All of it survives a restart.
  Open();
  ReadRequest all;
  all.stream = "orders";
  all.from_seq = 1;
  all.max_messages = 1000;
  all.max_bytes = 10 << 20;
  ReadDone read = Read(std::move(all));
  ASSERT_TRUE(read.status.ok()) << read.status;
  ASSERT_EQ(read.messages.size(), 150u);
  for (size_t i = 0; i < 150; ++i) EXPECT_EQ(read.messages[i].seq, i + 1);
}

// Retention drops messages from the front of a chunk and deletes a chunk
// with its last message, also one this very batch wrote.
TEST_F(RocksDbStreamStorageTest, RetentionDeletesChunksWithTheirLastMessage) {
  Open();
  const std::string big(8192, 'y');
  StorageBatch create;
  create.put_streams.push_back(Config("orders", /*max_msgs=*/20));
  for (uint64_t seq = 1; seq <= 60; ++seq) {  // about 8 chunks
    Append(create, "orders", seq, "orders/a", 1000 + seq,
           absl::StrCat(big, seq));
  }
  BatchDone done = Write(std::move(create));
  ASSERT_TRUE(done.status.ok()) << done.status;
  EXPECT_EQ(done.states[0].first_seq, 41u);
  EXPECT_EQ(done.states[0].messages, 20u);

  for (uint64_t seq = 61; seq <= 75; ++seq) {
    StorageBatch one;
    Append(one, "orders", seq, "orders/a", 1000 + seq, absl::StrCat(big, seq));
    done = Write(std::move(one));
    ASSERT_TRUE(done.status.ok()) << done.status;
  }
  EXPECT_EQ(done.states[0].first_seq, 56u);
  ReadDone read = ReadFrom("orders", 1);
  ASSERT_TRUE(read.status.ok()) << read.status;
  ASSERT_FALSE(read.messages.empty());
  EXPECT_EQ(read.messages[0].seq, 56u);
  EXPECT_EQ(read.messages[0].record,
            Record("orders/a", absl::StrCat(big, 56), 1056));

  // The store keeps only chunks that still hold a message.
  storage_.reset();
  std::vector<uint64_t> chunks;
  WithRawStore([&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle&,
                   rocksdb::ColumnFamilyHandle& log) {
    chunks = ChunkKeys("orders", db, log);
  });
  ASSERT_FALSE(chunks.empty());
  // The chunk holding 56 (its front dropped) is the only one from before.
  EXPECT_LE(chunks.front(), 56u);
  EXPECT_GT(chunks[1], 56u);
  // Each later batch wrote one chunk, none of them dropped.
  EXPECT_EQ(std::count_if(chunks.begin(), chunks.end(),
                          [](uint64_t seq) { return seq > 60; }),
            15);
  EXPECT_EQ(chunks.back(), 75u);

  std::vector<RecoveredStream> recovered = Open();
  ASSERT_EQ(recovered.size(), 1u);
  EXPECT_EQ(recovered[0].state.first_seq, 56u);
  EXPECT_EQ(Seqs(ReadFrom("orders", 50)).size(), 20u);
}

TEST_F(RocksDbStreamStorageTest, PerTopicLimitDropsATopicsOldestFromAnywhere) {
  Open();
  wire::StreamConfig config = Config("orders");
  config.set_max_msgs_per_topic(2);
  StorageBatch create;
  create.put_streams.push_back(config);
  // Seqs 1..4 on a, b, a, a: a's first goes within the same batch.
  const char* topics[] = {"orders/a", "orders/b", "orders/a", "orders/a",
                          "orders/c", "orders/b", "orders/a"};
  for (uint64_t seq = 1; seq <= 4; ++seq) {
    Append(create, "orders", seq, topics[seq - 1], 1000 + seq,
           absl::StrCat("m", seq));
  }
  BatchDone done = Write(std::move(create));
  ASSERT_TRUE(done.status.ok()) << done.status;
  EXPECT_EQ(done.states[0].first_seq, 2u);
  EXPECT_EQ(done.states[0].messages, 3u);
  // Seqs 5..7 on c, b, a: a's 3 goes from an earlier batch's chunk.
  StorageBatch more;
  uint64_t bytes = 0;
  for (uint64_t seq = 5; seq <= 7; ++seq) {
    Append(more, "orders", seq, topics[seq - 1], 1000 + seq,
           absl::StrCat("m", seq));
  }
  done = Write(std::move(more));
  ASSERT_TRUE(done.status.ok()) << done.status;
  const StreamState state = done.states[0];
  EXPECT_EQ(state.first_seq, 2u);
  EXPECT_EQ(state.last_seq, 7u);
  EXPECT_EQ(state.messages, 5u);
  for (uint64_t seq : {2, 4, 5, 6, 7}) {
    bytes += Record(topics[seq - 1], absl::StrCat("m", seq), 1000 + seq).size();
  }
  EXPECT_EQ(state.bytes, bytes);

  auto check = [&] {
    ReadDone all = ReadFrom("orders", 1);
    ASSERT_TRUE(all.status.ok()) << all.status;
    EXPECT_THAT(Seqs(all), ::testing::ElementsAre(2, 4, 5, 6, 7));
    EXPECT_EQ(all.messages[1].record, Record("orders/a", "m4", 1004));
    ReadRequest by_seqs;
    by_seqs.stream = "orders";
    by_seqs.seqs = {1, 3, 4, 6};
    EXPECT_THAT(Seqs(Read(by_seqs)), ::testing::ElementsAre(4, 6));
    ReadRequest last;
    last.stream = "orders";
    last.last = 4;
    last.last_through = 6;  // the last 4 held up to 6, then on
    EXPECT_THAT(Seqs(Read(last)), ::testing::ElementsAre(2, 4, 5, 6, 7));
    last.last = 2;
    EXPECT_THAT(Seqs(Read(last)), ::testing::ElementsAre(5, 6, 7));
    ReadRequest since;
    since.stream = "orders";
    since.since_unix_ms = 1003;  // 3 is gone: 4 is the first at or after it
    EXPECT_THAT(Seqs(Read(since)), ::testing::ElementsAre(4, 5, 6, 7));
  };
  check();

  std::vector<RecoveredStream> recovered = Open();
  ASSERT_EQ(recovered.size(), 1u);
  EXPECT_EQ(recovered[0].state.messages, 5u);
  EXPECT_EQ(recovered[0].state.bytes, bytes);
  EXPECT_EQ(recovered[0].state.first_seq, 2u);
  EXPECT_THAT(recovered[0].last_per_topic,
              ::testing::ElementsAre(::testing::Pair("orders/a", 7u),
                                     ::testing::Pair("orders/b", 6u),
                                     ::testing::Pair("orders/c", 5u)));
  check();
  // And it goes on from there: a's 4 goes; b's 2 stays the oldest.
  StorageBatch next;
  Append(next, "orders", 8, "orders/a", 1008, "m8");
  done = Write(std::move(next));
  ASSERT_TRUE(done.status.ok()) << done.status;
  EXPECT_EQ(done.states[0].first_seq, 2u);
  EXPECT_EQ(done.states[0].messages, 5u);
  EXPECT_THAT(Seqs(ReadFrom("orders", 1)),
              ::testing::ElementsAre(2, 5, 6, 7, 8));
}

TEST_F(RocksDbStreamStorageTest, PerTopicLimitDeletesChunksNothingIsHeldIn) {
  Open();
  const std::string big(8192, 'y');
  wire::StreamConfig config = Config("orders");
  config.set_max_msgs_per_topic(1);  // the last value of each topic
  StorageBatch create;
  create.put_streams.push_back(config);
  Append(create, "orders", 1, "orders/kept", 1001, "kept");
  for (uint64_t seq = 2; seq <= 40; ++seq) {  // about 5 chunks
    Append(create, "orders", seq, "orders/hot", 1000 + seq,
           absl::StrCat(big, seq));
  }
  BatchDone done = Write(std::move(create));
  ASSERT_TRUE(done.status.ok()) << done.status;
  for (uint64_t seq = 41; seq <= 100; ++seq) {
    StorageBatch one;
    Append(one, "orders", seq, "orders/hot", 1000 + seq,
           absl::StrCat(big, seq));
    done = Write(std::move(one));
    ASSERT_TRUE(done.status.ok()) << done.status;
  }
  EXPECT_EQ(done.states[0].first_seq, 1u);
  EXPECT_EQ(done.states[0].last_seq, 100u);
  EXPECT_EQ(done.states[0].messages, 2u);
  EXPECT_THAT(Seqs(ReadFrom("orders", 1)), ::testing::ElementsAre(1, 100));

  // Only the chunk holding 1 and the one holding 100 are left.
  storage_.reset();
  std::vector<uint64_t> chunks;
  WithRawStore([&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle&,
                   rocksdb::ColumnFamilyHandle& log) {
    chunks = ChunkKeys("orders", db, log);
  });
  EXPECT_THAT(chunks, ::testing::ElementsAre(1u, 100u));

  std::vector<RecoveredStream> recovered = Open();
  ASSERT_EQ(recovered.size(), 1u);
  EXPECT_EQ(recovered[0].state.messages, 2u);
  ReadDone read = ReadFrom("orders", 1);
  ASSERT_TRUE(read.status.ok()) << read.status;
  EXPECT_THAT(Seqs(read), ::testing::ElementsAre(1, 100));
  EXPECT_EQ(read.messages[0].record, Record("orders/kept", "kept", 1001));
  EXPECT_THAT(Seqs(ReadFrom("orders", 2)), ::testing::ElementsAre(100));
  ReadRequest since;
  since.stream = "orders";
  since.since_unix_ms = 1050;
  EXPECT_THAT(Seqs(Read(since)), ::testing::ElementsAre(100));

  // Retention by count then drops the oldest held, across the holes.
  config.set_max_msgs(1);
  StorageBatch limit;
  limit.put_streams.push_back(config);
  limit.enforce_streams.push_back("orders");
  done = Write(std::move(limit));
  ASSERT_TRUE(done.status.ok()) << done.status;
  EXPECT_EQ(done.states[0].first_seq, 100u);
  EXPECT_EQ(done.states[0].messages, 1u);
  EXPECT_THAT(Seqs(ReadFrom("orders", 1)), ::testing::ElementsAre(100));
  storage_.reset();
  WithRawStore([&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle&,
                   rocksdb::ColumnFamilyHandle& log) {
    chunks = ChunkKeys("orders", db, log);
  });
  EXPECT_THAT(chunks, ::testing::ElementsAre(100u));
  Open();
  EXPECT_THAT(Seqs(ReadFrom("orders", 1)), ::testing::ElementsAre(100));
}

// Random appends on a few topics, retention and restarts: the store on disk
// holds, reads and counts exactly what the storage in memory does.
TEST_F(RocksDbStreamStorageTest, PerTopicLimitMatchesTheMemoryStorage) {
  for (uint32_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    TearDown();
    SetUp();
    Open();
    MemoryStreamStorage memory;
    ASSERT_TRUE(memory.Load().ok());
    uint64_t memory_id = 0;
    auto in_memory = [&](StorageBatch batch) {
      batch.id = ++memory_id;
      memory.Write(std::move(batch));
      std::vector<StorageCompletion> done;
      memory.Poll(done);
      EXPECT_EQ(done.size(), 1u);
      return done.empty() ? BatchDone() : done[0].batch;
    };
    auto read_memory = [&](ReadRequest read) {
      read.id = ++memory_id;
      memory.Read(std::move(read));
      std::vector<StorageCompletion> done;
      memory.Poll(done);
      EXPECT_EQ(done.size(), 1u);
      return done.empty() ? ReadDone() : done[0].read;
    };
    auto same_states = [](const BatchDone& a, const BatchDone& b) {
      ASSERT_TRUE(a.status.ok()) << a.status;
      ASSERT_TRUE(b.status.ok()) << b.status;
      ASSERT_EQ(a.states.size(), b.states.size());
      for (size_t i = 0; i < a.states.size(); ++i) {
        EXPECT_EQ(a.states[i].first_seq, b.states[i].first_seq);
        EXPECT_EQ(a.states[i].last_seq, b.states[i].last_seq);
        EXPECT_EQ(a.states[i].messages, b.states[i].messages);
        EXPECT_EQ(a.states[i].bytes, b.states[i].bytes);
        EXPECT_EQ(a.states[i].first_time_unix_ms,
                  b.states[i].first_time_unix_ms);
      }
    };
    wire::StreamConfig config = Config("orders");
    config.set_max_msgs_per_topic(1 + rng() % 3);
    // Few topics (a few messages held, far apart) or many.
    const uint32_t topics = seed % 2 == 0 ? 6 : 40;
    StorageBatch create;
    create.put_streams.push_back(config);
    const BatchDone created = Write(create.Copy());
    same_states(created, in_memory(std::move(create)));

    uint64_t seq = 0;
    int64_t now = 1000;
    for (int step = 0; step < 120; ++step) {
      const int what = static_cast<int>(rng() % 20);
      if (what == 0) {
        Open();  // a restart: the store reads back what it held
        continue;
      }
      if (what == 1) {
        // Retention by count across the holes, then none again.
        config.set_max_msgs(config.max_msgs() == 0 ? 1 + rng() % 8 : 0);
        StorageBatch limit;
        limit.put_streams.push_back(config);
        limit.enforce_streams.push_back("orders");
        limit.now_unix_ms = now;
        BatchDone on_disk = Write(limit.Copy());
        same_states(on_disk, in_memory(std::move(limit)));
        continue;
      }
      if (what <= 4) {
        // Reads from a random point, by seqs, and of the last few.
        ReadRequest read;
        read.stream = "orders";
        read.max_messages = 1 + rng() % 40;
        if (what == 2) {
          read.from_seq = 1 + rng() % (seq + 2);
          if (rng() % 2 == 0) {
            read.since_unix_ms =
                1000 + static_cast<int64_t>(rng() % (now - 998));
          }
        } else if (what == 3) {
          for (uint64_t s = 1 + rng() % 4; s <= seq; s += 1 + rng() % 4) {
            read.seqs.push_back(s);
          }
        } else {
          // Mostly as a replay asks (through the newest), sometimes from
          // further back.
          read.last = 1 + rng() % 10;
          read.last_through =
              seq == 0 || rng() % 3 != 0 ? seq : 1 + rng() % seq;
        }
        ReadDone on_disk = Read(read);
        ReadDone in_mem = read_memory(read);
        ASSERT_TRUE(on_disk.status.ok()) << on_disk.status;
        EXPECT_EQ(Seqs(on_disk), Seqs(in_mem)) << "read kind " << what;
        continue;
      }
      StorageBatch batch;
      const int count = 1 + static_cast<int>(rng() % 30);
      for (int i = 0; i < count; ++i) {
        // Some big messages, so that batches span several chunks.
        const size_t size = rng() % 5 == 0 ? 9000 : 10;
        const std::string topic = absl::StrCat("orders/t", rng() % topics);
        ++seq;
        ++now;
        Append(batch, "orders", seq, topic, now,
               absl::StrCat(std::string(size, 'x'), seq));
      }
      batch.now_unix_ms = now;
      BatchDone on_disk = Write(batch.Copy());
      same_states(on_disk, in_memory(std::move(batch)));
    }
    ReadRequest all;
    all.stream = "orders";
    all.max_messages = 100000;
    all.max_bytes = 1 << 30;
    ReadDone on_disk = Read(all);
    ASSERT_TRUE(on_disk.status.ok()) << on_disk.status;
    const std::vector<StoredRecord> held = memory.Contents("orders");
    ASSERT_EQ(on_disk.messages.size(), held.size());
    for (size_t i = 0; i < held.size(); ++i) {
      EXPECT_EQ(on_disk.messages[i].seq, held[i].seq);
      EXPECT_EQ(on_disk.messages[i].record, held[i].record);
    }
    // The disk keeps no chunk that holds nothing: at most one per held
    // message (and no more than were written).
    storage_.reset();
    std::vector<uint64_t> chunks;
    WithRawStore([&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle&,
                     rocksdb::ColumnFamilyHandle& log) {
      chunks = ChunkKeys("orders", db, log);
    });
    EXPECT_LE(chunks.size(), held.size());
    std::vector<RecoveredStream> recovered = Open();
    ASSERT_EQ(recovered.size(), 1u);
    EXPECT_EQ(recovered[0].state.messages, held.size());
  }
}

TEST_F(RocksDbStreamStorageTest, PerTopicLimitChangesOnlyWhileEmpty) {
  Open();
  wire::StreamConfig config = Config("orders");
  ASSERT_TRUE(CreateWith(config, 3).status.ok());
  config.set_max_msgs_per_topic(1);
  StorageBatch change;
  change.put_streams.push_back(config);
  BatchDone done = Write(std::move(change));
  EXPECT_EQ(done.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(done.status.message()),
              HasSubstr("max_msgs_per_topic cannot change"));
  // Emptied by a purge, it takes the limit.
  StorageBatch purge;
  purge.purge_streams.push_back("orders");
  ASSERT_TRUE(Write(std::move(purge)).status.ok());
  StorageBatch put;
  put.put_streams.push_back(config);
  ASSERT_TRUE(Write(std::move(put)).status.ok());
  StorageBatch appends;
  Append(appends, "orders", 4, "orders/a", 1004);
  Append(appends, "orders", 5, "orders/a", 1005);
  done = Write(std::move(appends));
  ASSERT_TRUE(done.status.ok()) << done.status;
  EXPECT_EQ(done.states[0].messages, 1u);
  EXPECT_EQ(done.states[0].first_seq, 5u);
}

TEST_F(RocksDbStreamStorageTest, FormatTwoStoreOpensAndIsMarkedThree) {
  Open();
  ASSERT_TRUE(CreateWith(Config("orders"), 3).status.ok());
  storage_.reset();
  WithRawStore([](rocksdb::DB& db, rocksdb::ColumnFamilyHandle& meta,
                  rocksdb::ColumnFamilyHandle&) {
    ASSERT_TRUE(
        db.Put(rocksdb::WriteOptions(), &meta, "format", "manifold-streams 2")
            .ok());
  });
  std::vector<RecoveredStream> recovered = Open();
  ASSERT_EQ(recovered.size(), 1u);
  EXPECT_EQ(recovered[0].state.messages, 3u);
  storage_.reset();
  WithRawStore([](rocksdb::DB& db, rocksdb::ColumnFamilyHandle& meta,
                  rocksdb::ColumnFamilyHandle&) {
    std::string marker;
    ASSERT_TRUE(db.Get(rocksdb::ReadOptions(), &meta, "format", &marker).ok());
    EXPECT_EQ(marker, "manifold-streams 3");
  });
}

TEST_F(RocksDbStreamStorageTest, HeldListThatDisagreesWithCountersFailsLoad) {
  Open();
  wire::StreamConfig config = Config("orders");
  config.set_max_msgs_per_topic(2);
  ASSERT_TRUE(CreateWith(config, 3).status.ok());
  storage_.reset();
  WithRawStore([](rocksdb::DB& db, rocksdb::ColumnFamilyHandle& meta,
                  rocksdb::ColumnFamilyHandle&) {
    // Topic t1's list loses its only message (seq 2).
    ASSERT_TRUE(
        db.Delete(rocksdb::WriteOptions(), &meta,
                  absl::StrCat("t/orders", std::string(1, '\0'), "orders/t1"))
            .ok());
  });
  absl::Status status = LoadError();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()), HasSubstr(dir_.string()));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("do not match its topics' lists"));
}

TEST_F(RocksDbStreamStorageTest, LaterBatchesAppendAfterEarlierOnes) {
  Open();
  ASSERT_TRUE(CreateWith(Config("orders"), 2).status.ok());
  StorageBatch batch;
  Append(batch, "orders", 3, "orders/x", 2000);
  batch.sync = false;
  BatchDone done = Write(std::move(batch));
  ASSERT_TRUE(done.status.ok()) << done.status;
  EXPECT_EQ(done.states[0].last_seq, 3u);
  EXPECT_EQ(Seqs(ReadFrom("orders", 1)), (std::vector<uint64_t>{1, 2, 3}));
}

TEST_F(RocksDbStreamStorageTest, ReadStopsAtMaxMessagesAndMaxBytes) {
  Open();
  ASSERT_TRUE(CreateWith(Config("orders"), 10).status.ok());
  const size_t record_size = Record("orders/t0", "payload", 1000).size();

  ReadRequest three;
  three.stream = "orders";
  three.max_messages = 3;
  ReadDone done = Read(three);
  EXPECT_EQ(Seqs(done), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(done.next_seq, 4u);

  ReadRequest bytes;
  bytes.stream = "orders";
  bytes.from_seq = 5;
  bytes.max_bytes = record_size * 2 + record_size / 2;
  done = Read(bytes);
  EXPECT_EQ(Seqs(done), (std::vector<uint64_t>{5, 6}));
  EXPECT_EQ(done.next_seq, 7u);

  ReadRequest exact = bytes;
  exact.max_bytes = record_size * 2;
  done = Read(exact);
  EXPECT_EQ(Seqs(done), (std::vector<uint64_t>{5, 6}));

  // Always at least one message, even one larger than max_bytes.
  ReadRequest tiny = bytes;
  tiny.max_bytes = 1;
  done = Read(tiny);
  EXPECT_EQ(Seqs(done), (std::vector<uint64_t>{5}));
  EXPECT_EQ(done.next_seq, 6u);
}

TEST_F(RocksDbStreamStorageTest, ReadSinceStartsAtFirstMessageAtOrAfterTime) {
  Open();
  StorageBatch batch;
  batch.put_streams.push_back(Config("orders"));
  const int64_t times[] = {100, 100, 200, 300, 300, 400};
  for (int i = 0; i < 6; ++i) {
    Append(batch, "orders", i + 1, "orders/a", times[i]);
  }
  ASSERT_TRUE(Write(std::move(batch)).status.ok());

  ReadRequest since;
  since.stream = "orders";
  since.since_unix_ms = 250;
  EXPECT_EQ(Seqs(Read(since)), (std::vector<uint64_t>{4, 5, 6}));
  since.since_unix_ms = 300;
  EXPECT_EQ(Seqs(Read(since)), (std::vector<uint64_t>{4, 5, 6}));
  since.since_unix_ms = 100;
  EXPECT_EQ(Seqs(Read(since)), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
  // Both bounds: seq >= 5 and time >= 200.
  since.since_unix_ms = 200;
  since.from_seq = 5;
  EXPECT_EQ(Seqs(Read(since)), (std::vector<uint64_t>{5, 6}));
  // Later than everything: nothing, and the next read starts past the end.
  since.from_seq = 1;
  since.since_unix_ms = 401;
  ReadDone none = Read(since);
  EXPECT_TRUE(none.status.ok());
  EXPECT_TRUE(none.messages.empty());
  EXPECT_EQ(none.next_seq, 7u);
}

TEST_F(RocksDbStreamStorageTest, ReadBySeqsReturnsOnlyThoseHeld) {
  Open();
  ASSERT_TRUE(CreateWith(Config("orders", /*max_msgs=*/4), 6).status.ok());
  ReadRequest read;
  read.stream = "orders";
  read.seqs = {1, 3, 4, 6, 9};
  ReadDone done = Read(read);
  ASSERT_TRUE(done.status.ok()) << done.status;
  EXPECT_EQ(Seqs(done), (std::vector<uint64_t>{3, 4, 6}));
  EXPECT_EQ(done.next_seq, 7u);
  EXPECT_EQ(done.messages[0].record, Record("orders/t0", "payload", 1020));

  read.max_messages = 2;
  done = Read(read);
  EXPECT_EQ(Seqs(done), (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(done.next_seq, 5u);
}

TEST_F(RocksDbStreamStorageTest, ReadOfUnknownStreamIsNotFound) {
  Open();
  ReadDone done = ReadFrom("nothing", 1);
  EXPECT_EQ(done.status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(done.status.message()), HasSubstr("nothing"));
}

TEST_F(RocksDbStreamStorageTest, RetentionByMaxMsgsDropsTheOldest) {
  Open();
  BatchDone done = CreateWith(Config("orders", /*max_msgs=*/3), 5);
  ASSERT_TRUE(done.status.ok()) << done.status;
  EXPECT_EQ(done.states[0].first_seq, 3u);
  EXPECT_EQ(done.states[0].last_seq, 5u);
  EXPECT_EQ(done.states[0].messages, 3u);
  EXPECT_EQ(done.states[0].first_time_unix_ms, 1020);
  EXPECT_EQ(Seqs(ReadFrom("orders", 1)), (std::vector<uint64_t>{3, 4, 5}));

  // One more, across batches: the oldest now comes from the database.
  StorageBatch batch;
  Append(batch, "orders", 6, "orders/t1", 2000);
  done = Write(std::move(batch));
  ASSERT_TRUE(done.status.ok()) << done.status;
  EXPECT_EQ(done.states[0].first_seq, 4u);
  EXPECT_EQ(done.states[0].messages, 3u);
  EXPECT_EQ(Seqs(ReadFrom("orders", 1)), (std::vector<uint64_t>{4, 5, 6}));
}

TEST_F(RocksDbStreamStorageTest, RetentionByMaxBytesKeepsTheSumUnderTheLimit) {
  Open();
  const uint64_t record_size = Record("orders/t0", "payload", 1000).size();
  BatchDone done =
      CreateWith(Config("orders", 0, /*max_bytes=*/record_size * 2 + 1), 5);
  ASSERT_TRUE(done.status.ok()) << done.status;
  EXPECT_EQ(done.states[0].messages, 2u);
  EXPECT_EQ(done.states[0].bytes, record_size * 2);
  EXPECT_EQ(Seqs(ReadFrom("orders", 1)), (std::vector<uint64_t>{4, 5}));
}

TEST_F(RocksDbStreamStorageTest, RetentionByMaxAgeOnEnforce) {
  Open();
  // Times 1000..1040; at 1045 a max age of 100 keeps everything.
  BatchDone done = CreateWith(Config("orders", 0, 0, /*max_age_ms=*/100), 5,
                              /*now_unix_ms=*/1045);
  ASSERT_TRUE(done.status.ok()) << done.status;
  EXPECT_EQ(done.states[0].messages, 5u);

  StorageBatch enforce;
  enforce.enforce_streams.push_back("orders");
  enforce.now_unix_ms = 1125;  // 1000, 1010 and 1020 are older than 100 ms
  done = Write(std::move(enforce));
  ASSERT_TRUE(done.status.ok()) << done.status;
  ASSERT_EQ(done.states.size(), 1u);
  EXPECT_EQ(done.states[0].first_seq, 4u);
  EXPECT_EQ(done.states[0].first_time_unix_ms, 1030);
  EXPECT_EQ(done.states[0].messages, 2u);

  enforce = StorageBatch();
  enforce.enforce_streams.push_back("orders");
  enforce.now_unix_ms = 5000;
  done = Write(std::move(enforce));
  ASSERT_TRUE(done.status.ok()) << done.status;
  EXPECT_EQ(done.states[0].messages, 0u);
  EXPECT_EQ(done.states[0].first_seq, 0u);
  EXPECT_EQ(done.states[0].last_seq, 5u);
  EXPECT_EQ(done.states[0].bytes, 0u);
  ReadDone read = ReadFrom("orders", 1);
  EXPECT_TRUE(read.messages.empty());
  EXPECT_EQ(read.next_seq, 6u);
}

TEST_F(RocksDbStreamStorageTest, NewLimitsApplyWhenEnforced) {
  Open();
  ASSERT_TRUE(CreateWith(Config("orders"), 6).status.ok());
  StorageBatch batch;
  batch.put_streams.push_back(Config("orders", /*max_msgs=*/2));
  batch.enforce_streams.push_back("orders");
  BatchDone done = Write(std::move(batch));
  ASSERT_TRUE(done.status.ok()) << done.status;
  ASSERT_EQ(done.states.size(), 1u);
  EXPECT_EQ(done.states[0].first_seq, 5u);
  EXPECT_EQ(done.states[0].messages, 2u);

  std::vector<RecoveredStream> held = Open();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].config.max_msgs(), 2u);
  EXPECT_EQ(held[0].state.first_seq, 5u);
}

TEST_F(RocksDbStreamStorageTest, PurgeDropsMessagesAndKeepsLastSeq) {
  Open();
  ASSERT_TRUE(CreateWith(Config("orders"), 4).status.ok());
  StorageBatch purge;
  purge.purge_streams.push_back("orders");
  BatchDone done = Write(std::move(purge));
  ASSERT_TRUE(done.status.ok()) << done.status;
  EXPECT_EQ(done.states[0].messages, 0u);
  EXPECT_EQ(done.states[0].first_seq, 0u);
  EXPECT_EQ(done.states[0].last_seq, 4u);
  EXPECT_TRUE(ReadFrom("orders", 1).messages.empty());

  StorageBatch again;
  Append(again, "orders", 1, "orders/a", 3000);
  EXPECT_EQ(Write(std::move(again)).status.code(), absl::StatusCode::kInternal);
  StorageBatch next;
  Append(next, "orders", 5, "orders/a", 3000);
  done = Write(std::move(next));
  ASSERT_TRUE(done.status.ok()) << done.status;
  EXPECT_EQ(done.states[0].first_seq, 5u);
  EXPECT_EQ(Seqs(ReadFrom("orders", 1)), (std::vector<uint64_t>{5}));

  std::vector<RecoveredStream> held = Open();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].state.last_seq, 5u);
  EXPECT_EQ(held[0].last_per_topic,
            (std::vector<std::pair<std::string, uint64_t>>{{"orders/a", 5}}));
}

TEST_F(RocksDbStreamStorageTest, RemoveDeletesTheStreamAndAllItHolds) {
  Open();
  ASSERT_TRUE(CreateWith(Config("orders"), 3).status.ok());
  ASSERT_TRUE(CreateWith(Config("orders-2"), 2).status.ok());
  StorageBatch remove;
  remove.remove_streams.push_back("orders");
  BatchDone done = Write(std::move(remove));
  ASSERT_TRUE(done.status.ok()) << done.status;
  EXPECT_TRUE(done.states.empty());
  EXPECT_EQ(ReadFrom("orders", 1).status.code(), absl::StatusCode::kNotFound);
  // A neighbour whose name starts the same is untouched.
  EXPECT_EQ(Seqs(ReadFrom("orders-2", 1)), (std::vector<uint64_t>{1, 2}));

  std::vector<RecoveredStream> held = Open();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].config.name(), "orders-2");

  // Created again, it starts over.
  done = CreateWith(Config("orders"), 1);
  ASSERT_TRUE(done.status.ok()) << done.status;
  EXPECT_EQ(done.states[0].last_seq, 1u);
  EXPECT_EQ(Seqs(ReadFrom("orders", 1)), (std::vector<uint64_t>{1}));
}

TEST_F(RocksDbStreamStorageTest, ReopenRecoversStatesTopicsAndMessages) {
  Open();
  ASSERT_TRUE(CreateWith(Config("orders", /*max_msgs=*/3), 5).status.ok());
  StorageBatch batch;
  batch.put_streams.push_back(Config("audit"));
  Append(batch, "audit", 1, "audit/x", 7);
  Append(batch, "orders", 6, "orders/t9", 2000);
  BatchDone written = Write(std::move(batch));
  ASSERT_TRUE(written.status.ok()) << written.status;
  ReadDone before = ReadFrom("orders", 1);

  std::vector<RecoveredStream> held = Open();
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0].config.name(), "audit");
  EXPECT_EQ(held[0].state.messages, 1u);
  EXPECT_EQ(held[1].config.name(), "orders");
  EXPECT_EQ(held[1].config.max_msgs(), 3u);
  EXPECT_EQ(held[1].config.topics(0), "orders/**");
  const StreamState& state = held[1].state;
  EXPECT_EQ(state.name, "orders");
  EXPECT_EQ(state.first_seq, 4u);
  EXPECT_EQ(state.last_seq, 6u);
  EXPECT_EQ(state.messages, 3u);
  EXPECT_EQ(state.first_time_unix_ms, 1030);
  EXPECT_EQ(state.last_time_unix_ms, 2000);
  EXPECT_EQ(state.bytes, written.states[1].bytes);
  // Seqs 1..3 are gone: t0's newest held is 5, t1's 4; t9 is new.
  EXPECT_EQ(held[1].last_per_topic,
            (std::vector<std::pair<std::string, uint64_t>>{
                {"orders/t0", 5}, {"orders/t1", 4}, {"orders/t9", 6}}));

  ReadDone after = ReadFrom("orders", 1);
  ASSERT_EQ(Seqs(after), Seqs(before));
  for (size_t i = 0; i < after.messages.size(); ++i) {
    EXPECT_EQ(after.messages[i].record, before.messages[i].record);
  }
}

TEST_F(RocksDbStreamStorageTest,
       ConsumersAreKeptAcrossReopenAndGoWithTheirStream) {
  Open();
  ASSERT_TRUE(CreateWith(Config("orders"), 3).status.ok());
  ASSERT_TRUE(CreateWith(Config("audit"), 1).status.ok());
  wire::ConsumerState consumer;
  consumer.set_stream("orders");
  consumer.set_name("billing");
  consumer.set_pattern("orders/**");
  consumer.set_ack_wait_ms(5000);
  consumer.set_max_in_flight(10);
  consumer.set_ack_floor(2);
  consumer.set_delivered_high(3);
  consumer.set_in_flight(1);  // shown, not kept
  StorageBatch batch;
  batch.put_consumers.push_back(consumer);
  wire::ConsumerState other = consumer;
  other.set_name("gone");
  batch.put_consumers.push_back(other);
  ASSERT_TRUE(Write(std::move(batch)).status.ok());
  StorageBatch remove_one;
  remove_one.remove_consumers.emplace_back("orders", "gone");
  remove_one.purge_streams.push_back("orders");  // a purge keeps consumers
  ASSERT_TRUE(Write(std::move(remove_one)).status.ok());

  std::vector<RecoveredStream> held = Open();
  ASSERT_EQ(held.size(), 2u);
  ASSERT_EQ(held[1].config.name(), "orders");
  ASSERT_EQ(held[1].consumers.size(), 1u);
  const wire::ConsumerState& kept = held[1].consumers[0];
  EXPECT_EQ(kept.name(), "billing");
  EXPECT_EQ(kept.ack_floor(), 2u);
  EXPECT_EQ(kept.delivered_high(), 3u);
  EXPECT_EQ(kept.max_in_flight(), 10u);
  EXPECT_EQ(kept.in_flight(), 0u);
  EXPECT_TRUE(held[0].consumers.empty());

  // A consumer of an unknown stream fails the batch.
  StorageBatch stray;
  wire::ConsumerState lost = consumer;
  lost.set_stream("nope");
  stray.put_consumers.push_back(lost);
  EXPECT_EQ(Write(std::move(stray)).status.code(), absl::StatusCode::kNotFound);

  StorageBatch remove;
  remove.remove_streams.push_back("orders");
  ASSERT_TRUE(Write(std::move(remove)).status.ok());
  ASSERT_TRUE(CreateWith(Config("orders"), 1).status.ok());
  held = Open();
  ASSERT_EQ(held.size(), 2u);
  EXPECT_TRUE(held[1].consumers.empty());
}

TEST_F(RocksDbStreamStorageTest, RetentionForgetsTopicsNoLongerHeld) {
  Open();
  StorageBatch batch;
  batch.put_streams.push_back(Config("orders", /*max_msgs=*/2));
  Append(batch, "orders", 1, "orders/gone", 1);
  Append(batch, "orders", 2, "orders/kept", 2);
  ASSERT_TRUE(Write(std::move(batch)).status.ok());
  batch = StorageBatch();
  Append(batch, "orders", 3, "orders/kept", 3);
  ASSERT_TRUE(Write(std::move(batch)).status.ok());

  std::vector<RecoveredStream> held = Open();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(
      held[0].last_per_topic,
      (std::vector<std::pair<std::string, uint64_t>>{{"orders/kept", 3}}));
}

TEST_F(RocksDbStreamStorageTest, SeqGapRejectsTheWholeBatch) {
  Open();
  ASSERT_TRUE(CreateWith(Config("orders"), 2).status.ok());
  StorageBatch batch;
  batch.put_streams.push_back(Config("audit"));
  batch.purge_streams.push_back("orders");
  Append(batch, "orders", 3, "orders/a", 5000);
  Append(batch, "orders", 5, "orders/a", 5000);
  BatchDone done = Write(std::move(batch));
  EXPECT_EQ(done.status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(done.status.message()), HasSubstr("'orders'"));
  EXPECT_THAT(std::string(done.status.message()), HasSubstr("seq 5"));
  EXPECT_THAT(std::string(done.status.message()), HasSubstr("last seq 3"));
  EXPECT_TRUE(done.states.empty());

  // Nothing of it: no purge, no new stream, no message 3.
  EXPECT_EQ(Seqs(ReadFrom("orders", 1)), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(ReadFrom("audit", 1).status.code(), absl::StatusCode::kNotFound);
  std::vector<RecoveredStream> held = Open();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].state.last_seq, 2u);
  EXPECT_EQ(held[0].state.messages, 2u);

  // And the next batch that fits is taken.
  batch = StorageBatch();
  Append(batch, "orders", 3, "orders/a", 5000);
  EXPECT_TRUE(Write(std::move(batch)).status.ok());
}

TEST_F(RocksDbStreamStorageTest, BatchNamingAnUnknownStreamFails) {
  Open();
  StorageBatch batch;
  Append(batch, "ghost", 1, "orders/a", 1);
  BatchDone done = Write(std::move(batch));
  EXPECT_EQ(done.status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(done.status.message()), HasSubstr("'ghost'"));

  batch = StorageBatch();
  batch.put_streams.push_back(Config("bad/name"));
  EXPECT_EQ(Write(std::move(batch)).status.code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RocksDbStreamStorageTest, WakeIsCalledAndPollReturnsCompletionsInOrder) {
  Open();
  StorageBatch create;
  create.id = 1;
  create.put_streams.push_back(Config("orders"));
  Append(create, "orders", 1, "orders/a", 1);
  storage_->Write(std::move(create));
  ReadRequest read;
  read.id = 2;
  read.stream = "orders";
  storage_->Read(read);
  StorageBatch more;
  more.id = 3;
  Append(more, "orders", 2, "orders/a", 2);
  storage_->Write(std::move(more));
  read.id = 4;
  storage_->Read(read);

  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (wakes_.load() < 4 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(wakes_.load(), 4);
  std::vector<StorageCompletion> done;
  storage_->Poll(done);
  ASSERT_EQ(done.size(), 4u);
  EXPECT_EQ(done[0].kind, StorageCompletion::Kind::kBatch);
  EXPECT_EQ(done[0].batch.id, 1u);
  EXPECT_EQ(done[1].kind, StorageCompletion::Kind::kRead);
  EXPECT_EQ(done[1].read.id, 2u);
  EXPECT_EQ(Seqs(done[1].read), (std::vector<uint64_t>{1}));
  EXPECT_EQ(done[2].batch.id, 3u);
  // A read sees every batch written before it.
  EXPECT_EQ(done[3].read.id, 4u);
  EXPECT_EQ(Seqs(done[3].read), (std::vector<uint64_t>{1, 2}));
  done.clear();
  storage_->Poll(done);
  EXPECT_TRUE(done.empty());
}

TEST_F(RocksDbStreamStorageTest, DestructorFinishesQueuedBatches) {
  Open();
  StorageBatch create;
  create.put_streams.push_back(Config("orders"));
  storage_->Write(std::move(create));
  for (uint64_t seq = 1; seq <= 100; ++seq) {
    StorageBatch batch;
    Append(batch, "orders", seq, "orders/a", 1);
    batch.sync = false;
    storage_->Write(std::move(batch));
  }
  std::vector<RecoveredStream> held = Open();  // destroys the first one
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].state.last_seq, 100u);
}

TEST_F(RocksDbStreamStorageTest, ForeignDirectoryFailsLoadAndIsLeftAlone) {
  fs::create_directories(dir_);
  WriteFile(dir_ / "notes.txt", "mine");
  absl::Status status = LoadError();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr(dir_.string()));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("not a Manifold stream store"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("notes.txt"));
  EXPECT_TRUE(fs::exists(dir_ / "notes.txt"));
  EXPECT_FALSE(fs::exists(dir_ / "CURRENT"));
}

TEST_F(RocksDbStreamStorageTest, RocksDbWithoutMarkerFailsLoad) {
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.string(), &db).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "user:1", "alice").ok());
    delete db;
  }
  absl::Status status = LoadError();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr(dir_.string()));
  EXPECT_THAT(std::string(status.message()), HasSubstr("no format marker"));
}

TEST_F(RocksDbStreamStorageTest, UnknownFormatVersionFailsLoad) {
  Open();
  storage_.reset();
  WithRawStore([](rocksdb::DB& db, rocksdb::ColumnFamilyHandle& meta,
                  rocksdb::ColumnFamilyHandle&) {
    ASSERT_TRUE(
        db.Put(rocksdb::WriteOptions(), &meta, "format", "manifold-streams 9")
            .ok());
  });
  absl::Status status = LoadError();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr(dir_.string()));
  EXPECT_THAT(std::string(status.message()), HasSubstr("format 9"));
}

TEST_F(RocksDbStreamStorageTest, MissingMessageFailsLoad) {
  Open();
  ASSERT_TRUE(CreateWith(Config("orders"), 3).status.ok());
  // Messages 4 and 5 in a later batch: a chunk of their own, keyed by 4.
  StorageBatch batch;
  Append(batch, "orders", 4, "orders/t0", 2000);
  Append(batch, "orders", 5, "orders/t1", 2010);
  ASSERT_TRUE(Write(std::move(batch)).status.ok());
  storage_.reset();
  WithRawStore([](rocksdb::DB& db, rocksdb::ColumnFamilyHandle&,
                  rocksdb::ColumnFamilyHandle& log) {
    std::string key("d/orders\0\0\0\0\0\0\0\0\4", 17);
    ASSERT_TRUE(db.Delete(rocksdb::WriteOptions(), &log, key).ok());
  });
  absl::Status status = LoadError();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()), HasSubstr(dir_.string()));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("stream 'orders' lacks its message 5"));
}

TEST_F(RocksDbStreamStorageTest, StoreWithoutItsMessageLogFailsLoad) {
  Open();
  ASSERT_TRUE(CreateWith(Config("orders"), 3).status.ok());
  storage_.reset();
  WithRawStore([](rocksdb::DB& db, rocksdb::ColumnFamilyHandle&,
                  rocksdb::ColumnFamilyHandle& log) {
    ASSERT_TRUE(db.DropColumnFamily(&log).ok());
  });
  absl::Status status = LoadError();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()), HasSubstr(dir_.string()));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("no 'log' column family"));
}

TEST_F(RocksDbStreamStorageTest, GarbledCurrentFileFailsLoad) {
  Open();
  ASSERT_TRUE(CreateWith(Config("orders"), 3).status.ok());
  storage_.reset();
  WriteFile(dir_ / "CURRENT", "\x01garbage without a newline");
  absl::Status status = LoadError();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()), HasSubstr(dir_.string()));
  EXPECT_THAT(std::string(status.message()), HasSubstr("damaged"));
  EXPECT_EQ(std::string(status.message()).find('\n'), std::string::npos);
}

TEST_F(RocksDbStreamStorageTest, GarbledManifestFailsLoad) {
  Open();
  ASSERT_TRUE(CreateWith(Config("orders"), 3).status.ok());
  storage_.reset();
  int garbled = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_)) {
    if (absl::StartsWith(entry.path().filename().string(), "MANIFEST-")) {
      WriteFile(entry.path(), std::string(4096, '\x5a'));
      ++garbled;
    }
  }
  ASSERT_GT(garbled, 0);
  absl::Status status = LoadError();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()), HasSubstr(dir_.string()));
}

// A file system of a few MiB (tmpfs, so the test needs the right to mount):
// fill it, see a batch fail, free space, see the next batch succeed and
// every acknowledged message survive a reopen.
TEST_F(RocksDbStreamStorageTest, DiskFullFailsBatchesUntilSpaceReturns) {
  fs::create_directories(dir_);
  if (mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=8m") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (" << std::strerror(errno)
                 << "); the disk-full path is not exercised";
  }
  // Closes the store before the file system under it goes.
  struct Unmount {
    std::unique_ptr<RocksDbStreamStorage>& storage;
    fs::path dir;
    ~Unmount() {
      storage.reset();
      EXPECT_EQ(umount2(dir.c_str(), MNT_DETACH), 0) << std::strerror(errno);
      fs::remove_all(dir);
    }
  } unmount{storage_, dir_};
  const fs::path store = dir_ / "store";
  const fs::path filler = dir_ / "filler";
  dir_ = store;  // Open() uses dir_
  RocksDbStreamStorageOptions options;
  options.write_buffer_bytes = 256 << 10;
  Open(options);
  ASSERT_TRUE(CreateWith(Config("orders"), 1).status.ok());

  // Leave almost no space.
  {
    std::ofstream out(filler, std::ios::binary);
    std::string chunk(64 << 10, 'f');
    while (out.write(chunk.data(), chunk.size())) {
    }
  }
  uint64_t acknowledged = 1;
  absl::Status failure;
  const std::string payload(16 << 10, 'p');
  for (int i = 0; i < 2000 && failure.ok(); ++i) {
    StorageBatch batch;
    Append(batch, "orders", acknowledged + 1, "orders/a", 2000, payload);
    BatchDone done = Write(std::move(batch));
    if (done.status.ok()) {
      ++acknowledged;
    } else {
      failure = done.status;
    }
  }
  ASSERT_FALSE(failure.ok()) << "the full disk never failed a batch";
  EXPECT_EQ(failure.code(), absl::StatusCode::kUnavailable) << failure;

  // Nothing of the failed batch is there (the read may fail too while the
  // store reopens on a full disk).
  ReadRequest last;
  last.stream = "orders";
  last.seqs = {acknowledged, acknowledged + 1};
  ReadDone held_now = Read(last);
  if (held_now.status.ok()) {
    EXPECT_EQ(Seqs(held_now), (std::vector<uint64_t>{acknowledged}));
  } else {
    EXPECT_EQ(held_now.status.code(), absl::StatusCode::kUnavailable);
  }
  StorageBatch retry;
  Append(retry, "orders", acknowledged + 1, "orders/a", 2000, payload);

  // Space returns: RocksDB notices within seconds; until then batches keep
  // failing with UNAVAILABLE, and each one leaves nothing behind.
  fs::remove(filler);
  const absl::Time start = absl::Now();
  BatchDone done;
  int failed_after = 0;
  do {
    done = Write(retry.Copy());
    if (!done.status.ok()) {
      EXPECT_EQ(done.status.code(), absl::StatusCode::kUnavailable)
          << done.status;
      ++failed_after;
      absl::SleepFor(absl::Milliseconds(100));
    }
  } while (!done.status.ok() && absl::Now() - start < absl::Seconds(30));
  ASSERT_TRUE(done.status.ok()) << done.status;
  std::printf("writing again after %s (%d batches failed meanwhile)\n",
              absl::FormatDuration(absl::Now() - start).c_str(), failed_after);
  ++acknowledged;
  EXPECT_EQ(done.states[0].last_seq, acknowledged);
  ReadRequest read;
  read.stream = "orders";
  read.max_messages = 1 << 20;
  read.max_bytes = 1 << 30;
  EXPECT_EQ(Read(read).messages.size(), acknowledged);

  std::vector<RecoveredStream> held = Open(options);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].state.last_seq, acknowledged);
  EXPECT_EQ(held[0].state.messages, acknowledged);
  ReadDone all = Read(read);
  ASSERT_EQ(all.messages.size(), acknowledged);
  EXPECT_EQ(all.messages.back().record, Record("orders/a", payload, 2000));
}

// Syncs run beside the writing: while a batch's sync is held back, the
// storage writes the batches after it, and neither they nor a read queued
// after it complete before that sync.
TEST_F(RocksDbStreamStorageTest, CompletionsAndReadsWaitForAnEarlierSync) {
  std::shared_ptr<LogSyncGate> gate = OpenGated();
  ASSERT_TRUE(CreateWith(Config("orders"), 2).status.ok());

  gate->Hold();
  StorageBatch synced;
  synced.id = ++next_id_;
  Append(synced, "orders", 3, "orders/t0", 2000);
  storage_->Write(std::move(synced));
  StorageBatch unsynced;  // as the `interval` policy writes most batches
  unsynced.id = ++next_id_;
  unsynced.sync = false;
  Append(unsynced, "orders", 4, "orders/t1", 2010);
  storage_->Write(std::move(unsynced));
  ReadRequest read;
  read.id = ++next_id_;
  read.stream = "orders";
  storage_->Read(std::move(read));

  ASSERT_TRUE(gate->AwaitHeldSync());
  absl::SleepFor(absl::Milliseconds(300));
  storage_->Poll(pending_);
  EXPECT_TRUE(pending_.empty()) << pending_.size() << " completed early";

  gate->Release();
  StorageCompletion first = Next();
  EXPECT_EQ(first.kind, StorageCompletion::Kind::kBatch);
  EXPECT_EQ(first.batch.id, next_id_ - 2);
  EXPECT_TRUE(first.batch.status.ok()) << first.batch.status;
  StorageCompletion second = Next();
  EXPECT_EQ(second.kind, StorageCompletion::Kind::kBatch);
  EXPECT_EQ(second.batch.id, next_id_ - 1);
  ASSERT_TRUE(second.batch.status.ok()) << second.batch.status;
  EXPECT_EQ(second.batch.states[0].last_seq, 4u);
  StorageCompletion third = Next();
  EXPECT_EQ(third.kind, StorageCompletion::Kind::kRead);
  EXPECT_EQ(Seqs(third.read), (std::vector<uint64_t>{1, 2, 3, 4}));
}

// After a failed sync the kernel may have dropped what it could not write:
// the batch fails, and so does all work after it, even once syncs work
// again, until a restart reads what the disk holds.
TEST_F(RocksDbStreamStorageTest, FailedSyncFailsAllWorkUntilRestart) {
  std::shared_ptr<LogSyncGate> gate = OpenGated();
  ASSERT_TRUE(CreateWith(Config("orders"), 2).status.ok());

  gate->Fail(true);
  StorageBatch batch;
  Append(batch, "orders", 3, "orders/t0", 2000);
  BatchDone failed = Write(batch.Copy());
  EXPECT_EQ(failed.status.code(), absl::StatusCode::kUnavailable)
      << failed.status;
  EXPECT_THAT(failed.status.message(), HasSubstr("syncing the log"));
  EXPECT_THAT(failed.status.message(), HasSubstr("injected sync failure"));
  EXPECT_TRUE(failed.states.empty());

  gate->Fail(false);
  BatchDone after =
      Write(std::move(batch));  // seq 3 again, as the Broker retries
  EXPECT_EQ(after.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(after.status.message(), HasSubstr("restart the broker"));
  ReadDone read = ReadFrom("orders", 1);
  EXPECT_EQ(read.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(read.status.message(), HasSubstr("restart the broker"));

  // The failed batch reached the page cache, so the restart finds it: a
  // batch reported failed may survive, one reported done always does.
  std::vector<RecoveredStream> held = Open();
  ASSERT_EQ(held.size(), 1u);
  const uint64_t last = held[0].state.last_seq;
  EXPECT_TRUE(last == 2 || last == 3) << last;
  std::vector<uint64_t> expected;
  for (uint64_t seq = 1; seq <= last; ++seq) expected.push_back(seq);
  EXPECT_EQ(Seqs(ReadFrom("orders", 1)), expected);
}

}  // namespace
}  // namespace manifold
