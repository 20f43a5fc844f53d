// The RocksDB stream storage through its storage thread: appends in batches
// of 1 and 64 messages, synced and not, with and without retention dropping
// the oldest; and reads of 256 messages from a stream of 100k. The data
// directory is a fresh one under $MANIFOLD_BENCH_DIR (default: the system's
// temporary directory), so synced numbers measure that file system.
//
//   bazel run --config=bench //bench:storage_bench

#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "broker/storage/stream_storage.h"
#include "core/manifold.pb.h"
#include "transports/storage/rocksdb_stream_storage.h"

namespace manifold {
namespace {

namespace fs = std::filesystem;

// A storage in a fresh directory, and a blocking way to run one operation.
class Store {
 public:
  Store() {
    const char* base = std::getenv("MANIFOLD_BENCH_DIR");
    dir_ = fs::path(base != nullptr ? base : fs::temp_directory_path()) /
           absl::StrCat("storage_bench_", getpid(), "_", ++count_);
    fs::remove_all(dir_);
    storage_ = std::make_unique<RocksDbStreamStorage>(dir_.string(), [this] {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++wakes_;
      }
      woken_.notify_one();
    });
    if (absl::StatusOr<std::vector<RecoveredStream>> loaded = storage_->Load();
        !loaded.ok()) {
      std::fprintf(stderr, "%s\n", loaded.status().ToString().c_str());
      std::abort();
    }
  }

  ~Store() {
    storage_.reset();
    fs::remove_all(dir_);
  }

  BatchDone Write(StorageBatch batch) {
    storage_->Write(std::move(batch));
    StorageCompletion done = Next();
    if (!done.batch.status.ok()) {
      std::fprintf(stderr, "%s\n", done.batch.status.ToString().c_str());
      std::abort();
    }
    return std::move(done.batch);
  }

  ReadDone Read(ReadRequest read) {
    storage_->Read(std::move(read));
    return std::move(Next().read);
  }

 private:
  StorageCompletion Next() {
    std::vector<StorageCompletion> out;
    while (out.empty()) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        woken_.wait(lock, [this] { return wakes_ > 0; });
        wakes_ = 0;
      }
      storage_->Poll(out);
    }
    return std::move(out.front());
  }

  static inline int count_ = 0;
  fs::path dir_;
  std::mutex mu_;
  std::condition_variable woken_;
  int wakes_ = 0;
  std::unique_ptr<RocksDbStreamStorage> storage_;
};

// Adds message `seq` to `batch`'s appends.
void AddMessage(StorageBatch& batch, uint64_t seq, const std::string& payload) {
  wire::StoredMessage message;
  message.set_topic(absl::StrCat("orders/", seq % 64));
  message.set_payload(payload);
  message.set_time_unix_ms(static_cast<int64_t>(seq));
  AppendRecord& append = batch.appends.emplace_back();
  append.stream = "orders";
  append.seq = seq;
  append.topic = batch.Keep(message.topic());
  append.time_unix_ms = message.time_unix_ms();
  append.record = batch.Keep(message.SerializeAsString());
}

void CreateStream(Store& store, uint64_t max_msgs) {
  StorageBatch create;
  create.put_streams.emplace_back();
  create.put_streams.back().set_name("orders");
  create.put_streams.back().add_topics("orders/*");
  create.put_streams.back().set_max_msgs(max_msgs);
  store.Write(std::move(create));
}

// Args: messages per batch, sync (0/1), max_msgs (0: no retention).
void BM_Append(benchmark::State& state) {
  const int per_batch = static_cast<int>(state.range(0));
  const bool sync = state.range(1) != 0;
  Store store;
  CreateStream(store, static_cast<uint64_t>(state.range(2)));
  const std::string payload(256, 'p');
  uint64_t seq = 0;
  for (auto _ : state) {
    StorageBatch batch;
    batch.sync = sync;
    for (int i = 0; i < per_batch; ++i) {
      AddMessage(batch, ++seq, payload);
    }
    benchmark::DoNotOptimize(store.Write(std::move(batch)));
  }
  state.SetItemsProcessed(static_cast<int64_t>(seq));
  state.SetBytesProcessed(static_cast<int64_t>(seq * payload.size()));
}
BENCHMARK(BM_Append)
    ->ArgNames({"batch", "sync", "max_msgs"})
    ->Args({1, 0, 0})
    ->Args({64, 0, 0})
    ->Args({1, 1, 0})
    ->Args({64, 1, 0})
    ->Args({64, 0, 10000})
    ->UseRealTime();

// Reads 256 messages at a time, round the stream.
void BM_Read(benchmark::State& state) {
  constexpr uint64_t kMessages = 100000;
  Store store;
  CreateStream(store, 0);
  const std::string payload(256, 'p');
  for (uint64_t seq = 1; seq <= kMessages;) {
    StorageBatch batch;
    batch.sync = false;
    for (int i = 0; i < 1000; ++i) AddMessage(batch, seq++, payload);
    store.Write(std::move(batch));
  }
  uint64_t from = 1;
  int64_t read = 0;
  for (auto _ : state) {
    ReadRequest request;
    request.stream = "orders";
    request.from_seq = from;
    request.max_messages = 256;
    ReadDone done = store.Read(std::move(request));
    read += static_cast<int64_t>(done.messages.size());
    from = done.next_seq > kMessages ? 1 : done.next_seq;
  }
  state.SetItemsProcessed(read);
}
BENCHMARK(BM_Read)->UseRealTime();

}  // namespace
}  // namespace manifold
