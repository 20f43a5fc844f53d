#include "transports/memory/internal/memory_loop.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace manifold::memory_internal {

MemoryLoop::MemoryLoop(BrokerOptions options,
                       std::shared_ptr<Doorbell> doorbell)
    // The Broker discards a closing link's output after close_linger; allow
    // a little more for the last turn before giving up on a link.
    : shutdown_timeout_(absl::Milliseconds(options.close_linger_ms()) +
                        absl::Milliseconds(100)),
      doorbell_(std::move(doorbell)),
      driver_(std::move(options)) {}

void MemoryLoop::Run() {
  bool shutting_down = false;
  std::optional<absl::Time> wakeup = driver_.RunTurn();
  Doorbell::News news;
  std::vector<ConnectionId> work;
  while (true) {
    // The driver's times are monotonic: wait for a duration, not until a
    // wall-clock time.
    absl::Duration wait =
        wakeup ? *wakeup - driver_.Now() : absl::InfiniteDuration();
    if (!recheck_.empty()) wait = absl::ZeroDuration();  // just collect
    doorbell_->Wait(wait, &news);

    work.clear();
    work.swap(recheck_);
    for (std::shared_ptr<MemoryPipe>& pipe : news.arrived) {
      work.push_back(Adopt(std::move(pipe)));  // bytes may already wait
    }
    for (const std::shared_ptr<MemoryPipe>& pipe : news.rung) {
      work.push_back(pipe->broker_id());
    }
    for (ConnectionId id : work) Inspect(id);

    if (news.stop && !shutting_down) {
      shutting_down = true;
      driver_.Shutdown(shutdown_timeout_);
    }
    wakeup = driver_.RunTurn();
    if (shutting_down && driver_.ShutdownDone(wakeup)) break;
  }
  for (const std::shared_ptr<MemoryPipe>& pipe : doorbell_->Close()) {
    pipe->BrokerClose();
  }
}

ConnectionId MemoryLoop::Adopt(std::shared_ptr<MemoryPipe> pipe) {
  const ConnectionId id =
      driver_.Open(*this, PeerInfo{absl::StrCat("memory:", pipe->peer_name())},
                   pipe->TakeCodec(), pipe->TakeSecurity());
  pipe->set_broker_id(id);
  links_[id].pipe = std::move(pipe);
  return id;
}

void MemoryLoop::Inspect(ConnectionId id) {
  auto it = links_.find(id);
  if (it == links_.end()) return;
  // OnReceived() may pause reading but never adds or removes links, so
  // `link` stays valid.
  Link& link = it->second;
  link.pipe->ClearRing();
  // At most about one queue's worth per look, so a client that keeps
  // writing cannot hold the broker's thread.
  for (int reads = 0; link.reading && !link.ended && reads < 4; ++reads) {
    bool ended = false;
    link.pipe->BrokerRead(BrokerDriver::kMaxReceiveBytes, &read_buffer_,
                          &ended);
    if (!read_buffer_.empty()) driver_.OnReceived(id, read_buffer_);
    if (ended) {
      link.ended = true;
      driver_.OnPeerClosed(id);
    }
    if (read_buffer_.size() < BrokerDriver::kMaxReceiveBytes) break;
    if (reads == 3) recheck_.push_back(id);  // more next time round
  }
  if (link.waiting_for_room && link.pipe->BrokerCanWrite()) {
    link.waiting_for_room = false;
    driver_.OnWritable(id);
  }
}

absl::StatusOr<size_t> MemoryLoop::WriteSome(
    ConnectionId id, absl::Span<const absl::string_view> chunks) {
  auto it = links_.find(id);
  if (it == links_.end()) return absl::NotFoundError("no such link");
  absl::StatusOr<size_t> taken = it->second.pipe->BrokerWrite(chunks);
  if (taken.ok() && *taken == 0) it->second.waiting_for_room = true;
  return taken;
}

void MemoryLoop::SetReading(ConnectionId id, bool reading) {
  auto it = links_.find(id);
  if (it == links_.end()) return;
  it->second.reading = reading;
  if (reading) recheck_.push_back(id);
}

void MemoryLoop::Close(ConnectionId id) {
  auto it = links_.find(id);
  if (it == links_.end()) return;
  it->second.pipe->BrokerClose();
  links_.erase(it);
}

}  // namespace manifold::memory_internal
