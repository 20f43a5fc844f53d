#include "transports/memory/internal/memory_pipe.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/time/clock.h"

namespace manifold::memory_internal {

// ---------------------------------------------------------------------------
// ByteQueue

size_t ByteQueue::Push(absl::string_view bytes) {
  const size_t n = std::min(bytes.size(), room());
  if (n == 0) return 0;
  // Drop popped bytes once they are half the buffer, so memory stays within
  // about twice the capacity and copies stay amortised.
  if (head_ > 0 && head_ >= data_.size() / 2) {
    data_.erase(0, head_);
    head_ = 0;
  }
  data_.append(bytes.data(), n);
  return n;
}

size_t ByteQueue::Pop(size_t max, std::string* out) {
  const size_t n = std::min(max, size());
  out->append(data_, head_, n);
  head_ += n;
  if (head_ == data_.size()) Clear();
  return n;
}

void ByteQueue::Clear() {
  data_.clear();
  head_ = 0;
}

// ---------------------------------------------------------------------------
// Doorbell

bool Doorbell::Post(std::shared_ptr<MemoryPipe> pipe) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return false;
  arrived_.push_back(std::move(pipe));
  news_.notify_one();
  return true;
}

void Doorbell::Ring(std::shared_ptr<MemoryPipe> pipe) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  rung_.push_back(std::move(pipe));
  news_.notify_one();
}

void Doorbell::RequestStop() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = true;
  news_.notify_one();
}

void Doorbell::Wait(absl::Duration timeout, News* news) {
  std::unique_lock<std::mutex> lock(mu_);
  if (timeout == absl::InfiniteDuration()) {
    news_.wait(lock, [this] { return HasNews(); });
  } else if (timeout > absl::ZeroDuration()) {
    // wait_for measures on steady_clock.
    news_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                   [this] { return HasNews(); });
  }
  news->arrived.clear();
  news->rung.clear();
  news->arrived.swap(arrived_);
  news->rung.swap(rung_);
  news->stop = std::exchange(stop_, false);  // reported once, not again
}

std::vector<std::shared_ptr<MemoryPipe>> Doorbell::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  rung_.clear();
  return std::exchange(arrived_, {});
}

// ---------------------------------------------------------------------------
// MemoryPipe: client end

MemoryPipe::MemoryPipe(std::string peer_name,
                       std::shared_ptr<Doorbell> doorbell, size_t capacity)
    : peer_name_(std::move(peer_name)),
      doorbell_(std::move(doorbell)),
      to_broker_(capacity),
      to_client_(capacity) {}

void MemoryPipe::Ring() {
  if (!ring_pending_.exchange(true)) doorbell_->Ring(shared_from_this());
}

absl::Status MemoryPipe::ClientWrite(absl::string_view bytes) {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  while (!bytes.empty()) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      client_cv_.wait(lock, [this] {
        return client_closed_ || broker_closed_ || to_broker_.room() > 0;
      });
      if (client_closed_ || broker_closed_) {
        return absl::UnavailableError(client_closed_
                                          ? "the link is closed"
                                          : "the broker closed the link");
      }
      bytes.remove_prefix(to_broker_.Push(bytes));
    }
    Ring();  // outside the lock: the broker may drain while we wait for room
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MemoryPipe::ClientRead(absl::Time deadline) {
  std::string bytes;
  bool ring = false;
  {
    std::unique_lock<std::mutex> lock(mu_);
    const auto ready = [this] {
      return !to_client_.empty() || broker_closed_ || client_closed_;
    };
    if (deadline == absl::InfiniteFuture()) {
      client_cv_.wait(lock, ready);
    } else if (deadline > absl::Now()) {
      client_cv_.wait_until(lock, absl::ToChronoTime(deadline), ready);
    }
    if (client_closed_) return absl::UnavailableError("the link is closed");
    if (to_client_.empty()) {
      if (broker_closed_) {
        return absl::UnavailableError("the broker closed the link");
      }
      return bytes;  // the deadline passed
    }
    to_client_.Pop(to_client_.size(), &bytes);
    ring = std::exchange(broker_waits_for_room_, false);
  }
  if (ring) Ring();
  return bytes;
}

void MemoryPipe::ClientClose() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (client_closed_) return;
    client_closed_ = true;
    to_client_.Clear();
    client_cv_.notify_all();
  }
  Ring();
}

// ---------------------------------------------------------------------------
// MemoryPipe: broker end

void MemoryPipe::BrokerRead(size_t max, std::string* out, bool* ended) {
  out->clear();
  std::lock_guard<std::mutex> lock(mu_);
  const bool was_full = to_broker_.room() == 0;
  to_broker_.Pop(max, out);
  *ended = client_closed_ && to_broker_.empty();
  if (was_full && !out->empty()) client_cv_.notify_all();  // a writer waits
}

absl::StatusOr<size_t> MemoryPipe::BrokerWrite(
    absl::Span<const absl::string_view> chunks) {
  std::lock_guard<std::mutex> lock(mu_);
  if (client_closed_) {
    return absl::UnavailableError("the client closed the link");
  }
  size_t taken = 0;
  for (absl::string_view chunk : chunks) {
    const size_t n = to_client_.Push(chunk);
    taken += n;
    if (n < chunk.size()) break;
  }
  if (taken == 0) {
    broker_waits_for_room_ = true;
  } else {
    client_cv_.notify_all();
  }
  return taken;
}

bool MemoryPipe::BrokerCanWrite() {
  std::lock_guard<std::mutex> lock(mu_);
  return client_closed_ || to_client_.room() > 0;
}

void MemoryPipe::BrokerClose() {
  std::lock_guard<std::mutex> lock(mu_);
  broker_closed_ = true;
  to_broker_.Clear();
  client_cv_.notify_all();
}

}  // namespace manifold::memory_internal
